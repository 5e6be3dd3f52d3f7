"""Benchmark: the time of a whole chat turn, as the core runs it, conversation context included.

What it measures: ``Bot.handle`` on a real SQLite file (claim the event, safety, the flood window,
load and save the state, the route table, the FAQ with the conversation's context, the feedback
buttons, the commit): every question of ``bench/fresh-questions.jsonl`` and
``bench/heldout-questions.jsonl`` as a first message, and every two-turn conversation of
``bench/fresh-conversations.jsonl`` (the follow-up is read in the light of the first, which may mean
a second and third reading of it). Each message is sent by its own user, so no flood limit and no
dialog gets in the way. It prints p50, p99 and max per turn, first messages and follow-ups apart.

What it is not: HTTP, the queue or a platform (``bench/http_load.py``), or the ranking alone
(``bench/faq.py``).

    .venv/bin/python bench/turn_time.py            # 3 rounds
    .venv/bin/python bench/turn_time.py --quick    # 1 round (CI)
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from bot.bootstrap import build_bot  # noqa: E402
from bot.config import Settings  # noqa: E402
from handlers.messages import IncomingMessage  # noqa: E402

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)


def _lines(name: str) -> list[dict]:
    path = _HERE / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _timed(bot, user: str, text: str) -> float:
    start = time.perf_counter()
    bot.handle(IncomingMessage(channel="console", user=user, text=text))
    return (time.perf_counter() - start) * 1000


def _figures(label: str, times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, max(0, round(0.99 * len(times)) - 1))]
    return (
        f"{label}: {len(times)} turns, p50 {statistics.median(times):.2f} ms, p99 {p99:.2f} ms, max {times[-1]:.2f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    questions = [q["q"] for name in ("fresh-questions.jsonl", "heldout-questions.jsonl") for q in _lines(name)]
    conversations = [c["turns"] for c in _lines("fresh-conversations.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        bot = build_bot(Settings(database_url=f"sqlite:///{tmp}/bench.db"), clock=lambda: NOW)
        bot.handle(IncomingMessage(channel="console", user="warm-up", text="受給者証の更新"))
        first, follow = [], []
        for r in range(rounds):
            for i, q in enumerate(questions):
                first.append(_timed(bot, f"q{r}-{i}", q))
            for i, (a, b) in enumerate(conversations):
                first.append(_timed(bot, f"c{r}-{i}", a))
                follow.append(_timed(bot, f"c{r}-{i}", b))
    print(_figures("first messages", first))
    print(_figures("follow-ups (read in context)", follow))
    print(_figures("all turns", first + follow))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
