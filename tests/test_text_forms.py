"""A message is folded and read aloud once per turn (``nlp.text.Text``), however many checks
look at it: the safety check, the route table's commands, the understanding and the matcher."""

from __future__ import annotations

import importlib
import sys
from collections import Counter

import pytest

from nlp.text import Text, reading


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], Counter[str]]:
    """Count the calls of ``fold`` and ``reading`` by their argument, in every module of the bot.

    A reading is folded too (「ジュキュウシャショウ」 read aloud is 「じゅきゅうしゃしょう」 again): the
    folds made inside ``reading`` are of the reading, not of the message, and are not counted.
    """
    folds: Counter[str] = Counter()
    readings: Counter[str] = Counter()
    inside_reading = [False]
    fold_of, reading_of = importlib.import_module("nlp.text").fold, importlib.import_module("nlp.text").reading

    def counted_fold(text: str) -> str:
        if not inside_reading[0]:
            folds[text] += 1
        return fold_of(text)

    def counted_reading(text: str) -> str:
        readings[text] += 1
        inside_reading[0] = True
        try:
            return reading_of(text)
        finally:
            inside_reading[0] = False

    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] in ("bot", "handlers", "nlp", "knowledge"):
            for name, original, counted in (("fold", fold_of, counted_fold), ("reading", reading_of, counted_reading)):
                if getattr(module, name, None) is original:
                    monkeypatch.setattr(module, name, counted)
    return folds, readings


@pytest.mark.parametrize(
    "message",
    [
        "じゅきゅうしゃしょう なくしたら どうすればいい",  # typed in kana: also matched by its reading
        "受給者証の更新っていつ？",
        "データ全部消してほしい",
    ],
)
def test_a_turn_folds_and_reads_the_message_once(chat, monkeypatch, message):
    chat.say("こんにちは")  # the tables of the knowledge base are built before counting
    folds, readings = _count_calls(monkeypatch)

    replies = chat.say(message)

    assert replies and all(r.text for r in replies)
    assert folds[message] == 1, folds
    assert readings[message] <= 1, readings


def test_the_forms_of_a_text():
    text = Text("ﾑﾈｶﾞｸﾙｼｲ。たすけて")
    assert text.folded == "むねがくるしいたすけて"
    assert [s.raw for s in text.sentences] == ["ﾑﾈｶﾞｸﾙｼｲ", "たすけて"]
    assert text.sentences[0].reading == reading("胸が苦しい") == "むねがくるしい"
    one = Text("受給者証をなくしたんですが")
    assert one.plain == "受給者証をなくしたん"  # the polite ending is dropped
    assert one.sentences == (one,)  # one sentence: the same forms, not computed again
    assert Text("。。").sentences == ()


@pytest.mark.parametrize("answer", ["いいえ、受けていません", "ｲｲｴ　うけてない"])
def test_a_dialog_answer_is_normalised_once(chat, monkeypatch, answer):
    """An answer in a dialog is read by the safety check, the dialog's parser (whose form is
    ``Text.compact``) and the check for a question: each form is made once."""
    import nlp.normalize

    chat.say("上限額を計算したい")
    compacts: Counter[str] = Counter()
    compact_of = nlp.normalize.compact

    def counted(text: str) -> str:
        compacts[text] += 1
        return compact_of(text)

    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] in ("bot", "handlers", "nlp") and getattr(module, "compact", None) is compact_of:
            monkeypatch.setattr(module, "compact", counted)
    folds, _readings = _count_calls(monkeypatch)

    replies = chat.say(answer)

    assert "人工呼吸器" in replies[-1].text  # read as a no: the next question
    assert compacts[answer] == 1, compacts
    assert folds[answer] == 1, folds


def test_the_answer_forms_of_a_text():
    text = Text(" ７万　５千円〜 ")
    assert text.spaced == "7万 5千円~"  # spaces kept: they may separate items (「5000 2500」)
    assert text.compact == "7万5千円~"
    assert Text("R9．3．31").compact == "r9.3.31"
    assert Text("ﾊｲ、６ヶ月").compact == "はい、6ヶ月"  # katakana as hiragana; the counter ヶ kept
