"""A bounded memory of work done on content values, for content that is sent again.

A conversation sends its whole history with every call, so without a memory
every message would be scanned again on every later call. Entries are keyed by
a keyed BLAKE2b digest of the text (the key is random per memo, so per
process), never by the text itself, and the least recently used go first once
the entries' summed cost passes the bound.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

ENV_MEMO_CHARS = "GENAI_AUDIT_MEMO_CHARS"
#: characters of content each memo answers for, by default (0 in the environment: no memo); every
#: remembered value counts at least its length as sent, so at most DEFAULT_MEMO_CHARS / MEMO_MIN_CHARS entries
DEFAULT_MEMO_CHARS = 2_000_000
#: shorter texts are worked on again each time: cheaper than remembering them
MEMO_MIN_CHARS = 64


class ContentMemo(Generic[V]):
    """Values by text digest, least recently used first out, bounded by their summed cost."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[V, int]] = OrderedDict()
        self._cost = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def digest(self, text: str, *context: object) -> bytes:
        """The key of ``text`` (and of anything else the remembered value depends on)."""
        mac = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16)
        if context:
            mac.update(repr(context).encode("utf-8", "surrogatepass"))
        return mac.digest()

    def get(self, digest: bytes) -> V | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(digest)
            self.hits += 1
            return entry[0]

    def put(self, digest: bytes, value: V, cost: int) -> None:
        if cost > self.max_cost:
            return
        with self._lock:
            if digest in self._entries:
                return
            self._entries[digest] = (value, cost)
            self._cost += cost
            while self._cost > self.max_cost:
                _, (_, old) = self._entries.popitem(last=False)
                self._cost -= old

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._cost = 0

    @property
    def cost(self) -> int:
        return self._cost

    def __len__(self) -> int:
        return len(self._entries)
