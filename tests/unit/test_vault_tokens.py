"""Tokens of the vault: shaped like the values, accepted by no validator, and
read by the NLU's own regex for birth dates."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.policy.validation import (
    normalize_phone,
    parse_date,
    validate_email,
    validate_kk,
    validate_nik,
)
from bot.privacy.detect import DATE, EMAIL, KK, NIK, NUMBER, PHONE
from bot.privacy.vault import TOKEN_PATTERN, new_token
from tests.conftest import ROOT


@pytest.mark.parametrize("kind", [NIK, KK, PHONE, NUMBER, DATE, EMAIL])
def test_no_validator_accepts_a_token(kind: str) -> None:
    for _ in range(2000):
        token = new_token(kind)
        assert TOKEN_PATTERN.fullmatch(token), token
        assert not validate_nik(token).valid and not validate_kk(token).valid
        assert normalize_phone(token) is None and parse_date(token) is None
        assert not validate_email(token).valid


def test_the_nlu_reads_date_tokens_as_birth_dates() -> None:
    data = yaml.safe_load((ROOT / "data" / "nlu" / "inform.yml").read_text())
    [regex] = [item for item in data["nlu"] if item.get("regex") == "birth_date"]
    pattern = re.compile(regex["examples"].strip().removeprefix("- "))
    for _ in range(500):
        assert pattern.fullmatch(new_token(DATE))
    assert not pattern.search("15-08-1990") and not pattern.search("0000123456789012")
