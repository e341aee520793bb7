"""The held-out NLU set stays honest: complete, and never in the training data.

bench/nlu_heldout/messages.yml is what `make bench-nlu` measures the model on.
A message copied, or nearly copied, from data/nlu would measure memory instead
of understanding; a message that reaches data/ would be trained on.
"""

import re
from functools import lru_cache

import yaml

from bench.heldout import HELDOUT, load_heldout
from tests.conftest import ROOT
from tests.nlu.test_training_data import training_data

MIN_MESSAGES = 220
MIN_PER_INTENT = 3
MIN_CHATTER = 40


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            )
        previous = current
    return previous[-1]


def trigrams(text: str) -> set[str]:
    """Character trigrams of `text` (padded), for a cheap similarity bound."""
    padded = f"  {text} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def too_close(a: str, b: str) -> bool:
    """Within a small edit distance: 2 edits, or a quarter of the longer."""
    bound = max(2, max(len(a), len(b)) // 4)
    if abs(len(a) - len(b)) > bound:
        return False
    # One edit changes at most three trigrams: skip pairs sharing too few.
    ta, tb = trigrams(a), trigrams(b)
    if len(ta ^ tb) > 6 * bound:
        return False
    return edit_distance(a, b) <= bound


@lru_cache(maxsize=1)
def heldout() -> list[tuple[str, str]]:
    return load_heldout(ROOT / HELDOUT)


def test_the_file_says_it_must_never_be_trained_or_tuned_on() -> None:
    head = (ROOT / HELDOUT).read_text(encoding="utf-8")[:400]
    assert "NEVER use it for training or tuning" in head


def test_every_intent_is_represented_and_chatter_is_plenty() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for _, intent in heldout():
        counts[intent] = counts.get(intent, 0) + 1
    assert len(heldout()) >= MIN_MESSAGES
    assert set(counts) == set(domain["intents"])
    assert {i: n for i, n in counts.items() if n < MIN_PER_INTENT} == {}
    assert counts["out_of_scope"] >= MIN_CHATTER


def test_no_message_is_listed_twice() -> None:
    texts = [normalise(t) for t, _ in heldout()]
    assert sorted({t for t in texts if texts.count(t) > 1}) == []


def test_no_message_is_a_near_copy_of_a_training_example() -> None:
    examples = {normalise(m.get("text")) for m in training_data().intent_examples}
    close = [
        (text, example)
        for text, _ in heldout()
        for example in examples
        if too_close(normalise(text), example)
    ]
    assert close == []


def test_no_file_under_data_contains_a_heldout_message() -> None:
    corpus = "\n".join(
        normalise(path.read_text(encoding="utf-8", errors="replace"))
        for path in sorted((ROOT / "data").rglob("*"))
        if path.is_file()
    )
    leaked = [text for text, _ in heldout() if normalise(text) in corpus]
    assert leaked == []


def test_the_near_copy_check_catches_edits_and_spares_rewrites() -> None:
    assert too_close(normalise("otp ga masuk2"), normalise("OTP gak masuk2!"))
    assert too_close(normalise("Lupa PW akun prakerja!"), "lupa pw akun prakerja")
    assert not too_close(
        normalise("udh nunggu kode dari subuh ga dateng"), "otp ga masuk2"
    )
