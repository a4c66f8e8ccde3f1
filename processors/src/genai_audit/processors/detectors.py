"""Finding personal data and secrets in text, in linear time.

Every pattern is compiled with RE2 (``google-re2``), whose automata match in
time linear in the input whatever the pattern, so no input can make matching
backtrack. One RE2 set automaton over all patterns decides in a single pass
which detectors can match at all, so text without a candidate costs one
scan. Candidates then pass a validator (Luhn, IBAN mod-97, SSN
area/group/serial rules, ``phonenumbers`` validity, IP address parsing,
entropy) that also normalises the value, so one card number written with
spaces or dashes gets one pseudonym.

Dense text has a candidate every hundred characters or so, which makes the
per-candidate cost matter: the text is encoded to UTF-8 once and every pattern
runs on those bytes through RE2's own matcher (byte offsets, converted to
character offsets only for candidates that are not already claimed), and
phone numbers are validated against ``phonenumbers``' metadata without its
general-purpose parser (:mod:`genai_audit.processors._phone`).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import re2

#: google-re2's compiled-pattern object matches UTF-8 bytes and returns byte offsets for every group in one
#: call. The scanner calls it directly: its ``finditer`` wrapper re-encodes the whole text on every call and
#: converts offsets through Python objects per match, which cost more than matching on dense text.
_RE2 = re2._re2
_UNANCHORED = _RE2.RE2.Anchor.UNANCHORED
_chars_to_bytes = _RE2.CharLenToBytes

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
PERSON = "PERSON"
STREET_ADDRESS = "STREET_ADDRESS"
POSTAL_CODE = "POSTAL_CODE"

#: A validator returns the normalised value of a candidate, or None to reject it.
Validator = Callable[[str], "str | None"]
_DIGITS = "0123456789"


class Finding(NamedTuple):
    """One detected value: where it is in the text, what it is, and its normal form.

    Immutable; a named tuple rather than a frozen dataclass because dense text makes thousands
    of them and a tuple is several times cheaper to build.
    """

    start: int
    end: int
    entity: str
    kind: str
    normalized: str
    priority: int


#: A refiner looks inside a candidate the pattern matched and returns the valid value in it as
#: (start offset, end offset, normal form) relative to the candidate, or None.
Refiner = Callable[[str], "tuple[int, int, str] | None"]


class Taken:
    """Non-overlapping spans already claimed, with logarithmic overlap checks."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def overlaps(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self.starts, start)
        if index and self.ends[index - 1] > start:
            return True
        return index < len(self.starts) and self.starts[index] < end

    def add(self, start: int, end: int) -> None:
        index = bisect.bisect_right(self.starts, start)
        self.starts.insert(index, start)
        self.ends.insert(index, end)


