"""Situations before procedures (issue 25): a move and a child, through the chat, the terminal and ``chat --json``.

A move within the prefecture changes the user's stored municipality and answers the change
application (and the reissue when the certificate is lost) with the new office; a move out answers
the stop notice and the new prefecture's application; a child as the patient hears of
小児慢性特定疾病 (the age asked when not said) and never gets the adult calculator silently.
"""

import json

import pytest

from handlers.calc.copay import load_table
from tests.conftest import Chat, run_cli

MAEBASHI = "前橋市保健所"
TAKASAKI = "高崎市保健所"


def _city(bot, user: str = "U1") -> str | None:
    """The municipality stored in the user's profile (what later answers name the office of)."""
    with bot.store.unit_of_work() as uow:
        return uow.conversations.load_state(f"console:{user}").profile.get("municipality")


def _lives_in_takasaki(chat: Chat) -> None:
    chat.say("高崎に住んでます")
    assert _city(chat.bot) == "高崎市"


# --- a move within Gunma ------------------------------------------------------------------------


def test_a_move_within_gunma_changes_the_city_and_answers_change_and_reissue_with_the_new_office(chat):
    _lives_in_takasaki(chat)
    replies = chat.say("高崎から前橋に引っ越して、受給者証もなくしちゃった")
    text = chat.text(replies)
    assert replies[0].topic == "change-application"
    assert "変更申請" in text and "再交付" in text and "受給者証再交付申請書" in text
    assert MAEBASHI in text and "027-220-5785" in text and TAKASAKI not in text
    assert "「中止（終了）届」を、" not in text  # not the stop notice's answer
    assert "出典" in text
    assert _city(chat.bot) == "前橋市"
    # Later answers name the new office: a topic with the user's office, and the office finder.
    renewal = chat.text(chat.say("更新の手続きは？"))
    assert MAEBASHI in renewal and TAKASAKI not in renewal
    office = chat.text(chat.say("窓口はどこ？"))
    assert MAEBASHI in office and TAKASAKI not in office


@pytest.mark.parametrize(
    "said,city,office,lost",
    [
        ("前橋に引っ越しました", "前橋市", MAEBASHI, False),
        ("太田市へ転居しました。受給者証が見当たらない", "太田市", "太田保健福祉事務所", True),
        ("来週、草津町に引っ越します", "草津町", "吾妻保健福祉事務所", False),
        ("ひっこしさきは沼田です", "沼田市", "利根沼田保健福祉事務所", False),
    ],
)
def test_a_move_to_a_gunma_city_stores_it_and_names_its_office(chat, said, city, office, lost):
    _lives_in_takasaki(chat)
    text = chat.text(chat.say(said))
    assert "変更申請" in text and office in text and "出典" in text
    assert ("受給者証再交付申請書" in text) is lost
    assert _city(chat.bot) == city


def test_a_move_only_supposed_is_answered_but_the_city_is_kept(chat):
    _lives_in_takasaki(chat)
    text = chat.text(chat.say("前橋に引っ越したら受給者証はどうなる？"))
    assert "変更申請" in text and MAEBASHI in text
    assert _city(chat.bot) == "高崎市"


def test_a_move_without_a_known_origin_mentions_moving_in_from_elsewhere(chat):
    replies = chat.say("前橋に引っ越しました")
    assert "ほかの都道府県から引っ越してきた場合" in chat.text(replies)
    assert "topic:moving-in" in {c.value for c in replies[0].choices}
    assert _city(chat.bot) == "前橋市"


def test_a_move_into_gunma_answers_the_application_after_moving_in(chat):
    replies = chat.say("東京から太田市に越してきました")
    text = chat.text(replies)
    assert replies[0].topic == "moving-in" and "転入" in text and "太田保健福祉事務所" in text
    assert _city(chat.bot) == "太田市"


# --- a move out of Gunma -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said,where",
    [("東京に引っ越すことになった", "東京都"), ("来月埼玉へ転居", "埼玉県"), ("県外に引っ越します", "ほかの都道府県")],
)
def test_a_move_out_of_gunma_answers_the_stop_notice_and_keeps_the_gunma_city(chat, said, where):
    _lives_in_takasaki(chat)
    replies = chat.say(said)
    text = chat.text(replies)
    assert replies[0].topic == "termination"
    assert "中止（終了）届" in text and f"引っ越し先の{where}で改めて申請" in text
    assert TAKASAKI in text  # the stop notice goes to the office of where the user still lives
    assert "出典" in text
    values = {c.value for c in replies[0].choices}
    assert "office" in values and "topic:moving-in" not in values  # leaving, not moving in
    assert _city(chat.bot) == "高崎市"


