"""Forensic queries, retention and erasure at scale: the embedded SQLite store vs. a real Elasticsearch node.

The script generates N audit records in the serializer's document shape
(:func:`genai_audit.serialize.span_document`): CLIENT chat spans of about 1.5 KB
with redacted prompt chain and response (``gen_ai.input.messages`` /
``gen_ai.output.messages`` with pseudonym tokens), token usage, cost,
classification, feature, user and session; about 2,000 users, N/10 sessions of
about 10 calls, 20 features, 6 models, 2 % failed calls (each with an
``exception`` event), spread over the 90 days before the generation time.

The records are loaded into

* an SQLite store through the store's own schema (``genai_audit.store.sqlite.connect``
  and its row layout), so the indexes and the full-text / token trigger apply; big
  transactions, ``synchronous=OFF`` while loading only;
* a real Elasticsearch 8.19 node started here (:class:`tools.es_node.EsNode`)
  with the index templates the exporter installs, bulk requests of about 4 MB from two
  threads, ``refresh_interval`` off while loading and one refresh at the end.

Both are cached under ``~/.cache/genai-audit/bench-forensics/<N>/`` (``--fresh`` rebuilds).
Then, through the public forensic API (:func:`genai_audit.forensics.open_store`) on both
stores: session replay (``timeline``), statistics by feature (7 days, all time), query by
user, by pseudonym token and full-text search. Retention and erasure delete data, so they
run on separate subsets (``--subset`` records, default 50,000: a fresh SQLite file and a
dedicated Elasticsearch namespace), never on the cached main data.

Usage::

    python bench/forensics.py --records 100000          # quick run
    python bench/forensics.py                           # 1,000,000 records
    python bench/forensics.py --records 1000000 --json /tmp/forensics.json

See ``bench/README-forensics.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from genai_audit import semconv as sc
from genai_audit.forensics import Filters, open_store
from genai_audit.serialize import timestamp
from genai_audit.store.elasticsearch import ENV_NAMESPACE, data_stream
from genai_audit.store.sqlite import _INSERT, _row, connect

DAY_NS = 86_400 * 1_000_000_000
SPAN_DAYS = 90
USERS = 2_000
SESSION_CALLS = 10
FEATURES = [f"feature-{i:02d}" for i in range(20)]
MODELS = [  # (model, provider, input $/1M tokens, output $/1M tokens)
    ("gpt-4o", "openai", 2.5, 10.0),
    ("gpt-4o-mini", "openai", 0.15, 0.6),
    ("claude-sonnet-4", "anthropic", 3.0, 15.0),
    ("claude-haiku-3.5", "anthropic", 0.8, 4.0),
    ("gemini-2.0-flash", "gcp.gemini", 0.1, 0.4),
    ("mistral-large", "mistral_ai", 2.0, 6.0),
]
CLASSES = [("public", 0.2), ("internal", 0.5), ("confidential", 0.2), ("restricted", 0.1)]
ERRORS = [("RateLimitError", "Rate limit reached for requests"), ("APITimeoutError", "Request timed out."),
          ("InternalServerError", "The server had an error while processing your request"),
          ("BadRequestError", "This model's maximum context length is 128000 tokens")]
MAIN_NAMESPACE = "bench"
TARGETS = {"sqlite": 50.0, "elasticsearch": 100.0}  # replay p50, ms


# --- generation -----------------------------------------------------------------------------------------------


class Corpus:
    """A fixed vocabulary, so full-text searches have words of known frequency."""

    def __init__(self, rng: random.Random) -> None:
        syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "xe", "zu", "pa", "de", "gi", "ho", "ju"]
        common = ["the", "a", "to", "of", "and", "is", "in", "for", "you", "your", "order", "account", "refund",
                  "invoice", "please", "help", "with", "can", "not", "we", "this", "that", "it", "on", "my",
                  "payment", "delivery", "card", "plan", "subscription", "error", "password", "reset", "email",
                  "address", "shipping", "return", "policy", "support", "ticket", "agent", "customer"]
        rare = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(6_000)}
        self.rare = sorted(rare)
        self.words = common * 20 + self.rare
        self.sentences = [self._sentence(rng) for _ in range(4_000)]

    def _sentence(self, rng: random.Random) -> str:
        return " ".join(rng.choice(self.words) for _ in range(rng.randint(8, 20))).capitalize() + "."

    def text(self, rng: random.Random, chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            sentence = rng.choice(self.sentences)
            out.append(sentence)
            size += len(sentence) + 1
        return " ".join(out)


def _token(rng: random.Random, entity: str) -> str:
    return f"[{entity}:{rng.getrandbits(48):012x}]"


class Generator:
    """Deterministic audit records: the same seed and N give the same documents."""

    def __init__(self, records: int, *, seed: int, end_ns: int, users: int = USERS) -> None:
        self.records = records
        self.seed = seed
        self.end_ns = end_ns
        rng = random.Random(seed)
        self.corpus = Corpus(rng)
        self.users = [f"u-{seed}-{i:05d}" for i in range(users)]
        # each user has an e-mail and a phone token; a few cards are shared between users
        self.user_tokens = {u: [_token(rng, "EMAIL"), _token(rng, "PHONE")] for u in self.users}
        self.shared = [_token(rng, "CREDIT_CARD") for _ in range(200)]
        self.sessions = max(1, records // SESSION_CALLS)

    def session_id(self, k: int) -> str:
        return f"s-{self.seed}-{k:07d}"

    def documents(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """(span document, event documents) in session order, ``records`` in all."""
        rng = random.Random(self.seed + 1)
        made = 0
        k = 0
        while made < self.records:
            calls = min(self.records - made, max(1, round(rng.gauss(SESSION_CALLS, 3))))
            if k == self.sessions - 1:
                calls = self.records - made
            user = rng.choice(self.users)
            feature = FEATURES[min(19, int(rng.expovariate(1 / 5)))]
            start = self.end_ns - rng.randrange(SPAN_DAYS * DAY_NS)
            session = self.session_id(k)
            for n in range(calls):
                yield self._call(rng, user, session, feature, start, n)
                start += rng.randrange(2, 60) * 1_000_000_000
            made += calls
            k += 1

    def _call(
        self, rng: random.Random, user: str, session: str, feature: str, start: int, n: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        model, provider, price_in, price_out = MODELS[rng.randrange(len(MODELS))]
        trace_id = f"{rng.getrandbits(128):032x}"
        span_id = f"{rng.getrandbits(64):016x}"
        duration = int(rng.lognormvariate(20.7, 0.6))  # about 1 s
        failed = rng.random() < 0.02
        tokens: list[str] = []
        if rng.random() < 0.3:
            tokens.append(rng.choice(self.user_tokens[user]))
        if rng.random() < 0.05:
            tokens.append(rng.choice(self.shared))
        prompt = self.corpus.text(rng, 700)
        if tokens:
            prompt = f"{prompt} Contact {' '.join(tokens)} about it."
        answer = "" if failed else self.corpus.text(rng, 350)
        usage_in, usage_out = len(prompt) // 4 + 120, len(answer) // 4
        level = rng.choices([c for c, _ in CLASSES], [w for _, w in CLASSES])[0]
        attributes: dict[str, Any] = {
            sc.OPERATION_NAME: "chat",
            sc.PROVIDER_NAME: provider,
            sc.REQUEST_MODEL: model,
            sc.ENDUSER_ID: user,
            sc.SESSION_ID: session,
            sc.AUDIT_FEATURE: feature,
            sc.AUDIT_CLASSIFICATION: level,
            sc.AUDIT_RETENTION_DAYS: {"public": 365, "internal": 90, "confidential": 30, "restricted": 7}[level],
            sc.AUDIT_REQUEST_ID: f"req-{rng.getrandbits(64):016x}",
            sc.AUDIT_CONTENT_CAPTURED: True,
            sc.SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": f"You are the {feature} assistant."}]),
            sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
            sc.USAGE_INPUT_TOKENS: usage_in,
            sc.AUDIT_PII_DETECTED: bool(tokens),
            sc.AUDIT_REDACTED: bool(tokens),
            sc.AUDIT_SECURITY_SCORE: round(rng.uniform(0.7, 1.0), 3),
        }
        if tokens:
            attributes[sc.AUDIT_PII_TYPES] = sorted({t[1:].split(":")[0] for t in tokens})
            attributes[sc.AUDIT_PII_COUNT] = len(tokens)
            attributes[sc.AUDIT_PII_TOKENS] = tokens
        if failed:
            error_type, message = rng.choice(ERRORS)
            attributes[sc.ERROR_TYPE] = error_type
            status = {"code": "Error", "message": message}
        else:
            attributes.update({
                sc.RESPONSE_MODEL: model,
                sc.RESPONSE_ID: f"chatcmpl-{rng.getrandbits(64):016x}",
                sc.RESPONSE_FINISH_REASONS: ["stop"],
                sc.OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": answer}],
                                                 "finish_reason": "stop"}]),
                sc.USAGE_OUTPUT_TOKENS: usage_out,
                sc.USAGE_COST_USD: round((usage_in * price_in + usage_out * price_out) / 1e6, 8),
            })
            status = {"code": "Unset"}
        resource = {"service.name": f"app-{feature}", "service.version": "1.4.2", "deployment.environment": "prod"}
        doc = {
            "@timestamp": timestamp(start),
            "data_stream": {"type": "traces", "dataset": "genai_audit.otel", "namespace": "default"},
            "trace_id": trace_id,
            "span_id": span_id,
            "name": f"chat {model}",
            "kind": "Client",
            "duration": duration,
            "status": status,
            "attributes": attributes,
            "resource": {"attributes": resource},
            "scope": {"name": "genai_audit", "version": "0.1.0", "attributes": {}},
        }
        events = []
        if failed:
            events.append({
                "@timestamp": timestamp(start + duration),
                "data_stream": {"type": "logs", "dataset": "genai_audit.otel", "namespace": "default"},
                "trace_id": trace_id,
                "span_id": span_id,
                "event_name": "exception",
                "attributes": {"exception.type": attributes[sc.ERROR_TYPE], "exception.message": status["message"],
                               "exception.stacktrace": "Traceback (most recent call last):\n  ...\n"},
                "resource": {"attributes": resource},
            })
        return doc, events


# --- loading ---------------------------------------------------------------------------------------------------

CHUNK = 20_000
#: bumped when the store's row layout changes, so that a cached store is rebuilt (2: metric columns)
SQLITE_LAYOUT = 2


def load_sqlite(path: Path, gen: Generator, progress: bool = True) -> float:
    """Insert every record with the store's schema and row layout; returns seconds."""
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    began = time.perf_counter()
    rows: list[tuple[Any, ...]] = []
    events: list[tuple[str, str, str]] = []
    done = 0

    def flush() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(_INSERT, rows)
        conn.executemany("INSERT INTO span_events (trace_id, span_id, doc) VALUES (?, ?, ?)", events)
        conn.execute("COMMIT")
        rows.clear()
        events.clear()

    for doc, evs in gen.documents():
        rows.append(_row(doc, _ns(doc)))
        events.extend((doc["trace_id"], doc["span_id"], json.dumps(e, separators=(",", ":"))) for e in evs)
        if len(rows) >= CHUNK:
            done += len(rows)
            flush()
            if progress and done % 200_000 == 0:
                _log(f"  sqlite: {done:,} records, {done / (time.perf_counter() - began):,.0f}/s")
    if rows:
        flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - began


