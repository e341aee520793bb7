"""A Rasa component that sets each token's lemma to its standard spelling.

Placed after the tokenizer; CountVectorsFeaturizer reads lemmas (use_lemma), so
"gmn", "gimana" and "bagaimana" share features while the text and entity offsets
stay untouched.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.lexicon import normalize_token


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class SlangNormalizer(GraphComponent):
    """Normalise informal Indonesian spellings into token lemmas."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SlangNormalizer:
        """Create the component (it has no state)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalise the tokens of every training example."""
        for message in training_data.training_examples:
            self._normalize(message)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalise the tokens of incoming messages."""
        for message in messages:
            self._normalize(message)
        return messages

    @staticmethod
    def _normalize(message: Message) -> None:
        for token in message.get(TOKENS_NAMES[TEXT]) or []:
            token.lemma = normalize_token(token.text)
