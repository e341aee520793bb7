"""SMS rendering (GSM-7, menus, paging) and interpretation (STOP, menus, "9")."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.channels.base import (
    SMS,
    Button,
    Channel,
    InboundMessage,
    Interpretation,
    RenderedReplies,
    Reply,
)
from bot.channels.sms import SmsChannel, is_gsm7, segment_info, to_gsm7
from bot.channels.sms.interpret import OPTED_IN_TEXT, OPTED_OUT_TEXT
from bot.channels.sms.render import MENU_HINT
from bot.policy.answers import FAQ_INTENTS, render_answer
from bot.policy.programme import ENV_VAR, known_versions, load_policy
from bot.policy.texts import load_texts

ROOT = Path(__file__).resolve().parents[2]
MORE = "(balas 9 untuk lanjut)"
CHANNEL = SmsChannel()


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@cache
def domain_reply(name: str) -> Reply:
    """A response of the real domain.yml as the gateway would receive it."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    response = domain["responses"][name][0]
    buttons = tuple(
        Button(b["title"], b["payload"]) for b in response.get("buttons", [])
    )
    return Reply(response["text"], buttons)


def message(text: str = "", **kwargs: Any) -> InboundMessage:
    return InboundMessage(
        channel=SMS, provider_id="SM1", address="+6281234567890", text=text, **kwargs
    )


def assert_sendable(text: str) -> None:
    info = segment_info(text)
    assert info.encoding == "GSM-7", text
    assert 1 <= info.segments <= 2, (info, text)
    assert is_gsm7(text)


def read_all(rendered: RenderedReplies) -> list[str]:
    """Every page a person gets by replying 9 until nothing is pending."""
    assert len(rendered.bodies) <= 1
    pages = [body["text"] for body in rendered.bodies]
    state = rendered.state
    while state.get("pages"):
        result = CHANNEL.interpret(message("9"), state, opted_out=False)
        assert result.rasa_text is None
        assert len(result.local_bodies) == 1
        pages.append(result.local_bodies[0]["text"])
        state = result.state
    return pages


def words(text: str) -> list[str]:
    return text.split()


def assert_nothing_lost(replies: list[Reply], pages: list[str]) -> None:
    """The pages carry every word of the replies, in order, and the whole menu."""
    expected = [w for reply in replies for w in words(to_gsm7(reply.text))]
    received = [w for page in pages for w in words(page.replace(MORE, ""))]
    menu_lines = [
        f"{n}. {to_gsm7(b.title)}"
        for n, b in enumerate((b for r in replies for b in r.buttons), start=1)
    ]
    if menu_lines:
        last = pages[-1]
        assert all(line in last.split("\n") for line in menu_lines), last
        assert last.endswith(MENU_HINT)
        menu_words = words("\n".join([*menu_lines, MENU_HINT]))
        received = received[: len(received) - len(menu_words)]
    assert received == expected


# --- the contract ----------------------------------------------------------------


def test_sms_channel_follows_the_channel_contract() -> None:
    channel: Channel = SmsChannel()
    assert channel.name == "sms"
    assert isinstance(channel.render([], {}), RenderedReplies)
    assert isinstance(channel.interpret(message("halo"), {}, False), Interpretation)


# --- rendering ---------------------------------------------------------------------


def test_short_turn_is_one_body() -> None:
    replies = [Reply("Halo!"), Reply("Ada yang bisa saya bantu?")]
    rendered = CHANNEL.render(replies, {})
    assert rendered.bodies == [
        {"kind": "sms", "text": "Halo!\nAda yang bisa saya bantu?"}
    ]
    assert "pages" not in rendered.state and "menu" not in rendered.state


def test_render_converts_to_gsm7() -> None:
    reply = Reply("\u201cSiap\u201d \u2705 \u2014 kita mulai\u2026 \U0001f680")
    rendered = CHANNEL.render([reply], {})
    assert rendered.bodies[0]["text"] == '"Siap" v - kita mulai...'


