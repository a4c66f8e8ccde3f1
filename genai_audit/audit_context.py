"""Audit context: who is calling the model, in which session, for which feature.

The values travel as OpenTelemetry baggage, so they follow the code through
``asyncio`` tasks (context variables), threads (see :mod:`genai_audit.threads`)
and outgoing HTTP calls of instrumented HTTP clients (W3C ``baggage`` header),
and every LLM span started inside the context carries them.

Baggage is sent to every downstream service an instrumented HTTP client calls:
put identifiers here, never secrets.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context

from genai_audit import semconv as sc

F = TypeVar("F", bound=Callable[..., Any])

#: keyword -> attribute/baggage key
FIELDS: Final[Mapping[str, str]] = {
    "user_id": sc.ENDUSER_ID,
    "session_id": sc.SESSION_ID,
    "feature": sc.AUDIT_FEATURE,
    "environment": sc.DEPLOYMENT_ENVIRONMENT,
    "consent": sc.AUDIT_CONSENT,
    "classification": sc.AUDIT_CLASSIFICATION,
    "request_id": sc.AUDIT_REQUEST_ID,
    "tenant": sc.AUDIT_TENANT,
}
CLASSIFICATIONS: Final = ("public", "internal", "confidential", "restricted")
_KEYS: Final = tuple(FIELDS.values())


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if name == "classification" and text not in CLASSIFICATIONS:
        raise ValueError(f"classification={text!r}: expected one of {', '.join(CLASSIFICATIONS)}")
    if name == "consent" and text.lower() not in {"true", "false", "granted", "denied", "unknown"}:
        raise ValueError(f"consent={text!r}: expected true/false (or granted/denied/unknown)")
    return text


class AuditContext:
    """Context manager and decorator that sets audit context for the code inside it.

    >>> with context(user_id="u-42", session_id="s-1", feature="support-chat"):
    ...     client.chat.completions.create(...)

    Nested contexts add to (and override) the outer one. Works on plain and
    ``async`` functions when used as a decorator.
    """

    def __init__(self, values: Mapping[str, str], base: otel_context.Context | None = None) -> None:
        self._values = dict(values)
        self._base = base
        self._tokens: list[object] = []

    def _attach(self) -> None:
        ctx = otel_context.get_current() if self._base is None else self._base
        for key, value in self._values.items():
            ctx = baggage.set_baggage(key, value, ctx)
        self._tokens.append(otel_context.attach(ctx))

    def _detach(self) -> None:
        otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]  # Token from attach

    def __enter__(self) -> AuditContext:
        self._attach()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._detach()

    async def __aenter__(self) -> AuditContext:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        values = self._values
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with AuditContext(values):
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with AuditContext(values):
                return func(*args, **kwargs)

        return cast(F, wrapper)


def context(
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    feature: str | None = None,
    environment: str | None = None,
    consent: bool | str | None = None,
    classification: str | None = None,
    request_id: str | None = None,
    tenant: str | None = None,
) -> AuditContext:
    """Set audit context for the calls made inside; see :class:`AuditContext`.

    ``request_id`` is the correlation id that links the UI request, the backend
    and each model call. ``classification`` is the least strict class the
    data may get (one of public, internal, confidential, restricted).
    Raises ``ValueError`` on a value it cannot record.
    """
    given = {
        "user_id": user_id,
        "session_id": session_id,
        "feature": feature,
        "environment": environment,
        "consent": consent,
        "classification": classification,
        "request_id": request_id,
        "tenant": tenant,
    }
    return AuditContext({FIELDS[name]: _text(name, value) for name, value in given.items() if value is not None})


def from_headers(
    headers: Mapping[str, str], *, request_id_header: str = "x-request-id", **fields: Any
) -> AuditContext:
    """Audit context for an incoming HTTP request.

    Restores W3C ``traceparent``/``baggage`` sent by the caller (so a correlation
    id set in the UI tier flows on), then takes the correlation id from
    ``request_id_header`` when present. Extra keyword arguments are as for
    :func:`context` and win over what the headers carried.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    incoming = propagate.extract(lowered)
    values = {key: str(value) for key, value in baggage.get_all(incoming).items() if key in _KEYS}
    request_id = lowered.get(request_id_header.lower())
    if request_id:
        values[sc.AUDIT_REQUEST_ID] = request_id
    values.update(context(**fields)._values)
    # A web framework's own instrumentation may already have started a server
    # span from these headers; then stay under it instead of its remote parent.
    in_span = trace.get_current_span().get_span_context().is_valid
    return AuditContext(values, base=None if in_span else incoming)


def _baggage_key() -> str | None:
    """The context key the baggage API keeps its entries under, when it reads them as found there."""
    try:
        from opentelemetry.baggage import _BAGGAGE_KEY as key
    except ImportError:
        return None
    if not isinstance(key, str):
        return None
    probe = baggage.set_baggage("genai.audit.probe", "1", otel_context.Context())
    found = probe.get(key)
    if type(found) is not dict or found != dict(baggage.get_all(probe)) or not found:
        return None
    return key


_BAGGAGE_KEY = _baggage_key()


def current() -> dict[str, str]:
    """The audit attributes in force here (empty when no context is set).

    The baggage is read from the current context in one look-up when the API
    keeps it where expected (checked at import), else through the API.
    """
    slot = _BAGGAGE_KEY
    if slot is None:
        entries: Mapping[str, object] = baggage.get_all()
    else:
        found = otel_context.get_current().get(slot)
        if not found:
            return {}
        entries = found if type(found) is dict else baggage.get_all()
    if not entries:
        return {}
    return {key: str(value) for key, value in entries.items() if key in _KEYS}