def _ns(doc: dict[str, Any]) -> int:
    from genai_audit.forensics.model import parse_timestamp

    return parse_timestamp(doc["@timestamp"]) or 0


def load_elasticsearch(url: str, namespace: str, gen: Generator, progress: bool = True) -> float:
    """Bulk-create every record (and its events) in the namespace's data streams; returns seconds."""
    from elasticsearch import Elasticsearch

    from genai_audit.store.elasticsearch import ElasticsearchSpanExporter

    exporter = ElasticsearchSpanExporter(url, namespace=namespace, integrity=False, env={})
    exporter.install_templates()
    exporter.shutdown()
    client = Elasticsearch(url, request_timeout=600)
    traces, logs = data_stream("traces", namespace), data_stream("logs", namespace)
    _drop_streams(client, namespace)
    began = time.perf_counter()
    errors: list[str] = []
    settings_done = threading.Event()

    def send(body: str) -> None:
        response = client.bulk(operations=body, refresh=False)
        if response.get("errors"):
            for item in response["items"]:
                result = next(iter(item.values()))
                if result.get("status", 200) >= 300 and result.get("status") != 409:
                    errors.append(json.dumps(result.get("error"))[:300])
        if not settings_done.is_set():
            settings_done.set()
            for index in (traces, logs):
                try:
                    client.indices.put_settings(index=index, settings={"index.refresh_interval": "-1",
                                                                       "index.number_of_replicas": 0})
                except Exception:  # noqa: BLE001 - the logs stream exists only once an event was sent
                    pass

    pool = ThreadPoolExecutor(2)
    pending: list[Future[None]] = []
    lines: list[str] = []
    size = 0
    for done, (doc, evs) in enumerate(gen.documents(), 1):
        doc["data_stream"]["namespace"] = namespace
        key = doc["trace_id"] + doc["span_id"]
        lines.append(json.dumps({"create": {"_index": traces, "_id": key}}))
        lines.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        for number, event in enumerate(evs):
            event["data_stream"]["namespace"] = namespace
            lines.append(json.dumps({"create": {"_index": logs, "_id": f"{key}-{number}"}}))
            lines.append(json.dumps(event, separators=(",", ":")))
        size += len(lines[-1]) + 200 * (1 + len(evs))
        if size > 4_000_000:
            pending.append(pool.submit(send, "\n".join(lines) + "\n"))
            lines, size = [], 0
            if len(pending) >= 4:
                pending.pop(0).result()
            if progress and done % 100_000 < 2_500:
                _log(f"  elasticsearch: {done:,} records, {done / (time.perf_counter() - began):,.0f}/s")
    if lines:
        pending.append(pool.submit(send, "\n".join(lines) + "\n"))
    for future in pending:
        future.result()
    pool.shutdown()
    for index in (traces, logs):
        client.indices.put_settings(index=index, settings={"index.refresh_interval": None},
                                    ignore_unavailable=True)
    client.indices.refresh(index=f"{traces},{logs}", ignore_unavailable=True)
    seconds = time.perf_counter() - began
    count = client.count(index=traces)["count"]
    client.close()
    if errors:
        raise SystemExit(f"elasticsearch refused {len(errors)} document(s), e.g. {errors[0]}")
    if count != gen.records:
        raise SystemExit(f"elasticsearch holds {count} records, expected {gen.records}")
    return seconds


