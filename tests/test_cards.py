"""Results and offices as cards: LINE Flex Messages and Slack Block Kit, with the text as fallback.

The replies come from real chat turns (the copay, start-date and 軽症高額 dialogs, the office
answer); their cards are rendered by the channels' own send path and checked against the
SDKs' models (line-bot-sdk v3 ``FlexMessage``, slack_sdk ``Block``) and the platforms'
documented limits. End to end, signed webhooks and events go through the channels to the
fake LINE and Slack APIs, which check the messages they receive. The LINE loading animation
is checked against the fake LINE API.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from linebot.v3.messaging import FlexMessage, TextMessage
from slack_sdk.models.blocks import Block

from bot.bootstrap import build_service
from bot.channels.line import to_messages
from bot.channels.line_cards import ACCENT, MAX_ALT_TEXT, alt_text
from bot.channels.slack import BLOCKS_PER_MESSAGE, FALLBACK_TEXT_LIMIT, escape, render
from bot.config import Settings
from bot.core import NOT_KEPT
from handlers.messages import Fact, Reply, Result, Row, Source, Table
from tests.conftest import Chat
from tests.fakes.line_api import FakeLineApi, message_problems
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_line_e2e import deliver, postback_event, text_event, webhook
from tests.test_slack_e2e import (  # noqa: F401 - fixtures used by name
    Running,
    answers_to,
    button_values,
    dm,
    post_signed,
    server,
    slack_settings,
    start_server,
    texts,
)

REPLY = "/v2/bot/message/reply"
LOADING = "/v2/bot/chat/loading/start"

# Each calculator as a user types it (FIXED_NOW is 2026-11-23), and what its card must show.
COPAY = [
    "自己負担の上限額を計算したい",
    "いいえ",
    "いいえ",
    "課税されてます",
    "7万1千円",
    "ない",
    "いない",
    "12万円",
    "3割",
]
START = ["開始日を計算して", "2025年6月1日", "2025年8月20日", "特になし"]
MILD = ["軽症高額に当てはまるか確かめたい", "40000、30000、35000、33330、50000、60000"]
CALCULATORS = {
    "copay": (COPAY, "20,000", "円", "階層区分：一般所得2"),
    "start-date": (START, "2025年7月20日", "", "早ければこの日から助成されます"),
    "mild-high-cost": (MILD, "満たしています", "", "6か月分として計算します"),
}


# The cost log as a user keeps it (FIXED_NOW is 2026-11-23: the table runs from 2025年12月 to 2026年11月).
COSTLOG = [
    "医療費の記録をつけたい",
    "はい",
    "いいえ",
    "5月 52,000円、6月 33,331円、7月 33,330円、8月 61,000円",
    "9月 自己負担 10,000円",
]
SHOW_LOG = "医療費の記録を見せて"


def finish(chat: Chat, script: list[str]) -> Reply:
    replies: list[Reply] = []
    for said in script:
        replies = chat.say(said)
    return replies[-1]


def line_dicts(replies: list[Reply]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in to_messages(replies)]


def flex_texts(node: Any) -> list[dict[str, Any]]:
    """Every text component of a Flex bubble, depth first."""
    if isinstance(node, dict):
        found = [node] if node.get("type") == "text" else []
        for key in ("header", "hero", "body", "footer", "contents"):
            found += flex_texts(node.get(key))
        return found
    if isinstance(node, list):
        return [t for child in node for t in flex_texts(child)]
    return []


def flex_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    footer = message["contents"].get("footer") or {}
    return [c["action"] for c in footer.get("contents", []) if c["type"] == "button"]


def check_slack_limits(message: dict[str, Any]) -> None:
    """Slack's documented limits, and every block parses into slack_sdk's model unchanged."""
    assert 1 <= len(message["blocks"]) <= BLOCKS_PER_MESSAGE
    assert 1 <= len(message["text"]) <= FALLBACK_TEXT_LIMIT
    for block in message["blocks"]:
        model = Block.parse(block)
        assert model is not None and model.to_dict() == block, block  # to_dict() validates the limits
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150 and block["text"]["type"] == "plain_text"
        if block["type"] == "section":
            assert "text" in block or block.get("fields")
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            assert all(len(e["text"]["text"]) <= 75 for e in block["elements"])


# --- the core's replies carry the structure ----------------------------------------------------


@pytest.mark.parametrize("name", CALCULATORS)
def test_calculator_results_carry_a_card_beside_the_same_text(chat: Chat, name: str) -> None:
    script, figure, unit, subtitle = CALCULATORS[name]
    result = finish(chat, script)
    assert result.result is not None and result.source is not None
    assert (result.result.figure, result.result.unit) == (figure, unit)
    assert subtitle in (result.result.subtitle or "")
    # The text is the whole answer as before: the figure, and the source the card names.
    assert figure in result.text and result.source.text in result.text
    assert [c.label for c in result.choices][:2] == ["くわしく", "答えを直す"], "the buttons stay"


def test_a_copay_with_unknown_answers_is_a_card_of_the_possible_caps(chat: Chat) -> None:
    result = finish(
        chat,
        [
            "自己負担の上限額を計算したい",
            "いいえ",
            "いいえ",
            "わからない",
            "わからない",
            "わからない",
            "いない",
            "わからない",
            "わからない",
        ],
    )
    card = result.result
    assert card is not None and "〜" in card.figure, card
    assert len(card.details) >= 2 and all(d.label.endswith("なら") for d in card.details)
    for fact in card.details:  # each possible tier is in the text too
        assert f"・{fact.label} {fact.value}" in result.text


def test_the_office_answer_carries_the_office(chat: Chat) -> None:
    chat.say("窓口を探す")
    [office] = [r for r in chat.say("草津町") if r.office is not None]
    assert office.office.name == "吾妻保健福祉事務所"
    assert office.office.phone in office.text and office.office.address in office.text
    assert office.office.tel_uri == "tel:" + office.office.phone.replace("-", "")


def test_a_place_named_alone_gets_the_office_card(chat: Chat) -> None:
    [reply] = chat.say("草津町")
    assert reply.office is not None and reply.office.name in reply.text


def test_a_kept_answer_keeps_its_card() -> None:
    """A turn answered again after a crash (bot.turn_worker) posts the same card, not text only."""
    reply = Reply(
        "月の自己負担上限額：20,000円",
        result=Result(
            "月の自己負担上限額",
            "20,000",
            "円",
            "階層区分：一般所得2",
            "決め手",
            (Fact("今月", "20,000円"),),
            ("目安です。",),
        ),
        source=Source("出典：群馬県"),
        kind="copay-result",
    )
    back = Reply.from_record(json.loads(json.dumps(reply.to_record(), ensure_ascii=False)))
    assert (back, back.result, back.source, back.kind) == (reply, reply.result, reply.source, reply.kind)
    table = Reply(
        "医療費の記録",
        table=Table(
            "医療費の記録（直近12か月）",
            ("月", "総額（10割）", ""),
            (Row(("2026年5月", "52,000円", "◎"), strong=True), Row(("2026年6月", "－", ""))),
            (Fact("高額かつ長期", "1か月"),),
            ("◎ 50,000円超",),
        ),
        kind="costlog-table",
    )
    back = Reply.from_record(json.loads(json.dumps(table.to_record(), ensure_ascii=False)))
    assert back.table == table.table
    old = {"text": "ok", "choices": [], "expecting": None, "topic": None, "kind": "answer"}  # kept before cards
    assert Reply.from_record(old) == Reply("ok")


# --- LINE: Flex Message cards ---------------------------------------------------------------------


@pytest.mark.parametrize("name", CALCULATORS)
def test_line_result_is_a_flex_card_with_the_figure_in_large_type(chat: Chat, name: str) -> None:
    script, figure, unit, subtitle = CALCULATORS[name]
    result = finish(chat, script)
    [message] = line_dicts([result])

    assert FlexMessage.from_dict(message).to_dict() == message, "a valid line-bot-sdk FlexMessage"
    assert message_problems([message]) == [], "within LINE's limits"
    texts_ = flex_texts(message["contents"])
    big = next(t for t in texts_ if t.get("size") in ("3xl", "xxl", "xl") and t.get("weight") == "bold")
    assert big["text"] == figure
    after = [t["text"] for t in texts_[texts_.index(big) + 1 :]]
    assert subtitle in "".join(after[:2]), "the tier (or what the figure means) right under it"
    assert result.source.text in [t["text"] for t in texts_], "the card names its source"
    assert message["altText"] == alt_text(result.text) and len(message["altText"]) <= MAX_ALT_TEXT
    labels = [i["action"]["label"] for i in message["quickReply"]["items"]]
    assert labels[:2] == ["くわしく", "答えを直す"], "quick replies as today"


def test_line_office_card_calls_and_opens_the_map(chat: Chat) -> None:
    chat.say("窓口を探す")
    [message] = line_dicts(chat.say("草津町"))
    assert FlexMessage.from_dict(message).to_dict() == message
    assert message_problems([message]) == []
    call, where = flex_buttons(message)
    assert (call["label"], call["type"], call["uri"]) == ("電話する", "uri", "tel:0279753303")
    assert where["label"] == "地図"
    assert where["uri"] == "https://www.google.com/maps/search/" + quote("群馬県吾妻郡中之条町大字西中之条183-1")
    assert "吾妻保健福祉事務所" in [t["text"] for t in flex_texts(message["contents"])]


def test_line_alt_text_is_cut_to_the_limit_at_a_line_break() -> None:
    text = "\n".join(f"{n}行目：" + "あ" * 30 for n in range(20))  # about 700 characters
    [message] = line_dicts([Reply(text, result=Result("月の自己負担上限額", "20,000", "円"))])
    alt = message["altText"]
    assert len(alt) <= MAX_ALT_TEXT and alt.endswith("…") and text.startswith(alt[:-1])
    assert alt[:-1].endswith("あ"), "cut where a line ends"


def test_line_replies_without_structure_stay_text_and_the_quick_replies_go_last(chat: Chat) -> None:
    messages = to_messages(chat.say("窓口を探す") + chat.say("草津町"))
    assert isinstance(messages[0], TextMessage) and isinstance(messages[-1], FlexMessage)
    assert messages[-1].quick_reply is not None and all(m.quick_reply is None for m in messages[:-1])


# --- Slack: Block Kit -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CALCULATORS)
def test_slack_result_is_block_kit_with_fields_a_source_line_and_buttons(chat: Chat, name: str) -> None:
    script, figure, unit, subtitle = CALCULATORS[name]
    result = finish(chat, script)
    [message] = render([result])

    check_slack_limits(message)
    header, *rest = message["blocks"]
    assert header["type"] == "header" and header["text"]["text"].endswith(f"{figure}{unit}")
    assert subtitle in json.dumps(rest, ensure_ascii=False)
    context = [b for b in rest if b["type"] == "context"][-1]
    assert context["elements"][-1]["text"] == escape(result.source.text), "a context line for the source"
    assert [v for b in rest if b["type"] == "actions" for v in (e["value"] for e in b["elements"])] == [
        c.value for c in result.choices
    ], "the buttons as today"
    assert message["text"] == escape(result.text), "the plain text is the fallback"


def test_slack_copay_details_are_fields(chat: Chat) -> None:
    [message] = render([finish(chat, COPAY)])
    fields = [f["text"] for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert fields == ["*今月お支払いになる額の目安*\n20,000円"]


def test_slack_office_is_fields_with_a_map_link(chat: Chat) -> None:
    chat.say("窓口を探す")
    [message] = render(chat.say("草津町"))
    check_slack_limits(message)
    fields = [f["text"] for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert "*電話*\n0279-75-3303" in fields
    address = next(f for f in fields if f.startswith("*所在地*"))
    assert "<https://www.google.com/maps/search/" in address and "|地図で見る>" in address


def test_slack_many_possible_tiers_fit_in_sections_of_ten_fields() -> None:
    details = tuple(Fact(f"区分{n}なら", f"月{n * 1000:,}円") for n in range(23))
    [message] = render(
        [Reply("text", result=Result("月の自己負担上限額（考えられる額）", "0〜30,000", "円", details=details))]
    )
    check_slack_limits(message)
    sections = [b for b in message["blocks"] if b["type"] == "section" and b.get("fields")]
    assert [len(s["fields"]) for s in sections] == [10, 10, 3]


# --- the cost log's table -------------------------------------------------------------------------


def show_log(chat: Chat) -> Reply:
    finish(chat, COSTLOG)
    [table] = chat.say(SHOW_LOG)
    return table


def test_the_cost_log_table_carries_its_months_marks_and_counts_beside_the_text(chat: Chat) -> None:
    reply = show_log(chat)
    table = reply.table
    assert table is not None and reply.source is not None and reply.source.text in reply.text
    assert [r.cells[0] for r in table.rows] == ["2025年12月"] + [f"2026年{m}月" for m in range(1, 12)]
    by_month = {r.cells[0]: r for r in table.rows}
    assert by_month["2026年5月"].cells[1:] == ("52,000円", "◎") and by_month["2026年5月"].strong
    assert by_month["2026年6月"].cells[1:] == ("33,331円", "○")
    assert by_month["2026年7月"].cells[1:] == ("33,330円", "") and not by_month["2026年7月"].strong, "exactly the line"
    assert by_month["2026年9月"].cells[1] == "総額未入力（自己負担 10,000円）"
    assert by_month["2026年10月"].cells[1] == "－"
    assert [f.value for f in table.summary] == ["2か月（あと4か月）", "3か月 条件に届いています"]
    # The text stays the whole answer: the same months and counts, as short lines.
    assert "26年 5月　   52,000円 ◎" in reply.text and "軽症高額：3/3か月 条件に届いています" in reply.text


def test_line_cost_log_table_is_a_flex_card_that_reads_on_a_phone(chat: Chat) -> None:
    reply = show_log(chat)
    [message] = line_dicts([reply])
    assert FlexMessage.from_dict(message).to_dict() == message, "a valid line-bot-sdk FlexMessage"
    assert message_problems([message]) == [], "within LINE's limits"
    body = message["contents"]["body"]["contents"]
    lines = [c for c in body if c["type"] == "box" and c["layout"] == "horizontal"]
    heading, *months = lines
    assert [t.get("text") for t in heading["contents"]] == ["月", "総額（10割）", None]
    assert len(months) == 12 and all(len(line["contents"]) == 3 for line in months)
    may = next(line["contents"] for line in months if line["contents"][0]["text"] == "2026年5月")
    assert (may[1]["text"], may[1]["weight"], may[1]["color"], may[2]["text"]) == ("52,000円", "bold", ACCENT, "◎")
    assert may[1]["align"] == "end", "amounts right-aligned, so that their digits line up"
    july = next(line["contents"] for line in months if line["contents"][0]["text"] == "2026年7月")
    assert july[1]["text"] == "33,330円" and "weight" not in july[1], "exactly the line does not stand out"
    # A phone shows each month whole: the month and the amount in body type, none longer than a short line.
    assert all(c["size"] == "md" for line in months for c in line["contents"] if c["type"] == "text")
    assert all(len(line["contents"][0]["text"]) <= 8 for line in months)
    shown = [t["text"] for t in flex_texts(message["contents"])]
    assert "3か月 条件に届いています" in shown and reply.source.text in shown, "the counts and the source"
    assert message["altText"] == alt_text(reply.text)
    assert [i["action"]["data"] for i in message["quickReply"]["items"]] == ["start:costlog", "menu"]


def test_slack_cost_log_table_is_fields_a_row_with_the_counts_and_the_source(chat: Chat) -> None:
    reply = show_log(chat)
    [message] = render([reply])
    check_slack_limits(message)
    header, *rest = message["blocks"]
    assert header["text"]["text"] == "医療費の記録（直近12か月）"
    sections = [b for b in rest if b["type"] == "section"]
    cells = [f["text"] for s in sections[:-1] for f in s["fields"]]
    rows = dict(zip(cells[::2], cells[1::2]))  # two columns: the month, then its amount and mark
    assert len(rows) == 12 and list(rows)[0] == "2025年12月"
    assert rows["2026年5月"] == "*52,000円 ◎*" and rows["2026年7月"] == "33,330円"
    assert [f["text"] for f in sections[-1]["fields"]] == [
        "*高額かつ長期（◎が6か月以上）*\n2か月（あと4か月）",
        "*軽症高額（○が3か月以上）*\n3か月 条件に届いています",
    ]
    context = [b for b in rest if b["type"] == "context"][-1]
    assert context["elements"][-1]["text"] == escape(reply.source.text)
    assert [e["value"] for b in rest if b["type"] == "actions" for e in b["elements"]] == ["start:costlog", "menu"]
    assert message["text"] == escape(reply.text), "the plain text is the fallback"


def test_an_empty_cost_log_is_a_text_without_a_card(chat: Chat) -> None:
    [reply] = chat.say(SHOW_LOG)
    assert reply.table is None and "記録はまだありません" in reply.text
    assert isinstance(to_messages([reply])[0], TextMessage)


# --- end to end: what the fake LINE and Slack APIs receive ------------------------------------------


@pytest.fixture()
def line_fake() -> Iterator[FakeLineApi]:
    with FakeLineApi.start() as api:
        yield api


class LineChannel:
    """LINE's webhook on an inline turn runner (its turns are answered when a callback returns)."""

    def __init__(self, bot: Any, settings: Settings) -> None:
        self._service = build_service(settings, bot=bot, pooled=False)
        self.handle_callback = self._service.line.handle_callback

    def close(self) -> None:
        self._service.close()


