"""Slow clients against ``nanbyo-bot serve``: do real events and /healthz still get their 200?

Starts the installed ``nanbyo-bot serve`` (one worker, its defaults: ``MAX_CONNECTIONS`` 1,000,
header deadline 5 s) on a SQLite file in a temporary directory, with the fake Slack Web API of
``tests/fakes`` on 127.0.0.1. ``--slow`` connections (1,100) send request headers a byte every
half second and never finish them; each one the server closes is opened again at once, so the
pressure never lets up. Meanwhile, for ``--seconds`` (20), a signed Slack event and a ``GET /healthz``
go out every 0.2 s. Prints how many of each got 200 and 503, their slowest answers, and how many
slow connections the server closed.

    .venv/bin/python bench/slow_clients.py                  # 1,100 slow connections, 20 s
    .venv/bin/python bench/slow_clients.py --quick          # 3 s instead of 20 (CI)
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
import asyncio  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.test_slack_e2e import SECRET, TOKEN, _free_port, _wait_healthy, dm, get, post_signed  # noqa: E402


class SlowClients:
    """``count`` connections trickling headers, on an event loop of their own thread."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.closed_by_server = 0
        self.open = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _one(self) -> None:
        header = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100_000
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.open += 1
            try:
                for byte in header:
                    if self.stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(1), 0.5) == b"":
                            self.closed_by_server += 1
                            break
                    except asyncio.TimeoutError:
                        pass
            except OSError:
                self.closed_by_server += 1
            finally:
                self.open -= 1
                writer.close()

    async def _run(self) -> None:
        await asyncio.gather(*(self._one() for _ in range(self.count)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=None, help="slow connections held open (1,100)")
    parser.add_argument("--seconds", type=float, default=None, help="how long real events are sent (20)")
    parser.add_argument("--quick", action="store_true", help="3 s instead of 20 (CI)")
    args = parser.parse_args()
    args.slow = args.slow or 1100  # beyond the cap (MAX_CONNECTIONS), also in the quick run
    args.seconds = args.seconds or (3.0 if args.quick else 20.0)

    fake = FakeSlackAPI()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/slow.db",
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "SLACK_BOT_USER_ID": "UBOT",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("SLACK_APP_TOKEN", None)
        exe = Path(sys.executable).with_name("nanbyo-bot")
        proc = subprocess.Popen(
            [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, proc)
            slow = SlowClients(port, args.slow)
            slow.thread.start()
            while slow.open < args.slow * 0.95:
                time.sleep(0.1)
            time.sleep(1.0)
            print(f"{slow.open} slow connections open", flush=True)
            events: Counter[int] = Counter()
            health: Counter[int] = Counter()
            event_s: list[float] = []
            health_s: list[float] = []
            started = time.monotonic()
            n = 0
            while time.monotonic() - started < args.seconds:
                n += 1
                result = post_signed(url + "/slack/events", dm("受給者証なくした", user=f"U{n}", event_id=f"EvSlow{n}"))
                events[result.status] += 1
                event_s.append(result.seconds)
                t0 = time.monotonic()
                health[get(url + "/healthz").status] += 1
                health_s.append(time.monotonic() - t0)
                time.sleep(0.2)
            slow.stop.set()
            print(f"events:  {dict(events)}  median {statistics.median(event_s):.3f} s, slowest {max(event_s):.3f} s")
            print(f"healthz: {dict(health)}  median {statistics.median(health_s):.3f} s, slowest {max(health_s):.3f} s")
            print(f"slow connections closed by the server: {slow.closed_by_server} (each opened again)")
            return 0 if set(events) == {200} and set(health) == {200} else 1
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
            fake.close()


if __name__ == "__main__":
    raise SystemExit(main())
