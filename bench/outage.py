"""What a message API outage costs: Slack and LINE events acked while the platform answers 503.

Serves the bot in this process (uvicorn on 127.0.0.1, the turns recorded in a SQLite file and run by
the pooled runner, as the tests do), with the fake Slack Web API and fake LINE Messaging API of
``tests/fakes`` in front. The message APIs answer 503 for ``--outage`` seconds; during that time
``--events`` signed events (half Slack, half LINE, one user each) are sent and acked. Then it waits
until every acked event has an answer and prints: acked, answered, lost (acked and never
answered), answered twice, retried deliveries, and how long after the outage the last answer came.

    .venv/bin/python bench/outage.py                 # a 10 s outage, 100 events
    .venv/bin/python bench/outage.py --restart       # the same, the turn runner stopped and replaced mid-outage
    .venv/bin/python bench/outage.py --status 500    # 500 instead of 503 (Slack may have posted: counted)
    .venv/bin/python bench/outage.py --quick         # a 3 s outage, 20 events (CI)

The counts of retries, of answers that may show twice and of deliveries given up are those
``nanbyo-bot stats`` prints (``delivery_stat``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections import Counter  # noqa: E402

from bot.bootstrap import build_bot, build_service  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runner import today_tokyo  # noqa: E402
from bot.server import start_in_thread  # noqa: E402
from bot.turns import PooledRunner  # noqa: E402
from tests.fakes.line_api import FakeLineApi  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.test_line_e2e import PUSH, REPLY, sign, text_event, webhook  # noqa: E402
from tests.test_line_e2e import SECRET as LINE_SECRET  # noqa: E402
from tests.test_slack_e2e import SECRET, TOKEN, dm, post_signed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=None, help="seconds the message APIs answer 503 (10)")
    parser.add_argument("--events", type=int, default=None, help="events sent during the outage (100)")
    parser.add_argument("--quick", action="store_true", help="a 3 s outage, 20 events")
    parser.add_argument("--status", type=int, default=503, help="what the APIs answer meanwhile (503; 500, 429)")
    parser.add_argument("--retry-after", default=None, help="the Retry-After header sent with it (none)")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="once the events are acked, stop the turn runner (its turns left in the queue) "
        "and start another, as serve does with a turn process that died",
    )
    args = parser.parse_args()
    outage = args.outage or (3.0 if args.quick else 10.0)
    events = args.events or (20 if args.quick else 100)
    logging.disable(logging.ERROR)  # each refused delivery is logged; the figures are the point here

    slack, line = FakeSlackAPI(), FakeLineApi.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/outage.db",
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            slack_bot_user_id="UBOT",
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=line.access_token,
            line_api_url=line.url,
        )
        bot = build_bot(settings)
        service = build_service(settings, bot=bot)
        server = start_in_thread(service)
        second: PooledRunner | None = None
        acked: list[str] = []
        try:
            started = time.monotonic()
            slack.outage(outage, args.status, args.retry_after)
            line.outage(outage, args.status, args.retry_after)
            for n in range(events):
                if n % 2:
                    user = f"U{1000 + n}"
                    status = post_signed(server.url + "/slack/events", dm("受給者証なくした", user=user)).status
                else:
                    user = f"L{1000 + n}"
                    body = webhook(text_event("受給者証なくした", user=user, reply_token=f"rt-{user}"))
                    request = urllib.request.Request(
                        server.url + "/line/callback",
                        data=body,
                        method="POST",
                        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
                    )
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status = response.status
                if status == 200:
                    acked.append(user)
                time.sleep(outage * 0.8 / events)  # spread over the outage
            if args.restart:
                service.runner.consumer.close(timeout=0.5)  # what is left waits in the queue
                server.stop()
                second = PooledRunner(
                    build_bot(settings),
                    service.outboxes,
                    store=bot.store,
                    database_url=settings.database_url,
                    lease=1.0,
                )
            deadline = time.monotonic() + outage + 120
            while True:
                answered = _answered(slack, line)
                if all(answered[u] for u in acked) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            last = time.monotonic() - started - outage
        finally:
            server.stop()
            if second is not None:
                second.close()
            with bot.store.unit_of_work() as uow:
                counts = uow.statistics.delivery_stats(today_tokyo())
            slack.close()
            line.close()
    answered = _answered(slack, line)
    lost = [u for u in acked if not answered[u]]
    twice = [u for u in acked if answered[u] > 1]
    total = Counter[str]()
    for per_channel in counts.values():
        total.update(per_channel)
    print(
        f"outage: {outage:.0f} s of {args.status} from the Slack and LINE message APIs; {events} events sent "
        f"during it{'; the turn runner replaced mid-outage' if args.restart else ''}"
    )
    print(
        f"acked: {len(acked)}   answered: {len(acked) - len(lost)}   lost: {len(lost)}   "
        f"answered twice: {len(twice)}   deliveries retried: {total['retried']}   "
        f"counted as may show twice: {total['maybe_twice']}   given up: {total['given_up']}"
    )
    refused = sum(1 for c in slack.calls_to("chat.postMessage", ok_only=False) if c.status != 200) + sum(
        1 for r in line.requests if r.status >= 400 and r.path in (PUSH, REPLY)
    )
    print(f"requests the fakes refused: {refused} (each a retry, or a wait inside the Slack client)")
    print(f"last answer: {last:.1f} s after the outage ended")
    return 1 if lost else 0


def _answered(slack: FakeSlackAPI, line: FakeLineApi) -> Counter[str]:
    got: Counter[str] = Counter()
    for call in slack.calls_to("chat.postMessage"):
        got["U" + call.args["channel"].removeprefix("D")] += 1
    for rec in line.requests:
        if rec.status == 200 and rec.path == PUSH:
            got[rec.json["to"]] += 1
        elif rec.status == 200 and rec.path == REPLY:
            got[rec.json["replyToken"].removeprefix("rt-")] += 1
    return got


if __name__ == "__main__":
    sys.exit(main())
