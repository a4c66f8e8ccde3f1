"""Tamper evidence: RFC 6962 trees, signed C2SP checkpoints, the ledger, and ``genai-audit verify``."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import random
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_audit import semconv as sc
from genai_audit.checkpoint import (
    Checkpoint,
    NoteError,
    SigningKey,
    VerifierKey,
    key_id,
    open_note,
    sign_note,
    split_notes,
)
from genai_audit.cli import main
from genai_audit.forensics.removal import sqlite_delete
from genai_audit.integrity import (
    INTEGRITY_FIELD,
    Sealer,
    canonical,
    document_leaf,
    record_id,
    record_tombstone,
    record_tombstones,
)
from genai_audit.ledger import CHECKPOINTS_SUFFIX, LEDGER_SUFFIX, TOMBSTONES_SUFFIX, read_ledger
from genai_audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from genai_audit.store.es_compat import negotiating_client
from genai_audit.store.sqlite import SqliteSpanExporter
from genai_audit.verify import Report, elasticsearch_records, run
from tests.es_fixtures import RunningNode

# --- RFC 6962 reference data (the Certificate Transparency test tree) --------------------------------

CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def ct_tree() -> MerkleTree:
    return MerkleTree(leaf_hash(bytes.fromhex(leaf)) for leaf in CT_LEAVES)


def reference_root(leaves: list[bytes]) -> bytes:
    """The RFC 6962 definition, written out recursively."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


class TestMerkleTree:
    def test_empty_tree_is_the_hash_of_nothing(self) -> None:
        """The empty tree's root is SHA-256 of the empty string."""
        assert MerkleTree().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
        assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    @pytest.mark.parametrize("size", range(1, 9))
    def test_roots_match_the_reference_tree(self, size: int) -> None:
        """Roots of the first n reference leaves are the published RFC 6962 values."""
        assert ct_tree().root(size).hex() == CT_ROOTS[size - 1]

    @pytest.mark.parametrize(("old", "new"), sorted(CT_CONSISTENCY))
    def test_consistency_proofs_match_the_reference(self, old: int, new: int) -> None:
        """Consistency proofs are the published ones and verify against the published roots."""
        tree = ct_tree()
        proof = tree.consistency_proof(old, new)
        assert [node.hex() for node in proof] == CT_CONSISTENCY[(old, new)]
        assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)

    @pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
    def test_inclusion_proofs_match_the_reference(self, index: int, size: int) -> None:
        """Inclusion proofs are the published ones and verify."""
        tree = ct_tree()
        proof = tree.inclusion_proof(index, size)
        assert [node.hex() for node in proof] == CT_INCLUSION[(index, size)]
        assert verify_inclusion(index, size, tree.leaf(index), proof, tree.root(size))

    def test_incremental_tree_equals_the_definition(self) -> None:
        """The cached incremental tree gives the recursive definition's root for every size."""
        rng = random.Random(7)
        leaves = [leaf_hash(rng.randbytes(rng.randrange(40))) for _ in range(70)]
        tree = MerkleTree(leaves)
        for size in range(len(leaves) + 1):
            assert tree.root(size) == reference_root(leaves[:size])

    def test_every_proof_verifies_and_every_altered_one_fails(self) -> None:
        """For all sizes up to 33, proofs verify; a changed node, size or root is refused."""
        tree = MerkleTree(leaf_hash(bytes([i])) for i in range(33))
        bogus = hashlib.sha256(b"bogus").digest()
        for new in range(1, 34):
            root = tree.root(new)
            for old in range(new + 1):
                proof = tree.consistency_proof(old, new)
                assert verify_consistency(old, new, tree.root(old), root, proof), (old, new)
                if 0 < old < new:
                    assert not verify_consistency(old, new, bogus, root, proof)
                    assert not verify_consistency(old, new, tree.root(old), bogus, proof)
                    assert not verify_consistency(old, new * 2, tree.root(old), root, proof)
                    for position in range(len(proof)):
                        changed = [*proof[:position], bogus, *proof[position + 1 :]]
                        assert not verify_consistency(old, new, tree.root(old), root, changed)
                    assert not verify_consistency(old, new, tree.root(old), root, [*proof, bogus])
            for index in range(new):
                proof = tree.inclusion_proof(index, new)
                assert verify_inclusion(index, new, tree.leaf(index), proof, root)
                assert not verify_inclusion(index, new, bogus, proof, root)
                if new > 1:
                    assert not verify_inclusion((index + 1) % new, new, tree.leaf(index), proof, root)

    def test_shrinking_is_never_consistent(self) -> None:
        """A smaller tree is not an extension of a bigger one."""
        tree = ct_tree()
        assert not verify_consistency(5, 4, tree.root(5), tree.root(4), [])
        with pytest.raises(ValueError, match="consistency"):
            tree.consistency_proof(5, 4)


# --- checkpoints and signed notes ------------------------------------------------------------------


