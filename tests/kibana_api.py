"""A local HTTP server standing in for the Kibana APIs ``genai-audit kibana install`` calls.

It keeps what a Kibana would keep (saved objects, rules, spaces, connectors) and checks every
request against Kibana's published API description of that endpoint, answering as Kibana does
(400 with the schema's complaint, 401, 404, 409). Each complaint is also kept in
:attr:`KibanaStandIn.violations`, so a test can assert that none was made.

The checks are encoded from these files of elastic/kibana (read 2026-12):

- saved objects import: ``src/core/packages/saved-objects/server-internal/src/routes/import.ts``
  (query ``overwrite``/``createNewCopies``/``compatibilityMode``, booleans, not ``overwrite`` with
  ``createNewCopies``; a multipart body whose ``file`` part is a ``.ndjson`` file; the answer
  ``success``, ``successCount``, ``errors``, ``successResults``);
- rule create: ``x-pack/platform/plugins/shared/alerting/common/routes/rule/apis/create/schemas/v1.ts``
  (``createBodySchema``, its action schema; unknown keys refused);
- rule update: ``x-pack/platform/plugins/shared/alerting/common/routes/rule/apis/update/schemas/v1.ts``
  (``updateBodySchema``: no ``rule_type_id``, ``consumer`` or ``enabled``);
- ``.es-query`` parameters: ``src/platform/packages/shared/response-ops/rule_params/es_query/v1.ts``
  (``EsQueryRuleParamsSchema`` and its ``validateParams``), and the OpenAPI schema
  ``x-pack/platform/plugins/shared/alerting/docs/openapi/components/schemas/params_es_query_dsl_rule.yaml``
  (the required DSL parameters);
- every non-GET request needs the ``kbn-xsrf`` header; a space is addressed as ``/s/<space>/api/...``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DURATION = re.compile(r"^\d+[smhd]$")
NOTIFY_WHEN = ("onActionGroupChange", "onActiveAlert", "onThrottleInterval")
COMPARATORS = (">", "<", ">=", "<=", "between", "notBetween")
AGG_TYPES = ("count", "avg", "min", "max", "sum")
TIME_UNITS = ("s", "m", "h", "d")
IMPORTABLE = ("index-pattern", "search", "lens", "dashboard", "visualization", "tag", "map")

Json = dict[str, Any]


def _kind_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    raise AssertionError(kind)


def check_object(where: str, body: Any, fields: Mapping[str, tuple[str, bool]]) -> list[str]:
    """``fields``: name -> (kind, required). Unknown keys are refused, as config-schema objects do."""
    if not isinstance(body, dict):
        return [f"[{where}]: expected value of type [object]"]
    problems = [f"[{where}.{key}]: definition for this key is missing" for key in body if key not in fields]
    for name, (kind, required) in fields.items():
        if name not in body:
            if required:
                problems.append(f"[{where}.{name}]: expected value of type [{kind}] but got [undefined]")
            continue
        value = body[name]
        if value is None and kind.endswith("?"):
            continue
        if not _kind_ok(value, kind.rstrip("?")):
            problems.append(f"[{where}.{name}]: expected value of type [{kind.rstrip('?')}]")
    return problems


def check_action(where: str, action: Any) -> list[str]:
    problems = check_object(
        where,
        action,
        {
            "group": ("string", False),
            "id": ("string", True),
            "params": ("object", False),
            "frequency": ("object", False),
            "uuid": ("string", False),
            "alerts_filter": ("object", False),
            "use_alert_data_for_template": ("boolean", False),
        },
    )
    frequency = action.get("frequency") if isinstance(action, dict) else None
    if frequency is not None:
        problems += check_object(
            f"{where}.frequency",
            frequency,
            {"summary": ("boolean", True), "notify_when": ("string", True), "throttle": ("string?", False)},
        )
        if isinstance(frequency, dict) and frequency.get("notify_when") not in NOTIFY_WHEN:
            problems.append(f"[{where}.frequency.notify_when]: must be one of {', '.join(NOTIFY_WHEN)}")
    return problems


def check_es_query_params(params: Any) -> list[str]:
    """``EsQueryRuleParamsSchema`` for ``searchType: esQuery``, then its ``validateParams``."""
    problems = check_object(
        "request body.params",
        params,
        {
            "size": ("number", True),
            "timeWindowSize": ("number", True),
            "excludeHitsFromPreviousRun": ("boolean", False),
            "timeWindowUnit": ("string", True),
            "threshold": ("array", True),
            "thresholdComparator": ("string", True),
            "aggType": ("string", False),
            "aggField": ("string", False),
            "groupBy": ("string", False),
            "termField": ("string", False),
            "termSize": ("number", False),
            "searchType": ("string", False),
            "timeField": ("string", True),
            "esQuery": ("string", True),
            "index": ("array", True),
            "sourceFields": ("array", False),
        },
    )
    if problems:
        return problems
    where = "request body.params"
    if params.get("searchType", "esQuery") != "esQuery":
        problems.append(f"[{where}.searchType]: only esQuery is described here")
    if not 0 <= params["size"] <= 10_000:
        problems.append(f"[{where}.size]: must be between 0 and 10000")
    if params["timeWindowSize"] < 1:
        problems.append(f"[{where}.timeWindowSize]: must be at least 1")
    if params["timeWindowUnit"] not in TIME_UNITS:
        problems.append(f"[{where}.timeWindowUnit]: invalid timeWindowUnit")
    threshold = params["threshold"]
    if not 1 <= len(threshold) <= 2 or not all(_kind_ok(t, "number") for t in threshold):
        problems.append(f"[{where}.threshold]: one or two numbers")
    comparator = params["thresholdComparator"]
    if comparator not in COMPARATORS:
        problems.append(f"[{where}.thresholdComparator]: invalid thresholdComparator")
    if comparator in ("between", "notBetween") and len(threshold) != 2:
        problems.append("[threshold]: must have two elements for the comparator")
    aggregation = params.get("aggType", "count")
    if aggregation not in AGG_TYPES:
        problems.append(f"[{where}.aggType]: invalid aggType")
    if aggregation != "count" and not params.get("aggField"):
        problems.append(f'[aggField]: must have a value when [aggType] is "{aggregation}"')
    group_by = params.get("groupBy", "all")
    if group_by not in ("all", "top", "row"):
        problems.append(f"[{where}.groupBy]: invalid groupBy")
    if group_by == "top" and (params.get("termField") is None or params.get("termSize") is None):
        problems.append("[termField]/[termSize]: required when [groupBy] is top")
    if group_by == "top" and params.get("termSize", 0) > 1000:
        problems.append("[termSize]: must be less than or equal to 1000")
    if group_by == "row":
        problems.append("[groupBy]: groupBy should be all or top when [searchType] is not esqlQuery")
    if not params["timeField"]:
        problems.append(f"[{where}.timeField]: value has length [0] but it must have a minimum length of [1]")
    if not params["index"] or not all(isinstance(i, str) and i for i in params["index"]):
        problems.append(f"[{where}.index]: at least one index name")
    try:
        parsed = json.loads(params["esQuery"])
    except ValueError:
        problems.append("[esQuery]: must be valid JSON")
    else:
        if not isinstance(parsed, dict) or "query" not in parsed:
            problems.append('[esQuery]: must contain "query"')
    return problems


RULE_COMMON: dict[str, tuple[str, bool]] = {
    "name": ("string", True),
    "tags": ("array", False),
    "schedule": ("object", True),
    "throttle": ("string?", False),
    "params": ("object", True),
    "actions": ("array", False),
    "notify_when": ("string?", False),
    "alert_delay": ("object", False),
    "flapping": ("object?", False),
}
CREATE_FIELDS = {
    **RULE_COMMON,
    "rule_type_id": ("string", True),
    "enabled": ("boolean", False),
    "consumer": ("string", True),
    "dashboards": ("array", False),
}
UPDATE_FIELDS = {**RULE_COMMON, "artifacts": ("object", False)}


def check_rule_body(body: Any, *, create: bool) -> list[str]:
    problems = check_object("request body", body, CREATE_FIELDS if create else UPDATE_FIELDS)
    if problems:
        return problems
    schedule = body["schedule"]
    problems += check_object("request body.schedule", schedule, {"interval": ("string", True)})
    if isinstance(schedule.get("interval"), str) and not DURATION.match(schedule["interval"]):
        problems.append("[request body.schedule.interval]: invalid duration")
    for index, action in enumerate(body.get("actions") or []):
        problems += check_action(f"request body.actions.{index}", action)
    if not all(isinstance(tag, str) for tag in body.get("tags") or []):
        problems.append("[request body.tags]: strings only")
    if create and body["rule_type_id"] != ".es-query":
        problems.append(f"unknown rule type {body['rule_type_id']} (this stand-in describes .es-query)")
    return problems + check_es_query_params(body["params"])


class KibanaStandIn:
    """The server; ``with KibanaStandIn() as kibana: kibana.url``."""

    def __init__(
        self,
        *,
        api_keys: tuple[str, ...] = ("a2V5LWlkOmtleS1zZWNyZXQ=",),
        users: Mapping[str, str] | None = None,
        spaces: tuple[str, ...] = ("default",),
        connectors: Mapping[str, str] | None = None,
        version: str = "8.19.5",
        pretend_elasticsearch: bool = False,
    ) -> None:
        self.api_keys = set(api_keys)
        self.users = dict(users or {"elastic": "changeme"})
        self.spaces = set(spaces)
        self.connectors = dict(connectors or {})
        self.version = version
        self.pretend_elasticsearch = pretend_elasticsearch
        self.objects: dict[str, dict[tuple[str, str], Json]] = {}
        self.rules: dict[str, dict[str, Json]] = {}
        self.fail_import: set[str] = set()  # object ids the import reports as failed
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with stand_in._lock:
                    stand_in.requests.append((self.command, self.path, headers))
                    status, body = stand_in.answer(self.command, self.path, headers, raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                if stand_in.pretend_elasticsearch:
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KibanaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- state a test looks at --------------------------------------------------------------------

    def state(self) -> Json:
        """Saved objects and rules as stored, without the times that every write changes."""
        rules = {
            space: {
                rid: {k: v for k, v in r.items() if k not in ("updated_at", "created_at")} for rid, r in found.items()
            }
            for space, found in self.rules.items()
        }
        objects = {space: {f"{t}/{i}": o for (t, i), o in found.items()} for space, found in self.objects.items()}
        return copy.deepcopy({"objects": objects, "rules": rules})

    def writes(self, since: int = 0) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests[since:] if m != "GET"]

    # -- answering ----------------------------------------------------------------------------------

    def _complain(self, status: int, message: str, error: str = "Bad Request") -> tuple[int, Json]:
        self.violations.append(message)
        return status, {"statusCode": status, "error": error, "message": message}

    def _authenticated(self, headers: Mapping[str, str]) -> bool:
        value = headers.get("authorization", "")
        if value.startswith("ApiKey "):
            return value[len("ApiKey "):] in self.api_keys
        if value.startswith("Basic "):
            import base64

            user, _, password = base64.b64decode(value[len("Basic "):]).decode().partition(":")
            return self.users.get(user) == password
        return False

    def answer(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Json]:
        parts = urlsplit(target)
        path, query = unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)
        if self.pretend_elasticsearch:
            return 404, {"error": {"type": "resource_not_found_exception"}, "status": 404}
        if method != "GET" and "kbn-xsrf" not in headers:
            return self._complain(400, "Request must contain a kbn-xsrf header.")
        if not self._authenticated(headers):
            return 401, {"statusCode": 401, "error": "Unauthorized", "message": "unable to authenticate user"}
        space = "default"
        found = re.match(r"^/s/([a-z0-9_-]+)(/.*)$", path)
        if found:
            space, path = found.group(1), found.group(2)
            if space not in self.spaces:
                return 404, {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
        routes: list[tuple[str, str, Callable[..., tuple[int, Json]]]] = [
            ("GET", r"^/api/status$", lambda: self._status()),
            ("GET", r"^/api/spaces/space/([^/]+)$", self._space),
            ("GET", r"^/api/actions/connector/([^/]+)$", self._connector),
            ("POST", r"^/api/saved_objects/_import$", lambda: self._import(space, headers, query, raw)),
            ("POST", r"^/api/alerting/rule/([^/]+)$", lambda rule_id: self._create_rule(space, rule_id, raw)),
            ("GET", r"^/api/alerting/rule/([^/]+)$", lambda rule_id: self._get_rule(space, rule_id)),
            ("PUT", r"^/api/alerting/rule/([^/]+)$", lambda rule_id: self._update_rule(space, rule_id, raw)),
        ]
        for route_method, pattern, handler in routes:
            matched = re.match(pattern, path)
            if matched and route_method == method:
                return handler(*matched.groups())
        return self._complain(404, f"no such route: {method} {path}", "Not Found")

    @staticmethod
    def _not_found(message: str) -> tuple[int, Json]:
        return 404, {"statusCode": 404, "error": "Not Found", "message": message}

    def _status(self) -> tuple[int, Json]:
        return 200, {"name": "kibana", "version": {"number": self.version, "build_flavor": "traditional"},
                     "status": {"overall": {"level": "available"}}}

    def _space(self, space_id: str) -> tuple[int, Json]:
        if space_id not in self.spaces:
            return self._not_found(f"Saved object [space/{space_id}] not found")
        return 200, {"id": space_id, "name": space_id, "disabledFeatures": []}

    def _connector(self, connector_id: str) -> tuple[int, Json]:
        if connector_id not in self.connectors:
            return 404, {"statusCode": 404, "error": "Not Found",
                         "message": f"Saved object [action/{connector_id}] not found"}
        return 200, {"id": connector_id, "name": connector_id, "connector_type_id": self.connectors[connector_id],
                     "is_preconfigured": False, "is_deprecated": False, "is_missing_secrets": False, "config": {}}

    def _import(
        self, space: str, headers: Mapping[str, str], query: Mapping[str, list[str]], raw: bytes
    ) -> tuple[int, Json]:
        flags: dict[str, bool] = {}
        for name in query:
            if name not in ("overwrite", "createNewCopies", "compatibilityMode"):
                return self._complain(400, f"[request query.{name}]: definition for this key is missing")
            if query[name] != ["true"] and query[name] != ["false"]:
                return self._complain(400, f"[request query.{name}]: expected value of type [boolean]")
            flags[name] = query[name] == ["true"]
        if flags.get("overwrite") and flags.get("createNewCopies"):
            return self._complain(400, "cannot use [overwrite] with [createNewCopies]")
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data; boundary="):
            return self._complain(415, f"Unsupported Media Type: {content_type}", "Unsupported Media Type")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
        if len(parts) != 1:
            return self._complain(400, "[request body.file]: expected value of type [Stream] but got [undefined]")
        filename = str(parts[0].get_filename() or "")
        if not filename.lower().endswith(".ndjson"):
            return self._complain(400, f"Invalid file extension {filename[filename.rfind('.'):]}")
        text = parts[0].get_payload(decode=True).decode("utf-8")
        incoming: list[Json] = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                return self._complain(400, "Unexpected token in JSON")
            if "exportedCount" in obj:
                continue
            incoming.append(obj)
        stored = self.objects.setdefault(space, {})
        known = {(o.get("type"), o.get("id")) for o in incoming} | set(stored)
        errors: list[Json] = []
        results: list[Json] = []
        for obj in incoming:
            kind, object_id = obj.get("type"), obj.get("id")
            title = (obj.get("attributes") or {}).get("title")
            problem: Json | None = None
            if kind not in IMPORTABLE:
                problem = {"type": "unsupported_type"}
            elif not isinstance(object_id, str) or not isinstance(obj.get("attributes"), dict):
                problem = {"type": "unknown", "message": "id and attributes are required"}
            else:
                missing = [r for r in obj.get("references") or [] if (r.get("type"), r.get("id")) not in known]
                if missing:
                    problem = {"type": "missing_references",
                               "references": [{"type": r["type"], "id": r["id"]} for r in missing]}
                elif not flags.get("overwrite") and (kind, object_id) in stored:
                    problem = {"type": "conflict"}
                elif object_id in self.fail_import:
                    problem = {"type": "unknown", "message": "document could not be migrated", "statusCode": 400}
            if problem is not None:
                errors.append({"type": kind, "id": object_id, "title": title, "meta": {"title": title},
                               "error": problem})
                continue
            stored[(kind, object_id)] = copy.deepcopy(obj)
            results.append({"type": kind, "id": object_id, "meta": {"title": title},
                            **({"overwrite": True} if flags.get("overwrite") else {})})
        return 200, {"success": not errors, "successCount": len(results), "errors": errors, "successResults": results}

    def _rule_answer(self, rule: Json) -> Json:
        return copy.deepcopy(rule)

    def _stored_actions(self, actions: list[Json]) -> tuple[list[Json], str | None]:
        stored = []
        for action in actions:
            connector = action.get("id")
            if connector not in self.connectors:
                return [], f"Saved object [action/{connector}] not found"
            stored.append({"group": action.get("group", "default"), "id": connector,
                           "params": action.get("params", {}), "connector_type_id": self.connectors[connector],
                           "uuid": action.get("uuid") or str(uuid.uuid4()),
                           **({"frequency": action["frequency"]} if "frequency" in action else {})})
        return stored, None

    @staticmethod
    def _params(params: Json) -> Json:
        """The parameters with the schema's defaults, as Kibana stores them."""
        return {"excludeHitsFromPreviousRun": True, "aggType": "count", "groupBy": "all", "searchType": "esQuery",
                **params}

    def _create_rule(self, space: str, rule_id: str, raw: bytes) -> tuple[int, Json]:
        rules = self.rules.setdefault(space, {})
        if rule_id in rules:
            return 409, {"statusCode": 409, "error": "Conflict", "message": f"Saved object [alert/{rule_id}] conflict"}
        body = json.loads(raw or b"null")
        problems = check_rule_body(body, create=True)
        if problems:
            return self._complain(400, "; ".join(problems))
        actions, missing = self._stored_actions(body.get("actions") or [])
        if missing:
            return 400, {"statusCode": 400, "error": "Bad Request", "message": missing}
        rule = {"id": rule_id, "name": body["name"], "tags": body.get("tags", []), "rule_type_id": body["rule_type_id"],
                "consumer": body["consumer"], "enabled": body.get("enabled", True), "schedule": body["schedule"],
                "params": self._params(body["params"]), "actions": actions, "created_at": "now", "updated_at": "now",
                "mute_all": False, "muted_alert_ids": [], "revision": 0}
        rules[rule_id] = rule
        return 200, self._rule_answer(rule)

    def _get_rule(self, space: str, rule_id: str) -> tuple[int, Json]:
        rule = self.rules.get(space, {}).get(rule_id)
        if rule is None:
            return self._not_found(f"Saved object [alert/{rule_id}] not found")
        return 200, self._rule_answer(rule)

    def _update_rule(self, space: str, rule_id: str, raw: bytes) -> tuple[int, Json]:
        body = json.loads(raw or b"null")
        problems = check_rule_body(body, create=False)
        if problems:
            return self._complain(400, "; ".join(problems))
        rule = self.rules.get(space, {}).get(rule_id)
        if rule is None:
            return self._not_found(f"Saved object [alert/{rule_id}] not found")
        actions, missing = self._stored_actions(body.get("actions") or [])
        if missing:
            return 400, {"statusCode": 400, "error": "Bad Request", "message": missing}
        rule.update(name=body["name"], tags=body.get("tags", []), schedule=body["schedule"],
                    params=self._params(body["params"]), actions=actions, updated_at="later",
                    revision=rule["revision"] + 1)
        return 200, self._rule_answer(rule)
