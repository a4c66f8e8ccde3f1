"""Person names, street addresses and postal codes: our own small regression examples (not evidence of accuracy;
``bench/names.py`` measures that on public labelled data)."""

from __future__ import annotations

import gzip
from importlib import resources

import pytest

from genai_audit.processors import _names
from genai_audit.processors import detectors as d
from genai_audit.processors.policy import CONFIDENTIAL, AuditPolicy
from genai_audit.processors.redaction import Redactor

KEY = b"names-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def scanner() -> d.Scanner:
    return d.Scanner(d.builtin_detectors())


def found(scanner: d.Scanner, text: str, entity: str) -> list[str]:
    return [text[f.start : f.end] for f in scanner.scan(text) if f.entity == entity]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My name is Rubija and I need help.", "Rubija"),
        ("my name is john smith and i lost my card", "john smith"),
        ("Dear Mr. Okonkwo, your order shipped.", "Okonkwo"),
        ("Thanks for the help.\n\nKind regards,\nJennifer Lopez", "Jennifer Lopez"),
        ("The report was written by Ella H. Snider last year.", "Ella H. Snider"),
        ("Please call J. Smith about it.", "J. Smith"),
        ("Yesterday I met Grace Hopkins at the station.", "Grace Hopkins"),
        ("Patient: Wisława Szczepańska, 54, admitted Monday.", "Wisława Szczepańska"),
        ("The contract was signed by Esat Jeknić in Sarajevo.", "Esat Jeknić"),
        ("Hi Marcus, can you resend the invoice?", "Marcus"),
        ("name,email\nElizabeth Hanson,eh@example.com", "Elizabeth Hanson"),
        ("JENNIFER LOPEZ\nAccount manager", "JENNIFER LOPEZ"),
    ],
)
def test_names_found(scanner: d.Scanner, text: str, name: str) -> None:
    assert name in found(scanner, text, d.PERSON)


@pytest.mark.parametrize(
    "text",
    [
        "May I ask a question about the invoice?",
        "Will you send the file today?",
        "Grace period ends on Friday.",
        "Mark the box and Bill me later.",
        "Yesterday I met Grace at the station.",  # a limit: a given name that is also a word, alone
        "Hope this helps! Amber alert issued.",
        "Paris is lovely in the spring.",
        "Hello I moved, please update my address.",
        "We moved here from Kenosha last year.",
        "The Princess Royal arrived this morning.",
        "Miller Ltd and Johnson Inc. signed the deal.",
        "Our office is on Mathias Pass.",
        "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
        "I'm happy to help. Ha, ok.",
        "Customer R asked about HTC and TMZ.",
    ],
)
def test_names_not_found(scanner: d.Scanner, text: str) -> None:
    assert found(scanner, text, d.PERSON) == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "Send it to 123 Main Street, Apt 4, Springfield, IL 62704 please.",
            "123 Main Street, Apt 4, Springfield, IL 62704",
        ),
        (
            "Ship to 1600 Pennsylvania Ave NW, Washington, DC 20500-0003.",
            "1600 Pennsylvania Ave NW, Washington, DC 20500-0003",
        ),
        ("Billing:\n14 Crown Street\nSuite 321\nLONDON\nSW1A 1AA", "14 Crown Street\nSuite 321\nLONDON\nSW1A 1AA"),
        ("Meet me at 221b Baker St tomorrow", "221b Baker St"),
        ("Our office: Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin"),
        ("écrire au 12 rue de la Paix", "rue de la Paix"),
        ("Mail it to PO Box 1234, Anchorage, AK 99501", "PO Box 1234, Anchorage, AK 99501"),
        ("PSC 6477, Box 2981\nAPO AE 83700", "PSC 6477, Box 2981\nAPO AE 83700"),
        ("My address is Allika 46, Riisa, Estonia.", "Allika 46, Riisa, Estonia"),
    ],
)
def test_addresses_found(scanner: d.Scanner, text: str, address: str) -> None:
    spans = found(scanner, text, d.STREET_ADDRESS)
    assert any(address in span or (span in address and len(span) > len(address) // 2) for span in spans), spans


@pytest.mark.parametrize(
    "text",
    [
        "I have 3 kids and a Way to go.",
        "Take 2 dr visits and 3 st patrick days.",
        "The show goes live at 9am and 11am - www.example.com",
        "Please address it 1st thing tomorrow.",
        "We sold 40 units in 3 days at the Place.",
    ],
)
def test_addresses_not_found(scanner: d.Scanner, text: str) -> None:
    assert found(scanner, text, d.STREET_ADDRESS) == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("postcode: EC1A 1BB", "EC1A 1BB"),
        ("Ottawa ON K1A 0B6", "K1A 0B6"),
        ("shipping to CA 94105-1234 next week", "94105-1234"),
        ("zip code 10001", "10001"),
    ],
)
def test_postal_codes(scanner: d.Scanner, text: str, code: str) -> None:
    spans = found(scanner, text, d.POSTAL_CODE) + found(scanner, text, d.STREET_ADDRESS)
    assert any(code in span for span in spans)


