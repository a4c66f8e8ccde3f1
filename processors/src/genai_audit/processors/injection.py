"""Prompt-injection and jailbreak detection that runs offline, in pure Python.

A logistic-regression model over word unigrams and bigrams and character
4-grams of a normalised text (NFKC, invisible characters removed, lookalike
letters and leetspeak folded, floods of one character or word cut short,
lower case) gives a probability. Base64 blobs and pig latin are decoded and
scored too. The model learned English, French, German, Spanish, Italian and
Portuguese from labelled data; for languages without such data (Chinese,
Japanese, Korean, Russian, Arabic, Urdu, Hindi, Bengali, Turkish, Vietnamese,
Indonesian) a small lexicon of textbook override and prompt-extraction
phrasings, written for this module, raises the score instead (see
``_LEXICON_SOURCES`` for its limits). Keyword heuristics, applied only once a
text is flagged, name the technique. The weights ship with the package
(``data/injection_model.json.gz``, its header names the training data,
licences, feature parameters, threshold and tune-side metrics), are loaded on
first use and are shared by every detector in the process.

Long texts are scored in overlapping windows and the highest window wins, so
an injection buried in a long document is not diluted; past a character
budget the windows are spread evenly over the text, so the work stays bounded
whatever the size of the prompt.

:class:`InjectionStep` applies the detector to an :class:`AuditRecord`: the
user's messages and the system instructions are scored as direct input,
tool results and other non-user text as indirect input; the model's output is
never scored. Scores are probabilities from a classifier trained on public
data sets: a flag is a reason to look, not proof of an attack.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import math
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any, Final

from genai_audit import semconv as sc
from genai_audit.processors._memo import DEFAULT_MEMO_CHARS, MEMO_MIN_CHARS, ContentMemo
from genai_audit.processors.chain import AuditRecord

__all__ = [
    "DIRECT_SOURCES",
    "TECHNIQUES",
    "InjectionDetector",
    "InjectionModel",
    "InjectionStep",
    "Verdict",
    "features",
    "load_model",
    "normalize",
]

MODEL_FORMAT: Final = "genai-audit/injection-model"
MODEL_RESOURCE: Final = "data/injection_model.json.gz"
TECHNIQUES: Final = ("instruction_override", "role_play", "system_prompt_extraction", "obfuscation", "indirect")
#: Sources whose text is the caller's own input; anything else (tool results,
#: retrieved documents, earlier assistant turns) is scored as indirect input.
DIRECT_SOURCES: Final = frozenset({"user", "system"})

# --- normalisation ----------------------------------------------------------------------
_INVISIBLE: Final = dict.fromkeys(
    [
        *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *range(0xFE00, 0xFE10),
    ]
)
# Cyrillic and Greek letters that look like Latin ones; folded only inside
# words that also hold Latin letters, so genuine Cyrillic or Greek text stays.
_LOOKALIKE_FROM: Final = "аеорсухіјѕԁһӏԛԝυοαειкνρτχвмнтгьℓ"
_LOOKALIKE_TO: Final = "aeopcyxijsdhlqwuoaeiknptxbmhtrbl"
_LOOKALIKES: Final = str.maketrans(_LOOKALIKE_FROM, _LOOKALIKE_TO)
_T: Final = "[\\w@$!|+€]"
_MIXED_SCRIPT: Final = re.compile(f"(?<!{_T})(?={_T}*[a-z])(?={_T}*[{_LOOKALIKE_FROM}]){_T}+")
_LEET: Final = str.maketrans("0134578@$!|+€", "oieastbasiite")
_L: Final = "[0-9@$!|+€]"
# A leet character between letters ("d1sregard", "ru13s"), leading a word
# ("4ll", "1gnore"), or one trailing a longer word ("ignor3"). Each match is a
# single character, found without backtracking over whole words.
_LEET_CHAR: Final = re.compile(
    f"{_L}(?:(?<=[a-z]{_L})(?={_L}?[a-z])|(?<=[a-z]{_L}{_L})(?=[a-z])"
    f"|(?<=[0-9@$|€])(?<!{_T}[0-9@$|€])(?=[a-z]{{2}})|(?<=[a-z0-9@$!|+€]{{3}}[a-z][0-9@$€])(?!{_T}))"
)
_SPACED: Final = re.compile(r"\b(?:[a-z][ .\-_*]){3,}[a-z]\b")
_WORD: Final = re.compile(r"[^\W_]+")
# Runs that dilute a window's n-grams (token floods): a character repeated more than three times, or the
# same word (up to 20 characters) repeated more than three times in a row, are cut down to three.
_CHAR_RUN: Final = re.compile(r"([^\s\d])\1{3,}")
_WORD_RUN: Final = re.compile(r"\b([^\W_]{1,20})(?:\W{1,3}\1\b){3,}")


def _fold_lookalikes(match: re.Match[str]) -> str:
    return match.group(0).translate(_LOOKALIKES)


def _fold_leet(match: re.Match[str]) -> str:
    return match.group(0).translate(_LEET)


def _unspace(match: re.Match[str]) -> str:
    return match.group(0)[::2]


def _three(match: re.Match[str]) -> str:
    return match.group(1) * 3


def _three_words(match: re.Match[str]) -> str:
    word = match.group(1)
    return f"{word} {word} {word}"


def normalize(text: str) -> str:
    """The text the model sees: NFKC, no invisible characters, lookalikes and leetspeak folded, lower case,
    floods of one character or word cut to three."""
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).lower()
        text = _MIXED_SCRIPT.sub(_fold_lookalikes, text)
    text = _LEET_CHAR.sub(_fold_leet, text)
    text = _SPACED.sub(_unspace, text)
    words = text.split()
    if words and max(map(len, words)) > 24:  # a long word: perhaps a run of one character
        words = _CHAR_RUN.sub(_three, " ".join(words)).split()
    if len(set(words)) * 2 < len(words):  # most words repeat: perhaps a run of one word
        words = _WORD_RUN.sub(_three_words, " ".join(words)).split()
    return " ".join(words)


# --- the model ------------------------------------------------------------------------
@dataclass(frozen=True)
class InjectionModel:
    """Weights by feature text (no hash values, so results never depend on the process)."""

    bias: float
    words: Mapping[str, float]
    chars: Mapping[str, float]
    char_n: int
    threshold: float
    document_offset: float
    header: Mapping[str, Any]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> InjectionModel:
        """Build from the decoded model file; quantised weights are multiplied by ``scale``."""
        if document.get("format") != MODEL_FORMAT:
            raise ValueError(f"not an injection model: format {document.get('format')!r}")
        scale = float(document["scale"])
        header = document["header"]
        return cls(
            bias=float(document["bias"]),
            words={k: q * scale for k, q in document["words"].items()},
            chars={k: q * scale for k, q in document["chars"].items()},
            char_n=int(header["features"]["char_ngram"]),
            threshold=float(header["threshold"]),
            document_offset=float(header.get("document_offset", 0.0)),
            header=header,
        )

    def logit(self, normalized: str) -> float:
        """Log-odds for one normalised window: each feature group scaled by 1/sqrt(its size)."""
        words, grams = features(normalized, self.char_n)
        total = self.bias
        if words:
            total += sum(map(self.words.get, words, repeat(0.0))) / math.sqrt(len(words))
        if grams:
            total += sum(map(self.chars.get, grams, repeat(0.0))) / math.sqrt(len(grams))
        return total


def features(normalized: str, char_n: int) -> tuple[list[str], list[str]]:
    """Word unigrams and bigrams, and character n-grams of the space-padded text (repeats kept)."""
    words = _WORD.findall(normalized)
    words += [f"{a} {b}" for a, b in pairwise(words)]
    padded = f" {normalized} "
    return words, [padded[i : i + char_n] for i in range(len(padded) - char_n + 1)]


def load_model(path: str | Path | None = None) -> InjectionModel:
    """Read a model file (default: the one shipped in the package)."""
    if path is None:
        raw = resources.files("genai_audit.processors").joinpath(MODEL_RESOURCE).read_bytes()
    else:
        raw = Path(path).read_bytes()
    return InjectionModel.from_document(json.loads(gzip.decompress(raw)))


_default_model: InjectionModel | None = None
_default_lock = threading.Lock()


def _shared_model() -> InjectionModel:
    global _default_model
    model = _default_model
    if model is None:
        with _default_lock:
            if _default_model is None:
                _default_model = load_model()
            model = _default_model
    return model


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# --- techniques (run only on flagged text) ---------------------------------------------
_OVERRIDE: Final = re.compile(
    r"\b(?:ignore|disregard|forget|override|overwrite|bypass|skip|abandon|discard|neglect|set aside|drop)\b"
    r"[^.\n]{0,40}?\b(?:instructions?|rules|guidelines|directives?|prompts?|polic(?:y|ies)|constraints|restrictions"
    r"|programming|training|commands?|orders|guardrails|filters?|safety|above|everything)\b"
    r"|\bnew (?:instructions?|rules|task|directives?|orders)\b|\bdo not follow\b|\bstop following\b"
    r"|\byour (?:real|true|new|only) (?:task|job|goal|purpose|instructions?)\b|\b(?:i have been|say) pwned\b"
    r"|\b(?:end|ignore) (?:of )?(?:the )?(?:previous|above|system) (?:instructions|prompt|text)\b"
    r"|\b(?:system|admin(?:istrator)?|developer|root) (?:override|command|access)\b"
)
_ROLE_PLAY: Final = re.compile(
    r"\bdan\b|\bdo anything now\b|\b(?:developer|dev|god|debug|unrestricted) mode\b|\bjailbr(?:eak|oken)"
    r"|\b(?:you are|you're|you will be) (?:now|no longer|free|an? (?:unrestricted|unfiltered|uncensored|evil|rogue))\b"
    r"|\b(?:act|behave|respond|roleplay) as\b|\bpretend (?:to be|you|that)\b|\brole[- ]?play"
    r"|\bimagine (?:you|yourself|a world|a reality|that)\b|\b(?:in|stay in|break) character\b|\bpersona\b"
    r"|\bno (?:restrictions|limits|filters|rules|ethics|morals|guidelines|censorship)\b"
    r"|\b(?:unrestricted|unfiltered|uncensored|amoral)\b|\bhypothetical(?:ly)?\b|\bevil (?:twin|ai|assistant|bot)\b"
)
_EXTRACTION: Final = re.compile(
    r"\b(?:system|initial|original|hidden|secret|internal|developer|pre) ?(?:prompt|instructions?|message|rules"
    r"|configuration|directives?|guidelines)\b"
    r"|\b(?:repeat|print|output|reveal|show|display|dump|leak|disclose|share|tell me|give me|list|recite|write out"
    r"|spell out|echo|expose|what (?:is|are|were))\b[^.\n]{0,40}?\b(?:your|the|all|above|previous|prior|initial)\b"
    r"[^.\n]{0,30}?\b(?:instructions?|prompt|rules|guidelines|configuration|directives|text|words|message|context"
    r"|setup|initialization|programming)\b"
    r"|\b(?:text|words|everything|all) (?:above|before this)\b|\bverbatim\b"
    r"|\bwhat (?:were|are|have) you (?:been )?(?:told|instructed|programmed)\b"
)
_KEYWORDS: Final = re.compile(
    r"ignor|disregard|forget|instruction|system|prompt|rule|reveal|bypass|disable|safety|jailbreak|restrict"
    r"|password|secret|override|admin|hack|pwned|filter|polic|guideline"
)
_LEET_WORD: Final = re.compile(r"[a-z0-9@$!|+€]*(?:[a-z][0-9@$!|+€]|[0-9@$!|+€][a-z])[a-z0-9@$!|+€]*")
_STYLED: Final = re.compile("[\U0001d400-\U0001d7ff\uff21-\uff3a\uff41-\uff5a\u24b6-\u24e9]")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_MAX_BLOBS_PER_WINDOW: Final = 4
_MAX_BLOB: Final = 8192


#: A token flood: one character 16 times or more in a row, or one word 10 times or more.
_FLOOD: Final = re.compile(r"([^\s\d])\1{15,}|\b([^\W_]{1,20})(?:\W{1,3}\2\b){9,}")


def _obfuscated(raw: str) -> bool:
    """Whether the raw text hides instructions: invisible characters, lookalikes, styled letters, leet, spacing,
    token floods."""
    if not raw.isascii():
        if raw != raw.translate(_INVISIBLE) or _STYLED.search(raw):
            return True
        folded = unicodedata.normalize("NFKC", raw).lower()
        if any(_KEYWORDS.search(m.group(0).translate(_LOOKALIKES)) for m in _MIXED_SCRIPT.finditer(folded)):
            return True
    lowered = raw.lower()
    if _FLOOD.search(lowered):
        return True
    if any(_KEYWORDS.search(_LEET_CHAR.sub(_fold_leet, m.group(0))) for m in _LEET_WORD.finditer(lowered)):
        return True
    return any(_KEYWORDS.search(m.group(0)[::2]) for m in _SPACED.finditer(lowered))


def _named_technique(normalized: str) -> str:
    """The technique whose phrasing comes first; instruction_override when none is named."""
    best = ("instruction_override", len(normalized) + 1)
    for name, pattern in (
        ("instruction_override", _OVERRIDE),
        ("role_play", _ROLE_PLAY),
        ("system_prompt_extraction", _EXTRACTION),
    ):
        found = pattern.search(normalized)
        if found is not None and found.start() < best[1]:
            best = (name, found.start())
    return best[0]


def _decoded_blobs(text: str, start: int, end: int) -> tuple[list[str], int]:
    """Printable text hidden as base64 in blobs starting within ``text[start:end]`` (a few at most).

    A blob may run past ``end`` (by up to ``_MAX_BLOB`` characters); the second
    value is where the next search should start, so no blob is decoded twice.
    """
    found: list[str] = []
    scanned = end
    for match in _BASE64.finditer(text, start, end):
        if len(found) >= _MAX_BLOBS_PER_WINDOW:
            break
        if match.end() >= end:  # may run on past the window
            match = _BASE64.match(text, match.start(), min(len(text), end + _MAX_BLOB)) or match
        scanned = max(scanned, match.end())
        blob = match.group(0).replace("-", "+").replace("_", "/").rstrip("=")
        blob = blob[: len(blob) - len(blob) % 4]
        try:
            data = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = data.decode("utf-8", errors="replace")
        printable = sum(1 for c in decoded if c.isprintable() or c in "\n\t")
        if len(decoded) >= 8 and printable >= 0.95 * len(decoded) and " " in decoded:
            found.append(decoded)
    return found, scanned


# --- pig latin ----------------------------------------------------------------------------
_PIG_WORD: Final = re.compile(r"[a-z]{4,}")
_VOWELS: Final = frozenset("aeiou")


def _unpig(word: str, vocabulary: Mapping[str, float]) -> str:
    """One pig-latin word back in English: the reading the model knows, else the likeliest."""
    if not word.endswith("ay"):
        return word
    stem = word[:-2]
    vowel_first = stem[0] in _VOWELS
    candidates = [stem[:-1]] if vowel_first and stem[-1] == "w" else []  # "ignoreway"
    for k in (3, 2, 1):  # "eviouspray" -> "previous", "ystemsay" -> "system", "ethay" -> "the"
        if len(stem) > k and not _VOWELS.intersection(stem[-k:]):
            candidates.append(stem[-k:] + stem[:-k])
    if vowel_first:
        if stem[-1] in "yh":
            candidates.append(stem[:-1])  # "allyay", "allhay"
        candidates.append(stem)  # "allay"
    for candidate in candidates:
        if candidate in vocabulary:
            return candidate
    return candidates[-1] if candidates else stem


def _pig_latin(normalized: str, vocabulary: Mapping[str, float]) -> str | None:
    """``normalized`` read back from pig latin when at least two thirds of its longer words end in "ay"."""
    if normalized.count("ay") < 3:
        return None
    words = _PIG_WORD.findall(normalized)
    pig = sum(1 for word in words if word.endswith("ay"))
    if pig < 3 or 3 * pig < 2 * len(words):
        return None
    return _PIG_WORD.sub(lambda m: _unpig(m.group(0), vocabulary), normalized)


# --- phrase lexicon for languages without training data -------------------------------------
# The model learned English, French, German, Spanish, Italian and Portuguese from labelled data (for
# English a few textbook phrasings are listed too). For the other languages no public labelled injection
# data was at hand, so a few instruction-override and
# prompt-extraction phrasings per language (written for this module, not learned; a context word
# such as "previous"/"all"/"your" is required near the object, to spare ordinary uses of "ignore")
# raise the score to LEXICON_SCORE. They catch the textbook forms only ("ignore all previous
# instructions", "show your system prompt"); paraphrases, other word orders and jailbreak
# stories in these languages are not recognised, and no held-out data measures them.
LEXICON_SCORE: Final = 0.95
_G = "[^.!?。！？।۔؟\\n]"  # any character within one sentence
_LEXICON_SOURCES: Final = {
    # English, where the model is trained: only the textbook forms, so that a stricter threshold does not let them pass.
    "en": (
        "\\b(?:ignore|disregard|forget)(?: all| any| the| of| your"
        "| my| these| those)* (?:previous|prior|preceding|above"
        "|earlier|initial|original|system)(?: \\w+)? (?:instructions?"
        "|prompts?|rules|directions|directives|guidelines)\\b",
        "\\b(?:repeat|print|output|reveal|show|display|write out"
        "|spell out|recite)(?: me)?(?: back)?(?: all| the| your)* "
        "(?:text|words|instructions|prompt|messages?|everything) (?:above|before this|so far|verbatim)\\b"
        "|\\b(?:what is|what are|what's|reveal|print|show me|tell me"
        "|output|repeat) (?:all )?your (?:system prompt|system "
        "message|initial (?:prompt|instructions)|original instructions|hidden instructions|secret instructions)\\b",
    ),
    "zh": (
        "(?:忽略|忽视|忽視|无视|無視|不要理会|不要理會|不理会|别理|別理|忘记|忘記|忘掉|抛开|拋開|抛弃|拋棄|放弃|放棄|跳过|跳過"
        "|绕过|繞過|违反|違反|不要遵守|不再遵守|停止遵守|不用遵守|无需遵守)"
        f"{_G}{{0,8}}?(?:之前|以前|先前|此前|上面|以上|上述|前面|前述|所有|全部|一切|你的|您的|原来|原來|原有|原始|初始|系统"
        f"|系統|既定|默认|默認){_G}{{0,8}}?(?:指令|指示|说明|說明|规则|規則|提示词|提示詞|提示|设定|設定|限制|约束|約束|命令"
        "|规定|規定|准则|準則|要求|内容|內容)",
        "(?:输出|輸出|显示|顯示|打印|告诉我|告訴我|透露|泄露|洩露|重复|重複|展示|给我看|給我看|说出|說出|公开|公開|列出)"
        f"{_G}{{0,10}}?(?:系统提示|系統提示|系统指令|系統指令|系统消息|系統訊息|初始指令|初始提示|隐藏指令|隱藏指令|原始指令"
        "|你的指令|你的提示词|你的设定)"
        "|(?:你|您)的?(?:系统提示|系統提示|系统指令|系統指令|初始指令|隐藏指令|隱藏指令)",
    ),
    "ja": (
        "(?:以前|前|これまで|今まで|上記|上|先ほど|先程|全て|すべて|全部|あなたの|システム|元の|最初の|初期)"
        f"{_G}{{0,8}}?(?:指示|命令|指令|ルール|規則|設定|制約|プロンプト|ガイドライン|制限|方針)"
        f"{_G}{{0,8}}?(?:無視|忘れ|破棄|無効|従わ|従うな|捨て)",
        "(?:システムプロンプト|初期指示|初期プロンプト|隠された指示|隠し指示|システムメッセージ|元の指示)"
        f"{_G}{{0,10}}?(?:教えて|表示|出力|見せて|開示|繰り返|書き出|公開)",
    ),
    "ko": (
        "(?:이전|앞의|앞서|위의|위에|모든|지금까지|기존|시스템|원래|초기|너의|당신의|네)"
        f"{_G}{{0,10}}?(?:지시|지침|명령|규칙|프롬프트|설정|제한|가이드라인|룰)"
        f"{_G}{{0,10}}?(?:무시|잊어|잊고|잊으|버려|버리고|따르지 ?마|어기)",
        "(?:시스템 ?프롬프트|초기 ?지시|숨겨진 ?지시"
        f"|시스템 ?메시지){_G}{{0,10}}?(?:알려|보여|출력|공개|말해|반복|적어)",
    ),
    "ru": (
        "(?:игнорир|проигнорир|забуд|забыв|не обращай\\w* внимани\\w* на|не слушай|отбрось|отбрасыв|отмен|пренебре"
        "|не следуй|перестань следовать|не соблюдай)"
        f"{_G}{{0,30}}?(?:предыдущ|прежн|\\bвсе\\b|\\bвсё\\b|вышеуказанн|вышеприведенн|\\bвыше\\b|\\bсво|\\bтво|\\bваш"
        f"|системн|изначальн|исходн|данн|полученн|заданн|ранее){_G}{{0,25}}?(?:инструкци|указани|правил|ограничени|команд"
        "|промпт|запрет|директив|установк|политик)",
        "(?:покажи|выведи|раскрой|повтори|напиши|скажи|дай|перескажи|процитируй|сообщи)"
        f"{_G}{{0,20}}?(?:системн\\w* (?:промпт|подсказк|инструкц"
        "|сообщени)|(?:свои|твои|исходн\\w*|скрыт\\w*|начальн\\w*)"
        " (?:инструкц|промпт|правил|указани))"
        f"|(?:\\bтвой|\\bваш|у тебя|у вас){_G}{{0,6}}?системн\\w* (?:промпт|подсказк)",
    ),
    "ar": (
        "\\b(?:تجاهل|تجاهلي|تجاهلوا|تتجاهل|انس|انسي|انسوا|إنس|تخط"
        "|تخطى|تخطي|تجاوز|تجاوزي|أهمل|اهمل|لا تتبع|لا تلتزم|لا تطع)\\b"
        f"{_G}{{0,30}}?\\b(?:ب|و|ل)?(?:ال)?(?:تعليمات|أوامر|اوامر|قواعد|إرشادات|ارشادات|توجيهات|قيود)",
        "\\b(?:اكشف|أظهر|اظهر|اعرض|اطبع|كرر|أخبرني|اخبرني|قل لي|أعطني|اعطني)\\b"
        f"{_G}{{0,20}}?(?:موجه النظام|تعليمات النظام|رسالة النظام|التعليمات الأولية|التعليمات الاولية|تعليماتك"
        "|التعليمات المخفية)",
    ),
    "ur": (
        f"(?:پچھلی|پچھلے|تمام|سب|اپنی|اپنے|سسٹم|اوپر){_G}{{0,15}}?(?:ہدایات|ہدایت|احکامات|قواعد|اصول|پرامپٹ)"
        f"{_G}{{0,20}}?(?:نظر انداز|بھول|اگنور)",
        f"(?:سسٹم پرامپٹ|ابتدائی ہدایات|خفیہ ہدایات){_G}{{0,20}}?(?:بتاؤ|بتائیں|دکھاؤ|دکھائیں)",
    ),
    "hi": (
        "(?:पिछले|पिछली|पहले के|पहले दिए|ऊपर के|ऊपर दिए|ऊपर लिखे|सभी|सारे|सारी|अपने|अपनी|तुम्हारे|तुम्हारी|आपके|आपकी|सिस्टम|मूल)"
        f"{_G}{{0,25}}?(?:निर्देश|आदेश|नियम|हिदायत|प्रॉम्प्ट|प्रोम्प्ट|दिशानिर्देश|प्रतिबंध)"
        f"{_G}{{0,25}}?(?:अनदेखा|नज़रअंदाज़|नजरअंदाज|नज़रंदाज़|नजरंदाज|भूल|उपेक्षा|इग्नोर|मत मान|न मान|ना मान|पालन मत|पालन न)",
        "(?:सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|प्रारंभिक निर्देश|शुरुआती निर्देश|छिपे हुए निर्देश|गुप्त निर्देश)"
        f"{_G}{{0,25}}?(?:बताओ|बताएं|बताइए|बताएँ|दिखाओ|दिखाएं|दिखाइए|प्रिंट|दोहराओ|दोहराएं|लिखो)",
    ),
    "bn": (
        "(?:পূর্ববর্তী|আগের|পূর্বের|উপরের|উপরে|সমস্ত|সব|সকল|তোমার|আপনার|তোর|সিস্টেম|মূল)"
        f"{_G}{{0,25}}?(?:নির্দেশ|আদেশ|নিয়ম|প্রম্পট|বিধিনিষেধ){_G}{{0,25}}?(?:উপেক্ষা|ভুলে|অগ্রাহ্য|অমান্য|ইগনোর|মানবে না|মেনো না)",
        f"(?:সিস্টেম প্রম্পট|প্রাথমিক নির্দেশ|গোপন নির্দেশ|লুকানো নির্দেশ){_G}{{0,25}}?(?:বলো|বলুন|দেখাও|দেখান|প্রকাশ|লেখো)",
    ),
    "tr": (
        f"(?:önceki|yukarıdaki|tüm|bütün|sistem|senin|verilen){_G}{{0,25}}?(?:talimat|kural|komut|yönerge|istem)"
        f"{_G}{{0,20}}?(?:yok say|görmezden gel|unut|dikkate alma|umursama|çiğne)",
        f"(?:sistem (?:istem|mesaj|talimat)\\w*|talimatlarını|gizli talimat\\w*){_G}{{0,20}}?"
        "(?:göster|yaz|söyle|tekrarla|açıkla|ver)",
    ),
    "vi": (
        f"(?:bỏ qua|phớt lờ|lờ đi|quên|không tuân theo|đừng tuân theo){_G}{{0,25}}?(?:hướng dẫn|chỉ dẫn|chỉ thị|quy tắc"
        f"|lệnh|lời nhắc){_G}{{0,20}}?(?:trước|bên trên|ở trên|ban đầu|hệ thống|của bạn)",
        f"(?:cho tôi xem|hiển thị|in ra|tiết lộ|nhắc lại|cho biết){_G}{{0,20}}?(?:lời nhắc hệ thống|chỉ dẫn hệ thống"
        "|hướng dẫn hệ thống|hướng dẫn ban đầu)",
    ),
    "id": (
        f"\\b(?:abaikan|lupakan|acuhkan|jangan ikuti|jangan patuhi|langgar)\\b{_G}{{0,25}}?"
        "(?:sebelum|di atas|semua|sistem|kamu|anda"
        f"|awal){_G}{{0,25}}?(?:instruksi|perintah|aturan|petunjuk|arahan|pedoman)"
        "|\\b(?:abaikan|lupakan|acuhkan|jangan ikuti|jangan patuhi"
        f"|langgar)\\b{_G}{{0,25}}?(?:instruksi|perintah|aturan"
        f"|petunjuk|arahan|pedoman){_G}{{0,25}}?(?:sebelum|di atas|sistem|kamu|anda|awal)",
        f"\\b(?:tampilkan|tunjukkan|ungkapkan|ulangi|sebutkan|beritahu\\w*|cetak)\\b{_G}{{0,20}}?(?:prompt sistem"
        "|instruksi sistem|instruksi awal|pesan sistem|instruksi tersembunyi)",
    ),
}
#: Words one of which every phrase of a language holds (its "instructions", "rules", "prompt"...): a
#: language's patterns are tried only on a window holding one of them, which keeps the cost per window small.
_LEXICON_ANCHORS: Final = {
    "en": (
        "ignor",
        "disregard",
        "forget",
        "above",
        "verbatim",
        "so far",
        "before this",
        "system prompt",
        "system message",
        "initial",
        "original instr",
        "hidden instr",
        "secret instr",
    ),
    "zh": (
        "指",
        "说明",
        "說明",
        "规",
        "規",
        "提示",
        "设定",
        "設定",
        "限制",
        "约束",
        "約束",
        "命令",
        "准则",
        "準則",
        "要求",
        "内容",
        "內容",
    ),
    "ja": (
        "指示",
        "命令",
        "指令",
        "ルール",
        "規則",
        "設定",
        "制約",
        "プロンプト",
        "ガイドライン",
        "制限",
        "方針",
        "メッセージ",
    ),
    "ko": ("지시", "지침", "명령", "규칙", "프롬프트", "설정", "제한", "가이드라인", "룰", "메시지"),
    "ru": (
        "инструкци",
        "указани",
        "правил",
        "ограничени",
        "команд",
        "промпт",
        "подсказк",
        "запрет",
        "директив",
        "установк",
        "политик",
        "сообщени",
    ),
    "ar": ("تعليمات", "أوامر", "اوامر", "قواعد", "إرشادات", "ارشادات", "توجيهات", "قيود", "موجه", "رسالة"),
    "ur": ("ہدایات", "ہدایت", "احکامات", "قواعد", "اصول", "پرامپٹ"),
    "hi": ("निर्देश", "आदेश", "नियम", "हिदायत", "प्रॉम्प्ट", "प्रोम्प्ट", "प्रतिबंध"),
    "bn": ("নির্দেশ", "আদেশ", "নিয়ম", "প্রম্পট", "বিধিনিষেধ"),
    "tr": ("talimat", "kural", "komut", "yönerge", "istem", "mesaj"),
    "vi": ("hướng dẫn", "chỉ dẫn", "chỉ thị", "quy tắc", "lệnh", "lời nhắc"),
    "id": ("instruksi", "perintah", "aturan", "petunjuk", "arahan", "pedoman", "prompt", "pesan"),
}
#: Languages written in Latin letters: tried on every window; the others only on windows holding a
#: character from U+0400 up (Cyrillic, Arabic, Indic, CJK, Hangul, ...).
_LATIN_LEXICON: Final = ("en", "tr", "vi", "id")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_LEXICON: Final = {
    lang: (
        tuple(_nfkc(anchor) for anchor in _LEXICON_ANCHORS[lang]),
        re.compile(_nfkc(override)),
        re.compile(_nfkc(extraction)),
    )
    for lang, (override, extraction) in _LEXICON_SOURCES.items()
}
_ASCII: Final = tuple(_LEXICON[lang] for lang in ("en", "tr", "id"))
_LATIN: Final = tuple(_LEXICON[lang] for lang in _LATIN_LEXICON)
_ALL: Final = tuple(_LEXICON.values())
LEXICON_LANGUAGES: Final = tuple(_LEXICON_SOURCES)


def _lexicon(normalized: str) -> str | None:
    """The technique a lexicon phrase in the normalised text names, if any."""
    groups = _ASCII if normalized.isascii() else _ALL if max(normalized) >= "\u0400" else _LATIN
    for anchors, override, extraction in groups:
        if any(anchor in normalized for anchor in anchors):
            if override.search(normalized):
                return "instruction_override"
            if extraction.search(normalized):
                return "system_prompt_extraction"
    return None


# --- the detector -----------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The outcome for one text: probability, whether it crosses the threshold, how, and from where."""

    score: float
    detected: bool
    technique: str | None = None
    source: str = "user"


