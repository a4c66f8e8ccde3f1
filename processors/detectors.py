"""Finding personal data and secrets in text, in linear time.

Every pattern is compiled with RE2 (``google-re2``), whose automata match in
time linear in the input whatever the pattern, so no input can make matching
backtrack. Each detector has a cheap prefilter — literal substrings, or "a run
of digits is present" — so text without a candidate costs a few substring
searches. Candidates then pass a validator (Luhn, IBAN mod-97, SSN
area/group/serial rules, ``phonenumbers`` validity, IP address parsing,
entropy) that also normalises the value, so one card number written with
spaces or dashes gets one pseudonym.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

PII = "pii"
SECRET = "secret"

# entity types
EMAIL = "EMAIL"
PHONE = "PHONE"
US_SSN = "US_SSN"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
IP_ADDRESS = "IP_ADDRESS"
OPENAI_API_KEY = "OPENAI_API_KEY"
ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_KEY = "AWS_SECRET_KEY"
GITHUB_TOKEN = "GITHUB_TOKEN"
SLACK_TOKEN = "SLACK_TOKEN"
STRIPE_KEY = "STRIPE_KEY"
GOOGLE_API_KEY = "GOOGLE_API_KEY"
JWT = "JWT"
PRIVATE_KEY = "PRIVATE_KEY"
URL_PASSWORD = "URL_PASSWORD"
SECRET_VALUE = "SECRET"

#: A validator returns the normalised value of a candidate, or None to reject it.
Validator = Callable[[str], "str | None"]
_DIGITS = "0123456789"


@dataclass(frozen=True)
class Finding:
    """One detected value: where it is in the text, what it is, and its normal form."""

    start: int
    end: int
    entity: str
    kind: str
    normalized: str
    priority: int


@dataclass
class Detector:
    """A pattern, a prefilter deciding whether the pattern can match at all, and a validator.

    ``group`` names the capture group holding the value (0: the whole match),
    so context words around a secret are matched but not redacted.
    """

    entity: str
    kind: str
    pattern: str
    prefilter: Callable[[str], bool]
    validator: Validator | None = None
    group: int = 0
    priority: int = 50
    compiled: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.compiled = re2.compile(self.pattern)

    def find(self, text: str) -> Iterable[Finding]:
        if not self.prefilter(text):
            return
        for match in self.compiled.finditer(text):
            start, end = match.start(self.group), match.end(self.group)
            if start < 0 or start == end:
                continue
            value = text[start:end]
            normalized = self.validator(value) if self.validator is not None else value
            if normalized is not None:
                yield Finding(start, end, self.entity, self.kind, normalized, self.priority)


# -- prefilters --------------------------------------------------------------------------
def has_digits(min_run: int) -> Callable[[str], bool]:
    """True when ``min_run`` consecutive digits appear (checked with plain substring search first)."""
    run = re2.compile(r"\d{" + str(min_run) + "}")

    def check(text: str) -> bool:
        for digit in _DIGITS:
            if digit in text:
                return run.search(text) is not None
        return False

    return check


def contains(*needles: str) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return any(needle in text for needle in needles)

    return check


def contains_folded(*needles: str) -> Callable[[str], bool]:
    """Case-insensitive literal check; ``needles`` are lowercase."""
    firsts = {n[0] for n in needles} | {n[0].upper() for n in needles}

    def check(text: str) -> bool:
        if not any(first in text for first in firsts):
            return False
        lowered = text.lower()
        return any(needle in lowered for needle in needles)

    return check


def always(_text: str) -> bool:
    return True


# -- validators --------------------------------------------------------------------------
def only_digits(value: str) -> str:
    return "".join(ch for ch in value if "0" <= ch <= "9")


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if index % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """The number's prefix belongs to a card brand that issues numbers of this length."""
    n = len(digits)
    p2, p4, p6 = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if 2200 <= p4 <= 2204:
        return 16 <= n <= 19  # Mir
    if p4 == 6011 or 644 <= int(digits[:3]) <= 649 or p2 == 65 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19  # Discover
    if 3528 <= p4 <= 3589:
        return 15 <= n <= 19  # JCB
    if 300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39) or p4 == 3095:
        return 14 <= n <= 19  # Diners Club
    if p2 == 62 or p2 == 81:
        return 16 <= n <= 19  # UnionPay
    if p2 in (50, 56, 57, 58, 60, 63, 67, 68, 69) or p2 == 6:
        return 12 <= n <= 19  # Maestro, RuPay
    return False