def _drop_streams(client: Any, namespace: str) -> None:
    for kind in ("traces", "logs"):
        try:
            client.indices.delete_data_stream(name=data_stream(kind, namespace))
        except Exception:  # noqa: BLE001 - nothing to drop
            pass


# --- measuring -------------------------------------------------------------------------------------------------


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed(fn: Callable[[Any], Any], args: list[Any], warmup: int = 3) -> dict[str, float]:
    for arg in args[:warmup]:
        fn(arg)
    times: list[float] = []
    sizes: list[int] = []
    for arg in args:
        began = time.perf_counter()
        result = fn(arg)
        times.append((time.perf_counter() - began) * 1000)
        sizes.append(result if isinstance(result, int) else 0)
    return {"p50_ms": _pct(times, 0.5), "p95_ms": _pct(times, 0.95), "runs": len(times),
            "mean_results": statistics.fmean(sizes)}


def measure(target: str, env: dict[str, str], gen: Generator, rng: random.Random) -> dict[str, Any]:
    sessions = [gen.session_id(rng.randrange(gen.sessions)) for _ in range(200)]
    users = [rng.choice(gen.users) for _ in range(50)]
    tokens = [rng.choice(gen.user_tokens[rng.choice(gen.users)]) for _ in range(40)]
    tokens += [rng.choice(gen.shared) for _ in range(10)]
    words = [f"{rng.choice(gen.corpus.rare)} {rng.choice(gen.corpus.rare)}" for _ in range(10)]
    words += [rng.choice(gen.corpus.rare) for _ in range(10)]
    week = Filters(since_ns=gen.end_ns - 7 * DAY_NS, until_ns=gen.end_ns)
    out: dict[str, Any] = {}
    with open_store(target, env=env) as store:

        def replay(session: str) -> int:
            timeline = store.timeline(session)
            assert timeline is not None, session
            return len(timeline.entries)

        out["replay"] = timed(replay, sessions)
        out["stats_7d"] = timed(lambda _: len(store.stats(by="feature", filters=week).groups), list(range(20)))
        out["stats_all"] = timed(lambda _: len(store.stats(by="feature").groups), list(range(20)))
        out["by_user"] = timed(lambda u: len(store.by_user(u)), users)
        out["by_token"] = timed(lambda t: len(store.by_token(t)), tokens)
        out["text"] = timed(lambda w: len(store.query(Filters(text=w, limit=100))), words)
    return out


