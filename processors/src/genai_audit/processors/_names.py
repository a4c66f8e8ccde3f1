"""Person names and street addresses: word lists, RE2 patterns and small rules, no model.

Names (``PERSON``)
    Runs of capitalised words (``\\p{Lu}`` first: any cased script) are looked up, word by word, in a list
    derived from public-domain US name data and a common-word list (``data/names.txt.gz``, built by
    ``tools/build_name_lists.py``; sources and licences in ``data/NOTICE-names.txt``). A run is a name when

    - a title (Mr, Mrs, Ms, Dr, Prof, ...) or a cue (``my name is``, ``Dear``, ``Hi``, ``regards,``,
      ``signed``, ``contact``, ``customer``, ``patient``, ``Name:``) stands before it: then any capitalised
      words that are not common words;
    - it starts with a popular given name that is not also a common word or a large place (``Jennifer``,
      ``Krisztián Szöllösy``), or with a less popular one followed by more of the name;
    - a given name that is also a word (May, Will, Grace, Mark, Bill, Amber, Hope) is followed by a surname
      that is not a word (``Grace Hopkins``); alone it is left, whatever its case;
    - it has an initial between names (``J. Smith``, ``Brad L Key``);
    - it is one frequent surname that is not a word, a given name or a place, inside a sentence (``Goldberg``).

    After ``my name is``, ``Name:`` or ``call me`` the next words are taken in any case (``my name is john``).
    Not found: lower-case names elsewhere, surnames alone that are rare or are words (``Trump``), names in
    scripts without case (CJK), nicknames and handles.

Street addresses (``STREET_ADDRESS``) and postal codes (``POSTAL_CODE``)
    A house number, up to five words and a street type (Street, St, Avenue, Road, ..., Way, Close: types that
    are also common words only in capitalised form), optional direction, unit (Apt, Suite, Unit, #) and
    city, state or province and ZIP or postal code; continental forms (``Rue de la Paix 12``, ``Hauptstraße
    5``, ``ul. Słowicza 10``); PO boxes and US military addresses. A postal code alone is taken when it is
    unmistakable: a UK postcode or Canadian postal code in their full format, or a US ZIP after a state code.

Everything here is data, RE2 patterns (no look-around) and checks on one word at a time, so a port to
another language needs the same list file, the patterns and these rules.
"""

from __future__ import annotations

import gzip
import re
import threading
import unicodedata
from importlib import resources
from typing import Any

import re2

PERSON = "PERSON"
STREET_ADDRESS = "STREET_ADDRESS"
POSTAL_CODE = "POSTAL_CODE"

# flags of a word in the list
GIVEN = 1  # G: a given name
POPULAR = 2  # g: a popular given name
SURNAME = 4  # S: a surname
FREQUENT = 8  # s: a frequent surname
WORD = 16  # W: a common English word
PLACE = 32  # L: a place
_FLAG_BITS = {"G": GIVEN, "g": POPULAR, "S": SURNAME, "s": FREQUENT, "W": WORD, "L": PLACE}

LIST_FILE = "names.txt.gz"

_lock = threading.Lock()
_lexicon: dict[str, int] | None = None


class NameListMissing(RuntimeError):
    """The shipped word list cannot be read: names would go unredacted, so the detector refuses to start."""


def lexicon() -> dict[str, int]:
    """Folded word -> flags, read once from the shipped list."""
    global _lexicon
    if _lexicon is None:
        with _lock:
            if _lexicon is None:
                try:
                    raw = resources.files("genai_audit.processors").joinpath("data").joinpath(LIST_FILE).read_bytes()
                except (OSError, ModuleNotFoundError) as exc:
                    raise NameListMissing(f"the person-name word list data/{LIST_FILE} cannot be read: {exc}") from None
                table: dict[str, int] = {}
                bits = _FLAG_BITS
                for line in gzip.decompress(raw).decode("utf-8").splitlines():
                    name, _, flags = line.partition("\t")
                    value = 0
                    for flag in flags:
                        value |= bits[flag]
                    table[name] = value
                _lexicon = table
    return _lexicon


def fold(word: str) -> str:
    """The list's key: lower case, no accents, no apostrophes."""
    lowered = word.casefold()
    if not lowered.isascii():
        lowered = "".join(ch for ch in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(ch))
    return lowered.replace("'", "").replace("\u2019", "")


