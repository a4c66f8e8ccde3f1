"""Phone-number parsing and validation with ``phonenumbers``' own metadata, minus its generic front end.

``phonenumbers.parse`` followed by ``is_valid_number`` is exact but slow: most
of its time goes to handling input we never give it (Unicode digits, letters,
extensions, RFC 3966 URIs) and to looking up and re-checking the same
metadata patterns once per number type. The phone detector's candidates are
ASCII digits with the separators `` .-()/`` and at most a leading ``+``, so
:class:`FastPhoneParser` replays only the steps of ``parse`` that such input
reaches — international prefix, country calling code, national prefix and
carrier code, length limits, each as ``phonenumbers`` does it on the same
metadata — and then checks validity against each region's number patterns,
joined once per (region, length) into one expression: the general
description as a lookahead, then the alternation of the number types that
admit the length. The answer is the same E.164 string or
``None`` that ``parse`` + ``is_valid_number`` + ``format_number`` give
(``tests/test_detectors.py`` compares the two on generated numbers for every
configured region); input outside that shape, and the rare paths not
replayed here, get :data:`SLOW`, and the caller uses ``phonenumbers`` itself.

Every regular expression here is ``phonenumbers``' own, applied with Python's
``re`` to a national number of at most 17 digits, as ``phonenumbers`` does.
"""

from __future__ import annotations

import re
from typing import Any, Final

from phonenumbers import phonenumberutil as _pu
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata

#: Returned when this module cannot answer with certainty; the caller must use ``phonenumbers.parse``.
SLOW: Final = object()

# the number types ``_number_type_helper`` tries after the general description; a number is
# valid for a region when the general description and any one of these match
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
# what a candidate may consist of for the fast path: an optional '+', then ASCII digits and the
# separators phonenumbers treats as punctuation (all of these are in its VALID_PUNCTUATION)
_SHAPE = re.compile(r"\+?[0-9 .\-()/]*")
_NON_DIGIT = re.compile(r"[^0-9]+")
_MIN_NSN: Final = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN
_MAX_NSN: Final = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
#: calling codes as written (no leading zeros, so each string is one code)
_CALLING_CODES = {str(code): code for code in _pu.COUNTRY_CODE_TO_REGION_CODE}


def _prefix_table() -> dict[str, tuple[int, int]]:
    """Every three digits a number can start with -> (the calling code it starts with, its length).

    The shortest code wins, as in ``_extract_country_code``; a leading 0 is never a code.
    """
    table: dict[str, tuple[int, int]] = {}
    for first in range(100, 1000):
        digits = str(first)
        for size in (1, 2, 3):
            code = _CALLING_CODES.get(digits[:size])
            if code is not None:
                table[digits] = (code, size)
                break
    return table


_CALLING_CODE_PREFIXES = _prefix_table()