@dataclass
class Detector:
    """A pattern, a validator, and context a match must not sit in.

    ``group`` names the capture group holding the value (0: the whole match;
    -1: the first group that took part), so context words around a secret are
    matched but not redacted. ``reject`` sees the text and the value's span and
    says whether the surroundings disqualify it. ``refine`` (instead of
    ``validator``) finds the valid value inside a longer candidate, e.g. a card
    number after another number. ``prefilter`` (optional) is a cheap test that
    the pattern can occur at all.
    """

    entity: str
    kind: str
    pattern: str
    prefilter: Callable[[str], bool] | None = None
    validator: Validator | None = None
    group: int = 0
    priority: int = 50
    reject: Callable[[str, int, int], bool] | None = None
    refine: Refiner | None = None
    compiled: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.compiled = re2.compile(self.pattern)
        self._raw = self.compiled._regexp  # see _RE2 above

    def _span(self, match: Any) -> tuple[int, int]:
        if self.group >= 0:
            return int(match.start(self.group)), int(match.end(self.group))
        for number in range(1, self.compiled.groups + 1):
            if match.start(number) >= 0:
                return int(match.start(number)), int(match.end(number))
        return int(match.start()), int(match.end())

    def find(self, text: str, taken: Taken | None = None) -> Iterator[Finding]:
        """Validated findings; candidates overlapping a span in ``taken`` are skipped unvalidated."""
        if self.prefilter is not None and not self.prefilter(text):
            return
        for match in self.compiled.finditer(text):
            start, end = self._span(match)
            if start < 0 or start == end:
                continue
            if self.reject is not None and self.reject(text, start, end):
                continue
            if taken is not None and taken.overlaps(start, end):
                continue
            value = text[start:end]
            if self.refine is not None:
                refined = self.refine(value)
                if refined is None:
                    continue
                offset, stop, normalized = refined
                start, end = start + offset, start + stop
                if taken is not None and taken.overlaps(start, end):
                    continue
                yield Finding(start, end, self.entity, self.kind, normalized, self.priority)
                continue
            checked = self.validator(value) if self.validator is not None else value
            if checked is not None:
                yield Finding(start, end, self.entity, self.kind, checked, self.priority)

    def collect(self, doc: _Document, found: list[Finding]) -> None:
        """What :meth:`find` yields, appended to ``found`` and claimed in ``doc.taken`` as it is found."""
        text, data, view, taken = doc.text, doc.data, doc.view, doc.taken
        if self.prefilter is not None and not self.prefilter(text):
            return
        match, anchor = self._raw.Match, _UNANCHORED
        group, reject, refine, validator = self.group, self.reject, self.refine, self.validator
        entity, kind, priority = self.entity, self.kind, self.priority
        ascii_only = doc.ascii_only
        # where character offsets were last known, for text that is not all ASCII: candidates come in
        # order and do not overlap, so each converts by decoding only the bytes since the last one
        known_byte = known_char = 0
        new = tuple.__new__  # Finding(...) without the named tuple's Python-level __new__
        is_taken = taken.find  # is_taken(1, start, end) >= 0: a byte in [start, end) is claimed
        size = len(data)
        pos = 0
        while pos <= size:
            spans = match(anchor, view, pos, size)
            start, end = match_start, match_end = spans[0]
            if match_start < 0:
                return
            if group > 0:
                start, end = spans[group]
            elif group < 0:  # the first group that took part, else the whole match
                for span in spans[1:]:
                    if span[0] >= 0:
                        start, end = span
                        break
            # where the next search starts, as finditer does it
            if match_end > pos:
                pos = match_end
            elif pos < size:  # an empty match: step over one character
                pos += _chars_to_bytes(data, pos, 1)
            else:  # an empty match at the end of the text: this candidate is the last
                pos = size + 1
            # start, end: byte offsets; first, stop: character offsets. Overlap is tested on bytes, which
            # is the same test on whole characters, so only candidates that survive it are converted; and
            # before the context test (both only reject, in either order; this one is cheaper).
            if start >= 0 and start != end and is_taken(1, start, end) < 0:
                if ascii_only:
                    first, stop = start, end
                    value = text[start:end]
                else:
                    if start >= known_byte:
                        first = known_char + len(data[known_byte:start].decode())
                    else:  # not reached: a group lies within its match, and matches follow one another
                        first = len(data[:start].decode())
                    value = data[start:end].decode()
                    stop = first + len(value)
                    known_byte, known_char = end, stop
                if reject is not None and reject(text, first, stop):
                    pass
                elif refine is not None:
                    refined = refine(value)
                    if refined is not None:
                        offset, length, normalized = refined
                        if ascii_only:
                            start, end = start + offset, start + length
                        elif offset == 0 and length == len(value):
                            pass  # the whole candidate: the byte span stays
                        else:
                            start += len(value[:offset].encode())
                            end = start + len(value[offset:length].encode())
                        if is_taken(1, start, end) < 0:
                            taken[start:end] = b"\x01" * (end - start)
                            finding = (first + offset, first + length, entity, kind, normalized, priority)
                            found.append(new(Finding, finding))
                else:
                    checked = validator(value) if validator is not None else value
                    if checked is not None:
                        taken[start:end] = b"\x01" * (end - start)
                        found.append(new(Finding, (first, stop, entity, kind, checked, priority)))


