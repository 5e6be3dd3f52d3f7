"""Commands that work anywhere: cancel, menu/help, greetings, delete my data, talk to a person.

Each command is a small set of phrases compared with the whole (folded)
message, so 「やめる」 cancels but 「薬をやめてもいい？」 does not.
"""

from __future__ import annotations

from handlers import dialog
from handlers.base import CANCEL, Answers, Context, Form, Slot, municipality_examples
from handlers.messages import Choice, IncomingMessage, Reply, Source
from handlers.office import index_for, office_block, office_card
from handlers.parsers import UNKNOWN, Invalid, parse_yes_no
from handlers.ports import DeleteMyData
from nlp.normalize import fold, strip_fillers
from nlp.text import Text


def phrases(*words: str) -> frozenset[str]:
    """Whole-message commands as the router compares them: folded, without fillers."""
    return frozenset(strip_fillers(fold(w)) for w in words)


GREETING_WORDS = phrases(
    "こんにちは", "こんばんは", "おはよう", "おはようございます", "はじめまして", "もしもし", "やあ", "hello", "hi"
)
THANKS_WORDS = phrases(
    "ありがとう",
    "ありがとうございます",
    "ありがとうございました",
    "助かりました",
    "わかりました",
    "了解",
    "りょうかい",
    "ok",
    "thanks",
    "thank you",
    "どうも",
)

MENU_CHOICES = (
    Choice("制度について", "topic:system-overview"),
    Choice("自己負担を計算", "start:copay"),
    Choice("申請に必要な書類", "topic:new-application-documents"),
    Choice("更新のお知らせ", "start:reminder"),
    Choice("医療費の記録", "start:costlog"),
    Choice("窓口を探す", "office"),
    Choice("データを削除", "delete"),
)

MENU_TEXT = (
    "指定難病の医療費助成（特定医療費）についてご案内するチャットです。\n"
    "・制度や申請の書類、自己負担の上限額などのご質問に、資料をもとにお答えします（出典も示します）。\n"
    "・自己負担の月額上限を、いくつかの質問にお答えいただくことで計算します。\n"
    "・受給者証の有効期限の前に、更新のお知らせをお送りします。\n"
    "・月ごとの医療費を記録して、「高額かつ長期」や「軽症高額」の条件に届いたらお知らせします。\n"
    "・お住まいの市町村の窓口（電話番号）をお知らせします。\n"
    "病気や薬についての医学的な判断はできません。急ぐときは119番へ。"
    "マイナンバー（個人番号）は送らないでください。"
)


def matches(words: frozenset[str], msg: IncomingMessage, ctx: Context) -> bool:
    """Whether the message is one of ``words``: a clicked value folded, a typed text also without fillers."""
    return (ctx.text.folded if msg.choice is not None else ctx.text.plain) in words


def menu_reply(available: set[str] | None = None) -> Reply:
    choices = tuple(
        c
        for c in MENU_CHOICES
        if available is None or not c.value.startswith("start:") or c.value.removeprefix("start:") in available
    )
    return Reply(MENU_TEXT, choices=choices, kind="menu")


