"""Detector.collect's candidate loop in C (genai_audit.processors._collect) against the same loop in Python.

Both are real code paths: ``detectors.set_accelerated`` chooses which one runs. The C loop must find
exactly what the Python loop finds, with the same types, claim the same bytes, call validators,
refiners and context tests with the same arguments, and let their exceptions through unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_audit.processors import detectors as d
from tests.test_detectors import DEFAULT_SCANNER, collect_loop, mixed_texts


def test_the_extension_is_built() -> None:
    # an install made by `make setup` (or pip with a C compiler) has it; without it the Python loop runs
    module = importlib.import_module("genai_audit.processors._collect")
    assert d._collect_in_c is module.collect
    assert d.ACCELERATED
    package = os.path.dirname(d.__file__)
    source = os.path.join(package, "_collect.c")
    if os.path.exists(os.path.join(package, os.pardir, "setup.py")):  # an editable install: built from the checkout
        # whole seconds: the build copies the module with its modification time truncated to seconds
        assert int(os.path.getmtime(module.__file__)) >= int(os.path.getmtime(source)), "stale: run make setup"


Outcome = tuple[list[d.Finding], bytes, BaseException | None]


def run(detectors: Sequence[d.Detector], text: str, loop: str) -> Outcome:
    """Every detector's collect over one document, in order, as Scanner.scan runs them (without the set)."""
    doc = d._Document(text, text.encode())
    found: list[d.Finding] = []
    error: BaseException | None = None
    with collect_loop(loop):
        try:
            d._TOKEN_DETECTOR.collect(doc, [])
            for detector in detectors:
                detector.collect(doc, found)
        except Exception as exc:  # noqa: BLE001 - compared between the two loops
            error = exc
    return found, bytes(doc.taken), error


def same(detectors: Sequence[d.Detector], text: str, calls: list[tuple[Any, ...]] | None = None) -> Outcome:
    """What both loops give, asserted identical: findings, their field types, claimed bytes, callback calls
    (logged to ``calls`` by the detectors' callbacks) and the exception raised."""
    log = calls if calls is not None else []
    log.clear()
    c = run(detectors, text, "c")
    c_calls = log[:]
    log.clear()
    py = run(detectors, text, "python")
    assert c[0] == py[0]
    assert [type(f) for f in c[0]] == [d.Finding] * len(c[0])
    assert [[type(x) for x in f] for f in c[0]] == [[type(x) for x in f] for f in py[0]]
    assert c[1] == py[1]
    assert c_calls == log
    assert (type(c[2]), str(c[2])) == (type(py[2]), str(py[2]))
    return py


def _logged(calls: list[tuple[Any, ...]], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        calls.append((name, *args))
        return function(*args)

    return call


def _shrink(value: str) -> tuple[int, int, str] | None:
    """A refiner that keeps the inside of a candidate: character offsets that are not byte offsets."""
    if len(value) < 3:
        return None
    return 1, len(value) - 1, value[1:-1].upper()


_EXTRA_TEXT = st.text(st.sampled_from("ab=kvx xé😀中\n[]:0123456789-abcdef"), max_size=30)


@st.composite
def texts(draw: st.DrawFn) -> str:
    return draw(st.one_of(mixed_texts(), _EXTRA_TEXT, st.tuples(mixed_texts(), _EXTRA_TEXT).map("".join)))


def _test_detectors(calls: list[tuple[Any, ...]], offsets: tuple[Any, Any]) -> list[d.Detector]:
    """Patterns that match empty strings, group choice, context tests, refiners with odd answers."""
    low, high = offsets

    def wild(value: str) -> tuple[Any, Any, str]:  # offsets outside the candidate, or not plain ints
        return low, high, value

    return [
        d.Detector("PAIR", d.SECRET, r"(?:k=(\w+))|(?:v=(\w*))", group=-1, priority=90),
        d.Detector("SHRUNK", d.PII, r"[a-fé😀中]{3,}", refine=_logged(calls, "refine", _shrink), priority=80),
        d.Detector(
            "AFTER",
            d.PII,
            r"x(b?)(=?)",
            group=1,
            reject=_logged(calls, "reject", lambda text, start, end: text[end : end + 1] == "="),
            priority=70,
        ),
        d.Detector("RUN", d.PII, r"x*", validator=_logged(calls, "validate", lambda v: v * 2), priority=60),
        d.Detector("WILD", d.PII, r"[0-9]+:?", refine=_logged(calls, "wild", wild), priority=55),
        d.Detector("EMPTY", d.PII, r"(é?)", group=1, priority=50),
        d.Detector("ANY", d.PII, r"[^ ]+", validator=lambda v: None if "[" in v else v, priority=40),
    ]


_OFFSETS = st.tuples(
    st.one_of(st.integers(-4, 6), st.booleans(), st.just(2**70)),
    st.one_of(st.integers(-4, 9), st.booleans(), st.just(-(2**70))),
)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=texts(), offsets=_OFFSETS)
def test_both_loops_find_the_same(text: str, offsets: tuple[Any, Any]) -> None:
    calls: list[tuple[Any, ...]] = []
    same(_test_detectors(calls, offsets), text, calls)
    same(DEFAULT_SCANNER.detectors, text)
    with collect_loop("c"):
        accelerated = DEFAULT_SCANNER.scan(text)
    with collect_loop("python"):
        assert accelerated == DEFAULT_SCANNER.scan(text)


class Boom(Exception):
    pass


