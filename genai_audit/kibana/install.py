"""``genai-audit kibana install``: the saved objects imported, the rules created or brought up to date.

In order: Kibana's status (is it Kibana, do the credentials work), the space (it must exist), the
connector (when one is given, its type decides the action's parameters), then

1. ``POST /api/saved_objects/_import?overwrite=true`` with every saved object: the same ids every
   time, so a second import rewrites the same objects with the same content;
2. per rule, ``POST /api/alerting/rule/<id>``; when Kibana answers 409 (the rule exists),
   ``GET`` it and, only if its name, tags, schedule, parameters or actions differ from ours,
   ``PUT`` the update body (which may not carry ``rule_type_id``, ``consumer`` or ``enabled``: a
   rule someone disabled stays disabled). Running install twice changes nothing the second time.

Objects Kibana did not take are named in the report; install goes on with the rest and the
command exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genai_audit.kibana.client import KibanaClient, KibanaError
from genai_audit.kibana.objects import dashboards, saved_objects, to_ndjson
from genai_audit.kibana.rules import RULE_TYPE, RuleSpec, connector_action, rules


@dataclass
class InstallReport:
    """What install did, line by line, and what failed."""

    version: str = ""
    imported: int = 0
    failed_objects: list[str] = field(default_factory=list)
    rules: list[tuple[RuleSpec, str]] = field(default_factory=list)
    failed_rules: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_objects and not self.failed_rules

    def failures(self) -> str:
        """One line naming every object that failed."""
        parts = []
        if self.failed_objects:
            parts.append(f"{len(self.failed_objects)} saved object(s) not imported: {'; '.join(self.failed_objects)}")
        if self.failed_rules:
            parts.append(f"{len(self.failed_rules)} rule(s) not installed: {'; '.join(self.failed_rules)}")
        return " / ".join(parts)


def _object_error(error: Mapping[str, Any]) -> str:
    """``type id "title": kind (detail)`` for one entry of the import answer's ``errors``."""
    found = error.get("error")
    detail: Mapping[str, Any] = found if isinstance(found, dict) else {}
    kind = str(detail.get("type", "error"))
    extra = ""
    if kind == "missing_references":
        missing = detail.get("references") or []
        extra = " (" + ", ".join(f"{r.get('type')} {r.get('id')}" for r in missing if isinstance(r, dict)) + ")"
    elif detail.get("message") or detail.get("reason"):
        extra = f" ({' '.join(str(detail.get('message') or detail.get('reason')).split())[:200]})"
    title = error.get("meta", {}).get("title") if isinstance(error.get("meta"), dict) else error.get("title")
    named = f' "{title}"' if title else ""
    return f"{error.get('type', '?')} {error.get('id', '?')}{named}: {kind}{extra}"


def _same_rule(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether the stored rule already has our name, tags, schedule, parameters and actions."""
    stored = current.get("params")
    params: Mapping[str, Any] = stored if isinstance(stored, dict) else {}
    ours = wanted["params"]
    if any(params.get(key) != value for key, value in ours.items()):
        return False

    def actions(items: Any) -> list[tuple[str, str, Any, Any]]:
        found = []
        for action in items or []:
            frequency = action.get("frequency") or {}
            found.append(
                (
                    str(action.get("group")),
                    str(action.get("id")),
                    action.get("params") or {},
                    (frequency.get("summary"), frequency.get("notify_when"), frequency.get("throttle")),
                )
            )
        return sorted(found, key=repr)

    return (
        current.get("name") == wanted["name"]
        and sorted(current.get("tags") or []) == sorted(wanted["tags"])
        and (current.get("schedule") or {}).get("interval") == wanted["schedule"]["interval"]
        and actions(current.get("actions")) == actions(wanted["actions"])
    )


def install_rule(client: KibanaClient, spec: RuleSpec, actions: list[dict[str, Any]]) -> str:
    """Create the rule, or update it when it differs; ``created``, ``updated`` or ``unchanged``."""
    path = client.rule_path(spec.id)
    created = client.request("POST", path, body=spec.body(actions))
    if created.status == 200:
        return "created"
    if created.status != 409:
        raise client.fail(created, f"creating the rule {spec.key}")
    found = client.request("GET", path)
    if found.status != 200 or not isinstance(found.body, dict):
        raise client.fail(found, f"reading the rule {spec.key}")
    if found.body.get("rule_type_id") != RULE_TYPE:
        raise KibanaError(
            f"the rule id {spec.id} is taken by a {found.body.get('rule_type_id')} rule "
            f"({found.body.get('name')!r}); delete it to install {spec.key}"
        )
    if _same_rule(found.body, spec.body(actions)):
        return "unchanged"
    updated = client.request("PUT", path, body=spec.update_body(actions))
    if updated.status != 200:
        raise client.fail(updated, f"updating the rule {spec.key}")
    return "updated"


def install(
    client: KibanaClient,
    *,
    jaeger_url: str,
    connector: str | None = None,
    rule_specs: Sequence[RuleSpec] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> InstallReport:
    """Import the saved objects and install the rules; raises :class:`KibanaError` when nothing can be done."""
    report = InstallReport(version=client.version())
    client.check_space_exists()
    actions: list[dict[str, Any]] = []
    if connector:
        try:
            actions = [connector_action(connector, client.connector_type(connector))]
        except ValueError as exc:
            raise KibanaError(str(exc)) from None
    objects = saved_objects(jaeger_url)
    answer = client.import_objects(to_ndjson(objects))
    if answer.status != 200 or not isinstance(answer.body, dict):
        raise client.fail(answer, "importing the saved objects")
    report.imported = int(answer.body.get("successCount") or 0)
    report.failed_objects = [_object_error(e) for e in answer.body.get("errors") or [] if isinstance(e, dict)]
    progress(f"saved objects: {report.imported} of {len(objects)} imported (overwrite)")
    for line in report.failed_objects:
        progress(f"  not imported: {line}")
    for spec in rule_specs if rule_specs is not None else rules():
        try:
            outcome = install_rule(client, spec, actions)
        except KibanaError as exc:
            report.failed_rules.append(f"{spec.key} ({spec.id}): {exc}")
            progress(f"rule {spec.key}: FAILED: {exc}")
            continue
        report.rules.append((spec, outcome))
        progress(f"rule {spec.key} ({spec.id}): {outcome}")
    return report


def dashboard_links(client: KibanaClient) -> list[str]:
    """``title: URL`` of each dashboard in the client's space."""
    return [f"{spec.title}: {client.url}{client.prefix}/app/dashboards#/view/{spec.id}" for spec in dashboards()]