def validate_card(value: str) -> str | None:
    digits = only_digits(value)
    if not 12 <= len(digits) <= 19 or not luhn_ok(digits) or not _card_brand_ok(digits):
        return None
    # separators, when present, must group the digits the way cards are printed
    groups = [g for g in re2.split(r"[ \-]", value) if g]
    if len(groups) > 1 and any(len(g) > 6 or len(g) < 2 for g in groups[:-1]):
        return None
    return digits


def validate_ssn(value: str) -> str | None:
    digits = only_digits(value)
    if len(digits) != 9:
        return None
    seps = [ch for ch in value if not ch.isdigit()]
    if seps and (len(seps) != 2 or seps[0] != seps[1]):
        return None
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    if digits in ("078051120", "219099999", "123456789"):  # published examples, never issued
        return None
    return digits


_IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


def validate_iban(value: str) -> str | None:
    compact = value.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return None
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return compact if int(numeric) % 97 == 1 else None


def validate_ipv4(value: str) -> str | None:
    parts = value.split(".")
    if len(parts) != 4 or any(len(p) > 1 and p[0] == "0" for p in parts):
        return None
    if any(int(p) > 255 for p in parts):
        return None
    return value


def validate_ipv6(value: str) -> str | None:
    if value.count(":") < 2 or sum(ch not in ":." for ch in value) < 2:
        return None
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return address.compressed


def shannon_entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def make_phone_validator(region: str) -> Validator:
    import phonenumbers

    def validate(value: str) -> str | None:
        digits = only_digits(value)
        if not 7 <= len(digits) <= 15:
            return None
        if "." in value and validate_ipv4(value.strip()) is not None:
            return None
        stripped = value.strip()
        if "+" not in stripped and len(digits) == len(stripped) and len(digits) < 10:
            return None  # a bare run of fewer than ten digits is a number, not a phone
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    return validate


def _password_value(value: str) -> str | None:
    stripped = value.strip("\"'")
    if len(stripped) < 4 or set(stripped) <= set("*x.-_#<>[]{}") or stripped.startswith(("[", "<", "${", "{{")):
        return None
    if stripped.lower() in {"none", "null", "true", "false", "password", "redacted", "changeme", "required"}:
        return None
    return stripped


def _secret_value(value: str) -> str | None:
    stripped = value.strip("\"'")
    if len(stripped) < 12 or stripped.startswith(("[", "<", "${", "{{")):
        return None
    has_alpha = any(ch.isalpha() for ch in stripped)
    has_digit = any(ch.isdigit() for ch in stripped)
    if not (has_alpha and has_digit) or shannon_entropy(stripped) < 3.0:
        return None
    return stripped


def generic_secret_validator(match_text: str) -> str | None:
    """For ``keyword = value`` matches: passwords need only be non-trivial; other secrets high-entropy."""
    return _secret_value(match_text)


def _exact(value: str) -> str:
    return value


# -- the built-in detectors ---------------------------------------------------------------
_NON_ASCII = r"\x{80}-\x{10FFFF}"
_EMAIL = (
    rf"[A-Za-z0-9._%+\-{_NON_ASCII}]+@[A-Za-z0-9\-{_NON_ASCII}]+"
    rf"(?:\.[A-Za-z0-9\-{_NON_ASCII}]+)*\.[A-Za-z{_NON_ASCII}]{{2,}}"
)
_CARD = r"\b\d(?:[ \-]?\d){11,18}\b"
_SSN = r"\b\d{3}([ \-]?)\d{2}[ \-]?\d{4}\b"
_PHONE = r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{1,5}(?:[ .\-]\d{1,8}){0,5}\b|\+?\b\d{7,15}\b"
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"
_IPV4 = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"
_IPV6 = r"(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\d{1,3}\.){3}\d{1,3})?"
_GENERIC = (
    r"(?i)(?:api[_\-]?key|apikey|secret|client[_\-]?secret|access[_\-]?token|auth[_\-]?token|bearer|"
    r"private[_\-]?key|token)[a-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?([^\s\"',;&<>\\]{12,})"
)
_PASSWORD = r"(?i)(?:password|passwd|passphrase|pwd)[a-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?([^\s\"',;&<>\\]{4,})"


