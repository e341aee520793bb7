"""Refresh the console screenshots in docs/screenshots (`make screenshots`).

Runs the console's browser test (`tests/console_e2e`) once, for real, with
docs/screenshots as its picture folder: the same stack (gateway with the
console, Rasa, actions, a seeded SQLite database with demo registrations, a
local fake of Twilio's API) and the same story. Before it, two more people ask
for an agent over SMS, so the queue and the supervisor's figures are not empty.
Writes console-queue.png, console-ticket.png, console-supervisor.png and
console-batches.png.

Usage (from the project root, with the trained model and Debian's chromium):

    .venv/bin/python -m scripts.console_screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.console_e2e.site import (
    launched_chromium,
    require_chromium,
    running_console_site,
)
from tests.console_e2e.test_console_browser import (
    test_agent_answers_an_sms_user_in_the_browser as agent_story,
)
from tests.integration.test_registration_sms import (
    SmsTranscript,
    transcript_on_failure,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SHOTS = (
    "console-queue.png",
    "console-ticket.png",
    "console-supervisor.png",
    "console-batches.png",
)
OTHERS_WAITING = (
    ("+6281234500011", "saya mau komplain, pelayanannya lambat sekali"),
    ("+6281234500012", "bisa ngobrol sama orang beneran?"),
)
"""Two more people in the queue before the story's user: (phone, what they say)."""
OTHER_SIDS = 10_000
"""Their message SIDs start here, far from the story's (which start at 1)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stack and the story; 0 when the three screenshots were written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="picture folder")
    out = parser.parse_args(argv).out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        chromium = require_chromium()
        with (
            tempfile.TemporaryDirectory(prefix="console-screenshots-") as work,
            running_console_site(Path(work)) as site,
            launched_chromium(chromium) as browser,
        ):
            # Own message SIDs: Twilio's are unique and the gateway drops repeats.
            others = SmsTranscript(site.sms, _sids=OTHER_SIDS)
            with transcript_on_failure(others):
                for phone, text in OTHERS_WAITING:
                    others.say(phone, text, "antrean", "a place in the queue")
            agent_story(site, browser, out)
    except (pytest.fail.Exception, pytest.skip.Exception) as exc:
        print(f"console_screenshots: {exc}", file=sys.stderr)
        return 1
    for name in SHOTS:
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