def _windows(length: int, size: int, step: int, budget: int) -> Iterator[tuple[int, int]]:
    """Window bounds covering ``length`` characters; past ``budget``, spread evenly with the ends kept."""
    if length <= size:
        yield 0, length
        return
    starts = math.ceil((length - size) / step) + 1
    wanted = max(2, budget // size)
    if starts <= wanted:
        positions = [min(i * step, length - size) for i in range(starts)]
    else:
        positions = [round(i * (length - size) / (wanted - 1)) for i in range(wanted)]
    for start in positions:
        yield start, start + size


class InjectionDetector:
    """Scores texts for prompt injection. Thread-safe; the model loads on first use.

    ``threshold`` defaults to the model file's (0.5: the bias is shifted so
    that the score chosen on tune-side validation prompts, the best recall
    with precision >= 0.90 when 4 % of prompts are attacks, falls on 0.5). Text from any source
    but the user (system instructions, tool results, documents) has
    ``document_offset`` subtracted from its log-odds first: long,
    instruction-like prose scores higher than chat messages, and the default
    offset, also from the model file, keeps the false-positive rate on
    held-out long documents low. One threshold then applies to every source.

    Texts longer than ``window_chars`` are scored in windows overlapping by
    ``overlap_chars``, the highest window counting; at most about ``max_chars``
    characters of one text are examined.
    """

    def __init__(
        self,
        threshold: float | None = None,
        *,
        document_offset: float | None = None,
        model: InjectionModel | None = None,
        model_path: str | Path | None = None,
        window_chars: int = 256,
        overlap_chars: int = 64,
        max_chars: int = 256 * 1024,
    ) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], not {threshold!r}")
        if document_offset is not None and not 0.0 <= document_offset < 50.0:
            raise ValueError(f"document_offset must be within [0, 50), not {document_offset!r}")
        if window_chars < 64 or not 0 <= overlap_chars <= window_chars // 2:
            raise ValueError("window_chars must be >= 64 and overlap_chars at most half of it")
        if max_chars < window_chars:
            raise ValueError("max_chars must be at least window_chars")
        self._threshold = threshold
        self._document_offset = document_offset
        self._model = model
        self._model_path = model_path
        self._lock = threading.Lock()
        self.window_chars = window_chars
        self.overlap_chars = overlap_chars
        self.max_chars = max_chars

    @property
    def model(self) -> InjectionModel:
        """The weights, loaded on first use (once per process for the shipped file)."""
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_model(self._model_path) if self._model_path else _shared_model()
                model = self._model
        return model

    @property
    def threshold(self) -> float:
        return self._threshold if self._threshold is not None else self.model.threshold

    @property
    def document_offset(self) -> float:
        return self._document_offset if self._document_offset is not None else self.model.document_offset

    def probability(self, text: str, source: str = "user", *, max_chars: int | None = None) -> float:
        """The score of ``text`` (its highest window) without technique or verdict."""
        return self.score(text, source, max_chars=max_chars, explain=False).score

    def score(self, text: str, source: str = "user", *, max_chars: int | None = None, explain: bool = True) -> Verdict:
        """Score ``text`` coming from ``source`` ("user", "system", "tool_result", "document", ...).

        With ``explain`` false no technique is worked out (cheaper when only the score matters).
        """
        z, raw, normalized, decoded, rule = self._best(text, max_chars)
        probability = _sigmoid(z if source == "user" else z - self.document_offset)
        if rule is not None and probability < LEXICON_SCORE:
            probability = LEXICON_SCORE
        else:
            rule = None
        if probability < self.threshold:
            return Verdict(probability, False, None, source)
        if not explain:
            technique = None
        elif source not in DIRECT_SOURCES:
            technique = "indirect"
        elif decoded or _obfuscated(raw):
            technique = "obfuscation"
        else:
            technique = rule or _named_technique(normalized)
        return Verdict(probability, True, technique, source)

    def _budget(self, max_chars: int | None) -> int:
        return self.max_chars if max_chars is None else max(self.window_chars, min(max_chars, self.max_chars))

    def coverage(self, length: int, max_chars: int | None = None) -> int:
        """How much of a text of ``length`` characters :meth:`score` reads under ``max_chars``: 0 for all of it,
        else the number of evenly spread windows. Texts scored with the same coverage get the same verdict."""
        size = self.window_chars
        if length <= size:
            return 0
        starts = math.ceil((length - size) / (size - self.overlap_chars)) + 1
        wanted = max(2, self._budget(max_chars) // size)
        return 0 if starts <= wanted else wanted

    def _best(self, text: str, max_chars: int | None) -> tuple[float, str, str, bool, str | None]:
        """The highest-scoring window: (log-odds, raw text, normalised text, whether it was decoded from
        base64 or pig latin, the technique of the first lexicon phrase found in any window)."""
        model = self.model
        budget = self._budget(max_chars)
        best: tuple[float, str, str, bool] = (-math.inf, "", "", False)
        rule: str | None = None
        step = self.window_chars - self.overlap_chars
        scanned = 0
        for start, end in _windows(len(text), self.window_chars, step, budget):
            raw = text[start:end]
            normalized = normalize(raw)
            z = model.logit(normalized)
            if z > best[0]:
                best = (z, raw, normalized, False)
            if rule is None:
                rule = _lexicon(normalized)
            unpigged = _pig_latin(normalized, model.words)
            if unpigged is not None:
                z = model.logit(unpigged)
                if z > best[0]:
                    best = (z, raw, unpigged, True)
            if end > scanned:
                hidden, scanned = _decoded_blobs(text, max(start, scanned), end)
                for decoded in hidden:
                    for d_start, d_end in _windows(len(decoded), self.window_chars, step, self.window_chars * 4):
                        decoded_norm = normalize(decoded[d_start:d_end])
                        z = model.logit(decoded_norm)
                        if z > best[0]:
                            best = (z, raw, decoded_norm, True)
                        if rule is None:
                            rule = _lexicon(decoded_norm)
        return (*best, rule)


# --- the processing step ----------------------------------------------------------------
_SKIPPED_PARTS: Final = frozenset({"tool_call", "reasoning", "uri", "blob", "refusal"})
_MAX_DEPTH: Final = 32


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    """Every string inside a JSON-compatible value (mapping values, list items)."""
    if isinstance(value, str):
        if value:
            out.append(value)
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            for item in value.values():
                _strings(item, out, depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                _strings(item, out, depth + 1)


def _source_of_role(role: Any) -> str:
    if role in ("user", "human"):
        return "user"
    if role in ("system", "developer"):
        return "system"
    if role in ("tool", "function", "ipython"):
        return "tool_result"
    return str(role) if isinstance(role, str) and role else "other"


def _part_texts(parts: Any, source: str, groups: dict[str, list[str]]) -> None:
    """Texts of message parts: tool results under ``tool_result``, other readable parts under ``source``."""
    if isinstance(parts, str):
        groups.setdefault(source, []).append(parts)
        return
    for part in parts if isinstance(parts, (list, tuple)) else ():
        if isinstance(part, str):
            groups.setdefault(source, []).append(part)
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "tool_call_response":
                _strings(part.get("response"), groups.setdefault("tool_result", []))
            elif kind not in _SKIPPED_PARTS:
                _strings(part.get("content"), groups.setdefault(source, []))


#: Prompt attributes other instrumentations use: (content key pattern, role key template).
_FLAT_PROMPTS = (
    (re.compile(r"^gen_ai\.prompt\.(\d+)\.content$"), "gen_ai.prompt.{n}.role"),
    (re.compile(r"^llm\.input_messages\.(\d+)\.message\.content$"), "llm.input_messages.{n}.message.role"),
)


def _collect(content: Mapping[str, Any], attributes: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """Input texts grouped by source; output messages are not read.

    Besides the message-parts attributes, reads the flat prompt attributes of
    other instrumentations (``gen_ai.prompt.N.content`` with its role,
    OpenInference's ``llm.input_messages.N.message.content`` and ``input.value``).
    """
    groups: dict[str, list[str]] = {}
    # The application's own instructions (the system prompt: ``gen_ai.system_instructions``, or a
    # leading system message) are trusted and not scored: they are instruction-like by nature. Later
    # system messages often carry retrieved context and are scored as documents.
    messages = content.get(sc.INPUT_MESSAGES)
    leading = True
    for message in messages if isinstance(messages, (list, tuple)) else ():
        if isinstance(message, Mapping):
            source = _source_of_role(message.get("role"))
            if source == "system":
                if leading:
                    continue
                source = "document"
            leading = False
            _part_texts(message.get("parts"), source, groups)
    if groups or content.get(sc.SYSTEM_INSTRUCTIONS):
        return groups
    attributes = attributes or {}
    for key, value in content.items():
        if not isinstance(value, str):
            continue
        for pattern, role_key in _FLAT_PROMPTS:
            match = pattern.match(key)
            if match is not None:
                role = attributes.get(role_key.format(n=match.group(1)), content.get(role_key.format(n=match.group(1))))
                groups.setdefault(_source_of_role(role or "user"), []).append(value)
                break
        else:
            if key == "input.value":
                groups.setdefault("user", []).append(value)
    return groups


class InjectionStep:
    """Processing step: scores a record's prompt and sets the ``gen_ai.audit.injection.*`` attributes.

    User messages and system instructions are scored as direct input; tool
    results and other roles' text as indirect. Each text is scored on its own,
    within ``max_chars`` characters per record shared out by length; a record
    with more than ``max_texts`` texts of one source has them scored in joined
    runs, so the work stays bounded.
    """

    reads_content_only = True

    def __init__(
        self,
        detector: InjectionDetector | None = None,
        *,
        max_chars: int = 512 * 1024,
        max_texts: int = 256,
        memo_chars: int = DEFAULT_MEMO_CHARS,
    ) -> None:
        """``memo_chars``: verdicts are remembered for this many characters of text, so that text sent
        again (a conversation's history) is not scored again; 0: none."""
        if max_texts < 1:
            raise ValueError("max_texts must be at least 1")
        self.detector = detector or InjectionDetector()
        self.max_chars = max_chars
        self.max_texts = max_texts
        self.memo: ContentMemo[Verdict] | None = ContentMemo(memo_chars) if memo_chars > 0 else None

    def clear_caches(self) -> None:
        """Forget remembered verdicts; for measurements that must not reuse them."""
        if self.memo is not None:
            self.memo.clear()

    def _score(self, text: str, source: str, max_chars: int) -> Verdict:
        memo = self.memo
        if memo is None or len(text) < MEMO_MIN_CHARS:
            return self.detector.score(text, source, max_chars=max_chars)
        digest = memo.digest(text, source, self.detector.coverage(len(text), max_chars))
        verdict = memo.get(digest)
        if verdict is None:
            verdict = self.detector.score(text, source, max_chars=max_chars)
            memo.put(digest, verdict, len(text))
        return verdict

    def __call__(self, record: AuditRecord) -> None:
        collected = _collect(record.content, record.attributes)
        groups = {source: _runs(texts, self.max_texts) for source, texts in collected.items()}
        total = max(1, sum(len(text) for texts in groups.values() for text in texts))
        verdicts = [
            self._score(text, source, self.max_chars * len(text) // total)
            for source, texts in groups.items()
            for text in texts
        ]
        flagged = [v for v in verdicts if v.detected]
        attributes = record.attributes
        attributes[sc.AUDIT_INJECTION_DETECTED] = bool(flagged)
        attributes[sc.AUDIT_INJECTION_SCORE] = round(max((v.score for v in verdicts), default=0.0), 6)
        if flagged:
            top = max(flagged, key=lambda v: v.score)
            attributes[sc.AUDIT_INJECTION_TECHNIQUE] = top.technique or TECHNIQUES[0]
            attributes[sc.AUDIT_INJECTION_SOURCE] = top.source


def _runs(texts: list[str], limit: int) -> list[str]:
    """``texts`` without empty ones, joined into at most ``limit`` runs of neighbours."""
    texts = [t for t in texts if t]
    if len(texts) <= limit:
        return texts
    size = -(-len(texts) // limit)
    return ["\n\n".join(texts[i : i + size]) for i in range(0, len(texts), size)]
