"""Rasa custom actions and form validators. Business logic lives in `bot/`."""
