"""Everything the texts need, read before a server says it is ready.

The policy, the text catalogue and the answers' keywords are read on first use
and kept (about 0.15 s in all with libyaml). A server calls :func:`warm_up` as
it starts, so the first person it answers does not wait for them, and a broken
data file stops the start instead of a conversation.
"""

from __future__ import annotations

from bot.policy.answers import compile_keywords
from bot.policy.catalogue import catalogue
from bot.policy.programme import load_policy
from bot.policy.texts import policy_values


def warm_up() -> None:
    """Read the active policy and every text, and compile the keywords."""
    policy_values(load_policy())
    catalogue()
    compile_keywords()
