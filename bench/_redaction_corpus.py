"""Labeled corpora for ``bench/redaction.py``: LLM-prompt-like texts with character-span labels.

How a document is made
----------------------
Everything comes from one ``random.Random(seed)``, so a seed and a size give
the same corpus on every machine and every run (no ``hash()``, no clock, no
set iteration order is involved).

A document has a *genre* — customer-support chat, e-mail, application log,
JSON tool arguments, code or configuration, or multilingual chat (French,
German, Spanish, Japanese, Chinese, Russian, Arabic) — and a target length
drawn from a log-normal distribution (median about 1.5 KB, clipped to
200..8,000 characters). Segments of that genre are appended until the target
is reached. A segment is a template string whose ``{SLOTS}`` are filled by
generators; ``{SLOT|json}`` writes the value JSON-escaped (a PEM key's line
breaks become ``\\n``) because the template is the inside of a JSON string.

Labels
------
Each generator returns the text it writes and the character spans it
labels, relative to itself; the renderer shifts them by the position the text
lands at, so every label is an exact ``(start, end)`` into the final document
string (Python ``str`` indices, i.e. code points). Three kinds of span exist:

* **gold entities**, with a type and a subtype (the format or brand):
  ``EMAIL``; ``PHONE`` (US in ten formats, international numbers of 18
  countries in E.164, spaced, dashed, dotted and ``00``-prefixed forms, and
  national non-US forms; every number is valid according to the
  ``phonenumbers`` metadata); ``US_SSN`` (area/group/serial rules respected;
  dashed, spaced, bare); ``CREDIT_CARD`` (Visa 13/16/19, Mastercard 51-55 and
  2-series, American Express, Discover 16/19, JCB 16/19 and 15-digit legacy,
  Diners Club 14, UnionPay 16/19, Maestro 12/16/19, Mir, RuPay; plain, spaced
  and dashed in the grouping printed on that card; Luhn-valid); ``IBAN``
  (14 countries with their real BBAN layout, mod-97-valid; compact and spaced);
  ``IP_ADDRESS`` (IPv4, IPv4 with port, IPv6 full, compressed, IPv4-mapped,
  link-local, bracketed with port); and ``SECRET`` with the secret's
  kind as subtype (OpenAI, Anthropic, AWS access key id and secret key, GitHub,
  Slack token and webhook, Stripe, Google API key, JWT, PEM private key, the
  password inside a URL, ``password=`` values, ``api_key=``/``client_secret``/
  ``X-API-Key``/opaque ``Bearer`` values). For a secret that needs context
  (``password=``, an AWS secret key, a URL), only the value is labeled, not
  the keyword or the rest of the URL.
* **distractors**, with a category: things a detector must not flag —
  dates, times, ISO timestamps, Unix epochs, order and ticket numbers,
  tracking numbers, version strings and Windows build numbers, prices,
  percentages, coordinates, Luhn-invalid 16-digit numbers, invalid SSNs
  (area 000/666/9xx), out-of-range dotted quads, UUIDs, git SHAs, SHA-256
  digests, MAC addresses, ISBNs, placeholder credentials (``YOUR_API_KEY``,
  ``<redacted>``, ``********``, ``sk-...``). Numeric distractors of 10 or
  more digits are redrawn until they are neither Luhn-valid nor a valid US or
  international phone number, so none of them is a real entity in disguise.
* filler (names, cities, products, small numbers) is not labeled: names are
  not among the types measured.

The *no-PII* corpus uses the same genres and filler sentences with ordinary
numbers (counts, prices, percentages, dates, versions, durations) and no
entity and no distractor slot; anything found in it is a false positive.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers

# -- labels ---------------------------------------------------------------------------------
EMAIL = "EMAIL"
PHONE = "PHONE"
US_SSN = "US_SSN"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
IP_ADDRESS = "IP_ADDRESS"
SECRET = "SECRET"
TYPES = (EMAIL, PHONE, US_SSN, CREDIT_CARD, IBAN, IP_ADDRESS, SECRET)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str  # an entity type from TYPES, or a distractor category
    subtype: str = ""


@dataclass
class Doc:
    text: str
    genre: str
    gold: list[Span] = field(default_factory=list)
    distractors: list[Span] = field(default_factory=list)


@dataclass
class Piece:
    """Generated text plus spans relative to its own start."""

    text: str
    gold: list[Span] = field(default_factory=list)
    distractors: list[Span] = field(default_factory=list)


def _whole(text: str, label: str, subtype: str) -> Piece:
    return Piece(text, gold=[Span(0, len(text), label, subtype)])


def _distractor(text: str, category: str) -> Piece:
    return Piece(text, distractors=[Span(0, len(text), category)])


Gen = Callable[[random.Random], Piece]


# -- helpers ---------------------------------------------------------------------------------
def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "-_"
_B64 = _ALNUM + "+/"
_HEX = "0123456789abcdef"


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def luhn_check_digit(body: str) -> str:
    total = 0
    for index, ch in enumerate(reversed(body)):
        d = int(ch)
        if index % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def _group(number: str, sizes: tuple[int, ...], sep: str) -> str:
    out, pos = [], 0
    for size in sizes:
        out.append(number[pos : pos + size])
        pos += size
    if pos < len(number):
        out.append(number[pos:])
    return sep.join(part for part in out if part)


def _is_valid_phone(digits: str) -> bool:
    """Whether a digit run parses as a valid phone number, as US national or with a leading +."""
    for candidate, region in ((digits, "US"), ("+" + digits, None)):
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def _clean_number(rng: random.Random, make: Callable[[random.Random], str]) -> str:
    """Redraw a numeric distractor until it is neither Luhn-valid nor a valid phone number."""
    for _ in range(1000):
        value = make(rng)
        digits = "".join(ch for ch in value if ch.isdigit())
        if len(digits) >= 10 and (luhn_valid(digits) or _is_valid_phone(digits)):
            continue
        return value
    raise RuntimeError("could not draw a clean numeric distractor")


# -- e-mail -------------------------------------------------------------------------------------
_FIRST = _words(
    "john maria wei aisha lukas sofia raj emma olu yuki carlos anna mohammed chloe dmitri priya liam "
    "fatima noah ines kenji zoe pablo nora"
)
_LAST = _words(
    "smith garcia chen okafor mueller rossi patel johnson nakamura silva kowalski dubois ivanova khan "
    "brown lindqvist haddad oconnor tanaka novak"
)
_DOMAINS = _words(
    "gmail.com outlook.com yahoo.co.uk example.com acme-corp.io mail.northwind.de contoso.com proton.me "
    "uni-heidelberg.de company.co.jp fastmail.fm shop.example.org web.de orange.fr icloud.com "
    "sub.dept.globex.net"
)
_IDN = ["müller@beispiel.de", "josé.garcía@correo.es", "françois.lefèvre@exemple.fr", "søren@firma.dk"]


def gen_email(rng: random.Random) -> Piece:
    roll = rng.random()
    first, last, domain = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_DOMAINS)
    if roll < 0.05:
        return _whole(rng.choice(_IDN), EMAIL, "idn")
    if roll < 0.35:
        local = f"{first}.{last}"
    elif roll < 0.5:
        local = f"{first}_{last}{rng.randint(1, 99)}"
    elif roll < 0.65:
        local = f"{first[0]}{last}"
    elif roll < 0.75:
        local = f"{first}.{last}+{rng.choice(['orders', 'news', 'support', 'llm'])}"
    elif roll < 0.85:
        local = f"{first}{rng.randint(1970, 2005)}"
    else:
        local = rng.choice(["support", "billing", "noreply", "security", "jobs", "info"])
    subtype = "plain"
    if rng.random() < 0.1:
        local, domain, subtype = local.capitalize(), domain.upper(), "uppercase"
    return _whole(f"{local}@{domain}", EMAIL, subtype)


# -- phone ------------------------------------------------------------------------------------------
_US_AREAS = _words("212 415 312 617 206 305 512 303 404 702 646 213 718 972 469 801 503 612 919 602")
_US_FORMATS: list[tuple[str, str]] = [
    ("us-paren", "({a}) {e}-{l}"),
    ("us-dash", "{a}-{e}-{l}"),
    ("us-dot", "{a}.{e}.{l}"),
    ("us-space", "{a} {e} {l}"),
    ("us-plus1-space", "+1 {a} {e} {l}"),
    ("us-plus1-dash", "+1-{a}-{e}-{l}"),
    ("us-plus1-paren", "+1 ({a}) {e}-{l}"),
    ("us-1-dash", "1-{a}-{e}-{l}"),
    ("us-bare10", "{a}{e}{l}"),
    ("us-e164", "+1{a}{e}{l}"),
]
_INTL_REGIONS = _words("GB DE FR IN JP AU BR ES IT NL MX CH SE PL ZA SG KR IE")


def _random_valid_number(rng: random.Random, region: str, ntype: int) -> phonenumbers.PhoneNumber:
    example = phonenumbers.example_number_for_type(region, ntype) or phonenumbers.example_number(region)
    if example is None:
        raise ValueError(f"phonenumbers has no example number for {region}")
    national = str(example.national_number)
    keep = max(1, len(national) - 6)
    for _ in range(500):
        candidate = national[:keep] + _digits(rng, len(national) - keep)
        number = phonenumbers.parse("+" + str(example.country_code) + candidate, None)
        if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) == ntype:
            return number
    return example


def _us_phone(rng: random.Random) -> Piece:
    for _ in range(500):
        area, exchange, line = rng.choice(_US_AREAS), str(rng.randint(200, 999)), _digits(rng, 4)
        if exchange[1:] == "11":
            continue
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}{exchange}{line}", None)):
            break
    subtype, fmt = rng.choice(_US_FORMATS)
    return _whole(fmt.format(a=area, e=exchange, l=line), PHONE, subtype)


def _intl_phone(rng: random.Random) -> Piece:
    region = rng.choice(_INTL_REGIONS)
    ntype = rng.choice([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE])
    number = _random_valid_number(rng, region, ntype)
    intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    roll = rng.random()
    if roll < 0.35:
        return _whole(intl, PHONE, "intl-spaces")
    if roll < 0.5:
        return _whole(intl.replace(" ", "-").replace("+-", "+"), PHONE, "intl-dashes")
    if roll < 0.58:
        return _whole(intl.replace(" ", ".").replace("+.", "+"), PHONE, "intl-dots")
    if roll < 0.75:
        return _whole(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), PHONE, "intl-e164")
    if roll < 0.85:
        return _whole("00" + intl[1:], PHONE, "intl-00-prefix")
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return _whole(national, PHONE, "national-nonUS")


def gen_phone(rng: random.Random) -> Piece:
    return _us_phone(rng) if rng.random() < 0.55 else _intl_phone(rng)


# -- SSN ----------------------------------------------------------------------------------------
def gen_ssn(rng: random.Random) -> Piece:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    a, g, s = f"{area:03d}", f"{group:02d}", f"{serial:04d}"
    roll = rng.random()
    if roll < 0.7:
        return _whole(f"{a}-{g}-{s}", US_SSN, "dashed")
    if roll < 0.85:
        return _whole(f"{a} {g} {s}", US_SSN, "spaced")
    return _whole(f"{a}{g}{s}", US_SSN, "bare")


# -- cards ---------------------------------------------------------------------------------------
# brand subtype -> (prefix choices, lengths, grouping per length)
_CARD_BRANDS: dict[str, tuple[list[str], list[int]]] = {
    "visa": (["4"], [13, 16, 19]),
    "mastercard": (["51", "52", "53", "54", "55"], [16]),
    "mastercard-2series": (["2221", "2300", "2450", "2600", "2720"], [16]),
    "amex": (["34", "37"], [15]),
    "discover": (["6011", "644", "649", "65"], [16, 19]),
    "jcb": (["3528", "3550", "3589"], [16, 19]),
    "jcb-legacy": (["2131", "1800"], [15]),
    "diners": (["300", "305", "36", "38"], [14]),
    "unionpay": (["62"], [16, 19]),
    "maestro": (["5018", "5020", "6304", "6759", "6761"], [12, 16, 19]),
    "mir": (["2200", "2204"], [16]),
    "rupay": (["6521", "8100", "6085"], [16]),
}
_CARD_GROUPS: dict[tuple[str, int], tuple[int, ...]] = {
    ("amex", 15): (4, 6, 5),
    ("diners", 14): (4, 6, 4),
    ("jcb-legacy", 15): (4, 4, 4, 3),
}
_DEFAULT_GROUPS: dict[int, tuple[int, ...]] = {12: (4, 4, 4), 13: (4, 4, 5), 16: (4, 4, 4, 4), 19: (4, 4, 4, 4, 3)}


def card_number(rng: random.Random, brand: str, length: int) -> str:
    prefix = rng.choice(_CARD_BRANDS[brand][0])
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return body + luhn_check_digit(body)


def _format_card(rng: random.Random, brand: str, number: str) -> tuple[str, str]:
    groups = _CARD_GROUPS.get((brand, len(number)), _DEFAULT_GROUPS.get(len(number), (4, 4, 4, 4)))
    roll = rng.random()
    if roll < 0.4:
        return number, "plain"
    if roll < 0.75:
        return _group(number, groups, " "), "spaced"
    return _group(number, groups, "-"), "dashed"


def gen_card(rng: random.Random) -> Piece:
    brand = rng.choice(sorted(_CARD_BRANDS))
    length = rng.choice(_CARD_BRANDS[brand][1])
    text, fmt = _format_card(rng, brand, card_number(rng, brand, length))
    return _whole(text, CREDIT_CARD, f"{brand}-{length}/{fmt}")


# -- IBAN ----------------------------------------------------------------------------------------
# country -> BBAN layout: n digits, a upper-case letters, c upper-case alphanumerics
_IBAN_LAYOUT = {
    "DE": "18n",
    "FR": "10n,11c,2n",
    "GB": "4a,14n",
    "ES": "20n",
    "IT": "1a,10n,12c",
    "NL": "4a,10n",
    "BE": "12n",
    "CH": "5n,12c",
    "PL": "24n",
    "AT": "16n",
    "SE": "20n",
    "IE": "4a,14n",
    "PT": "21n",
    "NO": "11n",
}


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{98 - numeric % 97:02d}"


def gen_iban(rng: random.Random) -> Piece:
    country = rng.choice(sorted(_IBAN_LAYOUT))
    bban = ""
    for part in _IBAN_LAYOUT[country].split(","):
        n, kind = int(part[:-1]), part[-1]
        alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[kind]
        bban += _rand(rng, alphabet, n)
    iban = country + iban_check(country, bban) + bban
    if rng.random() < 0.5:
        return _whole(iban, IBAN, "compact")
    return _whole(_group(iban, (4,) * 10, " "), IBAN, "spaced")


# -- IP --------------------------------------------------------------------------------------------
def _ipv4(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if roll < 0.5:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _hextet(rng: random.Random) -> str:
    return f"{rng.randint(0, 0xFFFF):x}"


def gen_ip(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.45:
        return _whole(_ipv4(rng), IP_ADDRESS, "v4")
    if roll < 0.55:
        ip = _ipv4(rng)
        return Piece(f"{ip}:{rng.choice([22, 443, 5432, 8080, 6379])}", gold=[Span(0, len(ip), IP_ADDRESS, "v4-port")])
    if roll < 0.67:
        return _whole(":".join(f"{rng.randint(0, 0xFFFF):04x}" for _ in range(8)), IP_ADDRESS, "v6-full")
    if roll < 0.8:
        ip = f"2001:db8:{_hextet(rng)}:{_hextet(rng)}::{_hextet(rng)}"
        return _whole(ip, IP_ADDRESS, "v6-compressed")
    if roll < 0.86:
        return _whole(f"::ffff:{_ipv4(rng)}", IP_ADDRESS, "v6-mapped")
    if roll < 0.93:
        ip = f"fe80::{_hextet(rng)}:{_hextet(rng)}:{_hextet(rng)}:{_hextet(rng)}"
        return _whole(ip, IP_ADDRESS, "v6-linklocal")
    ip = f"2a00:1450:{_hextet(rng)}:{_hextet(rng)}::{_hextet(rng)}"
    text = f"[{ip}]:{rng.choice([443, 8443])}"
    return Piece(text, gold=[Span(1, 1 + len(ip), IP_ADDRESS, "v6-bracket-port")])


# -- secrets -----------------------------------------------------------------------------------------
def _secret(text: str, kind: str) -> Piece:
    return _whole(text, SECRET, kind)


def gen_openai(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.5:
        return _secret("sk-proj-" + _rand(rng, _B64URL, 74) + "T3BlbkFJ" + _rand(rng, _B64URL, 74), "OPENAI_API_KEY")
    if roll < 0.7:
        return _secret("sk-svcacct-" + _rand(rng, _B64URL, 74) + "T3BlbkFJ" + _rand(rng, _B64URL, 74), "OPENAI_API_KEY")
    return _secret("sk-" + _rand(rng, _ALNUM, 20) + "T3BlbkFJ" + _rand(rng, _ALNUM, 20), "OPENAI_API_KEY")


def gen_anthropic(rng: random.Random) -> Piece:
    kind = rng.choice(["api03", "api03", "admin01"])
    return _secret(f"sk-ant-{kind}-" + _rand(rng, _B64URL, 93) + "AA", "ANTHROPIC_API_KEY")


def gen_aws_id(rng: random.Random) -> Piece:
    prefix = rng.choice(["AKIA", "AKIA", "ASIA"])
    return _secret(prefix + _rand(rng, string.ascii_uppercase + "234567", 16), "AWS_ACCESS_KEY_ID")


def gen_aws_secret(rng: random.Random) -> Piece:
    return _secret(_rand(rng, _B64, 40), "AWS_SECRET_KEY")


def gen_github(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.5:
        return _secret("ghp_" + _rand(rng, _ALNUM, 36), "GITHUB_TOKEN")
    if roll < 0.7:
        return _secret(rng.choice(["gho_", "ghs_", "ghu_"]) + _rand(rng, _ALNUM, 36), "GITHUB_TOKEN")
    return _secret("github_pat_" + _rand(rng, _ALNUM, 22) + "_" + _rand(rng, _ALNUM, 59), "GITHUB_TOKEN")


def gen_slack(rng: random.Random) -> Piece:
    if rng.random() < 0.7:
        kind = rng.choice(["xoxb", "xoxp", "xoxa"])
        return _secret(f"{kind}-{_digits(rng, 12)}-{_digits(rng, 13)}-{_rand(rng, _ALNUM, 24)}", "SLACK_TOKEN")
    url = (
        f"https://hooks.slack.com/services/T{_rand(rng, string.ascii_uppercase + string.digits, 8)}/"
        f"B{_rand(rng, string.ascii_uppercase + string.digits, 10)}/{_rand(rng, _ALNUM, 24)}"
    )
    return _secret(url, "SLACK_WEBHOOK")


def gen_stripe(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.5:
        return _secret("sk_live_" + _rand(rng, _ALNUM, rng.choice([24, 99])), "STRIPE_KEY")
    if roll < 0.7:
        return _secret("rk_live_" + _rand(rng, _ALNUM, 24), "STRIPE_KEY")
    if roll < 0.85:
        return _secret("sk_test_" + _rand(rng, _ALNUM, 24), "STRIPE_KEY")
    return _secret("whsec_" + _rand(rng, _ALNUM, 32), "STRIPE_KEY")


def gen_google(rng: random.Random) -> Piece:
    return _secret("AIza" + _rand(rng, _B64URL, 35), "GOOGLE_API_KEY")


def _b64url_json(obj: dict[str, object]) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def gen_jwt(rng: random.Random) -> Piece:
    header = _b64url_json({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
    payload = _b64url_json(
        {
            "sub": _digits(rng, 8),
            "name": rng.choice(_FIRST).title(),
            "iat": 1715941931 + rng.randint(0, 10**7),
            "scope": rng.choice(["read", "read write", "admin"]),
        }
    )
    return _secret(f"{header}.{payload}.{_rand(rng, _B64URL, 43)}", "JWT")


def gen_pem(rng: random.Random) -> Piece:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    lines = [_rand(rng, _B64, 64) for _ in range(rng.randint(4, 12))] + [_rand(rng, _B64, rng.randint(8, 60)) + "=="]
    return _secret(f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----", "PRIVATE_KEY")


_PW_ALPHABET = _ALNUM + "!#$%^*()_+-=.?~"


def _password(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return (
            rng.choice(["Summer", "Winter", "Hunter", "Dragon", "Monkey", "Sunshine"])
            + str(rng.randint(1, 2025))
            + rng.choice(["!", "#", "$", ""])
        )
    return _rand(rng, _PW_ALPHABET, rng.randint(8, 20))


def gen_url_password(rng: random.Random) -> Piece:
    scheme = rng.choice(["postgres", "postgresql", "mysql", "redis", "mongodb+srv", "amqp", "https", "ftp"])
    user = rng.choice(["admin", "app", "svc_llm", "root", rng.choice(_FIRST)])
    host = rng.choice(
        [
            "db.internal",
            "cache.prod.local",
            "cluster0.ab1cd.mongodb.net",
            "mq.example.com",
            "10.0.3.12",
            "files.example.org",
        ]
    )
    password = _rand(rng, _ALNUM + "_-.~!$*", rng.randint(8, 24))
    prefix = f"{scheme}://{user}:"
    text = f"{prefix}{password}@{host}/{rng.choice(['app', 'prod', '0', 'orders', 'upload'])}"
    gold = [Span(len(prefix), len(prefix) + len(password), SECRET, "URL_PASSWORD")]
    if host[0].isdigit():  # the host is an IP address
        at = len(prefix) + len(password) + 1
        gold.append(Span(at, at + len(host), IP_ADDRESS, "v4"))
    return Piece(text, gold=gold)


def gen_password_value(rng: random.Random) -> Piece:
    return _secret(_password(rng), "PASSWORD_VALUE")


def gen_api_key_value(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.4:
        return _secret(_rand(rng, _HEX, 32), "API_KEY_VALUE")
    if roll < 0.7:
        return _secret(_rand(rng, _ALNUM, rng.randint(24, 48)), "API_KEY_VALUE")
    return _secret("key-" + _rand(rng, _ALNUM, 32), "API_KEY_VALUE")


def gen_bearer_opaque(rng: random.Random) -> Piece:
    return _secret(_rand(rng, _ALNUM, rng.randint(30, 60)), "BEARER_OPAQUE")


# -- distractors -------------------------------------------------------------------------------------
_MONTHS = _words("January February March April May June July August September October November December")


def gen_date(rng: random.Random) -> Piece:
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    fmt = rng.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{m:02d}/{d:02d}/{y}",
            f"{d:02d}.{m:02d}.{y}",
            f"{_MONTHS[m - 1]} {d}, {y}",
            f"{d} {_MONTHS[m - 1][:3]} {y}",
        ]
    )
    return _distractor(fmt, "date")


def gen_time(rng: random.Random) -> Piece:
    h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return _distractor(
        rng.choice(
            [
                f"{h:02d}:{m:02d}",
                f"{h:02d}:{m:02d}:{s:02d}",
                f"{h:02d}:{m:02d}:{s:02d}.{_digits(rng, 3)}",
                f"{h % 12 or 12}:{m:02d} {rng.choice(['AM', 'PM'])}",
            ]
        ),
        "time",
    )


def gen_timestamp(rng: random.Random) -> Piece:
    y, mo, d, h, mi, s = (
        rng.randint(2020, 2026),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
    )
    text = rng.choice(
        [
            f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
            f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d},{_digits(rng, 3)}",
            f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{_digits(rng, 6)}+00:00",
        ]
    )
    return _distractor(text, "timestamp")


def gen_epoch(rng: random.Random) -> Piece:
    return _distractor(
        _clean_number(rng, lambda r: str(r.randint(1_500_000_000, 1_800_000_000) * r.choice([1, 1000]))), "unix-epoch"
    )


def gen_order(rng: random.Random) -> Piece:
    def make(r: random.Random) -> str:
        return r.choice(
            [
                f"ORD-{r.randint(2019, 2026)}-{_digits(r, 6)}",
                f"#{_digits(r, r.randint(5, 8))}",
                _digits(r, 8),
                f"A{_digits(r, 9)}",
                f"PO-{_digits(r, 4)}",
                f"{_digits(r, 3)}-{_digits(r, 7)}-{_digits(r, 7)}",
                _digits(r, r.randint(10, 14)),
            ]
        )

    return _distractor(_clean_number(rng, make), "order-number")


def gen_ticket(rng: random.Random) -> Piece:
    return _distractor(
        rng.choice(
            [
                f"JIRA-{rng.randint(100, 9999)}",
                f"INC{_digits(rng, 7)}",
                f"CASE-{_digits(rng, 6)}",
                f"REQ-{_digits(rng, 5)}",
            ]
        ),
        "ticket-number",
    )


def gen_tracking(rng: random.Random) -> Piece:
    def make(r: random.Random) -> str:
        return r.choice(
            [
                f"1Z{_rand(r, string.ascii_uppercase + string.digits, 16)}",
                _digits(r, 12),
                _digits(r, 15),
                f"{_digits(r, 4)} {_digits(r, 4)} {_digits(r, 4)}",
            ]
        )

    return _distractor(_clean_number(rng, make), "tracking-number")


def gen_version(rng: random.Random) -> Piece:
    a, b, c = rng.randint(0, 4), rng.randint(0, 30), rng.randint(0, 40)
    return _distractor(
        rng.choice(
            [
                f"v{a}.{b}.{c}",
                f"{a}.{b}.{c}",
                f"{a}.{b}.{c}-rc.{rng.randint(1, 5)}",
                f"10.0.{rng.randint(17000, 22631)}.{rng.randint(1000, 4000)}",
                f"{a}.{b}",
                f"build {rng.randint(2019, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}.{rng.randint(1, 9)}",
            ]
        ),
        "version",
    )


def gen_price(rng: random.Random) -> Piece:
    v = rng.randint(1, 250_000) / 100
    return _distractor(
        rng.choice(
            [
                f"${v:,.2f}",
                f"€{v:.2f}",
                f"{v:.2f} EUR",
                f"£{v:,.2f}",
                f"USD {v:,.2f}",
                f"{v:,.2f} kr".replace(",", " "),
                f"¥{int(v * 100):,}",
            ]
        ),
        "price",
    )


def gen_percent(rng: random.Random) -> Piece:
    return _distractor(
        rng.choice([f"{rng.randint(0, 100)}%", f"{rng.random() * 100:.1f}%", f"{rng.random():.3f}"]), "percent"
    )


def gen_coord(rng: random.Random) -> Piece:
    return _distractor(f"{rng.uniform(-80, 80):.4f}, {rng.uniform(-179, 179):.4f}", "coordinates")


def gen_bad_luhn(rng: random.Random) -> Piece:
    brand = rng.choice(["visa", "mastercard", "amex", "discover"])
    number = card_number(rng, brand, _CARD_BRANDS[brand][1][0])
    number = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    for _ in range(100):
        if not _is_valid_phone(number):
            break
        number = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
        if luhn_valid(number):
            number = number[:-1] + str((int(number[-1]) + 1) % 10)
    text, _fmt = _format_card(rng, brand, number)
    return _distractor(text, "invalid-luhn")


def gen_bad_ssn(rng: random.Random) -> Piece:
    area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    return _distractor(f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}", "invalid-ssn")


def gen_bad_ip(rng: random.Random) -> Piece:
    return _distractor(
        rng.choice(
            [
                f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
                f"{rng.randint(1, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 99)}",
                f"{rng.randint(1, 255)}.{rng.randint(0, 255)}.{rng.randint(300, 999)}.{rng.randint(0, 255)}",
            ]
        ),
        "invalid-ip",
    )


def gen_uuid(rng: random.Random) -> Piece:
    h = _rand(rng, _HEX, 32)
    return _distractor(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}", "uuid")


def gen_sha(rng: random.Random) -> Piece:
    roll = rng.random()
    if roll < 0.4:
        return _distractor(_rand(rng, _HEX, 40), "git-sha")
    if roll < 0.7:
        return _distractor(_rand(rng, _HEX, 7), "git-sha")
    return _distractor("sha256:" + _rand(rng, _HEX, 64), "sha256-digest")


def gen_mac(rng: random.Random) -> Piece:
    sep = rng.choice([":", "-"])
    return _distractor(sep.join(f"{rng.randint(0, 255):02X}" for _ in range(6)), "mac-address")


def gen_isbn(rng: random.Random) -> Piece:
    body = "978" + _digits(rng, 9)
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    n = body + str(check)
    return _distractor(f"{n[:3]}-{n[3]}-{n[4:6]}-{n[6:12]}-{n[12]}", "isbn")


def gen_placeholder_secret(rng: random.Random) -> Piece:
    return _distractor(
        rng.choice(
            [
                "YOUR_API_KEY",
                "<redacted>",
                "********",
                "sk-...",
                "${OPENAI_API_KEY}",
                "{{ secrets.TOKEN }}",
                "xxxxxxxxxxxx",
                "<your-token-here>",
                "changeme",
                "null",
            ]
        ),
        "placeholder-secret",
    )


# -- filler ------------------------------------------------------------------------------------------
_NAMES = ["John", "Maria", "Wei", "Aisha", "Lukas", "Sofia", "Raj", "Emma", "Yuki", "Carlos", "Anna", "Priya"]
_CITIES = ["Berlin", "Austin", "Lyon", "Osaka", "Toronto", "Madrid", "Leeds", "Denver", "Porto", "Seoul"]
_PRODUCTS = _words(
    "Pro plan|wireless headphones|standing desk|API credits|the blue kettle|router X200|"
    "annual subscription|4K monitor|ergonomic chair|travel adapter",
    sep="|",
)


def gen_name(rng: random.Random) -> Piece:
    return Piece(rng.choice(_NAMES))


def gen_city(rng: random.Random) -> Piece:
    return Piece(rng.choice(_CITIES))


def gen_product(rng: random.Random) -> Piece:
    return Piece(rng.choice(_PRODUCTS))


def gen_small(rng: random.Random) -> Piece:
    return Piece(str(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 24, 30, 42, 48, 60, 90, 100, 250])))


def gen_ms(rng: random.Random) -> Piece:
    return Piece(str(rng.randint(1, 4000)))


def gen_plain_price(rng: random.Random) -> Piece:
    return Piece(f"{rng.randint(1, 99_999) / 100:.2f}")


def gen_plain_date(rng: random.Random) -> Piece:
    return Piece(gen_date(rng).text)


def gen_plain_version(rng: random.Random) -> Piece:
    return Piece(f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}")


def gen_plain_pct(rng: random.Random) -> Piece:
    return Piece(f"{rng.randint(0, 100)}%")


def gen_plain_hash(rng: random.Random) -> Piece:
    return Piece(_rand(rng, _HEX, 7))


def gen_plain_id(rng: random.Random) -> Piece:
    return Piece(
        f"{rng.choice(['req', 'run', 'msg', 'tool'])}_{_rand(rng, string.ascii_lowercase + string.digits, 10)}"
    )


GENERATORS: dict[str, Gen] = {
    # entities
    "EMAIL": gen_email,
    "PHONE": gen_phone,
    "PHONE_US": _us_phone,
    "PHONE_INTL": _intl_phone,
    "SSN": gen_ssn,
    "CARD": gen_card,
    "IBAN": gen_iban,
    "IP": gen_ip,
    "OPENAI": gen_openai,
    "ANTHROPIC": gen_anthropic,
    "AWS_ID": gen_aws_id,
    "AWS_SECRET": gen_aws_secret,
    "GITHUB": gen_github,
    "SLACK": gen_slack,
    "STRIPE": gen_stripe,
    "GOOGLE": gen_google,
    "JWT": gen_jwt,
    "PEM": gen_pem,
    "URLPW": gen_url_password,
    "PASSWORD": gen_password_value,
    "APIKEY": gen_api_key_value,
    "BEARER": gen_bearer_opaque,
    # distractors
    "D_DATE": gen_date,
    "D_TIME": gen_time,
    "D_TS": gen_timestamp,
    "D_EPOCH": gen_epoch,
    "D_ORDER": gen_order,
    "D_TICKET": gen_ticket,
    "D_TRACK": gen_tracking,
    "D_VERSION": gen_version,
    "D_PRICE": gen_price,
    "D_PCT": gen_percent,
    "D_COORD": gen_coord,
    "D_BADLUHN": gen_bad_luhn,
    "D_BADSSN": gen_bad_ssn,
    "D_BADIP": gen_bad_ip,
    "D_UUID": gen_uuid,
    "D_SHA": gen_sha,
    "D_MAC": gen_mac,
    "D_ISBN": gen_isbn,
    "D_PLACEHOLDER": gen_placeholder_secret,
    # unlabeled filler
    "NAME": gen_name,
    "CITY": gen_city,
    "PRODUCT": gen_product,
    "N": gen_small,
    "MS": gen_ms,
    "AMOUNT": gen_plain_price,
    "DATE": gen_plain_date,
    "VERSION": gen_plain_version,
    "PCT": gen_plain_pct,
    "SHORTSHA": gen_plain_hash,
    "ID": gen_plain_id,
}

# -- templates ---------------------------------------------------------------------------------------
_CHAT = [
    (
        "User: Hi, I ordered the {PRODUCT} on {D_DATE} (order {D_ORDER}) and it still hasn't arrived. My email "
        "is {EMAIL}."
    ),
    (
        "Assistant: I'm sorry about the delay, {NAME}. I can see order {D_ORDER} was shipped with tracking "
        "number {D_TRACK}."
    ),
    "User: You can reach me at {PHONE} after {D_TIME}, or on my mobile {PHONE_INTL}.",
    "User: I was charged twice, {D_PRICE} each time, on my card {CARD}. Please refund one of them.",
    (
        "Assistant: I've opened ticket {D_TICKET} for the duplicate charge of {D_PRICE}. The refund takes 5 to "
        "10 business days."
    ),
    "User: my ssn is {SSN} if you need it to verify the account, the old one on file {D_BADSSN} was a typo",
    "User: please wire the deposit to IBAN {IBAN}, reference {D_ORDER}.",
    "User: The card ending in 4242 was declined but this one should work: {CARD} exp 08/27",
    "Assistant: Thanks! I updated the contact details to {EMAIL} and {PHONE}.",
    "User: my account got locked after a login from {IP}, that wasn't me. I'm in {CITY}.",
    "User: I tried the card number {D_BADLUHN} twice and it says invalid, what's wrong?",
    "User: Here's the full number again {CARD}, and my billing phone is {PHONE_US}.",
    (
        "Assistant: For security reasons please don't share full card numbers in chat. Version {D_VERSION} of "
        "the app masks them."
    ),
    "User: Can you call my husband instead? His number is {PHONE} and his email {EMAIL}.",
    "User: Order {D_ORDER} total was {D_PRICE} but the invoice from {D_DATE} says {D_PRICE}.",
    "User: our office router is at {IP} and the printer at {IP}, neither can reach the update server.",
    "User: I got a {D_PCT} discount code but checkout shows {D_PRICE}. Order placed at {D_TIME}.",
    "Assistant: I found {N} orders for that account. The latest one ({D_ORDER}) is out for delivery in {CITY}.",
    "User: My social is {SSN}, DOB {D_DATE}. Phone {PHONE_US}.",
    "User: send the receipt to {EMAIL} please, and cc {EMAIL}",
    "User: I want to change my payout account from {IBAN} to {IBAN}.",
    "User: The app crashed on {D_DATE} at {D_TIME}, build {D_VERSION}. Request id {D_UUID}.",
    "Assistant: Could you tell me which plan you're on? I see {N} seats and a renewal on {D_DATE}.",
    "User: Tried logging in with password {PASSWORD} but it says wrong. My username is {NAME}{N}.",
    "User: our corporate card {CARD} expired, new one is {CARD}",
    "User: ISBN of the book I returned is {D_ISBN}, refund should be {D_PRICE}.",
]
_EMAIL_T = [
    "From: {NAME} <{EMAIL}>\nTo: {EMAIL}\nDate: {D_DATE} {D_TIME}\nSubject: Re: invoice {D_ORDER}\n",
    "Hi team,\n\nplease find attached the statement for {D_DATE}. The amount of {D_PRICE} was paid from {IBAN}.\n",
    "Best regards,\n{NAME}\nAccount Manager | Tel. {PHONE} | Mobile {PHONE_INTL}\n{EMAIL}\n",
    "Could you update the customer's record? New phone: {PHONE}, new address e-mail: {EMAIL}. Ticket {D_TICKET}.\n",
    "For the payroll change, the employee's SSN is {SSN} and the new account {IBAN}.\n",
    "> On {D_DATE}, {NAME} <{EMAIL}> wrote:\n> The shipment ({D_TRACK}) was delayed by {N} days.\n",
    "The vendor portal is reachable at https://portal.example.com (IP {IP}) until {D_DATE}.\n",
    (
        "Reminder: the quarterly numbers grew {D_PCT}, with revenue at {D_PRICE}. Coordinates of the new site: "
        "{D_COORD}.\n"
    ),
    "Please charge the deposit of {D_PRICE} to card {CARD} (cardholder {NAME}).\n",
    "Unsubscribe: {EMAIL} | Reference {D_UUID}\n",
]
_LOG = [
    "{D_TS} INFO  auth: login ok user={EMAIL} ip={IP} session={D_UUID}\n",
    "{D_TS} WARN  auth: 5 failed logins from {IP} for {EMAIL}\n",
    "{D_TS} ERROR payments: charge failed card={CARD} amount={D_PRICE} code=card_declined\n",
    '{D_TS} DEBUG http: GET /api/v2/orders/{D_ORDER} 200 {MS}ms client={IP} ua="Mozilla/5.0"\n',
    "{D_TS} INFO  deploy: version {D_VERSION} commit {D_SHA} rolled out to {N} pods\n",
    "{D_TS} ERROR db: connection to {URLPW} refused\n",
    "{D_TS} INFO  sms: sent OTP to {PHONE} (template otp_v{N})\n",
    "{D_TS} DEBUG net: iface eth0 mac={D_MAC} addr={IP}\n",
    "{D_TS} INFO  jobs: processed {N} events in {MS}ms, epoch={D_EPOCH}\n",
    "{D_TS} WARN  config: OPENAI_API_KEY={OPENAI} loaded from env\n",
    "{D_TS} INFO  webhook: delivered to {SLACK} status=200\n",
    "{D_TS} ERROR validator: rejected ip {D_BADIP} in X-Forwarded-For\n",
    "{D_TS} INFO  kyc: verified ssn={SSN} for customer {D_ORDER}\n",
    "{D_TS} DEBUG auth: Authorization: Bearer {JWT}\n",
    "{D_TS} INFO  payouts: scheduled transfer to {IBAN} of {D_PRICE}\n",
    "{D_TS} DEBUG upstream: connect [{IP}] took {MS}ms\n",
]
_JSON_ARGS = [
    (
        '{{"name": "lookup_customer", "arguments": {{"email": "{EMAIL|json}", "phone": "{PHONE|json}", "since": '
        '"{D_DATE|json}"}}}}'
    ),
    (
        '{{"name": "create_refund", "arguments": {{"order_id": "{D_ORDER|json}", "amount": {AMOUNT}, "card": '
        '"{CARD|json}", "reason": "duplicate charge"}}}}'
    ),
    (
        '{{"name": "update_payout", "arguments": {{"iban": "{IBAN|json}", "holder": "{NAME|json}", "effective": '
        '"{D_DATE|json}"}}}}'
    ),
    '{{"name": "verify_identity", "arguments": {{"ssn": "{SSN|json}", "dob": "{D_DATE|json}", "zip": "{N}"}}}}',
    '{{"name": "block_ip", "arguments": {{"ip": "{IP|json}", "ttl_seconds": {MS}, "ticket": "{D_TICKET|json}"}}}}',
    '{{"name": "send_sms", "arguments": {{"to": "{PHONE|json}", "body": "Your code is {N}"}}}}',
    (
        '{{"name": "deploy", "arguments": {{"version": "{D_VERSION|json}", "commit": "{D_SHA|json}", "request_id": '
        '"{D_UUID|json}"}}}}'
    ),
    '{{"name": "configure_integration", "arguments": {{"api_key": "{APIKEY|json}", "webhook": "{SLACK|json}"}}}}',
    '{{"name": "run_sql", "arguments": {{"dsn": "{URLPW|json}", "query": "select * from orders where id = {N}"}}}}',
    (
        '{{"tool_call_id": "{ID|json}", "content": {{"customer": {{"email": "{EMAIL|json}", "card_last4": "4242", '
        '"total": "{D_PRICE|json}"}}}}}}'
    ),
    (
        '{{"name": "store_credentials", "arguments": {{"password": "{PASSWORD|json}", "client_secret": '
        '"{APIKEY|json}"}}}}'
    ),
    (
        '{{"name": "search_orders", "arguments": {{"query": "{D_ORDER|json}", "placed_after": "{D_TS|json}", '
        '"limit": {N}}}}}'
    ),
    (
        '{{"name": "register_device", "arguments": {{"mac": "{D_MAC|json}", "ip": "{IP|json}", "firmware": '
        '"{D_VERSION|json}"}}}}'
    ),
    '{{"name": "attach_key", "arguments": {{"private_key": "{PEM|json}"}}}}',
]
_CODE = [
    (
        '```python\nimport openai\nclient = openai.OpenAI(api_key="{OPENAI}")\nresp = '
        'client.chat.completions.create(model="gpt-4o", messages=msgs)\n```\n'
    ),
    '```python\nimport anthropic\nclient = anthropic.Anthropic(api_key="{ANTHROPIC}")\n```\n',
    (
        "```ini\n[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\nregion = "
        "eu-west-1\n```\n"
    ),
    "```sh\nexport GITHUB_TOKEN={GITHUB}\ngit push origin main  # {D_SHA}\n```\n",
    "```yaml\nslack:\n  bot_token: {SLACK}\nstripe:\n  secret_key: {STRIPE}\n```\n",
    '```js\nconst maps = new google.maps.Map(el, {{ key: "{GOOGLE}" }});\n```\n',
    "```\nDATABASE_URL={URLPW}\nDB_PASSWORD={PASSWORD}\nAPI_KEY={APIKEY}\nSENTRY_DSN_VERSION={D_VERSION}\n```\n",
    "```\n{PEM}\n```\n",
    'curl -H "Authorization: Bearer {BEARER}" https://api.example.com/v1/items?page={N}\n',
    'curl -H "X-API-Key: {APIKEY}" -d \'{{"amount": {AMOUNT}}}\' https://api.example.com/charges\n',
    (
        'Why does this fail? `requests.get(url, headers={{"Authorization": "Bearer {JWT}"}})` returns 401 since '
        "{D_DATE}.\n"
    ),
    (
        "The README says to set `api_key = {D_PLACEHOLDER}` and `password = {D_PLACEHOLDER}` before running "
        "v{D_VERSION}.\n"
    ),
    '```python\nconfig = {{"password": "{PASSWORD}", "host": "{IP}", "port": 5432}}\n```\n',
    (
        'Traceback (most recent call last):\n  File "app.py", line {N}, in <module>\nValueError: invalid token '
        "{D_UUID} for user {EMAIL}\n"
    ),
    '```go\nconst stripeKey = "{STRIPE}" // rotate before {D_DATE}\n```\n',
]
_MULTI = [
    (
        "Bonjour, je n'ai pas reçu ma commande {D_ORDER}. Vous pouvez me joindre au {PHONE_INTL} ou par e-mail "
        "à {EMAIL}."
    ),
    "Merci de rembourser {D_PRICE} sur le compte {IBAN}. Cordialement, {NAME}.",
    ("Guten Tag, meine Telefonnummer hat sich geändert: {PHONE_INTL}. Die Bestellung vom {D_DATE} ist noch offen."),
    "Bitte überweisen Sie den Betrag von {D_PRICE} auf {IBAN}. Vielen Dank!",
    "Hola, mi tarjeta {CARD} fue rechazada ayer a las {D_TIME}. Mi correo es {EMAIL}.",
    "Por favor, llámeme al {PHONE_INTL}. El pedido {D_ORDER} llegó dañado.",
    "こんにちは。注文番号 {D_ORDER} の商品がまだ届いていません。メールアドレスは {EMAIL} です。",
    "電話番号は {PHONE_INTL} です。{D_DATE} までにご連絡ください。",
    "您好，我的订单 {D_ORDER} 还没有发货。请发邮件到 {EMAIL} 或致电 {PHONE_INTL}。",
    "Здравствуйте! Мой номер телефона {PHONE_INTL}, заказ {D_ORDER} от {D_DATE}.",
    "مرحبا، رقم هاتفي هو {PHONE_INTL} وبريدي الإلكتروني {EMAIL}. شكرا لكم.",
    "Olá, o pagamento de {D_PRICE} foi feito com o cartão {CARD}. Pedido {D_ORDER}.",
]
# filler sentences with ordinary numbers only; used by both corpora
_PROSE = [
    ("The quarterly report shows that customers appreciated the faster response times and the new onboarding flow."),
    "We shipped {N} releases this month and fixed {N} bugs; median latency dropped to {MS} ms.",
    "Please summarise the following conversation in three bullet points and keep the tone neutral.",
    "You are a helpful assistant for the support team. Answer only from the documents provided.",
    "The meeting on {DATE} covered the roadmap, the hiring plan and the budget of {AMOUNT} thousand.",
    "Conversion improved by {PCT} after the checkout redesign, while returns stayed flat.",
    "Version {VERSION} introduces streaming responses, better retries and a smaller install size.",
    "The warehouse in {CITY} processed {N} thousand parcels, {PCT} of them within one day.",
    "Translate the paragraph below into plain English and explain any legal terms you find.",
    "Step {N}: open the settings page, choose the notifications tab and disable weekly digests.",
    "The model returned {N} candidate answers; the highest-ranked one scored {PCT} on the rubric.",
    "Our refund policy allows returns within {N} days of delivery for unused items in original packaging.",
    "The experiment ran for {N} weeks with {N} participants and a budget of {AMOUNT} per week.",
    "Write a short, friendly reply that apologises for the delay and offers a {PCT} discount.",
    "The build took {MS} seconds on the new runners, compared to {MS} seconds last quarter.",
    "Classify each ticket as billing, shipping, technical or other, and explain your choice briefly.",
    "The API returns at most {N} items per page; use the cursor to fetch the next page.",
    "Revenue for the period was {AMOUNT} million, up {PCT} year over year, with margins stable.",
    "Le rapport trimestriel montre une hausse de {PCT} des ventes et {N} nouveaux clients.",
    "Die neue Version {VERSION} ist seit dem {DATE} verfügbar und behebt {N} Fehler.",
    "El equipo resolvió {N} incidencias esta semana con un tiempo medio de {MS} minutos.",
    "今回のアップデートでは応答速度が{PCT}改善され、{N}件の不具合が修正されました。",
    "本季度我们处理了{N}个工单，平均响应时间为{MS}毫秒。",
    "В этом месяце мы выпустили {N} обновлений и исправили {N} ошибок.",
    "تم تحديث النظام إلى الإصدار {VERSION} وتحسين الأداء بنسبة {PCT}.",
]
_NOPII_JSON = [
    '{{"name": "get_weather", "arguments": {{"city": "{CITY|json}", "days": {N}, "units": "metric"}}}}',
    ('{{"name": "search_products", "arguments": {{"query": "{PRODUCT|json}", "max_price": {AMOUNT}, "limit": {N}}}}}'),
    '{{"name": "summarize", "arguments": {{"text": "{PROSE|json}", "max_words": {N}}}}}',
    (
        '{{"id": "{ID|json}", "status": "completed", "usage": {{"input_tokens": {MS}, "output_tokens": {MS}}}, '
        '"created": "{DATE|json}"}}'
    ),
    (
        '{{"items": [{{"sku": "SKU-{N}", "qty": {N}, "price": {AMOUNT}}}, {{"sku": "SKU-{N}", "qty": {N}, "price": '
        '{AMOUNT}}}], "currency": "EUR"}}'
    ),
    (
        '{{"name": "create_chart", "arguments": {{"title": "Sales {DATE|json}", "values": [{N}, {N}, {N}, {N}], '
        '"growth": "{PCT|json}"}}}}'
    ),
]
_NOPII_LOG = [
    "INFO  worker: processed {N} jobs in {MS}ms (queue depth {N})\n",
    "DEBUG cache: hit ratio {PCT}, {N} keys evicted\n",
    "INFO  deploy: version {VERSION} commit {SHORTSHA} healthy on {N} replicas\n",
    "WARN  http: GET /api/v2/items?page={N} took {MS}ms\n",
    "INFO  llm: model=gpt-4o-mini input_tokens={MS} output_tokens={MS} latency_ms={MS}\n",
]
_NOPII_CODE = [
    "```python\ndef total(items):\n    return sum(i.price * i.qty for i in items)  # {N} items max\n```\n",
    "```sql\nselect sku, count(*) from orders where created_at > '{DATE}' group by sku limit {N};\n```\n",
    '```yaml\nreplicas: {N}\nresources:\n  limits:\n    cpu: "{N}"\n    memory: {N}Gi\nimage: app:{VERSION}\n```\n',
]

ENTITY_GENRES: dict[str, list[str]] = {
    "chat": _CHAT,
    "email": _EMAIL_T,
    "log": _LOG,
    "json": _JSON_ARGS,
    "code": _CODE,
    "multilingual": _MULTI,
}
GENRE_WEIGHTS = {"chat": 0.3, "email": 0.15, "log": 0.15, "json": 0.15, "code": 0.12, "multilingual": 0.13}
NOPII_GENRES: dict[str, list[str]] = {"prose": _PROSE, "json": _NOPII_JSON, "log": _NOPII_LOG, "code": _NOPII_CODE}
NOPII_WEIGHTS = {"prose": 0.5, "json": 0.25, "log": 0.15, "code": 0.1}

_SLOT = re.compile(r"\{([A-Z_0-9]+)(\|json)?\}|\{\{|\}\}")


def gen_prose(rng: random.Random) -> Piece:
    return render(rng.choice(_PROSE), rng)


GENERATORS["PROSE"] = gen_prose


def render(template: str, rng: random.Random) -> Piece:
    """Fill a template's slots; labels are shifted to where each value lands."""
    out: list[str] = []
    pos = 0
    gold: list[Span] = []
    distractors: list[Span] = []
    cursor = 0
    for match in _SLOT.finditer(template):
        literal = template[cursor : match.start()]
        out.append(literal)
        pos += len(literal)
        cursor = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            pos += 1
            continue
        piece = GENERATORS[match.group(1)](rng)
        text = piece.text
        if match.group(2):  # inside a JSON string
            escaped = json.dumps(text, ensure_ascii=False)[1:-1]
            if escaped != text:
                for span in (*piece.gold, *piece.distractors):
                    if (span.start, span.end) != (0, len(text)):
                        raise ValueError(f"cannot JSON-escape a partly labeled value: {text!r}")
                piece = Piece(
                    escaped,
                    [Span(0, len(escaped), s.label, s.subtype) for s in piece.gold],
                    [Span(0, len(escaped), s.label, s.subtype) for s in piece.distractors],
                )
                text = escaped
        gold.extend(Span(s.start + pos, s.end + pos, s.label, s.subtype) for s in piece.gold)
        distractors.extend(Span(s.start + pos, s.end + pos, s.label, s.subtype) for s in piece.distractors)
        out.append(text)
        pos += len(text)
    tail = template[cursor:]
    out.append(tail)
    return Piece("".join(out), gold, distractors)


