"""Emergencies, thoughts of suicide, requests for medical judgement, other services.

Checked before everything else (emergencies and crises in every state, even mid-dialog and
before the My Number and length guards), with the words kept as data: the concepts of
``knowledge/emergency.yaml`` for emergencies and crises, ``knowledge/safety.yaml`` for
medical judgement and the services next door.

How an emergency is recognised (``detect``): each sentence of the message is cut into words by
SudachiPy, and compared in two forms, as typed (folded) and as read aloud (each word's reading,
folded), so that kanji, hiragana, katakana and full width are one text. A concept's rule is a
*what* (breathing, the chest) followed by a *state* (can't, hurts, won't stop) joined only by
particles and adverbs, or a state alone. Words, not letters: a hit must begin where a word of the
message begins, and its *what* must end where a word ends, so 「申請書を」 (しんせいしょを) holds no
「遺書を」 and 「息子」 no 「息」; only a state's last word may be a stem (苦し of 苦しい). Before the
words are cut, a second form of the message has the ways people really write made standard
(``spoken`` in the data: 「でぎない」 → 「できない」, 「いだい」 → 「いたい」, 「〜ねえ」, 🆘); both forms are
read. A hit framed as hypothetical, general or past (「〜たら」「〜病気」「去年」) is a question, not an
emergency. This is a rule engine of our own: no library detects emergencies in Japanese chat, and
the rules must stay readable and checkable as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from rapidfuzz.distance import Levenshtein

from knowledge import KnowledgeBase
from knowledge.models import EmergencyLexicon, EmergencyRule, Redirect
from nlp.normalize import fold, kata_to_hira, nfkc
from nlp.text import Text, as_text, reading


class Safety(str, Enum):
    EMERGENCY = "emergency"
    CRISIS = "crisis"
    MEDICAL = "medical"


# --- text forms -------------------------------------------------------------------

_KANJI_ONLY = re.compile(r"^[\u4e00-\u9fff々]+$")
_KATAKANA = re.compile("[\u30a1-\u30fa]")
_LETTERS = re.compile("[\u3041-\u309f\u30a1-\u30fa\u4e00-\u9fff]")


def _mostly_katakana(text: str) -> bool:
    letters = len(_LETTERS.findall(text))
    return letters > 0 and len(_KATAKANA.findall(text)) > letters / 2


@dataclass(frozen=True)
class _View:
    """A sentence in one form (as typed, or read aloud): the offsets where its words begin, and the
    spans of its figures of speech."""

    text: str
    starts: frozenset[int]
    figures: tuple[tuple[int, int], ...]


def _views(det: _Detector, sentence: Text) -> tuple[_View, _View]:
    """A sentence as typed and as read aloud, word by word; a symptom's frame never reaches past it."""
    views = []
    for parts in ([w.surface for w in sentence.words], [w.reading for w in sentence.words]):
        offsets, at = [], 0
        for part in parts:
            offsets.append(at)
            at += len(part)
        text = "".join(parts)
        views.append(_View(text, frozenset([*offsets, at]), tuple(f.span() for f in det.figures.finditer(text))))
    return views[0], views[1]


def _forms(words: list[str], read: bool = False) -> list[str]:
    """Folded forms of the words; with ``read``, also the reading of each all-kanji word (胸 → むね)."""
    out = {fold(w) for w in words}
    if read:
        out |= {reading(w) for w in words if _KANJI_ONLY.match(w) and len(reading(w)) >= 2}
    return sorted((f for f in out if f), key=len, reverse=True)


_Node = dict[str, "_Node"]


def _trie(words: set[str]) -> str:
    """One regular expression for many literal words, as a trie (「胸|胸痛|胸の奥」 → 「胸(?:痛|の奥)?」).

    Python's ``re`` tries each branch of an alternation in turn at every position; a trie branches
    on one letter at a time, so a scan for hundreds of words costs about what a scan for one does.
    (Written here since it is a dozen lines; no dependency needed for it.)
    """
    tree: _Node = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Node) -> str:
        ends = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if ends else body

    return emit(tree)


def _alt(forms: list[str]) -> str:
    # 「急に」 is no urgency inside 「救急に」.
    # A number stands alone: 119 is not part of 1,190,000円.
    return "|".join(
        ("(?<!救)" if f.startswith("急") else "") + re.escape(f)
        if not f.isdigit()
        else f"(?<![0-9]){re.escape(f)}(?![0-9])"
        for f in forms
    )