# -- words that are never part of a name, whatever the list says -----------------------------------------
_TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "professor",
        "sir",
        "dame",
        "lord",
        "lady",
        "madam",
        "madame",
        "mme",
        "mlle",
        "mister",
        "missus",
        "herr",
        "frau",
        "sr",
        "sra",
        "srta",
        "sig",
        "sgra",
        "dott",
        "rev",
        "fr",
        "capt",
        "captain",
        "sgt",
        "officer",
        "judge",
        "senator",
        "rep",
        "gov",
        "president",
    ]
)
#: words after which the next capitalised words are a name: greetings, closings, labels
_CUE_WORDS = frozenset(
    [
        "dear",
        "hi",
        "hello",
        "hey",
        "hiya",
        "thanks",
        "thank",
        "regards",
        "sincerely",
        "cheers",
        "signed",
        "contact",
        "customer",
        "patient",
        "client",
        "attn",
        "attention",
        "cc",
    ]
)
#: street types: never a person's name, and the last word of a place's
_STREET_TYPE_WORDS = frozenset(
    [
        "street",
        "st",
        "avenue",
        "ave",
        "road",
        "rd",
        "boulevard",
        "blvd",
        "lane",
        "ln",
        "drive",
        "dr",
        "court",
        "ct",
        "place",
        "pl",
        "terrace",
        "crescent",
        "close",
        "square",
        "highway",
        "parkway",
    ]
)
_NEVER = _STREET_TYPE_WORDS | frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "they",
        "them",
        "their",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "so",
        "yet",
        "if",
        "then",
        "than",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "off",
        "on",
        "onto",
        "out",
        "over",
        "to",
        "up",
        "with",
        "without",
        "about",
        "after",
        "before",
        "under",
        "between",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "ok",
        "okay",
        "please",
        "what",
        "when",
        "where",
        "who",
        "whom",
        "whose",
        "why",
        "how",
        "which",
        "all",
        "any",
        "each",
        "every",
        "some",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thurs",
        "fri",
        "sat",
        "sun",
        "sq",
        "hwy",
        "pkwy",
        "suite",
        "apt",
        "unit",
        "floor",
        "box",
        "inc",
        "ltd",
        "llc",
        "corp",
        "co",
        "plc",
        "gmbh",
        "ag",
        "sa",
        "bv",
        "company",
        "group",
        "bank",
        "university",
        "college",
        "school",
        "hospital",
        "church",
        "center",
        "centre",
        "institute",
        "foundation",
        "association",
        "airport",
        "station",
        "hotel",
        "museum",
        "library",
        "god",
        "lord",
        "jesus",
        "christ",
        "allah",
    ]
)
_PARTICLES = frozenset(
    [
        "van",
        "von",
        "de",
        "der",
        "den",
        "da",
        "di",
        "del",
        "della",
        "des",
        "du",
        "la",
        "le",
        "bin",
        "ibn",
        "al",
        "el",
        "dos",
        "das",
        "do",
        "ter",
        "ten",
        "y",
    ]
)

#: a run of capitalised words (and name particles) on one line; a word may carry a trailing '.', an
#: apostrophe or a hyphenated part
#: (any non-ASCII character counts as a letter here: a Unicode letter class makes automata tens of times larger;
#: the words are split exactly afterwards)
_LETTER = r"A-Za-z\x{80}-\x{10FFFF}"
_WORD = rf"\p{{Lu}}[{_LETTER}'\x{{2019}}]*(?:-[{_LETTER}]+)?\.?"
#: a following word of a run: upper-case ASCII or any non-ASCII first (checked for case afterwards)
_NEXT_WORD = rf"[A-Z\x{{80}}-\x{{10FFFF}}][{_LETTER}'\x{{2019}}]*(?:-[{_LETTER}]+)?\.?"
_RUN = (
    rf"{_WORD}(?:[ \t]{{1,3}}(?:(?:van|von|de|der|den|da|di|del|della|des|du|la|le|bin|ibn|al|el|dos|das|do|ter|ten)"
    rf"[ \t]{{1,3}})?{_NEXT_WORD}){{0,5}}"
)
#: lower-case names after an explicit statement of a name
_STATED = (
    r"(?i)\b(?:my name is|my name's|name\s*:|call me|i am called|i'm called)[ \t]+"
    r"([A-Za-z\x{80}-\x{10FFFF}][A-Za-z\x{80}-\x{10FFFF}'\-]*"
    r"(?:[ \t]+[A-Za-z\x{80}-\x{10FFFF}][A-Za-z\x{80}-\x{10FFFF}'\-]*){0,2})"
)
#: (in the 40 characters before a run) a cue that what follows is a name
_CUE_BEFORE = re.compile(
    r"(?i)(?:\bmy name is|\bmy name's|\bname is|\bi'm|\bi am|\bcall me|\bcalled|\bnamed|\bname\s*:|\bdear|\bhi|"
    r"\bhello|\bhey|\bsigned|\bcontact(?:\s+person)?\s*:?|\bcustomer\s*:|\bpatient\s*:?|\bclient\s*:|"
    r"\battn\.?\s*:?|\battention\s*:|\bregards,|\bsincerely,|\bcheers,|\bthanks,|\bthank you,|\bbest,|"
    r"\b(?:from|to|cc|user|author|contact|customer|patient|employee|applicant|owner|driver)\s*:)[ \t\r\n]*\Z"
)
#: where a sentence starts: the text before a run ends with one of these (after spaces and quotes)
_SENTENCE_END = frozenset(".!?:;\n\r\t•*>-|\u2022")


