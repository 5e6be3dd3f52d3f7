"""200 people at once, each in their own copay dialog through the Slack HTTP server: nothing lost or crossed.

Every user has a different scenario (welfare, ventilator, tax-exempt household with an income,
or a 所得割 total in each tier, months of 高額かつ長期, other recipients in the household, this
month's cost and insurance rate), and every other user asks a question of the FAQ in the middle
of the dialog (answered, then the pending question again). Each user sends their turns one by
one as signed DM events, reading the bot's last message in their own DM to know which question
was asked and answering it in free text; all users run in parallel threads.

The server is ``serve``'s app on uvicorn (``bot.server.start_in_thread``) on port 0 with a
SQLite file, and again on PostgreSQL when ``TEST_DATABASE_URL`` is set. The PostgreSQL run is the
one where turns really run side by side: on SQLite, a turn's first write takes the database's
single write lock until its commit, so the turns take turns. The turns run as ``nanbyo-bot
serve`` runs them: recorded before the ack and answered on a thread pool (``bot.turns.PooledRunner``).

A request that fails is sent again with ``X-Slack-Retry-Num``, as Slack does; the event id is
the same, so it must still be answered once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.bootstrap import build_bot, build_service
from bot.config import Settings
from bot.server import start_in_thread
from bot.texts import DB_DOWN_TEXT, ERROR_TEXT
from handlers.calc.copay import CopayFacts, CopayResult, calculate
from handlers.copay import COPAY_FORM
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_slack_e2e import SECRET, TOKEN, dm, post_signed

USERS = 200
TURN_TIMEOUT = 30.0  # seconds for the bot's answer to one turn
TEST_DEADLINE = 120.0  # seconds for all conversations together
POLL_SECONDS = 0.02
START = "自己負担いくらになるか知りたい"
RESULT_MARK = "月の自己負担上限額："
QUESTION_OF = {slot.ask: slot.name for slot in COPAY_FORM.slots}  # the copay questions are fixed texts


# --- the scenarios -------------------------------------------------------------------------------------

INCOME_TAXES = (0, 30_000, 70_999, 71_000, 150_000, 250_999, 251_000, 600_000)  # each side of each boundary
INCOMES = (500_000, 800_000, 800_001, 1_200_000)  # 低所得1 up to 80万円 inclusive, 低所得2 above
HIGH_COST_MONTHS = (0, 3, 6, 12)
HOUSEHOLD_CAPS = ((), (10_000,), (5_000, 2_500), (30_000,))
RATES = (0.3, 0.2, 0.1)
ASIDES = (
    "入院したときの食事代って上限に含まれますか",
    "受給者証の有効期間はどのくらいですか",
    "薬局での支払いも上限に入りますか",
)
SOURCE_MARK = "出典："  # every FAQ answer names its source


@dataclass(frozen=True)
class Scenario:
    user: str
    welfare: bool
    ventilator: bool
    tax_exempt: bool
    income: int
    income_tax: int
    high_cost_months: int
    household_caps: tuple[int, ...]
    medical_cost: int | None  # None: the user answers わからない
    insurance_rate: float
    aside: str | None = None  # a question of the FAQ asked in the middle of the dialog ...
    aside_at: int = 0  # ... instead of answering the question of this index in slots()

    @property
    def channel(self) -> str:
        return "D" + self.user.removeprefix("U")

    def facts(self) -> CopayFacts:
        """What the dialog knows at its end: only the questions it asks, as ``handlers.copay`` asks them."""
        if self.welfare:
            return CopayFacts(welfare=True, ventilator=False, high_cost_months=0)
        taxed = not self.tax_exempt
        return CopayFacts(
            welfare=False,
            ventilator=self.ventilator,
            tax_exempt=self.tax_exempt,
            income=None if taxed else self.income,
            income_tax=self.income_tax if taxed else None,
            high_cost_months=self.high_cost_months if taxed and not self.ventilator else 0,
            household_caps=self.household_caps,
            medical_cost=self.medical_cost,
            insurance_rate=self.insurance_rate if self.medical_cost else None,
        )

    def slots(self) -> list[str]:
        """The questions this user should be asked, in order."""
        if self.welfare:
            return ["welfare"]
        asked = ["welfare", "ventilator", "tax_exempt"]
        asked.append("income" if self.tax_exempt else "income_tax")
        if not self.tax_exempt and not self.ventilator:
            asked.append("high_cost_months")
        asked += ["household_caps", "medical_cost"]
        if self.medical_cost:
            asked.append("insurance_rate")
        return asked

    def answer(self, slot: str) -> str:
        """Free text, as people type it (several styles)."""
        style = int(self.user[-3:]) % 3
        if slot == "welfare":
            return "はい、受けています" if self.welfare else ("いいえ", "受けてない", "いいえ、受けていません")[style]
        if slot == "ventilator":
            return "はい" if self.ventilator else "いいえ"
        if slot == "tax_exempt":
            return "はい、非課税です" if self.tax_exempt else "いいえ"
        if slot in ("income", "income_tax"):
            return yen(self.income if slot == "income" else self.income_tax, style)
        if slot == "high_cost_months":
            return f"{self.high_cost_months}か月" if self.high_cost_months else "ない"
        if slot == "household_caps":
            return "と".join(f"{c:,}円" for c in self.household_caps) if self.household_caps else "いない"
        if slot == "medical_cost":
            return yen(self.medical_cost, style) if self.medical_cost else "わからない"
        if slot == "insurance_rate":
            return f"{round(self.insurance_rate * 10)}割"
        raise AssertionError(f"unexpected question {slot}")


def yen(amount: int, style: int) -> str:
    if style == 0:
        return f"{amount:,}円"
    if style == 1:
        return f"{amount:,}円".translate(str.maketrans("0123456789,", "０１２３４５６７８９，"))
    return str(amount)


def scenario(i: int, run: str) -> Scenario:
    aside = ASIDES[i % len(ASIDES)] if i % 2 == 0 else None
    return Scenario(
        user=f"U{run}{i:03d}",
        welfare=i % 25 == 0,
        ventilator=i % 7 == 3,
        tax_exempt=i % 5 == 1,
        income=INCOMES[(i // 5) % len(INCOMES)],
        income_tax=INCOME_TAXES[(i // 2) % len(INCOME_TAXES)],
        high_cost_months=HIGH_COST_MONTHS[(i // 3) % len(HIGH_COST_MONTHS)],
        household_caps=HOUSEHOLD_CAPS[(i // 4) % len(HOUSEHOLD_CAPS)],
        # Small, distinct costs: the payment is the user's own figure, so crossed answers would show.
        medical_cost=None if i % 6 == 5 else 1_000 + 10 * i,
        insurance_rate=RATES[i % len(RATES)],
        aside=aside,
        # Half of them at the first question, all at about the same moment (FAQ turns running side by
        # side), the others at every later question: taken modulo the questions this user is asked.
        aside_at=0 if i % 4 == 0 else i // 4,
    )


def expected_lines(result: CopayResult) -> list[str]:
    lines = [f"上限額：{result.cap:,}円", f"階層区分：{result.tier}"]
    if result.payment is not None:
        lines.append(f"目安：{result.payment:,}円")
    return lines


# --- reading each DM from the fake's records -----------------------------------------------------------


class Inboxes:
    """The fake's chat.postMessage calls, polled and sorted into one list of texts per channel."""

    def __init__(self, fake: FakeSlackAPI, channels: list[str]) -> None:
        self.fake = fake
        self.messages: dict[str, list[str]] = {c: [] for c in channels}
        self.strays: list[str] = []  # channels nobody of ours wrote in
        self._arrived = {c: threading.Event() for c in channels}
        self._seen = 0
        self._stop = threading.Event()
        self.abort = threading.Event()  # set when the test has failed: every waiting user gives up
        self._thread = threading.Thread(target=self._poll, name="inboxes", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.collect()

    def collect(self) -> None:
        calls = self.fake.calls_to("chat.postMessage")  # grows only: new calls are at the end
        for call in calls[self._seen :]:
            channel = call.args.get("channel")
            if channel in self.messages:
                self.messages[channel].append(call.args.get("text") or "")
                self._arrived[channel].set()
            else:
                self.strays.append(str(channel))
        self._seen = len(calls)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.collect()

    def wait_turn(self, channel: str, after: int) -> list[str]:
        """The messages that follow the first ``after``, once the last one is a question or the result."""
        deadline = time.monotonic() + TURN_TIMEOUT
        arrived = self._arrived[channel]
        while True:
            arrived.clear()
            new = self.messages[channel][after:]
            if any(ERROR_TEXT in m or DB_DOWN_TEXT in m for m in new):
                raise AssertionError(f"{channel}: the bot apologised for an internal error: {new}")
            if new and (question_in(new[-1]) or RESULT_MARK in new[-1]):
                return new
            left = deadline - time.monotonic()
            if self.abort.is_set():
                raise AssertionError(f"{channel}: given up, another user's dialog failed")
            if left <= 0:
                raise AssertionError(f"{channel}: no question or result within {TURN_TIMEOUT}s; got {new}")
            arrived.wait(min(left, 1.0))


def question_in(message: str) -> str | None:
    found = [slot for ask, slot in QUESTION_OF.items() if ask in message]
    return found[-1] if found else None


# --- one user's conversation ---------------------------------------------------------------------------


def send(url: str, body: str) -> None:
    """POST a signed event; when it fails, send it again as Slack does (same event id, X-Slack-Retry-Num)."""
    for attempt in range(4):
        headers = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"} if attempt else {}
        try:
            if post_signed(url, body, headers=headers).status == 200:
                return
        except OSError:  # reset or timed out: Slack would retry
            pass
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("the server did not ack an event after 3 retries")


def converse(url: str, inboxes: Inboxes, s: Scenario) -> list[str]:
    """Run the whole dialog; returns the slots that were asked, in order (a question asked again
    after the FAQ answer to the aside is checked here and not listed twice)."""
    asked: list[str] = []
    seen = 0
    aside_at = s.aside_at % len(s.slots()) if s.aside else None
    text = START
    for _ in range(len(COPAY_FORM.slots) + 2):
        send(url, dm(text, user=s.user))
        new = inboxes.wait_turn(s.channel, seen)
        seen += len(new)
        slot = question_in(new[-1])
        if slot is None:  # the result
            return asked
        asked.append(slot)
        if len(asked) - 1 == aside_at and s.aside:
            send(url, dm(s.aside, user=s.user))
            new = inboxes.wait_turn(s.channel, seen)
            seen += len(new)
            assert any(SOURCE_MARK in m for m in new[:-1]), f"{s.user}: the aside got no FAQ answer: {new}"
            assert question_in(new[-1]) == slot, f"{s.user}: after the aside, {slot} was not asked again: {new}"
        text = s.answer(slot)
    raise AssertionError(f"{s.user}: the dialog did not end; asked {asked}")


# --- the servers -------------------------------------------------------------------------------------------


def test_200_concurrent_copay_dialogs_each_end_with_their_own_cap(database_url: str) -> None:
    fake = FakeSlackAPI()
    settings = Settings(
        database_url=database_url, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=fake.api_url
    )
    bot = build_bot(settings)
    server = start_in_thread(build_service(settings, bot=bot))
    url = server.url + "/slack/events"
    scenarios = [scenario(i, uuid.uuid4().hex[:4].upper()) for i in range(USERS)]
    inboxes = Inboxes(fake, [s.channel for s in scenarios])
    try:
        with ThreadPoolExecutor(max_workers=USERS, thread_name_prefix="user") as pool:
            futures = {s.user: pool.submit(converse, url, inboxes, s) for s in scenarios}
            deadline = time.monotonic() + TEST_DEADLINE
            try:
                asked = {user: f.result(timeout=max(1.0, deadline - time.monotonic())) for user, f in futures.items()}
            except BaseException:
                inboxes.abort.set()
                raise
    finally:
        server.stop()  # waits for every acked turn: a late duplicate would be posted before the counts below
        inboxes.close()
        fake.close()
        bot.store.engine.dispose()

    assert inboxes.strays == [], "every message goes to the DM of the user who wrote"
    for s in scenarios:
        transcript = inboxes.messages[s.channel]
        assert asked[s.user] == s.slots(), f"{s.user} was asked {asked[s.user]}, expected {s.slots()}"
        repeated = {m: n for m, n in Counter(transcript).items() if n > 1}
        if s.aside:  # the pending question, asked again after the FAQ answer
            repeated = {m: n for m, n in repeated.items() if not (n == 2 and question_in(m))}
        assert not repeated, f"{s.user}: a message was posted twice: {transcript}"
        [result] = [m for m in transcript if RESULT_MARK in m]
        assert transcript[-1] == result, f"{s.user}: something was posted after the result"
        for line in expected_lines(calculate(s.facts())):
            assert line in result, f"{s.user} ({s}): expected {line!r} in\n{result}"
