"""Ranks knowledge entries for a question: BM25 over several kinds of features.

A text becomes a bag of features (see ``Analyzer``):

* ``b:`` character bigrams of the folded, synonym-rewritten text. They need no
  dictionary and survive typos and unknown words.
* ``w:`` content words from SudachiPy (normalised form, so 出せ→出す), when
  the tokenizer is available. They keep words apart that bigrams blur.
* ``c:`` concepts: the canonical form of every synonym group the text names
  (UC, かいようせいだいちょうえん and 潰瘍性大腸炎 are one concept).

Each entry has a strong field (title, phrasings, keywords) and a weak field
(the answer). The score is BM25 on both plus a rapidfuzz bonus for near-whole
matches against a single phrasing. The confidence (0–100) says how much of
what the user wrote, weighted by rarity, the best entry covers: the bot uses
it to decide whether to answer or to admit it is not sure.

Pure and in-process: build once, then ``rank`` is read-only and thread-safe.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz

from bot.nlp.normalize import Synonyms, fold, kata_to_hira, nfkc, strip_fillers

# Parts of speech whose words carry meaning for retrieval.
_CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞"}
# Very common verbs/nouns that say nothing about the topic.
_STOP_WORDS = {
    "する", "為る", "いる", "居る", "ある", "有る", "なる", "成る", "できる", "出来る", "れる", "られる",
    "こと", "事", "もの", "物", "よう", "様", "ところ", "所", "とき", "時", "方", "人", "ため", "為",
    "いう", "言う", "思う", "良い", "いい", "くれる", "もらう", "貰う", "いく", "行く", "くる", "来る",
    "これ", "それ", "あれ", "どれ", "何", "なに", "どう", "どこ", "いつ", "誰", "みる", "見る", "ござる",
}

FEATURE_WEIGHTS = {"b": 1.0, "w": 1.2, "c": 2.0}


@lru_cache(maxsize=1)
def _sudachi():
    """The SudachiPy tokenizer (mode C), loaded once; None when not installed."""
    try:
        from sudachipy import Dictionary, SplitMode
    except ImportError:  # pragma: no cover - the dependency is declared
        return None
    dictionary = Dictionary(dict="core")
    make = getattr(dictionary, "tokenizer", None) or dictionary.create  # 0.7 renamed create()
    return make(mode=SplitMode.C)


@dataclass(frozen=True)
class Entry:
    """Something the matcher can return: a topic, or an FAQ of a benchmark."""

    id: str
    phrasings: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    answer: str = ""


@dataclass(frozen=True)
class Match:
    id: str
    score: float  # ranking score, unbounded
    confidence: float  # 0-100: calibrated ranking score, see Matcher.confidence_of
    fuzzy: float  # 0-100: best rapidfuzz ratio against one phrasing
    coverage: float = 0.0  # 0-100: share of the question's features (by rarity) this entry has


class Analyzer:
    """Turns a text into weighted features (see module docstring)."""

    def __init__(self, synonyms: Synonyms, use_words: bool = True) -> None:
        self.synonyms = synonyms
        self._tok = _sudachi() if use_words else None

    def surface(self, text: str) -> str:
        """Folded, filler-free, synonym-rewritten text (used for fuzzy matching)."""
        return self.synonyms.rewrite(strip_fillers(fold(text)))

    def features(self, text: str) -> Counter[str]:
        rewritten = self.surface(text)
        feats: Counter[str] = Counter()
        if len(rewritten) == 1:
            feats["b:" + rewritten] += 1
        for i in range(len(rewritten) - 1):
            feats["b:" + rewritten[i : i + 2]] += 1
        for concept in self.synonyms.concepts(rewritten):
            feats["c:" + concept] += 1
        if self._tok is not None:
            for word in self._words(text):
                feats["w:" + word] += 1
        return feats

    def _words(self, text: str) -> Iterable[str]:
        normal = nfkc(text)
        if len(normal) > 2000:  # the tokenizer has an input limit; long texts add nothing useful
            normal = normal[:2000]
        for m in self._tok.tokenize(normal):
            pos = m.part_of_speech()
            if pos[0] not in _CONTENT_POS or pos[1] == "非自立可能" or pos[1] == "数詞":
                continue
            form = m.normalized_form()
            if form in _STOP_WORDS or m.dictionary_form() in _STOP_WORDS:
                continue
            word = kata_to_hira(form)
            word = self.synonyms.rewrite(fold(word)) or word
            if len(word) >= 1:
                yield word


@dataclass
class _Field:
    """One BM25 field over all entries: term frequencies, lengths, idf."""

    docs: list[Counter[str]]
    k1: float = 1.2
    b: float = 0.4
    df: Counter[str] = field(default_factory=Counter)
    avglen: float = 1.0

    def __post_init__(self) -> None:
        for doc in self.docs:
            self.df.update(doc.keys())
        lengths = [sum(d.values()) for d in self.docs] or [1]
        self.avglen = max(1.0, sum(lengths) / len(lengths))
        self._norm = [self.k1 * (1 - self.b + self.b * n / self.avglen) for n in lengths]
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for i, doc in enumerate(self.docs):
            for term, tf in doc.items():
                self._postings.setdefault(term, []).append((i, tf))

    def idf(self, term: str) -> float:
        n = len(self.docs)
        df = self.df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query: Counter[str], weights: dict[str, float]) -> dict[int, float]:
        out: dict[int, float] = {}
        for term, qtf in query.items():
            postings = self._postings.get(term)
            if not postings:
                continue
            w = self.idf(term) * weights[term[0]] * (1 + math.log(qtf))
            for i, tf in postings:
                out[i] = out.get(i, 0.0) + w * tf * (self.k1 + 1) / (tf + self._norm[i])
        return out


class Matcher:
    """BM25 + concepts + rapidfuzz over a fixed set of entries.

    Args:
        entries: what can be returned.
        synonyms: the synonym table used on both sides.
        answer_weight: weight of the answer field against the phrasing field.
        fuzzy_weight: weight of the best whole-phrasing rapidfuzz ratio.
        use_words: use SudachiPy word features (falls back to bigrams only).
        score_scale: the ranking score at which confidence reaches 63; the bot
            answers from confidence 50, i.e. a score of ``score_scale * ln 2``.
            Measured on shared/eval/questions.jsonl: every correctly ranked
            in-scope question scored above 29 and out-of-scope ones below 27.
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        synonyms: Synonyms,
        *,
        answer_weight: float = 0.3,
        fuzzy_weight: float = 2.0,
        use_words: bool = True,
        score_scale: float = 40.0,
    ) -> None:
        self.score_scale = score_scale
        self.entries = list(entries)
        self.analyzer = Analyzer(synonyms, use_words=use_words)
        self.answer_weight = answer_weight
        self.fuzzy_weight = fuzzy_weight
        strong: list[Counter[str]] = []
        self._surfaces: list[list[str]] = []
        for e in self.entries:
            doc: Counter[str] = Counter()
            for p in e.phrasings:
                doc.update(self.analyzer.features(p))
            for k in e.keywords:
                kf = self.analyzer.features(k)
                doc.update(kf)
                doc.update(kf)  # keywords count twice: they are what makes the entry distinct
            strong.append(doc)
            self._surfaces.append([s for s in (self.analyzer.surface(p) for p in e.phrasings) if s])
        self._strong = _Field(strong, b=0.3)
        self._weak = _Field([self.analyzer.features(e.answer) for e in self.entries], b=0.5)
        self._strong_sets = [set(d) for d in strong]
        self._weak_sets = [set(d) for d in self._weak.docs]
        self._max_idf = math.log(1 + (len(self.entries) + 0.5) / 0.5)

    def rank(self, text: str, limit: int = 5) -> list[Match]:
        """Best entries for ``text``, best first (empty when nothing matches at all)."""
        query = self.analyzer.features(text)
        if not query:
            return []
        s1 = self._strong.scores(query, FEATURE_WEIGHTS)
        s2 = self._weak.scores(query, FEATURE_WEIGHTS)
        combined: dict[int, float] = {}
        for i, v in s1.items():
            combined[i] = v
        for i, v in s2.items():
            combined[i] = combined.get(i, 0.0) + self.answer_weight * v
        if not combined:
            return []
        surface = self.analyzer.surface(text)
        # Fuzzy bonus only for the leading candidates: cheap, and enough to fix near-spellings.
        shortlist = sorted(combined, key=combined.get, reverse=True)[: max(limit * 3, 15)]
        top = combined[shortlist[0]] or 1.0
        results = []
        for i in shortlist:
            fz = max((fuzz.ratio(surface, s) for s in self._surfaces[i]), default=0.0) if surface else 0.0
            score = combined[i] + self.fuzzy_weight * top * max(0.0, fz - 50) / 50
            results.append(Match(self.entries[i].id, score, self.confidence_of(score), fz, self._coverage(query, i)))
        results.sort(key=lambda m: m.score, reverse=True)
        return results[:limit]

    def confidence_of(self, score: float) -> float:
        """Map an unbounded ranking score to 0-100 (monotonic; 50 at ``score_scale * ln 2``)."""
        return round(100.0 * (1.0 - math.exp(-max(score, 0.0) / self.score_scale)), 1)

    def _coverage(self, query: Counter[str], i: int) -> float:
        total = covered = 0.0
        for term, qtf in query.items():
            w = FEATURE_WEIGHTS[term[0]] * (self._strong.idf(term) if term in self._strong.df else self._max_idf)
            total += w
            if term in self._strong_sets[i]:
                covered += w
            elif term in self._weak_sets[i]:
                covered += 0.5 * w
        return round(100.0 * covered / total, 1) if total else 0.0
