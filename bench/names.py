"""Person names, street addresses and postal codes: precision, recall and cost on public labelled data.

Usage::

    /path/to/venv/bin/python bench/names.py tune       # presidio-research synth (tune part); WNUT-17 train+dev
    /path/to/venv/bin/python bench/names.py heldout    # the held-out sets (WNUT-17 test; presidio recognizer cases)
    /path/to/venv/bin/python bench/names.py speed      # ms per KB the new detectors add on the application's thread
    ... --examples 20                                  # also print misses and false positives (tune sets only)

The sets are read from ``~/.cache/genai-audit/eval-data/<name>/data.jsonl`` as materialised by
``/work/datasets/fetch_datasets.py`` (see ``bench/README-redaction.md`` for sources and licences). Nothing
is downloaded here.

Scoring, per entity type: a predicted span is a true positive when it overlaps a gold span of the same
type by at least one character (the redaction benchmark's rule); a gold span is found when a prediction
of its type overlaps it. ``coverage`` is the share of gold characters inside a prediction of the same
type (a found first name whose surname was left would lower it). ``ADDRESS`` pools street addresses and
postal codes on both sides (WNUT and presidio write a ZIP as a span of its own or inside the address).
False positives that overlap a gold span of another type (a place or an organisation taken for a person)
are counted apart, because redacting them is harmless, but they stay false positives in the precision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
NEW_TYPES = ("PERSON", "STREET_ADDRESS", "POSTAL_CODE")

#: gold labels of each set -> our types (others are kept as "other" gold, for the FP breakdown)
LABELS = {
    "presidio-research-synth": {"PERSON": "PERSON", "STREET_ADDRESS": "STREET_ADDRESS", "ZIP_CODE": "POSTAL_CODE"},
    "wnut17": {"person": "PERSON"},
    "presidio-recognizer-cases": {"UK_POSTCODE": "POSTAL_CODE"},
}
ADDRESS_FAMILY = {"STREET_ADDRESS": "ADDRESS", "POSTAL_CODE": "ADDRESS"}


def data_dir() -> Path:
    return Path(os.environ.get("GENAI_AUDIT_EVAL_DATA") or Path.home() / ".cache" / "genai-audit" / "eval-data")


@dataclass
class Case:
    text: str
    gold: list[tuple[int, int, str]]  # our types
    other: list[tuple[int, int, str]]  # other labelled entities
    count_only: dict[str, int] = field(default_factory=dict)  # type -> expected count, positions unknown


def load(name: str, keep: Callable[[dict[str, Any]], bool]) -> list[Case]:
    path = data_dir() / name / "data.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run /work/datasets/fetch_datasets.py --only {name}")
    mapping = LABELS[name]
    out: list[Case] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            if not keep(rec):
                continue
            gold, other = [], []
            for span in rec.get("spans") or []:
                label = mapping.get(span["label"])
                target = gold if label else other
                target.append((span["start"], span["end"], label or span["label"]))
            case = Case(rec["text"], gold, other)
            if name == "presidio-recognizer-cases":
                mapped = [mapping[e] for e in rec.get("entities", []) if e in mapping]
                if mapped and rec.get("expected_len", 0) and not gold:
                    case.count_only[mapped[0]] = int(rec["expected_len"])
                if rec.get("dup_of_tune"):
                    continue
            out.append(case)
    return out


def sets(which: str) -> list[tuple[str, list[Case]]]:
    if which == "tune":
        return [
            ("presidio-research-synth (tune part)", load("presidio-research-synth", lambda r: r["role"] == "tune")),
            ("wnut17 train+dev", load("wnut17", lambda r: r["role"] == "tune")),
        ]
    return [
        ("wnut17 test", load("wnut17", lambda r: r["role"] == "heldout")),
        ("presidio-recognizer-cases", load("presidio-recognizer-cases", lambda r: True)),
        (
            "presidio-research-synth (template-disjoint fifth; seen)",
            load("presidio-research-synth", lambda r: r["role"] == "heldout"),
        ),
    ]


def scanner(new: bool = True) -> Any:
    from genai_audit.processors import detectors as d

    dets = d.builtin_detectors()
    if not new:
        dets = [det for det in dets if det.entity not in NEW_TYPES]
    return d.Scanner(dets)


def predict(scan: Any, text: str) -> list[tuple[int, int, str]]:
    return [(f.start, f.end, f.entity) for f in scan.scan(text) if f.entity in NEW_TYPES]


@dataclass
class Tally:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fp_other: Counter[str] = field(default_factory=Counter)  # false positives on another labelled entity
    found: Counter[str] = field(default_factory=Counter)
    gold: Counter[str] = field(default_factory=Counter)
    chars: Counter[str] = field(default_factory=Counter)
    covered: Counter[str] = field(default_factory=Counter)
    misses: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    false: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _overlap(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _snip(text: str, start: int, end: int) -> str:
    return (text[max(0, start - 30) : start] + "⟦" + text[start:end] + "⟧" + text[end : end + 30]).replace("\n", "⏎")


def score(cases: Iterable[Case], preds: Sequence[list[tuple[int, int, str]]]) -> Tally:
    tally = Tally()
    for case, pred in zip(cases, preds):
        for family in (False, True):

            def kind(t: str, family: bool = family) -> str:
                return ADDRESS_FAMILY.get(t, t) if family else t

            gold = [(s, e, kind(t)) for s, e, t in case.gold]
            guess = [(s, e, kind(t)) for s, e, t in pred]
            types = {t for _, _, t in gold} | {t for _, _, t in guess} | {kind(t) for t in case.count_only}
            if family:
                types &= {"ADDRESS"}
            for t in types:
                g = [x for x in gold if x[2] == t]
                p = [x for x in guess if x[2] == t]
                expected = sum(n for c, n in case.count_only.items() if kind(c) == t)
                if expected:  # positions unknown: up to `expected` predictions are right
                    tally.gold[t] += expected
                    tally.found[t] += min(expected, len(p))
                    tally.tp[t] += min(expected, len(p))
                    tally.fp[t] += max(0, len(p) - expected)
                    continue
                tally.gold[t] += len(g)
                for span in g:
                    hit = any(_overlap(span, q) for q in p)
                    tally.found[t] += hit
                    inside = set()
                    for q in p:
                        inside.update(range(max(span[0], q[0]), min(span[1], q[1])))
                    tally.chars[t] += span[1] - span[0]
                    tally.covered[t] += len(inside)
                    if not hit and not family:
                        tally.misses[t].append(_snip(case.text, span[0], span[1]))
                for q in p:
                    if any(_overlap(q, span) for span in g):
                        tally.tp[t] += 1
                    else:
                        tally.fp[t] += 1
                        if any(_overlap(q, o) for o in case.other):
                            tally.fp_other[t] += 1
                        if not family:
                            tally.false[t].append(_snip(case.text, q[0], q[1]))
    return tally


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "—"


def table(name: str, tally: Tally) -> str:
    rows = [
        f"**{name}**",
        "",
        "| type | gold | found | recall | predicted | precision | FP on another entity | char coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in ("PERSON", "STREET_ADDRESS", "POSTAL_CODE", "ADDRESS"):
        predicted = tally.tp[t] + tally.fp[t]
        if not tally.gold[t] and not predicted:
            continue
        rows.append(
            f"| {t} | {tally.gold[t]} | {tally.found[t]} | {_ratio(tally.found[t], tally.gold[t])} | {predicted} | "
            f"{_ratio(tally.tp[t], predicted)} | {tally.fp_other[t]} | {_ratio(tally.covered[t], tally.chars[t])} |"
        )
    return "\n".join(rows)


def evaluate(which: str, examples: int) -> None:
    scan = scanner()
    for name, cases in sets(which):
        preds = [predict(scan, case.text) for case in cases]
        tally = score(cases, preds)
        kb = sum(len(c.text.encode()) for c in cases) / 1024
        print(table(f"{name}: {len(cases)} texts, {kb:.0f} KB", tally))
        print()
        if examples and which == "tune":
            for t in ("PERSON", "STREET_ADDRESS", "POSTAL_CODE"):
                for label, items in (("missed", tally.misses[t]), ("false", tally.false[t])):
                    for item in items[:examples]:
                        print(f"  {t} {label}: {item}")


# -- speed ------------------------------------------------------------------------------------------------
def corpus_texts() -> list[tuple[str, list[str]]]:
    """Texts to time on: the generated redaction corpora (prompt-like text, with and without personal data),
    and the tuning sets' texts."""
    sys.path.insert(0, str(BENCH_DIR))
    import _redaction_corpus as corpus

    labeled = [doc.text for doc in corpus.labeled_corpus(256 * 1024)]
    clean = [doc.text for doc in corpus.nopii_corpus(256 * 1024)]
    tune = [c.text for _, cases in sets("tune") for c in cases]
    return [("generated labelled corpus", labeled), ("generated corpus without PII", clean), ("tuning sets", tune)]