class _Token:
    __slots__ = ("end", "flags", "folded", "initial", "particle", "start", "text")

    def __init__(self, text: str, start: int, end: int, table: dict[str, int]) -> None:
        self.text, self.start, self.end = text, start, end
        word = text[:-1] if text.endswith(".") else text
        if word.endswith(("'s", "\u2019s", "'S", "\u2019S")):
            word = word[:-2]
            self.end = start + len(word)
        elif text.endswith("."):
            self.end = end if len(word) == 1 else end - 1  # an initial keeps its point
        self.initial = len(word) == 1
        self.folded = key = fold(word)
        self.particle = key in _PARTICLES and word[:1].islower()
        flags = table.get(key, -1)
        if flags < 0 and "-" in key:  # Jean-Luc, Smith-Jones: the parts, the more name-like one counting
            parts = [table.get(part, 0) for part in key.split("-") if part]
            flags = max(parts, key=lambda f: (f & (GIVEN | SURNAME) != 0, -(f & WORD))) if parts else -1
        self.flags = flags  # -1: not in the list at all


_CONTRACTION = re.compile(r"(?i)['\u2019](?:m|re|ve|ll|d|t)\Z")
#: nationalities and languages (capitalised in English, never a person here)
_DEMONYMS = frozenset(
    [
        "american",
        "english",
        "british",
        "french",
        "german",
        "dutch",
        "greek",
        "czech",
        "polish",
        "swedish",
        "danish",
        "norwegian",
        "finnish",
        "icelandic",
        "irish",
        "scottish",
        "welsh",
        "spanish",
        "portuguese",
        "italian",
        "russian",
        "ukrainian",
        "hungarian",
        "romanian",
        "bulgarian",
        "serbian",
        "croatian",
        "slovak",
        "slovenian",
        "austrian",
        "swiss",
        "belgian",
        "turkish",
        "arab",
        "arabic",
        "persian",
        "chinese",
        "japanese",
        "korean",
        "indian",
        "pakistani",
        "thai",
        "vietnamese",
        "filipino",
        "indonesian",
        "malay",
        "brazilian",
        "mexican",
        "canadian",
        "australian",
        "african",
        "european",
        "asian",
        "latin",
        "hispanic",
        "jewish",
        "muslim",
        "christian",
        "catholic",
        "hebrew",
        "hindi",
        "urdu",
        "bengali",
        "tamil",
        "latvian",
        "lithuanian",
        "estonian",
        "albanian",
        "georgian",
        "armenian",
        "cypriot",
        "tunisian",
        "moroccan",
        "egyptian",
        "nigerian",
        "kenyan",
        "argentinian",
        "chilean",
        "colombian",
        "peruvian",
        "cuban",
    ]
)
#: words after a name that make it a company's or a place's (Miller Ltd, Johnson & Sons, Victoria Station)
_AFTER_NOT_PERSON = frozenset(
    [
        "inc",
        "ltd",
        "llc",
        "llp",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "companies",
        "group",
        "holdings",
        "partners",
        "associates",
        "investments",
        "research",
        "technologies",
        "technology",
        "systems",
        "solutions",
        "services",
        "industries",
        "international",
        "bank",
        "university",
        "college",
        "school",
        "hospital",
        "clinic",
        "church",
        "foundation",
        "institute",
        "museum",
        "hotel",
        "airport",
        "station",
        "street",
        "st",
        "avenue",
        "ave",
        "road",
        "rd",
        "boulevard",
        "blvd",
        "lane",
        "drive",
        "way",
        "square",
        "park",
        "bridge",
        "river",
        "lake",
        "mountain",
        "mount",
        "county",
        "city",
        "state",
        "republic",
        "island",
        "islands",
        "gmbh",
        "ag",
        "sa",
        "bv",
        "&",
        "sons",
        "brothers",
        "bros",
        "band",
        "tour",
        "show",
        "festival",
        "party",
        "team",
        "club",
        "fc",
        "records",
        "music",
        "radio",
        "tv",
        "news",
        "magazine",
        "day",
        "days",
    ]
)
#: the last word of a place's name (Long Beach, Mathias Pass, Jackson Heights): a group ending in one is no person
_PLACE_WORDS = _STREET_TYPE_WORDS | frozenset(
    [
        "way",
        "pass",
        "trail",
        "harbor",
        "harbour",
        "flat",
        "flats",
        "forge",
        "forges",
        "bypass",
        "park",
        "parks",
        "crossing",
        "heights",
        "hills",
        "valley",
        "gardens",
        "ridge",
        "view",
        "point",
        "port",
        "mill",
        "mills",
        "spring",
        "springs",
        "falls",
        "bay",
        "beach",
        "island",
        "isle",
        "lake",
        "river",
        "creek",
        "station",
        "bridge",
        "tower",
        "plaza",
        "mall",
        "center",
        "centre",
        "garden",
        "grove",
        "estate",
        "estates",
        "royal",
        "rapids",
        "shore",
        "shores",
        "summit",
        "junction",
        "village",
        "villages",
        "town",
        "city",
        "county",
    ]
)
_DETERMINERS = re.compile(r"(?i)\b(?:my|your|his|her|our|their|the|a|an|this|that|its|of)[ \t]+\Z")
#: surname endings common across Europe and Asia (a capitalised word the lists do not know, with one of these,
#: is taken for a surname): Icelandic, Nordic, Slavic, Baltic, Finnish, Greek, Armenian, Georgian, Romanian,
#: Spanish and Portuguese patronymics, Irish and Scottish prefixes
_SURNAME_ENDINGS = (
    "sson",
    "sen",
    "dottir",
    "dóttir",
    "ová",
    "ova",
    "ov",
    "ev",
    "eva",
    "ski",
    "ska",
    "sky",
    "skyi",
    "cki",
    "cka",
    "ić",
    "ic",
    "vić",
    "vich",
    "vici",
    "enko",
    "escu",
    "eanu",
    "poulos",
    "opoulos",
    "idis",
    "akis",
    "iou",
    "nen",
    "lä",
    "la",
    "inen",
    "ian",
    "yan",
    "shvili",
    "dze",
    "aitė",
    "ienė",
    "ytė",
    "uk",
    "czyk",
    "wicz",
    "czak",
    "ez",
    "az",
    "oglu",
    "oğlu",
    "zadeh",
    "mann",
    "stein",
    "berg",
    "feld",
    "baum",
    "ström",
    "qvist",
    "lund",
)
_SURNAME_PREFIXES = ("mc", "mac", "o'", "fitz", "van", "de")


