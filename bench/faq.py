"""Benchmark: FAQ ranking time per question, with today's knowledge base and one 50 times larger.

What it measures: ``handlers.faq.consult`` in this process (safety check, municipality
lookup, ``Matcher.rank``, rendering the answer) — exactly what a chat turn runs for a
question — on every question of ``../shared/eval/questions.jsonl`` and, when present,
``bench/heldout-questions.jsonl``. For each knowledge base it prints the index build time,
the resident set size (VmRSS) after building, the p50, p99 and max latency per question,
and, as a sanity figure, how many in-scope questions still get their labelled topic first
and how many out-of-scope ones are still held back.

The larger base keeps the real topics and adds synthetic ones, 50 times as many topics in
all: each is built from a real topic by recombining pieces of its phrasings, title,
keywords and answer with pieces of two other topics, plus random noise characters drawn
from the base's own text (``random.Random(--seed)``, so every run builds the same base).
They look like near-duplicates and neighbours of real topics, the hard case for a ranker:
expect the accuracy to drop there, since nothing tells a synthetic topic from a real one.

What it is not: an evaluation of answer quality (``nanbyo-bot eval`` is) or of the chat
turn around the FAQ (database, router; see bench/http_load.py).

    .venv/bin/python bench/faq.py            # 5 timed runs per question, both bases
    .venv/bin/python bench/faq.py --quick    # 1 run per question, 60 questions spread over the files (CI)
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ would be first on sys.path and an http.py would shadow the standard library's http.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from bot.bootstrap import build_matcher  # noqa: E402
from handlers.faq import consult  # noqa: E402
from knowledge import KnowledgeBase, load_knowledge  # noqa: E402
from knowledge.models import Topic  # noqa: E402
from nlp.matcher import Matcher  # noqa: E402

QUESTION_FILES = (REPO.parent / "shared" / "eval" / "questions.jsonl", REPO / "bench" / "heldout-questions.jsonl")
SCALE = 50
SYNTHETIC_MARK = "-syn"


def rss_mb() -> float:
    """Current resident set size in MiB (VmRSS), or the peak from getrusage where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Question:
    text: str
    topic: str | None  # None: out of scope, the bot should not answer
    source: str


def load_questions(files: tuple[Path, ...] = QUESTION_FILES) -> list[Question]:
    out = []
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append(Question(row["q"], row.get("topic"), path.name))
    return out


# --- the synthetic knowledge base ------------------------------------------------------------------------


def _chunks(text: str, rng: random.Random) -> list[str]:
    """Cut text into pieces of 2 to 5 characters (about a word's length in Japanese)."""
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(2, 5)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def _recombine(base: str, others: list[str], alphabet: str, rng: random.Random) -> str:
    """``base`` with about a third of its pieces taken from ``others``, some swapped, some noise added."""
    donor = [c for o in others for c in _chunks(o, rng)] or [base]
    out = []
    for piece in _chunks(base, rng):
        r = rng.random()
        if r < 0.3:
            out.append(rng.choice(donor))
        elif r < 0.4:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))))
        else:
            out.append(piece)
    for i in range(0, len(out) - 1, 4):
        if rng.random() < 0.3:
            out[i], out[i + 1] = out[i + 1], out[i]
    return "".join(out)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=。)|\n", text) if s.strip()]


