"""Responses the actions name exist in the domain and are SMS-safe."""

from __future__ import annotations

import pytest

RESPONSES_USED_BY_ACTIONS = ["utter_please_rephrase", "utter_form_cancelled"]


@pytest.mark.parametrize("name", RESPONSES_USED_BY_ACTIONS)
def test_responses_named_by_actions_exist(name, domain) -> None:
    assert domain["responses"][name], f"{name} has no variant"


def test_every_domain_response_is_gsm7_plain_text(domain, sms_safe) -> None:
    for variants in domain["responses"].values():
        for variant in variants:
            sms_safe(variant["text"])
            for button in variant.get("buttons", []):
                sms_safe(button["title"])
