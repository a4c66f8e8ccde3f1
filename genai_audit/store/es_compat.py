"""One code path for Elasticsearch clients 8.x and 9.x against servers 8.x and 9.x.

Each client major sends ``Accept``/``Content-Type:
application/vnd.elasticsearch+json; compatible-with=<its major>``. A 9.x server
accepts ``compatible-with=8``, but an 8.x server refuses ``compatible-with=9``
(``media_type_header_exception``), so a 9.x client cannot talk to an 8.x server
as it comes.

:class:`NegotiatingTransport` settles the version once, on the first request:
if the server takes the client's own media type (a 2xx answer), nothing changes; if it refuses
it, the refusal names the versions the server accepts ("Accept version must be
either version 8 or 7"), and from then on every request asks for the newest of
those. The refused request is sent again: the server refuses such a request
while reading its headers, before acting on it. No request is added (a probe such
as ``GET /`` needs the ``monitor`` privilege that a writer's API key lacks).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

from elastic_transport import Transport
from elasticsearch import Elasticsearch

logger = logging.getLogger("genai_audit.store")

CLIENT_VERSION = version("elasticsearch")
CLIENT_MAJOR = int(CLIENT_VERSION.split(".")[0])
_COMPAT = re.compile(r"compatible-with=(\d+)")
_ACCEPTED = re.compile(r"must be either version (\d+) or (\d+)")


def compat_major(client_major: int, server_major: int | None) -> int:
    """The ``compatible-with`` version both ends accept."""
    if server_major is None:
        return client_major
    return min(client_major, server_major)


def refused_media_type(status: int, body: Any) -> int | None:
    """For a refusal of the compatibility media type: the newest version the server accepts, else None."""
    if status != 400 or "media_type_header_exception" not in str(body):
        return None
    accepted = _ACCEPTED.search(str(body))
    if accepted is None:
        return CLIENT_MAJOR - 1
    return max(int(number) for number in accepted.groups())


def _rewrite(headers: Mapping[str, Any], major: int) -> dict[str, Any]:
    out = dict(headers)
    for name, value in headers.items():
        if str(name).lower() in ("accept", "content-type") and isinstance(value, str):
            out[name] = _COMPAT.sub(f"compatible-with={major}", value)
    return out


class NegotiatingTransport(Transport):
    """A transport that asks for the compatibility version the server accepts, settled on the first request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._settle_lock = threading.Lock()
        #: the version asked for in compatibility headers; None until the first answer
        self.compat_major: int | None = None

    def perform_request(self, method: str, target: str, **kwargs: Any) -> Any:
        major = self.compat_major
        headers = kwargs.get("headers")
        if major is not None and major != CLIENT_MAJOR and isinstance(headers, Mapping):
            kwargs["headers"] = _rewrite(headers, major)
        response = super().perform_request(method, target, **kwargs)
        if major is not None:
            return response
        status = response.meta.status
        accepted = None if 200 <= status < 300 else refused_media_type(status, response.body)
        if accepted is None and not 200 <= status < 300:
            return response  # neither taken nor refused for its media type: settle on a later answer
        with self._settle_lock:
            if self.compat_major is None:
                self.compat_major = compat_major(CLIENT_MAJOR, accepted)
                if accepted is not None:
                    logger.info(
                        "genai-audit: the Elasticsearch server accepts up to compatible-with=%d (client %s)",
                        accepted, CLIENT_VERSION,
                    )
        if accepted is None or not isinstance(headers, Mapping):
            return response
        kwargs["headers"] = _rewrite(headers, self.compat_major)
        return super().perform_request(method, target, **kwargs)


def negotiating_client(hosts: Any, **options: Any) -> Elasticsearch:
    """An ``Elasticsearch`` client with :class:`NegotiatingTransport`: works with servers 8.x and 9.x."""
    return Elasticsearch(hosts, transport_class=NegotiatingTransport, **options)
