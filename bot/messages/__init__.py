"""The message store: conversations, inbox, outbox and internal events.

The gateway, the handoff, the console, NIK checks and privacy all read and
write these tables; this package imports none of them (`tests/test_imports.py`).
"""
