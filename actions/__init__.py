"""Rasa custom actions and form validators. Business logic lives in `bot/`.

The action server imports this package as it starts, so the texts are read
here, before it answers, not during the first person's turn.
"""

from bot.policy.warm import warm_up

warm_up()