class _Region:
    """One metadata record with its patterns compiled, and validity memoised per number length."""

    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata
        self.country_code: int = metadata.country_code
        self.country_code_str = str(metadata.country_code)
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        idd = metadata.international_prefix
        self.idd = re.compile(idd) if idd is not None else None
        self.leading_digits = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        general = metadata.general_desc
        # _match_national_number(number, general_desc, False) is a full match of this (None: never matches)
        pattern = general.national_number_pattern if general is not None else None
        self.general = re.compile(pattern) if pattern else None
        self.transform_rule = metadata.national_prefix_transform_rule or None
        # _test_number_length(number, metadata) for the general description, as two tests on the length
        lengths = tuple(general.possible_length) if general is not None else ()
        self._local_lengths = frozenset(general.possible_length_local_only) if general is not None else frozenset()
        self._possible_lengths = frozenset(lengths)
        self._max_length = lengths[-1] if lengths else None
        # per length: the general description and the union of the types in one expression, or None
        self._by_length: dict[int, re.Pattern[str] | None] = {}

    def _compile(self, length: int) -> re.Pattern[str] | None:
        # mirrors _is_number_matching_desc: a description with possible lengths rules out the others
        def fits(desc: Any) -> bool:
            if desc is None or not desc.national_number_pattern:
                return False
            return not desc.possible_length or length in desc.possible_length

        general = self.metadata.general_desc
        if not fits(general):
            return None
        types = [getattr(self.metadata, name) for name in _TYPE_DESCS]
        alternatives = [desc.national_number_pattern for desc in types if fits(desc)]
        if not alternatives:
            return None
        # one match: the general description as a lookahead, then any type's pattern, both to the end
        union = "|".join(f"(?:{pattern})" for pattern in alternatives)
        return re.compile(rf"(?=(?:{general.national_number_pattern})\Z)(?:{union})\Z")

    def strip(self, number: str) -> str:
        """``_maybe_strip_national_prefix_carrier_code(number, metadata)[1]``: the number without a national prefix,
        transformed where the region says so, unless only the original number fits the general description."""
        prefix = self.national_prefix
        if prefix is None or not number:
            return number
        found = prefix.match(number)
        if found is None:
            return number
        general = self.general
        viable = general is not None and general.fullmatch(number) is not None
        rule = self.transform_rule
        groups = found.groups()
        if rule is None or groups[len(groups) - 1] is None:  # phonenumbers' own test, IndexError included
            rest = number[found.end() :]
        else:
            rest = prefix.sub(rule, number, count=1)
        if viable and (general is None or general.fullmatch(rest) is None):
            return number
        return rest

    def length_kept(self, length: int) -> bool:
        """``_test_number_length`` gives neither TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY nor INVALID_LENGTH."""
        if length in self._local_lengths:
            return False
        return length in self._possible_lengths or self.too_long(length)

    def too_long(self, length: int) -> bool:
        """``_test_number_length`` gives TOO_LONG."""
        if self._max_length is None:
            raise IndexError("no possible lengths")  # where phonenumbers fails the same way
        return length not in self._local_lengths and length > self._max_length

    def valid(self, nsn: str) -> bool:
        """``_number_type_helper(nsn, metadata) != UNKNOWN``: the general pattern and some type's pattern match."""
        length = len(nsn)
        try:
            compiled = self._by_length[length]
        except KeyError:
            compiled = self._by_length[length] = self._compile(length)
        return compiled is not None and compiled.match(nsn) is not None


