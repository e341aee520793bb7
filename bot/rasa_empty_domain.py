"""Inside Rasa: the empty domain, built once to compare against.

Rasa's processor checks on every message that its domain is not empty before
it looks for unseen intents and entities (`_check_for_unseen_features`), and
`Domain.is_empty` answers by building a whole new empty domain
(`Domain.from_dict({})`, with every default action, slot and response) and
comparing the two as dicts: about 0.08 ms a message, more under load. The
empty domain is always the same, so `install` builds its dict once and
compares with that.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rasa.shared.core.domain import Domain

_RASA_IS_EMPTY = Domain.is_empty


@lru_cache(maxsize=1)
def empty_domain_as_dict() -> dict[str, Any]:
    """What an empty domain looks like as a dict (never changed by callers)."""
    return Domain.empty().as_dict()


def is_empty(self: Domain) -> bool:
    """`Domain.is_empty`, against an empty domain built once."""
    return bool(self.as_dict() == empty_domain_as_dict())


def install() -> None:
    """Compare domains with one empty domain built once (idempotent)."""
    Domain.is_empty = is_empty
