"""Safety first: every emergency and crisis gets 119 first, in any wording, at any step of any dialog.

The messages here are not the examples of ``knowledge/emergency.yaml`` (``kb check`` proves those):
they are other wordings of each concept, typed the way frightened people type.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.messages import IncomingMessage
from handlers.safety import detect
from tests.conftest import REPO, Chat, run_cli

# Per concept: messages in kanji, hiragana, katakana, full width, from a family member, as a question.
BY_CONCEPT = {
    "breathing": ["いきが　くるしくて　ねれない", "母の呼吸が止まりそう", "ﾑｽｺﾉ ｲｷｶﾞ ｱﾗｲ"],
    "chest": ["胸がぎゅっと締め付けられるように痛い", "おっとが　むねを　おさえて　うずくまってる"],
    "consciousness": ["祖母が呼びかけても反応しない", "ちちの　いしきが　ない"],
    "bleeding": ["父が大量に血を吐いた", "はなぢが　ぜんぜん　とまらない"],
    "seizure": ["娘がけいれんしてて止まらない", "ﾋｷﾂｹｦ ｵｺｼﾃﾙ"],
    "stroke": ["急に母の左手が動かなくなった", "夫のろれつがおかしい"],
    "severe-pain": ["突然頭がわれるように痛くなった", "せなかが　いたくて　うごけない"],
    "fall": ["父がお風呂で倒れた", "ばあちゃん　ころんで　たてない"],
    "overdose": ["子どもが漂白剤をなめた", "母が薬を一度にたくさん飲んだ"],
    "choking": ["おもちが　のどに　つまった", "息子がアメを喉につまらせた"],
    "device": ["人工呼吸器のアラームがずっと鳴ってる", "在宅酸素のチューブが外れた"],
    "child-fever": ["子供が高熱でぐったりしてる", "孫が39度の熱で呼んでも起きない"],
    "anaphylaxis": ["そばを食べたら喉が締めつけられる感じ", "蜂に刺されてから息が苦しい"],
    "help": ["誰か助けて", "救急車を呼んでください", "１１９番したほうがいい？"],
    "crisis": ["もう消えてしまいたい", "いきてる　いみが　ない", "死にたいと思ってしまう"],
}

ORDINARY = [
    "救急車で運ばれた病院が指定医療機関じゃなかったらどうなる？",
    "人工呼吸器をつけている人の自己負担上限額は？",
    "けいれん発作がある病気は指定難病ですか",
    "医療費が高くて生活が苦しい",
    "入院したときの食事代は助成されますか",
    "夜中に発作が起きたら、その受診も対象になる？",
    "去年倒れて救急で入院した分の医療費は戻りますか",
    "受給者証が消えたみたいに見つからない",
    "患者が死亡したら受給者証はどうすればいい",
    "手続きを助けてくれる窓口はありますか",
]


@pytest.mark.parametrize("concept,text", [(c, t) for c, texts in BY_CONCEPT.items() for t in texts])
def test_each_concept_is_recognised_in_any_script(kb, concept, text):
    found = detect(kb, text)
    assert found is not None, text
    assert concept in found.concepts, (text, found.concepts)


@pytest.mark.parametrize("text", [t for c, texts in BY_CONCEPT.items() if c != "crisis" for t in texts])
def test_an_emergency_gets_119_first(chat, text):
    replies = chat.say(text)
    assert replies[0].kind == "emergency"
    assert "119" in replies[0].text
    assert replies[0].topic is None


@pytest.mark.parametrize("text", BY_CONCEPT["crisis"])
def test_a_crisis_gets_its_own_answer_with_a_line_to_call(chat, text):
    replies = chat.say(text)
    assert replies[0].kind == "crisis"
    assert "0570-064-556" in replies[0].text and "119" in replies[0].text


def test_an_overdose_with_thoughts_of_suicide_gets_both_answers(chat):
    text = chat.text(chat.say("死にたくて薬を全部飲んだ"))
    assert "119" in text and "0570-064-556" in text


@pytest.mark.parametrize("text", ORDINARY)
def test_near_misses_get_their_ordinary_answer(chat, text):
    replies = chat.say(text)
    assert all(r.kind not in ("emergency", "crisis") for r in replies), text


SLOT_PATH = [
    ("welfare", "いいえ"),
    ("ventilator", "いいえ"),
    ("tax_exempt", "いいえ"),
    ("income_tax", "10万円"),
    ("high_cost_months", "ない"),
    ("household_caps", "いない"),
    ("medical_cost", "5万円"),
]


@pytest.mark.parametrize("step", range(len(SLOT_PATH)))
def test_an_emergency_at_any_copay_step_gets_119_and_the_dialog_waits(chat, step):
    replies = chat.click("start:copay")
    for slot, answer in SLOT_PATH[:step]:
        assert replies[-1].expecting == slot
        replies = chat.say(answer)
    slot = SLOT_PATH[step][0]
    assert replies[-1].expecting == slot
    replies = chat.say("むねが　くるしい　いきが　できない")
    assert replies[0].kind == "emergency" and "119" in replies[0].text
    assert replies[-1].expecting == slot  # the same question is waiting
    replies = chat.say(SLOT_PATH[step][1])  # and the dialog goes on from there
    assert replies[-1].expecting != slot


@pytest.mark.parametrize("text", ["顔が真っ青で唇が紫になってる", "ひきつけを起こしてる", "息がすえない", "胸が痛い"])
def test_a_symptom_typed_at_a_yes_no_question_is_never_an_answer(chat, text):
    chat.click("start:copay")
    replies = chat.say(text)
    assert replies[0].kind == "emergency"
    assert replies[-1].expecting == "welfare"
    assert "上限額" not in chat.text(replies)


@pytest.mark.parametrize(
    "start,answers",
    [
        ("start:start-date", ["2026年9月1日"]),
        ("start:reminder", ["2027年9月30日"]),  # the repeat-back 「この日付でよろしいですか？」
        ("start:mild-high-cost", []),
        ("start:office", []),
    ],
)
def test_an_emergency_in_other_dialogs_and_confirmations_gets_119(chat, start, answers):
    pending = chat.click(start)[-1]
    for answer in answers:
        pending = chat.say(answer)[-1]
    replies = chat.say("たすけて　おっとが　たおれた")
    assert replies[0].kind == "emergency"
    assert replies[-1].expecting == pending.expecting
    assert pending.text in replies[-1].text  # the same question, asked again


def test_a_very_long_message_with_an_emergency_still_gets_119(chat):
    replies = chat.say("受給者証のことで相談です。" * 200 + "いま父が倒れて意識がない")
    assert replies[0].kind == "emergency"


def test_an_emergency_gets_119_even_after_a_flood_of_messages(bot):
    user = Chat(bot, user="flood")
    for _ in range(40):
        user.say("こんにちは")
    assert user.say("こんにちは") == []  # flooded: one notice, then silence
    assert user.say("いきができない")[0].kind == "emergency"


def test_an_emergency_with_a_my_number_gets_119_and_the_warning(chat):
    text = chat.text(chat.say("1234 5678 9012 息ができない"))
    assert "119" in text and "マイナンバー" in text


def test_the_bench_file_is_caught_without_false_alarms(kb):
    rows = [json.loads(line) for line in (REPO / "bench" / "safety-questions.jsonl").read_text().splitlines()]
    urgent = [r["text"] for r in rows if r["kind"]]
    ordinary = [r["text"] for r in rows if not r["kind"]]
    assert len(urgent) >= 150 and len(ordinary) >= 150
    missed = [t for t in urgent if detect(kb, t) is None]
    alarms = [t for t in ordinary if detect(kb, t) is not None]
    assert missed == []
    assert len(alarms) <= len(ordinary) // 100, alarms


def test_eval_safety_reports_recall_and_false_alarms_free_and_mid_dialog(tmp_path: Path):
    sample = tmp_path / "s.jsonl"
    sample.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"text": "いきが　できない", "kind": "emergency"},
                {"text": "もう消えたい", "kind": "crisis"},
                {"text": "人工呼吸器をつけていると上限額は？", "kind": None},
            ]
        ),
        encoding="utf-8",
    )
    out = run_cli(["eval", "--safety", str(sample)])
    assert out.returncode == 0, out.stderr
    assert "free:       recall 100.0% (2/2)   false alarms 0.0% (0/1)" in out.stdout
    assert "mid-dialog: recall 100.0%" in out.stdout


def test_kb_check_refuses_a_concept_whose_example_is_not_detected(tmp_path: Path):
    import shutil

    root = tmp_path / "knowledge"
    shutil.copytree(REPO / "knowledge", root)
    path = root / "emergency.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "examples: [血を吐いた,", "examples: [今日はいい天気ですね, 血を吐いた,"
        ),
        encoding="utf-8",
    )
    out = run_cli(["kb", "check", "--root", str(root)])
    assert out.returncode == 1
    assert "example not detected: 今日はいい天気ですね" in out.stderr


def test_a_button_value_is_never_read_for_emergencies(bot):
    replies = bot.handle(IncomingMessage(channel="console", user="b", choice="start:copay"))
    assert replies[0].kind != "emergency"


@pytest.mark.parametrize("amount", ["699476", "994円", "1,190,000円", "１１９０００", "11万9千円"])
def test_an_amount_with_119_or_994_in_it_is_an_amount(kb, amount):
    assert detect(kb, amount) is None


def test_an_amount_typed_at_the_income_question_is_read(chat):
    _ = chat.click("start:copay")
    for answer in ("いいえ", "いいえ", "はい"):
        chat.say(answer)
    replies = chat.say("994000")
    assert all(r.kind != "emergency" for r in replies)
