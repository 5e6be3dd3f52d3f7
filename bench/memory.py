"""Benchmark: resident memory of ``nanbyo-bot serve`` after 10,000 conversations.

What it measures: the VmRSS (and the peak, VmHWM) of the real server, read from
``/proc/<pid>/status``, summed over ``serve``'s processes (one, or uvicorn's supervisor and
its ``--workers``), with their Pss (``smaps_rollup``: pages both map, such as
the Sudachi dictionary file, counted once), at start, after a warm-up, every 1,000
conversations and at the end; then the growth per conversation. A
conversation is one new Slack user sending three signed DM events, each after the previous
one is answered: a question from ``../shared/eval/questions.jsonl``, 「自己負担いくらになるか
知りたい」 and 「いいえ」 — so each leaves an open copay dialog, an event row per turn and a
state row behind (in the database, which is a file: SQLite by default, not counted in RSS).

Why the real server and not ``Bot.handle`` in process: what could grow per user lives in the
whole stack — bolt's listener pool, the HTTP server's threads, the Web API client, SQLAlchemy's
pool, logging — and RSS of a process that only runs ``Bot.handle`` would also count the
load generator.

How it drives the server: users in waves of ``--wave`` (default 100), sent by 16 client
threads; turn 1 of every user of a wave, then wait until every answer reached the fake Web
API (``bench/http_load.py``'s fake, in its own process), then turn 2, then turn 3. The number of
messages each turn produces is computed beforehand with an in-process ``Bot``. A delivery
that fails (a reset connection when the listen queue overflows) is sent again as Slack
does — same event id, ``X-Slack-Retry-Num`` — and counted.

What it is not: a leak detector for the fake or the client (they are other processes), nor
a measure of the database's size.

    .venv/bin/python bench/memory.py                 # 10,000 conversations (30,000 events)
    .venv/bin/python bench/memory.py --quick         # 500 conversations (CI)
    .venv/bin/python bench/memory.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# bench/ would be first on sys.path and an http.py would shadow the standard library's http.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402


def _http_bench() -> ModuleType:
    """bench/http_load.py as a module (its name would clash with the standard library's ``http``)."""
    spec = importlib.util.spec_from_file_location("nanbyo_bench_http", _HERE / "http_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


hb = _http_bench()

SCRIPT_TAIL = ("自己負担いくらになるか知りたい", "いいえ")
TURNS = 1 + len(SCRIPT_TAIL)
CLIENTS = 16
RETRIES = 3  # as Slack: a failed delivery is retried, at most three times
TURN_TIMEOUT = 120.0  # seconds for one wave's turn to be answered


def _one_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            out[name] = int(value.split()[0])
    # Pss: each shared page (the Sudachi dictionary is a memory-mapped file both processes map)
    # counted once across the processes that share it, so the Pss of a tree adds up.
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1])
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's worker processes, when ``serve --workers N``)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except FileNotFoundError:  # the process ended meanwhile
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):  # a thread ended between listing and reading
                continue
            todo.extend(int(c) for c in children)
    return tree


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, Pss and Threads (kB, kB, kB, count) summed over ``pid`` and its children,
    from /proc/<pid>/status and smaps_rollup; ``processes`` says how many there were."""
    total = {"VmRSS": 0, "VmHWM": 0, "Pss": 0, "Threads": 0}
    tree = process_tree(pid)
    for member in tree:
        for name, value in _one_status(member).items():
            total[name] += value
    total["processes"] = len(tree)
    return total


def script(question: str) -> tuple[str, ...]:
    return (question, *SCRIPT_TAIL)


def messages_per_turn(questions: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Messages each turn of each script produces for a new user (in-process ``Bot``, Slack ``render``)."""
    from bot.bootstrap import build_bot
    from bot.channels.slack import render
    from bot.config import Settings
    from handlers.messages import IncomingMessage

    with tempfile.TemporaryDirectory() as tmp:
        bot = build_bot(Settings(database_url=f"sqlite:///{tmp}/reference.db"))
        counts = {}
        for i, question in enumerate(dict.fromkeys(questions)):
            counts[question] = tuple(
                len(render(bot.handle(IncomingMessage(channel="slack", user=f"UREF{i}", text=text))))
                for text in script(question)
            )
        bot.store.engine.dispose()
    return counts