class TestCheckpoint:
    def test_round_trip_and_signature(self) -> None:
        """A signed checkpoint has the C2SP layout, parses back, and verifies with the verifier key."""
        key = SigningKey.generate("example.com/log")
        root = ct_tree().root()
        body = Checkpoint("example.com/log/abc", 8, root).text()
        assert body == f"example.com/log/abc\n8\n{base64.b64encode(root).decode()}\n"
        note = sign_note(body, key)
        text, _, signature_line = note.partition("\n\n")
        assert text + "\n" == body
        assert signature_line.startswith("\u2014 example.com/log ") and signature_line.endswith("\n")
        raw = base64.b64decode(signature_line.split(" ")[2])
        public = key.verifier.public_key
        expected_id = hashlib.sha256(b"example.com/log\n\x01" + public).digest()[:4]
        assert raw[:4] == expected_id == key_id("example.com/log", public)
        assert len(raw) == 4 + 64
        assert Checkpoint.parse(open_note(note, key.verifier)) == Checkpoint("example.com/log/abc", 8, root)
        again = VerifierKey.parse(key.verifier.vkey())
        assert again == key.verifier
        assert key.verifier.vkey().startswith(f"example.com/log+{expected_id.hex()}+")

    def test_tampered_note_and_other_keys_are_refused(self) -> None:
        """A changed size, a foreign signer or a broken signature does not open."""
        key = SigningKey.generate()
        note = sign_note(Checkpoint("o/s", 3, EMPTY_ROOT).text(), key)
        with pytest.raises(NoteError, match="does not verify"):
            open_note(note.replace("\n3\n", "\n4\n"), key.verifier)
        with pytest.raises(NoteError, match="not signed by"):
            open_note(note, SigningKey.generate().verifier)
        other = SigningKey.generate("witness.example")
        cosigned = note + sign_note(Checkpoint("o/s", 3, EMPTY_ROOT).text(), other).split("\n\n")[1]
        assert open_note(cosigned, key.verifier) == Checkpoint("o/s", 3, EMPTY_ROOT).text()
        assert open_note(cosigned, other.verifier)

    def test_key_formats(self) -> None:
        """Private keys load from PEM, a raw seed or a PRIVATE+KEY line; public keys from vkey or PEM."""
        from cryptography.hazmat.primitives import serialization

        key = SigningKey.generate()
        seed = key.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        assert SigningKey.parse(key.pem()).verifier == key.verifier
        assert SigningKey.parse(seed).verifier == key.verifier
        named = SigningKey("ops.example/audit", key.private_key)
        line = (
            f"PRIVATE+KEY+ops.example/audit+{named.verifier.key_id.hex()}+" + base64.b64encode(b"\x01" + seed).decode()
        )
        assert SigningKey.parse(line.encode()).verifier == named.verifier
        pem_public = (
            key.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        bare = VerifierKey.parse(pem_public)
        note = sign_note("x\n", named)
        assert open_note(note, bare) == "x\n"  # a bare public key accepts the signer's own name
        with pytest.raises(NoteError):
            SigningKey.parse(b"short")
        name, _, encoded = key.verifier.vkey().split("+", 2)
        with pytest.raises(NoteError, match="id does not match"):
            VerifierKey.parse(f"{name}+00000000+{encoded}")

    def test_checkpoints_file_with_torn_end(self) -> None:
        """Notes are split on blank lines; a note cut short by a crash is dropped and reported."""
        key = SigningKey.generate()
        notes = [sign_note(Checkpoint("o/s", n, EMPTY_ROOT).text(), key) for n in range(3)]
        content = "".join(note + "\n" for note in notes)
        assert split_notes(content) == (notes, False)
        assert split_notes(content[:-20]) == (notes[:2], True)
        assert split_notes("") == ([], False)


# --- the ledger, the sealer ------------------------------------------------------------------------


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def folder(tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The integrity directory and signing key the environment names for this test."""
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(key.pem())
    directory = tmp_path / "integrity"
    monkeypatch.setenv("GENAI_AUDIT_INTEGRITY_DIR", str(directory))
    monkeypatch.setenv("GENAI_AUDIT_SIGNING_KEY_FILE", str(key_file))
    return directory


def write(exporter: SqliteSpanExporter, count: int, *, start: int = 0, batch: int = 1) -> None:
    """``count`` chat spans exported through ``exporter`` in batches of ``batch``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    for number in range(start, start + count):
        tracer.start_span(
            f"chat m{number}",
            attributes={
                sc.OPERATION_NAME: "chat",
                sc.REQUEST_MODEL: "gpt-4o",
                sc.ENDUSER_ID: f"user-{number}",
                sc.USAGE_INPUT_TOKENS: number,
                sc.INPUT_MESSAGES: f"question {number}",
            },
        ).end()
    spans = list(memory.get_finished_spans())
    for offset in range(0, len(spans), batch):
        exporter.export(spans[offset : offset + batch])


def stored(path: Path) -> list[tuple[int, dict[str, Any]]]:
    conn = sqlite3.connect(path)
    rows = [(seq, json.loads(doc)) for seq, doc in conn.execute("SELECT seq, doc FROM spans ORDER BY seq")]
    conn.close()
    return rows


def kinds(report: Report) -> dict[str, set[str]]:
    """Problem kind -> the ``trace:span`` ids it names."""
    found: dict[str, set[str]] = {}
    for finding in report.problems:
        found.setdefault(finding.kind, set()).add(f"{finding.trace_id}:{finding.span_id}")
    return found


def ident(doc: Mapping[str, Any]) -> str:
    return f"{doc['trace_id']}:{doc['span_id']}"


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def tamperable_copy(source: Path, target: Path) -> sqlite3.Connection:
    """A copy of the store with its append-only triggers dropped, as an attacker with file access would."""
    shutil.copy(source, target)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.executescript("DROP TRIGGER spans_no_update; DROP TRIGGER spans_no_delete;")
    return conn


class TestSealing:
    def test_documents_carry_their_place_and_the_ledger_matches(self, tmp_path: Path, folder: Path) -> None:
        """Each stored document has stream, seq and leaf; the ledger lists the same; the leaf skips the field."""
        exporter = SqliteSpanExporter(tmp_path / "audit.db")
        write(exporter, 5, batch=2)
        exporter.shutdown()
        docs = [doc for _, doc in stored(tmp_path / "audit.db")]
        marks = [doc[INTEGRITY_FIELD] for doc in docs]
        assert [mark["seq"] for mark in marks] == [0, 1, 2, 3, 4]
        assert len({mark["stream"] for mark in marks}) == 1
        ledger = read_ledger(folder / f"{marks[0]['stream']}{LEDGER_SUFFIX}")
        assert not ledger.problems and not ledger.torn
        assert ledger.header["store"] == f"sqlite:{(tmp_path / 'audit.db').resolve()}"
        for doc, mark in zip(docs, marks):
            entry = ledger.entries[mark["seq"]]
            assert entry.record_id == record_id(doc) == doc["trace_id"] + doc["span_id"]
            assert entry.leaf.hex() == mark["leaf"] == document_leaf(doc).hex()
            expected = json.dumps(
                {k: v for k, v in doc.items() if k != INTEGRITY_FIELD},
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            assert canonical(doc) == expected
            assert document_leaf(doc) == hashlib.sha256(b"\x00" + expected).digest()

    def test_ledger_is_written_before_the_store_sees_the_record(self, tmp_path: Path, key: SigningKey) -> None:
        """At the moment a batch is sealed its entries are fsync'd in the ledger and not yet stored."""
        path = tmp_path / "audit.db"
        seen: list[int] = []

        class Watching(Sealer):
            def seal(self, docs: Any, events: Any = None) -> Any:
                entries = super().seal(docs, events)
                ledger = read_ledger(self.directory / f"{self.stream_id}{LEDGER_SUFFIX}")
                conn = sqlite3.connect(path)
                for entry in entries:
                    assert ledger.entries[entry.seq] == entry
                    found = conn.execute(
                        "SELECT COUNT(*) FROM spans WHERE trace_id || span_id = ?", (entry.record_id,)
                    ).fetchone()
                    assert found == (0,)
                    seen.append(entry.seq)
                conn.close()
                return entries

        exporter = SqliteSpanExporter(path, integrity=Watching("t", directory=tmp_path / "i", key=key))
        write(exporter, 4, batch=2)
        assert seen == [0, 1, 2, 3]
        assert len(stored(path)) == 4

    def test_files_are_owner_only(self, tmp_path: Path, folder: Path) -> None:
        """The directory is 0700 and the ledger, checkpoints and tombstones 0600."""
        exporter = SqliteSpanExporter(tmp_path / "audit.db")
        write(exporter, 2)
        exporter.shutdown()
        (_, doc), _ = stored(tmp_path / "audit.db")
        stream = doc[INTEGRITY_FIELD]["stream"]
        record_tombstone(stream, 0, record_id(doc), "retention")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for suffix in (LEDGER_SUFFIX, CHECKPOINTS_SUFFIX, TOMBSTONES_SUFFIX):
            assert stat.S_IMODE((folder / f"{stream}{suffix}").stat().st_mode) == 0o600

    def test_checkpoints_every_n_records_and_at_shutdown_are_consistent(self, tmp_path: Path, key: SigningKey) -> None:
        """Signed checkpoints come at the start, every N records and at shutdown; each extends the last."""
        sealer = Sealer("t", directory=tmp_path / "i", key=key, checkpoint_every=3, checkpoint_seconds=3600)
        exporter = SqliteSpanExporter(tmp_path / "audit.db", integrity=sealer)
        write(exporter, 10, batch=2)
        exporter.shutdown()
        stream = sealer.directory / f"{stored(tmp_path / 'audit.db')[0][1][INTEGRITY_FIELD]['stream']}"
        notes, torn = split_notes(Path(f"{stream}{CHECKPOINTS_SUFFIX}").read_text())
        assert not torn
        checkpoints = [Checkpoint.parse(open_note(note, key.verifier)) for note in notes]
        assert [c.size for c in checkpoints] == [0, 4, 8, 10]
        ledger = read_ledger(Path(f"{stream}{LEDGER_SUFFIX}"))
        tree = MerkleTree(ledger.entries[seq].leaf for seq in range(ledger.size))
        for older, newer in itertools.pairwise(checkpoints):
            assert newer.root == tree.root(newer.size)
            proof = tree.consistency_proof(older.size, newer.size)
            assert verify_consistency(older.size, newer.size, older.root, newer.root, proof)

    def test_reexport_keeps_its_seq(self, tmp_path: Path, folder: Path) -> None:
        """Exporting the same spans again adds no ledger entry, and the store still verifies."""
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.get_tracer("t").start_span("chat m", attributes={sc.OPERATION_NAME: "chat"}).end()
        exporter = SqliteSpanExporter(tmp_path / "a.db")
        exporter.export(memory.get_finished_spans())
        exporter.export(memory.get_finished_spans())
        exporter.shutdown()
        assert exporter.integrity is not None and exporter.integrity.sealed == 1
        assert run(str(tmp_path / "a.db")).ok

    def test_unwritable_ledger_stores_records_unsealed_and_verify_says_so(
        self, tmp_path: Path, key: SigningKey
    ) -> None:
        """No ledger, no lost record: it is stored without the field, counted, and verify reports it."""
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("x")
        sealer = Sealer("t", directory=blocker / "integrity", key=key)
        exporter = SqliteSpanExporter(tmp_path / "audit.db", integrity=sealer)
        write(exporter, 2)
        rows = stored(tmp_path / "audit.db")
        assert len(rows) == 2 and all(INTEGRITY_FIELD not in doc for _, doc in rows)
        assert sealer.failures == 2
        report = run(str(tmp_path / "audit.db"), directory=tmp_path, public_key=key.verifier.vkey())
        assert set(kinds(report)) == {"INSERTED"}

    def test_failed_store_write_is_tombstoned_as_unstored(self, tmp_path: Path, folder: Path) -> None:
        """A sealed record whose insert failed is named as never stored, not as deleted."""
        exporter = SqliteSpanExporter(tmp_path / "audit.db")
        write(exporter, 2)
        exporter._conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON spans BEGIN SELECT RAISE(ABORT, 'no'); END")
        write(exporter, 1, start=2)
        exporter._conn.execute("DROP TRIGGER refuse")
        exporter.shutdown()
        assert exporter.failed == 1
        report = run(str(tmp_path / "audit.db"))
        assert report.ok, report.as_text()
        assert [n.kind for n in report.notes] == ["UNSTORED"]


# --- verify on SQLite ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, folder: Path) -> Path:
    """Ten sealed records in a store, written in batches of three, shut down cleanly."""
    path = tmp_path / "audit.db"
    exporter = SqliteSpanExporter(path)
    write(exporter, 10, batch=3)
    exporter.shutdown()
    return path


class TestVerifySqlite:
    def test_clean_store_verifies(self, store: Path) -> None:
        """An untouched store exits 0 with OK; JSON output says ok with no problems."""
        code, text = cli("verify", "--store", str(store))
        assert code == 0, text
        assert "10 records in 1 stream(s)" in text and text.rstrip().endswith(
            "OK: every record matches its signed ledger"
        )
        code, text = cli("verify", "--store", str(store), "--format", "json")
        body = json.loads(text)
        assert (code, body["ok"], body["records"], body["problems"], body["notes"]) == (0, True, 10, [], [])

    def test_each_kind_of_tampering_is_named(self, store: Path, tmp_path: Path) -> None:
        """Modified, deleted, inserted and reordered records are each named with their ids and seq."""
        copy = tmp_path / "tampered.db"
        conn = tamperable_copy(store, copy)
        rows = stored(store)
        # modify one attribute
        changed_seq, changed = rows[1]
        changed["attributes"][sc.REQUEST_MODEL] = "gpt-cheap"
        conn.execute("UPDATE spans SET doc = ? WHERE seq = ?", (json.dumps(changed), changed_seq))
        # delete one
        deleted_seq, deleted = rows[4]
        conn.execute("DELETE FROM spans WHERE seq = ?", (deleted_seq,))
        # insert a forged one, claiming a place beyond the ledger
        forged = json.loads(json.dumps(rows[0][1]))
        forged["span_id"] = "00000000000000ff"
        forged[INTEGRITY_FIELD]["seq"] = 99
        conn.execute(
            "INSERT INTO spans (trace_id, span_id, start_ns, duration_ns, status, doc) VALUES (?,?,?,?,?,?)",
            (forged["trace_id"], forged["span_id"], 1, 1, "Unset", json.dumps(forged)),
        )
        # swap two records' seq
        (seq_a, a), (seq_b, b) = rows[6], rows[7]
        a[INTEGRITY_FIELD]["seq"], b[INTEGRITY_FIELD]["seq"] = b[INTEGRITY_FIELD]["seq"], a[INTEGRITY_FIELD]["seq"]
        conn.execute("UPDATE spans SET doc = ? WHERE seq = ?", (json.dumps(a), seq_a))
        conn.execute("UPDATE spans SET doc = ? WHERE seq = ?", (json.dumps(b), seq_b))
        conn.close()

        report = run(str(copy), all_streams=True)
        assert kinds(report) == {
            "MODIFIED": {ident(changed)},
            "DELETED": {ident(deleted)},
            "INSERTED": {ident(forged)},
            "REORDERED": {ident(a), ident(b)},
            "INDEX": {"None:None"},  # the deleted row's full-text entries, left behind
        }
        modified = next(f for f in report.problems if f.kind == "MODIFIED")
        assert modified.seq == changed[INTEGRITY_FIELD]["seq"] == 1
        assert next(f for f in report.problems if f.kind == "DELETED").seq == 4
        assert f"(row {deleted_seq})" in next(f for f in report.problems if f.kind == "INDEX").detail
        code, text = cli("verify", "--store", str(copy), "--all-streams")
        assert code == 1
        assert "FAILED: 1 MODIFIED, 1 DELETED, 1 INSERTED, 2 REORDERED, 1 INDEX" in text
        for doc in (changed, deleted, forged, a, b):
            assert f"trace {doc['trace_id']} span {doc['span_id']}" in text

    @pytest.mark.parametrize("tamper", ["modify", "delete", "insert-unsealed", "swap-rows", "copy-to-another-seq"])
    def test_one_tampering_one_finding(self, store: Path, tmp_path: Path, tamper: str) -> None:
        """Each single change is reported as exactly its own kind (a row deleted behind the store's back
        also leaves its full-text entries behind: INDEX)."""
        copy = tmp_path / "tampered.db"
        conn = tamperable_copy(store, copy)
        rows = stored(store)
        expected: dict[str, set[str]]
        if tamper == "modify":
            seq, doc = rows[3]
            doc["status"] = {"code": "Error"}
            conn.execute("UPDATE spans SET doc = ? WHERE seq = ?", (json.dumps(doc), seq))
            expected = {"MODIFIED": {ident(doc)}}
        elif tamper == "delete":
            conn.execute("DELETE FROM spans WHERE seq = ?", (rows[9][0],))
            expected = {"DELETED": {ident(rows[9][1])}, "INDEX": {"None:None"}}
        elif tamper == "insert-unsealed":
            forged = {k: v for k, v in rows[0][1].items() if k != INTEGRITY_FIELD}
            forged["span_id"] = "abababababababab"
            conn.execute(
                "INSERT INTO spans (trace_id, span_id, start_ns, duration_ns, status, doc) VALUES (?,?,?,?,?,?)",
                (forged["trace_id"], forged["span_id"], 1, 1, "Unset", json.dumps(forged)),
            )
            expected = {"INSERTED": {ident(forged)}}
        elif tamper == "swap-rows":  # same documents, stored order exchanged
            (first, a), (second, b) = rows[2], rows[5]
            conn.execute("UPDATE spans SET seq = -1 WHERE seq = ?", (first,))
            conn.execute("UPDATE spans SET seq = ? WHERE seq = ?", (first, second))
            conn.execute("UPDATE spans SET seq = ? WHERE seq = -1", (second,))
            expected = {"REORDERED": {ident(a), ident(b)}}
        else:  # the same record stored a second time under another record's seq, that record deleted
            (_, keep), (victim_row, victim) = rows[2], rows[3]
            conn.execute("DELETE FROM spans WHERE seq = ?", (victim_row,))
            twin = json.loads(json.dumps(keep))
            twin[INTEGRITY_FIELD]["seq"] = victim[INTEGRITY_FIELD]["seq"]
            conn.execute(
                "INSERT INTO spans (trace_id, span_id, start_ns, duration_ns, status, doc) VALUES (?,?,?,?,?,?)",
                (twin["trace_id"] + "x", twin["span_id"], 1, 1, "Unset", json.dumps(twin)),
            )
            expected = {"REORDERED": {ident(keep)}, "DELETED": {ident(victim)}, "INDEX": {"None:None"}}
        conn.close()
        report = run(str(copy), all_streams=True)
        assert kinds(report) == expected, report.as_text()

    def test_tombstoned_deletions_verify_clean(self, store: Path, tmp_path: Path) -> None:
        """Records deleted by retention or erasure after a signed tombstone do not fail verification."""
        rows = stored(store)
        (_, old), (_, subject) = rows[0], rows[5]
        record_tombstone(old[INTEGRITY_FIELD]["stream"], 0, record_id(old), "retention")
        record_tombstones([(subject[INTEGRITY_FIELD]["stream"], 5, record_id(subject))], "erasure")
        copy = tmp_path / "retained.db"
        shutil.copy(store, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        sqlite_delete(conn, [rows[0][0], rows[5][0]])  # the sanctioned path: with its index rows
        conn.close()
        report = run(str(copy), all_streams=True)
        assert report.ok, report.as_text()
        assert sorted(n.detail for n in report.notes) == [
            "1 record(s) absent with a signed tombstone (erasure)",
            "1 record(s) absent with a signed tombstone (retention)",
        ]
        stones = (
            Path(os.environ["GENAI_AUDIT_INTEGRITY_DIR"]) / f"{old[INTEGRITY_FIELD]['stream']}{TOMBSTONES_SUFFIX}"
        ).read_text()
        assert "user-0" not in stones and "question" not in stones  # no content
        assert set(json.loads(stones.splitlines()[0])) == {
            "stream",
            "seq",
            "id",
            "leaf",
            "reason",
            "time",
            "signer",
            "sig",
        }

    def test_tombstone_api_refuses_a_record_not_in_the_ledger(self, store: Path) -> None:
        """A tombstone names a record at its ledger seq, or is refused."""
        from genai_audit.integrity import IntegrityError

        _, doc = stored(store)[2]
        with pytest.raises(IntegrityError, match="is not at seq 3"):
            record_tombstone(doc[INTEGRITY_FIELD]["stream"], 3, record_id(doc), "retention")
        with pytest.raises(ValueError, match="reason"):
            record_tombstone(doc[INTEGRITY_FIELD]["stream"], 2, record_id(doc), "tidying")

    def test_forged_tombstone_does_not_excuse_a_deletion(self, store: Path, tmp_path: Path) -> None:
        """A tombstone signed by another key is ledger tampering, and the deletion stays a deletion."""
        _, doc = stored(store)[2]
        stream = doc[INTEGRITY_FIELD]["stream"]
        record_tombstone(stream, 2, record_id(doc), "erasure", key=SigningKey.generate())
        copy = tmp_path / "c.db"
        conn = tamperable_copy(store, copy)
        conn.execute("DELETE FROM spans WHERE json_extract(doc, '$.integrity.seq') = 2")
        conn.close()
        report = run(str(copy), all_streams=True)
        assert set(kinds(report)) == {"LEDGER", "DELETED", "INDEX"}  # INDEX: its full-text entries remain
        assert any("signature does not verify" in f.detail for f in report.problems)

    def test_ledger_rewritten_to_match_a_modified_record(self, store: Path, tmp_path: Path) -> None:
        """Changing a record and its ledger line together breaks the signed checkpoint root."""
        copy = tmp_path / "c.db"
        conn = tamperable_copy(store, copy)
        seq, doc = stored(store)[1]
        old = doc[INTEGRITY_FIELD]["leaf"]
        doc["attributes"][sc.ENDUSER_ID] = "someone-else"
        doc[INTEGRITY_FIELD]["leaf"] = document_leaf(doc).hex()
        conn.execute("UPDATE spans SET doc = ? WHERE seq = ?", (json.dumps(doc), seq))
        conn.close()
        ledger = Path(os.environ["GENAI_AUDIT_INTEGRITY_DIR"]) / f"{doc[INTEGRITY_FIELD]['stream']}{LEDGER_SUFFIX}"
        ledger.write_text(ledger.read_text().replace(old, document_leaf(doc).hex()))
        report = run(str(copy))
        # the ledger no longer matches its signature; the record's user id column still says who it was
        assert kinds(report) == {"LEDGER": {"None:None"}, "INDEX": {ident(doc)}}
        finding, index = report.problems
        assert "entries between seq 0 and 9 were changed after signing" in finding.detail
        assert "indexed column user_id does not match the sealed document" in index.detail
        code, _ = cli("verify", "--store", str(copy))
        assert code == 1

    def test_truncated_ledger_and_foreign_checkpoints(self, store: Path, tmp_path: Path) -> None:
        """Entries cut from the ledger, or checkpoints re-signed by another key, are ledger tampering."""
        stream = stored(store)[0][1][INTEGRITY_FIELD]["stream"]
        directory = Path(os.environ["GENAI_AUDIT_INTEGRITY_DIR"])
        other = tmp_path / "other"
        shutil.copytree(directory, other)
        ledger = other / f"{stream}{LEDGER_SUFFIX}"
        ledger.write_text("".join(ledger.read_text().splitlines(keepends=True)[:-2]))
        report = run(str(store), directory=other)
        assert set(kinds(report)) == {"LEDGER", "INSERTED"}
        assert any("ledger entries were removed" in f.detail for f in report.problems)
        # a new key re-signing everything is not the key verify trusts
        forger = SigningKey.generate()
        forged = "".join(sign_note(Checkpoint(f"genai-audit/x/{stream}", 10, b"\0" * 32).text(), forger) + "\n")
        (other / f"{stream}{CHECKPOINTS_SUFFIX}").write_text(forged)
        report = run(str(store), directory=other)
        assert any("not authenticated" in f.detail for f in report.problems)

    def test_unsigned_tail_after_a_crash_is_a_note(self, tmp_path: Path, folder: Path) -> None:
        """Records after the last checkpoint of a process that never shut down are flagged but not failed."""
        exporter = SqliteSpanExporter(tmp_path / "audit.db")
        write(exporter, 3)
        exporter.integrity = None  # as if the process died: no checkpoint at shutdown
        exporter.shutdown()
        report = run(str(tmp_path / "audit.db"))
        assert report.ok
        assert [n.kind for n in report.notes] == ["UNSIGNED"]

    def test_whole_stream_deleted_from_the_store_itself(self, store: Path) -> None:
        """Emptying the store is caught: its streams are found by the store they were written to."""
        conn = sqlite3.connect(store, isolation_level=None)
        conn.executescript("DROP TRIGGER spans_no_delete; DELETE FROM spans;")
        conn.close()
        report = run(str(store))
        assert set(kinds(report)) == {"DELETED", "INDEX"} and len(report.problems) == 11
        assert "full-text index has entries for 10 store row(s) that hold no record" in report.problems[-1].detail

    def test_verify_elsewhere_with_the_public_key(
        self, store: Path, tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Copies of the store and the integrity directory verify on a machine that has only the public key."""
        vkey = tmp_path / "audit.vkey"
        vkey.write_text(key.verifier.vkey() + "\n")
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(Path(os.environ["GENAI_AUDIT_INTEGRITY_DIR"]), elsewhere / "integrity")
        shutil.copy(store, elsewhere / "audit.db")
        monkeypatch.delenv("GENAI_AUDIT_SIGNING_KEY_FILE")
        monkeypatch.delenv("GENAI_AUDIT_INTEGRITY_DIR")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty-home"))
        args = ["verify", "--store", str(elsewhere / "audit.db"), "--integrity-dir", str(elsewhere / "integrity")]
        assert cli(*args, "--public-key", str(vkey), "--all-streams")[0] == 0
        assert cli(*args, "--public-key", key.verifier.vkey())[0] == 0
        code, text = cli(*args, "--public-key", SigningKey.generate().verifier.vkey())
        assert code == 1 and "LEDGER" in text
        assert cli(*args)[0] == 1  # no key at all: one line on stderr
        assert not (tmp_path / "empty-home").exists()  # verify never creates a signing key


def test_sealed_json_text_is_the_document_with_its_field(tmp_path: Path, key: SigningKey) -> None:
    """``encoded`` gives each document as stored, integrity included, from the encoding the hash used."""
    sealer = Sealer("sqlite:/x", directory=tmp_path / "integrity", key=key)
    docs: list[dict[str, Any]] = [
        {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "chat é\n", "attributes": {"z": 1, "a": [1.5, None]}},
        {"trace_id": "c" * 32, "span_id": "d" * 16, "attributes": {}},
    ]
    events = [[{"event_name": "exception", "attributes": {"exception.type": "E"}}], []]
    texts: list[str] = []
    entries = sealer.seal(docs, events, encoded=texts)
    assert [json.loads(text) for text in texts] == docs  # each now with its integrity field
    assert [document_leaf(json.loads(t), e) for t, e in zip(texts, events)] == [entry.leaf for entry in entries]
    assert docs[0][INTEGRITY_FIELD]["events"] == 1 and "events" not in docs[1][INTEGRITY_FIELD]
    sealer.close()


@pytest.mark.parametrize("tamper", ["none", "modify", "delete", "add"])
def test_a_spans_events_are_sealed_with_it(tmp_path: Path, folder: Path, tamper: str) -> None:
    """An exception event changed, removed or added after the fact makes its span MODIFIED."""
    path = tmp_path / "audit.db"
    exporter = SqliteSpanExporter(path)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    for number in range(3):
        with tracer.start_as_current_span(f"chat m{number}", attributes={sc.OPERATION_NAME: "chat"}) as span:
            if number == 1:
                span.add_event("exception", {"exception.type": "RateLimitError", "exception.message": "quota"})
    exporter.export(list(memory.get_finished_spans()))
    exporter.shutdown()
    rows = stored(path)
    with_event = rows[1][1]
    assert with_event[INTEGRITY_FIELD]["events"] == 1
    assert "events" not in rows[0][1][INTEGRITY_FIELD]  # nothing to bind: sealed as before

    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("DROP TRIGGER span_events_no_update; DROP TRIGGER span_events_no_delete;")
    key = (with_event["trace_id"], with_event["span_id"])
    if tamper == "modify":
        (seq, text), = conn.execute("SELECT seq, doc FROM span_events WHERE trace_id = ? AND span_id = ?", key)
        event = json.loads(text)
        event["attributes"]["exception.message"] = "all fine"
        conn.execute("UPDATE span_events SET doc = ? WHERE seq = ?", (json.dumps(event), seq))
    elif tamper == "delete":
        conn.execute("DELETE FROM span_events WHERE trace_id = ? AND span_id = ?", key)
    elif tamper == "add":
        (text,) = conn.execute("SELECT doc FROM span_events WHERE trace_id = ? AND span_id = ?", key).fetchone()
        conn.execute("INSERT INTO span_events (trace_id, span_id, doc) VALUES (?, ?, ?)", (*key, text))
    conn.close()

    report = run(str(path))
    if tamper == "none":
        assert report.ok, report.as_text()
        return
    assert kinds(report) == {"MODIFIED": {ident(with_event)}}, report.as_text()
    stored_count = {"modify": 1, "delete": 0, "add": 2}[tamper]
    assert f"1 events sealed with it, {stored_count} stored" in report.problems[0].detail


def test_cli_errors_are_one_line(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing store or an unreadable public key exits 1 with one line, no traceback."""
    assert cli("verify", "--store", str(tmp_path / "missing.db"))[0] == 1
    assert cli("verify", "--store", str(tmp_path / "missing.db"), "--public-key", "nonsense")[0] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("genai-audit: ") for line in err)
    assert "Traceback" not in "".join(err)


def test_default_signing_key_is_generated_once_and_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key file, one key is generated under the data directory (0600) with its verifier key beside it."""
    from genai_audit.ledger import default_key_path, find_signing_key, load_signing_key

    monkeypatch.delenv("GENAI_AUDIT_SIGNING_KEY_FILE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert find_signing_key() is None
    first = load_signing_key()
    path = default_key_path()
    assert path == tmp_path / "data" / "genai-audit" / "signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_signing_key().verifier == first.verifier
    assert VerifierKey.parse(path.with_suffix(".vkey").read_text()) == first.verifier
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_bad_key_file_is_a_config_error_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unusable key file stops the exporter at construction, naming the variable."""
    from genai_audit.config import ConfigError

    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    monkeypatch.setenv("GENAI_AUDIT_SIGNING_KEY_FILE", str(bad))
    with pytest.raises(ConfigError, match="GENAI_AUDIT_SIGNING_KEY_FILE"):
        SqliteSpanExporter(tmp_path / "audit.db")
    monkeypatch.setenv("GENAI_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="cannot read"):
        Sealer.from_env("sqlite:x")


# --- the spool path --------------------------------------------------------------------------------


def test_refused_by_a_full_spool_is_recorded_as_unstored(tmp_path: Path, key: SigningKey) -> None:
    """Documents sealed then refused by the spool get an 'unstored' tombstone, not a silent ledger gap."""
    from genai_audit.integrity import entries_of
    from genai_audit.store.elasticsearch import span_documents
    from genai_audit.store.spool import Spool, SpoolingSpanProcessor

    sealer = Sealer("elasticsearch:t", directory=tmp_path / "i", key=key)

    def nothing(docs: Any) -> Any:
        raise AssertionError("nothing is deliverable")

    processor = SpoolingSpanProcessor(
        Spool(tmp_path / "spool.db", quota_bytes=1),
        lambda spans: sealer.seal_documents(span_documents(spans, "t")),
        nothing,
        on_refused=lambda docs: sealer.unstored(entries_of(d.source for d in docs)),
        on_flushed=sealer.checkpoint,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("chat", attributes={sc.OPERATION_NAME: "chat"}).end()
    assert processor.flush_to_spool(5000)
    processor.shutdown(100)
    assert processor.stats.refused == 1
    stream = sealer.stream_id
    stones = [json.loads(line) for line in (tmp_path / "i" / f"{stream}{TOMBSTONES_SUFFIX}").read_text().splitlines()]
    assert [(s["seq"], s["reason"]) for s in stones] == [(0, "unstored")]


# --- Elasticsearch ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_elasticsearch_through_the_spool(
    es_node: RunningNode, tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records spooled to Elasticsearch carry their seal; updates, deletes and forgeries are named."""

    from genai_audit.bootstrap import remote_processor

    namespace = f"i{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("GENAI_AUDIT_ES_NAMESPACE", namespace)
    monkeypatch.setenv("GENAI_AUDIT_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("GENAI_AUDIT_ES_DEAD_LETTER", str(tmp_path / "dead.jsonl"))
    processor = remote_processor(es_node.url)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    for number in range(12):
        with tracer.start_as_current_span(
            f"chat m{number}",
            attributes={
                sc.OPERATION_NAME: "chat",
                sc.REQUEST_MODEL: "gpt-4o",
                sc.USAGE_INPUT_TOKENS: number,
            },
        ) as span:
            if number == 3:
                span.add_event("exception", {"exception.type": "X"})
    assert processor.force_flush(60_000)
    processor.shutdown()

    es = negotiating_client(es_node.url, request_timeout=30)
    index = f"traces-genai_audit.otel-{namespace}"
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100, sort=[{"integrity.seq": "asc"}])["hits"]["hits"]
    assert [hit["_source"][INTEGRITY_FIELD]["seq"] for hit in hits] == list(range(12))
    mapping = es.indices.get_mapping(index=index)
    properties = next(iter(mapping.body.values()))["mappings"]["properties"][INTEGRITY_FIELD]["properties"]
    assert properties == {
        "stream": {"type": "keyword", "ignore_above": 1024},
        "seq": {"type": "long"},
        "leaf": {"type": "keyword", "ignore_above": 1024},
        "events": {"type": "long"},
    }
    assert hits[3]["_source"][INTEGRITY_FIELD]["events"] == 1  # its seal covers its event document

    code, text = cli("verify", "--store", es_node.url)
    assert code == 0, text
    assert "12 records in 1 stream(s)" in text

    modified, deleted = hits[2], hits[7]
    es.update(
        index=modified["_index"], id=modified["_id"], doc={"attributes": {sc.REQUEST_MODEL: "gpt-cheap"}}, refresh=True
    )
    es.delete(index=deleted["_index"], id=deleted["_id"], refresh=True)
    forged = json.loads(json.dumps(hits[0]["_source"]))
    forged["span_id"] = "00000000000000aa"
    forged[INTEGRITY_FIELD]["seq"] = 40
    unsealed = {k: v for k, v in hits[1]["_source"].items() if k != INTEGRITY_FIELD}
    unsealed["span_id"] = "00000000000000bb"
    for doc in (forged, unsealed):
        es.index(index=index, id=doc["trace_id"] + doc["span_id"], document=doc, op_type="create", refresh=True)
    # the exception event of span 3: its document in the logs stream is rewritten
    logs = f"logs-genai_audit.otel-{namespace}"
    es.indices.refresh(index=logs)
    with_event = hits[3]["_source"]
    (event,) = es.search(index=logs, query={"ids": {"values": [f"{with_event['trace_id']}{with_event['span_id']}-0"]}})[
        "hits"
    ]["hits"]
    es.update(index=event["_index"], id=event["_id"], doc={"attributes": {"exception.type": "Harmless"}}, refresh=True)
    es.close()

    report = run(es_node.url)
    assert kinds(report) == {
        "MODIFIED": {ident(modified["_source"]), ident(with_event)},
        "DELETED": {ident(deleted["_source"])},
        "INSERTED": {ident(forged), ident(unsealed)},
    }, report.as_text()
    assert any("1 events sealed with it, 1 stored" in p.detail for p in report.problems), report.as_text()
    code, text = cli("verify", "--store", es_node.url, "--format", "json")
    assert code == 1 and json.loads(text)["counts"] == {"MODIFIED": 2, "DELETED": 1, "INSERTED": 2}
    # paging by stream and seq (and past the unsealed record, which has neither) reads each record once
    _, records = elasticsearch_records(es_node.url, page_size=1)
    assert sorted(ident(r.doc) for r in records) == sorted(
        [*(ident(h["_source"]) for h in hits if h is not deleted), ident(forged), ident(unsealed)]
    )


@pytest.mark.integration
def test_sqlite_and_elasticsearch_documents_agree(es_node: RunningNode, tmp_path: Path, folder: Path) -> None:
    """The same span sealed by the SQLite store and the direct Elasticsearch exporter hashes to the same leaf."""

    from genai_audit.store.elasticsearch import ElasticsearchSpanExporter

    sqlite = SqliteSpanExporter(tmp_path / "audit.db")
    # the default namespace, as the SQLite store's documents name it
    exporter = ElasticsearchSpanExporter(es_node.url, dead_letter_path=tmp_path / "d.jsonl", env={})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(sqlite))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("genai_audit.instrumentation.openai")
    for number in range(3):
        tracer.start_span(
            f"chat {number}",
            attributes={sc.OPERATION_NAME: "chat", sc.ENDUSER_ID: "ü ✓", sc.REQUEST_TEMPERATURE: 0.1 * number},
        ).end()
    provider.shutdown()
    local = {ident(doc): doc for _, doc in stored(tmp_path / "audit.db")}
    es = negotiating_client(es_node.url, request_timeout=30)
    index = "traces-genai_audit.otel-default"
    es.indices.refresh(index=index)
    query = {"terms": {"trace_id": sorted({doc["trace_id"] for doc in local.values()})}}
    indexed = {ident(h["_source"]): h["_source"] for h in es.search(index=index, size=10, query=query)["hits"]["hits"]}
    es.close()
    assert set(indexed) == set(local)
    for name, doc in local.items():
        assert canonical(indexed[name]) == canonical(doc)
        assert indexed[name][INTEGRITY_FIELD]["leaf"] == doc[INTEGRITY_FIELD]["leaf"] == document_leaf(doc).hex()
    assert run(str(tmp_path / "audit.db")).ok