def line_channel(bot: Any, settings: Settings, fake: FakeLineApi, loading_after: float | None = 30.0) -> LineChannel:
    return LineChannel(
        bot,
        dataclasses.replace(
            settings,
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=fake.access_token,
            line_api_url=fake.url,
            line_loading_after_seconds=loading_after,
        ),
    )


def test_line_copay_result_reaches_line_as_a_flex_card(bot: Any, settings: Settings, line_fake: FakeLineApi) -> None:
    channel = line_channel(bot, settings, line_fake)
    try:
        for said in COPAY:
            deliver(channel, webhook(text_event(said)))
    finally:
        channel.close()
    last = line_fake.calls(REPLY)[-1]
    assert last.status == 200, last.json
    card = last.json["messages"][-1]
    assert card["type"] == "flex" and card["altText"].startswith("月の自己負担上限額：20,000円")
    assert "20,000" in [t["text"] for t in flex_texts(card["contents"])]
    assert [i["action"]["data"] for i in card["quickReply"]["items"]][:2] == ["details", "fix"]


def test_line_office_card_reaches_line_with_a_call_button(bot: Any, settings: Settings, line_fake: FakeLineApi) -> None:
    channel = line_channel(bot, settings, line_fake)
    try:
        deliver(channel, webhook(postback_event("office")))
        deliver(channel, webhook(text_event("草津町")))
    finally:
        channel.close()
    last = line_fake.calls(REPLY)[-1]
    assert last.status == 200, last.json
    assert flex_buttons(last.json["messages"][-1])[0]["uri"] == "tel:0279753303"


