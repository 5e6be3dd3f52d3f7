"""Every text a user sees that is not a handler's answer: the apology, the LINE welcome, the
Slack App Home, the menus the channels show, and how a long text is cut into messages.

The channels only render these (``bot/channels/``); the wording lives here, once.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers.messages import Choice
from handlers.system import MENU_CHOICES

# A turn that failed (a bug, not the database: that has ``bot.core.DB_DOWN_TEXT``).
ERROR_TEXT = "申し訳ありません。内部でエラーが起きました。少し時間をおいて、もう一度送ってください。"

WELCOME_TEXT = (
    "友だち追加ありがとうございます。指定難病の医療費助成（特定医療費）についてご案内するチャットです。\n"
    "【できること】制度や申請についてのご質問に資料をもとにお答えします（出典つき）。"
    "自己負担の月額上限の計算、受給者証の更新のお知らせ、お住まいの地域の窓口のご案内もできます。\n"
    "【できないこと】病気や薬についての医学的な判断・助言はできません。"
    "急な症状など緊急のときは、ためらわず119番に電話してください。\n"
    "【お願い】マイナンバー（個人番号）は、このチャットに送らないでください。\n"
    "下のメニューやボタンからも選べます。ブロックすると、このチャットでお預かりしたあなたのデータは削除されます。"
)

HOME_TEXT = (
    "*指定難病の医療費助成（特定医療費）のご相談*\n"
    "制度や申請のご質問に資料をもとにお答えし、自己負担の月額上限の計算や、受給者証の更新のお知らせができます。\n"
    "「メッセージ」タブで、いつでも文章でご質問ください。マイナンバー（個人番号）は送らないでください。"
)

# Said in the channel where a Slack user typed ``/nanbyo``: answers are personal, they go to the DM.
ANSWERED_IN_DM_TEXT = "ダイレクトメッセージでお答えしました。アプリの「メッセージ」タブをご覧ください。"

# 「相談する」 opens the main menu (handlers.system.MENU_CHOICES); the other entries are the menu's own.
CONSULT = Choice("相談する", "menu")


def _menu(*values: str) -> tuple[Choice, ...]:
    by_value = {c.value: c for c in MENU_CHOICES}
    return (CONSULT, *(by_value[v] for v in values))


# The Slack App Home's buttons and the LINE rich menu's areas (left to right): the main menu's
# entries that fit on them, with the same labels and values.
HOME_CHOICES: tuple[Choice, ...] = _menu("start:copay", "start:reminder", "delete")
RICH_MENU_CHOICES: tuple[Choice, ...] = _menu("start:copay", "start:reminder", "office")


def utf16_units(ch: str) -> int:
    """A character as LINE and Slack count it, conservatively: astral characters (emoji) count twice."""
    return 2 if ord(ch) > 0xFFFF else 1


def split_text(text: str, limit: int, weight: Callable[[str], int] = utf16_units) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (each character costs ``weight(ch)``).

    Cuts at a blank line, a line break, a 「。」 or 「、」 or a space when there is one in the
    second half of the piece, else anywhere. Line breaks at a cut are dropped; blank pieces too.
    """
    pieces: list[str] = []
    rest = text
    while rest:
        total = 0
        cut = len(rest)
        for i, ch in enumerate(rest):
            total += weight(ch)
            if total > limit:
                cut = i
                break
        if cut < len(rest):
            window = rest[:cut]
            for sep in ("\n\n", "\n", "。", "、", " ", "　"):
                at = window.rfind(sep)
                if at >= cut // 2:
                    cut = at + len(sep)
                    break
        piece, rest = rest[:cut].rstrip("\n"), rest[cut:].lstrip("\n")
        if piece.strip():
            pieces.append(piece)
    return pieces
