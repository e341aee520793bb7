"""Data-subject rights and retention: what is held about a person, erasing it,
and removing what is older than the retention period (`RETENTION_DAYS`)."""