def _target_length(rng: random.Random) -> int:
    return int(min(8000, max(200, rng.lognormvariate(math.log(1500), 0.8))))


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    names = sorted(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def _make_doc(rng: random.Random, genres: dict[str, list[str]], genre: str, with_prose: bool) -> Doc:
    target = _target_length(rng)
    pieces: list[Piece] = []
    length = 0
    templates = genres[genre]
    is_json = genre == "json"
    while length < target:
        if with_prose and not is_json and rng.random() < 0.3:
            piece = render(rng.choice(_PROSE), rng)
        else:
            piece = render(rng.choice(templates), rng)
        pieces.append(piece)
        length += len(piece.text) + 1
    if is_json:  # one JSON document: a list of tool calls
        sep = ", "
        text_parts: list[str] = ["["]
        offset = 1
        gold: list[Span] = []
        distractors: list[Span] = []
        for index, piece in enumerate(pieces):
            if index:
                text_parts.append(sep)
                offset += len(sep)
            gold.extend(Span(s.start + offset, s.end + offset, s.label, s.subtype) for s in piece.gold)
            distractors.extend(Span(s.start + offset, s.end + offset, s.label, s.subtype) for s in piece.distractors)
            text_parts.append(piece.text)
            offset += len(piece.text)
        text_parts.append("]")
        text = "".join(text_parts)
        json.loads(text)  # the generator writes valid JSON
        return Doc(text, genre, gold, distractors)
    joiner = "\n" if genre in ("log", "code", "email") else rng.choice(["\n", " ", "\n\n"])
    text_out: list[str] = []
    gold = []
    distractors = []
    offset = 0
    for index, piece in enumerate(pieces):
        if index:
            text_out.append(joiner)
            offset += len(joiner)
        gold.extend(Span(s.start + offset, s.end + offset, s.label, s.subtype) for s in piece.gold)
        distractors.extend(Span(s.start + offset, s.end + offset, s.label, s.subtype) for s in piece.distractors)
        text_out.append(piece.text)
        offset += len(piece.text)
    return Doc("".join(text_out), genre, gold, distractors)


def labeled_corpus(size_chars: int, seed: int = 20240517) -> list[Doc]:
    """Documents with gold entity spans and distractor spans, about ``size_chars`` characters in all."""
    rng = random.Random(seed)
    docs: list[Doc] = []
    total = 0
    while total < size_chars:
        doc = _make_doc(rng, ENTITY_GENRES, _pick(rng, GENRE_WEIGHTS), with_prose=True)
        docs.append(doc)
        total += len(doc.text)
    return docs


def nopii_corpus(size_chars: int, seed: int = 7) -> list[Doc]:
    """Documents with ordinary numbers and no entity at all, about ``size_chars`` characters in all."""
    rng = random.Random(seed)
    docs: list[Doc] = []
    total = 0
    while total < size_chars:
        doc = _make_doc(rng, NOPII_GENRES, _pick(rng, NOPII_WEIGHTS), with_prose=False)
        docs.append(doc)
        total += len(doc.text)
    return docs


def check(docs: list[Doc]) -> None:
    """Labels are inside the text, gold spans never overlap each other, and no distractor overlaps gold."""
    for doc in docs:
        spans = sorted(doc.gold, key=lambda s: s.start)
        for a, b in itertools.pairwise(spans):
            if b.start < a.end:
                raise AssertionError(f"overlapping gold spans {a} {b} in {doc.text[:80]!r}")
        for span in (*doc.gold, *doc.distractors):
            if not 0 <= span.start < span.end <= len(doc.text):
                raise AssertionError(f"span {span} outside the document")
        for dis in doc.distractors:
            if any(dis.start < g.end and g.start < dis.end for g in doc.gold):
                raise AssertionError(f"distractor {dis} overlaps gold in {doc.text[:80]!r}")