def test_order_numbers_are_not_postal_codes(scanner: d.Scanner) -> None:
    assert found(scanner, "order 10001 shipped in 3 boxes of 12345 items", d.POSTAL_CODE) == []


def test_same_name_same_token_whatever_case_and_spacing() -> None:
    redactor = Redactor(d.Scanner(d.builtin_detectors()), KEY)
    a = redactor.redact_text("Dear Mr. John  Smith, hello")
    b = redactor.redact_text("Dear Mr. JOHN SMITH, hello")
    assert "John" not in a and "JOHN" not in b
    token = a[a.index("[PERSON:") : a.index("]", a.index("[PERSON:")) + 1]
    assert token in b


def test_same_address_same_token_with_abbreviations() -> None:
    redactor = Redactor(d.Scanner(d.builtin_detectors()), KEY)
    a = redactor.redact_text("Send to 123 Main Street, Springfield")
    b = redactor.redact_text("Send to 123 main st., Springfield")
    assert "123" not in a and "123" not in b
    assert a.replace("Send to ", "") == b.replace("Send to ", "")


def test_redaction_removes_names_and_addresses() -> None:
    redactor = Redactor(d.Scanner(d.builtin_detectors()), KEY)
    out = redactor.redact_text("My name is Rubija Liberšar and I live at 42 Elm Road, Leeds LS1 4AP.")
    assert "Rubija" not in out and "Liberšar" not in out and "Elm Road" not in out and "LS1" not in out
    assert "[PERSON:" in out and "[STREET_ADDRESS:" in out


def test_names_and_addresses_are_confidential() -> None:
    policy = AuditPolicy()
    for entity in (d.PERSON, d.STREET_ADDRESS, d.POSTAL_CODE):
        assert policy.rules[entity] == CONFIDENTIAL
        assert policy.classify([entity]) == CONFIDENTIAL


def test_detectors_can_be_turned_off() -> None:
    policy = AuditPolicy(disabled=frozenset({d.PERSON, d.STREET_ADDRESS, d.POSTAL_CODE}))
    text = "My name is Rubija, 123 Main Street"
    assert policy.scanner().scan(text) == []


def test_non_ascii_offsets(scanner: d.Scanner) -> None:
    text = "Ünïcödé → Dear Mr. Šimůnek, ship to 5 Großer Ring, Praha ✓ — Jennifer"
    for finding in scanner.scan(text):
        value = text[finding.start : finding.end]
        assert value.strip() == value and value
    assert "Šimůnek" in found(scanner, text, d.PERSON)


def test_word_list_flags() -> None:
    table = _names.lexicon()
    assert table["will"] & _names.WORD and table["will"] & _names.GIVEN
    assert table["jennifer"] & _names.POPULAR and not table["jennifer"] & _names.WORD
    assert table["goldberg"] & _names.FREQUENT
    assert table["paris"] & _names.PLACE


def test_word_list_ships_with_a_notice() -> None:
    data = resources.files("genai_audit.processors").joinpath("data")
    notice = data.joinpath("NOTICE-names.txt").read_text("utf-8")
    for source in ("Social Security", "Census", "web2", "GeoNames", "CC BY 4.0", "CC0"):
        assert source in notice
    lines = gzip.decompress(data.joinpath(_names.LIST_FILE).read_bytes()).decode().splitlines()
    assert lines == sorted(lines) and all("\t" in line for line in lines)


def test_missing_word_list_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_names, "_lexicon", None)
    monkeypatch.setattr(_names, "LIST_FILE", "no-such-list.txt.gz")
    with pytest.raises(_names.NameListMissing):
        d.builtin_detectors()
