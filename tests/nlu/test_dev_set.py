"""The NLU development set stays useful: complete, and never in the training data.

bench/nlu_dev/messages.yml is what `make bench-nlu-dev` measures (the set to
tune on, misses shown). A message that reaches data/ would be measured from
memory; one shared with the held-out set would leak the held-out set into tuning.
"""

from functools import lru_cache

import yaml

from bench.heldout import DEV, HELDOUT, load_heldout
from tests.conftest import ROOT
from tests.nlu.test_heldout_set import normalise, too_close
from tests.nlu.test_training_data import training_data

MIN_MESSAGES = 200
MIN_PER_INTENT = 4
MIN_CHATTER = 40


@lru_cache(maxsize=1)
def dev() -> list[tuple[str, str]]:
    return load_heldout(ROOT / DEV)


def test_every_intent_is_represented_and_chatter_is_plenty() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for _, intent in dev():
        counts[intent] = counts.get(intent, 0) + 1
    assert len(dev()) >= MIN_MESSAGES
    assert set(counts) == set(domain["intents"])
    assert {i: n for i, n in counts.items() if n < MIN_PER_INTENT} == {}
    assert counts["out_of_scope"] >= MIN_CHATTER


def test_no_message_is_listed_twice() -> None:
    texts = [normalise(t) for t, _ in dev()]
    assert sorted({t for t in texts if texts.count(t) > 1}) == []


def test_no_message_is_a_near_copy_of_a_training_example() -> None:
    examples = {normalise(m.get("text")) for m in training_data().intent_examples}
    texts = [normalise(text) for text, _ in dev()]
    close = [
        (text, example)
        for text in texts
        for example in examples
        if too_close(text, example)
    ]
    assert close == []


def test_dev_and_heldout_share_no_message() -> None:
    """Counted only: the held-out messages are never printed."""
    heldout = [normalise(t) for t, _ in load_heldout(ROOT / HELDOUT)]
    texts = [normalise(text) for text, _ in dev()]
    shared = sum(too_close(text, other) for text in texts for other in heldout)
    assert shared == 0
