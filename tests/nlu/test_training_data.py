"""The NLU training data keeps the contract of ../shared/docs/intents.md."""

import re
from collections import Counter
from functools import lru_cache

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.policy.validation import (
    normalize_phone,
    parse_age,
    parse_date,
    validate_email,
    validate_kk,
    validate_nik,
)
from tests.conftest import ROOT, SHARED, require

CONTRACT_INTENTS = [
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "request_human",
    "out_of_scope", "ask_program_info", "ask_eligibility", "check_eligibility",
    "ask_benefits", "ask_how_to_register", "start_registration", "check_status",
    "email_problem", "nik_problem", "photo_problem", "otp_problem", "account_problem",
    "ask_test", "ask_batch", "ask_selection_result", "ask_training", "ask_incentive",
    "ask_survey", "report_scam", "complaint", "inform", "stop",
]
# Added beyond the contract (intents.md allows adding, not renaming or merging).
EXTRA_INTENTS = [
    "join_batch",
    "link_account",
    "ask_my_data",
    "request_erasure",
    "withdraw_consent",
]
MIN_EXAMPLES = 25


@lru_cache(maxsize=1)
def training_data() -> TrainingData:
    """All NLU files merged."""
    files = sorted((ROOT / "data" / "nlu").glob("*.yml"))
    return TrainingData().merge(*[load_data(str(f)) for f in files])


def test_domain_lists_the_contract_intents_and_the_declared_extras() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert sorted(domain["intents"]) == sorted(CONTRACT_INTENTS + EXTRA_INTENTS)


def test_contract_intents_match_the_shared_doc() -> None:
    doc = require(SHARED / "docs" / "intents.md", "the NLU contract").read_text()
    names = re.findall(r"^\| (\w+) \|", doc, flags=re.MULTILINE)
    assert sorted(n for n in names if n != "intent") == sorted(CONTRACT_INTENTS)


@pytest.mark.parametrize("intent", CONTRACT_INTENTS + EXTRA_INTENTS)
def test_every_intent_has_enough_examples(intent: str) -> None:
    counts = training_data().number_of_examples_per_intent
    assert counts.get(intent, 0) >= MIN_EXAMPLES


def test_no_example_is_labelled_twice() -> None:
    examples = training_data().intent_examples
    texts = Counter(m.get("text").strip().lower() for m in examples)
    assert [t for t, n in texts.items() if n > 1] == []


def test_no_example_is_copied_from_the_contract_doc() -> None:
    doc = require(SHARED / "docs" / "intents.md", "the NLU contract").read_text()
    examples: set[str] = set()
    for row in re.findall(r"^\| \w+ \|[^|]*\|(.*)\|\s*$", doc, flags=re.MULTILINE):
        for part in re.split(r",", row):
            cleaned = part.strip().strip('"').strip().lower()
            if cleaned and "…" not in cleaned:
                examples.add(cleaned)
    ours = {m.get("text").strip().lower() for m in training_data().intent_examples}
    assert examples, "could not read the examples column"
    assert sorted(examples & ours) == []


def _entities(name: str) -> list[str]:
    return [
        str(e["value"])
        for m in training_data().training_examples
        for e in m.get("entities") or []
        if e["entity"] == name
    ]


def test_annotated_niks_are_structurally_valid() -> None:
    values = _entities("nik")
    assert values
    assert [v for v in values if not validate_nik(v).valid] == []


def test_annotated_kk_numbers_are_valid() -> None:
    values = _entities("kk_number")
    assert values
    assert [v for v in values if not validate_kk(v).valid] == []


def test_annotated_emails_are_valid() -> None:
    values = _entities("email")
    assert values
    assert [v for v in values if not validate_email(v).valid] == []


def test_annotated_phones_normalise_to_e164() -> None:
    values = _entities("phone")
    assert values
    assert [v for v in values if normalize_phone(v) is None] == []


def test_annotated_dates_and_ages_parse() -> None:
    assert [v for v in _entities("birth_date") if parse_date(v) is None] == []
    assert [v for v in _entities("age") if parse_age(v) is None] == []
