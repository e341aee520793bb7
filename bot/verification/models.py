"""The local synthetic population (a stand-in for Dukcapil) as a table.

`population_person` is seeded in development from
`bot.verification.population.POPULATION` (`python -m bot.seed`, run by `make
run`); production checks NIKs at NIK_VERIFIER_URL and leaves it empty. Every NIK
and KK number in it is made up. It is still treated as personal data: never log
a NIK, KK number or name in clear.
"""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Date, Float, Integer, String

from bot.db import Base
from bot.registry.models import NIK_LENGTH


class PopulationPerson(Base):
    """One resident as the local population registry knows them."""

    __tablename__ = "population_person"
    __table_args__ = (
        CheckConstraint(f"length(nik) = {NIK_LENGTH}", name="ck_population_person_nik"),
        CheckConstraint(
            f"length(kk_number) = {NIK_LENGTH}", name="ck_population_person_kk_number"
        ),
        CheckConstraint("length(full_name) > 0", name="ck_population_person_full_name"),
        CheckConstraint(
            "check_delay_seconds >= 0", name="ck_population_person_check_delay"
        ),
        CheckConstraint(
            "family_registered_elsewhere >= 0",
            name="ck_population_person_family_elsewhere",
        ),
    )

    nik = Column(String(NIK_LENGTH), primary_key=True)
    kk_number = Column(String(NIK_LENGTH), nullable=False)
    full_name = Column(String(128), nullable=False)
    birth_date = Column(Date, nullable=False)
    student = Column(Boolean, nullable=False, default=False)
    civil_servant = Column(Boolean, nullable=False, default=False)
    participant = Column(Boolean, nullable=False, default=False)
    # Seconds the check takes (0: instant); lets a demo show the pending state.
    check_delay_seconds = Column(Float, nullable=False, default=0.0)
    # Other members of the same KK registered outside this deployment.
    family_registered_elsewhere = Column(Integer, nullable=False, default=0)
