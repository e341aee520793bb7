"""Kartu Prakerja assistant: logic shared by the Rasa actions and channels."""
