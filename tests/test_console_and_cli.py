"""The terminal, the JSON console protocol and the one-shot commands, run as a user runs them."""

import json
import unicodedata

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
    lines = [
        json.dumps({"user": "U9", "text": "窓口を探す"}, ensure_ascii=False),
        json.dumps({"user": "U9", "text": "嬬恋村"}, ensure_ascii=False),
    ]
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
    assert "助成の開始日：2026年10月20日" in out.stdout  # 「特になし」 typed was the button: one month back
    assert "下のボタンから" not in out.stdout


def _block(stdout: str, first: str) -> list[str]:
    """The lines the terminal printed from ``first`` up to the choices (or the end)."""
    after = stdout[stdout.index(first) :]
    return [line for line in after.split("\n  [", 1)[0].splitlines() if line]


def _colons(lines: list[str]) -> set[int]:
    """The terminal column of each line's 「：」 (wide characters take two columns)."""

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    return {width(line.split("：", 1)[0]) for line in lines}


def test_text_chat_shows_a_copay_result_as_a_short_aligned_block(tmp_path):
    lines = [
        "自己負担の上限額を計算したい",
        "いいえ",
        "いいえ",
        "わからない",
        "わからない",
        "わからない",
        "いない",
        "わからない",
        "わからない",
    ]
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    block = _block(out.stdout, "月の自己負担上限額（考えられる額）：")
    assert block[0] == "月の自己負担上限額（考えられる額）：2,500〜30,000円", "the figure first, with its label"
    tiers = [line for line in block if "なら" in line]
    assert [t.split("：")[1] for t in tiers] == ["月2,500円", "月5,000円", "月10,000円", "月20,000円", "月30,000円"]
    assert len(_colons(tiers)) == 1, f"the colons stand in one column: {tiers}"
    assert block[-1].startswith("出典：") and len(block) <= 10


def test_text_chat_shows_the_office_as_an_aligned_block(tmp_path):
    out = run_cli(["chat"], stdin="窓口を探す\n草津町\n", env=_env(tmp_path))
    block = _block(out.stdout, "草津町にお住まいの方の窓口：")
    assert block[0] == "草津町にお住まいの方の窓口：吾妻保健福祉事務所"
    facts = block[1:-1]
    assert [f.split("：")[0].strip("　 ") for f in facts] == ["所在地", "電話", "FAX", "受付"]
    assert "0279-75-3303" in facts[1] and len(_colons(facts)) == 1
    assert block[-1].startswith("出典：群馬県")


def test_json_console_keeps_the_whole_text_of_a_result(tmp_path):
    lines = ["開始日を計算して", "2025年6月1日", "2025年8月20日", "特になし"]
    out = run_cli(["chat", "--json"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    last = json.loads(out.stdout.splitlines()[-1])["replies"][-1]
    assert set(last) == {"text", "choices", "expecting", "topic"}
    assert "助成の開始日は、早ければ 2025年7月20日 です。" in last["text"] and "出典：" in last["text"]


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