def test_buttons_become_a_numbered_menu() -> None:
    rendered = CHANNEL.render([domain_reply("utter_greet")], {})
    text = rendered.bodies[0]["text"]
    assert text.endswith(
        "\n1. Cek syarat saya\n2. Cara daftar\n3. Manfaat\nBalas angka pilihanmu."
    )
    assert rendered.state["menu"] == [
        "/check_eligibility",
        "/ask_how_to_register",
        "/ask_benefits",
    ]
    assert_sendable(text)


def test_turn_without_buttons_clears_the_old_menu_and_pages() -> None:
    state = {"menu": ["Ya", "Tidak"], "pages": ["lama"], "other": 1}
    rendered = CHANNEL.render([Reply("Oke, dicatat.")], state)
    assert rendered.state == {"other": 1}
    assert state == {"menu": ["Ya", "Tidak"], "pages": ["lama"], "other": 1}


def test_empty_turn_keeps_the_state() -> None:
    state = {"menu": ["Ya", "Tidak"]}
    assert CHANNEL.render([], state) == RenderedReplies([], {"menu": ["Ya", "Tidak"]})


def test_images_are_dropped_for_feature_phones() -> None:
    rendered = CHANNEL.render([Reply("Contoh KTP:", image_url="https://x/k.png")], {})
    assert rendered.bodies == [{"kind": "sms", "text": "Contoh KTP:"}]


def _faq_cases() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for version in known_versions():
        for intent in sorted(FAQ_INTENTS):
            entry = load_texts()["intents"][intent]
            samples = [""] + [
                next(k for k in spec["keywords"] if not k.startswith("re:"))
                for spec in (entry.get("topics") or {}).values()
            ]
            cases.extend((version, intent, sample) for sample in samples)
    return cases


FAQ_CASES = _faq_cases()


@pytest.mark.parametrize(("version", "intent", "sample"), FAQ_CASES)
def test_every_faq_answer_renders_within_two_segments(
    version: str, intent: str, sample: str
) -> None:
    answer = render_answer(intent, load_policy(version), sample)
    turns = [
        [Reply(answer)],
        [Reply(answer), domain_reply("utter_greet")],
        [Reply(answer), Reply(answer), domain_reply("utter_ask_elig_citizen")],
    ]
    for replies in turns:
        rendered = CHANNEL.render(replies, {})
        pages = read_all(rendered)
        for page in pages:
            assert_sendable(page)
        for page in pages[:-1]:
            assert page.endswith("\n" + MORE)
        assert not pages[-1].endswith(MORE)
        assert_nothing_lost(replies, pages)


def test_all_faq_answers_of_a_version_page_through_with_9() -> None:
    policy = load_policy("2023")
    replies = [Reply(render_answer(i, policy)) for i in sorted(FAQ_INTENTS)]
    replies.append(domain_reply("utter_ask_elig_social_aid"))
    rendered = CHANNEL.render(replies, {})
    first = rendered.bodies[0]["text"]
    assert first.endswith("\n(balas 9 untuk lanjut)")
    assert rendered.state["menu"] == ["Ya", "Tidak"]
    pages = read_all(rendered)
    assert len(pages) > 5
    assert all(MENU_HINT not in page for page in pages[:-1])
    assert pages[-1].endswith("\n1. Ya\n2. Tidak\nBalas angka pilihanmu.")
    assert_nothing_lost(replies, pages)


def test_paging_is_as_tight_as_two_segments_allow() -> None:
    text = " ".join(["kata"] * 200)  # 999 septets
    pages = read_all(CHANNEL.render([Reply(text)], {}))
    assert len(pages) == 4
    assert all(segment_info(page).units > 280 for page in pages[:-1])


def test_question_stays_with_its_menu() -> None:
    answer = " ".join(["informasi"] * 25)  # fits one page alone, not with a menu
    question = domain_reply("utter_ask_elig_prior_participant")
    pages = read_all(CHANNEL.render([Reply(answer), question], {}))
    assert pages == [
        answer + "\n" + MORE,
        question.text + "\n1. Ya\n2. Tidak\nBalas angka pilihanmu.",
    ]


def test_word_longer_than_a_page_is_cut() -> None:
    url = "https://prakerja.go.id/" + "a" * 700
    pages = read_all(CHANNEL.render([Reply(url)], {}))
    assert "".join(page.replace("\n" + MORE, "") for page in pages) == url
    for page in pages:
        assert_sendable(page)


