"""The batch subcommands of `python -m bot.console.admin` (for automation):

    batch-list                                       every batch and its stage
    batch-open N --opens ISO --closes ISO --quota Q [--places P]
    batch-close N                                    nobody joins any more
    batch-select N [--seed S] [--places P]           the draw (resumed after a crash)
    batch-figures N                                  results, exclusions, messages
    batch-publish N                                  results known, messages written
    batch-pause N / batch-resume N                   stop or go on sending the results

Times without a zone are WIB. Each step is audited as `cli:<os user>`; a step
the batch's state forbids is refused (exit status 1) and writes nothing.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from bot.console import batch_ops, labels
from bot.db import utcnow
from bot.policy.programme import format_number
from bot.registration.desk import CODE_SECRET_PURPOSE
from bot.registry import batch_by_number
from bot.selection.errors import LifecycleError
from bot.selection.figures import Figures, all_figures, batch_figures
from bot.settings import load_settings

WIB = timezone(timedelta(hours=7))
COMMANDS = (
    "batch-list",
    "batch-open",
    "batch-close",
    "batch-select",
    "batch-figures",
    "batch-publish",
    "batch-pause",
    "batch-resume",
)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=WIB)


def add_commands(commands: Any) -> None:
    """Add the batch subcommands to the admin parser's subparsers."""
    opened = commands.add_parser("batch-open", help="buka/jadwalkan gelombang")
    opened.add_argument("number", type=int)
    opened.add_argument("--opens", type=_moment, required=True)
    opened.add_argument("--closes", type=_moment, required=True)
    opened.add_argument("--quota", type=int, required=True)
    opened.add_argument("--places", type=int, default=None)
    for name, text in (
        ("batch-close", "tutup gelombang"),
        ("batch-figures", "angka gelombang"),
        ("batch-publish", "umumkan hasil"),
        ("batch-pause", "jeda pengiriman hasil"),
        ("batch-resume", "lanjutkan pengiriman hasil"),
    ):
        commands.add_parser(name, help=text).add_argument("number", type=int)
    chosen = commands.add_parser("batch-select", help="jalankan seleksi")
    chosen.add_argument("number", type=int)
    chosen.add_argument("--seed", default=None)
    chosen.add_argument("--places", type=int, default=None)
    commands.add_parser("batch-list", help="daftar gelombang")


def describe(figures: Figures, now: datetime) -> str:
    """A batch's figures as lines of text (no personal data)."""
    run = figures.run
    batch = run.batch
    lines = [
        f"Gelombang {batch.number}: {labels.label(labels.RUN_STAGES, run.stage(now))}",
        f"  buka {labels.wib(batch.opens_at)}, tutup {labels.wib(batch.closes_at)}",
        f"  kuota {format_number(batch.quota)}, bergabung "
        f"{format_number(batch.joined_count)}, tempat {format_number(run.places)}",
    ]
    if run.seed:
        lines.append(f"  seed {run.seed}")
    if run.selected_count is not None:
        lines.append(
            f"  memenuhi syarat {format_number(run.eligible_count or 0)}, "
            f"lolos {format_number(run.selected_count)}"
        )
    for reason, count in sorted(figures.excluded.items()):
        label = labels.label(labels.EXCLUDED_REASONS, reason)
        lines.append(f"  tidak memenuhi syarat ({label}): {format_number(count)}")
    for status, count in sorted(figures.messages.items()):
        label = labels.label(labels.MESSAGE_STATUSES, status)
        lines.append(f"  pesan {label}: {format_number(count)}")
    if figures.paused:
        lines.append("  pengiriman hasil dijeda")
    if figures.reminders_due:
        lines.append(f"  pengingat terjadwal: {format_number(figures.reminders_due)}")
    return "\n".join(lines)


def run_command(args: argparse.Namespace, session: Session, via: str) -> str:
    """Carry out one batch subcommand (commits between the selection's steps)."""
    now = utcnow()
    if args.command == "batch-list":
        found = all_figures(session)
        return "\n".join(describe(item, now) for item in found) or "Belum ada."
    if args.command == "batch-open":
        run, created = batch_ops.schedule(
            session,
            None,
            via,
            args.number,
            args.opens,
            args.closes,
            args.quota,
            args.places,
            now,
        )
        state = "dibuat" if created else "sudah ada, tidak berubah"
        return f"Gelombang {run.batch.number} {state}."
    batch = batch_by_number(session, args.number)
    if batch is None:
        raise LifecycleError("not_found")
    if args.command == "batch-close":
        batch_ops.close(session, None, via, batch.id, now)
        return f"Gelombang {batch.number} ditutup."
    if args.command == "batch-select":
        batch_ops.start_selection(session, batch.id, now, args.seed, args.places)
        session.commit()
        secret = load_settings().secret_for(CODE_SECRET_PURPOSE)
        run = batch_ops.finish_selection(session, None, via, batch.id, now, secret)
        return (
            f"Seleksi Gelombang {batch.number} selesai: lolos "
            f"{format_number(run.selected_count or 0)} (seed {run.seed})."
        )
    if args.command == "batch-publish":
        batch_ops.publish(session, None, via, batch.id, now)
        return f"Hasil Gelombang {batch.number} diumumkan."
    if args.command in ("batch-pause", "batch-resume"):
        paused = args.command == "batch-pause"
        batch_ops.set_paused(session, None, via, batch.id, paused, now)
        state = "dijeda" if paused else "dilanjutkan"
        return f"Pengiriman hasil Gelombang {batch.number} {state}."
    return describe(batch_figures(session, batch.id), now)
