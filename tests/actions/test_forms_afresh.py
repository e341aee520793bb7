"""The forms whose opening forgets answers (`AnswersOnlyForm.started_afresh`)
may do so only because the message that opens them never answers them: each
of their slots is filled from the text alone, never from the intents that open
the form (else "hubungkan akun 3201..." could one day fill the NIK, and the
opening would forget it)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from actions.forms import AnswersOnlyForm
from actions.privacy import ValidateErasureForm
from actions.registration import ValidateLinkForm
from tests.conftest import ROOT

AFRESH: list[type[AnswersOnlyForm]] = [ValidateLinkForm, ValidateErasureForm]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def opening_intents(form: str) -> set[str]:
    """The intents right before `form` runs in a rule or story (what opens it)."""
    intents: set[str] = set()
    for path in sorted((ROOT / "data").glob("*/*.yml")):
        for kind in ("rules", "stories"):
            for item in _yaml(path).get(kind) or []:
                steps = item.get("steps") or []
                for before, step in pairwise(steps):
                    if step.get("action") == form and "intent" in before:
                        intents.add(before["intent"])
    return intents


@pytest.mark.parametrize("validator", AFRESH, ids=lambda v: v.__name__)
def test_the_message_that_opens_the_form_never_answers_it(
    validator: type[AnswersOnlyForm],
) -> None:
    form = validator().name().removeprefix("validate_")
    slots = _yaml(ROOT / "domain.yml")["slots"]
    opening = opening_intents(form)
    assert opening, f"no rule or story opens {form}"
    for name in validator.started_afresh:
        for mapping in slots[name]["mappings"]:
            if mapping["type"] == "custom":
                continue  # set by the validator only
            assert mapping["type"] == "from_text", f"{name}: {mapping['type']}"
            assert opening <= set(mapping.get("not_intent") or []), (
                f"{name} could be filled by the message that opens {form}"
            )
