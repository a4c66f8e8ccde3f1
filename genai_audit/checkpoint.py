"""Signed checkpoints: the C2SP ``tlog-checkpoint`` body inside a C2SP ``signed-note``, with Ed25519 keys.

A checkpoint commits to a log's state in three lines::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>

and a signed note appends a blank line and one signature line per signer::

    — <key name> <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>

The signature covers the note text including its final newline. The key id is
the first four bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)``.

Keys are shared as *verifier keys* (``<name>+<key id hex>+<base64(0x01 || public key)>``),
the text form transparency-log tooling uses; a private key may be kept as PEM
(PKCS #8), a raw 32-byte seed, or ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM_ED25519: Final = 0x01
SIGNATURE_PREFIX: Final = "\u2014 "  # em dash and a space
DEFAULT_KEY_NAME: Final = "genai-audit"
_NAME_RE = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """A note, checkpoint or key that cannot be parsed or does not verify."""


def valid_name(name: str) -> bool:
    """Key names and origins: non-empty, no whitespace, no ``+``."""
    return bool(_NAME_RE.match(name))


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key id of an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALGORITHM_ED25519]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class VerifierKey:
    """A public key and the name it signs under."""

    name: str
    public_key: bytes
    #: True when the name came with the key (a verifier-key line), False for a bare public key
    named: bool = True

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALGORITHM_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, name: str, signed_id: bytes, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` over ``message`` is this key's, under ``name`` and ``signed_id``."""
        if self.named and name != self.name:
            return False
        if signed_id != key_id(name, self.public_key):
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """A verifier-key line (``name+id+key``) or a PEM public key (then any signer name is accepted)."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            try:
                loaded = serialization.load_pem_public_key(text.encode())
            except ValueError as exc:
                raise NoteError(f"not a PEM public key: {exc}") from None
            if not isinstance(loaded, Ed25519PublicKey):
                raise NoteError("the PEM public key is not an Ed25519 key")
            return cls(DEFAULT_KEY_NAME, _raw_public(loaded), named=False)
        parts = text.split("+", 2)  # base64 may contain '+'; the name and the id cannot
        if len(parts) != 3 or not valid_name(parts[0]):
            raise NoteError("a verifier key reads <name>+<key id hex>+<base64 key>")
        name, id_hex, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            expected = bytes.fromhex(id_hex)
        except (binascii.Error, ValueError):
            raise NoteError("the verifier key's id or key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        key = cls(name, raw[1:])
        if key.key_id != expected:
            raise NoteError("the verifier key's id does not match its name and key")
        return key


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key and the name its signatures carry."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, _raw_public(self.private_key.public_key()))

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def generate(cls, name: str = DEFAULT_KEY_NAME) -> SigningKey:
        return cls(name, Ed25519PrivateKey.generate())

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def parse(cls, data: bytes, default_name: str = DEFAULT_KEY_NAME) -> SigningKey:
        """PEM (PKCS #8), a raw 32-byte seed, or ``PRIVATE+KEY+name+id+base64(0x01 || seed)``."""
        stripped = data.strip()
        if stripped.startswith(b"-----BEGIN"):
            try:
                loaded = serialization.load_pem_private_key(stripped, password=None)
            except (ValueError, TypeError) as exc:
                raise NoteError(f"not a usable PEM private key: {exc}") from None
            if not isinstance(loaded, Ed25519PrivateKey):
                raise NoteError("the PEM private key is not an Ed25519 key")
            return cls(default_name, loaded)
        if stripped.startswith(b"PRIVATE+KEY+"):
            parts = stripped.decode("ascii", "replace").split("+", 4)
            if len(parts) != 5 or not valid_name(parts[2]):
                raise NoteError("a PRIVATE+KEY line reads PRIVATE+KEY+<name>+<key id hex>+<base64 seed>")
            try:
                raw = base64.b64decode(parts[4], validate=True)
            except binascii.Error:
                raise NoteError("the PRIVATE+KEY seed is not base64") from None
            if len(raw) != 33 or raw[0] != ALGORITHM_ED25519:
                raise NoteError("the PRIVATE+KEY line is not an Ed25519 key")
            key = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
            if key.verifier.key_id.hex() != parts[3].lower():
                raise NoteError("the PRIVATE+KEY line's id does not match its name and key")
            return key
        if len(data) == 32:
            return cls(default_name, Ed25519PrivateKey.from_private_bytes(data))
        raise NoteError("expected a PEM Ed25519 private key, a raw 32-byte seed, or a PRIVATE+KEY line")


# --- signed notes ------------------------------------------------------------------------------------


def sign_note(text: str, key: SigningKey) -> str:
    """``text`` (newline-terminated, no blank line) as a signed note."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must be non-empty lines ending in a newline, without blank lines")
    signature = key.sign(text.encode())
    encoded = base64.b64encode(key.verifier.key_id + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{key.name} {encoded}\n"


def open_note(note: str, verifier: VerifierKey) -> str:
    """The text of a signed note, when ``verifier`` signed it; raises :class:`NoteError` otherwise.

    Signature lines of other keys are ignored; a signature line of this key that
    does not verify rejects the note.
    """
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("malformed note: no signature block")
    text, block = note[: cut + 1], note[cut + 2 :]
    found = False
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed signature line")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError("malformed signature line") from None
        if not valid_name(name) or len(raw) < 5:
            raise NoteError("malformed signature line")
        if (verifier.named and name != verifier.name) or raw[:4] != key_id(name, verifier.public_key):
            continue  # another signer's line
        if not verifier.verify(name, raw[:4], text.encode(), raw[4:]):
            raise NoteError(f"the signature of {name} does not verify")
        found = True
    if not found:
        raise NoteError(f"not signed by {verifier.vkey()}")
    return text


# --- checkpoints -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The state of one log: its origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint has an origin, a size and a root hash line")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin or not re.fullmatch(r"0|[1-9][0-9]*", size_text):
            raise NoteError("malformed checkpoint origin or size")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise NoteError("the checkpoint root is not base64") from None
        if len(root) != 32:
            raise NoteError("the checkpoint root is not a SHA-256 hash")
        return cls(origin, int(size_text), root)


def split_notes(content: str) -> tuple[list[str], bool]:
    """The signed notes of a checkpoints file, each followed by a blank line; and whether its end is torn."""
    complete = content.endswith("\n\n") or not content
    blocks = content.split("\n\n")
    if complete:
        blocks.pop()
    # blocks alternate: a note's text, then its signature lines
    notes = [f"{blocks[i]}\n\n{blocks[i + 1]}\n" for i in range(0, len(blocks) - 1, 2)]
    torn = not complete or len(blocks) % 2 == 1
    if not complete and len(blocks) % 2 == 0 and notes:
        notes.pop()  # its signature line was cut short
    return notes, torn
