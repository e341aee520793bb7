"""Local synthetic population (development stand-in for Dukcapil).

Revision ID: 0200
Revises: 0100
Create Date: 2026-11-27

`population_person` holds made-up residents, one per NIK check outcome; it is
seeded only in development (`python -m bot.seed`). The SQL below is frozen here
on purpose (not imported from bot.verification.models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0200"
down_revision = "0100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the population table."""
    op.create_table(
        "population_person",
        sa.Column("nik", sa.String(length=16), nullable=False),
        sa.Column("kk_number", sa.String(length=16), nullable=False),
        sa.Column("full_name", sa.String(length=128), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("student", sa.Boolean(), nullable=False),
        sa.Column("civil_servant", sa.Boolean(), nullable=False),
        sa.Column("participant", sa.Boolean(), nullable=False),
        sa.Column("check_delay_seconds", sa.Float(), nullable=False),
        sa.Column("family_registered_elsewhere", sa.Integer(), nullable=False),
        sa.CheckConstraint("length(nik) = 16", name="ck_population_person_nik"),
        sa.CheckConstraint(
            "length(kk_number) = 16", name="ck_population_person_kk_number"
        ),
        sa.CheckConstraint(
            "length(full_name) > 0", name="ck_population_person_full_name"
        ),
        sa.CheckConstraint(
            "check_delay_seconds >= 0", name="ck_population_person_check_delay"
        ),
        sa.CheckConstraint(
            "family_registered_elsewhere >= 0",
            name="ck_population_person_family_elsewhere",
        ),
        sa.PrimaryKeyConstraint("nik"),
    )


def downgrade() -> None:
    """Drop the population table."""
    op.drop_table("population_person")
