"""The supervisors' batch page (/console/batches): every batch with its stage and
figures, a form to open or schedule one, and the buttons for the next step
(close, select, publish, then pause or resume sending the results). Plain
forms with the session's CSRF token (checked by `web.guard`); each step is
audited (`batch_ops`); a refused step comes back as a notice, having changed
nothing. A published batch shows its announcement's progress, refreshed live
from `/console/api/batches/<id>/progress` (JSON) by the page's script."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.console import batch_ops, labels
from bot.console.admin_batches import WIB
from bot.console.views import queue_items
from bot.console.web import SafeJSONResponse, Visit, render
from bot.db import utcnow
from bot.hosting import host, run_in_session
from bot.registration.desk import CODE_SECRET_PURPOSE
from bot.selection.errors import MESSAGES, LifecycleError
from bot.selection.figures import all_figures
from bot.selection.progress import ProgressMeter

PATH = "/console/batches"
NOTICES = {
    "scheduled": "Gelombang dibuat.",
    "unchanged": "Gelombang itu sudah ada dengan data yang sama.",
    "closed": "Gelombang ditutup.",
    "selected": "Seleksi selesai. Periksa angkanya sebelum mengumumkan.",
    "published": "Hasil diumumkan; pesan untuk peserta sedang dikirim.",
    "paused": "Pengiriman hasil dijeda.",
    "resumed": "Pengiriman hasil dilanjutkan.",
    "bad_form": "Isi nomor, waktu buka/tutup dan kuota dengan benar.",
    **MESSAGES,
}


METER = ProgressMeter()
"""This process's looks at each batch's progress (for the rate)."""


def _redirect(notice: str) -> Response:
    return RedirectResponse(f"{PATH}?msg={notice}#batches", status_code=303)


async def batches_page(request: Request, visit: Visit) -> Response:
    """Every batch, newest first, with its figures and next step."""
    now = utcnow()

    def build(db: Session) -> dict[str, Any]:
        figures = all_figures(db)
        return {
            "batches": figures,
            "progress_by_batch": {
                item.run.batch.id: METER.look(db, item.run.batch.id, now)
                for item in figures
                if item.run.state == "published"
            },
            "queue": queue_items(db, visit.agent, now),
        }

    context = await run_in_session(request, build)
    return render(
        "batches.html",
        agent=visit.agent,
        csrf=visit.csrf_token,
        role_label=labels.label(labels.ROLES, visit.agent.role),
        page_kind="batches",
        current_id=None,
        notice=NOTICES.get(request.query_params.get("msg", ""), ""),
        labels=labels,
        now=now,
        **context,
    )


def _number(text: object) -> int | None:
    if isinstance(text, str) and text.strip().isdigit() and len(text.strip()) < 9:
        return int(text.strip())
    return None


def _moment(text: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment.replace(tzinfo=WIB) if moment.tzinfo is None else moment


async def schedule_batch(request: Request, visit: Visit) -> Response:
    """Open or schedule a batch (times typed in WIB)."""
    form = await request.form()
    number, quota = _number(form.get("number")), _number(form.get("quota"))
    places = _number(form.get("places"))
    opens, closes = _moment(form.get("opens")), _moment(form.get("closes"))
    if number is None or quota is None or opens is None or closes is None:
        return _redirect("bad_form")

    def work(db: Session) -> bool:
        _, created = batch_ops.schedule(
            db, visit.agent.id, None, number, opens, closes, quota, places, utcnow()
        )
        return created

    try:
        created = await run_in_session(request, work)
    except LifecycleError as refused:
        return _redirect(refused.code)
    return _redirect("scheduled" if created else "unchanged")


async def _one_step(
    request: Request, step: Callable[[Session], object], done: str
) -> Response:
    """Run one lifecycle step in a session; back to the page with `done`, or
    with the reason it was refused."""
    try:
        await run_in_session(request, step)
    except LifecycleError as refused:
        return _redirect(refused.code)
    return _redirect(done)


async def close_batch(request: Request, visit: Visit) -> Response:
    """Close the batch: nobody joins any more."""
    batch_id = int(request.path_params["batch_id"])
    return await _one_step(
        request,
        lambda db: batch_ops.close(db, visit.agent.id, None, batch_id, utcnow()),
        "closed",
    )


async def select_batch(request: Request, visit: Visit) -> Response:
    """Run (or resume) the selection: the seed is committed before the draw."""
    batch_id = int(request.path_params["batch_id"])
    form = await request.form()
    places = _number(form.get("places"))
    secret = host(request).settings.secret_for(CODE_SECRET_PURPOSE)
    now = utcnow()
    try:
        await run_in_session(
            request,
            lambda db: batch_ops.start_selection(db, batch_id, now, None, places),
        )
        await run_in_session(
            request,
            lambda db: batch_ops.finish_selection(
                db, visit.agent.id, None, batch_id, now, secret
            ),
        )
    except LifecycleError as refused:
        return _redirect(refused.code)
    return _redirect("selected")


async def publish_batch(request: Request, visit: Visit) -> Response:
    """Publish the results."""
    batch_id = int(request.path_params["batch_id"])
    return await _one_step(
        request,
        lambda db: batch_ops.publish(db, visit.agent.id, None, batch_id, utcnow()),
        "published",
    )


async def publish_and_wake(request: Request, visit: Visit) -> Response:
    """Publish the results and wake this process's announcement sender."""
    response = await publish_batch(request, visit)
    host(request).announcer.notify()
    return response


async def pause_batch(request: Request, visit: Visit) -> Response:
    """Pause sending the batch's results (rows already handed over still go)."""
    batch_id = int(request.path_params["batch_id"])
    return await _one_step(
        request,
        lambda db: batch_ops.set_paused(
            db, visit.agent.id, None, batch_id, True, utcnow()
        ),
        "paused",
    )


async def resume_batch(request: Request, visit: Visit) -> Response:
    """Go on sending the batch's results."""
    batch_id = int(request.path_params["batch_id"])
    response = await _one_step(
        request,
        lambda db: batch_ops.set_paused(
            db, visit.agent.id, None, batch_id, False, utcnow()
        ),
        "resumed",
    )
    host(request).announcer.notify()
    return response


async def progress_api(request: Request, visit: Visit) -> Response:
    """The announcement's progress (JSON, for the page's live figures)."""
    batch_id = int(request.path_params["batch_id"])
    now = utcnow()
    progress = await run_in_session(request, lambda db: METER.look(db, batch_id, now))
    data = progress.as_json()
    data["finish_wib"] = labels.wib(progress.finish) if progress.finish else None
    return SafeJSONResponse(data, headers={"Cache-Control": "no-store"})