def _subset_env(tmp: Path, namespace: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_AUDIT_")}
    env.update({
        "GENAI_AUDIT_INTEGRITY_DIR": str(tmp / "integrity"),
        "GENAI_AUDIT_SPOOL_DIR": str(tmp / "spool"),
        "GENAI_AUDIT_ERASURE_DIR": str(tmp / "certificates"),
        "GENAI_AUDIT_ES_DEAD_LETTER": str(tmp / "dead-letter.jsonl"),
    })
    if namespace:
        env[ENV_NAMESPACE] = namespace
    return env


def removal(url: str, subset: int, end_ns: int, tmp: Path) -> dict[str, Any]:
    """Retention and erasure, each on a fresh subset in both stores."""
    from genai_audit.forensics.erasure import erase, subject_for
    from genai_audit.forensics.retention import apply_retention
    from genai_audit.processors.policy import load_policy

    out: dict[str, Any] = {}
    # retention: records of the last 90 days; at the generation time restricted (7 d) and
    # confidential (30 d) records older than their period have expired
    ret = Generator(subset, seed=7, end_ns=end_ns)
    db = tmp / "retention.db"
    load_sqlite(db, ret, progress=False)
    load_elasticsearch(url, "benchret", ret, progress=False)
    for kind, target in (("sqlite", str(db)), ("elasticsearch", url)):
        env = _subset_env(tmp, "benchret")
        policy = load_policy(env)
        with open_store(target, env=env) as store:
            began = time.perf_counter()
            report = apply_retention(store, policy, now_ns=end_ns, env=env)
            seconds = time.perf_counter() - began
        out[f"retention_{kind}"] = {"records": subset, "deleted": report.deleted, "seconds": seconds,
                                    "per_s": report.deleted / seconds,
                                    "classes": {c.classification: c.deleted for c in report.classes}}
        _log(f"  retention {kind}: {report.deleted:,} deleted in {seconds:.1f} s")
    # erasure: a subset with 10 users, so one user has about a tenth of the records
    era = Generator(subset, seed=11, end_ns=end_ns, users=10)
    db = tmp / "erasure.db"
    load_sqlite(db, era, progress=False)
    load_elasticsearch(url, "benchera", era, progress=False)
    for kind, target in (("sqlite", str(db)), ("elasticsearch", url)):
        env = _subset_env(tmp, "benchera")
        subject = subject_for(user=era.users[0], env=env)
        began = time.perf_counter()
        report = erase(subject, [target], certificate=tmp / f"certificate-{kind}.json", env=env)
        seconds = time.perf_counter() - began
        result = report.stores[0]
        out[f"erasure_{kind}"] = {"records": subset, "deleted": result.deleted, "seconds": seconds,
                                  "per_s": result.deleted / seconds}
        _log(f"  erasure {kind}: {result.deleted:,} deleted in {seconds:.1f} s")
    return out


# --- report ----------------------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    s, e = results["sqlite"], results["elasticsearch"]
    rows = [
        "| measurement | SQLite p50 / p95 | Elasticsearch p50 / p95 | target | met |",
        "|---|---:|---:|---|---|",
    ]
    names = {
        "replay": "session replay (`timeline`, 200 random sessions)",
        "stats_7d": "stats by feature, last 7 days (20 runs)",
        "stats_all": "stats by feature, all time (20 runs)",
        "by_user": "query by user, all their calls (50 users)",
        "by_token": "query by pseudonym token (50 tokens)",
        "text": "full-text search, limit 100 (20 queries)",
    }
    for key, label in names.items():
        target = met = ""
        if key == "replay":
            target = f"p50 < {TARGETS['sqlite']:.0f} ms SQLite, < {TARGETS['elasticsearch']:.0f} ms ES"
            ok_s = s[key]["p50_ms"] < TARGETS["sqlite"]
            ok_e = e[key]["p50_ms"] < TARGETS["elasticsearch"]
            met = f"SQLite {'met' if ok_s else '**missed**'}, ES {'met' if ok_e else '**missed**'}"
        rows.append(f"| {label} | {s[key]['p50_ms']:,.1f} / {s[key]['p95_ms']:,.1f} ms | "
                    f"{e[key]['p50_ms']:,.1f} / {e[key]['p95_ms']:,.1f} ms | {target} | {met} |")
    rem = results.get("removal", {})
    for what in ("retention", "erasure"):
        if f"{what}_sqlite" in rem:
            a, b = rem[f"{what}_sqlite"], rem[f"{what}_elasticsearch"]
            rows.append(f"| {what} throughput ({a['records']:,}-record subset; {a['deleted']:,} / {b['deleted']:,} "
                        f"deleted) | {a['per_s']:,.0f} records/s ({a['seconds']:.1f} s) | "
                        f"{b['per_s']:,.0f} records/s ({b['seconds']:.1f} s) | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=50_000, help="records in the retention / erasure subsets")
    parser.add_argument("--heap", default="2g", help="Elasticsearch heap (-Xms = -Xmx)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached stores")
    parser.add_argument("--no-removal", action="store_true", help="skip retention and erasure")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ of the checkout
    from tools.es_node import EsNode

    cache = Path("~/.cache/genai-audit/bench-forensics").expanduser() / str(args.records)
    meta_path = cache / "meta.json"
    if args.fresh and cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if "end_ns" not in meta:
        meta = {"end_ns": time.time_ns() // DAY_NS * DAY_NS, "records": args.records}
    gen = Generator(args.records, seed=1, end_ns=meta["end_ns"])
    db = cache / "audit.db"
    results: dict[str, Any] = {"records": args.records, "subset": args.subset, "heap": args.heap}

    if not meta.get("sqlite_loaded") or meta.get("sqlite_layout") != SQLITE_LAYOUT:
        _log(f"loading {args.records:,} records into SQLite {db}")
        meta["sqlite_load_s"] = load_sqlite(db, gen)
        meta["sqlite_loaded"] = True
        meta["sqlite_layout"] = SQLITE_LAYOUT
        meta_path.write_text(json.dumps(meta))
    results["sqlite_load_s"] = meta["sqlite_load_s"]
    results["sqlite_bytes"] = db.stat().st_size

    with EsNode(cache / "es", heap=(args.heap, args.heap), start_timeout=600) as node:
        _log(f"Elasticsearch at {node.url}")
        if not meta.get("es_loaded"):
            _log(f"loading {args.records:,} records into Elasticsearch")
            meta["es_load_s"] = load_elasticsearch(node.url, MAIN_NAMESPACE, gen)
            meta["es_loaded"] = True
            meta_path.write_text(json.dumps(meta))
        results["es_load_s"] = meta["es_load_s"]
        env = _subset_env(cache, MAIN_NAMESPACE)
        for kind, target in (("sqlite", str(db)), ("elasticsearch", node.url)):
            _log(f"measuring {kind}")
            results[kind] = measure(target, env, gen, random.Random(42))
        if not args.no_removal:
            _log(f"retention and erasure on {args.subset:,}-record subsets")
            with tempfile.TemporaryDirectory(prefix="bench-forensics-") as tmp:
                results["removal"] = removal(node.url, args.subset, meta["end_ns"], Path(tmp))
            from elasticsearch import Elasticsearch

            with Elasticsearch(node.url) as client:
                for namespace in ("benchret", "benchera"):
                    _drop_streams(client, namespace)

    print(f"\n{args.records:,} records; SQLite file {results['sqlite_bytes'] / 1e9:.2f} GB, loaded in "
          f"{results['sqlite_load_s']:.0f} s ({args.records / results['sqlite_load_s']:,.0f}/s); Elasticsearch "
          f"loaded in {results['es_load_s']:.0f} s ({args.records / results['es_load_s']:,.0f}/s), heap {args.heap}\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
