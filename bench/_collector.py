"""The OpenTelemetry Collector the export benchmark compares against, built once into the cache.

``collector-config/builder-manifest.yaml`` lists the components; the OpenTelemetry
Collector Builder (``go install go.opentelemetry.io/collector/cmd/builder``, the
release the manifest names) compiles them with the machine's Go into
``<cache>/otelcol-<hash of the manifest>/``. The first build downloads the modules
into Go's module cache and takes minutes; later runs reuse the binary::

    with Collector(config, env) as collector:   # builds if needed
        ...                                      # collector.pid for its CPU time
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = REPO_ROOT / "collector-config" / "builder-manifest.yaml"
_BUILD_TIMEOUT_S = 3600.0


class CollectorError(RuntimeError):
    """The collector cannot be built or started."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genai-audit"


def _builder_version(manifest: str) -> str:
    """The core release the manifest's components belong to (``otlpreceiver vX``): the builder's own."""
    found = re.search(r"collector/receiver/otlpreceiver (v\d+\.\d+\.\d+)", manifest)
    if found is None:
        raise CollectorError(f"{MANIFEST}: no otlpreceiver line to take the builder's version from")
    return found.group(1)


def binary() -> Path:
    """The collector binary, built on first use."""
    manifest = MANIFEST.read_text()
    digest = hashlib.sha256(manifest.encode()).hexdigest()[:12]
    home = cache_dir() / f"otelcol-{digest}"
    exe = home / "dist" / "otelcol-genai-audit"
    if exe.is_file():
        return exe
    go = shutil.which("go")
    if go is None:
        raise CollectorError("building the collector needs Go (`go` on PATH)")
    home.mkdir(parents=True, exist_ok=True)
    tools = home / "bin"
    env = {**os.environ, "GOBIN": str(tools)}
    version = _builder_version(manifest)
    run = [go, "install", f"go.opentelemetry.io/collector/cmd/builder@{version}"]
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise CollectorError(f"installing the collector builder {version} failed: {proc.stderr.strip()[-800:]}")
    (home / "manifest.yaml").write_text(manifest)
    proc = subprocess.run(
        [str(tools / "builder"), "--config", "manifest.yaml"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=_BUILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0 or not exe.is_file():
        raise CollectorError(f"building the collector failed: {(proc.stderr or proc.stdout).strip()[-1200:]}")
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """A running collector: started with a configuration file and extra environment, stopped on exit."""

    def __init__(self, config: Path, env: dict[str, str], ready_port: int, timeout_s: float = 60.0) -> None:
        self.config = config
        self.env = env
        self.ready_port = ready_port
        self.timeout_s = timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="otelcol-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Collector:
        exe = binary()
        self.process = subprocess.Popen(
            [str(exe), "--config", str(self.config)],
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CollectorError(f"the collector exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.ready_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        raise CollectorError(f"the collector did not listen on {self.ready_port} within {self.timeout_s:.0f}s")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
