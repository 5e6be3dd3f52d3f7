"""Benchmark: the emergency and crisis detector's time per message.

What it measures: ``handlers.safety.detect`` on a fresh ``nlp.text.Text`` for each message, so
that the time includes cutting the message into words with SudachiPy (as a chat turn does once,
for the detector and the matcher both), over every message of the safety files in ``bench/`` and
the ordinary corpora of ``nanbyo-bot eval --safety`` (generated patient sentences, the knowledge
base's examples, localgovFAQ when ``../shared`` is beside the checkout). Prints p50, p99 and max
in milliseconds, and the same for messages of 10,000 characters.

What it is not: a measure of the whole turn (bench/faq.py and bench/http_load.py are).

    .venv/bin/python bench/safety.py           # every message, 3 runs each (the best counts)
    .venv/bin/python bench/safety.py --quick   # 500 messages, one run (CI)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bot.bootstrap import knowledge_and_matcher
from bot.evaluation import ordinary_corpora
from handlers.safety import detect
from nlp import text as nlp_text
from nlp.text import Text

HERE = Path(__file__).resolve().parent


def _messages(kb: object) -> list[str]:
    texts: list[str] = []
    for path in sorted(HERE.glob("safety-*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for corpus in ordinary_corpora(kb, HERE.parent.parent / "shared" / "peer-data" / "localgovfaq").values():  # type: ignore[arg-type]
        texts += corpus
    return texts


def _time(kb: object, texts: list[str], runs: int) -> list[float]:
    times = []
    for t in texts:
        best = float("inf")
        for _ in range(runs):
            # The caches of readings and words would make a repeat free: clear them, as a new message is.
            getattr(nlp_text, "words", nlp_text.reading).cache_clear()
            nlp_text.reading.cache_clear()
            start = time.perf_counter()
            detect(kb, Text(t))  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - start)
        times.append(best * 1000)
    return sorted(times)


def _report(label: str, times: list[float]) -> None:
    p99 = times[min(len(times) - 1, max(0, round(0.99 * len(times)) - 1))]
    print(
        f"{label}: {len(times)} messages, p50 {statistics.median(times):.3f} ms, "
        f"p99 {p99:.3f} ms, max {times[-1]:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 messages, one run each")
    args = parser.parse_args()
    kb, _ = knowledge_and_matcher("gunma")
    texts = _messages(kb)
    if args.quick:
        texts = texts[:: max(1, len(texts) // 500)][:500]
    detect(kb, Text("はじめの一回"))  # load the dictionary and build the detector outside the timing
    _report("detector per message", _time(kb, texts, 1 if args.quick else 3))
    long = ["胸が苦しい。" * 1666, "申請書を郵送したい。" * 1000, "あ" * 10000]
    _report("10,000 characters", _time(kb, long, 1))


if __name__ == "__main__":
    main()