def _never(token: _Token) -> bool:
    key = token.folded
    return (
        key in _NEVER
        or key in _TITLES
        or key in _CUE_WORDS
        or key in _DEMONYMS
        or _CONTRACTION.search(token.text) is not None
        or (len(token.text) == 1 and token.text in "IA")
    )


def _nameish(token: _Token) -> bool:
    """Could be part of a name: not a plain common word, place or closed-class word."""
    if not token.text[:1].isupper() or _never(token):
        return False
    if token.initial:
        return True
    flags = token.flags
    if len(token.folded) < 3:
        return False  # two letters: Ha, Oh, Ye, KY, DA
    if token.text.isupper():
        # upper case (TMZ, HTC, JOHN SMITH): only a known given name or surname
        return flags >= 0 and flags & (GIVEN | SURNAME) != 0
    if flags < 0:
        return True  # not a known word: a surname from elsewhere, or another proper noun
    return flags & (GIVEN | SURNAME) != 0  # else a common word or a place only


def _strong_given(flags: int) -> bool:
    return flags >= 0 and flags & POPULAR != 0 and flags & (WORD | PLACE) == 0


def _given(flags: int) -> bool:
    return flags >= 0 and flags & GIVEN != 0 and flags & (WORD | PLACE) == 0


def _plain_surname(flags: int) -> bool:
    return flags >= 0 and flags & SURNAME != 0 and flags & (WORD | PLACE) == 0


def _surname_shaped(token: _Token) -> bool:
    """A capitalised word the lists do not know, with a surname's ending (Szczepańska, Ahtisaari, Jeknić)."""
    if token.flags >= 0 or len(token.text) < 4 or not token.text[1:].islower():
        return False
    word = token.text.casefold()
    return word.endswith(_SURNAME_ENDINGS) or (word.startswith(_SURNAME_PREFIXES) and len(word) > 5)


def _surnamey(token: _Token) -> bool:
    """What may follow a given name as its surname: a surname, or a capitalised word the list does not know."""
    if token.initial:
        return True
    flags = token.flags
    if flags < 0:
        return True
    return flags & SURNAME != 0 and (flags & (WORD | PLACE) == 0 or flags & GIVEN == 0)


def _sentence_start(text: str, start: int) -> bool:
    index = start - 1
    while index >= 0 and text[index] in " \"'\u201c\u2018(`[":
        index -= 1
    return index < 0 or text[index] in _SENTENCE_END


def _all_caps_shouting(text: str, start: int, end: int) -> bool:
    """Inside a run of upper-case text (a shouted tweet or a heading) rather than one upper-case name."""
    window = text[max(0, start - 30) : min(len(text), end + 30)]
    letters = [ch for ch in window if ch.isalpha()]
    return len(letters) > 12 and sum(ch.isupper() for ch in letters) > 0.8 * len(letters)


_WORD_AFTER = re.compile(r"[ \t]*(&|[^\W\d_]+)")
_PLACE_BEFORE = re.compile(r"(?i)\b(?:in|at|from|to|near|into|via|visit|visiting|across|around)[ \t]+\Z")


