"""Whole-word typos read through the reading: 受給者症 → 受給者証, 交新 → 更新, じゅきゅしゃしょう → 受給者証.

People type Japanese by its sound and pick a kanji from a list: a wrong pick keeps the reading and
loses the word (受給者症, 交新 for 更新), and a word typed in kana may lose a long vowel on the way
(じゅきゅしゃしょう). Character bigrams and rapidfuzz see such a word as mostly different letters.
So before matching, a run of one to a few words of the message that is not a word of the knowledge
base, but reads aloud exactly like one (or, when long, within one sound of one), is written as that
word. The knowledge base's own words are the only ones it spells towards, so a correction can only
make a question closer to what the bot knows; it never invents one.

Written here rather than taken from a spelling library: the libraries correct towards a general
dictionary, while this must correct towards one knowledge base, by sound, on SudachiPy's words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

from nlp.normalize import fold, kata_to_hira, nfkc
from nlp.text import CHUNK, Text, tokenizer

# A run of at most this many words is spelled as one word of the knowledge base.
MAX_RUN = 6
# Readings shorter than this are too ambiguous to correct (いつ, かつ, こう).
MIN_READING = 4
# Readings at least this long may differ from the word's by one sound (a dropped long vowel).
NEAR_READING = 7
# Only short messages are respelled: a long one has enough right words to be understood.
MAX_CHARS = 200
# How much more often the usual one of two words with one reading must be used (see Respeller).
DOMINANT = 3  # 更新 is written 24 times in the phrasings, 亢進 (a disease name) 8: 更新 is meant
_SKIP_POS = {"補助記号", "空白"}


@dataclass(frozen=True)
class _Token:
    surface: str  # as typed (NFKC)
    folded: str
    reading: str  # folded, hiragana
    skip: bool  # a symbol, a space or a number: no run crosses it
    particle: bool  # a particle (は, を): a typo is inside a word, not around it
    auxiliary: bool  # an auxiliary verb (ます, です, た): the ending of a word typed right


def _tokens(text: str) -> list[_Token]:
    tok = tokenizer()
    if tok is None:  # pragma: no cover - the dependency is declared
        return []
    out: list[_Token] = []
    normal = nfkc(text)
    for start in range(0, len(normal), CHUNK):
        for m in tok.tokenize(normal[start : start + CHUNK]):
            pos = m.part_of_speech()
            skip = pos[0] in _SKIP_POS or pos[1] == "数詞"
            read = m.surface() if skip else (m.reading_form() or m.surface())
            out.append(
                _Token(
                    m.surface(), fold(m.surface()), fold(kata_to_hira(read)), skip, pos[0] == "助詞", pos[0] == "助動詞"
                )
            )
    return out


class Respeller:
    """Spells whole-word typos of a message as the knowledge base's words (see module docstring)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._known: set[str] = set()  # folded runs of words seen in the knowledge base
        self._words: set[str] = set()  # folded single words seen in the knowledge base
        spelled: dict[str, str] = {}  # folded run -> as written in the knowledge base
        by_reading: dict[str, Counter[str]] = {}  # reading -> folded runs, by how often the knowledge base uses each
        for text in texts:
            tokens = _tokens(text)
            self._words.update(t.folded for t in tokens)
            for i in range(len(tokens)):
                for run in _runs(tokens, i):
                    folded = "".join(t.folded for t in run)
                    self._known.add(folded)
                    read = "".join(t.reading for t in run)
                    if len(read) >= MIN_READING and _has_content(run):
                        spelled.setdefault(folded, "".join(t.surface for t in run))
                        by_reading.setdefault(read, Counter())[folded] += 1
        # The kana spelling of a word (「こうしん」, written for users who type in kana) is the same word.
        # Of two words with one reading the knowledge base's usual one is meant (更新, not 亢進 of a
        # disease's name), when it is used at least ``DOMINANT`` times as often; else neither.
        self._by_reading: dict[str, str] = {}
        for r, forms in by_reading.items():
            written = Counter({f: n for f, n in forms.items() if not _kana(f)}) or forms
            (first, n1), *rest = written.most_common(2)
            if not rest or n1 >= DOMINANT * rest[0][1]:
                self._by_reading[r] = spelled[first]
        self._long: dict[int, list[tuple[str, str]]] = {}  # readings met within one sound, by length
        for r, w in self._by_reading.items():
            if len(r) >= NEAR_READING:
                self._long.setdefault(len(r), []).append((r, w))

    def respell(self, text: Text) -> Text:
        """``text`` with its whole-word typos spelled as the knowledge base's words; itself when none."""
        if len(text.raw) > MAX_CHARS or tokenizer() is None:
            return text
        tokens = _tokens(text.raw)
        out: list[str] = []
        changed = False
        i = 0
        while i < len(tokens):
            found = self._fix(tokens, i)
            if found is None:
                out.append(tokens[i].surface)
                i += 1
                continue
            n, word = found
            out.append(word)
            changed = True
            i += n
        return Text("".join(out)) if changed else text

    def _fix(self, tokens: list[_Token], i: int) -> tuple[int, str] | None:
        """The longest run at ``i`` that is no known word but sounds like one: (its length, the word).

        A run of one word is left alone: a word of the dictionary typed on purpose (機関 where the
        knowledge base says 期間) is no typo. A wrong kanji pick falls apart into pieces (受給者|症,
        交|新), and so does a word typed in kana that the dictionary does not know: a run is a candidate
        only with a piece of one letter or a word the knowledge base never uses, and no particle."""
        for run in reversed(list(_runs(tokens, i))[1:]):
            word = self._respelt(tokens, i, run)
            if word is not None:
                return len(run), word
        return None

    def _respelt(self, tokens: list[_Token], i: int, run: list[_Token]) -> str | None:
        """The known word that the run at ``i`` is a typo of, if it is one (see ``_fix``)."""
        folded = "".join(t.folded for t in run)
        typed_in_kana = _kana(folded)
        if folded in self._known or all(t.folded in self._words and len(t.folded) > 1 for t in run):
            return None
        if typed_in_kana:
            if not _stands_apart(tokens, i, len(run)):
                return None
        elif any(t.particle or t.auxiliary for t in run):
            return None
        read = "".join(t.reading for t in run)
        if len(read) < MIN_READING or not _has_content(run):
            return None
        # Within one sound only for a word typed in kana (じゅきゅしゃしょう): a kanji typo keeps its sound.
        word = self._by_reading.get(read) or (self._near(read) if typed_in_kana else None)
        return word if word is not None and fold(word) != folded else None

    def _near(self, read: str) -> str | None:
        """The one known word whose reading is within one sound of ``read`` (long readings only)."""
        if len(read) < NEAR_READING - 1:
            return None
        found = {
            w
            for size in (len(read) - 1, len(read), len(read) + 1)
            for r, w in self._long.get(size, ())
            if Levenshtein.distance(r, read, score_cutoff=1) <= 1
        }
        return found.pop() if len(found) == 1 else None


def _runs(tokens: list[_Token], i: int) -> Iterable[list[_Token]]:
    """The runs of 1 … ``MAX_RUN`` words that start at ``i`` and cross no symbol or space."""
    for n in range(1, MAX_RUN + 1):
        run = tokens[i : i + n]
        if len(run) < n or any(t.skip for t in run):
            return
        yield run


def _stands_apart(tokens: list[_Token], i: int, n: int) -> bool:
    """Whether a run of ``n`` kana words at ``i`` stands apart: in kana, particles and endings may be pieces
    of the word (じ|ゆ|き…), so the run must go from the start or a space to the end, a space or a particle
    (「じゅきゅしゃしょう なくした」); 「コピーはいりますか」 is は + いります."""
    end = i + n
    return (i == 0 or tokens[i - 1].skip) and (end == len(tokens) or tokens[end].skip or tokens[end].particle)


def _kana(text: str) -> bool:
    return all("\u3041" <= c <= "\u309f" for c in text)


def _has_content(run: list[Any]) -> bool:
    """Whether a run has a kanji or at least four kana: particles alone are never spelled."""
    text = "".join(t.folded for t in run)
    return any("\u4e00" <= c <= "\u9fff" for c in text) or len(text) >= MIN_READING
