"""The matching engine on a public benchmark: localgovFAQ (Amagasaki City FAQ, 1,786 QA, 749 queries).

Loads the collection into the same ``Matcher`` the bot uses (each FAQ question is
a phrasing, its answer the weak answer field), ranks every query and prints
SR@1, SR@5 and MRR@10 (a hit is any labelled FAQ, grade 1 or 2) and the ranking
time per question (index build time is printed separately).

The data is not part of this repository (no licence to redistribute it): it is
read from ``../shared/peer-data/localgovfaq`` or ``--data DIR`` (corpus.json,
queries.json, qrels.json). Without it the script says so and exits 0.

    .venv/bin/python bench/localgovfaq.py                 # all 749 queries
    .venv/bin/python bench/localgovfaq.py --limit 40      # a quick slice
    .venv/bin/python bench/localgovfaq.py --no-synonyms   # without knowledge/synonyms
    .venv/bin/python bench/localgovfaq.py --fit           # the honest figure (see below)

The answer weight suits a collection with one phrasing per FAQ better than the bot's own 0.3.
With ``--fit`` these per-corpus weights are chosen on one half of the queries (every other query, by id) and
reported on the other half, then the other way round (two-fold cross-validation): no query is ranked by
weights fitted on it, and the figure covers every query rather than one arbitrary half.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO))

from nlp.matcher import FUZZY_WEIGHT, WEAK_B, Entry, Matcher  # noqa: E402
from nlp.normalize import Synonyms  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "peer-data" / "localgovfaq"
DEFAULT_OUT = REPO / "bench" / "out" / "localgovfaq-run.json"
FILES = ("corpus.json", "queries.json", "qrels.json")
DEPTH = 10
# Each FAQ has a single phrasing (its question); its answer carries most of the words a user's
# query shares with it, so the answer field weighs as much as the question here (the bot's topics,
# with ~9 phrasings each, use the Matcher default of 0.3). See nlp/matcher.py.
FAQ_ANSWER_WEIGHT = 1.5
# Per-corpus weights tried by --fit on the development half: the answer field's weight and length
# normalisation, and the share of the fuzzy bonus.
FIT_WEIGHTS = (0.7, 1.0, 1.5, 2.0)
FIT_ANSWER_B = (0.5, 0.75)
FIT_FUZZY = (0.3, 0.6)


def load_entries(corpus: dict[str, str]) -> list[Entry]:
    """One entry per FAQ: the question as the only phrasing, the answer as the answer field."""
    entries = []
    for doc_id, text in corpus.items():
        question, _, answer = text.partition("\nAnswer: ")
        question = question.removeprefix("Question: ").strip()
        answer = answer.replace("＜改＞", "\n").strip()
        entries.append(Entry(str(doc_id), (question,), (), answer))
    return entries


def project_synonyms() -> Synonyms:
    """The synonym groups the bot uses (knowledge/synonyms), built as bot.bootstrap does."""
    from knowledge import load_knowledge

    kb = load_knowledge()
    return Synonyms((g.canonical, g.variants) for g in kb.synonyms)


def metrics(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    sr1 = sr5 = rr = 0.0
    for qid, ranking in run.items():
        relevant = {d for d, grade in qrels.get(qid, {}).items() if grade > 0}
        first = next((k for k, d in enumerate(ranking[:DEPTH], 1) if d in relevant), None)
        if first is not None:
            sr1 += first == 1
            sr5 += first <= 5
            rr += 1.0 / first
    n = len(run) or 1
    return {"SR@1": sr1 / n, "SR@5": sr5 / n, "MRR@10": rr / n}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


def fit(
    entries: list[Entry], synonyms: Synonyms, queries: dict[str, str], qrels: dict[str, dict[str, int]], dev: list[str]
) -> tuple[float, float, float]:
    """The per-corpus weights (answer b, answer weight, fuzzy) with the best SR@1 on ``dev``."""
    scores = {}
    for b in FIT_ANSWER_B:
        m_dev = Matcher(entries, synonyms, answer_b=b)
        for weight in FIT_WEIGHTS:
            for fuzzy in FIT_FUZZY:
                m_dev.answer_weight, m_dev.fuzzy_weight = weight, fuzzy
                run = {q: [x.id for x in m_dev.rank(queries[q], limit=DEPTH)] for q in dev}
                scores[(b, weight, fuzzy)] = metrics(run, qrels)["SR@1"]
    return max(scores, key=lambda k: scores[k])


def cross_fit(
    entries: list[Entry],
    synonyms: Synonyms,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    query_ids: list[str],
) -> int:
    """Two-fold: fit on each half of the queries, report the other; every figure is on unseen queries."""
    halves = (query_ids[0::2], query_ids[1::2])
    run: dict[str, list[str]] = {}
    for n, (dev, test) in enumerate((halves, halves[::-1]), 1):
        b, weight, fuzzy = fit(entries, synonyms, queries, qrels, dev)
        matcher = Matcher(entries, synonyms, answer_weight=weight, fuzzy_weight=fuzzy, answer_b=b)
        fold = {q: [x.id for x in matcher.rank(queries[q], limit=DEPTH)] for q in test}
        run.update(fold)
        m = metrics(fold, qrels)
        print(
            f"fold {n}: fitted on {len(dev)} queries (answer b {b}, answer weight {weight}, fuzzy {fuzzy}); "
            f"on the other {len(test)}: SR@1 {m['SR@1']:.3f}   SR@5 {m['SR@5']:.3f}   MRR@10 {m['MRR@10']:.3f}"
        )
    m = metrics(run, qrels)
    print(
        f"both folds ({len(run)} queries, each ranked by weights fitted without it): "
        f"SR@1 {m['SR@1']:.3f}   SR@5 {m['SR@5']:.3f}   MRR@10 {m['MRR@10']:.3f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder with {', '.join(FILES)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the ranking (JSON)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument("--no-synonyms", action="store_true", help="do not use knowledge/synonyms")
    parser.add_argument(
        "--answer-weight",
        type=float,
        default=FAQ_ANSWER_WEIGHT,
        help=f"weight of the answer field (default {FAQ_ANSWER_WEIGHT})",
    )
    parser.add_argument("--misses", action="store_true", help="print the queries whose top-1 is wrong")
    parser.add_argument(
        "--fit", action="store_true", help="choose the answer weight on half of the queries, report the other half"
    )
    args = parser.parse_args(argv)

    missing = [f for f in FILES if not (args.data / f).is_file()]
    if missing:
        print(f"localgovFAQ data not found in {args.data} (missing {', '.join(missing)}); nothing to do.")
        return 0
    corpus = json.loads((args.data / "corpus.json").read_text(encoding="utf-8"))
    queries = json.loads((args.data / "queries.json").read_text(encoding="utf-8"))
    qrels = json.loads((args.data / "qrels.json").read_text(encoding="utf-8"))
    query_ids = sorted(queries, key=lambda q: (len(q), q))
    if args.limit is not None:
        query_ids = query_ids[: max(0, args.limit)]

    synonyms = Synonyms([]) if args.no_synonyms else project_synonyms()
    entries = load_entries(corpus)
    if args.fit:
        return cross_fit(entries, synonyms, queries, qrels, query_ids)
    answer_b, fuzzy_weight = WEAK_B, FUZZY_WEIGHT
    t0 = time.perf_counter()
    matcher = Matcher(entries, synonyms, answer_weight=args.answer_weight, fuzzy_weight=fuzzy_weight, answer_b=answer_b)
    build_s = time.perf_counter() - t0
    matcher.rank("ウォームアップ", limit=DEPTH)  # first call loads lazy tables; not a question

    run: dict[str, list[str]] = {}
    times: list[float] = []
    for qid in query_ids:
        t = time.perf_counter()
        matches = matcher.rank(queries[qid], limit=DEPTH)
        times.append((time.perf_counter() - t) * 1000)
        run[qid] = [m.id for m in matches]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(run, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    if args.misses:
        by_id = {e.id: e for e in entries}
        for qid in query_ids:
            relevant = qrels.get(qid, {})
            if not run[qid] or run[qid][0] not in relevant:
                got = by_id[run[qid][0]].phrasings[0] if run[qid] else "-"
                want = " | ".join(by_id[d].phrasings[0] for d in relevant)
                print(f"miss {qid}: {queries[qid]}\n    got  {got}\n    want {want}")

    m = metrics(run, qrels)
    times.sort()
    print(
        f"localgovFAQ: {len(entries)} FAQ entries, {len(run)} queries, synonyms {'off' if args.no_synonyms else 'on'}, "
        f"answer weight {args.answer_weight}"
    )
    print(f"index build: {build_s:.2f} s")
    print(f"SR@1 {m['SR@1']:.3f}   SR@5 {m['SR@5']:.3f}   MRR@10 {m['MRR@10']:.3f}")
    print(
        f"ranking per question: p50 {statistics.median(times) if times else 0.0:.2f} ms, "
        f"p99 {percentile(times, 0.99):.2f} ms"
    )
    print(f"ranking written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