def name_spans(text: str, run_start: int, run_text: str, table: dict[str, int]) -> list[tuple[int, int]]:
    """The names in one run of capitalised words, as character spans of ``text``."""
    tokens = [_Token(m.group(), run_start + m.start(), run_start + m.end(), table) for m in _TOKEN.finditer(run_text)]
    if not tokens:
        return []
    shouting = run_text.isupper() and _all_caps_shouting(text, run_start, run_start + len(run_text))
    # groups of name-like words; a title or cue word just before a group vouches for it
    groups: list[tuple[list[_Token], bool]] = []
    group: list[_Token] = []
    vouched = False
    other_words = 0  # capitalised common words in the run: a heading or a title in Title Case
    for token in tokens:
        if token.particle:
            if group:
                group.append(token)
            continue
        if _nameish(token):
            if not group:
                vouched = bool(groups_vouch(tokens, token))
            group.append(token)
            continue
        if group:
            groups.append((group, vouched))
            group = []
        if not _never(token) or token.folded in _DEMONYMS:
            other_words += 1
    if group:
        groups.append((group, vouched))
    spans: list[tuple[int, int]] = []
    for grp, titled in groups:
        while grp and grp[-1].particle:
            grp.pop()
        if not grp:
            continue
        start, end = grp[0].start, grp[-1].end
        after = _WORD_AFTER.match(text, end if not text.startswith("'s", end) else end + 2)
        if after is not None and fold(after.group(1).rstrip(".")) in _AFTER_NOT_PERSON:
            continue
        if len(grp) > 1 and grp[-1].folded in _PLACE_WORDS:
            continue
        cued = titled or _CUE_BEFORE.search(text, max(0, start - 40), start) is not None
        if cued and not any(not t.initial and len(t.folded) > 1 for t in grp):
            continue  # "Customer R": a letter alone is nobody
        if cued or (not shouting and _is_name(grp, text, _sentence_start(text, start), other_words > 0)):
            spans.append((start, end))
    return spans


def groups_vouch(tokens: list[_Token], first: _Token) -> bool:
    """A title or a cue word stands right before ``first`` in its run (Dr. Smith, Dear Grace, Hi Will)."""
    index = tokens.index(first)
    if index == 0:
        return False
    previous = tokens[index - 1]
    return previous.folded in _TITLES or previous.folded in _CUE_WORDS


def _is_name(grp: list[_Token], text: str, sentence_start: bool, headline: bool) -> bool:
    first = grp[0]
    size = len(grp)
    named = [t for t in grp if not t.initial]
    if not named:
        return False
    if size >= 2 and any(t.initial for t in grp):
        # an initial with a name beside it: J. Smith, Brad L Key, Ella H. Snider; not a lone letter
        if (size >= 3 or first.text.endswith(".")) and any(t.flags < 0 or t.flags & (GIVEN | SURNAME) for t in named):
            return True
        if first.initial:
            return False
    flags = first.flags
    if size >= 2:
        second = grp[1]
        if _strong_given(flags) or (_given(flags) and _surnamey(second)):
            return True
        if flags >= 0 and flags & GIVEN and flags & PLACE == 0 and _plain_surname(second.flags):
            return True  # Grace Kelly, Will Szabo
        if _surname_shaped(second) and (flags < 0 or flags & (GIVEN | SURNAME)):
            return True  # Wisława Szczepańska, Esat Jeknić
        if flags < 0 and second.flags >= 0 and second.flags & FREQUENT and not second.flags & (WORD | GIVEN):
            return not (headline or sentence_start)  # Tünde Hoffmann
        return False
    # one word
    if _strong_given(flags):
        return True
    if sentence_start or headline:
        return False
    before = text[max(0, first.start - 12) : first.start]
    if _PLACE_BEFORE.search(before) or _DETERMINERS.search(before):
        return False  # "from Kenosha", "at Jones", "my Love"
    # a given name that is also a word, alone (I met Grace / Bill me later) is left: on WNUT-17 train+dev that
    # rule was right only half the time
    if flags >= 0 and flags & FREQUENT and flags & (WORD | PLACE | GIVEN) == 0 and first.text[1:].islower():
        return True  # a frequent surname inside a sentence: "Goldberg said"
    return _surname_shaped(first)


_TOKEN = re.compile(r"[^\W\d_][\w'\u2019\-]*\.?", re.UNICODE)