def test_slack_office_answer_reaches_slack_as_block_kit(server: Running, fake_slack: FakeSlackAPI) -> None:
    post_signed(server.events, dm("窓口を探す"))
    answers_to(fake_slack, "D1", 2)
    post_signed(server.events, dm("草津町"))
    office = answers_to(fake_slack, "D1", 3)[2]
    blocks = office.args["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "吾妻保健福祉事務所", "emoji": False}}
    assert "*電話*\n0279-75-3303" in texts([office])
    assert "吾妻保健福祉事務所" in office.args["text"] and "0279-75-3303" in office.args["text"], "text fallback"
    assert "topic:new-application-documents" in button_values(office)


def test_line_cost_log_table_reaches_line_as_a_flex_card(bot: Any, settings: Settings, line_fake: FakeLineApi) -> None:
    channel = line_channel(bot, settings, line_fake)
    try:
        for said in [*COSTLOG, SHOW_LOG]:
            deliver(channel, webhook(text_event(said)))
    finally:
        channel.close()
    last = line_fake.calls(REPLY)[-1]
    assert last.status == 200, last.json
    [card] = last.json["messages"]
    assert card["type"] == "flex" and card["altText"].startswith("医療費の記録（直近12か月）")
    shown = [t["text"] for t in flex_texts(card["contents"])]
    assert shown.count("2026年5月") == 1 and "52,000円" in shown and "3か月 条件に届いています" in shown


def test_slack_cost_log_table_reaches_slack_as_block_kit(server: Running, fake_slack: FakeSlackAPI) -> None:
    # Each message's answer ends with these words: wait for it before sending the next.
    ends = [
        "記録を始めますか",
        "お知らせを送りましょうか",
        "月と金額の組で",
        "記録しました：5月",
        "自己負担）として記録しました",
        "医療費の記録（直近12か月）",
    ]
    for said, end in zip([*COSTLOG, SHOW_LOG], ends, strict=True):
        post_signed(server.events, dm(said))
        [table] = fake_slack.wait_for("chat.postMessage", where=lambda c: end in (c.args.get("text") or ""))
    check_slack_limits({"text": table.args["text"], "blocks": table.args["blocks"]})
    assert table.args["blocks"][0]["text"]["text"] == "医療費の記録（直近12か月）"
    assert "2026年5月\n*52,000円 ◎*" in texts([table]), "the month, then its amount, as fields"
    assert table.args["text"].startswith("医療費の記録（直近12か月）"), "text fallback"
    assert button_values(table) == ["start:costlog", "menu"]


# --- LINE's loading animation ------------------------------------------------------------------------


class SlowBot:
    """The real bot, whose turns wait until LINE was asked for the loading animation (a slow turn)."""

    def __init__(self, bot: Any, fake: FakeLineApi) -> None:
        self._bot, self._fake = bot, fake
        self.waited = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bot, name)

    def answer(self, msg: Any, keeper: Any = NOT_KEPT) -> list[Reply]:
        self._fake.wait_for(LOADING, timeout=10)
        self.waited.set()
        return self._bot.answer(msg, keeper)


