"""Inside Rasa: a message's count-vector features, each word counted once.

Rasa's `CountVectorsFeaturizer` makes two sparse matrices per message and
featurizer: one row per token (each token a document for scikit-learn's
`CountVectorizer.transform`) and one row for the tokens joined by spaces.
`transform` checks its input, runs the analyzer over every document, builds
a CSR matrix, sorts it, and Rasa turns it into COO: about 0.2 ms a message for
the word featurizer and 0.25 ms for the character n-grams (`char_wb`, 2-5),
9 % of Rasa's CPU in the whole path.

`create_features` makes the same matrices from the vectorizer's own analyzer
and vocabulary: a token's counts (column and count, by column) are computed
once and kept (`TOKENS_KEPT` per vectorizer: people write the same words), a
token row is its counts, and the COO matrix is built straight from them, with
scikit-learn's and scipy's dtypes. For `char_wb` the joined row is the sum of
the token rows (it takes n-grams inside each whitespace-separated word, and
joining with a space adds no word and splits none); for other analyzers the
joined text is analyzed as scikit-learn does. `binary` vectorizers count 1.
The kept counts go with the vocabulary they were counted with: a vocabulary
fitted again or grown (Rasa's training) gets new ones.
`tests/unit/test_rasa_count_vectors.py` compares the matrices (shape, dtype,
rows, columns, values) with Rasa's for the training data and random text.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from sklearn.feature_extraction.text import CountVectorizer

RASA_CREATE_FEATURES = CountVectorsFeaturizer._create_features
"""Rasa's own, for comparison."""
TOKENS_KEPT = 10_000
"""Tokens whose counts are kept per vectorizer, least recently used dropped."""

Counts = tuple[tuple[int, ...], tuple[int, ...]]
"""A document's counts: its columns in order, and the count of each."""

Counters = tuple[Callable[[str], Counts], Callable[[str], Counts]]
"""A token's counts (kept) and a joined text's counts (not kept)."""

_counters: weakref.WeakKeyDictionary[
    CountVectorizer, tuple[dict[str, int], int, Counters]
] = weakref.WeakKeyDictionary()
"""Per vectorizer: the vocabulary counted with and its size, and the counters
(made again when Rasa fits or grows the vocabulary, as in training)."""


def _counting(vectorizer: CountVectorizer) -> Callable[[str], Counts]:
    """A document's counts for `vectorizer`, as its `transform` counts them."""
    vectorizer._check_vocabulary()  # as transform: fixes the vocabulary or fails
    analyze = vectorizer.build_analyzer()
    vocabulary = vectorizer.vocabulary_
    binary = vectorizer.binary

    def counts(document: str) -> Counts:
        found: dict[int, int] = {}
        for feature in analyze(document):
            column = vocabulary.get(feature)
            if column is not None:
                found[column] = found.get(column, 0) + 1
        columns = tuple(sorted(found))
        return columns, tuple(1 if binary else found[c] for c in columns)

    return counts


def _counters_of(vectorizer: CountVectorizer) -> Counters:
    """The vectorizer's counters for its vocabulary as it is now."""
    kept = _counters.get(vectorizer)
    vocabulary = getattr(vectorizer, "vocabulary_", None)
    if kept is not None and kept[0] is vocabulary and kept[1] == len(vocabulary or ()):
        return kept[2]
    counts = _counting(vectorizer)
    counters = (lru_cache(maxsize=TOKENS_KEPT)(counts), counts)
    _counters[vectorizer] = (
        vectorizer.vocabulary_,
        len(vectorizer.vocabulary_),
        counters,
    )
    return counters


def _matrix(rows: list[Counts], width: int, dtype: Any) -> scipy.sparse.coo_matrix:
    """The COO matrix with these rows' counts, as Rasa makes it from CSR."""
    row_of = [index for index, (columns, _) in enumerate(rows) for _ in columns]
    columns = [column for columns, _ in rows for column in columns]
    values = [value for _, counts in rows for value in counts]
    return scipy.sparse.coo_matrix(
        (
            np.array(values, dtype=dtype),
            (np.array(row_of, dtype=np.int32), np.array(columns, dtype=np.int32)),
        ),
        shape=(len(rows), width),
    )


def _summed(rows: list[Counts]) -> Counts:
    """The counts of the rows together."""
    total: dict[int, int] = {}
    for columns, counts in rows:
        for column, count in zip(columns, counts, strict=True):
            total[column] = total.get(column, 0) + count
    columns = tuple(sorted(total))
    return columns, tuple(total[c] for c in columns)


def create_features(
    self: CountVectorsFeaturizer, attribute: str, all_tokens: list[list[str]]
) -> tuple[list[Any], list[Any]]:
    """`CountVectorsFeaturizer._create_features`, each token counted once."""
    vectorizer = self.vectorizers.get(attribute) if self.vectorizers else None
    if not vectorizer:
        return [None], [None]
    sequence_features: list[Any] = []
    sentence_features: list[Any] = []
    for tokens in all_tokens:
        if not tokens:  # before the vocabulary: it may not be fitted (Rasa's order)
            sequence_features.append(None)
            sentence_features.append(None)
            continue
        token_counts, text_counts = _counters_of(vectorizer)
        width = len(vectorizer.vocabulary_)
        binary = vectorizer.binary
        rows = [token_counts(token) for token in tokens]
        sequence_features.append(_matrix(rows, width, vectorizer.dtype))
        if attribute not in DENSE_FEATURIZABLE_ATTRIBUTES:
            sentence_features.append(None)
            continue
        if vectorizer.analyzer == "char_wb" and not binary:
            joined = _summed(rows)
        else:
            joined = text_counts(" ".join(tokens))
        sentence_features.append(_matrix([joined], width, vectorizer.dtype))
    return sequence_features, sentence_features


def install() -> None:
    """Count each token once in Rasa's count-vector features (idempotent)."""
    CountVectorsFeaturizer._create_features = create_features
