"""Settings read from environment variables, validated once.

Bad values raise :class:`ConfigError` with a message naming the variable, so a
misconfiguration shows at start-up rather than as a missing record later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from genai_audit import semconv as sc

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", "none", ""})
DEFAULT_MAX_CONTENT_CHARS = 1_000_000
DEFAULT_METRIC_BATCH = 10


class ConfigError(ValueError):
    """A setting has a value genai-audit cannot use."""


def _instrument_names(raw: str | None) -> tuple[str, ...] | None:
    """The instrumentations named in ``GENAI_AUDIT_INSTRUMENT`` (None: every installed one)."""
    if raw is None:
        return None
    from genai_audit.instrumentation.registry import installed

    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    known = installed()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"{sc.ENV_INSTRUMENT}: unknown instrumentation {', '.join(unknown)}; "
            f"installed: {', '.join(sorted(known)) or 'none'}"
        )
    return names


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def parse_capture(raw: str | None) -> bool:
    """Content capture is on unless explicitly turned off.

    Accepts the values of the official GenAI instrumentations too:
    ``span_only`` and ``span_and_event`` mean on, ``no_content`` means off.
    """
    if raw is None or raw.strip() == "":
        return True
    value = raw.strip().lower()
    if value in {"span_only", "span_and_event", "event_only"}:
        return True
    if value == "no_content":
        return False
    return parse_bool(sc.ENV_CAPTURE_CONTENT, raw, True)


def parse_int(name: str, raw: str | None, default: int, minimum: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def default_store_path() -> Path:
    """The embedded store's default file, under the user's data directory."""
    from platformdirs import user_data_path

    return user_data_path("genai-audit", appauthor=False) / "audit.db"


def is_remote(target: str) -> bool:
    """True when a store names an Elasticsearch URL rather than a file."""
    return target.strip().lower().startswith(("http://", "https://"))


def store_path(given: str | None = None, env: Mapping[str, str] | None = None, *, allow_remote: bool = False) -> str:
    """The store: ``given``, else ``GENAI_AUDIT_STORE``, else the default SQLite file.

    An Elasticsearch URL is returned as is when ``allow_remote``; otherwise it
    raises :class:`ConfigError` (the caller reads a local file).
    """
    env = os.environ if env is None else env
    target = (given or env.get(sc.ENV_STORE, "")).strip()
    if is_remote(target) and not allow_remote:
        raise ConfigError(
            f"store {target!r} is an Elasticsearch URL; this command reads the embedded SQLite store: "
            "give --store PATH (query Elasticsearch with Kibana or its search API)"
        )
    return target or str(default_store_path())


def spool_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    named = env.get(sc.ENV_SPOOL_DIR, "").strip()
    return Path(named).expanduser() if named else default_store_path().parent / "spool"


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs to know, from one place."""

    capture_content: bool = True
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    openai_stream_usage: bool = True
    store: str = ""
    #: the modules to instrument when the application imports them; None: every installed instrumentation
    instrument: tuple[str, ...] | None = None
    propagate_threads: bool = True
    export_delay_ms: int = 500
    environment: str = ""
    #: the metric points of this many finished calls are recorded together (1: each call's at its end)
    metric_batch: int = DEFAULT_METRIC_BATCH
    #: record gen_ai.client.operation.time_per_output_chunk, a point per stream chunk after the first
    chunk_metric: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        instrument = _instrument_names(env.get(sc.ENV_INSTRUMENT))
        return cls(
            capture_content=parse_capture(env.get(sc.ENV_CAPTURE_CONTENT)),
            max_content_chars=parse_int(
                sc.ENV_MAX_CONTENT_CHARS, env.get(sc.ENV_MAX_CONTENT_CHARS), DEFAULT_MAX_CONTENT_CHARS, 64
            ),
            openai_stream_usage=parse_bool(
                sc.ENV_OPENAI_STREAM_USAGE, env.get(sc.ENV_OPENAI_STREAM_USAGE), True
            ),
            store=env.get(sc.ENV_STORE, "").strip(),
            instrument=instrument,
            propagate_threads=parse_bool(sc.ENV_PROPAGATE_THREADS, env.get(sc.ENV_PROPAGATE_THREADS), True),
            export_delay_ms=parse_int(sc.ENV_EXPORT_DELAY_MS, env.get(sc.ENV_EXPORT_DELAY_MS), 500, 1),
            environment=env.get(sc.ENV_ENVIRONMENT, "").strip(),
            metric_batch=parse_int(sc.ENV_METRIC_BATCH, env.get(sc.ENV_METRIC_BATCH), DEFAULT_METRIC_BATCH, 1),
            chunk_metric=parse_bool(sc.ENV_CHUNK_METRIC, env.get(sc.ENV_CHUNK_METRIC), False),
        )
