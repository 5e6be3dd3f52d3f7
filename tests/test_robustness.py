"""Any text, any order of choices, any slot value: a turn never crashes and always answers in Japanese."""

import re

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.bootstrap import build_bot
from bot.config import Settings
from handlers.messages import IncomingMessage
from tests.conftest import FIXED_NOW

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
CHOICE_VALUES = [
    "menu",
    "office",
    "delete",
    "cancel",
    "back",
    "yes",
    "no",
    "unknown",
    "0.3",
    "none",
    "6",
    "0",
    "start:copay",
    "start:start-date",
    "start:mild-high-cost",
    "start:reminder",
    "topic:reissue",
    "topic:does-not-exist",
    "今日",
    "work",
    "hospitalised",
    "zzz",
]
TEXTS = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "はい",
            "いいえ",
            "わからない",
            "７万円",
            "二十五万",
            "R9.3.31",
            "やめる",
            "戻る",
            "草津町",
            "",
            "1234-5678-9012",
            "😀",
            "受給者証なくした",
            "自己負担を計算したい",
            "人と話したい",
            "データを削除",
        ]
    ),
    st.text(alphabet="あいうえお漢字０１２３万円年月日。、？!", min_size=1, max_size=40),
)
ATTACHMENTS = ["image", "file", "sticker", "video", "audio", "location", "unknown"]
TURN = st.one_of(
    TEXTS.map(lambda t: ("text", t)),
    st.sampled_from(CHOICE_VALUES).map(lambda c: ("choice", c)),
    st.tuples(st.sampled_from(ATTACHMENTS), st.sampled_from(["", "受給者証なくした", "はい"])).map(
        lambda a: ("attachment", a)
    ),
)

_BOTS: dict[str, object] = {}


def _bot(tmp_path_factory):
    if "bot" not in _BOTS:
        path = tmp_path_factory.mktemp("robust") / "r.db"
        bot = build_bot(Settings(database_url=f"sqlite:///{path}"), clock=lambda: FIXED_NOW)
        # Hundreds of turns at one fixed minute: flood control would (rightly) fall silent.
        bot.max_per_minute = 1_000_000
        _BOTS["bot"] = bot
    return _BOTS["bot"]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(TURN, min_size=1, max_size=8), user=st.integers(0, 5))
def test_any_sequence_of_turns_gets_japanese_replies(tmp_path_factory, turns, user):
    bot = _bot(tmp_path_factory)
    for kind, value in turns:
        if kind == "attachment":  # a photo, a file, a sticker, alone or with a few words
            msg = IncomingMessage("console", f"P{user}", text=value[1], attachment=value[0])
        else:
            msg = IncomingMessage(
                "console",
                f"P{user}",
                text=value if kind == "text" else None,
                choice=value if kind == "choice" else None,
            )
        replies = bot.handle(msg)
        assert replies, (kind, value)
        for reply in replies:
            assert reply.text and JAPANESE.search(reply.text), reply
            for choice in reply.choices:
                assert choice.label and choice.value


def test_database_unavailable_gets_an_apology_and_the_next_message_works(tmp_path):
    import io
    import json

    from sqlalchemy.exc import OperationalError

    from bot.channels.console import run_json

    bot = build_bot(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), clock=lambda: FIXED_NOW)
    real = bot.store.unit_of_work
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("SELECT 1", {}, Exception("database is down"))
        return real()

    bot.store.unit_of_work = flaky
    out = io.StringIO()
    run_json(bot, io.StringIO("窓口を探す\n太田市\n太田市\n"), out, "U1")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 3
    assert rows[0]["replies"][-1]["expecting"] == "municipality"
    assert "申し訳" in rows[1]["replies"][0]["text"]
    assert rows[2]["replies"][-1]["expecting"] is None  # the dialog was kept: nothing half-written
    assert "太田保健福祉事務所" in rows[2]["replies"][-1]["text"]