def test_extension_characters_count_double_when_paging() -> None:
    text = " ".join(["{x}"] * 150)
    pages = read_all(CHANNEL.render([Reply(text)], {}))
    for page in pages:
        assert_sendable(page)
    assert_nothing_lost([Reply(text)], pages)


def test_long_menu_uses_0_for_more() -> None:
    buttons = tuple(Button(f"Pilihan {n}", f"/pilih_{n}") for n in range(1, 11))
    long_text = " ".join(["penjelasan"] * 60)
    rendered = CHANNEL.render([Reply(long_text, buttons)], {})
    assert rendered.bodies[0]["text"].endswith("\n(balas 0 untuk lanjut)")
    nine = CHANNEL.interpret(message("9"), rendered.state, opted_out=False)
    assert nine.rasa_text == "/pilih_9"
    state, last = rendered.state, ""
    while state.get("pages"):
        more = CHANNEL.interpret(message("0"), state, opted_out=False)
        assert more.rasa_text is None
        state, last = more.state, more.local_bodies[0]["text"]
    assert last.endswith("9. Pilihan 9\n10. Pilihan 10\nBalas angka pilihanmu.")
    assert CHANNEL.interpret(message("10"), state, False).rasa_text == "/pilih_10"


# --- interpreting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "payload"),
    [
        ("1", "/check_eligibility"),
        ("2", "/ask_how_to_register"),
        (" 3. ", "/ask_benefits"),
    ],
)
def test_menu_number_maps_to_the_payload(text: str, payload: str) -> None:
    state = CHANNEL.render([domain_reply("utter_greet")], {}).state
    result = CHANNEL.interpret(message(text), state, opted_out=False)
    assert result.rasa_text == payload
    assert result.local_bodies == [] and result.opted_out is None
    assert "menu" not in result.state


def test_yes_no_menu() -> None:
    state = CHANNEL.render([domain_reply("utter_ask_elig_citizen")], {}).state
    assert CHANNEL.interpret(message("2"), state, False).rasa_text == "Tidak"
    assert CHANNEL.interpret(message("1"), state, False).rasa_text == "Ya"


@pytest.mark.parametrize("text", ["3", "0", "12", "1 2", "satu"])
def test_number_outside_the_menu_is_plain_text(text: str) -> None:
    state = CHANNEL.render([domain_reply("utter_ask_elig_citizen")], {}).state
    result = CHANNEL.interpret(message(text), state, opted_out=False)
    assert result.rasa_text == text
    assert result.state["menu"] == ["Ya", "Tidak"]


def test_number_without_a_menu_is_plain_text() -> None:
    result = CHANNEL.interpret(message("2"), {}, opted_out=False)
    assert result.rasa_text == "2"


def test_button_payload_from_the_simulator_is_accepted() -> None:
    state = {"menu": ["/check_eligibility"]}
    result = CHANNEL.interpret(
        message("Cek syarat saya", payload="/check_eligibility"), state, False
    )
    assert result.rasa_text == "/check_eligibility"


def test_9_without_pages_is_plain_text() -> None:
    result = CHANNEL.interpret(message("9"), {}, opted_out=False)
    assert result.rasa_text == "9"


def test_free_text_drops_pending_pages_but_not_the_menu() -> None:
    state = {"menu": ["Ya", "Tidak"], "pages": ["halaman 2"]}
    result = CHANNEL.interpret(message("apa itu bansos?"), state, opted_out=False)
    assert result.rasa_text == "apa itu bansos?"
    assert result.state == {"menu": ["Ya", "Tidak"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/affirm", "affirm"),
        ("  /check_eligibility", "check_eligibility"),
        ('/inform{"elig_age": 30}', 'inform{"elig_age": 30}'),
        ("//restart", "restart"),
        ("halo /affirm", "halo /affirm"),
    ],
)
def test_typed_intent_syntax_is_neutralised(text: str, expected: str) -> None:
    result = CHANNEL.interpret(message(text), {}, opted_out=False)
    assert result.rasa_text == expected


