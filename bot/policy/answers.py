"""FAQ answers rendered from the policy, with sub-topic detection.

Texts and topic keywords live in ``answers.yml``; every number, amount, URL and
contact comes from the :class:`~bot.policy.programme.Policy` passed in.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.policy.programme import DAYS_ID, WIB, CallCenter, Policy, load_policy
from bot.policy.texts import TEXTS_PATH, load_texts, render_text, section

FAQ_INTENTS: frozenset[str] = frozenset(
    {
        "ask_program_info",
        "ask_eligibility",
        "ask_benefits",
        "ask_how_to_register",
        "ask_test",
        "ask_batch",
        "ask_selection_result",
        "ask_training",
        "ask_incentive",
        "ask_survey",
        "report_scam",
        "email_problem",
        "nik_problem",
        "photo_problem",
        "otp_problem",
        "account_problem",
        "start_registration",
        "check_status",
    }
)

# Informal suffixes tolerated after a keyword ("pnsnya", "kuliahan", "bisakah").
_SUFFIX = r"(?:nya|kah|lah|ku|mu|pun|an)?"
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize_text(text: str) -> str:
    """Lower-case, keep only ``a-z0-9`` words separated by single spaces."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Compile one keyword (``re:`` prefix: a raw regular expression)."""
    if keyword.startswith("re:"):
        return re.compile(keyword[3:])
    body = re.escape(normalize_text(keyword)).replace(r"\ ", " ")
    return re.compile(rf"(?<![a-z0-9]){body}{_SUFFIX}(?![a-z0-9])")


_Patterns = tuple[re.Pattern[str], ...]
_Topic = tuple[str, _Patterns, _Patterns]  # name, keywords, exclude


@lru_cache(maxsize=4)
def _topics(path: Path) -> dict[str, tuple[_Topic, ...]]:
    """Compiled topic keywords per intent, in file order."""
    compiled: dict[str, tuple[_Topic, ...]] = {}
    for intent, entry in load_texts(path)["intents"].items():
        topics: list[_Topic] = []
        for name, spec in (entry.get("topics") or {}).items():
            keywords = tuple(_keyword_pattern(str(k)) for k in spec["keywords"])
            exclude = tuple(_keyword_pattern(str(k)) for k in spec.get("exclude", ()))
            topics.append((str(name), keywords, exclude))
        compiled[str(intent)] = tuple(topics)
    return compiled


def compile_keywords(path: Path = TEXTS_PATH) -> None:
    """Compile the topic and contact keywords now (about 0.1 s), not for the
    first question that needs them."""
    _topics(path)
    _contact_patterns(path)


def detect_topic(intent: str, text: str, path: Path = TEXTS_PATH) -> str | None:
    """The sub-topic of ``intent`` that ``text`` asks about, or None for general.

    Each matching keyword scores one point; the best score wins and ties go to
    the topic listed first in ``answers.yml``.
    """
    clean = normalize_text(text)
    if not clean:
        return None
    best: str | None = None
    best_score = 0
    for name, keywords, exclude in _topics(path).get(intent, ()):
        scoped = clean
        for pattern in exclude:
            scoped = pattern.sub(" ", scoped)
        score = sum(1 for pattern in keywords if pattern.search(scoped))
        if score > best_score:
            best, best_score = name, score
    return best


def render_answer(
    intent: str, policy: Policy, text: str = "", path: Path = TEXTS_PATH
) -> str:
    """The answer to a FAQ ``intent``, specific to the sub-topic in ``text``.

    Raises ``ValueError`` for an intent outside :data:`FAQ_INTENTS`.
    """
    if intent not in FAQ_INTENTS:
        raise ValueError(f"No FAQ answer for intent {intent!r}")
    entry: dict[str, Any] = load_texts(path)["intents"][intent]
    topic = detect_topic(intent, text, path)
    template = entry["topics"][topic]["answer"] if topic else entry["general"]
    return render_text(template, policy, path=path)


def faq_answer(intent: str | None, text: str) -> str | None:
    """The answer to a programme question `intent` asked as `text`, from the
    policy in force (None when `intent` is no programme question)."""
    if intent not in FAQ_INTENTS:
        return None
    return render_answer(intent, load_policy(), text)


def next_opening(call_center: CallCenter, now: datetime) -> datetime | None:
    """When the call center next opens after ``now`` (WIB; naive means WIB)."""
    if call_center.opens is None or not call_center.has_hours:
        return None
    local = now.astimezone(WIB) if now.tzinfo else now.replace(tzinfo=WIB)
    hour, minute = (int(part) for part in call_center.opens.split("."))
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        opening = datetime(day.year, day.month, day.day, hour, minute, tzinfo=WIB)
        if day.weekday() in call_center.weekdays and opening > local:
            return opening
    return None


def _day_label(day: date, today: date, texts: dict[str, Any]) -> str:
    if day == today:
        return str(texts["today"])
    if day == today + timedelta(days=1):
        return str(texts["tomorrow"])
    return DAYS_ID[day.weekday()]


MEDIA_KINDS = ("photo", "contact")


def media_text(kind: str, policy: Policy, path: Path = TEXTS_PATH) -> str:
    """What the assistant says when a photo or a shared contact arrives."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"No media text for {kind!r}")
    return render_text(section("media", path)[kind], policy, path=path)


@lru_cache(maxsize=4)
def _contact_patterns(path: Path) -> tuple[re.Pattern[str], ...]:
    keywords = load_texts(path)["call_center"]["contact_keywords"]
    return tuple(_keyword_pattern(str(k)) for k in keywords)


def asks_for_contact(text: str, path: Path = TEXTS_PATH) -> bool:
    """Whether a request for a person asks for the call center's contact itself
    (its number, e-mail or hours) rather than to talk to someone here."""
    clean = normalize_text(text)
    return any(pattern.search(clean) for pattern in _contact_patterns(path))


def contact_answer(
    policy: Policy, now: datetime | None = None, path: Path = TEXTS_PATH
) -> str:
    """The call center's contact and hours, then the offer of an agent here."""
    offer = str(section("call_center", path)["offer_agent"])
    return f"{call_center_text(policy, now, path)} {offer}"


def call_center_text(
    policy: Policy, now: datetime | None = None, path: Path = TEXTS_PATH
) -> str:
    """How to reach a human: channels and hours (WIB).

    With ``now`` given and the call center closed, also says when it reopens.
    """
    texts = section("call_center", path)
    answer = render_text(texts["text"], policy, path=path)
    call_center = policy.contacts.call_center
    if now is None or not call_center.has_hours or call_center.is_open(now):
        return answer
    opening = next_opening(call_center, now)
    if opening is None:
        return answer
    local_now = now.astimezone(WIB) if now.tzinfo else now
    when = str(texts["next_open"]).format(
        day=_day_label(opening.date(), local_now.date(), texts),
        time=call_center.opens or "",
        timezone=call_center.timezone,
    )
    closed = render_text(texts["closed"], policy, {"next_open": when}, path=path)
    return f"{answer} {closed}"
