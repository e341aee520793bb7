"""Channels: parse inbound provider payloads, render and send outbound replies."""
