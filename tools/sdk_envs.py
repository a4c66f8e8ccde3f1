"""The instrumentation tests against the oldest and the newest supported release of each SDK.

``python -m tools.sdk_envs`` builds one virtual environment per entry of
:data:`ENVIRONMENTS` (once: cached under ``${XDG_CACHE_HOME:-~/.cache}/genai-audit/sdk-envs/``,
keyed on the pins, the project's declarations and the checkout's path), with this
checkout's distributions installed editable, and runs :data:`TEST_FILES` in each.
Tests of SDK features an environment's SDK release lacks are deselected there, and
the run says which (tests/sdk_support.py). An environment whose pinned releases are
exactly those of the interpreter running this (the main test environment, whose own
test run covers them) is not built unless ``--always``. Arguments after ``--`` go to pytest.

The pins are the supported ranges' ends: the declared lower bounds
(``instrumentation/*/pyproject.toml``) are the oldest releases here, and
tests/test_sdk_versions.py checks that they agree.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from tools.dists import editable_args, projects

ROOT = Path(__file__).resolve().parent.parent

#: name -> pins. The oldest releases predate httpx 0.28, which removed the ``proxies``
#: argument they pass: what those releases need, as their users have.
ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "oldest": ("openai==1.26.0", "anthropic==0.30.0", "httpx<0.28"),
    "newest": ("openai==3.63.0", "anthropic==2.17.0"),
}

#: the tests that drive the SDKs through the instrumentation against the fake provider
TEST_FILES = (
    "tests/test_sdk_versions.py",
    "tests/test_openai_sync.py",
    "tests/test_openai_async.py",
    "tests/test_anthropic_sync.py",
    "tests/test_anthropic_async.py",
    "tests/test_stream_lifecycle.py",
    "tests/test_raw_response.py",
    "tests/test_real_traffic.py",
    "tests/test_faults.py",
    "tests/test_metric_batch.py",
    "tests/test_chunk_metric.py",
    "tests/test_fast_paths.py",
    "tests/test_context.py",
    "tests/test_cost.py",
)

#: the test tools of the ``dev`` extra these files use (their versions come from there)
TEST_TOOLS = ("pytest", "pytest-asyncio", "hypothesis", "tomli")
BUILD_TIMEOUT_S = 1200


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genai-audit" / "sdk-envs"


def tool_requirements() -> list[str]:
    """The ``dev`` extra's requirements of :data:`TEST_TOOLS`, as declared (markers kept)."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    return [req for req in dev if re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0] in TEST_TOOLS]


def requirements(name: str) -> list[str]:
    return [*ENVIRONMENTS[name], *tool_requirements(), *editable_args(ROOT)]


def key(name: str) -> str:
    digest = hashlib.sha256(json.dumps([requirements(name), sys.version]).encode())
    for project in projects(ROOT):
        digest.update((project / "pyproject.toml").read_bytes())
    digest.update((ROOT / "setup.py").read_bytes())
    return digest.hexdigest()[:12]


def environment(name: str, cache: Path) -> Path:
    """The Python of environment ``name``, built into ``cache`` if it is not there yet."""
    venv = cache / f"{name}-{key(name)}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it
        if not marker.exists():
            started = time.monotonic()
            print(f"sdk-envs: building {venv}", flush=True)
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_TIMEOUT_S)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements(name)],
                check=True, timeout=BUILD_TIMEOUT_S, env=env,
            )
            marker.write_text(json.dumps({"requirements": requirements(name)}))
            print(f"sdk-envs: built {name} in {time.monotonic() - started:.0f} s", flush=True)
    return python


def covered_here(name: str) -> bool:
    """Whether this interpreter (the main test environment) has exactly environment ``name``'s pinned SDKs.

    Then the main test run tests those releases already, and the environment is not built.
    """
    from importlib import metadata

    pins = ENVIRONMENTS[name]
    for pin in pins:
        sdk, sep, version = pin.partition("==")
        if not sep:
            return False
        try:
            if metadata.version(sdk) != version:
                return False
        except metadata.PackageNotFoundError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=cache_home(), help="where the environments are kept")
    parser.add_argument("--only", choices=sorted(ENVIRONMENTS), action="append", help="run only these environments")
    parser.add_argument("--always", action="store_true",
                        help="build and run an environment even when this one has its SDK releases")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    failed = []
    for name in args.only or ENVIRONMENTS:
        if not args.always and covered_here(name):
            print(f"sdk-envs: {name}: {' '.join(ENVIRONMENTS[name])} are this environment's own: "
                  f"the main test run ({sys.executable}) tests them", flush=True)
            continue
        python = environment(name, args.cache_dir)
        print(f"sdk-envs: {name}: {' '.join(ENVIRONMENTS[name])}", flush=True)
        done = subprocess.run(
            [str(python), "-m", "pytest", "-m", "not integration", "-p", "no:cacheprovider", "-q",
             *TEST_FILES, *args.pytest_args],
            cwd=ROOT, check=False,
        )
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"sdk-envs: failed in {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
