"""Exactly-once side effects: the ledger of what a turn already did."""

from bot.effects.ledger import EffectTakenError, once, recorded, replay

__all__ = ["EffectTakenError", "once", "recorded", "replay"]
