"""A TLS-terminating, credential-checking reverse proxy in front of the local Elasticsearch node.

The node :mod:`tools.es_node` starts has no security module: it
speaks plain HTTP and accepts anyone. :class:`TlsProxy` puts what a secured
cluster does in front of it, so the exporter's TLS and authentication settings
are exercised for real::

    certs = make_certificates(tmp_dir)               # self-signed CA + server certificate (openssl CLI)
    creds = Credentials(users={"auditor": "s3cret"})
    with TlsProxy(node.url, certs, creds) as proxy:
        ElasticsearchSpanExporter(proxy.url, username="auditor", password="s3cret", ca_certs=str(certs.ca_cert))

The proxy terminates TLS (the server certificate names ``127.0.0.1`` and
``localhost``), checks the ``Authorization`` header against the configured
credentials (``Basic``, ``ApiKey`` with the base64 of ``id:key``, ``Bearer``)
and answers ``401`` with ``WWW-Authenticate`` and an Elasticsearch-style
``security_exception`` body otherwise. Accepted requests go to the node over
plain HTTP with the ``Authorization`` header removed; request and response
bodies are streamed in both directions, status and end-to-end headers
(``X-Elastic-Product`` included) pass through unchanged.

Every request is recorded in :attr:`TlsProxy.exchanges` (method, path,
authentication scheme, principal, status; never a secret), and every failed
TLS handshake in :attr:`TlsProxy.handshake_failures`.

Certificates are made by the ``openssl`` command-line tool at run time; nothing
else beyond the standard library is needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Certificates",
    "Credentials",
    "Exchange",
    "TlsProxy",
    "TlsProxyError",
    "Verdict",
    "encode_api_key",
    "make_certificates",
]

_PIECE: Final = 64 * 1024
#: headers that describe one connection, not the message; never forwarded
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: request headers the proxy consumes or replaces
_NOT_FORWARDED: Final = _HOP_BY_HOP | {"authorization", "host", "expect", "content-length"}
_CHALLENGES: Final = ('Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey")


class TlsProxyError(RuntimeError):
    """Certificates cannot be made or the proxy cannot start."""


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A test CA and a server certificate it signed, as PEM files in one directory."""

    directory: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    #: the server certificate followed by the CA certificate, as the proxy presents them
    chain: Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the server certificate (DER), lower-case hex without separators."""
        return _pem_fingerprint(self.server_cert)

    @property
    def ca_fingerprint(self) -> str:
        """SHA-256 of the CA certificate (DER), lower-case hex without separators."""
        return _pem_fingerprint(self.ca_cert)


def _pem_fingerprint(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii"))
    return hashlib.sha256(der).hexdigest()


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise TlsProxyError("making test certificates needs the 'openssl' command, which is not on PATH")
    return found


def _run_openssl(arguments: Sequence[str], directory: Path) -> None:
    command = [_openssl(), *arguments]
    done = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False
    )
    if done.returncode != 0:
        raise TlsProxyError(f"openssl {arguments[0]} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def make_certificates(
    directory: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = 2,
    common_name: str = "localhost",
) -> Certificates:
    """A fresh self-signed CA and a server certificate for ``hosts`` (IP addresses or DNS names).

    Keys are P-256 EC keys, written owner-only. Raises :class:`TlsProxyError`
    when ``openssl`` is missing or fails.
    """
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = base / "ca.key", base / "ca.pem"
    server_key, server_csr, server_cert = base / "server.key", base / "server.csr", base / "server.pem"
    extensions = base / "server.ext"
    names = ",".join(f"IP:{host}" if _is_ip(host) else f"DNS:{host}" for host in hosts)
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={names}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="ascii",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_openssl(
        [
            "req", "-x509", *ec, "-sha256", "-days", str(days),
            "-subj", "/O=genai-audit tests/CN=genai-audit test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", ca_key.name, "-out", ca_cert.name,
        ],
        base,
    )  # fmt: skip
    _run_openssl(
        ["req", "-new", *ec, "-subj", f"/O=genai-audit tests/CN={common_name}",
         "-keyout", server_key.name, "-out", server_csr.name],
        base,
    )  # fmt: skip
    _run_openssl(
        [
            "x509", "-req", "-in", server_csr.name, "-CA", ca_cert.name, "-CAkey", ca_key.name,
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(days), "-sha256",
            "-extfile", extensions.name, "-out", server_cert.name,
        ],
        base,
    )  # fmt: skip
    for key in (ca_key, server_key):
        os.chmod(key, 0o600)
    chain = base / "server-chain.pem"
    chain.write_text(server_cert.read_text(encoding="ascii") + ca_cert.read_text(encoding="ascii"), encoding="ascii")
    return Certificates(base, ca_cert, server_cert, server_key, chain)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


# --- credentials -------------------------------------------------------------------------------


def encode_api_key(key_id: str, key: str) -> str:
    """The ``encoded`` form of an API key, as Elasticsearch returns it: base64 of ``id:key``."""
    return base64.b64encode(f"{key_id}:{key}".encode()).decode("ascii")


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one ``Authorization`` header; ``reason`` never quotes a secret."""

    ok: bool
    scheme: str | None = None  # "basic", "apikey", "bearer", or None when no header was sent
    principal: str | None = None  # user name, API key id, or "token"
    reason: str = ""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Credentials:
    """What the proxy accepts: users with passwords, API keys (id -> key), bearer tokens."""

    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    bearer_tokens: frozenset[str] = field(default_factory=frozenset, repr=False)

    def check(self, authorization: str | None) -> Verdict:
        """Whether ``authorization`` (the header's value) names accepted credentials."""
        if not authorization or not authorization.strip():
            return Verdict(False, reason="missing authentication credentials")
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic":
            pair = _b64_text(value)
            if pair is None or ":" not in pair:
                return Verdict(False, "basic", reason="malformed basic credentials")
            user, _, password = pair.partition(":")
            expected = self.users.get(user)
            ok = expected is not None and _same(password, expected)
            return Verdict(ok, "basic", user, "" if ok else f"unable to authenticate user [{user}]")
        if scheme == "apikey":
            pair = _b64_text(value)
            if pair is None or ":" not in pair:
                return Verdict(False, "apikey", reason="malformed API key credentials")
            key_id, _, key = pair.partition(":")
            expected = self.api_keys.get(key_id)
            ok = expected is not None and _same(key, expected)
            return Verdict(ok, "apikey", key_id, "" if ok else f"invalid credentials for API key [{key_id}]")
        if scheme == "bearer":
            ok = False
            for token in self.bearer_tokens:
                ok |= _same(value, token)  # every token compared: the time does not tell which matched
            return Verdict(ok, "bearer", "token", "" if ok else "unable to authenticate with the provided token")
        return Verdict(False, scheme or None, reason="unsupported authentication scheme")


