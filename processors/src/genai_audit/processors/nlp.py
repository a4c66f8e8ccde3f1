"""Names and places through an NLP model: an optional detector backed by Presidio and spaCy.

The pattern detectors (:mod:`genai_audit.processors.detectors`) find what has a
shape: addresses, numbers, keys. A person's name or a place has none, so
finding it takes a named-entity model. This module runs Presidio's analyzer
with a spaCy pipeline over the same text and returns its ``PERSON`` and
``LOCATION`` results as :class:`~genai_audit.processors.detectors.Finding`\\ s,
which the :class:`~genai_audit.processors.redaction.Redactor` merges with the
pattern findings (a pattern finding wins where both overlap) and replaces like
any other value: ``[PERSON:3c9e0d1a77b2]``.

It is an *extra*: ``pip install 'genai-audit[nlp]'`` plus a spaCy model
(``python -m spacy download en_core_web_sm``), switched on with
``GENAI_AUDIT_NLP=presidio``. Nothing here is imported unless it is switched on,
and a missing package or model is a configuration error at start-up, never a
failure on the request path. A model is about a hundred times slower than the
patterns (tens of milliseconds per kilobyte on one core), which is why it is
not the default.

Text longer than spaCy's limit is analysed in pieces cut at line or word
breaks. Text that is already a redaction token, holds no letters, or is a
single lower-case word (JSON keys, roles, part types) is not analysed at all.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from genai_audit.config import ConfigError
from genai_audit.processors.detectors import PII, REDACTION_TOKEN, Finding

ENV_NLP = "GENAI_AUDIT_NLP"
ENV_NLP_MODEL = "GENAI_AUDIT_NLP_MODEL"
ENV_NLP_ENTITIES = "GENAI_AUDIT_NLP_ENTITIES"
ENV_NLP_THRESHOLD = "GENAI_AUDIT_NLP_THRESHOLD"

PERSON = "PERSON"
LOCATION = "LOCATION"
DEFAULT_MODEL = "en_core_web_sm"
DEFAULT_ENTITIES = (PERSON, LOCATION)
DEFAULT_THRESHOLD = 0.5
#: Below the pattern detectors: where a pattern and the model claim the same characters,
#: the pattern's typed finding (an e-mail address, say) is kept.
PRIORITY = -10
#: Characters per piece handed to the model (spaCy refuses texts above its ``max_length``).
CHUNK_CHARS = 100_000
_ENGINES = ("off", "presidio")
#: Lower-case words without spaces: JSON keys, roles and part types (``content``, ``tool_call``) are no
#: one's name, and are not worth a model call each.
_IDENTIFIER = re.compile(r"[a-z0-9_.\-]+")


def _normalized(value: str) -> str:
    """One pseudonym per name however it is spaced or capitalised."""
    return " ".join(value.split()).casefold()


def chunks(text: str, size: int = CHUNK_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) covering ``text``, each piece at most ``size`` characters, cut at a line or word break."""
    out: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, end)
        if cut < 0:
            cut = end - 1
        out.append((start, text[start : cut + 1]))
        start = cut + 1
    out.append((start, text[start:]))
    return out


class PresidioDetector:
    """Named entities (``PERSON``, ``LOCATION`` by default) found by Presidio's spaCy recognizer.

    ``model`` is the name of an installed spaCy pipeline package. The analyzer
    is built on first use (loading a model takes a second or so); call
    :meth:`load` to do that at start-up, as :func:`nlp_detector_from_env` does.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        threshold: float = DEFAULT_THRESHOLD,
        language: str = "en",
    ) -> None:
        if not entities:
            raise ConfigError("NLP detection needs at least one entity type")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"NLP score threshold must be between 0 and 1, got {threshold}")
        self.model = model
        self.entities = tuple(entity.strip().upper() for entity in entities)
        self.threshold = threshold
        self.language = language
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PresidioDetector(model={self.model!r}, entities={self.entities!r}, threshold={self.threshold})"

    def load(self) -> PresidioDetector:
        """Build the analyzer now; a missing package or model raises :class:`ConfigError`."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = self._build()
        return self

    def _build(self) -> Any:
        try:
            from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
            from presidio_analyzer.nlp_engine import NlpEngineProvider
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer
        except ImportError as exc:
            raise ConfigError(
                f"{ENV_NLP}=presidio needs Presidio: pip install 'genai-audit[nlp]' ({exc})"
            ) from None
        try:
            import spacy.util

            installed = spacy.util.is_package(self.model)
        except ImportError:
            installed = False
        if not installed:
            raise ConfigError(
                f"{ENV_NLP}=presidio: spaCy model {self.model!r} is not installed "
                f"(python -m spacy download {self.model}, or set {ENV_NLP_MODEL})"
            )
        configuration = {
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": self.language, "model_name": self.model}],
        }
        try:
            engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
            registry = RecognizerRegistry(supported_languages=[self.language])
            registry.add_recognizer(
                SpacyRecognizer(supported_language=self.language, supported_entities=list(self.entities))
            )
            return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[self.language])
        except Exception as exc:  # noqa: BLE001 - any failure to build is a configuration error
            raise ConfigError(f"{ENV_NLP}=presidio: cannot load spaCy model {self.model!r}: {exc}") from None

    def find(self, text: str) -> list[Finding]:
        """The entities in ``text``, as findings in text order (they may overlap each other)."""
        if len(text) < 2 or not any(ch.isalpha() for ch in text) or _IDENTIFIER.fullmatch(text):
            return []
        if REDACTION_TOKEN.fullmatch(text.strip()):
            return []
        analyzer = self._analyzer if self._analyzer is not None else self.load()._analyzer
        found: list[Finding] = []
        for offset, piece in chunks(text):
            results = analyzer.analyze(
                text=piece, language=self.language, entities=list(self.entities), score_threshold=self.threshold
            )
            for result in results:
                start, end = offset + int(result.start), offset + int(result.end)
                value = text[start:end]
                # trailing punctuation and possessives the model includes do not identify anyone
                stripped = value.rstrip(" .,;:!?'\"’)")
                if stripped.endswith(("'s", "’s")):
                    stripped = stripped[:-2]
                end = start + len(stripped)
                if end - start < 2:
                    continue
                found.append(Finding(start, end, str(result.entity_type), PII, _normalized(text[start:end]), PRIORITY))
        found.sort(key=lambda finding: finding.start)
        return found


def nlp_detector_from_env(env: Mapping[str, str]) -> PresidioDetector | None:
    """The detector ``GENAI_AUDIT_NLP*`` configure, loaded; None when switched off (the default)."""
    engine = (env.get(ENV_NLP) or "off").strip().lower()
    if engine in ("", "off", "false", "0", "none"):
        return None
    if engine != "presidio":
        raise ConfigError(f"{ENV_NLP}={engine!r}: expected one of {', '.join(_ENGINES)}")
    model = (env.get(ENV_NLP_MODEL) or DEFAULT_MODEL).strip()
    raw_entities = env.get(ENV_NLP_ENTITIES)
    entities = [e for e in (raw_entities or ",".join(DEFAULT_ENTITIES)).split(",") if e.strip()]
    raw_threshold = env.get(ENV_NLP_THRESHOLD)
    try:
        threshold = float(raw_threshold) if raw_threshold else DEFAULT_THRESHOLD
    except ValueError:
        raise ConfigError(f"{ENV_NLP_THRESHOLD}={raw_threshold!r}: expected a number between 0 and 1") from None
    return PresidioDetector(model=model, entities=entities, threshold=threshold).load()