def test_a_move_out_without_a_known_city_says_where_to_ask(chat):
    text = chat.text(chat.say("大阪に転居します"))
    assert "中止（終了）届" in text and "大阪府" in text and "保健福祉事務所" in text
    assert _city(chat.bot) is None


# --- near misses: not a move ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "引っ越しの予定はないです",
        "高崎に住んでいて、引っ越しの予定はないです。更新の手続きは？",
        "前橋には引っ越さないことにしました",
        "引っ越し先で使える病院を見つけたい",
    ],
)
def test_a_move_denied_or_without_a_place_changes_nothing(chat, said):
    _lives_in_takasaki(chat)
    replies = chat.say(said)
    assert replies[0].topic != "change-application"
    assert "お引っ越しですね" not in chat.text(replies) and "お住まいの市町村を" not in chat.text(replies)
    assert _city(chat.bot) == "高崎市"


def test_the_renewal_question_after_a_denied_move_still_names_the_stored_office(chat):
    _lives_in_takasaki(chat)
    replies = chat.say("高崎に住んでいて、引っ越しの予定はないです。更新の手続きは？")
    assert replies[0].topic == "renewal" and TAKASAKI in chat.text(replies)


# --- a child ----------------------------------------------------------------------------------


def _pediatric_rows() -> list[str]:
    caps = load_table().pediatric_caps
    return [f"{tier}：{caps[tier]['一般']:,}円" for tier in ("低所得1", "一般所得2", "上位所得")]


def test_a_mother_asking_the_cap_for_her_child_is_asked_the_age_then_hears_of_shoman(chat):
    replies = chat.say("うちの子の場合の上限額は？")
    assert replies[-1].expecting == "child_age"  # not the adult calculator's first question
    assert {c.label for c in replies[-1].choices} >= {"18歳未満", "18歳・19歳", "20歳以上"}
    text = chat.text(chat.click("under18"))
    assert "小児慢性特定疾病" in text and "20歳" in text and "計算できません" in text
    for row in _pediatric_rows():  # the national 小慢 table as the knowledge has it
        assert row in text
    assert "小児慢性特定疾病の医療費助成 自己負担上限額表" in text  # its source
    # The adult table's 一般所得2 cap is not offered as the child's.
    assert "上限額：" not in text


@pytest.mark.parametrize("typed", ["12歳です", "小学生です", "はい"])
def test_the_age_may_be_typed(chat, typed):
    chat.say("息子の医療費の上限を計算したい")
    replies = chat.say(typed)
    assert "小児慢性特定疾病" in chat.text(replies) and all(r.expecting is None for r in replies)


def test_a_bare_no_at_the_age_question_asks_which_adult_age(chat):
    chat.say("うちの子の場合の上限額は？")
    replies = chat.say("いいえ")
    assert replies[-1].expecting == "child_age" and "18歳・19歳か、20歳以上か" in chat.text(replies)


@pytest.mark.parametrize("answer", ["button", "20歳です", "もう成人してます"])
def test_an_adult_child_after_the_age_question_gets_the_adult_calculator(chat, answer):
    asked = chat.say("うちの子の場合の上限額は？")
    adult = next(c for c in asked[-1].choices if c.label == "20歳以上")
    replies = chat.click(adult.value) if answer == "button" else chat.say(answer)
    assert replies[-1].expecting == "welfare"
    assert "小児慢性" not in chat.text(replies)


def test_an_adult_child_asked_about_the_procedure_gets_the_adult_first_steps(chat):
    chat.say("息子が難病と診断されました。手続きは？")
    replies = chat.click("adult")
    assert replies[0].topic == "just-diagnosed" and replies[-1].expecting is None


def test_a_teen_hears_of_the_20_year_transition_with_the_adult_calculator_one_tap_away(chat):
    chat.say("娘の上限額が知りたい")
    replies = chat.click("18-19")
    text = chat.text(replies)
    assert "20歳になるまで" in text and "指定難病" in text and "出典" in text
    assert "start:copay" in {c.value for c in replies[-1].choices}