class _Document:
    """One text being scanned: its UTF-8 bytes and the bytes findings claimed."""

    __slots__ = ("ascii_only", "data", "taken", "text", "view")

    def __init__(self, text: str, data: bytes) -> None:
        self.text = text
        self.data = data
        self.view = memoryview(data)  # re2 reads a memoryview's buffer a little faster than a bytes object's
        self.ascii_only = len(data) == len(text)
        self.taken = bytearray(len(data))  # 1 where a finding or a redaction token is


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
# Python's ``re`` below runs only where it is linear: character classes without nested repetition, or
# anchored patterns over a candidate a detector's RE2 pattern already bounded to a few dozen characters.
_NON_DIGITS = re.compile(r"[^0-9]+")
_DIGIT_RUNS = re.compile(r"[0-9]+")
#: a digit's contribution to the Luhn sum when doubled (2d, less 9 when that is two digits), as a bytes table:
#: ``bytes.translate`` is a table lookup per byte, ``str.translate`` a dictionary lookup per character
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def only_digits(value: str) -> str:
    """The ASCII digits of ``value``, in order."""
    if value.isdigit() and value.isascii():
        return value
    return _NON_DIGITS.sub("", value)


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit is right (``digits``: ASCII digits only)."""
    # the digits in odd places from the right count once, the others doubled; summing the ASCII bytes
    # of each group and subtracting 48 per digit adds up their values
    data = digits.encode()
    return (sum(data[-1::-2]) + sum(data[-2::-2].translate(_LUHN_DOUBLED)) - 48 * len(data)) % 10 == 0


def _card_brand_ok(digits: str) -> bool:
    """The number's prefix belongs to a card brand that issues numbers of this length.

    Prefixes are compared as strings of equal length, which orders them as numbers.
    """
    n = len(digits)
    if n < 12:
        return False
    p2, p3, p4, p6 = digits[:2], digits[:3], digits[:4], digits[:6]
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if "51" <= p2 <= "55" or "2221" <= p4 <= "2720":
        return n == 16  # Mastercard
    if p2 in ("34", "37"):
        return n == 15  # American Express
    if "2200" <= p4 <= "2204":
        return 16 <= n <= 19  # Mir
    if p4 == "6011" or "644" <= p3 <= "649" or p2 == "65" or "622126" <= p6 <= "622925":
        return 16 <= n <= 19  # Discover
    if "3528" <= p4 <= "3589":
        return 15 <= n <= 19  # JCB
    if p4 in ("2131", "1800"):
        return n == 15  # JCB, older 15-digit numbers
    if "300" <= p3 <= "305" or p2 in ("36", "38", "39") or p4 == "3095":
        return 14 <= n <= 19  # Diners Club
    if p2 in ("62", "81"):
        return 16 <= n <= 19  # UnionPay
    if p2 in ("50", "56", "57", "58", "60", "63", "67", "68", "69", "06"):
        return 12 <= n <= 19  # Maestro, RuPay
    return False


def _brand_lengths() -> dict[str, frozenset[int] | None]:
    """First four digits -> the lengths :func:`_card_brand_ok` accepts with them (None: it depends on later digits).

    Only the Discover range 622126 to 622925 looks further than four digits, and UnionPay, which takes the rest
    of 62, issues the same lengths; each entry is checked with several fifth and sixth digits to be sure.
    """
    table: dict[str, frozenset[int] | None] = {}
    for first in range(10_000):
        p4 = f"{first:04d}"
        answers = {
            frozenset(n for n in range(12, 20) if _card_brand_ok((p4 + tail).ljust(n, "0")))
            for tail in ("00", "25", "26", "92", "93", "99")
        }
        table[p4] = answers.pop() if len(answers) == 1 else None
    return table


_BRAND_LENGTHS = _brand_lengths()


#: ISO/IEC 7812 major industry identifiers of card issuers; 0, 7, 8 and 9 (other industries, national use)
#: start identifiers that are not payment cards
_CARD_ISSUERS = frozenset("123456")


def validate_card(value: str) -> str | None:
    # digits, spaces and dashes only (what the card pattern matches): deleting the separators leaves the digits
    # (two replace calls cost less than one str.translate that deletes characters)
    digits = value.replace(" ", "").replace("-", "") if value.isascii() else ""
    plain = digits.isdigit()
    if not plain:
        digits = only_digits(value)
    n = len(digits)
    if not 12 <= n <= 19:
        return None
    if not luhn_ok(digits):
        return None
    lengths = _BRAND_LENGTHS[digits[:4]]
    if (n not in lengths if lengths is not None else not _card_brand_ok(digits)) and not (
        # fail safe: a number outside the known brands' ranges is still a card number when its
        # first digit is a card issuer's (ISO/IEC 7812: 1 airlines to 6 merchandising and banking)
        n >= 13 and digits[0] in _CARD_ISSUERS
    ):
        return None
    if n != len(value):
        # separators must group the digits the way cards are printed
        spaced = value.replace("-", " ")
        # with digits, spaces and dashes only, split() drops exactly the empty groups
        groups = spaced.split() if plain else [g for g in spaced.split(" ") if g]
        if len(groups) > 1:
            sizes = sorted(map(len, groups[:-1]))
            if sizes[0] < 2 or sizes[-1] > 6:
                return None
    return digits


def refine_card(value: str) -> tuple[int, int, str] | None:
    """The card number in a run of digit groups: the whole run, else the longest valid run of groups.

    ``qty 2 4539 1488 0343 6467``: the pattern takes the leading ``2`` too; the
    card is the four groups after it.
    """
    whole = validate_card(value)
    if whole is not None:
        return 0, len(value), whole
    if value.isdigit() and value.isascii():
        return None  # one group, which is the whole candidate
    groups = [run.span() for run in _DIGIT_RUNS.finditer(value)]
    count = len(groups)
    if count < 2:
        return None
    # printed cards come in groups of 3 to 6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3), at most 6 of them:
    # runs of up to 6 consecutive groups of 3 to 19 digits, 12 to 19 digits in all, not the whole
    # candidate; tried longest first, then leftmost
    windows: list[tuple[int, int, int]] = []
    for i in range(count):
        digits = 0
        for j in range(i, min(count, i + 6)):
            size = groups[j][1] - groups[j][0]
            if not 3 <= size <= 19:
                break  # every longer window holds this group too
            digits += size
            if digits > 19:
                break
            if digits >= 12 and (i, j) != (0, count - 1):
                windows.append((groups[i][0] - groups[j][1], i, j))
    windows.sort()
    for _, i, j in windows:
        begin, stop = groups[i][0], groups[j][1]
        checked = validate_card(value[begin:stop])
        if checked is not None:
            return begin, stop, checked
    return None


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


_IBAN_LETTERS = str.maketrans({chr(ord("A") + i): str(10 + i) for i in range(26)})


#: a country code in digits (A=10 ... Z=35) for every country with an IBAN length
_IBAN_COUNTRY_DIGITS = {code: code.translate(_IBAN_LETTERS) for code in _IBAN_LENGTHS}


def validate_iban(value: str) -> str | None:
    compact = value.replace(" ", "").replace("-", "").upper()
    country = compact[:2]
    if _IBAN_LENGTHS.get(country) != len(compact):
        return None
    check, account = compact[2:4], compact[4:]
    if account.isdigit() and account.isascii() and check.isdigit() and check.isascii():
        # only the country code has letters: no need to translate the rest character by character
        numeric = account + _IBAN_COUNTRY_DIGITS[country] + check
    else:
        rearranged = account + compact[:4]
        if not rearranged.isalnum() or not rearranged.isascii():
            return None
        numeric = rearranged.translate(_IBAN_LETTERS)  # A=10 ... Z=35
    return compact if int(numeric) % 97 == 1 else None


def refine_iban(value: str) -> tuple[int, int, str] | None:
    """The IBAN at the start of a candidate, cut at its country's length (a word may follow)."""
    length = _IBAN_LENGTHS.get(value[:2].upper())
    if length is None:
        return None
    value = value.replace("-", " ")  # the same offsets: dashes group like spaces
    if " " not in value:  # written without spaces: the first `length` characters
        if len(value) < length:
            return None
        checked = validate_iban(value[:length])
        return (0, length, checked) if checked is not None else None
    # the offset just after the length-th character that is not a space, walking the space-separated parts
    count = stop = 0
    for part in value.split(" "):
        if count + len(part) >= length:
            stop += length - count
            checked = validate_iban(value[:stop])
            return (0, stop, checked) if checked is not None else None
        count += len(part)
        stop += len(part) + 1
    return None


