"""The policy's data files: parsed once, the same with libyaml, all read at warm-up."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.policy import answers, catalogue, programme, texts, warm, yaml_file
from bot.policy.answers import FAQ_INTENTS, render_answer
from bot.policy.catalogue import say

POLICY_DIR = Path(programme.__file__).parent
DATA_FILES = ("programme.yml", "answers.yml", "messages.yml")
MODULES = (answers, catalogue, programme, texts, yaml_file)


def _kept_reads() -> dict[str, functools._lru_cache_wrapper[object]]:
    """Every function of the policy package whose results are kept."""
    found = {}
    for module in MODULES:
        for name, value in vars(module).items():
            if hasattr(value, "cache_info") and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


@pytest.fixture
def nothing_read_yet() -> Iterator[dict[str, functools._lru_cache_wrapper[object]]]:
    kept = _kept_reads()
    for function in kept.values():
        function.cache_clear()
    yield kept
    for function in kept.values():
        function.cache_clear()


@pytest.mark.parametrize("name", DATA_FILES)
def test_libyaml_builds_the_same_data_as_python(name: str) -> None:
    text = (POLICY_DIR / name).read_text(encoding="utf-8")
    assert yaml_file.SafeLoader is yaml.CSafeLoader  # the pinned wheel has libyaml
    assert yaml.load(text, Loader=yaml_file.SafeLoader) == yaml.load(  # noqa: S506
        text, Loader=yaml.SafeLoader
    )


def test_a_file_is_parsed_once_whatever_the_callers_ask(
    nothing_read_yet: dict[str, functools._lru_cache_wrapper[object]],
) -> None:
    texts.load_texts()
    texts.load_texts(texts.TEXTS_PATH)
    assert yaml_file.read_yaml.cache_info().misses == 1
    catalogue.catalogue()  # answers.yml again, and messages.yml
    assert yaml_file.read_yaml.cache_info().misses == 2


def test_after_warm_up_answers_read_and_compile_nothing(
    nothing_read_yet: dict[str, functools._lru_cache_wrapper[object]],
) -> None:
    assert "bot.policy.answers._topics" in nothing_read_yet
    warm.warm_up()
    misses = {name: f.cache_info().misses for name, f in nothing_read_yet.items()}
    policy = programme.load_policy()
    for intent in sorted(FAQ_INTENTS):
        assert render_answer(intent, policy, "cara daftar gimana")
    assert answers.asks_for_contact("nomor call center berapa")
    assert say("verification.reasons.unknown_nik")
    assert {
        name: f.cache_info().misses for name, f in nothing_read_yet.items()
    } == misses
