"""An agent answers an SMS user in the console, in a real browser (issue 5).

Everything runs for real (gateway with the console, Rasa, actions, one SQLite
database) but Twilio's REST API, which is a local fake; inbound SMS are signed
as Twilio signs them. Playwright drives Debian's Chromium. The agent opens the
queue before the user asks for a person; the ticket, and later the user's
answer, must appear without a reload. Every wait is Playwright's auto-waiting
`expect` or a poll with a deadline. `scripts/console_screenshots.py` runs this
same test to refresh `docs/screenshots/console-*.png`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import func, select

from bot.channels.sms.gsm7 import GSM7, segment_info
from bot.db import make_engine, make_sessionmaker
from bot.handoff.models import TICKET_OPEN, TICKET_RESOLVED, Ticket
from bot.messages.models import INBOX_DONE, Conversation, InboxMessage, OutboxMessage
from tests.console_e2e.site import (
    AGENT,
    DEMO_REGISTRATIONS,
    PASSWORD,
    PHONE,
    SUPERVISOR,
    VIEWPORT,
    Account,
    ConsoleSite,
)
from tests.integration.test_registration_sms import (
    WAIT,
    SmsTranscript,
    check_bodies,
    transcript_on_failure,
)

UI_WAIT_MS = 60_000
"""How long an `expect` keeps polling the page (the queue polls every 2.5 s)."""
POLL = 0.3
ASK_FOR_AGENT = "saya mau bicara dengan petugas"
EMOJI_DRAFT = "Halo Bu Siti \U0001f60a"
REPLY = (
    "Halo Bu Siti, saya Rina dari tim Prakerja. Data Ibu sudah lengkap dan Ibu "
    "sudah masuk gelombang. Pengumuman seleksi dikirim lewat SMS ini."
)
HOSTILE_ANSWER = "Oke makasih bu, <b>jadi</b> saya tinggal tunggu ya?"
NOTE = "Sudah dijelaskan: menunggu pengumuman seleksi."
DRAFT = "Sama-sama, Bu Siti. Kalau ada pertanyaan lagi, balas saja SMS ini ya."
"""Typed but never sent: the ticket's screenshot shows the SMS counter."""
TOPBAR_PX = 44
RESOLVED_MARKER = "Percakapan dengan petugas selesai"
NEXT_QUESTION = "cara daftar gimana"
NO_RELOAD = "() => { window.__consoleE2eNoReload = true; }"
STILL_LOADED = "() => window.__consoleE2eNoReload === true"


# --- the database, read as the test's witness --------------------------------------