def synthetic_topic(n: int, base: Topic, others: list[Topic], alphabet: str, rng: random.Random) -> Topic:
    """One synthetic topic built from ``base`` and pieces of ``others`` (see module docstring)."""
    other_phrasings = [p for o in others for p in o.phrasings]
    phrasings = [
        _recombine(rng.choice(base.phrasings), rng.sample(other_phrasings, 2), alphabet, rng) for _ in base.phrasings
    ]
    keywords = rng.sample(base.keywords, min(len(base.keywords), rng.randint(0, 3)))
    keywords += [k for o in others for k in rng.sample(o.keywords, min(len(o.keywords), 1))]
    keywords.append("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 4))))
    sentences = rng.sample(_sentences(base.answer), max(1, len(_sentences(base.answer)) // 2))
    sentences += [rng.choice(_sentences(o.answer)) for o in others]
    rng.shuffle(sentences)
    # model_copy skips validation: sources, related and checked stay valid, copied from the base.
    return base.model_copy(
        update={
            "id": f"{base.id}{SYNTHETIC_MARK}{n:05d}",
            "title": _recombine(base.title, [o.title for o in others], alphabet, rng),
            "phrasings": phrasings,
            "keywords": keywords,
            "answer": "\n".join(sentences),
            "must": [],
        }
    )


def scaled_knowledge(kb: KnowledgeBase, scale: int, seed: int) -> KnowledgeBase:
    """``kb`` with synthetic topics added until it has ``scale`` times as many topics."""
    rng = random.Random(seed)
    real = list(kb.topics.values())
    alphabet = "".join(sorted({ch for t in real for ch in t.title + "".join(t.phrasings) if not ch.isspace()}))
    topics = dict(kb.topics)
    for n in range(len(real) * (scale - 1)):
        base = real[n % len(real)]
        others = rng.sample([t for t in real if t.id != base.id], 2)
        topic = synthetic_topic(n, base, others, alphabet, rng)
        topics[topic.id] = topic
    return dataclasses.replace(kb, topics=topics)


# --- measuring ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    name: str
    topics: int
    build_seconds: float
    rss_after_build_mb: float
    latencies_ms: tuple[float, ...]  # one per question: the median of its runs, sorted
    top1: int
    in_scope: int
    held: int
    out_scope: int
    synthetic_first: int

    def pct(self, q: float) -> float:
        values = self.latencies_ms
        k = min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))  # nearest rank
        return values[k]


def measure(name: str, kb: KnowledgeBase, questions: list[Question], runs: int) -> Figures:
    started = time.perf_counter()
    matcher: Matcher = build_matcher(kb)
    build_seconds = time.perf_counter() - started
    rss = rss_mb()
    for q in questions[:10]:  # warm-up: caches of the tokenizer and the office index
        consult(kb, matcher, q.text)
    latencies, top1, held, synthetic_first = [], 0, 0, 0
    for q in questions:
        times = []
        result = None
        for _ in range(runs):
            t0 = time.perf_counter()
            result = consult(kb, matcher, q.text)
            times.append((time.perf_counter() - t0) * 1000)
        latencies.append(statistics.median(times))
        assert result is not None
        first = result.candidates[0].id if result.candidates else None
        if first and SYNTHETIC_MARK in first:
            synthetic_first += 1
        if q.topic is None:
            held += result.topic is None
        else:
            top1 += result.topic == q.topic
    in_scope = sum(1 for q in questions if q.topic is not None)
    return Figures(
        name,
        len(kb.topics),
        build_seconds,
        rss,
        tuple(sorted(latencies)),
        top1,
        in_scope,
        held,
        len(questions) - in_scope,
        synthetic_first,
    )


def report(f: Figures) -> str:
    return "\n".join(
        [
            f"{f.name}: {f.topics} topics",
            f"  index build {f.build_seconds:.2f} s, RSS after build {f.rss_after_build_mb:.0f} MiB",
            f"  latency per question ({len(f.latencies_ms)} questions): p50 {f.pct(0.50):.2f} ms, "
            f"p99 {f.pct(0.99):.2f} ms, max {f.latencies_ms[-1]:.2f} ms",
            f"  labelled topic answered first: {f.top1}/{f.in_scope} in scope; out of scope held back: "
            f"{f.held}/{f.out_scope}; a synthetic topic ranked first: {f.synthetic_first}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run per question, 60 questions spread over the files")
    parser.add_argument("--runs", type=int, help="timed runs per question; its median counts (default 5)")
    parser.add_argument(
        "--scale", type=int, default=SCALE, help=f"size of the larger base, times today's (default {SCALE})"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic topics (default 7)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)

    questions = load_questions()
    if not questions:
        print("no question file found: " + ", ".join(str(p) for p in QUESTION_FILES))
        return 0
    if args.quick:
        # Evenly spaced, so that both files and out-of-scope questions are in the quick run too.
        questions = questions[:: max(1, len(questions) // 60)][:60]

    print(
        "FAQ benchmark: handlers.faq.consult in process, "
        f"{len(questions)} questions ({', '.join(sorted({q.source for q in questions}))}), "
        f"median of {runs} run(s) per question; machine: {os.cpu_count()} cores"
    )
    print("  command: " + shlex.join(["python", "bench/faq.py", *(argv if argv is not None else sys.argv[1:])]))
    rss_start = rss_mb()
    started = time.perf_counter()
    kb = load_knowledge()
    print(
        f"knowledge base loaded in {time.perf_counter() - started:.2f} s; RSS {rss_start:.0f} MiB before, "
        f"{rss_mb():.0f} MiB after"
    )

    today = measure("today's knowledge base", kb, questions, runs)
    print(report(today))
    started = time.perf_counter()
    large_kb = scaled_knowledge(kb, args.scale, args.seed)
    print(f"synthetic base generated in {time.perf_counter() - started:.2f} s (seed {args.seed})")
    large = measure(f"{args.scale}x knowledge base", large_kb, questions, runs)
    print(report(large))
    print(
        f"growth x{large.topics / today.topics:.0f} topics: build x{large.build_seconds / today.build_seconds:.1f}, "
        f"p50 x{large.pct(0.5) / today.pct(0.5):.1f}, p99 x{large.pct(0.99) / today.pct(0.99):.1f}, "
        f"RSS +{large.rss_after_build_mb - today.rss_after_build_mb:.0f} MiB (both indexes held)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