def refine_ipv6(value: str) -> tuple[int, int, str] | None:
    """An IPv6 address, without a ':' that only punctuates it (``2001:db8::1: refused``)."""
    colons = value.count(":")
    if colons < 2 or (colons < 6 and "::" not in value):
        return None  # what validate_ipv6 says first, for both lengths tried below (clock times end here)
    for stop in (len(value), len(value.rstrip(":"))):
        checked = validate_ipv6(value[:stop])
        if checked is not None:
            return 0, stop, checked
    return None


def _cjk(ch: str) -> bool:
    return (
        "\u3040" <= ch <= "\u30ff"
        or "\u3400" <= ch <= "\u9fff"
        or "\uac00" <= ch <= "\ud7af"
        or ("\uff00" <= ch <= "\uffef")
    )


def refine_email(value: str) -> tuple[int, int, str] | None:
    """An address, without the CJK words written against it (``请联系ana@example.com获取帮助``).

    CJK text has no spaces, so the address pattern takes the neighbouring
    words too; a CJK run before an ASCII local part, and after an ASCII
    top-level domain, is not part of the address. All-CJK addresses stay whole.
    """
    at = value.find("@")
    if at > 0 and value.isascii():
        return 0, len(value), value.lower()  # no CJK to cut off
    start, stop = 0, len(value)
    local = value[:at]
    if local and _cjk(local[0]) and any(ch.isascii() and ch.isalnum() for ch in local):
        while start < at and _cjk(value[start]):
            start += 1
    dot = value.rfind(".")
    tld = value[dot + 1 :]
    if tld[:1].isascii() and any(_cjk(ch) for ch in tld):
        cut = next(i for i, ch in enumerate(tld) if _cjk(ch))
        if cut >= 2:  # otherwise the CJK letters belong to the domain: keep the whole match
            stop = dot + 1 + cut
    if start >= at:
        return None
    return start, stop, value[start:stop].lower()


def validate_ipv4(value: str) -> str | None:
    parts = value.split(".")
    if len(parts) != 4 or any(len(p) > 1 and p[0] == "0" for p in parts):
        return None
    if any(int(p) > 255 for p in parts):
        return None
    return value


def validate_ipv6(value: str) -> str | None:
    colons = value.count(":")
    if colons < 2 or (colons < 6 and "::" not in value):
        return None  # without '::' an address has 8 groups (6 and an IPv4 tail): a clock time, a MAC address
    if len(value) - colons - value.count(".") < 2:  # fewer than two characters besides ':' and '.'
        return None
    if _HEX_AND_COLONS.issuperset(value):
        return _ipv6_compressed(value)
    try:  # an IPv4 tail, a scope, anything unusual
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return address.compressed


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_AND_COLONS = _HEX_DIGITS | {":"}


def _ipv6_compressed(value: str) -> str | None:
    """``ipaddress.IPv6Address(value).compressed`` for hex digits and colons only, or None where it raises.

    The same rules as ``IPv6Address._ip_int_from_string`` (3 to 9 colon-separated parts, at most one
    ``::``, a leading or trailing ``:`` only as part of it, 1 to 4 hex digits per group) and the same
    compression (lowercase, no leading zeros, the first longest run of two or more zero groups as ``::``),
    without building the address object.
    """
    parts = value.split(":")
    count = len(parts)
    if count < 3 or count > 9:
        return None
    skip = -1
    for index in range(1, count - 1):
        if not parts[index]:
            if skip >= 0:
                return None  # a second '::'
            skip = index
    if skip >= 0:
        high, low = skip, count - skip - 1
        if not parts[0]:
            high -= 1
            if high:
                return None  # a leading ':' that is not part of '::'
        if not parts[-1]:
            low -= 1
            if low:
                return None  # likewise at the end
        skipped = 8 - (high + low)
        if skipped < 1:
            return None
        groups = parts[:high] + ["0"] * skipped + (parts[count - low :] if low else [])
    else:
        if count != 8 or not parts[0] or not parts[-1]:
            return None
        groups = parts
    hextets = []
    for group in groups:
        if not group or len(group) > 4:
            return None
        hextets.append(f"{int(group, 16):x}")
    # the first longest run of zero groups, if two or more long, becomes '::'
    best_start, best_length, start, length = -1, 0, -1, 0
    for index, hextet in enumerate(hextets):
        if hextet == "0":
            length += 1
            if start < 0:
                start = index
            if length > best_length:
                best_start, best_length = start, length
        else:
            start, length = -1, 0
    if best_length > 1:
        end = best_start + best_length
        head = ":".join(hextets[:best_start])
        tail = ":".join(hextets[end:])
        return f"{head}::{tail}"
    return ":".join(hextets)