@pytest.mark.parametrize(
    "said",
    [
        "10歳の娘が難病と診断されました。手続きはどうすればいいですか",
        "小学生の子の申請はどうすれば",
        "3歳の息子の自己負担はいくら？",
    ],
)
def test_a_child_with_an_age_hears_of_shoman_at_once(chat, said):
    replies = chat.say(said)
    text = chat.text(replies)
    assert "小児慢性特定疾病" in text and "18歳未満" in text and "20歳" in text and "出典" in text
    assert all(r.expecting is None for r in replies)
    assert "指定難病と診断されたら、次の順に進めます" not in text  # not the adult procedure


def test_the_child_answer_names_the_stored_office(chat):
    _lives_in_takasaki(chat)
    text = chat.text(chat.say("10歳の娘の申請はどこでするの"))
    assert "小児慢性特定疾病" in text and TAKASAKI in text


@pytest.mark.parametrize("said", ["30歳の息子の上限額を計算したい", "息子が送迎してくれます。上限額を計算したい"])
def test_an_adult_child_or_a_helping_son_gets_the_adult_calculator_without_a_shoman_note(chat, said):
    replies = chat.say(said)
    assert replies[-1].expecting == "welfare"
    assert "小児慢性" not in chat.text(replies)


def test_a_son_who_drives_is_not_a_child_patient(chat):
    replies = chat.say("息子が送迎してくれます")
    assert "小児慢性" not in chat.text(replies)
    assert replies[-1].expecting != "child_age"


# --- the terminal and chat --json ------------------------------------------------------------


def _env(tmp_path):
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def test_terminal_move_then_the_office_is_the_new_one(tmp_path):
    lines = ["高崎に住んでます", "高崎から前橋に引っ越して、受給者証もなくしちゃった", "窓口はどこ？"]
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    after = out.stdout.split("前橋市へのお引っ越しですね", 1)[1]
    assert "変更申請" in after and "再交付" in after and MAEBASHI in after and TAKASAKI not in after


