"""Personal data: one detector of it in free text built on the parsers' own
rules (`detect`), the token vault that keeps it out of Rasa (`vault`), the scrub
of Rasa's tracker store (`tracker_scrub`), and data-subject rights and retention:
what is held about a person, erasing it, and removing what is older than the
retention period (`RETENTION_DAYS`)."""
