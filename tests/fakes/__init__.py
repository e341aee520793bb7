"""Local fakes of external services (Rasa, Telegram Bot API, Twilio) for tests."""
