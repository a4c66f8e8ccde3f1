"""Detectors: each entity type found, validated and normalised; look-alikes left alone."""

from __future__ import annotations

import pytest

from genai_audit.processors import detectors as d

SCANNER = d.Scanner(d.builtin_detectors("US"))


def found(text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in SCANNER.scan(text)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("mail jane.doe+x@example.co.uk now", d.EMAIL, "jane.doe+x@example.co.uk"),
        ("schreib jörg@bücher.de bitte", d.EMAIL, "jörg@bücher.de"),
        ("call +1 (415) 555-0132 today", d.PHONE, "+1 (415) 555-0132"),
        ("call 415-555-0199.", d.PHONE, "415-555-0199"),
        ("ring +44 20 7946 0958", d.PHONE, "+44 20 7946 0958"),
        ("ruf +49 30 901820 an", d.PHONE, "+49 30 901820"),
        ("plain 4155550132 here", d.PHONE, "4155550132"),
        ("ssn 536-22-1234", d.US_SSN, "536-22-1234"),
        ("visa 4111 1111 1111 1111", d.CREDIT_CARD, "4111 1111 1111 1111"),
        ("visa13 4222222222222", d.CREDIT_CARD, "4222222222222"),
        ("visa19 4111111111111111110", d.CREDIT_CARD, "4111111111111111110"),
        ("mc 5555-5555-5555-4444", d.CREDIT_CARD, "5555-5555-5555-4444"),
        ("mc2 2223003122003222", d.CREDIT_CARD, "2223003122003222"),
        ("amex 3782 822463 10005", d.CREDIT_CARD, "3782 822463 10005"),
        ("jcb15 180000000000002? no: 3530111333300000", d.CREDIT_CARD, "3530111333300000"),
        ("maestro12 675964982648", d.CREDIT_CARD, "675964982648"),
        ("diners 36227206271667", d.CREDIT_CARD, "36227206271667"),
        ("discover 6011 1111 1111 1117", d.CREDIT_CARD, "6011 1111 1111 1117"),
        ("iban DE89 3704 0044 0532 0130 00.", d.IBAN, "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432", d.IBAN, "GB82WEST12345698765432"),
        ("host 192.168.1.10 up", d.IP_ADDRESS, "192.168.1.10"),
        ("v6 2001:db8::8a2e:370:7334 up", d.IP_ADDRESS, "2001:db8::8a2e:370:7334"),
        ("v6 fe80::1 up", d.IP_ADDRESS, "fe80::1"),
        (
            "k sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
            d.OPENAI_API_KEY,
            "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        ),
        (
            "k sk-abcdefghij1234567890T3BlbkFJabcdefghij1234567890",
            d.OPENAI_API_KEY,
            "sk-abcdefghij1234567890T3BlbkFJabcdefghij1234567890",
        ),
        (
            "k sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_x",
            d.ANTHROPIC_API_KEY,
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_x",
        ),
        ("id AKIAIOSFODNN7EXAMPLE", d.AWS_ACCESS_KEY_ID, "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            d.AWS_SECRET_KEY,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", d.GITHUB_TOKEN, "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("slack xoxb-123456789012-abcdefghijkl", d.SLACK_TOKEN, "xoxb-123456789012-abcdefghijkl"),
        ("stripe sk_live_abcdefghijklmnop1234", d.STRIPE_KEY, "sk_live_abcdefghijklmnop1234"),
        ("g AIzaSyA1234567890abcdefghijklmnopqrstuv", d.GOOGLE_API_KEY, "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF123_-",
            d.JWT,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF123_-",
        ),
        ("db postgres://app:hunter22@db.internal/x", d.URL_PASSWORD, "hunter22"),
        ('{"password": "s3cret!"}', d.SECRET_VALUE, "s3cret!"),
        ("api_key=Zx8Kq2Lm9Pw4Rt7Yv3Nb", d.SECRET_VALUE, "Zx8Kq2Lm9Pw4Rt7Yv3Nb"),
    ],
)
def test_finds_entity(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


def test_pem_private_key_block_is_one_finding() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----"
    text = f"here: {key} done"
    assert found(text) == [(d.PRIVATE_KEY, key)]


@pytest.mark.parametrize(
    "text",
    [
        "released 2024-01-15 at 10:30:45",
        "order 12345 shipped, total 1,299.00 USD",
        "version 1.2.3.4 of the app",  # leading zeros/invalid octets aside, this is a valid IPv4 shape
        "card 4111 1111 1111 1112 fails Luhn",
        "ssn 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sha 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "max_tokens=500 and token_count: 12",
        "password: ******** and password=<redacted>",
        "iban DE00 3704 0044 0532 0130 00 has a bad check digit",
        "the ratio 3:2:1 and time 12:30",
    ],
)
def test_leaves_lookalikes(text: str) -> None:
    found_types = [entity for entity, value in found(text) if not (entity == d.IP_ADDRESS and value == "1.2.3.4")]
    assert found_types == []


def test_ip_address_is_not_a_phone_number() -> None:
    assert found("server 10.20.30.40 answered") == [(d.IP_ADDRESS, "10.20.30.40")]


def test_normalisation_gives_one_value_per_number() -> None:
    a = SCANNER.scan("4111 1111 1111 1111")[0].normalized
    b = SCANNER.scan("4111-1111-1111-1111")[0].normalized
    assert a == b == "4111111111111111"
    assert SCANNER.scan("+1 415 555 0132")[0].normalized == SCANNER.scan("(415) 555-0132")[0].normalized
    assert SCANNER.scan("Jane@Example.COM")[0].normalized == "jane@example.com"


def test_overlaps_resolve_to_the_stronger_finding() -> None:
    # the password in the URL is also inside what looks like an e-mail address
    text = "https://bob:hunter22@db.example.com/x"
    assert (d.URL_PASSWORD, "hunter22") in found(text)
    assert all(value != "hunter22@db.example.com" for _, value in found(text))


def test_regional_numbers_follow_the_region() -> None:
    gb = d.Scanner(d.builtin_detectors("GB"))
    text = "call 020 7946 0958"
    assert [f.entity for f in gb.scan(text)] == [d.PHONE]
    assert [f.entity for f in SCANNER.scan(text)] == []


def test_luhn() -> None:
    assert d.luhn_ok("79927398713")
    assert not d.luhn_ok("79927398710")


def test_linear_patterns_only() -> None:
    # RE2 refuses what could backtrack
    with pytest.raises(Exception):  # noqa: B017,PT011 - re2 raises its own error type
        d.Detector("X", d.PII, r"(a+)+\1", d.always)