class NameFinder:
    """Finds ``PERSON`` spans in text (character offsets)."""

    def __init__(self) -> None:
        self.table = lexicon()
        self.runs = re2.compile(_RUN)
        self.stated = re2.compile(_STATED)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, normal form) of every name, in text order, not overlapping."""
        table = self.table
        found: list[tuple[int, int]] = []
        for match in self.runs.finditer(text):
            start = match.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in "@/_=.\\#"):
                continue  # inside a word, an address, a path or a handle
            end = match.end()
            if end < len(text) and text[end] in "@/_=":
                continue
            found.extend(name_spans(text, start, match.group(), table))
        for match in self.stated.finditer(text):
            start, end = match.span(1)
            words = match.group(1).split()
            keep = 0
            for word in words:
                key = fold(word.rstrip(".,"))
                flags = table.get(key, -1)
                if key in _NEVER or (flags >= 0 and flags & WORD and not flags & GIVEN):
                    break
                keep += 1
            if keep:
                stop = start
                for word in words[:keep]:
                    stop = text.index(word, stop) + len(word.rstrip(".,"))
                found.append((start, stop))
        if not found:
            return []
        found.sort()
        out: list[tuple[int, int, str]] = []
        last_end = -1
        for start, end in found:
            if start < last_end:
                continue
            out.append((start, end, normal_name(text[start:end])))
            last_end = end
        return out


def normal_name(value: str) -> str:
    """One pseudonym per name however it is spaced or capitalised."""
    return " ".join(value.replace("\u2019", "'").split()).casefold()


# -- street addresses --------------------------------------------------------------------------------------
_NUM = r"\d{1,6}[A-Za-z]?(?:[\-/]\d{1,5}[A-Za-z]?)?"
#: street types that are not common words: any case, with any words before them
_TYPES_PLAIN = (
    r"street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|highway|hwy|parkway|pkwy|"
    r"terrace|ter|crescent|cres|place|pl|square|sq|circle|cir|trail|trl|expressway|expy|freeway|fwy|"
    r"turnpike|tpke|alley|aly|mews|close|way|grove|gardens|gdns"
)
_UNIT = r"(?:apt|apartment|suite|ste|unit|flat|fl|floor|rm|room|bldg|building|no|#)\.?[ \t]*#?[ \t]*[A-Za-z0-9\-]{1,6}"
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\.?"
_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|"
    "OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI|AS|MP|"
    "AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT"
)
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}"
_CA_POSTCODE = r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ \-]?\d[ABCEGHJ-NPRSTV-Z]\d"
_US_ZIP = r"\d{5}(?:-\d{4})?"
_SEP = r"(?:[ \t]*,[ \t]*|[ \t]+|[ \t]*\r?\n[ \t>]*)"
_CAPWORD = rf"[A-Z\x{{80}}-\x{{10FFFF}}][{_LETTER}'.\-]*"
_ANYWORD = rf"[{_LETTER}\d][{_LETTER}\d'.\-]*"
#: what may follow a street, each after a comma, spaces or a line break, in any order (address blocks put
#: them on lines of their own): unit, city (up to three capitalised words), state or province, postal code
_COMPONENT = (
    rf"(?i:{_UNIT})|(?:{_STATES})\.?|{_UK_POSTCODE}|{_CA_POSTCODE}|{_US_ZIP}|{_CAPWORD}(?:[ \t]{_CAPWORD}){{0,2}}"
)
_TAIL = rf"(?:{_SEP}(?:{_COMPONENT})){{0,6}}"
_STREET_EN = (
    rf"\b{_NUM}(?:[ \t]+{_NUM})?[ \t]+(?:{_DIRECTION}[ \t]+)?"
    rf"(?:{_ANYWORD}[ \t]+){{0,4}}{_ANYWORD}[ \t]+(?i:{_TYPES_PLAIN})\b\.?(?:[ \t]+{_DIRECTION}\b)?"
)
#: continental Europe and Latin America: the street type first (rue, via, calle, ul.) and the number after the name,
#: or a compound name ending in its type (Hauptstraße, Hammarvägen) and the number after it
_PREFIX_TYPES = (
    r"rue|avenue|av\.|avda\.?|avenida|boulevard|bd\.?|bld\.?|chemin|allée|allee|impasse|quai|place|plaza|plaça|"
    r"praça|praca|piazza|piazzale|piazzetta|via|viale|vicolo|corso|largo|calle|carrer|carretera|camino|paseo|"
    r"rua|travessa|estrada|ul\.|ulica|aleja|al\.|utca|út|strada|str\.|bulevardul|calea|ulitsa|prospekt"
)
_SUFFIX_TYPES = (
    r"straße|strasse|str\.|gasse|weg|allee|platz|ring|damm|ufer|steig|pfad|vej|vägen|väg|gatan|gata|gade|gate|"
    r"veien|vegen|vei|veg|laan|straat|gracht|plein|kade|dreef|singel|utca|útja|tie|katu|kuja|polku|tanya"
)
_STREET_EU = (
    rf"\b{_NUM},?[ \t]+(?i:{_PREFIX_TYPES})[ \t]+(?:{_ANYWORD}[ \t]+){{0,4}}{_CAPWORD}|"
    rf"\b(?i:{_PREFIX_TYPES})[ \t]+(?:{_ANYWORD}[ \t]+){{0,4}}{_CAPWORD}[ \t,]+{_NUM}\b"
    rf"|\b\p{{Lu}}[{_LETTER}\-]*(?i:{_SUFFIX_TYPES})\.?[ \t]+{_NUM}\b"
    rf"|\b\p{{Lu}}[{_LETTER}\-]*[ \t]+(?i:gate|gata|gatan|vej|vei|veien|weg|straße|strasse|utca|út|u\.)[ \t]+{_NUM}\b"
)
_PO_BOX = (
    r"(?i:\bP\.?[ \t]?O\.?[ \t]?Box|\bpost[ \t]+office[ \t]+box|\bpostfach|"
    r"\bapartado(?:[ \t]+postal)?|\bcaixa[ \t]+postal)"
    r"[ \t]*(?:no\.?|#)?[ \t]*\d{1,7}"
)
_MILITARY = (
    r"\b(?:PSC|CMR|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{1,5}"
    r"(?:[ \t,]*\r?\n?[ \t]*(?:APO|FPO|DPO)[ \t]+A[AEP][ \t]+\d{5})?"
    r"|\b(?:USNS|USNV|USS|USCGC)[ \t]+[A-Z][A-Za-z\-]*(?:[ \t]+[A-Z][A-Za-z\-]*)?"
    r"[ \t,]*\r?\n?[ \t]*(?:FPO)[ \t]+A[AEP][ \t]+\d{5}"
)
#: a street name and number with a unit after it (Allika 46, Suite 501; Markt 84 Apt. 597)
_STREET_UNIT = (
    rf"\b(?:{_NUM}[ \t]+)?{_CAPWORD}(?:[ \t]+[{_LETTER}][{_LETTER}'.\-]*){{0,3}}[ \t]+{_NUM}[ \t]*,?"
    rf"(?:[ \t]+|[ \t]*\r?\n[ \t>]*)(?i:apt|apartment|suite|ste|unit|flat)\.?[ \t]*#?[ \t]*\d{{1,5}}"
)
STREET_PATTERN = (
    rf"(?:{_STREET_EN}|{_STREET_EU}|{_STREET_UNIT}){_TAIL}"
    rf"|(?:{_PO_BOX}|{_MILITARY}){_TAIL}"
)
#: an address after words that announce one ("my address is", "ships to", "lives at", "located at"): the
#: lines after the cue, trimmed by :func:`refine_cued_address`
CUED_ADDRESS_PATTERN = (
    r"(?i:\baddress(?:es)?(?:[ \t]+is)?[ \t]*:?|\blives?[ \t]+(?:on|at)|\blocated[ \t]+(?:at|on)|"
    r"\bship(?:ped)?[ \t]+(?:it[ \t]+)?to|\bdeliver(?:ed)?[ \t]+(?:it[ \t]+)?to|\bsend[ \t]+(?:it[ \t]+|this[ \t]+)?to|"
    r"\bmoved[ \t]+to|\barrived[ \t]+at|\bdrops[ \t]+you[ \t]+off[ \t]+at|\bmail[ \t]+(?:it[ \t]+)?to|"
    r"\breturn[ \t]+(?:it[ \t]+)?to)"
    r"[ \t]*(?:\r?\n[ \t>]*)?"
    r"((?i:the[ \t]+corner[ \t]+of[ \t]+)?[^\n?!;:]{3,100}(?:\r?\n[ \t>]*[^\n?!;:]{2,60}){0,5})"
)
_LOWER_TAIL = re.compile(
    r"[ \t,]+(?:in|for|last|and then|to|at|so|but|which|because|if|please|street)\b.*\Z", re.S | re.I
)
_SENTENCE_CUT = re.compile(r"(?:(?<![A-Za-z])(?:[a-z]{3,})\.|[!?])(?:\s|\Z)")


_HOUSE_NUMBER = re.compile(r"(?<![\w:.])\d{1,6}[A-Za-z]?(?![\w:]|\s?(?:am|pm|a\.m|p\.m)\b)")


def refine_cued_address(value: str) -> tuple[int, int, str] | None:
    """The address in the text after an address cue: up to the end of its sentence and its address lines."""
    lines = _LINE_BREAK.split(value)
    first = lines[0]
    cut = _SENTENCE_CUT.search(first)
    if cut is not None:
        first = first[: cut.start() + 1].rstrip(".")
        lines = [first]
    kept = [first]
    table = lexicon()
    for line in lines[1:]:
        words = line.split()
        if not words:
            break
        key = fold(words[0].rstrip(",.:;!"))
        flags = table.get(key, -1)
        if key in _NEVER - _UNIT_WORDS or key in _CUE_WORDS or (flags >= 0 and flags & WORD and not flags & PLACE):
            break
        if len(words) > 5 and not any(ch.isdigit() for ch in line):
            break
        kept.append(line)
    text = "\n".join(kept)
    text = _LOWER_TAIL.sub("", text).rstrip(" \t,.")
    lowered = text.casefold()
    if "http" in lowered or "www." in lowered or "@" in text:
        return None
    if _HOUSE_NUMBER.search(text) is None and "corner of" not in lowered:
        return None  # a number as house numbers are written, not a time (9am) or an ordinal (25th)
    if len(text) < 6:
        return None
    # the offsets in the original value: the kept text is its prefix with line breaks as written
    end = _prefix_end(value, text)
    return 0, end, normal_address(value[:end])


def _prefix_end(value: str, kept: str) -> int:
    """Where ``kept`` (``value``'s start with its line breaks written as one newline) ends in ``value``."""
    i = j = 0
    while i < len(value) and j < len(kept):
        if value[i] == kept[j]:
            i += 1
            j += 1
        elif kept[j] == "\n":
            j += 1
            while i < len(value) and value[i] in " \t\r\n>":
                i += 1
        else:
            i += 1
    return i


#: a postal code alone: UK and Canadian formats (letters and digits in fixed places); a US ZIP after a state code
POSTAL_PATTERN = (
    rf"\b({_UK_POSTCODE})\b|\b({_CA_POSTCODE})\b"
    rf"|\b(?:{_STATES})[ \t]+({_US_ZIP})\b"
    rf"|(?i:\bzip(?:[ \t]*code)?|\bpost(?:al)?[ \t]*code|\bpostcode)[ \t]*[:#]?[ \t]*"
    rf"({_US_ZIP}|\d{{4,6}}|[A-Z0-9]{{2,4}}[ \-]?[A-Z0-9]{{3}})\b"
)

#: words of a house-number-and-type candidate that show it is not an address ("3 kids and a Way")
_NOT_STREET_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "is",
        "are",
        "was",
        "were",
        "be",
        "my",
        "your",
        "our",
        "his",
        "her",
        "their",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "not",
        "no",
        "per",
        "every",
        "each",
        "than",
        "more",
        "less",
        "about",
        "over",
        "under",
        "times",
        "days",
        "weeks",
        "months",
        "years",
        "hours",
        "minutes",
        "people",
        "items",
        "pages",
        "steps",
    ]
)
_ABBREVIATIONS = {
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "road": "rd",
    "boulevard": "blvd",
    "lane": "ln",
    "drive": "dr",
    "court": "ct",
    "highway": "hwy",
    "parkway": "pkwy",
    "terrace": "ter",
    "crescent": "cres",
    "place": "pl",
    "square": "sq",
    "circle": "cir",
    "apartment": "apt",
    "suite": "ste",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "strasse": "straße",
}
_TYPE_WORDS = re.compile(rf"(?i)\b(?:{_TYPES_PLAIN})\b\.?")
_AMBIGUOUS_TYPES = frozenset(
    [
        "place",
        "pl",
        "square",
        "sq",
        "circle",
        "cir",
        "trail",
        "close",
        "way",
        "grove",
        "gardens",
        "court",
        "ct",
        "mews",
        "terrace",
        "drive",
        "dr",
    ]
)


