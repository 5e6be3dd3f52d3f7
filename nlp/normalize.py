"""Japanese normalisation for matching.

``fold`` makes two spellings of the same thing equal: NFKC (full/half width,
①→1), lower case, katakana → hiragana, long-vowel marks and small kana folded,
punctuation and spaces dropped. ``strip_fillers`` removes polite endings and
fillers that carry no meaning for retrieval. ``Synonyms`` rewrites every known
variant (abbreviation, misspelling, hiragana spelling) to one canonical form.

This module is pure: no I/O, no global state beyond compiled tables.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_SMALL = str.maketrans("ぁぃぅぇぉっゃゅょゎゕゖ", "あいうえおつやゆよわかけ")
# Keep letters, digits, kana and kanji; everything else separates words.
_NON_WORD = re.compile(r"[^\w\u3040-\u309f\u30a0-\u30ff\u4e00-\u9fff々〆]+")
_LONG = re.compile(r"[ー〜~－―‐-]")
# Dashes and waves as typed on phones, made one of each (「3/1〜3/31」, 「2027−3−31」).
_DASHES = str.maketrans("〜～−‐–—―", "~~----ー")
_SPACE = re.compile(r"\s+")


_KATA = {c: c - 0x60 for c in range(ord("ァ"), ord("ヴ") + 1)}
_KATA_AND_COUNTERS = {**_KATA, ord("ヵ"): ord("ゕ"), ord("ヶ"): ord("ゖ")}


def kata_to_hira(text: str, *, counters: bool = True) -> str:
    """Fold katakana (ァ..ヶ) to hiragana; other characters are kept. ``counters=False`` keeps ヵ
    and ヶ, which are as often the counter of 「6ヶ月」 as kana."""
    return text.translate(_KATA_AND_COUNTERS if counters else _KATA)


def nfkc(text: str) -> str:
    """NFKC and lower case: ﾏｲﾅ→マイナ, ＡＢＣ１２３→abc123."""
    return unicodedata.normalize("NFKC", text).lower()


def answer_form(text: str) -> str:
    """The form answers are read in (``handlers.parsers``): NFKC, lower case, katakana as hiragana
    (ﾊｲ and ハイ are はい, ７マン is 7まん), dashes made one, trimmed. Unlike ``fold`` it keeps
    punctuation, spaces, small kana and the counters ヵ ヶ (「6ヶ月」), since a comma, a slash, a dot
    or a space carries meaning in an amount, a list or a date (「40,000」, 「R9.3.31」, 「5000 2500」)."""
    return kata_to_hira(nfkc(text).translate(_DASHES), counters=False).strip()


def compact(text: str) -> str:
    """``answer_form`` without whitespace."""
    return _SPACE.sub("", answer_form(text))


def fold(text: str) -> str:
    """The matching form of a text (see module docstring)."""
    text = kata_to_hira(nfkc(text))
    text = _LONG.sub("", text)
    text = text.translate(_SMALL)
    text = text.replace("_", " ")
    return _NON_WORD.sub("", text)


# Fillers and request frames that say nothing about the topic, removed anywhere.
_FILLERS = (
    "すみません",
    "すいません",
    "あのー",
    "えーと",
    "えっと",
    "ええと",
    "ところで",
    "教えてください",
    "教えて下さい",
    "おしえてください",
    "教えてほしい",
    "教えて欲しい",
    "教えて",
    "おしえて",
    "知りたいです",
    "知りたい",
    "しりたい",
    "聞きたい",
    "お願いします",
    "おねがいします",
    "よろしくお願いします",
    "困ってます",
    "困っています",
)
# Polite endings and question particles, removed only at the end of the text.
_ENDINGS = (
    "でしょうか",
    "でしょう",
    "ですか",
    "ますか",
    "ですが",
    "ですけど",
    "ですけれど",
    "なんですか",
    "なのでしょうか",
    "なんでしょう",
    "なの",
    "なんだけど",
    "だけど",
    "けど",
    "です",
    "ます",
    "ください",
    "下さい",
    "よね",
    "かな",
    "かしら",
    "のか",
    "ね",
    "よ",
    "か",
    "の",
)


def _alternation(words: tuple[str, ...]) -> str:
    folded = sorted({fold(w) for w in words}, key=len, reverse=True)
    return "|".join(re.escape(w) for w in folded if w)


_FILLER_RE = re.compile(_alternation(_FILLERS))
_ENDING_RE = re.compile(f"(?:{_alternation(_ENDINGS)})+$")


def strip_fillers(folded: str) -> str:
    """Remove fillers anywhere and polite endings at the end of an already folded text."""
    stripped = _ENDING_RE.sub("", _FILLER_RE.sub("", folded))
    return stripped or folded


class Synonyms:
    """Rewrites variants to their canonical form, longest variant first.

    Both sides are folded, so a variant given as カタカナ also matches
    ひらがな input. Canonical forms are kept as concepts: ``concepts()`` tells
    which ones a text mentions.
    """

    def __init__(self, groups: Iterable[tuple[str, Iterable[str]]]) -> None:
        table: dict[str, str] = {}
        canon: set[str] = set()
        for canonical, variants in groups:
            c = fold(canonical)
            if not c:
                continue
            canon.add(c)
            # The canonical form maps to itself, so that a variant which is a prefix of it
            # (胆道閉鎖 of 胆道閉鎖症) never rewrites the canonical form into 胆道閉鎖症症.
            table[c] = c
            for v in variants:
                fv = fold(v)
                if fv and fv != c and len(fv) >= 2 and fv not in canon:
                    table.setdefault(fv, c)
        self._table: Mapping[str, str] = table
        self.canonical: frozenset[str] = frozenset(canon)
        keys = sorted(table, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(k) for k in keys)) if keys else None
        canon_keys = sorted(canon, key=len, reverse=True)
        self._canon_re = re.compile("|".join(re.escape(k) for k in canon_keys)) if canon_keys else None

    def rewrite(self, folded: str) -> str:
        """Replace every variant in a folded text by its canonical form."""
        if self._re is None:
            return folded
        return self._re.sub(lambda m: self._table[m.group(0)], folded)

    def concepts(self, rewritten: str) -> list[str]:
        """Canonical forms that occur in an already rewritten text."""
        if self._canon_re is None:
            return []
        return [m.group(0) for m in self._canon_re.finditer(rewritten)]