def shannon_entropy(value: str) -> float:
    counts = Counter(value)  # counted in C, in order of first occurrence
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


#: every character but the digits that a phone candidate can have (see _PHONE; RE2's \s is [\t\n\f\r ]), for
#: ``bytes.translate`` to delete: a candidate is ASCII, and on bytes that is one pass in C with no lookups
_PHONE_PUNCTUATION = b"+ .-()/\t\n\f\r"


def make_phone_validator(regions: str) -> Validator:
    """Valid phone numbers in E.164; ``regions`` (comma-separated) read national numbers, in order."""
    import phonenumbers

    from genai_audit.processors._phone import SLOW, FastPhoneParser

    order = [r.strip().upper() for r in regions.split(",") if r.strip()] or ["US"]
    first_region, more_regions = order[0], order[1:]
    e164 = FastPhoneParser().e164

    def parse(candidate: str, region: str, digits: str | None = None) -> str | None:
        try:
            found = e164(candidate, region, digits)
        except Exception:  # noqa: BLE001 - the fast path is an optimisation: phonenumbers itself decides
            found = SLOW
        if found is not SLOW:
            return found  # type: ignore[return-value]
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    def possible(candidate: str, region: str) -> str | None:
        """A number of a length the numbering plan allows, assigned or not (Faker's and many real
        directories' numbers are not in an assigned range; written like a phone, they are one)."""
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    @functools.lru_cache(maxsize=4096)  # conversations resend the same numbers on every call
    def validate(value: str) -> str | None:
        extension = _EXTENSION.search(value)
        if extension is not None:  # 345-899-3560x4587: the number before the extension decides
            number = validate(value[: extension.start()])
            return None if number is None else f"{number};ext={extension.group(1)}"
        # what the phone pattern matches, less its digits (bytes.isdigit: ASCII digits only)
        raw = value.encode().translate(None, _PHONE_PUNCTUATION) if value.isascii() else b""
        digits = raw.decode() if raw.isdigit() else only_digits(value)
        count = len(digits)
        if count < 7 or count > 15:
            return None
        stripped = value.strip()
        if stripped[:1] == "+":  # a country code and a length its plan allows: a phone number
            return parse(stripped, first_region, digits) or possible(stripped, first_region)
        if count == len(stripped) and count < 10:
            return None  # a bare run of fewer than ten digits is a number, not a phone
        if count > 9 and stripped[:2] == "00":  # international prefix written as 00
            found = parse("+" + stripped[2:].lstrip(), first_region, digits[2:])
            if found is not None:
                return found
        found = parse(stripped, first_region, digits)
        if found is not None or len(digits) == len(stripped.strip("()")):  # found, or not written in groups
            return found
        # other regions' national numbers are written in groups and start with a trunk 0 or an area code
        # in parentheses, or are spaced in pairs or triples: 020 7946 0958, (11) 2343-7088, 612 23 08 79
        if not (stripped.startswith("0") or _AREA_CODE.match(stripped) or _SPACED_GROUPS.fullmatch(stripped)):
            return None
        for region in more_regions:
            found = parse(stripped, region, digits)
            if found is not None:
                return found
        return None

    def validate_national(value: str) -> str | None:
        found = validate(value)
        if found is not None:
            return found
        # written the way phone numbers are printed (930.167.3943, (930) 167-3943, 0xx xxxx xxxx),
        # an unassigned number is still a phone number: fail safe
        stripped = value.strip()
        body = stripped[: extension.start()] if (extension := _EXTENSION.search(stripped)) else stripped
        if _NANP_SHAPE.fullmatch(body):
            number = possible(body, "US")
        elif body.startswith("0") and _TRUNK_SHAPE.fullmatch(body):
            number = next((n for region in order if (n := possible(body, region)) is not None), None)
        else:
            return None
        if number is None:
            return None
        return number if extension is None else f"{number};ext={extension.group(1)}"

    return validate_national


_MASK_CHARS = frozenset("*x.-_#<>[]{}")


def _password_value(value: str) -> str | None:
    stripped = value.strip("\"'")
    if len(stripped) < 4 or set(stripped) <= _MASK_CHARS or stripped.startswith(("[", "<", "${", "{{")):
        return None
    if stripped.endswith(("...", "\u2026")):  # an elided example, not a value
        return None
    if stripped.lower() in {"none", "null", "true", "false", "password", "redacted", "changeme", "required"}:
        return None
    return stripped


