"""Finding the user's municipality in what they typed, and naming its office.

Every municipality of the prefecture data resolves: by its name (〇〇市, 〇〇町),
its name without 市/町/村 unless the prefecture lists that short form as ambiguous
(``Prefecture.ambiguous_short``: an everyday word or another place), its reading
(hiragana, with or without まち/むら), the municipalities merged into it (``former``),
and the 郡 when all of its towns share one office.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.messages import Office
from knowledge.models import Prefecture
from nlp.normalize import fold
from nlp.text import Text, as_text

_SUFFIX = re.compile(r"(市|町|村|まち|むら|し|ちょう|そん)$")


@dataclass(frozen=True)
class Found:
    municipality: str | None  # the resolved municipality, or None when only a district/office is known
    office: str
    ambiguous: tuple[str, ...] = ()


class MunicipalityIndex:
    """Longest-first lookup of municipality names inside free text."""

    def __init__(self, pref: Prefecture) -> None:
        self.pref = pref
        keys: dict[str, set[str]] = {}

        def add(alias: str, target: str) -> None:
            f = fold(alias)
            if len(f) >= 2:
                keys.setdefault(f, set()).add(target)

        # Short forms that mean something else are recognised only with their suffix (prefecture data).
        ambiguous = set(pref.ambiguous_short)
        districts: dict[str, set[str]] = {}
        for m in pref.municipalities:
            add(m.name, m.name)
            add(m.reading, m.name)
            short = _SUFFIX.sub("", m.name)
            if short not in ambiguous:
                add(short, m.name)
            reading_short = _SUFFIX.sub("", m.reading)
            if len(reading_short) >= 3 and short not in ambiguous:
                add(reading_short, m.name)
            for former in m.former:
                plain = re.sub(r"（.*?）", "", former)
                add(plain, m.name)
                former_short = _SUFFIX.sub("", plain)
                if former_short not in ambiguous:
                    add(former_short, m.name)
            if m.district:
                districts.setdefault(m.district, set()).add(m.name)
        self._keys = keys
        self._districts = {fold(d): names for d, names in districts.items()}
        alternation = sorted(set(keys) | set(self._districts), key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(k) for k in alternation))

    def office_of(self, name: str) -> str:
        return next(m.office for m in self.pref.municipalities if m.name == name)

    def find(self, text: Text | str) -> Found | None:
        """The first municipality (or district) named in ``text``, or None."""
        for match in self._re.finditer(as_text(text).folded):
            key = match.group(0)
            if key in self._keys:
                names = sorted(self._keys[key])
                if len(names) == 1:
                    return Found(names[0], self.office_of(names[0]))
                offices = {self.office_of(n) for n in names}
                if len(offices) == 1:
                    return Found(None, offices.pop(), tuple(names))
                return Found(None, "", tuple(names))
            names = sorted(self._districts[key])
            offices = {self.office_of(n) for n in names}
            if len(offices) == 1:
                return Found(None, offices.pop(), tuple(names))
        return None


_CACHE: dict[int, MunicipalityIndex] = {}


def index_for(pref: Prefecture) -> MunicipalityIndex:
    """The (cached) index of a prefecture's municipalities."""
    idx = _CACHE.get(id(pref))
    if idx is None or idx.pref is not pref:
        idx = _CACHE[id(pref)] = MunicipalityIndex(pref)
    return idx


def _who(municipality: str | None, names: tuple[str, ...]) -> str:
    return f"{municipality}にお住まいの方" if municipality else "、".join(names) + "にお住まいの方"


def office_card(pref: Prefecture, office_id: str, municipality: str | None, names: tuple[str, ...] = ()) -> Office:
    """The office of ``office_block`` as a card (name, address, phone, hours) for LINE and Slack."""
    office = pref.offices[office_id]
    return Office(
        office.name,
        office.address,
        office.phone,
        pref.hours,
        fax=office.fax,
        serves=f"{_who(municipality, names)}の窓口",
        area=pref.name,
    )


def office_block(pref: Prefecture, office_id: str, municipality: str | None, names: tuple[str, ...] = ()) -> str:
    """Text naming an office, its address, phone and fax."""
    office = pref.offices[office_id]
    who = _who(municipality, names)
    return (
        f"{who}の窓口は「{office.name}」です。\n"
        f"・所在地：{office.address}\n"
        f"・電話：{office.phone}（FAX：{office.fax}）\n"
        f"・受付：{pref.hours}"
    )
