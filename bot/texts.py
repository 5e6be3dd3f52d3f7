"""Every text a user sees that is not a handler's answer: the apologies, what the core's guards
say (``bot.core``: a My Number, an empty, very long or unreadable message, a flood), the LINE
welcome, the Slack App Home, the menus the channels show, and how a long text is cut into messages.

The channels only render these (``bot/channels/``); the wording lives here, once.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers.messages import Choice
from handlers.system import MENU_CHOICES

# A turn that failed (a bug, not the database: that has ``DB_DOWN_TEXT``).
ERROR_TEXT = "申し訳ありません。内部でエラーが起きました。少し時間をおいて、もう一度送ってください。"

# The database is away for a moment: nothing of the turn was written, the next message works again.
DB_DOWN_TEXT = (
    "申し訳ありません。ただいまシステムが混み合っているか、一時的に使えない状態です。"
    "お手数ですが、少し時間をおいてから、もう一度同じメッセージを送ってください。"
)

# --- what the core says before (or instead of) the router: bot.core ---------------------------------

MENU_ONLY = (Choice("メニュー", "menu"),)
MENU_AND_OFFICE = (Choice("メニュー", "menu"), Choice("窓口を探す", "office"))

DIALOG_EXPIRED_TEXT = (
    "前回のお問い合わせの途中から時間がたったため、途中までにお答えいただいた内容は"
    "消去しました（個人情報を長く残さないためです）。"
    "お手数ですが、必要でしたらもう一度はじめからどうぞ。"
)

RATE_LIMIT_TEXT = (
    "短い時間にたくさんのメッセージが届いたため、少しのあいだお返事を控えています。"
    "1分ほど待ってから、もう一度送ってください。"
)

MY_NUMBER_TEXT = (
    "ご注意ください。マイナンバー（個人番号）のような12桁の番号が含まれていたため、"
    "このメッセージは読み取らず、保存もしていません。"
    "個人番号はとても大切な情報です。このチャットには送らないでください。"
    "申請で個人番号が必要なときは、窓口に提出する書類（世帯状況調書など）に記入します。"
)

# A sticker, a photo, a file: never downloaded. Photos of certificates carry personal data.
NOT_TEXT_TEXT = (
    "申し訳ありません。このチャットでは文字のメッセージだけを読み取れます。"
    "スタンプ・画像・動画・音声・ファイル・位置情報は読み取れません（中身は見ておらず、保存もしていません）。"
    "受給者証などの書類の写真は送らないでください。\n"
    "知りたいことを文章で送ってください。下のボタンからも選べます。"
)
NOT_TEXT_IN_DIALOG = (
    "画像やファイル、スタンプは読み取れません（中身は見ておらず、保存もしていません）。文字で答えてください。"
)
ATTACHMENT_NOTE = (
    "添付の画像やファイルは読み取れないため（中身は見ておらず、保存もしていません）、文章の部分にお答えします。"
    "受給者証などの書類の写真は送らないでください。"
)

# A button value or postback too long to be one of ours.
BAD_CHOICE_TEXT = "このボタンの内容を読み取れませんでした。お手数ですが、もう一度選ぶか、文章で送ってください。"

EMPTY_PREFIX = "メッセージが空のようです。"  # before the pending question of a dialog
EMPTY_TEXT = "メッセージが空のようです。ご質問を文章で送ってください。下のボタンからも選べます。"


def too_long_text(length: int, limit: int) -> str:
    """A message of ``length`` characters, over ``limit``: not read, and how long one may be."""
    return (
        f"メッセージが長すぎるため（{length:,}文字）、読み取れませんでした。"
        f"お手数ですが、{limit:,}文字以内で、知りたいことを短く送ってください。"
    )


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