# --- the detector -------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """A rule as one pattern, inside a lookahead so that every hit is seen, overlapping ones too:
    the hit (group ``hit``) is kept only where a word begins (see ``_at_words``)."""

    concept: str
    kind: Safety
    pattern: re.Pattern[str]
    spec: EmergencyRule
    not_of: re.Pattern[str] | None = None  # ``spec.not_of`` right before a hit, with its particle


@dataclass(frozen=True)
class _Detector:
    rules: tuple[_Rule, ...]
    conditional: re.Pattern[str]
    topical: re.Pattern[str]
    before: re.Pattern[str]
    urgency: re.Pattern[str]
    subsidy: re.Pattern[str]
    asking: re.Pattern[str]
    fuzzy: tuple[str, ...]
    ending: re.Pattern[str]
    leading: re.Pattern[str]
    spoken: tuple[tuple[re.Pattern[str], str], ...]
    starters: re.Pattern[str]
    starting: dict[str, frozenset[int]]
    things: re.Pattern[str]
    figures: re.Pattern[str]


# Polite endings that may follow a fragment such as 「たすけて」 (and nothing else may).
_ENDINGS = [
    "ください",
    "下さい",
    "くださ",
    "くれ",
    "よ",
    "ね",
    "お願い",
    "おねがい",
    "します",
    "いたします",
    "ほしい",
    "欲しい",
    "です",
    "ます",
    "はやく",
    "早く",
    "すぐ",
    "すぐに",
    "きて",
    "来て",
    "を",
    "お",
]
_LEADING = ["はやく", "早く", "すぐ", "すぐに", "急いで", "いそいで", "だれか", "誰か", "お願い", "おねがい"]
_TOPICAL_WINDOW = 14
_WHOLE_WORD_BELOW = 3


def _not_of(spec: EmergencyRule) -> re.Pattern[str] | None:
    """What a hit may be said of (``not_of``), right before it: the word, then at most a particle and
    a 「もう」 (「記録をつけるのはもう終わりにしたい」, 「通知もおわりにしたい」)."""
    if not spec.not_of:
        return None
    return re.compile(f"(?:{_alt(_forms(spec.not_of, read=True))})(?:を|は|も|が|の)?[、,\\s]*(?:もう)?$")


def _build(lex: EmergencyLexicon) -> _Detector:
    joiner = f"(?:{_alt(_forms(lex.joiners))})"
    rules: list[_Rule] = []
    starting: dict[str, set[int]] = {}
    for concept in lex.concepts:
        for spec in concept.rules:
            state = f"(?:{_alt(_forms(spec.state))})"
            if not spec.what:
                pattern = state
            else:
                what = f"(?P<what>{_alt(_forms(spec.what, read=True))})"
                link = f".{{0,{spec.gap}}}?" if spec.gap else f"{joiner}{{0,3}}"
                pattern = f"{what}{link}{state}"
            if not spec.whole:
                for word in _forms(spec.what, read=True) if spec.what else _forms(spec.state):
                    starting.setdefault(word, set()).add(len(rules))
            rules.append(
                _Rule(concept.id, Safety(concept.kind), re.compile(f"(?=(?P<hit>{pattern}))"), spec, _not_of(spec))
            )
    # A conditional follows the symptom's own ending (at most three kana: 苦し|くなっ|たら), but
    # 「〜したらいい？」 asks what to do now, so it is no frame.
    conditional = re.compile(
        f"^[\u3041-\u309f]{{0,3}}?(?:{_alt(_forms(lex.conditional))})(?!いい|良い|よい|よろし|いいの)"
    )
    return _Detector(
        rules=tuple(rules),
        conditional=conditional,
        topical=re.compile(_alt(_forms(lex.topical))),
        before=re.compile(_alt(_forms(lex.before))),
        urgency=re.compile(_alt(_forms(lex.urgency)).replace("今", "今(?![月年回度後週期日ま])")),
        subsidy=re.compile(_alt(_forms(lex.subsidy))),
        asking=re.compile(
            _alt(_forms(lex.asking)).replace(re.escape("か"), "か(?=$|な)").replace(re.escape("の"), "の$")
        ),
        fuzzy=tuple(_forms(lex.fuzzy)),
        ending=re.compile(f"^(?:{_alt(_forms(_ENDINGS))})*$"),
        leading=re.compile(f"^(?:{_alt(_forms(_LEADING))})*$"),
        spoken=tuple((re.compile(f.pattern), f.standard) for f in lex.spoken),
        # Most messages hold none of the words a rule begins with, or a few: one scan for them all
        # tells which rules are worth trying.
        starters=re.compile(f"(?=({_trie(set(starting))}))"),
        starting={word: frozenset(ids) for word, ids in starting.items()},
        figures=re.compile(
            _alt(sorted({*_forms(lex.figures_of_speech), *map(reading, lex.figures_of_speech)}, key=len, reverse=True))
            or "(?!)"
        ),
        # The subject right before the hit is an animal or a thing (「ねこが道端で倒れてる」); one
        # with anything else between it and the hit (「犬の散歩中に母が倒れた」) is not.
        things=re.compile(
            f"(?:{_alt(_forms(lex.things, read=True))})(?:が|は|も)[^がはも]{{0,8}}$" if lex.things else "(?!)"
        ),
    )


_DETECTORS: dict[int, _Detector] = {}


def _detector(kb: KnowledgeBase) -> _Detector:
    det = _DETECTORS.get(id(kb.emergency))
    if det is None:
        det = _DETECTORS[id(kb.emergency)] = _build(kb.emergency)
    return det


@dataclass(frozen=True)
class Detection:
    """What a message reports: the concepts found, most urgent kind first."""

    kind: Safety
    concepts: tuple[str, ...]
    crisis_too: bool = False


# Inside a hit that spans a gap, only these frame it (「停電のときの呼吸器」); 〜たら there is a
# sequence of events (「薬を飲んだらじんましんが出て息が苦しい」).
_GAP_FRAME = re.compile("とき|(?<![0-9])時(?!間)|場合|ばあい|際")


def _framed(det: _Detector, text: str, start: int, end: int, window: int) -> bool:
    """Whether a hit is talked about (hypothetical, general, past) rather than happening now.

    Crises are never framed away: 「死んだら楽になれるかな」 is said in the conditional.
    """
    after = text[end:]
    return bool(
        det.conditional.match(after)
        or det.topical.search(after[:window])
        or det.before.search(text[:start])
        or _GAP_FRAME.search(text[start + 1 : end - 1])
    )


def _at_words(det: _Detector, rule: _Rule, view: _View) -> list[tuple[int, int]]:
    """Where the rule's hits begin at a word of the view and its *what* ends at one, outside a figure
    of speech: (start, end)."""
    found = []
    for m in rule.pattern.finditer(view.text):
        start = m.start("hit")
        if start not in view.starts or any(a <= start < b for a, b in view.figures):
            continue
        # A short *what* must be a whole word (息 is not 息子, いき not いきなり); a long one is
        # specific enough as letters, and SudachiPy cuts unknown kana oddly (じんま|しんと).
        what = m.group("what") if rule.spec.what else None
        if what is not None and len(what) < _WHOLE_WORD_BELOW and m.end("what") not in view.starts:
            continue
        found.append((start, m.end("hit")))
    return found


def _hits(det: _Detector, rule: _Rule, whole: str, sentences: list[tuple[_View, _View]]) -> bool:
    spec = rule.spec
    if spec.whole:
        for m in rule.pattern.finditer(whole):
            start, end = m.start("hit"), m.end("hit")
            if det.leading.match(whole[:start]) and det.ending.match(whole[end:]):
                return True
        return False
    for views in sentences:
        # The reading is consulted only when the text as typed does not say it (「むねがくるしい」
        # typed in kana says it in both); a hit framed as typed stays framed. A reading is longer
        # than the text it reads (病気 → びょうき): the window grows with it.
        for view, window in zip(views, (_TOPICAL_WINDOW, 2 * _TOPICAL_WINDOW)):
            text = view.text
            matches = [(s, e) for s, e in _at_words(det, rule, view) if not spec.ends or det.ending.match(text[e:])]
            if not matches:
                continue
            for start, end in matches:
                if rule.not_of is not None and rule.not_of.search(text[:start]):
                    continue
                if rule.kind is Safety.EMERGENCY and (
                    _framed(det, text, start, end, window) or det.things.search(text[:start])
                ):
                    continue
                if spec.urgent_only and not det.urgency.search(views[0].text):
                    continue
                return True
            break
    return False


def _candidates(det: _Detector, sentences: list[tuple[_View, _View]]) -> set[int]:
    """The rules whose first words occur in the message (a longer word found at a place also
    stands for its shorter prefixes: 「胸の奥」 for 「胸」)."""
    rules: set[int] = set()
    for views in sentences:
        for view in views:
            for m in det.starters.finditer(view.text):
                word = m.group(1)
                for end in range(len(word), 0, -1):
                    rules |= det.starting.get(word[:end], frozenset())
    return rules


def _slipped(det: _Detector, text: str) -> bool:
    """Whether one of the help words occurs with one letter missing, wrong or added (「たしけて」).

    Written right, they are the help rules' business (which look at what follows them).
    """
    for word in det.fuzzy:
        if word in text:
            continue
        n = len(word)
        for size in (n - 1, n, n + 1):
            for i in range(0, max(0, len(text) - size) + 1):
                if Levenshtein.distance(word, text[i : i + size], score_cutoff=1) == 1:
                    return True
    return False


def spoken_standard(kb: KnowledgeBase, raw: str) -> str | None:
    """The message with the ways people really write made standard (``spoken`` in the data), or
    None when it has none of them. A message in katakana (「イキガデキナイ」, the only script of some
    phones) is one: SudachiPy cuts kana words right only in hiragana."""
    typed = nfkc(raw)
    text = kata_to_hira(typed, counters=False)
    changed = _mostly_katakana(typed)
    for pattern, standard in _detector(kb).spoken:
        text, n = pattern.subn(standard, text)
        changed = changed or n > 0
    return text if changed else None


def detect(kb: KnowledgeBase, text: Text | str) -> Detection | None:
    """The emergency or crisis a message reports, or None for an ordinary message.

    The message is read as typed and with its spoken forms made standard; what either reports counts.
    """
    text = as_text(text)
    if not text.raw.strip():
        return None
    found = _detect(kb, text)
    standard = spoken_standard(kb, text.raw)
    if standard is not None:
        again = _detect(kb, Text(standard))
        if again is not None and (found is None or set(again.concepts) - set(found.concepts)):
            found = _merge(found, again)
    return found


def _merge(a: Detection | None, b: Detection) -> Detection:
    if a is None:
        return b
    kinds = {a.kind, b.kind} | ({Safety.CRISIS} if a.crisis_too or b.crisis_too else set())
    emergency = Safety.EMERGENCY in kinds
    return Detection(
        kind=Safety.EMERGENCY if emergency else Safety.CRISIS,
        concepts=tuple(dict.fromkeys(a.concepts + b.concepts)),
        crisis_too=emergency and Safety.CRISIS in kinds,
    )


def _detect(kb: KnowledgeBase, text: Text) -> Detection | None:
    det = _detector(kb)
    sentences = [_views(det, sentence) for sentence in text.sentences]
    if not sentences:
        return None
    return _detection(_found(det, sentences, _subsidy_talk(det, sentences, text.raw)))


@dataclass(frozen=True)
class _SubsidyTalk:
    """What a message says about the subsidy, which decides the rules that yield to it."""

    mentioned: bool  # it talks about the subsidy (「医療費」)
    asked: bool  # ... and asks about it (「倒れた時の医療費は？」)
    pressing: bool  # it says that something is happening now


def _subsidy_talk(det: _Detector, sentences: list[tuple[_View, _View]], raw: str) -> _SubsidyTalk:
    whole = "".join(typed.text for typed, _ in sentences)
    mentioned = bool(det.subsidy.search(whole))
    return _SubsidyTalk(
        mentioned=mentioned,
        asked=mentioned and bool(det.asking.search(whole) or "?" in raw or "？" in raw),
        pressing=bool(det.urgency.search(whole)),
    )


def _yields(rule: _Rule, talk: _SubsidyTalk) -> bool:
    # A message that talks about the subsidy asks about it (「倒れた時の医療費は」), unless it also
    # says that something is happening now; a weak rule (「助けて」) always yields to it. A crisis
    # does not: 「医療費が払えなくて死にたい」 is a crisis.
    if rule.spec.weak and talk.mentioned:
        return True
    return talk.asked and rule.kind is Safety.EMERGENCY and not talk.pressing


def _fires(det: _Detector, rule: _Rule, sentences: list[tuple[_View, _View]], whole: str, whole_reading: str) -> bool:
    return _hits(det, rule, whole, sentences) or (rule.spec.whole and _hits(det, rule, whole_reading, []))


def _found(det: _Detector, sentences: list[tuple[_View, _View]], talk: _SubsidyTalk) -> dict[str, Safety]:
    """The concepts whose rules fire, in rule order, each with its kind."""
    whole = "".join(typed.text for typed, _ in sentences)
    whole_reading = "".join(read.text for _, read in sentences)
    found: dict[str, Safety] = {}
    candidates = _candidates(det, sentences)
    for n, rule in enumerate(det.rules):
        if rule.concept in found or not (n in candidates or rule.spec.whole) or _yields(rule, talk):
            continue
        if _fires(det, rule, sentences, whole, whole_reading):
            found[rule.concept] = rule.kind
    if not found and not talk.mentioned and _slipped(det, whole_reading):
        found["help"] = Safety.EMERGENCY
    return found


def _detection(found: dict[str, Safety]) -> Detection | None:
    if not found:
        return None
    kinds = set(found.values())
    emergency = Safety.EMERGENCY in kinds
    return Detection(
        kind=Safety.EMERGENCY if emergency else Safety.CRISIS,
        concepts=tuple(found),
        crisis_too=emergency and Safety.CRISIS in kinds,
    )


# --- medical judgement and the services next door (knowledge/safety.yaml) -------------


@dataclass(frozen=True)
class _Lexicon:
    medical: tuple[str, ...]
    not_medical: tuple[str, ...]
    redirects: tuple[tuple[Redirect, tuple[str, ...], tuple[str, ...]], ...]
    domain: tuple[str, ...]


_CACHE: dict[int, _Lexicon] = {}


def _lexicon(kb: KnowledgeBase) -> _Lexicon:
    lex = _CACHE.get(id(kb.safety))
    if lex is None:
        s = kb.safety

        def f(words: list[str]) -> tuple[str, ...]:
            return tuple(w for w in (fold(x) for x in words) if w)

        redirects = tuple((r, f(r.words), f(r.strict_words)) for r in kb.services)
        lex = _Lexicon(f(s.medical), f(s.not_medical), redirects, f(s.domain_words))
        _CACHE[id(kb.safety)] = lex
    return lex


def classify(kb: KnowledgeBase, text: Text) -> Safety | None:
    """Which safety path a message needs, most urgent first; None for an ordinary message."""
    found = detect(kb, text)
    if found is not None:
        return found.kind
    lexicon = _lexicon(kb)
    if any(p in text.folded for p in lexicon.medical) and not any(w in text.folded for w in lexicon.not_medical):
        return Safety.MEDICAL
    return None


def reply_text(kb: KnowledgeBase, kind: Safety) -> str:
    s = kb.safety
    return {Safety.EMERGENCY: s.emergency_reply, Safety.CRISIS: s.crisis_reply, Safety.MEDICAL: s.medical_reply}[kind]


def urgent_reply(kb: KnowledgeBase, found: Detection) -> str:
    """The answer to an emergency or a crisis; both when a message reports both."""
    text = reply_text(kb, found.kind)
    if found.crisis_too:
        text += "\n\n" + kb.safety.crisis_reply
    notes = {c.id: c.note for c in kb.emergency.concepts if c.note}
    for concept in found.concepts:
        if concept in notes:
            text += "\n\n" + notes[concept]
    return text


def redirect_for(kb: KnowledgeBase, text: Text) -> Redirect | None:
    """The other service a message is about, if any (see ``Redirect.strict``); one of its
    ``strict_words`` makes it strict for this message (「生活保護の申請ってどこ？」)."""
    folded = text.folded
    for redirect, words, strict_words in _lexicon(kb).redirects:
        if any(w in folded for w in strict_words):
            return redirect.model_copy(update={"strict": True})
        if any(w in folded for w in words):
            return redirect
    return None


def mentions_domain(kb: KnowledgeBase, text: Text) -> bool:
    """Whether the text uses this bot's own vocabulary (難病, 受給者証, 上限額 …)."""
    return any(w in text.folded for w in _lexicon(kb).domain)