def test_payload_we_sent_passes_when_typed() -> None:
    state = {"menu": ["/check_eligibility"]}
    result = CHANNEL.interpret(message("/check_eligibility"), state, False)
    assert result.rasa_text == "/check_eligibility"


def test_empty_message_is_not_sent_to_rasa() -> None:
    assert CHANNEL.interpret(message("  "), {}, opted_out=False).rasa_text is None


@pytest.mark.parametrize("text", ["/", "//", " / / ", "/\u3000/"])
def test_only_slashes_are_not_sent_to_rasa(text: str) -> None:
    result = CHANNEL.interpret(message(text), {"menu": ["Ya"]}, opted_out=False)
    assert result.rasa_text is None
    assert result.local_bodies == []


def test_mms_photo_reaches_rasa_as_an_event() -> None:
    event = {
        "type": "photo",
        "url": "https://api.twilio.com/m/ME1",
        "content_type": "image/jpeg",
    }
    result = CHANNEL.interpret(message("", event=event), {}, opted_out=False)
    assert result.rasa_text == '/inform{"photo_url": "https://api.twilio.com/m/ME1"}'
    assert result.rasa_metadata == {"event": event}


# --- STOP / MULAI ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop! ", "BERHENTI", "berhenti.", "STOPALL", "stop all",
     "UNSUBSCRIBE"],
)  # fmt: skip
def test_stop_keywords_opt_out(text: str) -> None:
    state = {"menu": ["Ya", "Tidak"], "pages": ["x"], "other": 1}
    result = CHANNEL.interpret(message(text), state, opted_out=False)
    assert result.opted_out is True
    assert result.rasa_text is None
    assert result.local_bodies == [{"kind": "sms", "text": OPTED_OUT_TEXT}]
    assert "MULAI" in OPTED_OUT_TEXT
    assert_sendable(OPTED_OUT_TEXT)
    assert result.state == {"other": 1}


@pytest.mark.parametrize(
    "text", ["stop dulu ya", "saya mau berhenti kuliah", "cancel", "quit", "End"]
)
def test_stop_inside_a_sentence_is_ordinary_text(text: str) -> None:
    result = CHANNEL.interpret(message(text), {}, opted_out=False)
    assert result.opted_out is None and result.rasa_text == text


@pytest.mark.parametrize(
    "text", ["halo", "1", "9", "YES", "ya", "STOP", "berhenti", "/affirm"]
)
def test_nothing_is_answered_while_opted_out(text: str) -> None:
    state = {"pages": ["halaman 2"], "menu": ["Ya"]}
    result = CHANNEL.interpret(message(text), state, opted_out=True)
    assert result.rasa_text is None
    assert result.local_bodies == []
    assert result.opted_out is None


@pytest.mark.parametrize("text", ["MULAI", "mulai", "Start", "UNSTOP", " mulai! "])
def test_restart_keywords_opt_in(text: str) -> None:
    result = CHANNEL.interpret(message(text), {}, opted_out=True)
    assert result.opted_out is False
    assert result.rasa_text is None
    assert result.local_bodies == [{"kind": "sms", "text": OPTED_IN_TEXT}]
    assert_sendable(OPTED_IN_TEXT)


def test_restart_keyword_when_subscribed_is_ordinary_text() -> None:
    result = CHANNEL.interpret(message("mulai"), {}, opted_out=False)
    assert result.opted_out is None and result.rasa_text == "mulai"


def test_stop_then_mulai_round_trip() -> None:
    opted_out = False
    state: dict[str, Any] = {}
    sent: list[str] = []
    for text in ("BERHENTI", "halo?", "1", "MULAI", "halo"):
        result = CHANNEL.interpret(message(text), state, opted_out)
        sent.extend(body["text"] for body in result.local_bodies)
        if result.opted_out is not None:
            opted_out = result.opted_out
        state = result.state
        if text == "halo":
            assert result.rasa_text == "halo"
        else:
            assert result.rasa_text is None
    assert sent == [OPTED_OUT_TEXT, OPTED_IN_TEXT]
    assert not re.search(r"[^\x00-\x7f]", "".join(sent))
