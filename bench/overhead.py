"""Per-call overhead of OpenAI auto-instrumentations: ours vs. the peers.

Measures, in microseconds per ``client.chat.completions.create(...)`` call, what
each instrumentation adds on top of the bare openai SDK, non-streaming and
streaming (``stream=True``, the whole stream consumed), with message-content
capture ON everywhere.  The HTTP layer is an in-process mock transport, so no
network, socket or server thread adds noise.  See ``bench/README-overhead.md``.

Each implementation is installed in its own throwaway virtualenv (created under
``${XDG_CACHE_HOME:-~/.cache}/genai-audit/bench-venvs/<impl>`` and reused on later
runs; ``--fresh`` recreates them), then ``bench/_overhead_worker.py`` runs inside
that venv, once per mode, timing the bare client and then the instrumented one
in the same process.  Overhead = instrumented - bare.  The interleaved rounds
(bare and instrumented batches in turn) then run in ``--cycles`` cycles, each
timing every implementation once, in alternating order, so that ours and a peer
can be compared within a cycle, on a host of about the same speed.

Usage::

    python bench/overhead.py                      # all, 3000 calls x 5 reps
    python bench/overhead.py --calls 2000 --reps 5 --json out.json
    python bench/overhead.py --only ours,openllmetry
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ of the checkout
from tools.dists import editable_args

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORKER = BENCH_DIR / "_overhead_worker.py"
MODES = ("nonstream", "stream")
MARKER_FILE = ".bench-install.json"
# Environment variables that would change what an instrumentation does; the
# worker gets a clean slate and sets the ones it needs itself.
SCRUBBED_ENV_PREFIXES = ("OTEL_", "TRACELOOP_", "OPENLIT_", "GENAI_AUDIT_")


@dataclass(frozen=True)
class Impl:
    """One row of the table: what to pip-install and how to call it."""

    name: str
    label: str
    dists: tuple[str, ...] = ()  # PyPI distributions to try, in order of preference
    editable: Path | None = None  # ``pip install -e`` this path instead


IMPLS: dict[str, Impl] = {
    i.name: i
    for i in (
        Impl("bare", "bare openai (A/A noise check)"),
        Impl("ours", "genai-audit (ours)", editable=REPO_ROOT),
        Impl("openllmetry", "OpenLLMetry", dists=("opentelemetry-instrumentation-openai",)),
        Impl(
            "otel-official",
            "OpenTelemetry official",
            dists=("opentelemetry-instrumentation-genai-openai", "opentelemetry-instrumentation-openai-v2"),
        ),
        Impl("openlit", "OpenLIT", dists=("openlit",)),
    )
}


@dataclass
class InstallResult:
    ok: bool
    python: Path | None = None
    dist: str | None = None
    requirements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    reused: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "python": str(self.python) if self.python else None,
            "dist": self.dist,
            "requirements": self.requirements,
            "notes": self.notes,
            "error": self.error,
            "reused": self.reused,
            "seconds": round(self.seconds, 1),
        }


def log(msg: str) -> None:
    print(f"[overhead] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# virtualenvs
# --------------------------------------------------------------------------


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(
    cmd: Sequence[str | Path], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def pip_failure_reason(proc: subprocess.CompletedProcess[str]) -> str:
    """The informative lines of a failed pip run ("conflict is caused by ..." etc.)."""
    text = proc.stderr + proc.stdout
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    m = re.search(r"The conflict is caused by:\n((?:\s+.+\n?){1,4})", text)
    if m:
        return "conflict: " + "; ".join(x.strip() for x in m.group(1).splitlines() if x.strip())
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return " | ".join(errors[-2:] or lines[-2:])[:600]


def detect_versions(dev_venv: Path) -> dict[str, str | None]:
    """openai / opentelemetry-sdk versions of the dev venv (or of this interpreter)."""
    script = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        "for n in ('openai', 'opentelemetry-sdk'):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    for py in (venv_python(dev_venv), Path(sys.executable)):
        if not py.exists():
            continue
        try:
            proc = run([py, "-c", script], timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            found: dict[str, str | None] = json.loads(proc.stdout)
            if found.get("openai"):
                return found
    return {"openai": None, "opentelemetry-sdk": None}


def newest_version(py: Path, dist: str) -> tuple[str | None, str]:
    """Newest version of ``dist`` on the index (pre-releases only if there is nothing else).

    Not pip's unconstrained choice: with openlit, pip's resolver backtracks to an
    older release although the newest one installs fine once pinned.
    """
    why = ""
    for extra in ([], ["--pre"]):
        proc = run([py, "-m", "pip", "index", "versions", *extra, dist], timeout=300)
        m = re.search(rf"^{re.escape(dist)} \(([^)]+)\)", proc.stdout, re.IGNORECASE | re.MULTILINE)
        if proc.returncode == 0 and m:
            return m.group(1), ""
        why = pip_failure_reason(proc)
    return None, why


def install_key(impl: Impl, pins: dict[str, str | None], python: str) -> str:
    parts: dict[str, Any] = {"impl": impl.name, "dists": impl.dists, "pins": pins, "python": python}
    if impl.editable is not None:
        h = hashlib.sha256()
        for name in ("pyproject.toml", "setup.py", "setup.cfg"):
            f = impl.editable / name
            if f.exists():
                h.update(f.read_bytes())
        parts["editable"] = [str(impl.editable), h.hexdigest()[:16]]
    return json.dumps(parts, sort_keys=True)


def ensure_venv(impl: Impl, root: Path, pins: dict[str, str | None], base_python: str, fresh: bool) -> InstallResult:
    """Create (or reuse) the venv of ``impl`` and install it there, relaxing pins if needed."""
    t0 = time.monotonic()
    venv = root / impl.name
    py = venv_python(venv)
    key = install_key(impl, pins, base_python)
    marker = venv / MARKER_FILE
    if not fresh and py.exists() and marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("key") == key and saved.get("ok"):
            res = InstallResult(
                ok=True,
                python=py,
                reused=True,
                dist=saved.get("dist"),
                requirements=saved.get("requirements", []),
                notes=saved.get("notes", []),
            )
            res.seconds = time.monotonic() - t0
            return res
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log(f"{impl.name}: creating {venv}")
    try:
        res = _install(impl, venv, pins, base_python)
    except subprocess.TimeoutExpired as exc:
        res = InstallResult(ok=False, error=f"timed out: {' '.join(map(str, exc.cmd))[:200]}")
    except OSError as exc:
        res = InstallResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    res.seconds = time.monotonic() - t0
    if res.ok:
        marker.write_text(json.dumps({"key": key, **res.to_json()}, indent=2))
    return res


def _install(impl: Impl, venv: Path, pins: dict[str, str | None], base_python: str) -> InstallResult:
    proc = run([base_python, "-m", "venv", venv], timeout=300)
    if proc.returncode != 0:
        return InstallResult(ok=False, error="venv: " + pip_failure_reason(proc))
    py = venv_python(venv)
    # The pip bundled with older Pythons gives up on openlit's deep dependency tree.
    proc = run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], timeout=600)
    if proc.returncode != 0:
        return InstallResult(ok=False, error="pip upgrade: " + pip_failure_reason(proc))

    openai_pin = f"openai=={pins['openai']}" if pins.get("openai") else "openai"
    sdk_pin = f"opentelemetry-sdk=={pins['opentelemetry-sdk']}" if pins.get("opentelemetry-sdk") else None
    notes: list[str] = []

    if impl.editable is not None:
        targets: list[tuple[str | None, list[str]]] = [(None, editable_args(impl.editable))]
    elif impl.dists:
        targets = []
        for dist in impl.dists:
            version, why = newest_version(py, dist)
            if version is None:
                notes.append(f"{dist}: not installable ({why})")
                continue
            targets.append((dist, [f"{dist}=={version}"]))
        if not targets:
            return InstallResult(ok=False, notes=notes, error="; ".join(notes))
    else:
        targets = [(None, [])]

    for target_dist, target in targets:
        # Newest peer with the dev venv's openai / SDK if it allows, else relax the
        # pins one at a time, and last let pip choose the peer version as well.
        attempts = [[*target, openai_pin, *([sdk_pin] if sdk_pin else [])], [*target, openai_pin]]
        if sdk_pin:
            attempts.append([*target, sdk_pin])
        attempts.append([*target, "openai"])
        if target_dist is not None:
            attempts.append([target_dist, "openai"])
        seen: set[tuple[str, ...]] = set()
        for reqs in attempts:
            if tuple(reqs) in seen:
                continue
            seen.add(tuple(reqs))
            log(f"{impl.name}: pip install {' '.join(reqs)}")
            proc = run([py, "-m", "pip", "install", "--progress-bar", "off", *reqs], timeout=1800)
            if proc.returncode == 0:
                return InstallResult(ok=True, python=py, dist=target_dist, requirements=reqs, notes=notes)
            reason = pip_failure_reason(proc)
            notes.append(f"`{' '.join(reqs)}` failed: {reason}")
            log(f"{impl.name}: failed: {reason}")
    return InstallResult(ok=False, python=py, notes=notes, error=notes[-1] if notes else "install failed")


# --------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_worker(
    py: Path,
    impl: str,
    mode: str,
    args: argparse.Namespace,
    *,
    calls: int | None = None,
    reps: int | None = None,
    warmup: int | None = None,
    rounds: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    calls = args.calls if calls is None else calls
    reps = args.reps if reps is None else reps
    warmup = args.warmup if warmup is None else warmup
    rounds = args.rounds if rounds is None else rounds
    cmd = [py, WORKER, "--impl", impl, "--mode", mode, "--calls", str(calls), "--reps", str(reps)]
    cmd += ["--warmup", str(warmup), "--rounds", str(rounds), "--batch", str(args.batch)]
    if not quiet:
        log(f"{impl}/{mode}: running {reps} x {calls} calls (+{warmup} warm-up), bare then instrumented")
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="overhead-") as cwd:
            proc = subprocess.run(
                [str(c) for c in cmd],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                env=worker_env(),
                cwd=cwd,
                check=False,
            )
    except subprocess.TimeoutExpired:
        return {"fatal": f"worker timed out after {args.timeout:.0f}s"}
    except OSError as exc:
        return {"fatal": f"{type(exc).__name__}: {exc}"}
    result: dict[str, Any] | None = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
    stderr_tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-6:]
    if result is None:
        return {"fatal": f"worker exited {proc.returncode} without a result: {' | '.join(stderr_tail)[:500]}"}
    result["seconds"] = round(time.monotonic() - t0, 1)
    if proc.returncode != 0 or result.get("fatal"):
        result.setdefault("fatal", f"worker exited {proc.returncode}")
        result["stderr_tail"] = stderr_tail
    for err in result.get("errors", []):
        log(f"ERROR {impl}/{mode}: {err}")
    if result.get("fatal"):
        log(f"FAILED {impl}/{mode}: {result['fatal']}")
    elif not quiet:
        inter = result.get("interleaved")
        inter_text = f", interleaved {inter['overhead_cpu_us']:.1f} us/call cpu" if inter else ""
        log(
            f"{impl}/{mode}: sequential overhead {result['overhead_us']:.1f} us/call wall, "
            f"{result['overhead_cpu_us']:.1f} us/call cpu{inter_text} ({result['seconds']}s)"
        )
    return result


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _ratio(x: float | None, ours: float | None) -> str:
    if x is None or ours is None or ours <= 0:
        return "n/a"
    return f"{x / ours:.1f}x"


def _ok(res: dict[str, Any] | None) -> bool:
    return res is not None and not res.get("fatal") and "overhead_us" in res


def row_notes(
    name: str, install: InstallResult, results: dict[str, dict[str, Any]], pins: dict[str, str | None]
) -> list[str]:
    notes: list[str] = []
    if not install.ok:
        return [f"install failed: {install.error}"]
    for mode, res in results.items():
        if res.get("fatal"):
            notes.append(f"{mode}: FAILED: {res['fatal']}")
            continue
        for err in res.get("errors", []):
            notes.append(f"{mode}: ERROR: {err}")
        if name == "bare":
            continue
        last = res.get("last_span", {})
        calls = res.get("expected_spans") or 1
        if not last.get("input_content_anywhere") or not last.get("output_content_anywhere"):
            notes.append(
                f"{mode}: content NOT captured (in={last.get('input_content_anywhere')}, "
                f"out={last.get('output_content_anywhere')})"
            )
        if mode == "stream" and not last.get("usage_recorded"):
            notes.append("stream usage NOT recorded")
        if res.get("log_records"):
            notes.append(f"{mode}: {res['log_records'] / calls:.0f} log record(s)/call")
        if mode == "stream" and last.get("span_events"):
            notes.append(f"stream: {last['span_events']} span events/call")
        if res.get("requests_with_traceparent"):
            notes.append(f"{mode}: injects traceparent header")
        rejected = res.get("interleaved_rejected")
        if rejected:
            notes.append(f"uninstrument() then instrument() does not switch it cleanly ({rejected['errors'][0]})")
    openai_v = next((r.get("versions", {}).get("openai") for r in results.values() if r.get("versions")), None)
    if pins.get("openai") and openai_v and openai_v != pins["openai"]:
        why = next(
            (m.group(0) for n in install.notes for m in [re.search(r"\S+ \S+ depends on openai[^;]*", n)] if m), ""
        )
        because = f" ({why})" if why else ""
        notes.append(f"cannot use openai {pins['openai']}{because}: measured with openai {openai_v}")
    sdk_v = next((r.get("versions", {}).get("opentelemetry-sdk") for r in results.values() if r.get("versions")), None)
    if pins.get("opentelemetry-sdk") and sdk_v and sdk_v != pins["opentelemetry-sdk"]:
        notes.append(f"otel sdk {sdk_v}")
    # dedupe, keep order
    return list(dict.fromkeys(notes))


def split(total: int, parts: int, minimum: int = 1) -> list[int]:
    """``total`` spread over ``parts`` as evenly as integers allow, each at least ``minimum``."""
    base, extra = divmod(total, parts)
    return [max(minimum, base + (i < extra)) for i in range(parts)]


def short_run_samples(
    py: Path, impl: str, mode: str, args: argparse.Namespace, runs: int
) -> tuple[list[float], list[float]] | str:
    """For an instrumentation that cannot be switched off and on again in one process: short workers.

    Each makes one bare and one instrumented phase of ``3 x --batch`` calls seconds apart, close enough in
    time that drift moves both alike, as the interleaved rounds do. Returns the overheads and the bare
    CPU times, one per worker, or why a worker failed.
    """
    calls = max(30, 3 * args.batch)
    diffs: list[float] = []
    bares: list[float] = []
    for _ in range(runs):
        res = run_worker(py, impl, mode, args, calls=calls, reps=1, warmup=min(args.warmup, 50), rounds=0, quiet=True)
        if not _ok(res):
            return str(res.get("fatal") or "short run failed")
        diffs.append(float(res["overhead_cpu_us"]))
        bares.append(float(res["bare"]["median_cpu_us"]))
    return diffs, bares


def _percent(diffs: Sequence[float], bares: Sequence[float]) -> list[float]:
    return [100.0 * d / b for d, b in zip(diffs, bares) if b > 0]


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def run_cycles(
    names: list[str], pythons: dict[str, Path], mode: str, args: argparse.Namespace
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Time every implementation in ``names`` once per cycle, the order reversed from one cycle to the next.

    A cycle takes a few minutes at most, so its implementations are measured on a host of about the same
    speed; comparing them within a cycle and then across cycles keeps drift between cycles out of the
    comparison. Each run is a worker of ``--rounds / cycles`` interleaved rounds (no sequential phases),
    or ``--short-runs / cycles`` (at least 2) short workers for an implementation that cannot be switched
    off and on in one process, found out in the first cycle it is tried. Returns the per-cycle entries
    and, per implementation that could not be switched, the worker's report of why.
    """
    cycles = max(1, min(args.cycles, args.rounds))
    rounds = split(args.rounds, cycles)
    shorts = split(args.short_runs, cycles, minimum=2)
    short_only: dict[str, dict[str, Any]] = {}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    t_start = time.monotonic()
    for c in range(cycles):
        order = names if c % 2 == 0 else names[::-1]
        log(f"{mode}: cycle {c + 1}/{cycles}, order {', '.join(order)}")
        for position, name in enumerate(order):
            entry: dict[str, Any] = {"cycle": c + 1, "position": position}
            entry["start_s"] = round(time.monotonic() - t_start, 1)
            t0 = time.monotonic()
            if name not in short_only:
                res = run_worker(pythons[name], name, mode, args, reps=0, rounds=rounds[c], quiet=True)
                if res.get("fatal"):
                    entry["error"] = str(res["fatal"])
                    out[name].append(entry)
                    continue
                entry["errors"] = res.get("errors", [])
                inter = res.get("interleaved")
                if inter:
                    entry.update(method="interleaved", rounds=inter["rounds_run"], batch=inter["batch"])
                    entry["overhead_cpu_us"] = inter["diffs_cpu_us"]
                    entry["bare_cpu_us"] = inter["bare_rounds_cpu_us"]
                else:
                    short_only[name] = res.get("interleaved_rejected") or {"errors": ["no off switch"]}
                    log(f"{name}/{mode}: cannot be switched in one process; short runs from now on")
            if name in short_only:
                got = short_run_samples(pythons[name], name, mode, args, shorts[c])
                if isinstance(got, str):
                    entry["error"] = got
                    out[name].append(entry)
                    continue
                entry.update(method="short runs", runs=len(got[0]), calls=max(30, 3 * args.batch))
                entry["overhead_cpu_us"], entry["bare_cpu_us"] = got
            entry["median_cpu_us"] = statistics.median(entry["overhead_cpu_us"])
            entry["bare_median_cpu_us"] = statistics.median(entry["bare_cpu_us"])
            percent = _percent(entry["overhead_cpu_us"], entry["bare_cpu_us"])
            if percent:
                entry["percent_of_bare_median"] = statistics.median(percent)
            entry["seconds"] = round(time.monotonic() - t0, 1)
            out[name].append(entry)
            log(
                f"{name}/{mode} cycle {c + 1}: {entry['median_cpu_us']:.1f} us/call cpu over bare "
                f"{entry['bare_median_cpu_us']:.0f} ({entry['method']}, {len(entry['overhead_cpu_us'])} samples, "
                f"{entry['seconds']}s)"
            )
    return out, short_only