def cancel(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    was_open = ctx.state.dialog is not None
    dialog.end(ctx)
    # 「わかりました」 only when something was stopped: with nothing open, saying so would be a promise
    # the bot did not keep (「期限の連絡もう来なくていいよ、やめといて」 stops no reminder here).
    text = (
        "わかりました。ここまでのやりとりは終わりにしました。"
        if was_open
        else (
            "いま途中の計算や手続きはないので、止めるものはありません。"
            "お知らせを止めたいときは「お知らせを止める」と送ってください。"
        )
    )
    return [
        Reply(
            text + "ほかにご質問があれば、いつでもどうぞ。", choices=menu_reply(set(ctx.forms)).choices, kind="cancel"
        )
    ]


def menu(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    return [menu_reply(set(ctx.forms))]


def greeting(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    r = menu_reply(set(ctx.forms))
    return [Reply("こんにちは。" + r.text, choices=r.choices, kind="menu")]


def thanks(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    return [
        Reply(
            "どういたしまして。ほかにも気になることがあれば、いつでもお尋ねください。",
            choices=(Choice("メニュー", "menu"),),
            kind="thanks",
        )
    ]


# --- talk to a person: the office of the user's municipality ------------------


def ask_municipality(answers: Answers, ctx: Context) -> str:
    return f"お住まいの市町村を教えてください{municipality_examples(ctx.kb)}。"


def parse_municipality(text: Text, ctx: Context) -> object:
    found = index_for(ctx.kb.prefecture).find(text)
    if found is None:
        if text.folded in {fold(w) for w in ("わからない", "不明", "unknown")}:
            return UNKNOWN
        return Invalid(
            f"{ctx.kb.prefecture.name}内の市町村名で教えてください{municipality_examples(ctx.kb)}。"
            f"このチャットは{ctx.kb.prefecture.name}の制度をご案内しています。"
        )
    if found.municipality is None:
        names = "、".join(found.ambiguous)
        return Invalid(
            f"次のどれでしょうか：{names}。下のボタンから選ぶか、市町村名で教えてください。",
            options=tuple((name, name) for name in found.ambiguous),
        )
    return found.municipality


def _office_finish(answers: Answers, ctx: Context) -> list[Reply]:
    muni = answers.get("municipality")
    pref = ctx.kb.prefecture
    if not isinstance(muni, str):
        offices = "\n".join(f"・{o.name}　{o.phone}" for o in pref.offices.values())
        return [
            Reply(
                f"{pref.name}の窓口の一覧です。お住まいの地域の窓口にお電話ください（{pref.hours}）。\n{offices}",
                kind="office",
            )
        ]
    ctx.state.profile["municipality"] = muni
    office = index_for(pref).office_of(muni)
    block = office_block(pref, office, muni)
    source = f"出典：{ctx.kb.sources[pref.sources[0]].cite()}"
    return [
        Reply(
            f"{block}\n\n担当の方と直接お話しになりたいときは、こちらにお電話ください。\n{source}",
            choices=(Choice("申請に必要な書類", "topic:new-application-documents"), Choice("メニュー", "menu")),
            kind="office",
            office=office_card(pref, office, muni),
            source=Source(source),
        )
    ]


# The one question of the forms that name the user's office (this one, the hand-off's): the municipality,
# not asked when the user told it before.
MUNICIPALITY_SLOT = Slot(
    "municipality", ask=ask_municipality, parse=parse_municipality, choices=(Choice("わからない", "unknown"),)
)


def known_municipality(ctx: Context) -> dict[str, object]:
    """The municipality the user told before, as the prefill of ``MUNICIPALITY_SLOT``."""
    muni = ctx.state.profile.get("municipality")
    return {"municipality": muni} if muni else {}


OFFICE_FORM = Form(
    name="office",
    intro="お住まいの地域の窓口（申請や相談の受付）をご案内します。",
    slots=(MUNICIPALITY_SLOT,),
    finish=_office_finish,
    prefill=known_municipality,
)


# --- delete my data -----------------------------------------------------------


def _delete_finish(answers: Answers, ctx: Context) -> list[Reply]:
    if answers.get("confirm_delete") is True:
        ctx.effects.append(DeleteMyData())  # the core deletes the rows after this turn, in the same transaction
        return [
            Reply(
                "このチャットでお預かりしていたあなたのデータ（会話の途中経過、お住まいの市町村、更新のお知らせの登録、医療費の記録など）をすべて削除しました。",
                kind="deleted",
            )
        ]
    return [Reply("削除はしませんでした。データはそのままです。", choices=(Choice("メニュー", "menu"),), kind="cancel")]


def _parse_confirm(text: Text, ctx: Context) -> object:
    value = parse_yes_no(text, about=("全部削除", "すべて削除", "削除", "全部消", "消", "データ", "お願い"))
    if value is UNKNOWN:
        return Invalid("削除してよければ「はい」、やめるなら「いいえ」を送ってください。")
    return value


DELETE_FORM = Form(
    name="delete",
    intro="このチャットでお預かりしているあなたのデータ（会話の途中経過、お住まいの市町村、更新のお知らせの登録、医療費の記録）を削除できます。",
    slots=(
        Slot(
            "confirm_delete",
            ask="すべて削除します。よろしいですか？元には戻せません。",
            parse=_parse_confirm,
            choices=(Choice("はい、削除する", "yes"), Choice("いいえ", "no")),
        ),
    ),
    finish=_delete_finish,
)


def start_office(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    found = index_for(ctx.kb.prefecture).find(ctx.text)
    if found and found.municipality:
        ctx.state.profile["municipality"] = found.municipality
    return dialog.start(OFFICE_FORM, ctx)


def start_delete(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    return dialog.start(DELETE_FORM, ctx)


__all__ = ["CANCEL", "DELETE_FORM", "OFFICE_FORM"]
