"""Notifications to people outside the chat: e-mail with one-time codes."""

from bot.notify.email import (
    EmailDeliveryError,
    EmailSender,
    FolderEmailSender,
    SmtpEmailSender,
    make_email_sender,
)

__all__ = [
    "EmailDeliveryError",
    "EmailSender",
    "FolderEmailSender",
    "SmtpEmailSender",
    "make_email_sender",
]
