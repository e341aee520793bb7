"""Tests of bot.notify (e-mail delivery)."""
