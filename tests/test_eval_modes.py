"""The measurements of issue 26: follow-ups read after the message before, and two questions in one.

``nanbyo-bot eval --conversations FILE`` sends each conversation turn by turn as one user and judges
the reply to the last turn; ``eval FILE`` counts lines with ``"also"`` (a second question in the same
message) as answered when the second topic is answered or offered as a button.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.evaluation import evaluate, evaluate_conversations
from tests.conftest import run_cli


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_conversation_is_judged_on_the_reply_to_its_last_turn(bot, tmp_path: Path):
    path = _write(
        tmp_path / "c.jsonl",
        [
            {"turns": ["こんにちは", "受給者証をなくしてしまいました"], "topic": "reissue"},
            {"turns": ["受給者証をなくしてしまいました", "こんにちは"], "topic": "reissue"},
            {"turns": ["こんにちは", "上限額を計算してほしい"], "action": "copay"},
        ],
    )
    result = evaluate_conversations(bot, path)
    assert (result.total, result.in_context) == (3, 2)
    assert "follow-ups answered in context: 66.7% (2/3)" in result.report()
    assert any("受給者証をなくしてしまいました / こんにちは" in m for m in result.misses)


def test_a_second_question_counts_only_when_answered_or_offered(kb, matcher, tmp_path: Path):
    path = _write(
        tmp_path / "q.jsonl",
        [
            {"q": "受給者証をなくしました", "topic": "reissue", "also": "reissue"},
            {"q": "受給者証をなくしました", "topic": "reissue", "also": "respite-hospitalization"},
        ],
    )
    result = evaluate(kb, matcher, path)
    assert (result.also_total, result.also_ok) == (2, 1)
    assert "second questions in one message answered or offered: 50.0% (1/2)" in result.report()


def test_eval_conversations_through_the_cli(tmp_path: Path):
    path = _write(tmp_path / "c.jsonl", [{"turns": ["こんにちは", "受給者証をなくしました"], "topic": "reissue"}])
    done = run_cli(["eval", "--conversations", str(path)], env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert done.returncode == 0, done.stderr
    assert "follow-ups answered in context: 100.0% (1/1)" in done.stdout
    assert run_cli(["eval", "--conversations"]).returncode == 2