def _b64_text(value: str) -> str | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None


# --- the proxy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request the proxy answered (secrets are never recorded)."""

    method: str
    path: str
    scheme: str | None
    principal: str | None
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, proxy: TlsProxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        # The handshake runs later on the connection's own thread, so a slow or failing
        # client never holds up the accept loop.
        raw, address = self.socket.accept()
        wrapped = self.proxy.tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        if not isinstance(request, ssl.SSLSocket):
            return
        request.settimeout(self.proxy.timeout)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self.proxy._handshake_failed(exc)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "genai-audit-tls-proxy/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None
        self._answered = False
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        if self._upstream is not None:
            self._upstream.close()
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the exchanges are recorded instead."""

    def do_GET(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_OPTIONS(self) -> None:
        self._proxy()

    # -- request body -------------------------------------------------------------------------

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _body(self) -> Iterator[bytes]:
        """The request body in pieces as it arrives (chunked transfer coding removed)."""
        if self._chunked():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers are dropped
                    return
                left = size
                while left:
                    piece = self.rfile.read(min(left, _PIECE))
                    if not piece:
                        raise ConnectionError("client closed the connection inside a chunk")
                    left -= len(piece)
                    yield piece
                self.rfile.readline(16)
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            piece = self.rfile.read(min(left, _PIECE))
            if not piece:
                raise ConnectionError("client closed the connection inside the body")
            left -= len(piece)
            yield piece

    # -- the exchange -------------------------------------------------------------------------

    def _proxy(self) -> None:
        proxy = self.server.proxy
        self._answered = False
        verdict = proxy.credentials.check(self.headers.get("Authorization"))
        if not verdict.ok:
            for _ in self._body():
                pass  # read and drop, so the connection stays usable
            self._unauthorized(verdict)
            proxy._record(Exchange(self.command, self.path, verdict.scheme, verdict.principal, 401))
            return
        try:
            status = self._forward()
        except (OSError, http.client.HTTPException) as exc:
            self.close_connection = True
            if self._upstream is not None:
                self._upstream.close()
                self._upstream = None
            if isinstance(exc, _ClientGone):
                return
            status = 502
            if not self._answered:
                reason = f"the proxy could not reach Elasticsearch: {type(exc).__name__}"
                self._json(502, {"error": {"type": "proxy_upstream_error", "reason": reason}, "status": 502})
        proxy._record(Exchange(self.command, self.path, verdict.scheme, verdict.principal, status))

    def _connection(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            proxy = self.server.proxy
            self._upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.timeout)
        return self._upstream

    def _forward(self) -> int:
        upstream = self._connection()
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", self.server.proxy.upstream_netloc)
        for name, value in self.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                upstream.putheader(name, value)
        chunked = self._chunked()
        length = self.headers.get("Content-Length")
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        elif length is not None:
            upstream.putheader("Content-Length", length)
        upstream.endheaders()
        for piece in self._body():
            upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            upstream.send(b"0\r\n\r\n")
        response = upstream.getresponse()
        self._relay(response)
        return response.status

    def _relay(self, response: http.client.HTTPResponse) -> None:
        bodiless = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        length = response.getheader("Content-Length")
        chunked = not bodiless and length is None
        try:
            self.send_response_only(response.status, response.reason)
            self.send_header("Date", self.date_time_string())
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._answered = True
            if not bodiless:
                while True:
                    piece = response.read1(_PIECE)
                    if not piece:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc
        finally:
            response.close()  # read to its end: the upstream connection is ready for the next request
        if response.will_close and self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    # -- own answers --------------------------------------------------------------------------

    def _unauthorized(self, verdict: Verdict) -> None:
        reason = f"{verdict.reason} for REST request [{self.path}]"
        body = {
            "error": {
                "root_cause": [{"type": "security_exception", "reason": reason}],
                "type": "security_exception",
                "reason": reason,
                "header": {"WWW-Authenticate": list(_CHALLENGES)},
            },
            "status": 401,
        }
        self._json(401, body, challenge=True)

    def _json(self, status: int, body: Mapping[str, Any], *, challenge: bool = False) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        if challenge:
            for value in _CHALLENGES:
                self.send_header("WWW-Authenticate", value)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._answered = True
        if self.command != "HEAD":
            self.wfile.write(payload)


class _ClientGone(OSError):
    """The client closed its connection while the answer was being sent."""


class TlsProxy:
    """HTTPS with credential checks on ``127.0.0.1`` (a free port), forwarding to ``upstream`` (http://).

    :attr:`credentials` may be replaced while the proxy runs (a rotation).
    """

    def __init__(
        self,
        upstream: str,
        certificates: Certificates,
        credentials: Credentials,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise TlsProxyError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.certificates = certificates
        self.credentials = credentials
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(certificates.chain, certificates.server_key)
        self.exchanges: list[Exchange] = []
        self.handshake_failures: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>`` (the address the certificate names)."""
        if self._server is None:
            raise TlsProxyError("the proxy is not running")
        return f"https://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Self:
        if self._server is not None:
            raise TlsProxyError("the proxy is already running")
        try:
            server = _Server(self, (self.host, self.port))
        except OSError as exc:
            raise TlsProxyError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"tls-proxy:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections; safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- records ------------------------------------------------------------------------------

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def _handshake_failed(self, exc: BaseException) -> None:
        with self._lock:
            self.handshake_failures.append(f"{type(exc).__name__}: {exc}")

    def exchanges_for(self, path_prefix: str) -> list[Exchange]:
        """The recorded exchanges whose path starts with ``path_prefix``."""
        with self._lock:
            return [e for e in self.exchanges if e.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.handshake_failures.clear()