def cpu_ms_per_kb(scan: Any, texts: Sequence[str], reps: int) -> float:
    nbytes = sum(len(t.encode()) for t in texts)
    runs = []
    for _ in range(reps):
        scan.clear_caches()
        start = time.process_time()
        for text in texts:
            scan.scan(text)
        runs.append(time.process_time() - start)
    return statistics.median(runs) * 1000 / (nbytes / 1024)


def speed(reps: int) -> None:
    with_new, without = scanner(True), scanner(False)
    from genai_audit.processors import detectors as d

    only_new = d.Scanner([det for det in d.builtin_detectors() if det.entity in NEW_TYPES])
    print("| texts | KB | all detectors ms/KB | without the new ones | added by names and addresses | new ones alone |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, texts in corpus_texts():
        kb = sum(len(t.encode()) for t in texts) / 1024
        a = cpu_ms_per_kb(with_new, texts, reps)
        b = cpu_ms_per_kb(without, texts, reps)
        c = cpu_ms_per_kb(only_new, texts, reps)
        print(f"| {name} | {kb:.0f} | {a:.3f} | {b:.3f} | {a - b:.3f} | {c:.3f} |")
    start = time.perf_counter()
    from genai_audit.processors import _names

    _names._lexicon = None
    _names.lexicon()
    print(f"\nword list load: {1000 * (time.perf_counter() - start):.0f} ms (once per process)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("tune", "heldout", "speed"))
    parser.add_argument("--examples", type=int, default=0, help="misses and false positives to print per type")
    parser.add_argument("--reps", type=int, default=5, help="timing passes (the median is reported)")
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.reps)
    else:
        evaluate(args.what, args.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
