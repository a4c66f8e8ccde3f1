"""The overhead benchmark's worker, run as the benchmark runs it: in its own process.

``--sdk-share`` wraps the OpenTelemetry SDK's span, metric and log entry points
with timers (for the whole process, hence the subprocess), and splits each
instrumented batch's time into the part spent inside the SDK and the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.parametrize("mode", ["nonstream", "stream"])
def test_sdk_share_times_the_sdk_inside_each_instrumented_batch(mode: str) -> None:
    rounds = 3
    res = run_worker(
        *("--impl", "ours", "--mode", mode, "--reps", "0", "--warmup", "5"),
        *("--rounds", str(rounds), "--batch", "5", "--sdk-share"),
    )
    assert not res["errors"], res["errors"]
    assert {"Tracer.start_span", "Span.end", "Span.set_attributes", "Histogram.record"} <= set(res["sdk_timed"])
    inter = res["interleaved"]
    assert inter["rounds_run"] == rounds
    # one figure per instrumented batch, each the SDK time of a call that made a span and metric points
    assert len(inter["sdk_rounds_us"]) == rounds
    assert all(x > 0 for x in inter["sdk_rounds_us"])
    assert inter["sdk_us"] == pytest.approx(sorted(inter["sdk_rounds_us"])[rounds // 2], abs=0.001)


def test_sdk_share_in_sequential_phases() -> None:
    # how an instrumentation without an off switch is measured: one bare and one instrumented phase
    res = run_worker(
        *("--impl", "ours", "--mode", "nonstream", "--calls", "10", "--reps", "2", "--warmup", "5"),
        "--sdk-share",
    )
    assert not res["errors"], res["errors"]
    assert res["instrumented"]["sdk_us"] > 0
    assert "sdk_us" not in res["bare"]  # the bare phase ran before the instrumentation: nothing to report


def test_without_sdk_share_nothing_is_wrapped_or_reported() -> None:
    res = run_worker(
        *("--impl", "ours", "--mode", "nonstream", "--reps", "0", "--warmup", "5"),
        *("--rounds", "2", "--batch", "5"),
    )
    assert "sdk_timed" not in res
    assert "sdk_us" not in res["interleaved"]
    assert res["interleaved"]["rounds_run"] == 2


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
