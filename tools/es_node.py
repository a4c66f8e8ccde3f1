"""A real single-node Elasticsearch, 8.19 or 9.x, for tests and local use, without Docker.

The node runs in one JVM from the two artifacts Maven Central publishes (the
server and its Netty transport); the launcher lives in ``es-node/`` at the root
of the source checkout. It is built once per server major with Maven into
``<cache>/es-node-<major>-<hash of the sources>/`` and started from there, so
later starts take seconds::

    with EsNode() as node:                      # 8.19; builds if needed, free loopback port
        Elasticsearch(node.url).cluster.health()
    with EsNode(major=9) as node:               # 9.x
        ...

From a shell (``make es-up [ES_VERSION=9]`` / ``make es-down [ES_VERSION=9]``)::

    python -m tools.es_node up [--major 9]     # last line of output: the URL
    python -m tools.es_node down [--major 9]

Needs Maven (``mvn``) and a JDK: 17+ for 8.19, 21+ for 9.x. The JDK is the first
recent enough of ``$JAVA_HOME``, ``java`` on ``PATH`` and ``/usr/lib/jvm/*``
(newest first); Maven runs on it too. The first build of a major downloads about
45 MB of dependencies into the Maven repository.

The node has the server's features only: data streams, index templates,
``passthrough``/``flattened``/``date_nanos`` fields, search and aggregations.
There is no x-pack (security, ILM, ``constant_keyword``), no scripting and no
``GET /``: readiness is ``GET /_cluster/health``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MAJORS", "EsNode", "EsNodeError", "Jdk", "ServerMajor", "build", "cache_dir", "find_jdk", "source_dir"]

MAIN_CLASS = "genai_audit.esnode.EsNode"
DEFAULT_HEAP = ("256m", "512m")
DEFAULT_MAJOR = 8
ENV_SOURCE = "GENAI_AUDIT_ES_NODE_SOURCE"
ENV_JAVA_OPTS = "GENAI_AUDIT_ES_NODE_JAVA_OPTS"
JVM_DIR = Path("/usr/lib/jvm")
_BUILD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class ServerMajor:
    """What differs between the server majors: Maven profile, minimum Java, file names, JVM options."""

    major: int
    version: str  # the server version the profile pins (es-node/pom.xml)
    min_java: int
    java_options: tuple[str, ...] = ()

    @property
    def profile(self) -> str:
        return f"es{self.major}"

    @property
    def state_file(self) -> str:
        # 8 keeps the names it had before there was a choice
        return "es-node.state.json" if self.major == 8 else f"es-node-{self.major}.state.json"

    @property
    def data_dir_name(self) -> str:
        return "es-node-data" if self.major == 8 else f"es-node-{self.major}-data"


MAJORS: dict[int, ServerMajor] = {
    8: ServerMajor(8, "8.19.21", 17),
    # the 9.x server calls the JDK's foreign-function API itself (native access, Lucene)
    9: ServerMajor(9, "9.5.3", 21, ("--enable-native-access=ALL-UNNAMED",)),
}


def server_major(major: int | str) -> ServerMajor:
    """The :data:`MAJORS` entry for ``major`` (``8`` or ``9``); :class:`EsNodeError` otherwise."""
    try:
        return MAJORS[int(major)]
    except (KeyError, ValueError):
        raise EsNodeError(
            f"no local Elasticsearch node for version {major!r}: choose one of {', '.join(map(str, MAJORS))}"
        ) from None


class EsNodeError(RuntimeError):
    """The node cannot be built, started or reached."""


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/genai-audit``, as the Makefile uses."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genai-audit"


def source_dir() -> Path:
    """The ``es-node/`` directory of the source checkout (``GENAI_AUDIT_ES_NODE_SOURCE`` overrides)."""
    given = os.environ.get(ENV_SOURCE)
    path = Path(given) if given else Path(__file__).resolve().parents[1] / "es-node"
    if not (path / "pom.xml").is_file():
        raise EsNodeError(
            f"no es-node sources at {path}: the local Elasticsearch node is built from a source checkout "
            f"of genai-audit (set {ENV_SOURCE} to its es-node directory)"
        )
    return path


def _sources_hash(source: Path, major: int) -> str:
    """The build's key: the POM, the shared sources and this major's own (not the other major's)."""
    digest = hashlib.sha256()
    trees = [source / "src" / "main", source / "src" / f"es{major}"]
    files = [source / "pom.xml", *sorted(p for tree in trees for p in tree.rglob("*") if p.is_file())]
    for file in files:
        digest.update(file.relative_to(source).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _tool(name: str, env_home: str | None = None) -> str:
    if env_home:
        candidate = Path(os.environ.get(env_home, "")) / "bin" / name
        if os.environ.get(env_home) and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise EsNodeError(
            f"the local Elasticsearch node needs {name!r}, which is not on PATH"
            + (f" (nor in ${env_home}/bin)" if env_home else "")
            + ": install Maven 3.6+ and a JDK (17+ for 8.19, 21+ for 9.x)"
        )
    return found


@dataclass(frozen=True)
class Jdk:
    """A Java installation: its home directory and feature version (17, 21, 25...)."""

    home: Path
    version: int

    @property
    def java(self) -> str:
        return str(self.home / "bin" / "java")

    @property
    def has_compiler(self) -> bool:
        return os.access(self.home / "bin" / "javac", os.X_OK)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _feature_version(text: str) -> int | None:
    """``17`` from ``17.0.15``, ``1.8.0_412`` gives ``8``; ``None`` when unreadable."""
    parts = text.strip().strip('"').split(".")
    try:
        first = int(parts[0].split("-")[0].split("+")[0])
        return int(parts[1]) if first == 1 and len(parts) > 1 else first
    except ValueError:
        return None


def _java_version(home: Path) -> int | None:
    """The feature version of the Java in ``home``: from its ``release`` file, else from ``java -version``."""
    release = home / "release"
    with contextlib.suppress(OSError):
        for line in release.read_text(errors="replace").splitlines():
            if line.startswith("JAVA_VERSION="):
                found = _feature_version(line.partition("=")[2])
                if found is not None:
                    return found
    try:
        done = subprocess.run(
            [str(home / "bin" / "java"), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in done.stderr.splitlines():
        if " version " in line:
            return _feature_version(line.split(" version ", 1)[1].split()[0])
    return None


def _installed_jdks() -> list[Jdk]:
    """Java installations, preferred first: ``$JAVA_HOME``, ``java`` on ``PATH``, ``/usr/lib/jvm/*`` newest first."""
    named: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        named.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        named.append(Path(on_path).resolve().parent.parent)
    installed = sorted(p for p in JVM_DIR.iterdir() if p.is_dir()) if JVM_DIR.is_dir() else []
    found: list[Jdk] = []
    seen: set[Path] = set()
    for group in (named, installed):
        jdks = []
        for home in group:
            key = home.resolve()
            if key in seen or not _executable(home / "bin" / "java"):
                continue
            seen.add(key)
            version = _java_version(home)
            if version is not None:
                jdks.append(Jdk(home, version))
        found.extend(jdks if group is named else sorted(jdks, key=lambda jdk: -jdk.version))
    return found


def find_jdk(minimum: int, *, compiler: bool = False, purpose: str = "the local Elasticsearch node") -> Jdk:
    """The first Java ``minimum``+ (with ``javac`` when ``compiler``) of :func:`_installed_jdks`.

    Raises :class:`EsNodeError` naming what is missing and what was found.
    """
    found = _installed_jdks()
    for jdk in found:
        if jdk.version >= minimum and (jdk.has_compiler or not compiler):
            return jdk
    what = f"a JDK {minimum}+ (java and javac)" if compiler else f"Java {minimum}+"
    seen = ", ".join(f"{jdk.home} ({jdk.version}{'' if jdk.has_compiler else ', no javac'})" for jdk in found)
    raise EsNodeError(
        f"{purpose} needs {what}, and none was found in $JAVA_HOME, on PATH or in {JVM_DIR}"
        f" (found: {seen or 'no Java at all'}); install one, or set JAVA_HOME to it"
    )


def java_executable(major: int = DEFAULT_MAJOR) -> str:
    """The ``java`` that runs a node of ``major`` (Java 17+ for 8, 21+ for 9)."""
    server = server_major(major)
    return find_jdk(server.min_java, purpose=f"Elasticsearch {server.version}").java


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 64 * 1024))
            text = stream.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Build:
    """A built launcher: its directory and the class path to run it with."""

    directory: Path
    major: int = DEFAULT_MAJOR

    @property
    def classpath(self) -> str:
        return os.pathsep.join([str(self.directory / "classes"), str(self.directory / "lib" / "*")])


def build(major: int = DEFAULT_MAJOR, *, quiet: bool = True) -> Build:
    """Build the launcher for server ``major`` unless a build of the same sources is cached; returns it.

    Maven runs on the JDK :func:`find_jdk` picks for the major (``JAVA_HOME`` is set
    to it). Concurrent callers wait for one another (a file lock); a half-finished
    build is never used (it is moved into place only when Maven succeeded).
    """
    server = server_major(major)
    source = source_dir()
    name = f"es-node-{server.major}-{_sources_hash(source, server.major)}"
    cache = cache_dir()
    target = cache / name
    if (target / ".complete").is_file():
        return Build(target, server.major)
    with _locked(cache / f"{name}.lock"):
        if (target / ".complete").is_file():
            return Build(target, server.major)
        mvn = _tool("mvn", "MAVEN_HOME")
        jdk = find_jdk(server.min_java, compiler=True, purpose=f"building the Elasticsearch {server.version} node")
        staging = Path(tempfile.mkdtemp(prefix=f"{name}.", suffix=".partial", dir=cache))
        command = [
            mvn,
            "-B",
            "-f",
            str(source / "pom.xml"),
            "-P",
            server.profile,
            f"-Des-node.build={staging}",
            "compile",
            "dependency:copy-dependencies",
        ]
        if quiet:
            command.insert(2, "-q")
        log = staging / "build.log"
        started = time.monotonic()
        try:
            with log.open("wb") as out:
                result = subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=_BUILD_TIMEOUT_S,
                    check=False,
                    env={**os.environ, "JAVA_HOME": str(jdk.home)},
                )
        except subprocess.TimeoutExpired:
            tail = _tail(log)
            shutil.rmtree(staging, ignore_errors=True)
            raise EsNodeError(f"Maven build of {source} took over {_BUILD_TIMEOUT_S:.0f} s:\n{tail}") from None
        if result.returncode != 0:
            tail = _tail(log)
            shutil.rmtree(staging, ignore_errors=True)
            raise EsNodeError(
                f"Maven build of {source} (profile {server.profile}, Java {jdk.version} at {jdk.home}) "
                f"failed (exit {result.returncode}):\n{tail}"
            )
        (staging / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        (staging / ".complete").touch()
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return Build(target, server.major)


def _health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """``GET /_cluster/health`` once; ``None`` when the node does not answer yet."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=timeout) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except (OSError, ValueError):
        return None


def _java_options(heap: tuple[str, str], home: Path, server: ServerMajor = MAJORS[DEFAULT_MAJOR]) -> list[str]:
    options = [
        *server.java_options,
        f"-Xms{heap[0]}",
        f"-Xmx{heap[1]}",
        "-XX:+UseSerialGC",  # no parallel GC threads competing on a small machine
        "-XX:-UsePerfData",
        "-Xss1m",
        "-Djava.awt.headless=true",
        "-Dfile.encoding=UTF-8",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        "-Dlog4j2.disable.jmx=true",
    ]
    options.extend(os.environ.get(ENV_JAVA_OPTS, "").split())
    return options


class EsNode:
    """One single-node Elasticsearch process on a free loopback port.

    ``major`` is the server's major version: 8 (8.19, the default) or 9 (9.x).
    ``data_dir`` is the node's ``path.home`` (data, logs; a fresh temporary
    directory when omitted, removed on :meth:`stop`). With ``tie_to_parent`` the
    node also ends when this process ends (it watches its standard input).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        major: int = DEFAULT_MAJOR,
        port: int = 0,
        heap: tuple[str, str] = DEFAULT_HEAP,
        start_timeout: float = 180.0,
        tie_to_parent: bool = True,
    ) -> None:
        self.server = server_major(major)
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="genai-audit-es-"))
        self.port = port
        self.heap = heap
        self.start_timeout = start_timeout
        self.tie_to_parent = tie_to_parent
        self.log_path = self.data_dir / "node.log"
        self._address_file = self.data_dir / "http-address"
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise EsNodeError("the node is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    @property
    def major(self) -> int:
        return self.server.major

    def start(self) -> Self:
        built = build(self.server.major)
        java = java_executable(self.server.major)
        home = self.data_dir
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        self._address_file.unlink(missing_ok=True)
        command = [
            java,
            *_java_options(self.heap, home, self.server),
            "-cp",
            built.classpath,
            MAIN_CLASS,
            "--home",
            str(home),
            "--port",
            str(self.port),
            "--address-file",
            str(self._address_file),
        ]
        if self.tie_to_parent:
            command.append("--exit-on-stdin-close")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if self.tie_to_parent else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=home,
                start_new_session=not self.tie_to_parent,
            )
        try:
            self._url = self._wait_ready()
        except BaseException:
            self._terminate()
            raise
        return self

    def _wait_ready(self) -> str:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.start_timeout
        url: str | None = None
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise EsNodeError(
                    f"Elasticsearch node exited with status {code} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if url is None and self._address_file.is_file():
                url = self._address_file.read_text().strip() or None
            if url is not None:
                health = _health(url)
                if health is not None and health.get("status") in ("green", "yellow"):
                    return url
            time.sleep(0.2)
        raise EsNodeError(
            f"Elasticsearch node not healthy after {self.start_timeout:.0f} s "
            f"(GET {url or '<no address yet>'}/_cluster/health); log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean close), then SIGKILL after ``timeout`` seconds."""
        self._terminate(timeout)
        self._url = None
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _terminate(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- the ``up`` / ``down`` command line ---------------------------------------------


def _state_path(server: ServerMajor) -> Path:
    return cache_dir() / server.state_file


def _read_state(server: ServerMajor) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(_state_path(server).read_text())
        return state
    except (OSError, ValueError):
        return None


def _is_our_node(pid: int) -> bool:
    """The process exists and (where ``/proc`` tells) is our launcher, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return MAIN_CLASS.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_our_node(pid):
            return True
        time.sleep(0.2)
    return not _is_our_node(pid)


def up(data_dir: Path | None, port: int, timeout: float, major: int = DEFAULT_MAJOR) -> str:
    """Start a background node of server ``major`` (or find the running one); returns its URL."""
    server = server_major(major)
    state = _read_state(server)
    if state and _is_our_node(int(state["pid"])) and _health(str(state["url"])) is not None:
        print(f"es-node: {server.version} already running (pid {state['pid']}, data {state['data_dir']})",
              file=sys.stderr)
        return str(state["url"])
    home = data_dir or cache_dir() / server.data_dir_name
    home.mkdir(parents=True, exist_ok=True)
    print(f"es-node: building {server.version} if needed and starting (data {home}, log {home / 'node.log'})",
          file=sys.stderr)
    node = EsNode(home, major=server.major, port=port, start_timeout=timeout, tie_to_parent=False)
    node.start()
    assert node.pid is not None
    state = {"pid": node.pid, "url": node.url, "data_dir": str(home), "log": str(node.log_path),
             "version": server.version}
    path = _state_path(server)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state) + "\n")
    partial.replace(path)
    return node.url


def down(timeout: float, major: int = DEFAULT_MAJOR) -> bool:
    """Stop the background node of ``major`` recorded in its state file; ``False`` when none was running."""
    server = server_major(major)
    state = _read_state(server)
    if not state:
        return False
    pid = int(state["pid"])
    running = _is_our_node(pid)
    if running:
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
    _state_path(server).unlink(missing_ok=True)
    return running


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.es_node",
        description="A local single-node Elasticsearch for tests and development.",
    )
    major = argparse.ArgumentParser(add_help=False)
    major.add_argument(
        "--major", default=str(DEFAULT_MAJOR), metavar="{" + ",".join(map(str, MAJORS)) + "}",
        help=f"server major: {', '.join(f'{m} ({s.version}, Java {s.min_java}+)' for m, s in MAJORS.items())}; "
        f"default {DEFAULT_MAJOR}",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "up", parents=[major], help="start in the background (builds first if needed); prints the URL last"
    )
    start.add_argument("--data", type=Path, help="path.home of the node (default: <cache>/es-node[-9]-data)")
    start.add_argument("--port", type=int, default=0, help="HTTP port (default 0: a free one)")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy node")
    stop = commands.add_parser("down", parents=[major], help="stop the node 'up' started")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL")
    commands.add_parser("status", parents=[major], help="print the URL of the running node, exit 1 when none")
    commands.add_parser("build", parents=[major], help="build the launcher (cached) and print its directory")
    args = parser.parse_args(argv)
    try:
        server = server_major(args.major)
        if args.command == "up":
            print(up(args.data, args.port, args.timeout, server.major))
        elif args.command == "down":
            stopped = down(args.timeout, server.major)
            print(f"es-node: {server.version} {'stopped' if stopped else 'not running'}", file=sys.stderr)
        elif args.command == "status":
            state = _read_state(server)
            if not state or not _is_our_node(int(state["pid"])) or _health(str(state["url"])) is None:
                print(f"es-node: {server.version} not running", file=sys.stderr)
                return 1
            print(state["url"])
        else:
            print(build(server.major, quiet=False).directory)
    except EsNodeError as exc:
        print(f"es-node: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
