"""The held-out NLU set stays honest: complete, and never in the training data.

bench/nlu_heldout/messages.yml is what `make bench-nlu` measures the model on.
A message copied, or nearly copied, from data/nlu would measure memory instead
of understanding; a message that reaches data/ would be trained on.
"""

import re
from functools import cache, lru_cache

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.heldout import HELDOUT, load_heldout
from tests.conftest import ROOT
from tests.nlu.test_training_data import training_data

MIN_MESSAGES = 220
MIN_PER_INTENT = 3
MIN_CHATTER = 40


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, single spaces."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


_EMAIL = re.compile(r"\S+@\S+")
_NUMBER = re.compile(r"\d[\d .-]{2,}\d")
EMAIL_WORD, NUMBER_WORD = "xxalamatemailxx", "xxangkaxx"
SENTENCE_WORDS = 4
"""Words besides its values from which a message is a sentence, not a short
answer ("no kk <number>"): short answers around a value are few, and both sets
hold them by nature."""


def masked(text: str) -> str:
    """`normalise`d with each e-mail address and number of four digits or more
    as one word: a copy that differs only in its NIK, code or address is a
    copy."""
    return normalise(
        _NUMBER.sub(f" {NUMBER_WORD} ", _EMAIL.sub(f" {EMAIL_WORD} ", text))
    )


def is_sentence(masked_text: str) -> bool:
    """At least `SENTENCE_WORDS` words besides the masked values."""
    words = masked_text.split()
    return sum(w not in (EMAIL_WORD, NUMBER_WORD) for w in words) >= SENTENCE_WORDS


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


def within_edits(a: str, b: str, bound: int) -> bool:
    """Whether `edit_distance(a, b) <= bound`, computing only the cells within
    `bound` of the table's diagonal and stopping once a whole row exceeds it
    (the near-copy checks compare about 700,000 pairs)."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > bound:
        return False
    over = bound + 1
    previous = [min(j, over) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        low, high = max(1, i - bound), min(len(b), i + bound)
        current = [over] * (len(b) + 1)
        current[0] = min(i, over)
        for j in range(low, high + 1):
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (ca != b[j - 1]),
                over,
            )
        if min(current[low - 1 : high + 1]) > bound:
            return False
        previous = current
    return previous[len(b)] <= bound


@cache
def trigrams(text: str) -> frozenset[str]:
    """Character trigrams of `text` (padded), for a cheap similarity bound;
    each text's once (the near-copy checks compare every pair)."""
    padded = f"  {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def too_close(a: str, b: str) -> bool:
    """Within a small edit distance: 2 edits, or a quarter of the longer."""
    bound = max(2, max(len(a), len(b)) // 4)
    if abs(len(a) - len(b)) > bound:
        return False
    # One edit changes at most three trigrams: skip pairs sharing too few.
    ta, tb = trigrams(a), trigrams(b)
    if len(ta ^ tb) > 6 * bound:
        return False
    return within_edits(a, b, bound)


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
    texts = [normalise(text) for text, _ in heldout()]
    close = [
        (text, example)
        for text in texts
        for example in examples
        if too_close(text, example)
    ]
    assert close == []


def test_no_message_is_a_near_copy_of_a_training_example_but_for_its_values() -> None:
    """The sentences with a value, compared with their values masked (short
    answers around a value are left out: `SENTENCE_WORDS`); only the training
    examples are shown, so that a failure does not show the held-out set to
    whoever mends the training data."""
    examples = {masked(m.get("text")) for m in training_data().intent_examples}
    texts = [masked(text) for text, _ in heldout()]
    texts = [
        text
        for text in texts
        if is_sentence(text) and {EMAIL_WORD, NUMBER_WORD} & set(text.split())
    ]
    assert texts  # the check has something to compare
    close = sorted(
        {example for text in texts for example in examples if too_close(text, example)}
    )
    assert close == [], "training examples too close to held-out messages"


def test_masking_makes_a_copy_with_other_values_a_copy() -> None:
    assert masked("nik sy 3174011508900001 gk kebaca") == masked(
        "NIK sy 3201-0115-0890-0002 gk kebaca"
    )
    assert masked("kode ga masuk ke budi@gmail.com") == masked(
        "kode ga masuk ke siti.r@yahoo.co.id"
    )
    assert masked("umur saya 27") != masked("umur saya 1990")
    assert is_sentence(masked("nik sy 3174011508900001 gk kebaca"))
    assert not is_sentence(masked("no kk 3174011508900001"))


def test_no_file_under_data_contains_a_heldout_message() -> None:
    corpus = "\n".join(
        normalise(path.read_text(encoding="utf-8", errors="replace"))
        for path in sorted((ROOT / "data").rglob("*"))
        if path.is_file()
    )
    leaked = [text for text, _ in heldout() if normalise(text) in corpus]
    assert leaked == []


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="abc ", max_size=12),
    st.text(alphabet="abc ", max_size=12),
    st.integers(min_value=0, max_value=6),
)
def test_the_banded_check_agrees_with_the_whole_edit_distance(
    a: str, b: str, bound: int
) -> None:
    assert within_edits(a, b, bound) == (edit_distance(a, b) <= bound)


def test_the_near_copy_check_catches_edits_and_spares_rewrites() -> None:
    assert too_close(normalise("otp ga masuk2"), normalise("OTP gak masuk2!"))
    assert too_close(normalise("Lupa PW akun prakerja!"), "lupa pw akun prakerja")
    assert not too_close(
        normalise("udh nunggu kode dari subuh ga dateng"), "otp ga masuk2"
    )
