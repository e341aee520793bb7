"""bot.nlu.classifier: weighted features, a confidence that length cannot inflate.

Trained here on made-up sparse features (no featurizer, no model file), so each
property is checked on its own: it learns, it survives a save and load, a
message repeated five times gets the same ranking as once, unknown feature
columns are ignored, and a message without features is left alone.
"""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.classifier import WeightedLogisticRegression

WIDTH = 6
# Feature columns 0-1 speak for "greet", 2-3 for "stop", 4 for both.
EXAMPLES = [
    ("greet", {0: 1, 4: 1}), ("greet", {1: 2}), ("greet", {0: 1, 1: 1}),
    ("stop", {2: 1, 4: 1}), ("stop", {3: 2}), ("stop", {2: 1, 3: 1}),
]


def message(counts: dict[int, float], intent: str | None = None, width: int = WIDTH):
    """A message whose only sparse sentence features are `counts`."""
    row = scipy.sparse.coo_matrix(
        (list(counts.values()), ([0] * len(counts), list(counts))), shape=(1, width)
    )
    data = {"text": "x", **({"intent": intent} if intent else {})}
    msg = Message(data=data)
    msg.add_features(Features(row, "sentence", "text", "counts"))
    return msg


@pytest.fixture()
def trained(tmp_path: Path) -> tuple[LocalModelStorage, Resource]:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("classifier")
    component = WeightedLogisticRegression({}, storage, resource)
    data = TrainingData(training_examples=[message(c, i) for i, c in EXAMPLES])
    component.train(data)
    return storage, resource


def load(trained: tuple[LocalModelStorage, Resource]) -> WeightedLogisticRegression:
    storage, resource = trained
    return WeightedLogisticRegression.load({}, storage, resource, None)  # type: ignore[arg-type]


def ranking(component: WeightedLogisticRegression, msg: Message) -> list[dict]:
    component.process([msg])
    return msg.get("intent_ranking")


def test_it_learns_and_survives_save_and_load(trained) -> None:
    component = load(trained)
    assert ranking(component, message({0: 1}))[0]["name"] == "greet"
    assert ranking(component, message({3: 1}))[0]["name"] == "stop"
    confidences = [r["confidence"] for r in ranking(component, message({1: 1}))]
    assert sum(confidences) == pytest.approx(1.0)


def test_repeating_a_message_does_not_make_it_more_confident(trained) -> None:
    component = load(trained)
    once = ranking(component, message({0: 1, 2: 1}))
    five_times = ranking(component, message({0: 5, 2: 5}))
    assert [r["name"] for r in once] == [r["name"] for r in five_times]
    assert np.allclose(
        [r["confidence"] for r in once], [r["confidence"] for r in five_times]
    )


def test_columns_unseen_in_training_are_ignored(trained) -> None:
    component = load(trained)
    plain = ranking(component, message({0: 1}))
    wider = ranking(component, message({0: 1, WIDTH + 3: 4}, width=WIDTH + 5))
    assert plain == wider


def test_a_message_without_features_gets_no_intent(trained) -> None:
    component = load(trained)
    empty = Message(data={"text": "x"})
    component.process([empty])
    ranked = empty.get("intent_ranking")
    # No evidence at all: the priors alone, so the fallback threshold decides.
    assert ranked is None or ranked[0]["confidence"] < 0.9


def test_an_untrained_component_leaves_messages_alone(tmp_path: Path) -> None:
    component = WeightedLogisticRegression(
        {}, LocalModelStorage(tmp_path), Resource("nothing")
    )
    msg = message({0: 1})
    component.process([msg])
    assert msg.get("intent") is None