def _prose_password(value: str) -> str | None:
    """``password is X`` without a separator: X must look like a password (a digit or a symbol)."""
    stripped = value.strip("\"'.")
    if len(stripped) < 6 or stripped.isalpha() or _password_value(stripped) is None:
        return None
    return stripped


def _bearer_value(value: str) -> str | None:
    return value if any(ch.isdigit() for ch in value) or shannon_entropy(value) >= 3.5 else None


def _secret_value(value: str) -> str | None:
    stripped = value.strip("\"'")
    if len(stripped) < 12 or stripped.startswith(("[", "<", "${", "{{")):
        return None
    if stripped.endswith(("...", "\u2026")):
        return None
    has_alpha = any(ch.isalpha() for ch in stripped)
    has_digit = any(ch.isdigit() for ch in stripped)
    entropy = shannon_entropy(stripped)
    if not has_alpha or entropy < 3.0 or (not has_digit and (entropy < 3.8 or len(stripped) < 20)):
        return None
    return stripped


def _random_looking(value: str, min_entropy: float) -> str | None:
    """High-entropy text with letters and digits (detect-secrets' base64 limit is 4.5 bits per character)."""
    if not any(ch.isdigit() for ch in value) or not any(ch.isalpha() for ch in value):
        return None
    return value if shannon_entropy(value) >= min_entropy else None


def _aws_secret_alone(value: str) -> str | None:
    """A bare 40-character AWS-style secret: both cases and digits (not a hex digest), random-looking."""
    if value.lower() == value or value.upper() == value:
        return None
    return _random_looking(value, 4.5)


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
# with the separators phone numbers are written with: at least seven digits after a '+',
# at least nine for national numbers (dates and short numbers do not qualify)
# and an optional extension (x4587, ext. 12, #3)
_PHONE = (
    r"(?:\+\s?\(?\d(?:[ .\-()/]{0,2}\d){6,14}|(?:\(|\b)\d(?:[ .\-()/]{0,2}\d){8,14})"
    r"(?:\s?(?:x|ext\.?|extension|#)\s?\d{1,6})?\b"
)
# in any case, grouped with spaces or dashes or not at all
_IBAN = r"\b[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}\b"
_IPV4 = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"
_IPV6 = r"(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\d{1,3}\.){3}\d{1,3})?"
_VALUE_END = r"[^\s\"'`,;&<>\\]"
_GENERIC = (
    r"(?i)(?:api[_\-]?key|apikey|secret|client[_\-]?secret|access[_\-]?token|auth[_\-]?token|"
    r"private[_\-]?key|token|credentials?|\bkey)[a-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?(" + _VALUE_END + "{12,})"
)
#: the same words in prose: "my API key is X", "the token X", "secret: X" already above
_GENERIC_PROSE = (
    r"(?i)\b(?:api[ _\-]?key|secret(?: access)?(?: key)?|token|credentials?|passwd|key)"
    r"(?:\s+(?:is|was|of|for)\b)?(?:\s+(?:the|my|our|a))?\s+([A-Za-z0-9/+_\-.=]{16,})"
)
#: an AWS secret access key: 40 characters of base64 after a key id (prose, config, its own line), or alone
_AWS_SECRET_AFTER_ID = (
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b[^\n]{0,80}?(?:\n[^\n]{0,80}?)?"
    r"(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"
)
_AWS_SECRET_ALONE = r"(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"
_BEARER = r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)"
_PASSWORD = r"(?i)(?:password|passwd|passphrase|pwd)[a-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?(" + _VALUE_END + "{4,})"
_PASSWORD_PROSE = r"(?i)\b(?:password|passphrase)(?:\s+(?:is|was|of))?\s+(" + _VALUE_END + "{6,})"


def _preceded_by(chars: str) -> Callable[[str, int, int], bool]:
    def reject(text: str, start: int, end: int) -> bool:
        return start > 0 and text[start - 1] in chars

    return reject


def _ipv4_context(text: str, start: int, end: int) -> bool:
    """Part of a longer dotted number (a phone written with dots, a version string) or after a '+'."""
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return (
        before[-1:] == "+"
        or (len(before) == 2 and before[1] == "." and before[0].isdigit())
        or (len(after) == 2 and after[0] == "." and after[1].isdigit())
    )


# applied to phone candidates only (at most 46 characters, or 60 with an extension: see _PHONE)
_AREA_CODE = re.compile(r"\([0-9]{1,4}\)")  # with .match
_EXTENSION = re.compile(r"\s?(?:x|ext\.?|extension|#)\s?([0-9]{1,6})\Z")  # with .search
#: NANP numbers as printed: (930) 167-3943, 930-167-3943, 930.167.3943, 930 167 3943, 1-930-167-3943
_NANP_SHAPE = re.compile(r"(?:1[ .\-])?(?:\([0-9]{3}\) ?|[0-9]{3}([ .\-]))[0-9]{3}[ .\-][0-9]{4}")
#: national numbers with a trunk 0, in two to four groups: 07700 063 966, 020 7946 0958, 0612 34 56 78
_TRUNK_SHAPE = re.compile(r"0[0-9]{1,4}(?:[ .\-/][0-9]{2,4}){1,4}")
_SPACED_GROUPS = re.compile(r"[0-9]{2,3}(?: [0-9]{2,3}){3,}")  # with .fullmatch
# with .match: the whole value is a dotted quad (an IP address, valid or not), or it starts with a date
_QUAD_OR_DATE = re.compile(
    r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\Z"
    r"|\(?(?:[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.][0-9]{4})"
)


def _phone_context(text: str, start: int, end: int) -> bool:
    """A date and hour (``2023-12-11 01:17``), a clock time, a MAC address or part of a longer token."""
    after = text[end : end + 2]
    # followed by ':' or '-' and more of a token (2023-12-11 01:17, 12-34-56-78-9a); '-Fax' is a label
    if len(after) == 2 and ((after[0] == ":" and after[1].isalnum()) or (after[0] == "-" and after[1].isdigit())):
        return True
    if start and (text[start - 1].isalnum() or text[start - 1] in "-_.:/"):
        return True
    # both shapes have a '.', '-' or '/' among their first six characters
    head = text[start : min(start + 6, end)]
    if "." not in head and "-" not in head and "/" not in head:
        return False
    return _QUAD_OR_DATE.match(text, start, end) is not None


def builtin_detectors(phone_region: str = "US,GB,DE,FR,AU,IN,KR,JP,NL,IT,ES,BR,MX") -> list[Detector]:
    """The built-in detectors, highest priority first (ties on overlap go to the higher priority).

    ``phone_region`` is a region code, or several separated by commas: national
    numbers (no ``+`` or ``00``) are tried in each, in order.
    """
    not_after_plus = _preceded_by("+")
    return [
        Detector(
            PRIVATE_KEY,
            SECRET,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\:,]|-[A-Za-z0-9])*"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
            priority=100,
        ),
        Detector(ANTHROPIC_API_KEY, SECRET, r"\bsk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{20,}", priority=95),
        Detector(
            OPENAI_API_KEY,
            SECRET,
            r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"
            r"|\bsk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_\-]{20,}|\bsk-[A-Za-z0-9]{32,}\b",
            priority=90,
        ),
        Detector(
            AWS_ACCESS_KEY_ID,
            SECRET,
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b",
            priority=90,
        ),
        Detector(
            AWS_SECRET_KEY,
            SECRET,
            r"(?i)aws[a-z0-9_\-. ]{0,30}(?:secret|sk)[a-z0-9_\-. ]{0,20}[\"']?\s*[:=]?\s*[\"']?"
            r"([A-Za-z0-9/+]{40})\b",
            validator=lambda v: v if shannon_entropy(v) > 3.5 else None,
            group=1,
            priority=90,
        ),
        Detector(
            AWS_SECRET_KEY,
            SECRET,
            _AWS_SECRET_AFTER_ID,
            validator=lambda v: _random_looking(v, 3.5),
            group=1,
            priority=89,
        ),
        Detector(GITHUB_TOKEN, SECRET, r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b", priority=90),
        Detector(
            SLACK_TOKEN,
            SECRET,
            r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_]+",
            priority=90,
        ),
        Detector(
            STRIPE_KEY, SECRET, r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bwhsec_[A-Za-z0-9]{24,}\b", priority=90
        ),
        Detector(GOOGLE_API_KEY, SECRET, r"\bAIza[0-9A-Za-z_\-]{35}", priority=90),
        Detector(JWT, SECRET, r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*", priority=85),
        Detector(URL_PASSWORD, SECRET, r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"']+:([^\s/@\"']+)@", group=1, priority=85),
        Detector(SECRET_VALUE, SECRET, _PASSWORD, validator=_password_value, group=1, priority=80),
        Detector(SECRET_VALUE, SECRET, _PASSWORD_PROSE, validator=_prose_password, group=1, priority=79),
        Detector(SECRET_VALUE, SECRET, _GENERIC, validator=_secret_value, group=1, priority=75),
        Detector(SECRET_VALUE, SECRET, _BEARER, validator=_bearer_value, group=1, priority=75),
        Detector(
            SECRET_VALUE, SECRET, _GENERIC_PROSE, validator=lambda v: _random_looking(v, 3.5), group=1, priority=74
        ),
        Detector(AWS_SECRET_KEY, SECRET, _AWS_SECRET_ALONE, validator=_aws_secret_alone, group=1, priority=72),
        Detector(IBAN, PII, _IBAN, refine=refine_iban, priority=70),
        Detector(CREDIT_CARD, PII, _CARD, refine=refine_card, reject=not_after_plus, priority=65),
        Detector(US_SSN, PII, _SSN, validator=validate_ssn, reject=not_after_plus, priority=60),
        Detector(IP_ADDRESS, PII, _IPV4, validator=validate_ipv4, reject=_ipv4_context, priority=55),
        Detector(IP_ADDRESS, PII, _IPV6, refine=refine_ipv6, priority=55),
        Detector(EMAIL, PII, _EMAIL, refine=refine_email, priority=50),
        Detector(PHONE, PII, _PHONE, validator=make_phone_validator(phone_region), reject=_phone_context, priority=40),
        *address_detectors(),
        NameDetector(),
    ]


