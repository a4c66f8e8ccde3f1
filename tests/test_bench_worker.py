"""The overhead benchmark's worker, run as the benchmark runs it: in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve().parent.parent / "bench" / "_overhead_worker.py"


def run_worker(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(WORKER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_interleaved_rounds_switch_the_instrumentation_off_and_on() -> None:
    res = run_worker(
        *("--impl", "ours", "--mode", "nonstream", "--reps", "0", "--warmup", "5"),
        *("--rounds", "2", "--batch", "5"),
    )
    assert not res["errors"], res["errors"]
    inter = res["interleaved"]
    assert inter["rounds_run"] == 2
    assert len(inter["diffs_cpu_us"]) == len(inter["bare_rounds_cpu_us"]) == 2


def test_each_timed_batch_records_its_own_metric_points() -> None:
    """genai-audit's batched metric points are recorded before a batch's clock starts and before it stops."""
    script = f"""
import json, sys
sys.path.insert(0, {str(WORKER.parent)!r})
import _overhead_worker as w
from genai_audit.instrumentation import _core
sinks = w.Sinks()
w.instrument("ours", sinks)
call = w.make_call(w.make_client(w.Handler(w.http_module())), "nonstream")
seen = []
real_settle = w.settle
def settle():
    seen.append(len(_core._PENDING))
    real_settle()
    seen.append(len(_core._PENDING))
w.settle = settle
w.run_phase(call, calls=13, reps=2, warmup=4)
print(json.dumps(seen))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    # per repetition: before the clock starts (what the warm-up or the last batch left), before it stops
    # (13 calls in batches of 10 leave 3); each time nothing is left pending
    assert seen == [4, 0, 3, 0, 0, 0, 3, 0]
