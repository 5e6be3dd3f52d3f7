"""The terminal, the JSON console protocol and the one-shot commands, run as a user runs them."""

import json

from tests.conftest import SHARED, run_cli


def _env(tmp_path):
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def test_json_console_writes_exactly_one_line_per_input_line(tmp_path):
    lines = [
        json.dumps({"user": "U1", "text": "受給者証をなくしてしまいました"}, ensure_ascii=False),
        "",  # an empty line
        "{not json",  # broken JSON is plain text
        json.dumps({"user": "U1", "choice": "menu"}),
        "😀😀😀",
        "あ" * 10_000,
    ]
    out = run_cli(["chat", "--json"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(lines)
    for row in rows:
        assert row["replies"], row
        for reply in row["replies"]:
            assert set(reply) == {"text", "choices", "expecting", "topic"}
            assert reply["text"]
    assert rows[0]["replies"][0]["topic"] == "reissue"
    assert "出典" in rows[0]["replies"][0]["text"]
    assert all(set(c) == {"label", "value"} for c in rows[0]["replies"][0]["choices"])


def test_json_console_choice_continues_a_dialog(tmp_path):
    lines = [json.dumps({"user": "U9", "text": "人と話したい"}, ensure_ascii=False), json.dumps({"user": "U9", "text": "嬬恋村"}, ensure_ascii=False)]
    out = run_cli(["chat", "--json"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["replies"][-1]["expecting"] == "municipality"
    assert "吾妻保健福祉事務所" in second["replies"][-1]["text"]


def test_piped_question_is_answered_and_the_chat_exits(tmp_path):
    out = run_cli(["chat"], stdin="受給者証をなくしました\n", env=_env(tmp_path))
    assert out.returncode == 0
    assert "再交付" in out.stdout
    assert "出典" in out.stdout


def test_text_chat_letter_clicks_a_choice(tmp_path):
    out = run_cli(["chat"], stdin="メニュー\nａ\n", env=_env(tmp_path))
    assert "[a] 制度について" in out.stdout
    assert "指定難病" in out.stdout.split("[a] 制度について", 1)[1]


def test_text_chat_a_typed_number_at_a_count_question_is_the_count(tmp_path):
    lines = ["自己負担の上限額を計算したい", "いいえ", "いいえ", "いいえ", "10万円", "2"]
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    assert "[a] ない" in out.stdout  # the count question shows its choices with letters
    after = out.stdout.rsplit("何か月ありますか", 1)[1]
    assert "ほかに指定難病や小児慢性特定疾病の受給者証" in after  # 「2」 was read as two months: next question
    assert "やめました" not in after and "わからない" not in after.split("\n", 1)[0]


def test_text_chat_typing_a_button_label_picks_it(tmp_path):
    lines = ["助成の開始日を計算したい", "2026年9月1日", "2026年11月20日", "仕事が忙しかった"]
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    assert "助成の開始日は、早ければ" in out.stdout
    assert "下のボタンから" not in out.stdout


def test_ask_prints_the_contract_json(tmp_path):
    out = run_cli(["ask", "マイナ保険証しかないけど何を出せばいい？"], env=_env(tmp_path))
    obj = json.loads(out.stdout)
    assert set(obj) == {"topic", "score", "answer", "alternatives"}
    assert obj["topic"] == "mynumber-insurance-card"
    assert 0 <= obj["score"] <= 100


def test_ask_does_not_guess_out_of_scope(tmp_path):
    obj = json.loads(run_cli(["ask", "明日の天気は？"], env=_env(tmp_path)).stdout)
    assert obj["topic"] is None
    assert obj["answer"]


def test_kb_check_passes_on_the_shipped_knowledge(tmp_path):
    args = ["kb", "check"]
    spec = SHARED / "spec" / "topics.yaml"
    if spec.exists():
        args += ["--spec", str(spec)]
    out = run_cli(args, env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok:")
