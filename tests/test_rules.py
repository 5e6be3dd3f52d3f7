"""The intent decision as a table of named rules (handlers/rules.py): each rule gives what a user sees.

The messages come from the bench files (bench/*.jsonl); each is decided by the rule named beside it,
and the consultation says which rule that was (``nanbyo-bot eval`` prints it beside a miss).
"""

import pytest

from handlers.faq import consult
from handlers.rules import RULES, decide, signals
from nlp.text import Text


@pytest.mark.parametrize(
    ("text", "rule", "kind", "topic", "action"),
    [
        ("メサラジン飲み忘れたら2回分まとめて飲んでいい？", "safety", "medical", None, None),
        ("更新の時期っていつ？案内は送られてくる？", "fact-question-near-action", "answer", "renewal", None),
        ("太田市の管轄の事務所どこ？探して", "request-action-over-topic", "action", None, "office"),
        ("登録したリマインダーを見せて", "cued-action-when-no-topic", "action", None, "reminder-list"),
        ("自己負担の上限額を計算してほしいです", "action-ranked-first", "action", None, "copay"),
        ("前橋に住んでいます。担当の窓口はどこになりますか", "answer-topic", "answer", "where-to-apply", None),
        ("生活保護を受けてる人の自己負担はいくら？", "answer-beside-service", "answer", "copay-welfare", None),
        ("介護保険の申請もそこでできる？", "redirect", "redirect", None, None),
        ("民間の医療保険って難病でも入れますか", "service-next-door", "redirect", None, None),
        ("うちは吉岡町だけど", "place-only", "office", None, None),
        ("私のこと忘れて", "fallback", "fallback", None, None),
    ],
)
def test_each_rule_decides_its_kind_of_message(kb, matcher, text, rule, kind, topic, action):
    c = consult(kb, matcher, text)
    assert (c.rule, c.kind, c.topic, c.action) == (rule, kind, topic, action)


def test_a_fact_question_near_an_action_offers_the_action_as_first_button(kb, matcher):
    c = consult(kb, matcher, "更新の時期っていつ？案内は送られてくる？")
    does = {a.does for a in kb.actions}
    assert c.choices and c.choices[0].value in does
    assert [ch.value for ch in c.choices].count(c.choices[0].value) == 1  # moved first, not doubled


def test_rules_are_tried_in_order_and_the_first_that_fires_wins(kb, matcher):
    # A medical question that also asks for the calculator is still declined as medical advice.
    s = signals(kb, matcher, Text("メサラジン飲み忘れたら2回分まとめて飲んでいい？"))
    assert decide(s).rule == "safety"
    # Without the rule that answered it, the same message goes to a later rule, never an earlier one.
    s = signals(kb, matcher, Text("前橋に住んでいます。担当の窓口はどこになりますか"))
    names = [r.name for r in RULES]
    without = tuple(r for r in RULES if r.name != "answer-topic")
    later = decide(s, without).rule
    assert names.index(later) > names.index("answer-topic")


def test_the_table_names_each_rule_once_and_ends_with_the_fallback():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) and names[-1] == "fallback"


def test_the_head_of_a_b_is_put_first_among_close_topics(kb, matcher):
    from handlers.rules import head_last
    from nlp.matcher import Match

    text = Text("臨床調査個人票の診断年月日は初めて受診した日？")
    form, date = Match("clinical-survey-form", 1.0, 90.0, 0.0), Match("diagnosis-date-definition", 1.0, 88.0, 0.0)
    assert [m.id for m in head_last(kb, matcher, text, (form, date))] == [date.id, form.id]
    far = Match("diagnosis-date-definition", 1.0, 70.0, 0.0)  # not close: the ranking stands
    assert [m.id for m in head_last(kb, matcher, text, (form, far))] == [form.id, far.id]


def test_a_statement_after_the_question_is_not_its_head(kb, matcher):
    from handlers.rules import head_last
    from nlp.matcher import Match

    text = Text("後期高齢の保険証だけど写しはいる？妻は国保です")
    koki, kokuho = Match("insurance-copy-koki", 1.0, 90.0, 0.0), Match("insurance-copy-kokuho", 1.0, 89.0, 0.0)
    assert head_last(kb, matcher, text, (koki, kokuho))[0].id == koki.id


def test_the_standard_of_a_comparison_gives_way_to_its_subject(kb, matcher):
    s = signals(kb, matcher, Text("更新の書類は新規申請と違いますか"))
    assert s.topics[0].id == "renewal"