def _raises(error: BaseException) -> Callable[..., Any]:
    def call(*_args: Any) -> Any:
        raise error

    return call


class _Falsy:
    def __bool__(self) -> bool:
        raise Boom("truth")


@pytest.mark.parametrize(
    "make",
    [
        lambda err: d.Detector("V", d.PII, r"[0-9]+", validator=_raises(err)),
        lambda err: d.Detector("R", d.PII, r"[0-9]+", refine=_raises(err)),
        lambda err: d.Detector("C", d.PII, r"[0-9]+", reject=_raises(err)),
        lambda err: d.Detector("G", d.PII, r"([0-9])([0-9])", group=1, validator=_raises(err)),
    ],
)
@pytest.mark.parametrize("text", ["ab 12 cd 34", "é😀 12 中 34"])
def test_exceptions_from_callbacks_propagate_unchanged(make: Callable[[BaseException], d.Detector], text: str) -> None:
    for loop in ("c", "python"):
        error = Boom(loop)
        detector = make(error)
        found: list[d.Finding] = []
        with collect_loop(loop), pytest.raises(Boom) as raised:
            detector.collect(d._Document(text, text.encode()), found)
        assert raised.value is error
        assert found == []


@pytest.mark.parametrize(
    "refine",
    [
        lambda v: (0, 1),
        lambda v: (0, 1, v, v),
        lambda v: 5,
        lambda v: [0, 1, v],
        lambda v: iter((0, len(v), v)),
        lambda v: (0.0, 1, v),
        lambda v: ("a", 1, v),
        lambda v: (0, len(v), v) if v != "34" else (0, 1),
    ],
)
@pytest.mark.parametrize("text", ["ab 12 cd 34", "é😀 12 中 34"])
def test_odd_refiner_answers_behave_alike(refine: Callable[[str], Any], text: str) -> None:
    found, _, error = same([d.Detector("R", d.PII, r"[0-9]+", refine=refine)], text)
    assert found or error is not None


class _Index:
    """An offset that slices (``__index__``) but does not add to an int."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class _LoggedIndex(_Index):
    """An offset that also adds, logging each ``first + offset``."""

    calls: ClassVar[list[tuple[Any, ...]]] = []

    def __radd__(self, other: int) -> int:
        self.calls.append(("radd", other, self.value))
        return other + self.value


@pytest.mark.parametrize("text", ["é😀 12 中 34", "ab 12 cd 34"])
def test_finding_offsets_are_added_in_order_and_stop_at_the_first_error(text: str) -> None:
    # first + offset fails, so first + length is never computed: its __radd__ is not called (the C loop once
    # evaluated both sums before checking either, calling Python code with an exception possibly pending)
    calls = _LoggedIndex.calls
    detector = d.Detector("R", d.PII, r"[0-9]+", refine=lambda v: (_Index(0), _LoggedIndex(len(v)), v))
    found, _, error = same([detector], text, calls)
    assert isinstance(error, TypeError)
    assert found == []
    # and when both sums succeed they run in order, once each
    detector = d.Detector("R", d.PII, r"[0-9]+", refine=lambda v: (_LoggedIndex(0), _LoggedIndex(1), v))
    found, _, error = same([detector], text, calls)
    assert error is None
    assert [(f.end - f.start) for f in found] == [1, 1]


def test_findings_hash_as_tuples() -> None:
    # a finding made in C hashes like the same tuple made in Python (3.14 tuples cache their hash)
    text = "mail ana@example.com or 4111 1111 1111 1111, ip 10.0.0.1 é"
    accelerated, _, error = run(DEFAULT_SCANNER.detectors, text, "c")
    reference = run(DEFAULT_SCANNER.detectors, text, "python")[0]
    assert error is None
    assert len(accelerated) >= 3 and accelerated == reference
    assert [hash(f) for f in accelerated] == [hash(tuple(f)) for f in accelerated] == [hash(f) for f in reference]
    assert set(accelerated) == set(reference)


def test_a_bool_returning_reject_and_a_falsy_raising_one() -> None:
    detector = d.Detector("C", d.PII, r"[0-9]+", reject=lambda text, start, end: _Falsy())
    for loop in ("c", "python"):
        with collect_loop(loop), pytest.raises(Boom, match="truth"):
            detector.collect(d._Document("a 1", b"a 1"), [])


def test_the_python_loop_stays_available() -> None:
    with collect_loop("python"):
        assert not d.ACCELERATED
        assert DEFAULT_SCANNER.scan("mail ana@example.com")[0].entity == d.EMAIL
    if d._collect_in_c is not None:
        assert d.ACCELERATED


@pytest.mark.parametrize("span", [(0, 99), (3, 2), (-1, 5)])
def test_a_span_outside_the_text_is_refused(span: tuple[int, int]) -> None:
    """RE2 never reports one; a match callable that did would make the C loop index outside the text."""
    from genai_audit.processors._collect import collect

    text = "abc def"
    data = text.encode()

    def match(_anchor: Any, _view: Any, _pos: int, _size: int) -> list[tuple[int, int]]:
        return [(0, 3), span]

    found: list[d.Finding] = []
    args = (match, None, memoryview(data), data, text, bytearray(len(data)), True, 1, None, None, None)
    with pytest.raises(ValueError, match="outside the text") if span[0] >= 0 else contextlib.nullcontext():
        collect(*args, "E", "pii", 1, d.Finding, found)
    if span[0] < 0:  # the group took no part: nothing found, nothing refused
        assert found == []