def test_a_slow_line_turn_shows_the_loading_animation_before_the_answer(
    bot: Any, settings: Settings, line_fake: FakeLineApi
) -> None:
    slow = SlowBot(bot, line_fake)
    channel = line_channel(slow, settings, line_fake, loading_after=0.05)
    try:
        deliver(channel, webhook(text_event("受給者証をなくしました", user="U7")))
    finally:
        channel.close()
    assert slow.waited.is_set()
    paths = [r.path for r in line_fake.requests]
    assert paths == [LOADING, REPLY], "the animation first, then the answer (which ends it)"
    [loading] = line_fake.calls(LOADING)
    assert loading.status == 202 and loading.json == {"chatId": "U7", "loadingSeconds": 20}
    assert "再交付" in "\n".join(line_fake.sent_texts())


def test_a_quick_line_turn_sends_no_loading_animation(bot: Any, settings: Settings, line_fake: FakeLineApi) -> None:
    channel = line_channel(bot, settings, line_fake, loading_after=30.0)
    try:
        deliver(channel, webhook(text_event("メニュー")))
    finally:
        channel.close()
    assert [r.path for r in line_fake.requests] == [REPLY]


def test_a_failed_loading_animation_does_not_stop_the_answer(
    bot: Any, settings: Settings, line_fake: FakeLineApi
) -> None:
    line_fake.loading_status = 500
    channel = line_channel(bot, settings, line_fake, loading_after=0)
    try:
        deliver(channel, webhook(text_event("メニュー")))
    finally:
        channel.close()
    assert [(r.path, r.status) for r in line_fake.requests] == [(LOADING, 500), (REPLY, 200)]


@pytest.mark.parametrize(("raw", "seconds"), [(None, 1.0), ("0", 0.0), ("2.5", 2.5), ("off", None), ("-1", None)])
def test_the_loading_threshold_is_configurable(raw: str | None, seconds: float | None) -> None:
    env = {} if raw is None else {"LINE_LOADING_AFTER_SECONDS": raw}
    assert Settings.from_env(env, dotenv=False).line_loading_after_seconds == seconds


def test_a_loading_threshold_that_is_no_number_is_refused() -> None:
    with pytest.raises(ValueError, match="LINE_LOADING_AFTER_SECONDS"):
        Settings.from_env({"LINE_LOADING_AFTER_SECONDS": "soon"}, dotenv=False)
