"""A message's text in the forms the understanding compares, made once per turn.

``Text`` holds what the user said (``raw``) and, computed on first use and then kept, its
forms: ``folded`` (``nlp.normalize.fold``: width, case, katakana, long vowels and punctuation
folded), ``spaced`` and ``compact`` (what the dialogs' answer parsers read), ``plain`` (folded,
without fillers and polite endings), ``reading`` (read aloud by SudachiPy, folded: 「胸が苦しい」 →
「むねがくるしい」) and its ``sentences``. The core builds one ``Text`` a turn and hands it to the
safety check, the route table, the dialogs' answer parsers and the matcher, so that a message is
folded and read once, however many handlers look at it.

The SudachiPy tokenizer and ``reading`` live here too, since a text's reading is one of its forms.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from nlp import normalize
from nlp.normalize import fold, kata_to_hira, nfkc, strip_fillers

# Longest text handed to the tokenizer at once (it has an input limit).
CHUNK = 2000
# Where a sentence ends: a symptom's frame (「〜たら」) never reaches past it (handlers.safety).
_SENTENCE_END = re.compile(r"[。．！!？?\n]+")


@dataclass(frozen=True)
class Text:
    """What the user said and its forms (see module docstring); each form is computed at most once.

    ``functools.cached_property`` stores into the instance's ``__dict__``, which a frozen
    dataclass allows: the value stays immutable from the outside.
    """

    raw: str

    @cached_property
    def folded(self) -> str:
        return fold(self.raw)

    @cached_property
    def spaced(self) -> str:
        """``nlp.normalize.answer_form``: what the dialogs' answer parsers read, with its spaces
        (where they separate the items of an answer: 「5000 2500」)."""
        return normalize.answer_form(self.raw)

    @cached_property
    def compact(self) -> str:
        """``spaced`` without whitespace (``nlp.normalize.compact``)."""
        return normalize.compact(self.raw)

    @cached_property
    def plain(self) -> str:
        """Folded, without fillers anywhere and polite endings at the end: what commands are compared with."""
        return strip_fillers(self.folded)

    @cached_property
    def reading(self) -> str:
        """``reading`` of the text, from its words (the text is cut into words once)."""
        return "".join(w.reading for w in self.words)

    @cached_property
    def words(self) -> tuple[Word, ...]:
        """SudachiPy's words of the text (mode C), each folded as typed and as read aloud."""
        return words(self.raw)

    @cached_property
    def sentences(self) -> tuple[Text, ...]:
        """The sentences that have something left once folded, each a ``Text`` of its own (a text
        of one sentence is its own sentence, and shares its forms)."""
        parts = _SENTENCE_END.split(self.raw)
        if parts == [self.raw]:
            return (self,) if self.folded else ()
        return tuple(t for t in (Text(s) for s in parts) if t.folded)


@dataclass(frozen=True)
class Word:
    """One word of a text: as typed (folded) and as read aloud (folded; numbers and symbols as typed)."""

    surface: str
    reading: str


def as_text(text: Text | str) -> Text:
    """``text`` itself, or a ``Text`` of a plain string (for callers outside a chat turn)."""
    return text if isinstance(text, Text) else Text(text)


# SudachiPy ships stubs but no py.typed marker, so its objects are ``Any`` to mypy.
@lru_cache(maxsize=1)
def _dictionary() -> Any:
    """The SudachiPy dictionary, loaded once per process; None when not installed."""
    try:
        from sudachipy import Dictionary
    except ImportError:  # pragma: no cover - the dependency is declared
        return None
    return Dictionary(dict="core")


_THREAD = threading.local()


def tokenizer() -> Any:
    """This thread's SudachiPy tokenizer (mode C); None when SudachiPy is not installed.

    A tokenizer must not be used by two threads at once (SudachiError "Tokenizer is
    already in use"), and the servers run turns in thread pools: one per thread, all
    sharing the one dictionary.
    """
    tok = getattr(_THREAD, "tokenizer", None)
    if tok is None:
        dictionary = _dictionary()
        if dictionary is None:  # pragma: no cover
            return None
        from sudachipy import SplitMode

        make = getattr(dictionary, "tokenizer", None) or dictionary.create  # 0.7 renamed create()
        tok = _THREAD.tokenizer = make(mode=SplitMode.C)
    return tok


def _read(m: Any) -> str:
    """A morpheme read aloud. Symbols and spaces are read as 「キゴウ」: keep them as they are (fold drops
    them). Numbers are kept as written: 994 read aloud holds 「きゅうきゅう」, and an amount is no 119."""
    pos = m.part_of_speech()
    symbol = pos[0] in ("補助記号", "空白") or pos[1] == "数詞"
    return str(m.surface() if symbol else (m.reading_form() or m.surface()))


@lru_cache(maxsize=4096)
def words(text: str) -> tuple[Word, ...]:
    """The words of a text (see ``Word``); one word per character without SudachiPy."""
    tok = tokenizer()
    normal = nfkc(text)
    if tok is None:  # pragma: no cover - the dependency is declared
        return tuple(Word(fold(c), fold(c)) for c in normal)
    out: list[Word] = []
    for start in range(0, len(normal), CHUNK):
        for m in tok.tokenize(normal[start : start + CHUNK]):
            surface = fold(m.surface())
            if surface:
                out.append(Word(surface, fold(kata_to_hira(_read(m)))))
    return tuple(out)


@lru_cache(maxsize=4096)
def reading(text: str) -> str:
    """The folded reading of a text (「胸が苦しい」 → 「むねがくるしい」); the folded text without SudachiPy."""
    tok = tokenizer()
    if tok is None:  # pragma: no cover - the dependency is declared
        return fold(text)
    normal = nfkc(text)
    parts: list[str] = []
    for start in range(0, len(normal), CHUNK):
        parts += [_read(m) for m in tok.tokenize(normal[start : start + CHUNK])]
    return fold(kata_to_hira("".join(parts)))


def hiragana(text: str) -> str:
    """The text as a person typing only hiragana writes it (「申請書を出す」 → 「しんせいしょをだす」): SudachiPy's
    reading in hiragana, with small kana, long vowels and punctuation kept (unlike ``reading``)."""
    tok = tokenizer()
    if tok is None:  # pragma: no cover - the dependency is declared
        return text
    return "".join(
        kata_to_hira(m.reading_form() or m.surface()) if m.part_of_speech()[0] != "補助記号" else m.surface()
        for m in tok.tokenize(nfkc(text)[:CHUNK])
    )


def kana_share(folded: str) -> float:
    """Share of kana among the kana and kanji of a folded text (1.0 for 「でーたけして」)."""
    kana = sum(1 for c in folded if "\u3041" <= c <= "\u309f")
    kanji = sum(1 for c in folded if "\u4e00" <= c <= "\u9fff")
    return kana / (kana + kanji) if kana + kanji else 0.0
