"""Start-up cost of the GENAI_AUDIT_ENABLED hook (a benchmark, not a test).

Measures, in one run:
1. the hook itself when the variable is unset: Python's own ``site.addpackage``
   processing our installed ``.pth`` file, repeated in-process;
2. whole-interpreter start (``python -c pass``) with the variable unset and set,
   median of N fresh processes each.

Usage: python bench/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import site
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PTH = "genai_audit-autostart.pth"


def installed_pth() -> Path:
    for directory in {sysconfig.get_paths()["purelib"], *site.getsitepackages()}:
        candidate = Path(directory) / PTH
        if candidate.exists():
            return candidate
    sys.exit(f"{PTH} is not installed in this interpreter's site-packages")


def hook_cost_us(pth: Path, repeats: int) -> float:
    env_before = os.environ.pop("GENAI_AUDIT_ENABLED", None)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / PTH).write_text(pth.read_text())
        samples = []
        for _ in range(repeats):
            start = time.perf_counter_ns()
            site.addpackage(tmp, PTH, set())  # type: ignore[attr-defined]
            samples.append(time.perf_counter_ns() - start)
    if env_before is not None:
        os.environ["GENAI_AUDIT_ENABLED"] = env_before
    return statistics.median(samples) / 1000


def process_ms(env: dict[str, str], runs: int, code: str = "pass") -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    pth = installed_pth()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_AUDIT_")}
    store = Path(tempfile.mkdtemp()) / "bench.db"
    hook = hook_cost_us(pth, 2000)
    unset = process_ms(base, args.runs)
    enabled = process_ms({**base, "GENAI_AUDIT_ENABLED": "true", "GENAI_AUDIT_STORE": str(store)}, args.runs)
    print("| measurement | median |")
    print("|---|---|")
    print(f"| hook line processed by `site` with GENAI_AUDIT_ENABLED unset | {hook:.1f} µs |")
    print(f"| `python -c pass`, GENAI_AUDIT_ENABLED unset | {unset:.1f} ms |")
    print(f"| `python -c pass`, GENAI_AUDIT_ENABLED=true (pipeline + import hooks) | {enabled:.1f} ms |")
    version = sys.version.split()[0]
    print(f"\nunset hook cost: {hook / 1000:.3f} ms (limit 5 ms); {args.runs} processes per row, Python {version}")


if __name__ == "__main__":
    main()