@dataclass
class Driver:
    """Sends the conversations of successive waves of new users to one server."""

    port: int
    fake: Any  # bench/http_load.py's FakeSlack
    questions: Sequence[str]
    per_turn: dict[str, tuple[int, ...]]
    tag: str
    started: int = 0  # users so far
    failures: Counter[str] = field(default_factory=Counter)  # attempts not acked with 200, by status or error
    lost: int = 0  # events still not acked after the retries (their turn is then not counted)

    def send(self, request: Any) -> int | str:
        """Send an event; when it fails, again as Slack retries (same body and event id, X-Slack-Retry-Num)."""
        status: int | str = 0
        for attempt in range(1 + RETRIES):
            if attempt:
                time.sleep(0.2 * attempt)
                request = hb.Signed(
                    request.body,
                    {**request.headers, "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"},
                )
            status, _ = hb.post(self.port, request)
            if status == 200:
                return status
            self.failures[str(status)] += 1
        self.lost += 1
        return status

    def wave(self, size: int, pool: ThreadPoolExecutor) -> None:
        users = [
            (f"U{self.tag}{self.started + k:06d}", self.questions[(self.started + k) % len(self.questions)])
            for k in range(size)
        ]
        self.started += size
        for turn in range(TURNS):
            before = self.fake.stats().posts
            requests = [hb.signed(hb.dm_body(user, script(q)[turn], f"Ev{user}T{turn}", turn)) for user, q in users]
            statuses = list(pool.map(self.send, requests))
            expected = sum(self.per_turn[q][turn] for (_, q), status in zip(users, statuses) if status == 200)
            stats = self.fake.wait_posts(before + expected, timeout=TURN_TIMEOUT)
            if stats.posts < before + expected:
                raise RuntimeError(
                    f"turn {turn + 1} of a wave: {stats.posts - before} of {expected} answers "
                    f"within {TURN_TIMEOUT:.0f} s"
                )


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 conversations")
    parser.add_argument("--conversations", type=int, help="new users, one conversation each (default 10,000)")
    parser.add_argument("--wave", type=int, default=100, help="users per wave (default 100)")
    parser.add_argument(
        "--database-url",
        help="database of `serve` (default: a temporary SQLite file; on PostgreSQL a fresh schema, dropped afterwards)",
    )
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the server (default INFO, as deployed)")
    args = parser.parse_args(argv)
    total = args.conversations or (500 if args.quick else 10_000)
    report_every = max(args.wave, (total // 10) // args.wave * args.wave)

    questions = hb.load_texts()
    # In a separate process: a Bot here would map the Sudachi dictionary too, and the server's
    # Pss would then count only part of those pages.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as helper:
        per_turn = helper.submit(messages_per_turn, questions).result()
    print(
        f"memory benchmark: RSS of `nanbyo-bot serve` after {total:,} conversations of {TURNS} turns "
        f"(new user each, signed Slack DMs on 127.0.0.1, waves of {args.wave}, {CLIENTS} client threads); "
        f"machine: {os.cpu_count()} cores"
    )
    print("  command: " + shlex.join(["python", "bench/memory.py", *(argv if argv is not None else sys.argv[1:])]))
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="nanbyo-bench-memory-") as tmp,
        hb.fake_slack() as fake,
        hb.database(args.database_url, Path(tmp)) as database_url,
    ):
        workdir = Path(tmp)
        server = hb.start_ours(fake.api_url, database_url, workdir, args.log_level)
        try:
            pid = server.proc.pid
            print(
                f"  server: {server.command}   (pid {pid}, DATABASE_URL: "
                f"{'a fresh schema of the given database' if args.database_url else 'a temporary SQLite file'}, "
                f"LOG_LEVEL={args.log_level})"
            )
            at_start = proc_status(pid)
            print(
                f"  at start (healthy, no event yet): RSS {mib(at_start['VmRSS'])} (Pss {mib(at_start['Pss'])}), "
                f"{at_start['processes']} processes, threads {at_start['Threads']}"
            )
            driver = Driver(server.port, fake, questions, per_turn, uuid.uuid4().hex[:4].upper())
            with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="client") as pool:
                driver.wave(min(args.wave, 50), pool)  # warm-up: tokenizer, bolt's auth.test, pools
                warm = proc_status(pid)
                warm_users = driver.started
                print(
                    f"  after warm-up ({warm_users} conversations): RSS {mib(warm['VmRSS'])} "
                    f"(Pss {mib(warm['Pss'])}), threads {warm['Threads']}"
                )
                done = 0
                samples: list[tuple[int, int]] = []  # (conversations, VmRSS kB) at each report
                while done < total:
                    size = min(args.wave, total - done)
                    driver.wave(size, pool)
                    done += size
                    if done % report_every == 0 or done == total:
                        s = proc_status(pid)
                        samples.append((done, s["VmRSS"]))
                        print(
                            f"  after {done:>6,} conversations: RSS {mib(s['VmRSS'])} (peak {mib(s['VmHWM'])}, "
                            f"Pss {mib(s['Pss'])}), "
                            f"threads {s['Threads']}, {time.monotonic() - started:.0f} s",
                            flush=True,
                        )
            end = proc_status(pid)
        finally:
            hb.stop(server.proc)
        stats = fake.stats()
    grown = end["VmRSS"] - warm["VmRSS"]
    print("summary")
    print(
        f"  RSS before (after warm-up) {mib(warm['VmRSS'])}, after {total:,} conversations {mib(end['VmRSS'])}, "
        f"peak {mib(end['VmHWM'])}; Pss after {mib(end['Pss'])} ({end['processes']} processes summed: serve, "
        f"its worker processes, if any)"
    )
    print(
        f"  growth {mib(grown)}: {grown * 1024 / total:.0f} bytes per conversation "
        f"({grown * 1024 / (total * TURNS):.0f} bytes per event)"
    )
    if len(samples) > 1:  # after the first report, once pools and allocator arenas have settled
        (n0, rss0), (n1, rss1) = samples[0], samples[-1]
        print(
            f"  from {n0:,} to {n1:,} conversations: {mib(rss1 - rss0)}, "
            f"{(rss1 - rss0) * 1024 / (n1 - n0):.0f} bytes per conversation"
        )
    print(
        f"  {stats.posts:,} messages reached the fake API in {stats.channels:,} DMs; "
        f"server exit status {server.proc.returncode}"
    )
    failed = sum(driver.failures.values())
    print(
        f"  deliveries refused or reset and retried: {failed} {dict(driver.failures) if failed else ''}; "
        f"events lost after {RETRIES} retries: {driver.lost}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
