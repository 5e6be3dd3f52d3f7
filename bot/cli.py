"""The ``nanbyo-bot`` command (see CONTRACT.md and the README)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings

if TYPE_CHECKING:
    from knowledge import KnowledgeBase
    from knowledge.models import Stale


def _cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build_bot
    from bot.channels.console import run_json, run_text

    bot = build_bot(settings)
    if args.json:
        return run_json(bot, sys.stdin, sys.stdout, args.user)
    return run_text(bot, sys.stdin, sys.stdout, args.user)


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import knowledge_and_matcher
    from handlers.context import consult_message

    kb, matcher = knowledge_and_matcher(settings.prefecture)
    c = consult_message(kb, matcher, args.question)
    print(
        json.dumps(
            {"topic": c.topic, "score": round(c.score), "answer": c.text, "alternatives": list(c.alternatives)},
            ensure_ascii=False,
        )
    )
    return 0


def _emergency_problems(kb: KnowledgeBase) -> list[str]:
    """Every emergency concept detects its examples and none of its near misses."""
    from handlers.safety import detect

    problems = []
    for concept in kb.emergency.concepts:
        for text in concept.examples:
            found = detect(kb, text)
            if found is None or concept.id not in found.concepts:
                problems.append(f"emergency.yaml [{concept.id}]: example not detected: {text}")
        for text in concept.near_misses:
            found = detect(kb, text)
            if found is not None:
                problems.append(
                    f"emergency.yaml [{concept.id}]: near miss taken for {', '.join(found.concepts)}: {text}"
                )
    return problems


def _today(given: str | None) -> date:
    """``--today YYYY-MM-DD``, else today in Japan."""
    from bot.core import now_tokyo

    return date.fromisoformat(given) if given else now_tokyo().date()


def _iso_day(value: str) -> str:
    """argparse type of ``--today``: a date as YYYY-MM-DD (a wrong one is a usage error, exit 2)."""
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from exc
    return value


def stale_line(item: Stale) -> str:
    """One warning of ``kb check``: the file and entry whose facts are due to be checked again."""
    return (
        f"warning: {item.file} [{item.id}]: {item.kind} checked {item.checked.isoformat()}, due to be checked "
        f"again since {item.due.isoformat()} (every {item.recheck_days} days)"
    )


def _cmd_kb_check(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge import KnowledgeError, load_knowledge

    try:
        kb = load_knowledge(settings.prefecture, Path(args.root) if args.root else None)
    except KnowledgeError as exc:
        print(f"knowledge base error: {exc}", file=sys.stderr)
        return 1
    problems: list[str] = []
    if args.spec:
        from bot.evaluation import load_spec_must

        for tid, facts in load_spec_must(Path(args.spec)).items():
            topic = kb.topics.get(tid)
            if topic is None:
                problems.append(f"{args.spec} [{tid}]: topic missing from the knowledge base")
                continue
            lacking = [f for f in facts if f not in topic.answer]
            if lacking:
                problems.append(f"{kb.topic_files[tid]} [{tid}]: answer does not state {lacking}")
    problems += _emergency_problems(kb)
    # The chat runs without them (the link is dropped), but a finished prefecture has them all.
    problems += [f"{kb.prefecture.id}: no topic for the national link {link}" for link in kb.unlinked]
    for p in problems:
        print(p, file=sys.stderr)
    # Facts due to be checked again are a warning: the exit code stays what the checks above decide.
    for item in kb.stale(_today(args.today)):
        print(stale_line(item), file=sys.stderr)
    if problems:
        return 1
    print(
        f"ok: {len(kb.emergency.concepts)} emergency and crisis concepts, {len(kb.topics)} topics, "
        f"{len(kb.sources)} sources, {len(kb.synonyms)} synonym groups, "
        f"{len(kb.prefecture.municipalities)} municipalities of {kb.prefecture.name}"
    )
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import knowledge_and_matcher
    from bot.evaluation import evaluate

    if args.safety or args.actions or args.conversations:
        if args.conversations and not args.file:
            print("eval --conversations: a file of conversations is needed", file=sys.stderr)
            return 2
        return _eval_with_bot(args, settings)
    if not args.file:
        print("eval: a question file is needed (only --safety runs without one)", file=sys.stderr)
        return 2
    kb, matcher = knowledge_and_matcher(settings.prefecture)
    spec = Path(args.spec) if args.spec else None
    result = evaluate(kb, matcher, Path(args.file), spec)
    print(result.report())
    return 0


def _eval_with_bot(args: argparse.Namespace, settings: Settings) -> int:
    """Safety (recall, false alarms) or actions (started directly, within one click), through whole
    turns of a bot on a throw-away SQLite database."""
    import tempfile
    from datetime import datetime

    from bot.bootstrap import build_bot
    from bot.core import TOKYO
    from bot.evaluation import (
        Report,
        evaluate_actions,
        evaluate_conversations,
        evaluate_false_alarms,
        evaluate_safety,
        ordinary_corpora,
    )

    with tempfile.TemporaryDirectory() as tmp:
        fixed = datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO)
        bot = build_bot(
            Settings(database_url=f"sqlite:///{tmp}/eval.db", prefecture=settings.prefecture), clock=lambda: fixed
        )
        result: Report
        if args.safety and not args.file:
            result = evaluate_false_alarms(bot, ordinary_corpora(bot.kb, Path(args.localgovfaq)))
        elif args.safety:
            result = evaluate_safety(bot, Path(args.file))
        elif args.conversations:
            result = evaluate_conversations(bot, Path(args.file))
        elif args.file:
            result = evaluate_actions(bot, Path(args.file))
        else:
            print("eval --actions: a file of requests is needed", file=sys.stderr)
            return 2
        bot.store.engine.dispose()
    print(result.report())
    return 0


def _cmd_copay(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.calc.copay import CopayError, calculate, facts_from_json, result_to_json

    raw = sys.stdin.read()
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        print(f"error: stdin is not one JSON object: {exc}", file=sys.stderr)
        return 2
    if not isinstance(obj, dict):
        print("error: stdin must be one JSON object of facts", file=sys.stderr)
        return 2
    try:
        result = calculate(facts_from_json(obj))
    except CopayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result_to_json(result), ensure_ascii=False))
    return 0


def _cmd_reminders_run_due(args: argparse.Namespace, settings: Settings) -> int:
    from bot.reminders import run_due_main

    return run_due_main(args, settings)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.server import serve_main

    return serve_main(args, settings)


def _cmd_line_richmenu(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.line import richmenu_main

    return richmenu_main(args, settings)


def _cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from bot.bootstrap import knowledge_and_matcher
    from bot.core import now_tokyo
    from bot.storage.db import make_engine
    from bot.storage.repositories import Store

    kb, _ = knowledge_and_matcher(settings.prefecture)
    today = now_tokyo().date()
    store = Store(make_engine(settings.database_url))
    kept = settings.stats_retention_days
    with store.unit_of_work() as uow:
        purged = uow.statistics.purge_stats(today - timedelta(days=kept))
        table, frequent = uow.statistics.question_stats(today - timedelta(days=args.days))
        deliveries = uow.statistics.delivery_stats(today - timedelta(days=args.days))
    print(f"questions of the last {args.days} days (kept {kept} days; {purged} older rows removed now)")
    print(f"{'topic':<34} {'answered':>8} {'not answered':>12}")
    for topic, answered, unanswered in table:
        name = topic if topic is None or topic not in kb.topics else f"{topic} ({kb.topics[topic].label})"
        print(f"{str(name or '(no close topic)'):<34} {answered:>8} {unanswered:>12}")
    if not table:
        print("(no questions yet)")
    print("\nmost frequent unanswered questions (digits and names removed):")
    for text, n in frequent:
        print(f"{n:>5}  {text}")
    if not frequent:
        print("(none)")
    print("\nanswers the message API failed for a moment (tried again until OUTBOX_EXPIRY_SECONDS):")
    print(f"{'channel':<10} {'retries':>8} {'delivered late':>15} {'may show twice':>15} {'given up':>9}")
    for channel, counts in sorted(deliveries.items()):
        print(
            f"{channel:<10} {counts.get('retried', 0):>8} {counts.get('delivered_late', 0):>15} "
            f"{counts.get('maybe_twice', 0):>15} {counts.get('given_up', 0):>9}"
        )
    if not deliveries:
        print("(none)")
    return 0


def _cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from bot.bootstrap import knowledge_and_matcher
    from bot.review import build_review
    from bot.storage.db import make_engine
    from bot.storage.repositories import Store

    if args.days < 1:
        print("review: --days must be 1 or more", file=sys.stderr)
        return 2
    kb, matcher = knowledge_and_matcher(settings.prefecture)
    today = _today(args.today)
    since = today - timedelta(days=args.days - 1)
    store = Store(make_engine(settings.database_url))
    with store.unit_of_work() as uow:
        # What is past the retention period goes first, as with ``stats``: counted from the real
        # today, never from ``--today`` (a day in the future must not delete what is still kept).
        uow.statistics.purge_stats(_today(None) - timedelta(days=settings.stats_retention_days))
        rows = uow.statistics.review_rows(since, today)
        feedback = uow.statistics.feedback_counts(since, today)
    review = build_review(kb, matcher, since, today, rows, feedback, today)
    store.engine.dispose()
    if args.json:
        print(json.dumps(review.to_json(), ensure_ascii=False))
    else:
        print(review.report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanbyo-bot", description="指定難病の医療費助成についてのチャットボット")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--json", action="store_true", help="one JSON line in, one JSON line out (CONTRACT.md)")
    chat.add_argument("--user", default="console", help="user id for plain-text lines (default: console)")
    chat.set_defaults(func=_cmd_chat)

    ask = sub.add_parser("ask", help="answer one question as JSON")
    ask.add_argument("question")
    ask.set_defaults(func=_cmd_ask)

    kb = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="validate the knowledge base")
    check.add_argument("--spec", help="also check a topics.yaml spec (ids and must facts)")
    check.add_argument("--root", help="knowledge folder to check (default: the installed one)")
    check.add_argument(
        "--today",
        type=_iso_day,
        help="day to judge freshness on, YYYY-MM-DD (default: today in Japan); "
        "topics and sources due to be checked again are warnings, the exit code is unchanged",
    )
    check.set_defaults(func=_cmd_kb_check)

    ev = sub.add_parser("eval", help="measure the matcher on a JSONL question file")
    ev.add_argument("file", nargs="?", help="the JSONL file (with --safety: optional, see --localgovfaq)")
    ev.add_argument("--spec", help="topics.yaml whose must facts to check (default: each topic's own)")
    ev.add_argument(
        "--actions",
        action="store_true",
        help='the file holds {"q", "action"} lines: measure requests started directly and within one click',
    )
    ev.add_argument(
        "--conversations",
        action="store_true",
        help='the file holds {"turns": [first, second], "topic" | "action"} lines: measure follow-ups '
        "answered in the light of the message before",
    )
    ev.add_argument(
        "--safety",
        action="store_true",
        help='the file holds {"text", "kind"} lines: measure emergency and crisis recall and false alarms, '
        "free and at every dialog step; without a file, count false alarms on the ordinary corpora "
        "(generated patient sentences, the knowledge base's own examples, localgovFAQ)",
    )
    ev.add_argument(
        "--localgovfaq",
        default="../shared/peer-data/localgovfaq",
        help="folder of the localgovFAQ collection, an ordinary corpus of --safety (skipped when absent)",
    )
    ev.set_defaults(func=_cmd_eval)

    copay = sub.add_parser("copay", help="monthly copay cap from JSON facts on stdin")
    copay.set_defaults(func=_cmd_copay)

    stats = sub.add_parser("stats", help="questions answered / not answered per topic, without personal data")
    stats.add_argument("--days", type=int, default=30, help="period to report (default 30 days)")
    stats.set_defaults(func=_cmd_stats)

    review = sub.add_parser(
        "review", help="what went unanswered, unsure or unhelpful, grouped; facts due to be checked"
    )
    review.add_argument("--days", type=int, default=7, help="period to review, ending today (default 7 days)")
    review.add_argument("--json", action="store_true", help="one JSON object (fields in docs/staff.md)")
    review.add_argument(
        "--today", type=_iso_day, help="last day of the period and day to judge freshness on (default: today in Japan)"
    )
    review.set_defaults(func=_cmd_review)

    rem = sub.add_parser("reminders", help="renewal reminders")
    rem_sub = rem.add_subparsers(dest="reminders_command", required=True)
    run_due = rem_sub.add_parser("run-due", help="dispatch every reminder due now (or at --now), once")
    run_due.add_argument("--now", help="ISO-8601 moment to dispatch for (default: the current time)")
    run_due.set_defaults(func=_cmd_reminders_run_due)

    serve = sub.add_parser("serve", help="HTTP server: Slack events, LINE webhook, /healthz, reminder scheduler")
    serve.add_argument("--socket-mode", action="store_true", help="connect to Slack over Socket Mode")
    serve.add_argument("--no-scheduler", action="store_true", help="do not run the reminder scheduler here")
    serve.add_argument("--port", type=int, help="override PORT")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or 1),
        help="worker processes uvicorn runs and restarts (default WEB_CONCURRENCY or 1); each "
        "answers the turns it acked on a thread pool",
    )
    serve.set_defaults(func=_cmd_serve)

    line = sub.add_parser("line", help="LINE tools")
    line_sub = line.add_subparsers(dest="line_command", required=True)
    richmenu = line_sub.add_parser(
        "richmenu", help="install the rich menu (相談する / 自己負担を計算 / 更新のお知らせ / 窓口を探す)"
    )
    richmenu.set_defaults(func=_cmd_line_richmenu)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    from bot.bootstrap import configure_logging

    configure_logging(settings.log_level if args.command not in ("chat", "ask", "eval", "copay") else "WARNING")
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
