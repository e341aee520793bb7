"""Tests of the gateway: inbox, workers, outbox, webhooks and simulator."""
