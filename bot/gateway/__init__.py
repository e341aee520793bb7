"""The gateway: store inbound messages, hand them to Rasa in order, send replies."""