def normal_address(value: str) -> str:
    """Case, spacing, punctuation and the usual abbreviations folded: one pseudonym per address."""
    words = re.sub(r"[.,;#]+", " ", value.casefold()).split()
    return " ".join(_ABBREVIATIONS.get(word, word) for word in words)


_UNIT_WORDS = frozenset(
    ["apt", "apartment", "suite", "ste", "unit", "flat", "fl", "floor", "rm", "room", "bldg", "building", "no", "#"]
)
_LINE_BREAK = re.compile(r"[ \t]*\r?\n[ \t>]*")


def refine_street(value: str) -> tuple[int, int, str] | None:
    """The address in a candidate, without lines after it that are not part of it ("Thanks, Bob")."""
    stop = len(value)
    table = lexicon()
    for match in _LINE_BREAK.finditer(value):
        line = value[match.end() :]
        first = line.split(None, 1)[0] if line.split() else ""
        key = fold(first.rstrip(",.:;!"))
        if key in _UNIT_WORDS or first[:1].isdigit():
            continue
        flags = table.get(key, -1)
        if key in _NEVER or key in _CUE_WORDS or key in _TITLES or (flags >= 0 and flags & WORD and not flags & PLACE):
            stop = match.start()
            break
    value = value[:stop].rstrip(" \t,")
    normalized = validate_street(value)
    return None if normalized is None else (0, len(value), normalized)


def validate_street(value: str) -> str | None:
    """A street-address candidate: the words before a house-number-first street type must look like a street name."""
    head = value.split("\n", 1)[0]
    match = _TYPE_WORDS.search(head)
    if match is not None and head[:1].isdigit():
        words = head[: match.start()].split()
        # the words between the number(s) and the type
        names = [w for w in words if not w[:1].isdigit()]
        if not names:
            return None
        if any(w.casefold() in _NOT_STREET_WORDS for w in names):
            return None
        kind = match.group().rstrip(".").casefold()
        if kind in _AMBIGUOUS_TYPES and not (match.group()[:1].isupper() and all(w[:1].isupper() for w in names)):
            return None
        if kind in ("st", "dr", "ct", "pl") and match.group()[:1].islower():
            return None  # "3 st" or "2 dr" in lower case: abbreviations of other things
    return normal_address(value)


def validate_postal(value: str) -> str | None:
    return " ".join(value.upper().replace("-", " ").split()) if value.strip() else None


def finder_lock() -> Any:
    return _lock
