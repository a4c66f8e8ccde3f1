"""A small client for the Kibana HTTP APIs ``genai-audit kibana install`` uses (standard library only).

Requests carry the credentials (``Authorization: ApiKey ...`` or ``Basic ...``) and, for
anything but ``GET``, the ``kbn-xsrf`` header Kibana requires. A space other than the default one
is addressed with the ``/s/<space>`` path prefix. Every failure becomes a :class:`KibanaError`
with a one-line message: unreachable URL, TLS trouble, a server that is not Kibana, refused
credentials, missing privileges.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_SPACE: Final = "default"
#: Kibana's rule for space ids
_SPACE_ID: Final = re.compile(r"^[a-z0-9_-]{1,1024}$")


class KibanaError(Exception):
    """A failure to report as one line."""


@dataclass(frozen=True)
class Answer:
    """A Kibana answer: the status, the decoded JSON body (None when it was not JSON), headers in lower case."""

    status: int
    body: Any
    headers: Mapping[str, str]

    def message(self) -> str:
        """Kibana's own explanation (``message``, else ``error``), on one line."""
        text = ""
        if isinstance(self.body, dict):
            text = str(self.body.get("message") or self.body.get("error") or "")
        return " ".join(text.split())[:300]


def _read_secret(path: str, what: str) -> str:
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KibanaError(f"{what} {path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    if not value:
        raise KibanaError(f"{what} {path}: the file is empty")
    return value


def authorization(api_key_file: str | None, user: str | None, password_file: str | None) -> str:
    """The ``Authorization`` header value from the command's credential options."""
    if api_key_file and (user or password_file):
        raise KibanaError("give --api-key-file, or --user with --password-file, not both")
    if api_key_file:
        key = _read_secret(api_key_file, "--api-key-file")
        if ":" in key:  # "id:api_key" as Elasticsearch creates it: Kibana wants its base64 form
            key = base64.b64encode(key.encode()).decode()
        return f"ApiKey {key}"
    if user and password_file:
        password = _read_secret(password_file, "--password-file")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if user or password_file:
        raise KibanaError("--user and --password-file go together; one of them is missing")
    raise KibanaError("Kibana credentials: give --api-key-file, or --user with --password-file")


def check_space(space: str | None) -> str:
    space = (space or DEFAULT_SPACE).strip()
    if not _SPACE_ID.match(space):
        raise KibanaError(f"--space {space!r}: a space id is lowercase letters, digits, '_' and '-'")
    return space


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KibanaError(f"--kibana {url!r}: expected an http:// or https:// URL")
    if parts.username or parts.password:
        raise KibanaError("--kibana: put no credentials in the URL; use --api-key-file or --user/--password-file")
    return url.strip().rstrip("/")


class KibanaClient:
    """Requests to one Kibana, in one space."""

    def __init__(
        self,
        url: str,
        authorization: str,
        *,
        space: str | None = None,
        ca_certs: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = check_url(url)
        self.space = check_space(space)
        self._authorization = authorization
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None
        if ca_certs:
            try:
                self._context = ssl.create_default_context(cafile=str(Path(ca_certs).expanduser()))
            except (OSError, ssl.SSLError) as exc:
                raise KibanaError(f"--ca-certs {ca_certs}: cannot use it ({exc})") from None

    @property
    def prefix(self) -> str:
        """The path prefix of the space (none for the default space)."""
        return "" if self.space == DEFAULT_SPACE else f"/s/{self.space}"

    def space_path(self, path: str) -> str:
        return self.prefix + path

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; any answer comes back (statuses are the caller's), transport failures raise."""
        target = self.url + path + (f"?{urlencode(dict(query))}" if query else "")
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        if method != "GET":
            headers["kbn-xsrf"] = "true"
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return _answer(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as error:
            payload = error.read()
            return _answer(error.code, payload, error.headers)
        except urllib.error.URLError as error:
            raise KibanaError(f"cannot reach Kibana at {self.url}: {_reason(error.reason)}") from None
        except TimeoutError:
            raise KibanaError(f"Kibana at {self.url} did not answer within {self.timeout:g} s") from None
        except (ConnectionError, OSError) as error:
            raise KibanaError(f"cannot reach Kibana at {self.url}: {_reason(error)}") from None

    def fail(self, answer: Answer, doing: str) -> KibanaError:
        """The error for an unexpected answer to ``doing``."""
        if answer.status == 401:
            return KibanaError(f"Kibana at {self.url} refused the credentials (HTTP 401) while {doing}")
        if answer.status == 403:
            return KibanaError(
                f"the credentials may not do this in Kibana at {self.url} (HTTP 403) while {doing}: {answer.message()}"
            )
        if answer.headers.get("x-elastic-product") == "Elasticsearch":
            return KibanaError(f"{self.url} is Elasticsearch, not Kibana: give the Kibana URL with --kibana")
        detail = answer.message()
        return KibanaError(f"Kibana at {self.url} answered HTTP {answer.status} while {doing}" + (
            f": {detail}" if detail else ""
        ))

    # -- the calls install makes --------------------------------------------------------------------

    def version(self) -> str:
        """Kibana's version, from ``GET /api/status``; a server that is not Kibana is an error."""
        answer = self.request("GET", "/api/status")
        if answer.status != 200:
            raise self.fail(answer, "reading its status")
        version = answer.body.get("version") if isinstance(answer.body, dict) else None
        number = version.get("number") if isinstance(version, dict) else None
        if not isinstance(number, str):
            raise KibanaError(f"{self.url} does not answer like Kibana (GET /api/status has no version)")
        return number

    def check_space_exists(self) -> None:
        """The space must exist: Kibana would otherwise store objects in a space nobody can open."""
        if self.space == DEFAULT_SPACE:
            return
        answer = self.request("GET", f"/api/spaces/space/{quote(self.space, safe='')}")
        if answer.status == 404:
            raise KibanaError(f"unknown space {self.space!r} in Kibana at {self.url}")
        if answer.status != 200:
            raise self.fail(answer, f"looking up the space {self.space!r}")

    def connector_type(self, connector_id: str) -> str:
        answer = self.request("GET", self.space_path(f"/api/actions/connector/{quote(connector_id, safe='')}"))
        if answer.status == 404:
            raise KibanaError(f"unknown connector {connector_id!r} in space {self.space!r}")
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise self.fail(answer, f"reading the connector {connector_id!r}")
        return str(answer.body.get("connector_type_id", ""))

    def import_objects(self, ndjson: str, file_name: str = "genai-audit.ndjson") -> Answer:
        """``POST /api/saved_objects/_import?overwrite=true`` with the NDJSON as the multipart ``file``."""
        boundary = "genai-audit-" + secrets.token_hex(12)
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            "Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        raw = head + ndjson.encode("utf-8") + f"\r\n--{boundary}--\r\n".encode()
        return self.request(
            "POST",
            self.space_path("/api/saved_objects/_import"),
            raw=raw,
            content_type=f"multipart/form-data; boundary={boundary}",
            query={"overwrite": "true"},
        )

    def rule_path(self, rule_id: str) -> str:
        return self.space_path(f"/api/alerting/rule/{quote(rule_id, safe='')}")


def _answer(status: int, payload: bytes, headers: Any) -> Answer:
    try:
        body = json.loads(payload.decode("utf-8")) if payload else None
    except (UnicodeDecodeError, ValueError):
        body = None
    return Answer(status, body, {str(k).lower(): str(v) for k, v in dict(headers or {}).items()})


def _reason(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({reason.verify_message}; give the CA with --ca-certs)"
    if isinstance(reason, ssl.SSLError):
        return f"TLS: {reason.reason or reason}"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)
