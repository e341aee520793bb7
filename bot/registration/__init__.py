"""Registration in the conversation, on top of the registry.

`desk` holds the operations a conversation performs (consent, e-mail code,
submitting NIK/KK/birth date, joining a batch, linking a Telegram account), each
in one transaction; `status` turns an applicant's standing into short Indonesian
text with the single next action. The Rasa actions in `actions/registration.py`
are thin wrappers around both.
"""

CODE_OK = "verified"
"""The `reg_email_code` slot once the e-mail is proven."""
