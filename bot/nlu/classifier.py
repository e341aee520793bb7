"""An intent classifier whose confidence does not grow with a message's length.

Rasa's LogisticRegressionClassifier feeds raw counts to scikit-learn: a long
message (a story, a complaint with the question at the end) has large feature
values and so gets extreme probabilities, right or wrong, which the fallback
threshold cannot catch. This component weighs the same sparse sentence features
the way text retrieval does (sublinear term frequency, inverse document
frequency, unit length) before a multinomial logistic regression with a
configurable regularisation `C`. It stores only numbers (numpy `.npz`, no
pickle) and predicts with numpy alone: the weighted values times the weight rows
of the message's features, then a softmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

FILE = "weights.npz"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class WeightedLogisticRegression(GraphComponent, IntentClassifier):
    """Multinomial logistic regression over tf-idf-weighted, unit-length features."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Defaults: the choices measured in docs/benchmarks.md (bench-nlu)."""
        return {
            "C": 30.0,
            "max_iter": 1000,
            "class_weight": "balanced",
            "sublinear_tf": True,
            "use_idf": True,
            "random_state": 42,
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        weights: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Keep the config and, once trained or loaded, the weights."""
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._weights = weights

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> WeightedLogisticRegression:
        """Create an untrained classifier."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> WeightedLogisticRegression:
        """Load the weights written by `train` (none if it had no data)."""
        try:
            with model_storage.read_from(resource) as directory, np.load(
                directory / FILE, allow_pickle=False
            ) as stored:
                weights = {key: stored[key] for key in stored.files}
        except (ValueError, FileNotFoundError):
            weights = None
        return cls(config, model_storage, resource, weights)

    @staticmethod
    def _counts(message: Message) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of the message's sparse sentence features.

        The featurizers' blocks are laid side by side in pipeline order, as
        Rasa's `Message.get_sparse_features` does, without building matrices.
        """
        indices, values, offset = [], [], 0
        for feature in message.features:
            if feature.attribute != TEXT or feature.type != FEATURE_TYPE_SENTENCE:
                continue
            if not feature.is_sparse():
                continue
            block = feature.features.tocoo()
            indices.append(block.col.astype(np.int64) + offset)
            values.append(block.data.astype(np.float64))
            offset += block.shape[1]
        if not indices:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(indices), np.concatenate(values)

    def _weigh(
        self, indices: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear tf, idf and unit length, as learnt at training."""
        weighted = np.log1p(values) if self.config["sublinear_tf"] else values.copy()
        if self._weights is not None and "idf" in self._weights:
            idf = self._weights["idf"]
            known = indices < len(idf)
            indices, weighted = indices[known], weighted[known] * idf[indices[known]]
        norm = float(np.sqrt(weighted @ weighted))
        return indices, weighted / norm if norm else weighted

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on every example that has an intent and a text."""
        from sklearn.linear_model import LogisticRegression

        examples = [e for e in training_data.intent_examples if e.get(TEXT)]
        if not examples:
            return self._resource
        counts = [self._counts(e) for e in examples]
        width = 1 + max((int(i.max()) for i, _ in counts if len(i)), default=0)
        self._weights = {}
        if self.config["use_idf"]:
            df = np.bincount(np.concatenate([i for i, _ in counts]), minlength=width)
            self._weights["idf"] = np.log((1 + len(examples)) / (1 + df)) + 1.0
        rows = [self._weigh(i, v) for i, v in counts]
        matrix = scipy.sparse.csr_matrix(
            (
                np.concatenate([v for _, v in rows]),
                np.concatenate([i for i, _ in rows]),
                np.cumsum([0] + [len(i) for i, _ in rows]),
            ),
            shape=(len(rows), width),
        )
        model = LogisticRegression(
            C=self.config["C"],
            max_iter=self.config["max_iter"],
            class_weight=self.config["class_weight"],
            random_state=self.config["random_state"],
        )
        model.fit(matrix, [e.get(INTENT) for e in examples])
        coef, intercept = model.coef_.T, model.intercept_
        if len(model.classes_) == 2:  # one logit for the second class: softmax form
            coef = np.hstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        self._weights.update(
            classes=np.asarray(model.classes_, dtype=str),
            coef=np.ascontiguousarray(coef),
            intercept=np.asarray(intercept, dtype=np.float64),
        )
        with self._storage.write_to(self._resource) as directory:
            np.savez(directory / FILE, **self._weights)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        """Set the intent and a ranking of the most likely ones."""
        if self._weights is None or not messages:
            return messages
        coef, intercept = self._weights["coef"], self._weights["intercept"]
        rows = []
        for message in messages:
            indices, values = self._weigh(*self._counts(message))
            known = indices < len(coef)
            rows.append(values[known] @ coef[indices[known]] + intercept)
        scores = np.vstack(rows)
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        classes = self._weights["classes"]
        limit = self.config["ranking_length"] or len(classes)
        for message, row in zip(messages, probabilities, strict=True):
            order = np.argsort(-row)[:limit]
            ranking = [
                {"name": str(classes[i]), "confidence": float(row[i])} for i in order
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages
