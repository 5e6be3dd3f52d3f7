"""Issue 25's examples of dates, counts, corrections and sentences, typed into the installed command as a user
would: the terminal chat (``nanbyo-bot chat``) and ``nanbyo-bot chat --json``. The command runs on the real
clock, so a figure that depends on today is worked out here from today in Japan."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.calc.copay import CopayFacts, possible_results
from tests.conftest import run_cli


def _json_turns(tmp_path, lines: list[str]) -> list[dict]:
    stdin = "\n".join(json.dumps({"user": "U25", "text": t}, ensure_ascii=False) for t in lines) + "\n"
    out = run_cli(["chat", "--json"], stdin=stdin, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"})
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(lines)
    return [
        {"text": "\n".join(r["text"] for r in row["replies"]), "expecting": row["replies"][-1]["expecting"]}
        for row in rows
    ]


def _text_chat(tmp_path, lines: list[str]) -> str:
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env={"DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    assert out.returncode == 0, out.stderr
    return out.stdout


COPAY = [
    "自己負担いくらになるか知りたい",
    "いいえ",
    "いいえ",
    "たぶん課税されてると思う",  # 3: taken as 課税, said so
    "来月",  # 4: a date at the 所得割 question
    "所得割は7万1千円です",  # 5
    "半年くらい",  # 6: at the line of 6 months: asked back
    "6か月以上",  # 7
    "さっきの7万1千円じゃなくて5万円",  # 8: corrects the 所得割, at the household question
    "夫も受給者証もっていて上限は1万円です",  # 9
    "12万円",
    "3割",  # 10, 11: the result
    "ちがう、3割じゃなくて1割だった",
]  # 12: the rate corrected, computed again


def _copay_expected() -> str:
    r = possible_results(
        CopayFacts(
            welfare=False,
            ventilator=False,
            tax_exempt=False,
            income=None,
            income_tax=50_000,
            high_cost_months=6,
            household_caps=(10_000,),
            medical_cost=120_000,
            insurance_rate=0.1,
        )
    )
    assert len(r) == 1
    return f"月の自己負担上限額：{r[0].cap:,}円"


def test_copay_examples_over_chat_json(tmp_path):
    turns = _json_turns(tmp_path, COPAY)
    assert "「課税されている」として進めます" in turns[3]["text"] and turns[3]["expecting"] == "income_tax"
    assert "日付のようです" in turns[4]["text"] and turns[4]["expecting"] == "income_tax"
    assert turns[5]["expecting"] == "high_cost_months"
    assert "6か月以上ありましたか" in turns[6]["text"] and turns[6]["expecting"] == "high_cost_months"
    assert turns[7]["expecting"] == "household_caps"
    assert "「所得割」を「50,000円」に直しました" in turns[8]["text"] and turns[8]["expecting"] == "household_caps"
    assert turns[9]["expecting"] == "medical_cost"
    assert "階層区分：一般所得1（高額かつ長期）" in turns[11]["text"]
    assert "「負担割合」を「1割」に直して" in turns[12]["text"] and _copay_expected() in turns[12]["text"]


def test_copay_examples_in_the_terminal(tmp_path):
    out = _text_chat(tmp_path, COPAY)
    for said in (
        "「課税されている」として進めます",
        "日付のようです",
        "6か月以上ありましたか",
        "「所得割」を「50,000円」に直しました",
        "「負担割合」を「1割」に直して",
        _copay_expected(),
    ):
        assert said in out, said


def _since_april() -> int:
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    year = today.year if today.month >= 4 else today.year - 1
    return min(12, (today.year - year) * 12 + today.month - 4 + 1)


COUNTS = ["自己負担いくらになるか知りたい", "いいえ", "いいえ", "いいえ", "7万1千円", "5万円", "4月から毎月"]


def test_a_count_said_since_a_month_is_counted_from_today_and_said_back(tmp_path):
    turns = _json_turns(tmp_path, COUNTS)
    assert "金額ではなく" in turns[5]["text"] and turns[5]["expecting"] == "high_cost_months"
    assert f"今月までの{_since_april()}か月" in turns[6]["text"] and turns[6]["expecting"] == "household_caps"
    assert f"今月までの{_since_april()}か月" in _text_chat(tmp_path, COUNTS)


START_DATE = ["助成の開始日を計算して", "12万円", "3か月前", "来月", "今日", "特になし"]


def test_dates_relative_to_today_and_an_amount_at_a_date_question(tmp_path):
    turns = _json_turns(tmp_path, START_DATE)
    assert "金額のようです" in turns[1]["text"] and turns[1]["expecting"] == "diagnosis_date"
    assert turns[2]["expecting"] == "application_date"  # 3か月前 read against today
    assert "の何日でしょうか" in turns[3]["text"] and turns[3]["expecting"] == "application_date"
    assert turns[4]["expecting"] == "delay_reason"
    assert "助成の開始日は" in turns[5]["text"]
    out = _text_chat(tmp_path, START_DATE)
    assert "金額のようです" in out and "助成の開始日：" in out


COSTLOG = [
    "更新のお知らせを登録したい",
    "2027年3月31日",
    "はい",
    "前橋市",
    "医療費の記録をつけたい",
    "はい",
    "はい",
    "11月 52,000円",
    "いらない",
    "お知らせの一覧",
    "今日〇〇薬局で1,230円払いました",
]


@pytest.mark.parametrize("mode", ["json", "text"])
def test_a_refusal_at_the_cost_log_offer_keeps_the_renewal_reminders(tmp_path, mode):
    if mode == "json":
        turns = _json_turns(tmp_path, COSTLOG)
        assert "医療費の入力はここまでにします" in turns[8]["text"]
        assert "登録中の更新のお知らせです" in turns[9]["text"]
        assert "1,230円を" in turns[10]["text"]
    else:
        out = _text_chat(tmp_path, COSTLOG)
        assert (
            "医療費の入力はここまでにします" in out
            and "登録中の更新のお知らせです" in out
            and "停止しました" not in out
        )
        assert "1,230円を" in out