def test_json_console_move_out_child_and_later_office(tmp_path):
    rows = [
        {"user": "U5", "text": "高崎から前橋に引っ越しました"},
        {"user": "U5", "text": "更新の手続きは？"},
        {"user": "U5", "text": "来月埼玉へ転居"},
        {"user": "U5", "text": "うちの子の場合の上限額は？"},
        {"user": "U5", "choice": "under18"},
    ]
    out = run_cli(
        ["chat", "--json"], stdin="\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", env=_env(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    moved, renewal, away, child, under18 = (json.loads(line)["replies"] for line in out.stdout.splitlines())
    assert moved[0]["topic"] == "change-application" and MAEBASHI in moved[0]["text"]
    assert MAEBASHI in renewal[0]["text"] and TAKASAKI not in renewal[0]["text"]
    assert away[0]["topic"] == "termination" and "埼玉県" in away[0]["text"] and MAEBASHI in away[0]["text"]
    assert child[-1]["expecting"] == "child_age"
    assert "小児慢性特定疾病" in under18[0]["text"] and under18[-1]["expecting"] is None


def test_a_child_with_shoman_named_is_answered_without_the_age_question(chat):
    replies = chat.say("子どもの小児慢性の上限額はいくら？")
    text = chat.text(replies)
    assert all(r.expecting is None for r in replies)
    assert "小児慢性特定疾病" in text and _pediatric_rows()[1] in text and "出典" in text


def test_a_move_within_gunma_without_the_city_answers_change_and_asks_the_city(chat):
    _lives_in_takasaki(chat)
    replies = chat.say("県内で引っ越しました")
    text = chat.text(replies)
    assert replies[0].topic == "change-application" and "市町村名を送って" in text
    assert TAKASAKI not in text  # the old city's office is no longer theirs
    assert _city(chat.bot) == "高崎市"
    chat.say("前橋です")
    assert _city(chat.bot) == "前橋市"


@pytest.mark.parametrize("said", ["娘が東京に引っ越したので寂しい", "友達が前橋に引っ越した"])
def test_someone_elses_move_is_not_the_users(chat, said):
    _lives_in_takasaki(chat)
    assert "お引っ越しですね" not in chat.text(chat.say(said))
    assert _city(chat.bot) == "高崎市"


@pytest.mark.parametrize("said", ["子どもがいるけど上限額は変わる？", "子どもに受給者証を取りに行ってもらう"])
def test_having_children_or_sending_one_is_not_a_child_patient(chat, said):
    replies = chat.say(said)
    assert replies[-1].expecting != "child_age" and "小児慢性特定疾病」の医療費助成の対象" not in chat.text(replies)


def test_a_child_about_to_turn_20_hears_of_the_transition(chat):
    replies = chat.say("娘がもうすぐ二十歳、小児慢性特定疾病の受給者証が切れるって言われた。次はどうすれば")
    assert replies[0].topic == "shoman-transition" and "20歳" in chat.text(replies)


def test_the_issue_mother_two_turns_the_childs_age_is_remembered(chat):
    """Issue 25's mother: her 10-year-old was diagnosed; then 「うちの子の場合の上限額は？」 is 小慢, at once."""
    first = chat.text(chat.say("10歳の子どもが指定難病と診断されました。手続きを教えてください"))
    assert "小児慢性特定疾病" in first and "指定難病と診断されたら、次の順に進めます" not in first
    replies = chat.say("うちの子の場合の上限額は？")
    text = chat.text(replies)
    assert all(r.expecting is None for r in replies)  # neither the adult calculator nor the age question
    assert _pediatric_rows()[1] in text and "計算できません" in text


def test_terminal_move_out_and_child_by_letters(tmp_path):
    lines = ["高崎に住んでます", "東京に引っ越すことになった", "うちの子の場合の上限額は？", "a"]
    out = run_cli(["chat"], stdin="\n".join(lines) + "\n", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    away = out.stdout.split("東京都へのお引っ越しですね", 1)[1].split("お子さんのことですね", 1)[0]
    assert "中止（終了）届" in away and TAKASAKI in away and "東京都で改めて申請" in away
    child = out.stdout.split("お子さんは今、18歳未満ですか？", 1)[1]
    assert "[a] 18歳未満" in child and "小児慢性特定疾病" in child and _pediatric_rows()[1] in child
    assert "生活保護を受けていますか" not in out.stdout  # the adult calculator never started


def test_every_button_of_the_age_question_is_an_answer():
    from handlers.situations import ADULT, CHILD_AGE_FORM, TEENS, UNDER_18
    from nlp.text import Text

    expected = {"18歳未満": UNDER_18, "18歳・19歳": TEENS, "20歳以上": ADULT}
    for slot in CHILD_AGE_FORM.slots:
        assert {c.label for c in slot.choices} == set(expected)
        for choice in slot.choices:
            assert slot.parse(Text(choice.value), None) == expected[choice.label]


def test_a_follow_up_after_a_move_is_read_with_it_and_the_answer_can_be_judged(chat):
    replies = chat.say("県内で引っ越しました")
    assert any(c.label == "👍 役に立った" for c in replies[-1].choices)
    assert chat.say("県外だったら？")[0].topic == "termination"


def test_a_mother_whose_ten_year_old_was_diagnosed_gets_the_childrens_scheme_and_then_its_cap(chat):
    """Issue 25's mother, in her own words, over two turns: 小慢 first, never the adult calculator."""
    first = chat.text(chat.say("うちの10歳の子が難病と診断されました"))
    assert "小児慢性特定疾病" in first
    second = chat.say("うちの子の場合の上限額は？")
    assert "小児慢性" in chat.text(second)
    assert all(r.expecting not in ("welfare", "child_age") for r in second), "no adult calculator, no age asked again"


def test_a_child_told_of_before_is_remembered_when_the_calculator_starts_later(chat):
    """The patient's age group is kept: a parent who said 「うちの10歳の子」 and later asks for the
    calculator in words that name nobody hears of 小児慢性 before the adult questions."""
    chat.say("うちの10歳の子が難病と言われました。申請はどうすれば")
    replies = chat.say("自己負担の上限額を計算して")
    assert "小児慢性特定疾病" in replies[0].text
    assert replies[-1].expecting == "welfare"


def test_an_adult_asking_for_the_calculator_hears_nothing_of_children(chat):
    replies = chat.say("自己負担の上限額を計算して")
    assert "小児慢性特定疾病" not in replies[0].text


@pytest.mark.parametrize("said", ["とうきょうから前橋にこしてきました", "いばらきから太田にこしてきたんだけど"])
def test_a_move_in_typed_in_kana_is_read_as_one(chat, said):
    """越してきた typed by sound, and the prefecture left behind in kana: the application after moving in."""
    replies = chat.say(said)
    assert replies[0].topic == "moving-in", replies[0].text[:80]
    assert "そのまま使えません" in chat.text(replies)
