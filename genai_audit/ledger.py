"""The integrity files on disk: places, keys, ledger lines, tombstones.

See :mod:`genai_audit.integrity` for what the files mean; this module reads
and writes them. Every file is created owner-only (0600) in an owner-only
directory (0700), appended to and fsync'd, never rewritten.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from genai_audit.checkpoint import NoteError, SigningKey, VerifierKey, valid_name
from genai_audit.config import ConfigError

logger = logging.getLogger("genai_audit.integrity")

ENV_DIR: Final = "GENAI_AUDIT_INTEGRITY_DIR"
ENV_KEY_FILE: Final = "GENAI_AUDIT_SIGNING_KEY_FILE"
ENV_ORIGIN: Final = "GENAI_AUDIT_INTEGRITY_ORIGIN"
LEDGER_SUFFIX: Final = ".ledger"
CHECKPOINTS_SUFFIX: Final = ".checkpoints"
TOMBSTONES_SUFFIX: Final = ".tombstones"
LEDGER_MAGIC: Final = "genai-audit-ledger/1"
TOMBSTONE_DOMAIN: Final = b"genai-audit-tombstone/1\n"
#: the reason the pipeline itself records when a store refused a sealed record
UNSTORED: Final = "unstored"
STREAM_RE: Final = re.compile(r"^[0-9a-f]{32}$")


class IntegrityError(Exception):
    """A ledger, checkpoint or tombstone cannot be written or does not match."""


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger line: a record's place in its stream and its leaf hash."""

    stream: str
    seq: int
    record_id: str
    leaf: bytes

    def line(self) -> str:
        return f"{self.stream} {self.seq} {self.record_id} {self.leaf.hex()}\n"

    @classmethod
    def parse(cls, line: str) -> LedgerEntry:
        parts = line.split(" ")
        if len(parts) != 4 or not parts[1].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", parts[3]):
            raise ValueError("malformed ledger line")
        return cls(parts[0], int(parts[1]), parts[2], bytes.fromhex(parts[3]))


# --- places and keys -------------------------------------------------------------------------------


def _data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path("genai-audit", appauthor=False)


def integrity_dir(env: Mapping[str, str] | None = None) -> Path:
    """``GENAI_AUDIT_INTEGRITY_DIR``, else ``<user data dir>/genai-audit/integrity``."""
    env = os.environ if env is None else env
    named = env.get(ENV_DIR, "").strip()
    return Path(named).expanduser() if named else _data_dir() / "integrity"


def default_key_path() -> Path:
    return _data_dir() / "signing-key.pem"


def default_origin(env: Mapping[str, str] | None = None) -> str:
    """``GENAI_AUDIT_INTEGRITY_ORIGIN``, else ``genai-audit/<host name>``."""
    env = os.environ if env is None else env
    named = env.get(ENV_ORIGIN, "").strip()
    if named:
        if not valid_name(named):
            raise ConfigError(f"{ENV_ORIGIN}={named!r}: an origin has no spaces and no '+'")
        return named
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "localhost"
    return f"genai-audit/{host}"


def _read_key(path: Path, origin: str) -> SigningKey:
    try:
        return SigningKey.parse(path.read_bytes())
    except NoteError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read the signing key ({exc.strerror or exc})") from None


def find_signing_key(env: Mapping[str, str] | None = None) -> SigningKey | None:
    """The signing key ``GENAI_AUDIT_SIGNING_KEY_FILE`` names, else the default file's; None when neither exists."""
    env = os.environ if env is None else env
    named = env.get(ENV_KEY_FILE, "").strip()
    if named:
        return _read_key(Path(named).expanduser(), f"{ENV_KEY_FILE}={named}")
    path = default_key_path()
    return _read_key(path, str(path)) if path.exists() else None


def load_signing_key(env: Mapping[str, str] | None = None) -> SigningKey:
    """The signing key (see :func:`find_signing_key`), generating the default one on first use.

    The default key appears atomically (written to a temporary file, then
    linked into place, 0600 in a 0700 directory), so concurrent first starts
    agree on one complete key; its verifier key is written beside it.
    """
    found = find_signing_key(env)
    if found is not None:
        return found
    path = default_key_path()
    key = SigningKey.generate()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.pem())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key(path, str(path))
    except OSError as exc:
        raise ConfigError(f"cannot create the signing key {path}: {exc.strerror or exc}") from None
    public = path.with_suffix(".vkey")
    public.write_text(key.verifier.vkey() + "\n", encoding="ascii")
    logger.warning("genai-audit: created the integrity signing key %s (back it up); verifier key %s", path, public)
    return key


