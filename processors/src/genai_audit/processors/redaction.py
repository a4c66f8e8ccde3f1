"""Replacing detected values: typed placeholders, keyed pseudonyms, partial masks, or nothing.

A keyed pseudonym is ``[TYPE:token]`` where ``token`` is the start of
HMAC-SHA256(key, type + value in normal form). One value gets one token in
every span, session and process that shares the key, so an investigator can
see that the same card number appears in five sessions without seeing the
number; without the key, the token cannot be reversed by trying every phone
number or SSN. The key never appears in telemetry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_audit import semconv as sc
from genai_audit.config import ConfigError
from genai_audit.processors._memo import DEFAULT_MEMO_CHARS, MEMO_MIN_CHARS, ContentMemo
from genai_audit.processors.chain import AuditRecord
from genai_audit.processors.detectors import (
    CREDIT_CARD,
    EMAIL,
    PHONE,
    PII,
    REDACTION_TOKEN,
    SECRET,
    SECRET_VALUE,
    Finding,
    Scanner,
    _password_value,
    resolve,
)
from genai_audit.serialize import valid_text

PLACEHOLDER = "placeholder"
PSEUDONYM = "pseudonym"
MASK = "mask"
DROP = "drop"
MODES = (PLACEHOLDER, PSEUDONYM, MASK, DROP)

ENV_KEY = "GENAI_AUDIT_PSEUDONYM_KEY"
ENV_KEY_FILE = "GENAI_AUDIT_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 16
#: JSON text longer than this is scanned as text rather than parsed and rebuilt.
MAX_PARSE_CHARS = 8_000_000


def default_key_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("genai-audit", appauthor=False) / "pseudonym.key"


def _key_from_text(raw: str, origin: str) -> bytes:
    key = raw.strip().encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{origin}: the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    return key


def load_key(env: Mapping[str, str] | None = None, default_path: Path | None = None) -> bytes:
    """The pseudonym key: ``GENAI_AUDIT_PSEUDONYM_KEY``, else the key file, else a generated default file.

    The default file is created on first use with owner-only permissions
    (directory 0700, file 0600), atomically, so concurrent first starts agree on one key.
    """
    env = os.environ if env is None else env
    if env.get(ENV_KEY, "").strip():
        return _key_from_text(env[ENV_KEY], ENV_KEY)
    named = env.get(ENV_KEY_FILE, "").strip()
    if named:
        try:
            return _key_from_text(Path(named).expanduser().read_text("utf-8"), f"{ENV_KEY_FILE}={named}")
        except OSError as exc:
            raise ConfigError(f"{ENV_KEY_FILE}={named}: cannot read the key file ({exc.strerror})") from None
    path = default_path or default_key_path()
    try:
        return _key_from_text(path.read_text("utf-8"), str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"pseudonym key file {path}: {exc.strerror}") from None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _key_from_text(path.read_text("utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot create the pseudonym key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return _key_from_text(path.read_text("utf-8"), str(path))


@dataclass
class Tally:
    """What redaction found in one record."""

    counts: Counter[str] = field(default_factory=Counter)
    kinds: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)

    def add(self, finding: Finding, token: str | None) -> None:
        self.counts[finding.entity] += 1
        self.kinds.add(finding.kind)
        if token is not None:
            self.tokens.add(token)


#: what one redaction added to a tally: (entity, count) pairs, kinds, pseudonym tokens
_Marks = tuple[tuple[tuple[str, int], ...], frozenset[str], frozenset[str]]


def _marks(tally: Tally) -> _Marks:
    return tuple(tally.counts.items()), frozenset(tally.kinds), frozenset(tally.tokens)


def _replay(marks: _Marks, tally: Tally) -> None:
    counts, kinds, tokens = marks
    for entity, count in counts:
        tally.counts[entity] += count
    tally.kinds |= kinds
    tally.tokens |= tokens


def _mask(finding: Finding, value: str) -> str:
    keep = 4 if finding.entity == CREDIT_CARD else 2 if finding.entity == PHONE else 0
    if finding.entity == EMAIL and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if keep:
        out: list[str] = []
        seen = 0
        total = sum(ch.isdigit() for ch in value)
        for ch in value:
            if ch.isdigit():
                seen += 1
                out.append(ch if seen > total - keep else "*")
            else:
                out.append(ch)
        return "".join(out)
    if len(value) > 8 and finding.kind != SECRET:
        return "*" * (len(value) - 4) + value[-4:]
    return "*" * min(len(value), 12)


#: Keys whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_\-.\s])?(?:password|passwd|passphrase|pwd|secret|api[_\-]?key|apikey|access[_\-]?key|"
    r"private[_\-]?key|client[_\-]?secret|auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|"
    r"authorization|credentials?)$"
)


def _hmac_sha256_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after the padded key's inner and outer blocks (RFC 2104).

    Copying them and hashing the message gives the same digest as ``hmac.new(key, message, sha256)``
    in well under half the time, which matters when dense text needs thousands of pseudonyms.
    """
    block = 64  # SHA-256's block size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


