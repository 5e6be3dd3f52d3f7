"""Ranks knowledge entries for a question: BM25 over several kinds of features.

A text becomes a bag of features (see ``Analyzer``):

* ``b:`` character bigrams of the folded, synonym-rewritten text. They need no
  dictionary and survive typos and unknown words.
* ``k:`` single kanji: a weak partial match between compounds that share a
  kanji (補助 / 補助金 / 助成金, 虫 / 害虫).
* ``w:`` content words from SudachiPy mode C (normalised form, so 出せ→出す,
  子ども→子供), when the tokenizer is available. They keep words apart that
  bigrams blur.
* ``a:`` every content word once more as its mode A units (国民健康保険料 →
  国民, 健康, 保険, 料; ごみ → ごみ), so that a compound also matches its
  parts and its longer relatives (粗大ごみ meets ごみ).
* ``c:`` concepts: the canonical form of every synonym group the text names
  (UC, かいようせいだいちょうえん and 潰瘍性大腸炎 are one concept).

Each entry has a strong field (title, phrasings, keywords) and a weak field
(the answer), each with its own BM25 saturation and length normalisation; the
score is their weighted sum plus a rapidfuzz bonus (a share of the best
candidate's score) for whole-text likeness to a single phrasing. The
confidence (0–100) is the score mapped through ``score_scale``: the bot uses
it to decide whether to answer or to admit it is not sure. ``coverage`` says
how much of what the user wrote, weighted by rarity, an entry has.

Pure and in-process: build once, then ``rank`` is read-only and thread-safe.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz

from nlp.normalize import Synonyms, fold, kata_to_hira, nfkc, strip_fillers
from nlp.respell import Respeller
from nlp.text import CHUNK, Text, kana_share, tokenizer

# Parts of speech whose words carry meaning for retrieval.
_CONTENT_POS = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "接頭辞"}
# Very common verbs/nouns that say nothing about the topic.
_STOP_WORDS = {
    "する",
    "為る",
    "いる",
    "居る",
    "ある",
    "有る",
    "なる",
    "成る",
    "できる",
    "出来る",
    "れる",
    "られる",
    "こと",
    "事",
    "もの",
    "物",
    "よう",
    "様",
    "ところ",
    "所",
    "とき",
    "時",
    "方",
    "人",
    "ため",
    "為",
    "いう",
    "言う",
    "思う",
    "良い",
    "いい",
    "くれる",
    "もらう",
    "貰う",
    "いく",
    "行く",
    "くる",
    "来る",
    "これ",
    "それ",
    "あれ",
    "どれ",
    "何",
    "なに",
    "どう",
    "どこ",
    "いつ",
    "誰",
    "みる",
    "見る",
    "ござる",
}

# Weight of each kind of feature (see module docstring). Measured on the bot's question set
# (shared/eval/questions.jsonl) and on a public FAQ benchmark (bench/localgovfaq.py).
FEATURE_WEIGHTS = {"b": 0.45, "k": 0.45, "w": 1.2, "a": 2.1, "c": 1.2, "r": 0.9}
# A question written (almost) all in kana is also matched by its reading against the phrasings'
# readings (a field of its own, so that questions with kanji rank exactly as without it).
KANA_QUESTION = 0.85
# IDF is raised to this power: rare words count a little more than in plain BM25.
IDF_POWER = 1.15
# BM25 per field: the phrasings (short, several per entry) and the answer (long).
STRONG_K1, STRONG_B = 1.7, 0.95
WEAK_K1, WEAK_B = 1.6, 0.5
# Weight of the answer field. 0.3 suits entries with many phrasings (the bot's topics: a title,
# ~8 phrasings and keywords), whose answers also name neighbouring schemes (障害年金, 介護保険) that
# the bot must not claim to answer. A collection with one phrasing per entry leans on its answers
# far more: bench/localgovfaq.py passes 1.5 (SR@1 0.51; 0.43 at 0.3).
ANSWER_WEIGHT = 0.3
FUZZY_WEIGHT = 0.6
# Confidence of a question that is, folded, one of an entry's phrasings.
EXACT_CONFIDENCE = 90.0


@lru_cache(maxsize=1)
def _mode_a() -> Any:
    """SplitMode.A (sub-words of a compound), or None when SudachiPy is not installed."""
    try:
        from sudachipy import SplitMode
    except ImportError:  # pragma: no cover
        return None
    return SplitMode.A


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
        self._words_on = use_words and tokenizer() is not None

    def surface(self, text: Text) -> str:
        """Folded, filler-free, synonym-rewritten text (used for fuzzy matching)."""
        return self.synonyms.rewrite(text.plain)

    def features(self, text: Text, surface: str | None = None) -> Counter[str]:
        """The features of ``text``; ``surface`` is its ``surface`` when the caller has it already."""
        rewritten = self.surface(text) if surface is None else surface
        feats: Counter[str] = Counter()
        if len(rewritten) == 1:
            feats["b:" + rewritten] += 1
        for i in range(len(rewritten) - 1):
            feats["b:" + rewritten[i : i + 2]] += 1
        for ch in rewritten:
            if "\u4e00" <= ch <= "\u9fff":
                feats["k:" + ch] += 1
        for concept in self.synonyms.concepts(rewritten):
            feats["c:" + concept] += 1
        if self._words_on:
            for feature in self._words(text.raw):
                feats[feature] += 1
        return feats

    def reading_features(self, text: Text) -> Counter[str]:
        """``r:`` character bigrams of the text as read aloud: 「でーたけして」 meets 「データを消して」."""
        read = strip_fillers(text.reading)
        return Counter("r:" + read[i : i + 2] for i in range(len(read) - 1))

    def _word(self, form: str) -> str:
        word = kata_to_hira(form)
        return self.synonyms.rewrite(fold(word)) or word

    def _words(self, text: str) -> Iterable[str]:
        """``w:`` content words (mode C) and ``a:`` their mode A units."""
        normal = nfkc(text)
        split_a = _mode_a()
        for start in range(0, len(normal), CHUNK):
            for m in tokenizer().tokenize(normal[start : start + CHUNK]):
                pos = m.part_of_speech()
                if pos[0] not in _CONTENT_POS or pos[1] == "非自立可能" or pos[1] == "数詞":
                    continue
                form = m.normalized_form()
                if form in _STOP_WORDS or m.dictionary_form() in _STOP_WORDS:
                    continue
                word = self._word(form)
                if not word:
                    continue
                yield "w:" + word
                # Every content word is also spelled out as its mode A units, so that a part of a
                # compound (粗大ごみ → ごみ) meets the same word standing alone in another text.
                parts = (m.split(split_a) if split_a is not None else None) or (m,)
                seen: set[str] = set()
                for part in parts:
                    ppos = part.part_of_speech()
                    if ppos[0] not in _CONTENT_POS or ppos[1] == "数詞" or part.normalized_form() in _STOP_WORDS:
                        continue
                    sub = self._word(part.normalized_form())
                    if sub and sub not in seen:
                        seen.add(sub)
                        yield "a:" + sub


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
        norm = [self.k1 * (1 - self.b + self.b * n / self.avglen) for n in lengths]
        # Postings hold the saturated, length-normalised term frequency: ranking only multiplies by weights.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, doc in enumerate(self.docs):
            for term, tf in doc.items():
                self._postings.setdefault(term, []).append((i, tf * (self.k1 + 1) / (tf + norm[i])))
        n = len(self.docs)
        self._idf: dict[str, float] = {
            t: math.log(1 + (n - df + 0.5) / (df + 0.5)) ** IDF_POWER for t, df in self.df.items()
        }
        self._idf_unseen: float = math.log(1 + (n + 0.5) / 0.5) ** IDF_POWER

    def idf(self, term: str) -> float:
        idf = self._idf.get(term)
        return self._idf_unseen if idf is None else idf

    def scores(self, query: Counter[str], weights: dict[str, float]) -> dict[int, float]:
        out: dict[int, float] = {}
        get = out.get
        for term, qtf in query.items():
            postings = self._postings.get(term)
            if not postings:
                continue
            w = self._idf[term] * weights[term[0]] * (1 + math.log(qtf))
            for i, sat in postings:
                out[i] = get(i, 0.0) + w * sat
        return out


class Matcher:
    """BM25 + concepts + rapidfuzz over a fixed set of entries.

    Args:
        entries: what can be returned.
        synonyms: the synonym table used on both sides.
        answer_weight: weight of the answer field's BM25 against the phrasing field's.
        fuzzy_weight: bonus, as a share of the best candidate's score, for a
            whole-phrasing rapidfuzz ratio of 100 (only the shortlist gets it).
        use_words: use SudachiPy word features (falls back to bigrams only).
        score_scale: the ranking score at which confidence reaches 63; the bot
            answers from confidence 50, i.e. a score of ``score_scale * ln 2``.
            Measured on shared/eval/questions.jsonl: every correctly ranked
            in-scope question scores above 51 (confidence 50 at 45); the
            out-of-scope ones that name another service (障害年金, 介護保険 …)
            score at most 80, below the redirect threshold (confidence 75 at 90).
            The other out-of-scope questions are caught by handlers.safety.
        answer_b: BM25 length normalisation of the answer field (a collection of long, uneven
            answers may want more; bench/localgovfaq.py --fit chooses it on half of its queries).
        coverage_floor: below this coverage (0-100) the confidence is scaled down in
            proportion. Measured on shared/eval and bench/heldout-questions.jsonl: 30
            loses no in-scope answer and holds more out-of-scope questions (held-out 25 → 27 of 30).
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        synonyms: Synonyms,
        *,
        answer_weight: float = ANSWER_WEIGHT,
        fuzzy_weight: float = FUZZY_WEIGHT,
        use_words: bool = True,
        score_scale: float = 65.0,
        coverage_floor: float = 30.0,
        answer_b: float = WEAK_B,
        respell: Iterable[str] | None = None,
    ) -> None:
        self.score_scale = score_scale
        self.coverage_floor = coverage_floor
        self.entries = list(entries)
        self.analyzer = Analyzer(synonyms, use_words=use_words)
        self.answer_weight = answer_weight
        self.fuzzy_weight = fuzzy_weight
        strong: list[Counter[str]] = []
        self._surfaces: list[list[str]] = []
        for e in self.entries:
            doc: Counter[str] = Counter()
            surfaces = [self.analyzer.surface(Text(p)) for p in e.phrasings]
            for p, surface in zip(e.phrasings, surfaces):
                doc.update(self.analyzer.features(Text(p), surface))
            for k in e.keywords:
                kf = self.analyzer.features(Text(k))
                doc.update(kf)
                doc.update(kf)  # keywords count twice: they are what makes the entry distinct
            strong.append(doc)
            self._surfaces.append([s for s in surfaces if s])
        self._strong = _Field(strong, k1=STRONG_K1, b=STRONG_B)
        readings: list[Counter[str]] = []
        if self.analyzer._words_on:
            for e in self.entries:
                rdoc: Counter[str] = Counter()
                for p in (*e.phrasings, *e.keywords):
                    rdoc.update(self.analyzer.reading_features(Text(p)))
                readings.append(rdoc)
        self._reading = _Field(readings, k1=STRONG_K1, b=STRONG_B) if readings else None
        self._reading_sets = [set(d) for d in readings]
        self._weak = _Field([self.analyzer.features(Text(e.answer)) for e in self.entries], k1=WEAK_K1, b=answer_b)
        self._strong_sets = [set(d) for d in strong]
        self._weak_sets = [set(d) for d in self._weak.docs]
        self._respeller = (
            Respeller([*(p for e in self.entries for p in (*e.phrasings, *e.keywords)), *respell])
            if respell is not None and self.analyzer._words_on
            else None
        )

    def rank(self, text: Text | str, limit: int = 5) -> list[Match]:
        """Best entries for ``text``, best first (empty when nothing matches at all).

        A chat turn passes its ``Text`` (folded and read once for the whole turn); a plain string is
        analysed here (the benchmarks, ``nanbyo-bot ask``).
        """
        if isinstance(text, str):
            text = Text(text)
        if self._respeller is not None:
            text = self._respeller.respell(text)
        surface = self.analyzer.surface(text)
        query = self.analyzer.features(text, surface)
        if not query:
            return []
        combined, read_query = self._combined(text, surface, query)
        if not combined:
            return []
        # Fuzzy bonus only for the leading candidates: cheap, and enough to fix near-spellings.
        shortlist = sorted(combined, key=combined.__getitem__, reverse=True)[: max(limit * 3, 15)]
        top = combined[shortlist[0]] or 1.0
        term_weights = {t: FEATURE_WEIGHTS[t[0]] * self._strong.idf(t) for t in query}
        reading_field = self._reading
        read_weights = (
            {t: FEATURE_WEIGHTS["r"] * reading_field.idf(t) for t in read_query}
            if read_query and reading_field is not None
            else {}
        )
        results = [self._match(i, combined[i], top, surface, term_weights, read_weights) for i in shortlist]
        results.sort(key=lambda m: m.score, reverse=True)
        return results[:limit]

    def _combined(self, text: Text, surface: str, query: Counter[str]) -> tuple[dict[int, float], Counter[str]]:
        """Each entry's BM25 score over its fields, and the reading features of a kana question (or none)."""
        s1 = self._strong.scores(query, FEATURE_WEIGHTS)
        s2 = self._weak.scores(query, FEATURE_WEIGHTS)
        combined: dict[int, float] = {}
        for i, v in s1.items():
            combined[i] = v
        for i, v in s2.items():
            combined[i] = combined.get(i, 0.0) + self.answer_weight * v
        read_query: Counter[str] = Counter()
        if self._reading is not None and kana_share(surface) >= KANA_QUESTION:
            read_query = self.analyzer.reading_features(text)
            for i, v in self._reading.scores(read_query, FEATURE_WEIGHTS).items():
                combined[i] = combined.get(i, 0.0) + v
        return combined, read_query

    def _match(
        self,
        i: int,
        bm25: float,
        top: float,
        surface: str,
        term_weights: dict[str, float],
        read_weights: dict[str, float],
    ) -> Match:
        """Entry ``i`` as a match: its score with the fuzzy bonus, its coverage and its confidence."""
        fz = max((fuzz.ratio(surface, s) for s in self._surfaces[i]), default=0.0) if surface else 0.0
        score = bm25 + self.fuzzy_weight * top * fz / 100
        coverage = self._coverage(term_weights, i)
        if read_weights:  # a kana question: how much of what it says aloud the entry says
            coverage = max(coverage, self._reading_coverage(read_weights, i))
        # An entry that covers little of what the user wrote (by rarity) is trusted less, however high
        # its score: this keeps questions about neighbouring services from borrowing a topic's words.
        trust = min(1.0, coverage / self.coverage_floor) if self.coverage_floor else 1.0
        confidence = self.confidence_of(score * trust)
        if fz == 100.0:
            # The question is one of the entry's own phrasings (as folded): however common its
            # words (「いつから助成されますか」), that is a sure answer.
            confidence, score = max(confidence, EXACT_CONFIDENCE), max(score, top * 2)
        return Match(self.entries[i].id, score, confidence, fz, coverage)

    def similarity(self, a: Text | str, b: Text | str) -> float:
        """How alike two texts are (0-100) as this matcher reads them: the weighted share of their
        features (bigrams, words, concepts, each weighted as in ``rank`` and by its rarity among the
        entries) that they have in common. ``nanbyo-bot review`` groups what users asked with it."""
        fa, fb = (set(self.analyzer.features(t if isinstance(t, Text) else Text(t))) for t in (a, b))
        both, either = fa & fb, fa | fb
        if not either:
            return 0.0
        weight = {t: FEATURE_WEIGHTS[t[0]] * self._strong.idf(t) for t in either}
        return round(100.0 * sum(weight[t] for t in both) / sum(weight.values()), 1)

    def confidence_of(self, score: float) -> float:
        """Map an unbounded ranking score to 0-100 (monotonic; 50 at ``score_scale * ln 2``)."""
        return round(100.0 * (1.0 - math.exp(-max(score, 0.0) / self.score_scale)), 1)

    def _reading_coverage(self, weights: dict[str, float], i: int) -> float:
        total = sum(weights.values())
        covered = sum(w for t, w in weights.items() if t in self._reading_sets[i])
        return round(100.0 * covered / total, 1) if total else 0.0

    def _coverage(self, weights: dict[str, float], i: int) -> float:
        """Share (0-100) of the question's feature weight that entry ``i`` has (answer-only: half)."""
        total = covered = 0.0
        strong, weak = self._strong_sets[i], self._weak_sets[i]
        for term, w in weights.items():
            total += w
            if term in strong:
                covered += w
            elif term in weak:
                covered += 0.5 * w
        return round(100.0 * covered / total, 1) if total else 0.0