def ticket_of(site: ConsoleSite, phone: str) -> tuple[int, str]:
    """The id and status of the newest ticket of the SMS conversation with
    ``phone`` (fails when there is none)."""
    engine = make_engine(site.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            row = session.execute(
                select(Ticket.id, Ticket.status)
                .join(Conversation, Conversation.id == Ticket.conversation_id)
                .where(Conversation.channel == "sms", Conversation.address == phone)
                .order_by(Ticket.id.desc())
                .limit(1)
            ).first()
    finally:
        engine.dispose()
    assert row is not None, f"no ticket for {phone}"
    return int(row.id), str(row.status)


def open_ticket_count(site: ConsoleSite) -> int:
    """Tickets waiting for an agent now."""
    engine = make_engine(site.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return int(
                session.execute(
                    select(func.count(Ticket.id)).where(Ticket.status == TICKET_OPEN)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def handled_without_rasa(site: ConsoleSite, phone: str, text: str) -> str:
    """Wait until the gateway is done with the inbound ``text`` from ``phone``;
    check it produced no reply; the conversation's pseudonym (Rasa's sender)."""
    engine = make_engine(site.database_url)
    deadline = time.monotonic() + WAIT
    try:
        while True:
            with make_sessionmaker(engine)() as session:
                row = session.execute(
                    select(InboxMessage.id, InboxMessage.status, Conversation.pseudonym)
                    .join(Conversation, Conversation.id == InboxMessage.conversation_id)
                    .where(
                        Conversation.channel == "sms",
                        Conversation.address == phone,
                        InboxMessage.text == text,
                    )
                ).first()
                if row is not None and row.status == INBOX_DONE:
                    replies = session.execute(
                        select(func.count(OutboxMessage.id)).where(
                            OutboxMessage.inbox_id == row.id
                        )
                    ).scalar_one()
                    assert replies == 0, f"{replies} replies to a message for the agent"
                    return str(row.pseudonym)
            assert time.monotonic() < deadline, f"{text!r} not processed in {WAIT} s"
            time.sleep(POLL)
    finally:
        engine.dispose()


def rasa_user_texts(site: ConsoleSite, sender: str) -> list[str]:
    """Every user message Rasa's tracker holds for ``sender``."""
    response = httpx.get(f"{site.rasa_url}/conversations/{sender}/tracker", timeout=30)
    assert response.status_code == 200, f"tracker: HTTP {response.status_code}"
    events = response.json().get("events", [])
    return [str(event.get("text")) for event in events if event.get("event") == "user"]


# --- the browser -------------------------------------------------------------------


def log_in(browser: Browser, site: ConsoleSite, account: Account) -> Page:
    """A fresh browser context (own cookies) logged in as ``account``, on the queue."""
    page = browser.new_context(viewport=VIEWPORT, locale="id-ID").new_page()
    page.goto(f"{site.base}/console/queue")
    expect(page).to_have_url(f"{site.base}/console/login")  # no session yet
    page.get_by_label("Nama pengguna").fill(account.username)
    page.get_by_label("Kata sandi").fill(PASSWORD)
    page.get_by_role("button", name="Masuk").click()
    expect(page).to_have_url(f"{site.base}/console/queue")
    expect(page.locator("header.topbar")).to_contain_text(account.display_name)
    return page


def queue_item(page: Page, ticket_id: int) -> Locator:
    """The ticket's entry in the queue list (server-rendered or polled)."""
    return page.locator(f'#queue-list li[data-id="{ticket_id}"]')


def counter_label(text: str) -> str:
    """What the SMS counter must say for ``text`` typed (one GSM-7 segment)."""
    info = segment_info(text)
    assert info.encoding == GSM7 and info.segments == 1, "REPLY must fit one SMS"
    return f"GSM-7: 1 SMS ({info.units}/160 karakter)"


def capture(page: Page, path: Path) -> None:
    """A screenshot of the whole page. The work area scrolls inside the window
    (so `full_page` would cut it): the window is made as tall as its content
    for the picture, then put back."""
    size = page.viewport_size or VIEWPORT
    for _ in range(2):  # a taller window can reflow the page once
        content = page.evaluate(
            "() => { const main = document.querySelector('main');"
            " main.scrollTop = 0; return main.scrollHeight; }"
        )
        height = max(size["height"], int(content) + TOPBAR_PX)
        page.set_viewport_size({"width": size["width"], "height": height})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def supervisor_view(browser: Browser, site: ConsoleSite, shots: Path) -> None:
    """The supervisor sees queue figures, today's agent activity, the funnel
    chart and the audit log of what the agent did."""
    page = log_in(browser, site, SUPERVISOR)
    page.get_by_role("link", name="Supervisor").click()
    expect(page).to_have_url(f"{site.base}/console/supervisor")
    chart = page.locator("svg.funnel")
    expect(chart.locator("rect.funnel-bar")).to_have_count(5)
    registered = len(DEMO_REGISTRATIONS)
    funnel = page.get_by_role("table", name="Corong pendaftaran (angka)")
    expect(funnel.locator("tbody tr td:first-of-type")).to_have_text(
        [str(registered), "5", "4", "3", "1"]
    )
    activity = page.locator("section", has=page.locator("#activity-heading"))
    agent_row = activity.get_by_role("row").filter(has_text=AGENT.username)
    # Role, claimed, replied, resolved, last seen.
    expect(agent_row.locator("td")).to_have_text(
        ["Petugas", "1", "1", "1", re.compile(r"\d")]
    )
    audit = page.locator("table.audit")
    for action in ("masuk", "ambil tiket", "balas", "catatan", "selesaikan tiket"):
        cell = audit.get_by_role("cell", name=action, exact=True)
        expect(cell.first).to_be_visible()
    capture(page, shots / "console-supervisor.png")
    page.context.close()


def batch_page(browser: Browser, site: ConsoleSite, shots: Path) -> None:
    """The supervisor closes the open batch, runs the selection, reviews its
    figures and publishes the results, each with a plain form, then watches
    the results go out."""
    page = log_in(browser, site, SUPERVISOR)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda line: errors.append(line.text) if line.type == "error" else None,
    )
    page.get_by_role("link", name="Gelombang").click()
    expect(page).to_have_url(f"{site.base}/console/batches")
    batch = page.locator(f"#batch-{site.sms.open_batch}")
    expect(batch.locator(".stage")).to_have_text("dibuka")
    batch.get_by_role("button", name="Tutup gelombang").click()
    expect(page.locator("main .banner[role=status]")).to_have_text("Gelombang ditutup.")
    batch = page.locator(f"#batch-{site.sms.open_batch}")
    expect(batch.locator(".stage")).to_have_text("ditutup")
    batch.get_by_role("button", name="Jalankan seleksi").click()
    expect(page.locator("main .banner[role=status]")).to_contain_text("Seleksi selesai")
    batch = page.locator(f"#batch-{site.sms.open_batch}")
    expect(batch.locator(".selected-count")).to_have_text("3")  # 1 earlier + 2 drawn
    expect(batch.get_by_text("Seed undian")).to_be_visible()
    batch.get_by_role("button", name="Umumkan hasil").click()
    expect(page.locator("main .banner[role=status]")).to_contain_text("Hasil diumumkan")
    batch = page.locator(f"#batch-{site.sms.open_batch}")
    expect(batch.locator(".stage")).to_have_text("hasil diumumkan")
    # the announcement's progress, refreshed live by the page's script (no
    # reload): the gateway's sender hands the results to the outbox, the fake
    # Twilio takes them
    progress = batch.locator("section.announce")
    expect(progress.get_by_role("heading", name="Pengiriman hasil")).to_be_visible()
    # The sender may be done before the page is drawn: blank the figures, so
    # only the page's poll of /progress can put them back (no reload).
    page.evaluate(NO_RELOAD)
    progress.locator("dd[data-field]").evaluate_all(
        "nodes => nodes.forEach(node => { node.textContent = '?'; })"
    )
    expect(progress.locator('[data-field="remaining"]')).to_have_text(
        "0", timeout=30_000
    )
    expect(progress.locator('[data-field="sent"]')).to_have_text(re.compile(r"^[1-9]"))
    expect(progress.locator('[data-field="failed"]')).to_have_text("0")
    expect(progress.locator('[data-field="finish"]')).to_have_text("selesai")
    expect(progress.locator("progress")).to_be_visible()
    assert page.evaluate(STILL_LOADED), "the batch page was reloaded"
    assert errors == [], errors
    expect(batch.get_by_role("button", name="Umumkan hasil")).to_have_count(0)
    capture(page, shots / "console-batches.png")
    page.context.close()


# --- the story ---------------------------------------------------------------------


def test_agent_answers_an_sms_user_in_the_browser(
    console_site: ConsoleSite, browser: Browser, tmp_path: Path
) -> None:
    """Queue, ticket, reply by SMS, the user's answer, resolve, the bot again;
    then the supervisor's view, the batch closed, drawn and published on the
    batch page, and the user's status with the result. Screenshots go to
    ``tmp_path``."""
    site = console_site
    shots = tmp_path
    transcript = SmsTranscript(site.sms)
    with transcript_on_failure(transcript):
        page = log_in(browser, site, AGENT)
        page.evaluate(NO_RELOAD)
        waiting_before = open_ticket_count(site)

        transcript.say(PHONE, "halo", "Prakerja", "the greeting")
        queued = transcript.say(PHONE, ASK_FOR_AGENT, "antrean", "the queue position")
        assert f"Posisimu: ke-{waiting_before + 1}," in queued
        ticket_id, status = ticket_of(site, PHONE)
        assert status == TICKET_OPEN

        # The ticket appears in the queue the agent already had open.
        item = queue_item(page, ticket_id)
        expect(item).to_contain_text("SMS: Minta petugas", timeout=UI_WAIT_MS)
        expect(item).to_contain_text("Antre")
        assert page.evaluate(STILL_LOADED), "the queue page was reloaded"
        capture(page, shots / "console-queue.png")

        item.get_by_role("link").click()
        expect(page).to_have_url(f"{site.base}/console/tickets/{ticket_id}")
        turns = page.locator("#transcript li.turn")
        expect(turns.filter(has_text=ASK_FOR_AGENT)).to_have_class(
            re.compile("turn-user")
        )
        expect(page.locator("#transcript li.turn-bot").first).to_be_visible()
        panel = page.locator("section.panel", has=page.locator("#registration-heading"))
        expect(panel).to_contain_text("SITI RAHAYU")
        expect(panel).not_to_contain_text(DEMO_REGISTRATIONS[1].person.nik)

        page.get_by_role("button", name="Ambil tiket").click()
        expect(page.locator("#ticket-status")).to_have_text("Ditangani")
        expect(page.locator("#ticket-agent")).to_contain_text(AGENT.display_name)

        reply_box = page.locator("#reply-text")
        counter = page.locator("#sms-counter")
        reply_box.fill(EMOJI_DRAFT)
        expect(counter).to_contain_text("UCS-2")
        reply_box.fill(REPLY)
        expect(counter).to_have_text(counter_label(REPLY))
        sent_before = len(transcript.bodies_to(PHONE))
        page.get_by_role("button", name="Kirim balasan").click()
        expect(page.get_by_role("status").first).to_contain_text("Balasan disimpan")
        on_phone = transcript.wait_for(PHONE, "Rina dari tim", sent_before, "the reply")
        assert on_phone == REPLY
        expect(turns.filter(has_text="Rina dari tim")).to_have_class(
            re.compile("turn-agent")
        )

        page.get_by_label("Catatan baru").fill(NOTE)
        page.get_by_role("button", name="Simpan catatan").click()
        expect(page.locator("#notes-list")).to_contain_text(NOTE)

        # The user answers: shown to the agent without a reload, as plain text,
        # and never handed to Rasa while the ticket is open.
        page.evaluate(NO_RELOAD)
        answered_before = len(transcript.bodies_to(PHONE))
        transcript.send(PHONE, HOSTILE_ANSWER)
        answer = turns.filter(has_text="saya tinggal tunggu")
        expect(answer).to_have_class(re.compile("turn-user"), timeout=UI_WAIT_MS)
        expect(answer.locator(".turn-text")).to_have_text(HOSTILE_ANSWER)
        expect(page.locator("#transcript b")).to_have_count(0)
        assert page.evaluate(STILL_LOADED), "the ticket page was reloaded"
        sender = handled_without_rasa(site, PHONE, HOSTILE_ANSWER)
        assert HOSTILE_ANSWER not in rasa_user_texts(site, sender)
        assert ASK_FOR_AGENT in rasa_user_texts(site, sender)
        assert len(transcript.bodies_to(PHONE)) == answered_before
        reply_box.fill(DRAFT)
        expect(counter).to_have_text(counter_label(DRAFT))
        capture(page, shots / "console-ticket.png")

        # Resolved: the bot takes over, re-reads the status, answers again.
        page.get_by_role("button", name="Selesaikan tiket").click()
        expect(page).to_have_url(re.compile(r"/console/queue\?msg=resolved$"))
        expect(queue_item(page, ticket_id)).to_have_count(0)
        assert ticket_of(site, PHONE) == (ticket_id, TICKET_RESOLVED)
        transcript.wait_for(
            PHONE, RESOLVED_MARKER, answered_before, "the bot taking over"
        )
        transcript.wait_for(
            PHONE, "Seleksi: menunggu pengumuman", answered_before, "the status"
        )
        answer_again = transcript.say(
            PHONE, NEXT_QUESTION, "daftar", "a normal answer after the handoff"
        )
        assert "antrean" not in answer_again and RESOLVED_MARKER not in answer_again
        assert ticket_of(site, PHONE) == (ticket_id, TICKET_RESOLVED)
        page.context.close()

        check_bodies(
            transcript,
            lambda body: "a NIK in an SMS" if re.search(r"\d{16}", body) else None,
        )
        supervisor_view(browser, site, shots)
        batch_page(browser, site, shots)
        told = transcript.say(PHONE, "status", "Seleksi: lolos", "the published result")
        assert "beli pelatihan pertamamu sebelum" in told
    print(transcript.render(logs=False))  # shown by `pytest -rP`