class LongestDetector(Detector):
    """A detector whose pattern takes the longest match at each position (POSIX), not the first alternative.

    An address's optional parts (unit, city, postal code) in any order: the longest reading is the address.
    """

    def __post_init__(self) -> None:
        options = re2.Options()
        options.longest_match = True
        options.max_mem = 64 << 20  # the automaton of a long pattern of optional parts
        self.compiled = re2.compile(self.pattern, options)
        self._raw = self.compiled._regexp


class NameDetector(Detector):
    """Person names: capitalised runs checked against word lists and cues (:mod:`genai_audit.processors._names`).

    Not one pattern and a validator: the pattern (given to the scanner's set automaton) finds runs of
    capitalised words and stated names, and the rules in ``_names`` decide which are names.
    """

    def __init__(self, priority: int = 30) -> None:
        from genai_audit.processors import _names

        self._finder = _names.NameFinder()  # reads the word list now: a missing list fails at start-up
        super().__init__(PERSON, PII, f"{_names._RUN}|{_names._STATED}", priority=priority)

    def find(self, text: str, taken: Taken | None = None) -> Iterator[Finding]:
        for start, end, normalized in self._finder.find(text):
            if taken is not None and taken.overlaps(start, end):
                continue
            yield Finding(start, end, self.entity, self.kind, normalized, self.priority)

    def collect(self, doc: _Document, found: list[Finding]) -> None:
        text, taken = doc.text, doc.taken
        is_taken = taken.find
        known_char = known_byte = 0
        entity, kind, priority = self.entity, self.kind, self.priority
        new = tuple.__new__
        for first, stop, normalized in self._finder.find(text):
            if doc.ascii_only:
                start, end = first, stop
            else:  # names come in order: convert from where the last one was
                start = known_byte + len(text[known_char:first].encode())
                end = start + len(text[first:stop].encode())
                known_char, known_byte = stop, end
            if is_taken(1, start, end) >= 0:
                continue
            taken[start:end] = b"\x01" * (end - start)
            found.append(new(Finding, (first, stop, entity, kind, normalized, priority)))


def address_detectors() -> list[Detector]:
    """Street addresses and postal codes (patterns and checks in :mod:`genai_audit.processors._names`)."""
    from genai_audit.processors import _names

    return [
        LongestDetector(STREET_ADDRESS, PII, _names.STREET_PATTERN, refine=_names.refine_street, priority=38),
        Detector(
            STREET_ADDRESS, PII, _names.CUED_ADDRESS_PATTERN, refine=_names.refine_cued_address, group=1, priority=36
        ),
        Detector(POSTAL_CODE, PII, _names.POSTAL_PATTERN, validator=_names.validate_postal, group=-1, priority=37),
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


#: What redaction writes: ``[TYPE]`` or ``[TYPE:token]``. Text already redacted is never redacted again.
REDACTION_TOKEN = re2.compile(r"\[[A-Z][A-Z0-9_]*(?::[0-9a-f]{6,64})?\]")

#: Claims the redaction tokens already in a text, so that no detector looks inside them.
_TOKEN_DETECTOR = Detector("REDACTED", "", REDACTION_TOKEN.pattern)


#: Memory for the combined automaton; generous so that it never runs out on large inputs.
SET_MAX_MEM = 256 << 20


class Scanner:
    """Runs a set of detectors over text and returns non-overlapping findings.

    One RE2 set automaton over every detector's pattern decides, in a single
    linear pass, which detectors can match at all; only those run their own
    pattern and validator, strongest first, each skipping what a stronger one
    claimed. Text without candidates costs that one pass.
    """

    def __init__(self, detectors: Sequence[Detector]) -> None:
        # strongest first: a weaker detector skips what a stronger one claimed
        self.detectors = tuple(sorted(detectors, key=lambda det: -det.priority))
        options = re2.Options()
        options.max_mem = SET_MAX_MEM
        self._set = re2.Set.SearchSet(options)
        for detector in self.detectors:
            self._set.Add(detector.pattern)
        self._set.Compile()

    def clear_caches(self) -> None:
        """Forget memoised validations (phone numbers); for measurements that must not reuse them."""
        for detector in self.detectors:
            clear = getattr(detector.validator, "cache_clear", None)
            if callable(clear):
                clear()

    def candidates(self, text: str) -> list[int]:
        """Indexes of the detectors whose pattern occurs in ``text``."""
        hits = self._set.Match(text)
        return sorted(hits) if hits else []

    def scan(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order; redaction tokens already in the text are left alone."""
        if "\\" in text:
            # escaped line breaks and tabs (error messages that print a JSON body) separate values
            # like the characters they stand for; same length, so offsets stay valid
            text = text.replace("\\n", "  ").replace("\\t", "  ").replace("\\r", "  ")
        data = text.encode("utf-8")  # once for every pattern; raises UnicodeEncodeError on lone surrogates
        hits = self._set.Match(data)
        if not hits:
            return []
        doc = _Document(text, data)
        if "[" in text:
            _TOKEN_DETECTOR.collect(doc, [])
        found: list[Finding] = []
        detectors = self.detectors
        for index in sorted(hits):
            detectors[index].collect(doc, found)
        found.sort()  # by start: findings do not overlap, so no two start at the same offset
        return found