class FastPhoneParser:
    """``parse`` + ``is_valid_number`` + E.164 formatting for separator-delimited ASCII numbers."""

    def __init__(self) -> None:
        self._regions: dict[str, _Region | None] = {}
        self._nongeo: dict[int, _Region | None] = {}
        self._mains: dict[int, _Region | None] = {}
        # country calling code -> its regions, in phonenumbers' order (see _region_steps)
        self._shared: dict[int, list[tuple[re.Pattern[str] | None, list[_Region]]]] = {}

    def _region(self, code: str) -> _Region | None:
        try:
            return self._regions[code]
        except KeyError:
            metadata = PhoneMetadata.metadata_for_region(code, None)
            found = self._regions[code] = _Region(metadata) if metadata is not None else None
            return found

    def _main(self, country_code: int) -> _Region | None:
        """The metadata ``parse`` uses for a number with this calling code (its main region, or non-geographic)."""
        try:
            return self._mains[country_code]
        except KeyError:
            found = self._mains[country_code] = self._find_main(country_code)
            return found

    def _find_main(self, country_code: int) -> _Region | None:
        region = _pu.region_code_for_country_code(country_code)
        if region != REGION_CODE_FOR_NON_GEO_ENTITY:
            return self._region(region)
        try:
            return self._nongeo[country_code]
        except KeyError:
            metadata = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
            found = self._nongeo[country_code] = _Region(metadata) if metadata is not None else None
            return found

    def _is_valid(self, country_code: int, nsn: str) -> bool:
        """``is_valid_number`` for a parsed number (``region_code_for_number``, then the type check)."""
        steps = self._shared.get(country_code)
        if steps is None:
            regions = _pu.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
            if not regions:
                return False
            if len(regions) == 1:  # the only region; non-geographic codes have only "001"
                main = self._main(country_code)
                steps = [(None, [main])] if main is not None else []
            else:
                steps = self._region_steps(regions)
            self._shared[country_code] = steps
        # the first region whose leading digits start the number decides; a region without leading digits
        # takes the number when it is valid there (``_region_code_for_number_from_list``)
        for leading, candidates in steps:
            if leading is None:
                if candidates[0].valid(nsn):
                    return True
                continue
            found = leading.match(nsn)
            if found is not None:
                return candidates[int(str(found.lastgroup)[1:])].valid(nsn)
        return False

    def _region_steps(self, codes: tuple[str, ...]) -> list[tuple[re.Pattern[str] | None, list[_Region]]]:
        """The regions sharing a calling code, in order; consecutive ones with leading digits become one
        expression whose alternatives (tried in order, like the regions) name the region that matched."""
        steps: list[tuple[re.Pattern[str] | None, list[_Region]]] = []
        run: list[_Region] = []

        def close_run() -> None:
            if run:
                alternatives = "|".join(
                    f"(?P<r{index}>{region.metadata.leading_digits})" for index, region in enumerate(run)
                )
                steps.append((re.compile(alternatives), list(run)))
                run.clear()

        for code in codes:
            region = self._region(code.upper())
            if region is None:
                continue
            if region.leading_digits is not None:
                run.append(region)
            else:
                close_run()
                steps.append((None, [region]))
        close_run()
        return steps

    def e164(self, candidate: str, default_region: str, digits: str | None = None) -> str | object | None:
        """What ``parse(candidate, default_region)`` then ``is_valid_number`` and E.164 formatting give.

        ``None`` where ``parse`` raises or the number is invalid; :data:`SLOW` where this
        cannot tell and ``phonenumbers`` must decide. ``digits``: the candidate's digits, when known.
        """
        if len(candidate) > 250 or _SHAPE.fullmatch(candidate) is None:
            return SLOW
        if digits is None:
            digits = _NON_DIGIT.sub("", candidate)
        if len(digits) < 3:
            return SLOW  # not a viable number for parse: let it say so
        if candidate[0] == "+":  # the default region plays no part
            found = _CALLING_CODE_PREFIXES.get(digits[:3])
            if found is None:
                return SLOW  # no calling code: parse retries without the '+', leave it to phonenumbers
            country_code, national = found[0], digits[found[1] :]
            metadata = self._mains.get(country_code) or self._main(country_code)
        else:
            default = self._regions.get(default_region) or self._region(default_region)
            if default is None:
                return SLOW
            idd = default.idd.match(digits) if default.idd is not None else None
            if idd is not None and not (idd.end() < len(digits) and digits[idd.end()] == "0"):
                # an international prefix (011 from the US, 00 from most of Europe)
                rest = digits[idd.end() :]
                if len(rest) <= _MIN_NSN:
                    return None  # TOO_SHORT_AFTER_IDD
                country_code, national = self._split_country_code(rest)
                if country_code == 0:
                    return None  # INVALID_COUNTRY_CODE, no '+' to retry without
                metadata = self._main(country_code)
            else:
                country_code, national = self._default_country_code(digits, default)
                if country_code:
                    metadata = self._main(country_code)
                else:
                    country_code, national, metadata = default.country_code, digits, default
        if metadata is None:
            return SLOW
        if len(national) < _MIN_NSN:
            return None  # TOO_SHORT_NSN
        stripped = metadata.strip(national)
        if stripped != national and metadata.length_kept(len(stripped)):
            national = stripped
        if len(national) < _MIN_NSN or len(national) > _MAX_NSN:
            return None
        if national.strip("0") == "":
            return SLOW  # national number 0: formatting has its own rules
        # parse stores int(national) plus its leading zeros, so the national significant number is `national`
        if not self._is_valid(country_code, national):
            return None
        return f"+{country_code}{national}"

    @staticmethod
    def _split_country_code(number: str) -> tuple[int, str]:
        """``_extract_country_code``: the first 1-3 digits that form a calling code, and the rest."""
        found = _CALLING_CODE_PREFIXES.get(number[:3]) if len(number) >= 3 else None
        if found is not None:
            return found[0], number[found[1] :]
        if len(number) >= 3 or not number or number[0] == "0":
            return 0, number
        for size in (1, 2):
            code = _CALLING_CODES.get(number[:size])
            if code is not None:
                return code, number[size:]
        return 0, number

    def _default_country_code(self, number: str, default: _Region) -> tuple[int, str]:
        """The default-country branch of ``_maybe_extract_country_code``: a national number that starts with the
        region's own calling code (``1 415 555 0132`` in the US) is read as international when only that reading
        fits the region's numbers, or the number is too long otherwise."""
        prefix = default.country_code_str
        if not number.startswith(prefix):
            return 0, ""
        general = default.general
        potential = default.strip(number[len(prefix) :])
        if (
            general is not None and general.fullmatch(number) is None and general.fullmatch(potential) is not None
        ) or default.too_long(len(number)):
            return default.country_code, potential
        return 0, ""
