"""A message's count-vector features made with each token counted once
(`bot.rasa_count_vectors`) are Rasa's: the same matrices, entry for entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot import rasa_count_vectors as counted
from tests.conftest import ROOT

CONFIGS: dict[
    str, dict[str, Any]
] = {  # ours (config.yml), and the other analyzers Rasa offers
    "word": {"analyzer": "word"},
    "char_wb": {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 5},
    "char": {"analyzer": "char", "min_ngram": 1, "max_ngram": 3},
    "word pairs": {"analyzer": "word", "min_ngram": 1, "max_ngram": 2},
}
TOKENIZER = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


def _texts() -> list[str]:
    data = load_data(str(ROOT / "data" / "nlu"))
    return sorted({example.get("text") for example in data.intent_examples})


TEXTS = _texts()


@pytest.fixture(scope="module")
def featurizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each config's featurizer, trained on our NLU examples."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("cvf"))
    context = ExecutionContext(GraphSchema({}), "test")
    data = load_data(str(ROOT / "data" / "nlu"))
    TOKENIZER.process_training_data(data)
    made = {}
    for name, config in CONFIGS.items():
        featurizer = CountVectorsFeaturizer.create(
            {**CountVectorsFeaturizer.get_default_config(), **config},
            storage,
            Resource(f"cvf_{name.replace(' ', '_')}"),
            context,
        )
        featurizer.train(data)
        made[name] = featurizer
    return made


def _tokens(featurizer: CountVectorsFeaturizer, text: str) -> list[str]:
    message = Message(data={"text": text})
    TOKENIZER.process([message])
    return featurizer._get_processed_message_tokens_by_attribute(message, "text")


def _assert_as_rasa(featurizer: CountVectorsFeaturizer, tokens: list[str]) -> None:
    theirs = counted.RASA_CREATE_FEATURES(featurizer, "text", [tokens])
    ours = counted.create_features(featurizer, "text", [tokens])
    for mine, rasas in zip([*ours[0], *ours[1]], [*theirs[0], *theirs[1]], strict=True):
        if rasas is None:
            assert mine is None
            continue
        assert mine.format == rasas.format == "coo"
        assert (mine.shape, mine.dtype) == (rasas.shape, rasas.dtype)
        assert (mine.row.dtype, mine.col.dtype) == (rasas.row.dtype, rasas.col.dtype)
        assert mine.row.tolist() == rasas.row.tolist()
        assert mine.col.tolist() == rasas.col.tolist()
        assert mine.data.tolist() == rasas.data.tolist()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_features_of_every_training_example_are_rasas(
    featurizers: dict[str, Any], name: str
) -> None:
    featurizer = featurizers[name]
    for text in TEXTS:
        _assert_as_rasa(featurizer, _tokens(featurizer, text))
        _assert_as_rasa(featurizer, _tokens(featurizer, text))  # counts kept


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    words=st.lists(
        st.one_of(
            st.sampled_from([w for t in TEXTS[:300] for w in t.split()]),
            st.text(min_size=1, max_size=12),
        ),
        max_size=12,
    ),
    name=st.sampled_from(list(CONFIGS)),
)
def test_features_of_random_text_are_rasas(
    featurizers: dict[str, Any], words: list[str], name: str
) -> None:
    featurizer = featurizers[name]
    _assert_as_rasa(featurizer, _tokens(featurizer, " ".join(words)))


def test_no_tokens_no_features(featurizers: dict[str, Any]) -> None:
    for featurizer in featurizers.values():
        for attribute in featurizer._attributes:  # some have no vocabulary
            assert counted.create_features(featurizer, attribute, [[]]) == (
                [None],
                [None],
            )


def _features(message: Message) -> list[tuple[Any, ...]]:
    return [
        (f.type, f.attribute, f.origin, f.features.shape, f.features.dtype,
         f.features.row.tolist(), f.features.col.tolist(), f.features.data.tolist())
        for f in message.features
    ]  # fmt: skip


def test_a_message_gets_rasas_features_for_every_attribute(
    featurizers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `process`, as a message is parsed: every attribute of the
    featurizer, fitted or not, given text or not."""
    for featurizer in featurizers.values():
        for text in TEXTS[:100]:
            rasas, ours = Message(data={"text": text}), Message(data={"text": text})
            TOKENIZER.process([rasas, ours])
            featurizer.process([rasas])
            with monkeypatch.context() as patch:
                patch.setattr(
                    CountVectorsFeaturizer, "_create_features", counted.create_features
                )
                featurizer.process([ours])
            assert _features(ours) == _features(rasas)


def test_a_token_is_counted_once(featurizers: dict[str, Any], tmp_path: Path) -> None:
    featurizer = featurizers["char_wb"]
    token_counts, _ = counted._counters_of(featurizer.vectorizers["text"])
    token_counts.cache_clear()  # type: ignore[attr-defined]
    counted.create_features(featurizer, "text", [["daftar", "prakerja", "daftar"]])
    info = token_counts.cache_info()  # type: ignore[attr-defined]
    assert (info.misses, info.hits) == (2, 1)


def test_a_vocabulary_fitted_again_is_counted_with_the_new_one(
    tmp_path: Path,
) -> None:
    """As in training, where Rasa fits or grows a vectorizer's vocabulary."""
    featurizer = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "analyzer": "word"},
        LocalModelStorage(tmp_path),
        Resource("refit"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    data = load_data(str(ROOT / "data" / "nlu"))
    TOKENIZER.process_training_data(data)
    featurizer.train(data)
    tokens = _tokens(featurizer, "mau daftar prakerja")
    _assert_as_rasa(featurizer, tokens)
    featurizer.vectorizers["text"].fit(["prakerja zzz", "daftar yyy"])
    _assert_as_rasa(featurizer, tokens)