def _phone_prefilter(text: str) -> bool:
    return any(d in text for d in _DIGITS)


def builtin_detectors(phone_region: str = "US") -> list[Detector]:
    """The built-in detectors, highest priority first (ties on overlap go to the higher priority)."""
    seven_digits = has_digits(3)
    return [
        Detector(
            PRIVATE_KEY,
            SECRET,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,]|-[A-Za-z0-9])*"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
            contains("-----BEGIN"),
            priority=100,
        ),
        Detector(
            ANTHROPIC_API_KEY,
            SECRET,
            r"\bsk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}",
            contains("sk-ant-"),
            priority=95,
        ),
        Detector(
            OPENAI_API_KEY,
            SECRET,
            r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"
            r"|\bsk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{32,}\b",
            contains("sk-"),
            priority=90,
        ),
        Detector(
            AWS_ACCESS_KEY_ID,
            SECRET,
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b",
            contains("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"),
            priority=90,
        ),
        Detector(
            AWS_SECRET_KEY,
            SECRET,
            r"(?i)aws[a-z0-9_\-. ]{0,30}(?:secret|sk)[a-z0-9_\-. ]{0,20}[\"']?\s*[:=]?\s*[\"']?"
            r"([A-Za-z0-9/+]{40})\b",
            contains_folded("aws"),
            validator=lambda v: v if shannon_entropy(v) > 3.5 else None,
            group=1,
            priority=90,
        ),
        Detector(
            GITHUB_TOKEN,
            SECRET,
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
            contains("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
            priority=90,
        ),
        Detector(
            SLACK_TOKEN,
            SECRET,
            r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_]+",
            contains("xox", "hooks.slack.com"),
            priority=90,
        ),
        Detector(
            STRIPE_KEY,
            SECRET,
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bwhsec_[A-Za-z0-9]{24,}\b",
            contains("k_live_", "k_test_", "whsec_"),
            priority=90,
        ),
        Detector(GOOGLE_API_KEY, SECRET, r"\bAIza[0-9A-Za-z_\-]{35}\b", contains("AIza"), priority=90),
        Detector(
            JWT,
            SECRET,
            r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",
            contains("eyJ"),
            priority=85,
        ),
        Detector(
            URL_PASSWORD,
            SECRET,
            r"[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@\"']+:([^\s/@\"']+)@",
            contains("://"),
            group=1,
            priority=85,
        ),
        Detector(
            SECRET_VALUE,
            SECRET,
            _PASSWORD,
            contains_folded("pass", "pwd"),
            validator=_password_value,
            group=1,
            priority=80,
        ),
        Detector(
            SECRET_VALUE,
            SECRET,
            _GENERIC,
            contains_folded("key", "secret", "token", "bearer"),
            validator=_secret_value,
            group=1,
            priority=75,
        ),
        Detector(IBAN, PII, _IBAN, seven_digits, validator=validate_iban, priority=70),
        Detector(CREDIT_CARD, PII, _CARD, seven_digits, validator=validate_card, priority=65),
        Detector(US_SSN, PII, _SSN, seven_digits, validator=validate_ssn, priority=60),
        Detector(IP_ADDRESS, PII, _IPV4, contains("."), validator=validate_ipv4, priority=55),
        Detector(IP_ADDRESS, PII, _IPV6, contains("::", ":"), validator=validate_ipv6, priority=55),
        Detector(EMAIL, PII, _EMAIL, contains("@"), validator=str.lower, priority=50),
        Detector(PHONE, PII, _PHONE, _phone_prefilter, validator=make_phone_validator(phone_region), priority=40),
    ]


def resolve(findings: Sequence[Finding]) -> list[Finding]:
    """Non-overlapping findings: on overlap the higher priority wins, then the longer match."""
    ordered = sorted(findings, key=lambda f: (-f.priority, -(f.end - f.start), f.start))
    taken: list[Finding] = []
    for finding in ordered:
        if all(finding.end <= other.start or finding.start >= other.end for other in taken):
            taken.append(finding)
    taken.sort(key=lambda f: f.start)
    return taken


class Scanner:
    """Runs a set of detectors over text and returns non-overlapping findings."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = tuple(detectors)

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        for detector in self.detectors:
            found.extend(detector.find(text))
        if len(found) > 1:
            return resolve(found)
        return found