def pooled_summary(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One implementation's samples of all its cycles together: median and quartiles."""
    good = [e for e in entries if "overhead_cpu_us" in e]
    if not good:
        return None
    diffs = [x for e in good for x in e["overhead_cpu_us"]]
    bares = [x for e in good for x in e["bare_cpu_us"]]
    methods = {e["method"] for e in good}
    q1, med, q3 = _quartiles(diffs)
    pct = _percent(diffs, bares)
    pq1, pmed, pq3 = _quartiles(pct) if pct else (None, None, None)
    return {
        "method": methods.pop() if len(methods) == 1 else "mixed",
        "cycles": len(good),
        "cycles_failed": len(entries) - len(good),
        "samples": len(diffs),
        "overhead_cpu_us": med,
        "overhead_cpu_q1_us": q1,
        "overhead_cpu_q3_us": q3,
        "bare_cpu_us": statistics.median(bares),
        "percent_of_bare": pmed,
        "percent_of_bare_q1": pq1,
        "percent_of_bare_q3": pq3,
    }


def paired_ratio(
    ours: list[dict[str, Any]], peer: list[dict[str, Any]], key: str = "median_cpu_us"
) -> dict[str, Any] | None:
    """Ours' overhead ÷ the peer's, cycle by cycle (``key``: the median of each cycle's samples, in µs or
    in percent of the bare call).

    A cycle where either failed, or where the peer's overhead is not above zero, gives no ratio.
    """
    theirs = {e["cycle"]: e[key] for e in peer if key in e}
    ratios = [e[key] / theirs[e["cycle"]] for e in ours if key in e and theirs.get(e["cycle"], 0) > 0]
    if not ratios:
        return None
    return {
        "ratios": [round(r, 4) for r in ratios],
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "cycles": len(ratios),
        "of_cycles": max(len(ours), len(peer)),
    }


#: calls per counted run, (fewer, more) by mode: the difference is what one call costs
COUNT_CALLS = {"nonstream": (10, 40), "stream": (4, 16)}


def count_calls(mode: str, scale: int = 1) -> tuple[int, int]:
    """The counted runs' calls for ``mode``, each multiplied by ``scale`` (``--count-scale``)."""
    few, many = COUNT_CALLS[mode]
    return few * scale, many * scale


def count_instructions(py: Path, impl: str, mode: str, calls: int, timeout: float) -> int:
    """Instructions valgrind's callgrind counts for a worker making ``calls`` calls."""
    with tempfile.TemporaryDirectory(prefix="overhead-count-") as cwd:
        tool = ["--tool=callgrind", "--callgrind-out-file=/dev/null"]
        cmd = ["valgrind", *tool, str(py), str(WORKER), "--impl", impl, "--mode", mode, "--count", str(calls)]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**worker_env(), "PYTHONHASHSEED": "0"},
            cwd=cwd,
            check=False,
        )
    found = re.search(r"Collected : (\d+)", proc.stderr) if proc.returncode == 0 else None
    if found is None:
        tail = " | ".join(ln for ln in proc.stderr.splitlines()[-4:] if ln.strip())
        raise RuntimeError(f"{impl}/{mode} x{calls} under callgrind exited {proc.returncode}: {tail[:400]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    wanted = 0 if impl == "bare" else calls
    if report.get("spans") != wanted:  # an instrumented run that made no spans would count nothing
        raise RuntimeError(f"{impl}/{mode} x{calls} exported {report.get('spans')} spans, not {wanted}")
    return int(found.group(1))


def instruction_counts(
    pythons: dict[str, Path], modes: list[str], timeout: float, scale: int = 1
) -> dict[str, dict[str, Any]]:
    """Instructions per call, bare and instrumented, by implementation and mode (each in its own venv).

    The count does not follow what else the machine is doing, so the runs go two at a time; it moves a
    little between runs (up to about 0.5 % of a bare call), so compare several.
    """
    jobs: dict[tuple[str, str, str, int], Any] = {}
    out: dict[str, dict[str, Any]] = {name: {} for name in pythons}
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for name, py in pythons.items():
            for mode in modes:
                for impl in {"bare", name}:
                    for calls in count_calls(mode, scale):
                        jobs[name, mode, impl, calls] = pool.submit(count_instructions, py, impl, mode, calls, timeout)
        for name in pythons:
            for mode in modes:
                few, many = count_calls(mode, scale)
                try:
                    per_call = {
                        impl: (jobs[name, mode, impl, many].result() - jobs[name, mode, impl, few].result())
                        / (many - few)
                        for impl in {"bare", name}
                    }
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    out[name][mode] = {"error": str(exc)}
                    log(f"instructions {name}/{mode}: FAILED: {exc}")
                    continue
                out[name][mode] = {
                    "bare": per_call["bare"],
                    "instrumented": per_call[name],
                    "overhead": per_call[name] - per_call["bare"],
                }
                log(f"instructions {name}/{mode}: {out[name][mode]['overhead'] / 1e6:.3f} M per call over bare")
    return out


def instruction_table(rows: list[dict[str, Any]], counts: dict[str, dict[str, Any]], modes: list[str]) -> str:
    ours = counts.get("ours", {})
    head = (
        "| implementation | "
        + " | ".join(f"{mode} overhead, M instructions per call | × ours" for mode in modes)
        + " | bare, M instructions per call |"
    )
    lines = [head, "|" + "---|" * (2 * len(modes) + 2)]
    for r in rows:
        found = counts.get(r["impl"])
        if found is None:
            continue
        cells = [r["label"]]
        for mode in modes:
            entry = found.get(mode, {})
            if "overhead" not in entry:
                cells.extend([entry.get("error", "—")[:120], "—"])
                continue
            cells.append(f"{entry['overhead'] / 1e6:.3f}")
            base = ours.get(mode, {}).get("overhead")
            cells.append("—" if r["impl"] in ("ours", "bare") or not base else f"{entry['overhead'] / base:.2f}x")
        cells.append(" / ".join(f"{found.get(m, {}).get('bare', float('nan')) / 1e6:.2f}" for m in modes))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(res: dict[str, Any] | None) -> float | None:
    """The overhead a row is compared on: the interleaved CPU median, else the sequential CPU difference."""
    if not _ok(res):
        return None
    assert res is not None
    inter = res.get("interleaved")
    return float(inter["overhead_cpu_us"]) if inter else float(res["overhead_cpu_us"])


MODE_LABELS = {"nonstream": "non-stream", "stream": "stream"}


def _range(p: dict[str, Any] | None) -> str:
    if p is None:
        return "n/a"
    of = f", {p['cycles']} of {p['of_cycles']} cycles" if p["cycles"] < p["of_cycles"] else ""
    return f"{p['median']:.2f} ({p['min']:.2f}–{p['max']:.2f}{of})"


def build_table(rows: list[dict[str, Any]]) -> str:
    ours = next((r for r in rows if r["impl"] == "ours"), None)

    def result(r: dict[str, Any] | None, mode: str) -> dict[str, Any] | None:
        return None if r is None else r["results"].get(mode)

    head = "| implementation | version | openai | " + " | ".join(
        f"{MODE_LABELS[m]} overhead µs/call, CPU, interleaved (q1–q3) | % of bare | × ours "
        f"| ours ÷ this, paired by cycle (min–max) | {MODE_LABELS[m]}, sequential phases (wall / cpu)"
        for m in MODES
    )
    head += " | bare µs/call (non-stream / stream) | notes |"
    lines = [head, "|" + "---|" * (5 + 5 * len(MODES))]
    for r in rows:
        cells = [r["label"], r["version"] or "—", r["openai"] or "—"]
        for mode in MODES:
            res = result(r, mode)
            if res is None:  # a mode left out with --modes
                cells.extend(["not run", "—", "—", "—", "not run"])
                continue
            if not _ok(res):
                cells.extend(["error", "—", "—", "—", "error"])
                continue
            assert res is not None
            inter = res.get("interleaved")
            if inter:
                mark = " †" if inter.get("method") != "interleaved" else ""
                cells.append(
                    f"{_fmt(inter['overhead_cpu_us'], 1)} ({_fmt(inter['overhead_cpu_q1_us'], 0)}–"
                    f"{_fmt(inter['overhead_cpu_q3_us'], 0)}){mark}"
                )
                pct = inter.get("percent_of_bare")
                cells.append("n/a" if pct is None else f"{pct:.1f} %")
            else:
                cells.extend(["not timed in rounds: sequential " + _fmt(res["overhead_cpu_us"], 1), "n/a"])
            if r["impl"] in ("ours", "bare"):
                cells.extend(["—", "—"])
            else:
                cells.append(_ratio(headline(res), headline(result(ours, mode))))
                cells.append(_range(res.get("paired_with_ours")))
            cells.append(f"{_fmt(res['overhead_us'], 1)} / {_fmt(res['overhead_cpu_us'], 1)}")
        bare = [r["results"].get(m, {}).get("bare", {}).get("median_us") for m in MODES]
        cells.append(" / ".join(_fmt(b, 0) for b in bare))
        cells.append("; ".join(r["notes"]).replace("|", "\\|") or "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_to_best(rows: list[dict[str, Any]], modes: list[str], target: float = 0.5) -> dict[str, dict[str, Any]]:
    """Per mode: the peer with the lowest overhead, and ours ÷ it paired by cycle, against ``target``."""
    out: dict[str, dict[str, Any]] = {}
    ours = next((r for r in rows if r["impl"] == "ours"), None)
    for mode in modes:
        peers = [
            (h, r)
            for r in rows
            if r["impl"] not in ("bare", "ours")
            for h in [headline(r["results"].get(mode))]
            if h is not None and h > 0
        ]
        if not peers:
            continue
        best_value, best = min(peers, key=lambda x: x[0])
        res = best["results"][mode]
        entry: dict[str, Any] = {"best_peer": best["impl"], "label": best["label"], "overhead_cpu_us": best_value}
        paired = res.get("paired_with_ours")
        ours_value = headline(ours["results"].get(mode)) if ours else None
        if paired is not None:
            entry.update(ratio=paired["median"], how="paired by cycle", paired=paired)
            if res.get("paired_with_ours_percent"):
                entry["paired_percent"] = res["paired_with_ours_percent"]
        elif ours_value is not None:
            entry.update(ratio=ours_value / best_value, how="unpaired (no cycles)")
        if "ratio" in entry:
            entry["meets_target"] = entry["ratio"] <= target
        worst = max(
            (
                (r, r["results"][mode]["paired_with_ours"])
                for _, r in peers
                if r["results"][mode].get("paired_with_ours")
            ),
            key=lambda x: x[1]["median"],
            default=None,
        )
        if worst is not None and worst[0] is not best and paired is not None and worst[1]["median"] > paired["median"]:
            entry["higher_paired"] = {"peer": worst[0]["impl"], "label": worst[0]["label"], **worst[1]}
        out[mode] = entry
    return out


def best_lines(comparison: dict[str, dict[str, Any]], target: float = 0.5) -> list[str]:
    lines = []
    for mode, c in comparison.items():
        text = f"Best peer {MODE_LABELS[mode]}: {c['label']} ({c['overhead_cpu_us']:,.1f} µs/call); "
        if "ratio" not in c:
            lines.append(text + "ours not measured.")
            continue
        shown = _range(c["paired"]) if "paired" in c else f"{c['ratio']:.2f}"
        verdict = "meets" if c["meets_target"] else "does not meet"
        text += f"ours ÷ it, {c['how']}: {shown}: {verdict} ≤ {target}"
        p = c.get("paired")
        if p is not None and p["min"] <= target < p["max"]:
            text += f" (by the median; single cycles fall on both sides of {target})"
        if "paired_percent" in c:
            text += f"; the same with each overhead as % of its bare call: {_range(c['paired_percent'])}"
        if "higher_paired" in c:
            h = c["higher_paired"]
            text += f"; against {h['label']} the paired ratio is higher: {_range(h)}"
        lines.append(text + ".")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Per-call overhead of OpenAI instrumentations (ours vs peers).")
    ap.add_argument("--calls", type=int, default=3000, help="timed calls per repetition (default 3000)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions; the median is reported (default 5)")
    ap.add_argument("--warmup", type=int, default=200, help="untimed warm-up calls per phase (default 200)")
    ap.add_argument(
        "--rounds", type=int, default=40, help="interleaved bare/instrumented rounds per mode (default 40; 0: none)"
    )
    ap.add_argument("--batch", type=int, default=50, help="calls per batch in an interleaved round (default 50)")
    ap.add_argument(
        "--short-runs",
        type=int,
        default=12,
        help="workers of short phases for implementations that cannot be switched off and on (default 12)",
    )
    ap.add_argument(
        "--cycles",
        type=int,
        default=4,
        help="cycles the rounds and short runs are split into, every implementation once per cycle in "
        "alternating order, so that ratios can be taken within a cycle (default 4)",
    )
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per call under valgrind (callgrind): independent of the load",
    )
    ap.add_argument(
        "--count-scale",
        type=int,
        default=1,
        metavar="K",
        help="with --instructions: K times the counted calls (10 and 40 non-streaming, 4 and 16 streaming), so "
        "that what happens once in a run weighs 1/K as much on the per-call figure (runs take about K times as long)",
    )
    ap.add_argument("--no-timing", action="store_true", help="skip the timed runs (with --instructions: count only)")
    ap.add_argument("--only", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    ap.add_argument("--modes", default=",".join(MODES), help="nonstream,stream (default both)")
    ap.add_argument("--json", dest="json_out", type=Path, help="also write all raw results to this file")
    ap.add_argument("--fresh", action="store_true", help="delete and recreate the venvs")
    ap.add_argument("--venv-root", type=Path, default=cache_home() / "genai-audit" / "bench-venvs")
    ap.add_argument(
        "--dev-venv",
        type=Path,
        default=cache_home() / "genai-audit" / "dev",
        help="venv whose openai / opentelemetry-sdk versions are pinned in every peer venv",
    )
    ap.add_argument("--openai-version", help="override the openai version to pin")
    ap.add_argument("--otel-sdk-version", help="override the opentelemetry-sdk version to pin")
    ap.add_argument("--python", default=sys.executable, help="interpreter the venvs are created from")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per worker run")
    args = ap.parse_args(argv)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in IMPLS]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown or not only or any(m not in MODES for m in modes):
        ap.error(f"--only takes {','.join(IMPLS)}; --modes takes {','.join(MODES)}")
    if args.cycles < 1 or args.reps < 1 or args.rounds < 0:
        ap.error("--cycles and --reps take 1 or more, --rounds 0 or more")
    if args.count_scale < 1:
        ap.error("--count-scale takes 1 or more")

    detected = detect_versions(args.dev_venv)
    pins: dict[str, str | None] = {
        "openai": args.openai_version or detected.get("openai"),
        "opentelemetry-sdk": args.otel_sdk_version or detected.get("opentelemetry-sdk"),
    }
    base_py = run([args.python, "-c", "import sys; print(sys.version.split()[0])"], timeout=60).stdout.strip()
    log(f"pins from {args.dev_venv}: {pins}; venvs under {args.venv_root} (python {base_py})")

    started = time.time()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    installs: dict[str, InstallResult] = {}
    pythons: dict[str, Path] = {}
    for name in only:
        install = ensure_venv(IMPLS[name], args.venv_root, pins, args.python, args.fresh)
        installs[name] = install
        if install.ok and install.python is not None:
            pythons[name] = install.python
            log(f"{name}: venv {'reused' if install.reused else 'installed'} ({' '.join(install.requirements)})")
        else:
            log(f"{name}: install FAILED: {install.error}")

    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in only}
    cycles_run = max(1, min(args.cycles, args.rounds)) if args.rounds > 0 else 0
    for mode in modes if not args.no_timing else ():
        # the sequential phases, one worker per implementation; then the rounds, in cycles
        for name in pythons:
            results[name][mode] = run_worker(pythons[name], name, mode, args, rounds=0)
        timed = [name for name in pythons if _ok(results[name][mode])]
        if args.rounds <= 0 or not timed:
            continue
        per_cycle, not_switchable = run_cycles(timed, pythons, mode, args)
        for name in timed:
            res = results[name][mode]
            res["cycles"] = per_cycle[name]
            pooled = pooled_summary(per_cycle[name])
            if pooled is not None:
                res["interleaved"] = pooled
            if name in not_switchable and not_switchable[name].get("errors") != ["no off switch"]:
                res["interleaved_rejected"] = not_switchable[name]
            for e in per_cycle[name]:
                if e.get("error"):
                    res.setdefault("errors", []).append(f"cycle {e['cycle']}: {e['error']}")
                for err in e.get("errors", []):
                    res.setdefault("errors", []).append(f"cycle {e['cycle']}: {err}")
            if name not in ("ours", "bare") and "ours" in per_cycle:
                res["paired_with_ours"] = paired_ratio(per_cycle["ours"], per_cycle[name])
                res["paired_with_ours_percent"] = paired_ratio(
                    per_cycle["ours"], per_cycle[name], key="percent_of_bare_median"
                )

    rows: list[dict[str, Any]] = []
    for name in only:
        install = installs[name]
        first = next((r for r in results[name].values() if r.get("versions")), {})
        version = (first.get("instrumentation") or {}).get("version")
        if name == "ours" and version:
            sha = run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"], timeout=30).stdout.strip()
            version = f"{version} (git {sha})" if sha else version
        rows.append(
            {
                "impl": name,
                "label": IMPLS[name].label,
                "version": version,
                "openai": (first.get("versions") or {}).get("openai"),
                "otel_sdk": (first.get("versions") or {}).get("opentelemetry-sdk"),
                "http_package": first.get("http_package"),
                "install": install.to_json(),
                "results": results[name],
                "notes": row_notes(name, install, results[name], pins),
            }
        )
    comparison = compare_to_best(rows, modes) if not args.no_timing else {}

    counts: dict[str, dict[str, Any]] = {}
    if args.instructions:
        if shutil.which("valgrind") is None:
            log("--instructions needs valgrind on PATH; no instruction counts")
        else:
            log(f"counting instructions under callgrind ({len(pythons)} venvs, {os.cpu_count()} at a time)")
            counts = instruction_counts(pythons, modes, args.timeout, args.count_scale)
    table = build_table(rows) if not args.no_timing else ""
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else None
    loads = " -> ".join(f"{x[0]:.2f}" for x in (load_start, load_end) if x is not None)
    if table:
        print()
        if cycles_run:
            rounds_text = (
                f"interleaved, the median over {args.rounds} rounds of one bare and one instrumented batch of "
                f"{args.batch} calls, taken in {cycles_run} cycles that each time every implementation once, in "
                "alternating order (CPU time; quartiles in brackets; % of bare: the same samples over the bare "
                "time of their round); ours ÷ this, paired by cycle: ours' median over the peer's median in "
                "the same cycle, the median of the cycles and their range"
            )
            short = any(
                (res.get("interleaved") or {}).get("method", "interleaved") != "interleaved"
                for by_mode in results.values()
                for res in by_mode.values()
            )
            if short:
                rounds_text += (
                    "; † cannot be switched off and on in one process: "
                    f"{sum(split(args.short_runs, cycles_run, minimum=2))} short workers instead, spread over "
                    "the cycles"
                )
        else:
            rounds_text = "no interleaved rounds (--rounds 0)"
        print(
            f"Per-call overhead (instrumented - bare, same process): {rounds_text}; sequential, the difference "
            f"of two phases of {args.reps} reps x {args.calls} calls (medians); content capture on, in-process "
            f"mock transport; {os.cpu_count()} CPUs, python {base_py}; pinned openai {pins['openai']}, "
            f"opentelemetry-sdk {pins['opentelemetry-sdk']}; 1-min load average {loads or 'n/a'}."
        )
        print()
        for line in best_lines(comparison):
            print(line)
        if comparison:
            print()
        print(table)
        print()
    if counts:
        print(
            "Instructions per call under valgrind --tool=callgrind (PYTHONHASHSEED=0; the difference of two runs "
            "making {} and {} non-streaming calls, {} and {} streaming calls; overhead = instrumented - bare in the "
            "same venv):".format(*count_calls("nonstream", args.count_scale), *count_calls("stream", args.count_scale))
        )
        print()
        print(instruction_table(rows, counts, modes))
        print()
    if args.json_out:
        payload = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "argv": list(argv) if argv is not None else sys.argv[1:],
            "calls": args.calls,
            "reps": args.reps,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "batch": args.batch,
            "cycles": cycles_run,
            "short_runs": args.short_runs,
            "pins": pins,
            "loadavg": [load_start, load_end],
            "cpus": os.cpu_count(),
            "python": base_py,
            "rows": rows,
            "table": table,
            "best_peer": comparison,
            "instructions": counts,
        }
        args.json_out.write_text(json.dumps(payload, indent=2, default=str))
        log(f"wrote {args.json_out}")
    failed = [r["impl"] for r in rows if not r["install"]["ok"] or not all(_ok(x) for x in r["results"].values())]
    if failed:
        log(f"rows with errors: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