def load_verifier(given: str | None, env: Mapping[str, str] | None = None) -> VerifierKey:
    """The key checkpoints must be signed with: ``given`` (a file or a verifier-key line), else the local key's."""
    if given:
        path = Path(given).expanduser()
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else given
            return VerifierKey.parse(text)
        except (OSError, UnicodeDecodeError, NoteError) as exc:
            raise ConfigError(f"public key {given!r}: {exc}") from None
    key = find_signing_key(env)
    if key is None:
        raise ConfigError(f"no public key: give one (a .vkey or PEM file) or set {ENV_KEY_FILE}")
    return key.verifier


# --- files -----------------------------------------------------------------------------------------


def append_synced(path: Path, data: bytes) -> None:
    """Append and fsync; a new file is created 0600 and its directory entry synced."""
    fresh = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if fresh:
        _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tombstone_message(payload: Mapping[str, Any]) -> bytes:
    """What a tombstone's signature covers: a fixed prefix and the canonical JSON without ``sig``."""
    body = {key: value for key, value in payload.items() if key != "sig"}
    return TOMBSTONE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_tombstones(directory: Path, key: SigningKey, entries: Iterable[LedgerEntry], reason: str) -> int:
    by_stream: dict[str, list[str]] = {}
    signer = f"{key.name}+{key.verifier.key_id.hex()}"
    stamp = now()
    for entry in entries:
        payload: dict[str, Any] = {
            "stream": entry.stream,
            "seq": entry.seq,
            "id": entry.record_id,
            "leaf": entry.leaf.hex(),
            "reason": reason,
            "time": stamp,
            "signer": signer,
        }
        payload["sig"] = base64.b64encode(key.sign(tombstone_message(payload))).decode()
        by_stream.setdefault(entry.stream, []).append(json.dumps(payload, separators=(",", ":")) + "\n")
    for stream, lines in by_stream.items():
        if not STREAM_RE.match(stream):
            raise IntegrityError(f"not a stream id: {stream!r}")
        append_synced(directory / f"{stream}{TOMBSTONES_SUFFIX}", "".join(lines).encode())
    return sum(len(lines) for lines in by_stream.values())


# --- reading ledgers -------------------------------------------------------------------------------


@dataclass
class Ledger:
    """A ledger file as read back: header, entries by seq, and what is wrong with it."""

    stream: str
    header: dict[str, Any] = field(default_factory=dict)
    entries: dict[int, LedgerEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    torn: bool = False

    @property
    def size(self) -> int:
        """The number of entries before the first gap."""
        size = 0
        while size in self.entries:
            size += 1
        return size


def read_ledger(path: Path) -> Ledger:
    stream = path.name.removesuffix(LEDGER_SUFFIX)
    ledger = Ledger(stream)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        ledger.problems.append(f"cannot read the ledger: {exc}")
        return ledger
    lines = text.split("\n")
    if lines[-1]:
        ledger.torn = True  # a write cut short by a crash: the record was never handed to the store
    lines.pop()
    if not lines or not lines[0].startswith(LEDGER_MAGIC + " "):
        ledger.problems.append("the ledger has no header line")
    else:
        try:
            header = json.loads(lines[0][len(LEDGER_MAGIC) + 1 :])
            ledger.header = header if isinstance(header, dict) else {}
        except ValueError:
            ledger.problems.append("the ledger header is not JSON")
        if ledger.header.get("stream") != stream:
            ledger.problems.append("the ledger header names another stream")
    for number, line in enumerate(lines[1:], start=2):
        try:
            entry = LedgerEntry.parse(line)
        except ValueError:
            ledger.problems.append(f"line {number} is malformed")
            continue
        if entry.stream != stream:
            ledger.problems.append(f"line {number} names stream {entry.stream}")
        elif entry.seq in ledger.entries:
            ledger.problems.append(f"seq {entry.seq} appears twice (line {number})")
        else:
            if entry.seq != len(ledger.entries):
                ledger.problems.append(f"line {number} has seq {entry.seq} where {len(ledger.entries)} was expected")
            ledger.entries[entry.seq] = entry
    return ledger
