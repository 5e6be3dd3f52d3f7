"""LINE's loading animation, shown while a turn takes longer than a moment.

What it is: ``loading_while_slow(after, show)``, a context manager around one turn that calls
``show`` (``LineApi.show_loading``: ``POST /v2/bot/chat/loading/start``) once the turn has run
for ``after`` seconds, so that a user who waits sees the bot is working and does not send the
question again. LINE ends the animation by itself when the bot's next message arrives (or after
``LOADING_SECONDS``), so nothing has to stop it.

What it is not: it never fails a turn. The animation is a courtesy: a failed call is logged
(kind and status only) and the turn goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("nanbyo.line")

# How long LINE shows the animation at most (5 to 60, a multiple of 5); the reply ends it earlier.
LOADING_SECONDS = 20


def _safely(show: Callable[[], None]) -> None:
    try:
        show()
    except Exception as exc:  # cosmetic: the answer still goes out
        log.info("line loading animation failed error=%s status=%s", type(exc).__name__, getattr(exc, "status", None))


@contextmanager
def loading_while_slow(after: float | None, show: Callable[[], None]) -> Iterator[None]:
    """Call ``show`` once if the body runs ``after`` seconds or longer.

    Args:
        after: seconds before the animation is asked for; 0 asks at once, None never.
        show: the call that starts the animation (it must not need the turn's result).

    On leaving, a ``show`` already under way is waited for, so the animation request always
    reaches LINE before the answer: started after the answer, it would spin on for nothing.
    """
    if after is None:
        yield
        return
    if after <= 0:
        _safely(show)
        yield
        return
    # The lock orders the two ends: either the timer fires first and the body's end waits for
    # ``show`` to finish, or the body ends first and the timer, firing late, does nothing.
    lock = threading.Lock()
    done = False

    def fire() -> None:
        with lock:
            if not done:
                _safely(show)

    timer = threading.Timer(after, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            done = True


__all__ = ["LOADING_SECONDS", "loading_while_slow"]