class Redactor:
    """Finds and replaces PII and secrets in text and in JSON-compatible structures."""

    def __init__(
        self,
        scanner: Scanner,
        key: bytes,
        modes: Mapping[str, str] | None = None,
        default_mode: str = PSEUDONYM,
        token_chars: int = 12,
        finders: Sequence[Callable[[str], list[Finding]]] = (),
        memo_chars: int = DEFAULT_MEMO_CHARS,
    ) -> None:
        """``finders``: more detectors beyond the scanner's patterns (the NLP detector,
        :mod:`genai_audit.processors.nlp`); where one of their findings overlaps a
        pattern finding or a redaction token, the pattern's is kept.

        ``memo_chars``: how many characters of content values (each counted at its length as sent, or
        its redacted length if longer) the memo answers for, so that text sent again (a conversation's
        history) is not scanned again; 0: none."""
        for entity, mode in {**(modes or {}), "*": default_mode}.items():
            if mode not in MODES:
                raise ConfigError(f"redaction mode {mode!r} for {entity}: expected one of {', '.join(MODES)}")
        self.scanner = scanner
        self._key = key
        self._hmac_inner, self._hmac_outer = _hmac_sha256_states(key)
        self._hmac_entity: dict[str, hashlib._Hash] = {}  # inner state after "TYPE\0", per entity type
        self.modes = dict(modes or {})
        self.default_mode = default_mode
        self.token_chars = token_chars
        self.finders = tuple(finders)
        # redacted value and what it added to the tally, by digest of the text as sent; costed in characters
        self.memo: ContentMemo[tuple[Any, _Marks]] | None = ContentMemo(memo_chars) if memo_chars > 0 else None

    def clear_caches(self) -> None:
        """Forget remembered redactions and validations; for measurements that must not reuse them."""
        if self.memo is not None:
            self.memo.clear()
        self.scanner.clear_caches()

    def __repr__(self) -> str:  # never show the key
        return f"Redactor(default_mode={self.default_mode!r}, modes={self.modes!r})"

    def token(self, entity: str, normalized: str) -> str:
        """The start of HMAC-SHA256(key, entity NUL value), in hex."""
        prefix = self._hmac_entity.get(entity)
        if prefix is None:
            prefix = self._hmac_inner.copy()
            prefix.update(f"{entity}\x00".encode("utf-8", "surrogatepass"))
            self._hmac_entity[entity] = prefix
        inner = prefix.copy()
        inner.update(normalized.encode("utf-8", "surrogatepass"))
        outer = self._hmac_outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[: self.token_chars]

    def pseudonym(self, entity: str, normalized: str) -> str:
        """The text that replaces a value in pseudonym mode, e.g. ``[EMAIL:7f3a9c1e04b2]``."""
        return f"[{entity}:{self.token(entity, normalized)}]"

    def findings(self, text: str) -> list[Finding]:
        """What :meth:`redact_text` replaces in ``text`` (valid Unicode), in order: offsets are characters."""
        findings = self.scanner.scan(text)
        return self._with_finders(text, findings) if self.finders else findings

    def replacement(self, finding: Finding, original: str) -> str:
        """The text that replaces ``original``, the value of ``finding``, under this redactor's modes."""
        return self._replacement(finding, original, None)

    def redact_text(self, text: str, tally: Tally | None = None) -> str:
        try:
            findings = self.findings(text)
        except UnicodeEncodeError:
            text = valid_text(text)
            findings = self.findings(text)
        if not findings:
            return text
        pieces: list[str] = []
        append = pieces.append
        modes, default = self.modes, self.default_mode
        last = 0
        if tally is None and default == PSEUDONYM and all(mode == PSEUDONYM for mode in modes.values()):
            # the common case, a pseudonym for everything and no tally, takes the short way: token() inlined
            prefixes, outer, chars = self._hmac_entity, self._hmac_outer, self.token_chars
            for start, end, entity, _kind, normalized, _priority in findings:
                prefix = prefixes.get(entity)
                if prefix is None:
                    self.token(entity, "")  # remembers the entity's prefix state
                    prefix = prefixes[entity]
                inner = prefix.copy()
                inner.update(normalized.encode("utf-8", "surrogatepass"))
                digest = outer.copy()
                digest.update(inner.digest())
                append(text[last:start])
                append(f"[{entity}:{digest.hexdigest()[:chars]}]")
                last = end
        else:
            for finding in findings:
                start, end = finding.start, finding.end
                append(text[last:start])
                append(self._replacement(finding, text[start:end], tally))
                last = end
        append(text[last:])
        return "".join(pieces)

    def _with_finders(self, text: str, findings: list[Finding]) -> list[Finding]:
        """``findings`` plus what the extra finders see in the characters nobody claimed yet."""
        extra: list[Finding] = []
        for finder in self.finders:
            extra.extend(finder(text))
        if not extra:
            return findings
        claimed = [(f.start, f.end) for f in findings]
        if "[" in text:
            claimed.extend((m.start(), m.end()) for m in REDACTION_TOKEN.finditer(text))
        free = [f for f in extra if all(f.end <= start or f.start >= end for start, end in claimed)]
        return sorted([*findings, *resolve(free)], key=lambda f: f.start)

    def _redact_string(self, text: str, tally: Tally) -> Any:
        memo = self.memo
        if memo is None or len(text) < MEMO_MIN_CHARS:
            return self._redact_string_now(text, tally)
        digest = memo.digest(text)
        entry = memo.get(digest)
        if entry is not None:
            redacted, marks = entry
            _replay(marks, tally)
            return redacted
        own = Tally()
        redacted = self._redact_string_now(text, own)
        marks = _marks(own)
        # counted at the length of the text as sent (at least MEMO_MIN_CHARS), or of what is kept if longer:
        # a value that redacts to nothing still takes room
        kept = len(redacted) if isinstance(redacted, str) else 0
        memo.put(digest, (redacted, marks), max(len(text), kept))
        _replay(marks, tally)
        return redacted

    def _redact_string_now(self, text: str, tally: Tally) -> Any:
        stripped = text.lstrip()
        if stripped[:1] in ("{", "[") and len(text) <= MAX_PARSE_CHARS:
            # JSON text (tool arguments, tool results): redact the parsed values so escapes
            # such as \u0040 cannot hide a value, then write it back.
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, (dict, list)):
                before = sum(tally.counts.values())
                redacted = self.redact_value(parsed, tally)
                if sum(tally.counts.values()) == before:
                    return valid_text(text)
                return json.dumps(redacted, ensure_ascii=False)
        return self.redact_text(text, tally)

    def redact_value(self, value: Any, tally: Tally | None = None) -> Any:
        """A redacted copy of a JSON-compatible value (iterative: any nesting depth)."""
        tally = tally if tally is not None else Tally()
        if isinstance(value, str):
            return self._redact_string(value, tally)
        if not isinstance(value, (dict, list, tuple)):
            return self._redact_scalar(value, tally)
        root: list[Any] = [None]
        # each entry: (source container, destination container, key in the parent destination)
        stack: list[tuple[Any, MutableMapping[Any, Any] | list[Any], Any]] = [(value, root, 0)]
        while stack:
            source, parent, slot = stack.pop()
            if isinstance(source, dict):
                dest_map: dict[Any, Any] = {}
                parent[slot] = dest_map
                for key, item in source.items():
                    new_key = self.redact_text(key, tally) if isinstance(key, str) else key
                    if isinstance(key, str) and _SECRET_KEY.search(key) is not None:
                        secret = self._secret_field(item, tally)
                        if secret is not None:
                            dest_map[new_key] = secret
                            continue
                    self._place(item, dest_map, new_key, stack, tally)
            else:
                dest_list: list[Any] = [None] * len(source)
                parent[slot] = dest_list
                for index, item in enumerate(source):
                    self._place(item, dest_list, index, stack, tally)
        return root[0]

    def _secret_field(self, item: Any, tally: Tally) -> str | None:
        """The replacement for a value stored under a secret-looking key (``"password": "..."``)."""
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            return None
        value = valid_text(str(item))  # a lone surrogate would stop the RE2 checks below
        if REDACTION_TOKEN.fullmatch(value.strip()) is not None or _password_value(value) is None:
            return None
        finding = Finding(0, len(value), SECRET_VALUE, SECRET, value, 80)
        return self._replacement(finding, value, tally)

    def _replacement(self, finding: Finding, original: str, tally: Tally | None) -> str:
        mode = self.modes.get(finding.entity, self.default_mode)
        token = None
        if mode == PSEUDONYM:
            token = self.pseudonym(finding.entity, finding.normalized)
            out = token
        elif mode == PLACEHOLDER:
            out = f"[{finding.entity}]"
        elif mode == MASK:
            out = _mask(finding, original)
        else:
            out = ""
        if tally is not None:
            tally.add(finding, token)
        return out

    def _place(self, item: Any, dest: Any, slot: Any, stack: list[Any], tally: Tally) -> None:
        if isinstance(item, (dict, list, tuple)):
            stack.append((item, dest, slot))
        elif isinstance(item, str):
            dest[slot] = self._redact_string(item, tally)
        else:
            dest[slot] = self._redact_scalar(item, tally)

    def _redact_scalar(self, value: Any, tally: Tally) -> Any:
        # a card number or phone number sent as a JSON number
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
            text = str(value)
            redacted = self.redact_text(text, tally)
            return value if redacted == text else redacted
        return value


class RedactionStep:
    """Processing step: redacts every content value of the record and records what it found."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.max_tokens = 64

    def clear_caches(self) -> None:
        """Forget remembered redactions and validations; for measurements that must not reuse them."""
        self.redactor.clear_caches()

    def __call__(self, record: AuditRecord) -> None:
        tally = Tally()
        redact = self.redactor.redact_value
        record.content = {key: redact(value, tally) for key, value in record.content.items()}
        apply_tally(record.attributes, tally, self.max_tokens)


def apply_tally(attributes: MutableMapping[str, Any], tally: Tally, max_tokens: int = 64) -> None:
    pii_types = sorted(tally.counts)
    attributes[sc.AUDIT_PII_DETECTED] = PII in tally.kinds
    attributes[sc.AUDIT_PII_COUNT] = sum(tally.counts.values())
    if pii_types:
        attributes[sc.AUDIT_PII_TYPES] = pii_types
    if tally.tokens:
        attributes[sc.AUDIT_PII_TOKENS] = sorted(tally.tokens)[:max_tokens]
    attributes[sc.AUDIT_SECRETS_DETECTED] = SECRET in tally.kinds
    attributes[sc.AUDIT_REDACTED] = True
