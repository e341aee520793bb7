"""A local stand-in for Dukcapil: a small synthetic population in the database.

Every NIK here is made up but structurally valid (area codes, birth date with
+40 on the day for women, a non-zero serial). :data:`POPULATION` is the seed of
the `population_person` table (:func:`seed_population`, run by `python -m
bot.seed` in development); :class:`LocalPopulationVerifier` checks NIKs against
that table. One person per outcome, so the whole assistant can be tried without
any external service; :data:`TEST_PEOPLE` lists what to type to get each outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.insert_ignoring import insert_ignoring_conflict
from bot.policy.validation import mask_nik, validate_nik
from bot.registry import find_applicant, kk_registered_count
from bot.registry.models import NIK_LENGTH
from bot.verification.models import PopulationPerson
from bot.verification.nik import NikCheckResult, NikRequest, result_for

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
SLOW_CHECK_SECONDS = 12.0  # the slow person: long enough to see "pending" in a demo,
# shorter than the runner's check timeout (NikCheckOptions.timeout)
FULL_FAMILY = 2  # family members registered elsewhere for the kk_full person

people_table = PopulationPerson.__table__


@dataclass(frozen=True)
class Person:
    """One resident as the population registry knows them (a table row)."""

    nik: str
    kk_number: str
    full_name: str
    birth_date: date
    student: bool = False
    civil_servant: bool = False
    participant: bool = False
    check_delay_seconds: float = 0.0
    family_registered_elsewhere: int = 0


@dataclass(frozen=True)
class TestPerson:
    """What to type to get ``outcome`` from :class:`LocalPopulationVerifier`."""

    __test__ = False  # not a pytest test class

    nik: str
    kk_number: str
    full_name: str
    birth_date: date
    outcome: str
    note: str

    def request(self) -> NikRequest:
        """This entry as a :class:`NikRequest`."""
        return NikRequest(self.nik, self.kk_number, self.full_name, self.birth_date)


POPULATION: tuple[Person, ...] = (
    Person("3174011508900001", "3174010101150001", "BUDI SANTOSO", date(1990, 8, 15)),
    Person("3273054302950002", "3273051203180003", "SITI RAHAYU", date(1995, 2, 3)),
    Person("5171022111870003", "5171020505100004", "MADE WIRAWAN", date(1987, 11, 21)),
    Person("3578015206920004", "3578010303110005", "DEWI LESTARI", date(1992, 6, 12)),
    Person(
        "1271050909020005",
        "1271051408100006",
        "RIZKY PRATAMA",
        date(2002, 9, 9),
        student=True,
    ),
    Person(
        "3471031703800006",
        "3471030202050007",
        "AGUS SETIAWAN",
        date(1980, 3, 17),
        civil_servant=True,
    ),
    Person(
        "7371066512930007",
        "7371061010120008",
        "NUR HIDAYAH",
        date(1993, 12, 25),
        participant=True,
    ),
    Person(
        "3374013004910008",
        "3374012001160009",
        "EKO PRASETYO",
        date(1991, 4, 30),
        family_registered_elsewhere=FULL_FAMILY,
    ),
    Person(
        "6471024707970009",
        "6471021505190010",
        "INDAH PERMATASARI",
        date(1997, 7, 7),
        check_delay_seconds=SLOW_CHECK_SECONDS,
    ),
)

TEST_PEOPLE: tuple[TestPerson, ...] = (
    TestPerson(
        "3174011508900001", "3174010101150001", "BUDI SANTOSO", date(1990, 8, 15),
        "verified", "laki-laki, Jakarta Selatan",
    ),
    TestPerson(
        "3273054302950002", "3273051203180003", "SITI RAHAYU", date(1995, 2, 3),
        "verified", "perempuan (tanggal lahir + 40 di NIK), Bandung",
    ),
    TestPerson(
        "5171022111870003", "5171020505100004", "MADE WIRAWAN", date(1987, 11, 21),
        "verified", "laki-laki, Denpasar",
    ),
    TestPerson(
        "1671040101890010", "1671041111110011", "YUSUF MAULANA", date(1989, 1, 1),
        "unknown_nik", "NIK valid strukturnya tetapi tidak ada di data",
    ),
    TestPerson(
        "3578015206920004", "3578010303110005", "DEWI ANGGRAINI", date(1992, 6, 12),
        "data_mismatch", "nama di data Dukcapil: DEWI LESTARI",
    ),
    TestPerson(
        "1271050909020005", "1271051408100006", "RIZKY PRATAMA", date(2002, 9, 9),
        "student", "masih tercatat mahasiswa",
    ),
    TestPerson(
        "3471031703800006", "3471030202050007", "AGUS SETIAWAN", date(1980, 3, 17),
        "civil_servant", "tercatat PNS",
    ),
    TestPerson(
        "7371066512930007", "7371061010120008", "NUR HIDAYAH", date(1993, 12, 25),
        "already_participant", "penerima Kartu Prakerja sebelumnya",
    ),
    TestPerson(
        "3374013004910008", "3374012001160009", "EKO PRASETYO", date(1991, 4, 30),
        "kk_full", "dua anggota KK lain sudah terdaftar",
    ),
    TestPerson(
        "6471024707970009", "6471021505190010", "INDAH PERMATASARI", date(1997, 7, 7),
        "verified", "pengecekan lambat (menunggu), lalu terverifikasi",
    ),
)  # fmt: skip


def _same_name(a: str, b: str) -> bool:
    """Names compared as on a KTP: case and spacing do not matter."""
    return " ".join(a.upper().split()) == " ".join(b.upper().split())


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _person(row: Any) -> Person:
    """A `population_person` row as a :class:`Person`."""
    return Person(
        nik=row.nik,
        kk_number=row.kk_number,
        full_name=row.full_name,
        birth_date=row.birth_date,
        student=bool(row.student),
        civil_servant=bool(row.civil_servant),
        participant=bool(row.participant),
        check_delay_seconds=float(row.check_delay_seconds),
        family_registered_elsewhere=int(row.family_registered_elsewhere),
    )


def seed_population(session: Session, people: Sequence[Person] = POPULATION) -> int:
    """Make `population_person` hold ``people``: insert the missing rows, update
    the changed ones (others are left alone); the number of people ensured.

    Idempotent and safe against a simultaneous seed (`ON CONFLICT DO NOTHING`).
    Development only: production checks NIKs at NIK_VERIFIER_URL. The caller
    commits.
    """
    wanted = {person.nik: asdict(person) for person in people}
    existing = {
        row.nik: asdict(_person(row))
        for row in session.execute(
            select(people_table).where(people_table.c.nik.in_(list(wanted)))
        )
    }
    inserted = updated = 0
    for nik, values in wanted.items():
        current = existing.get(nik)
        if current is None:
            inserted += insert_ignoring_conflict(session, people_table, values, ["nik"])
        elif current != values:
            session.execute(
                update(people_table).where(people_table.c.nik == nik).values(**values)
            )
            updated += 1
    logger.info(
        "population seeded: %d people, %d inserted, %d updated",
        len(wanted),
        inserted,
        updated,
    )
    return len(wanted)


class LocalPopulationVerifier:
    """:class:`~bot.verification.nik.NikVerifier` over the `population_person`
    table (blocking database work runs in a thread)."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        kk_cap: int | None,
        slow_delay: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """sessions: makes a session on the database holding the population and
        the registry. kk_cap: the policy's NIKs per KK (None: no cap, policy
        2020). slow_delay: seconds a slow person's check takes instead of the
        row's ``check_delay_seconds`` (None: the row's; tests use 0 or small
        values). sleep: waits that long (tests pass a recorder)."""
        if kk_cap is not None and kk_cap < 1:
            raise ValueError("kk_cap must be at least 1 (None means no cap)")
        if slow_delay is not None and slow_delay < 0:
            raise ValueError("slow_delay must not be negative")
        self._sessions = sessions
        self.kk_cap = kk_cap
        self.slow_delay = slow_delay
        self._sleep = sleep

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Check the request against the local population.

        A database that does not answer (`OperationalError`) gives the retryable
        "unavailable" result, as a Dukcapil outage would.
        """
        nik = validate_nik(request.nik).normalized or _digits(request.nik)
        masked = mask_nik(nik)
        try:
            person = await asyncio.to_thread(self._find, nik)
            if person is None:
                outcome = "unknown_nik"
            else:
                delay = self.delay_for(person)
                if delay > 0:
                    await self._sleep(delay)
                outcome = await self._judge(person, request)
        except OperationalError as exc:
            logger.warning(
                "local NIK check %s: database unavailable (%s)",
                masked,
                type(exc).__name__,
            )
            return result_for("unavailable")
        logger.info("local NIK check %s: %s", masked, outcome)
        return result_for(outcome)

    def delay_for(self, person: Person) -> float:
        """Seconds this person's check takes: the row's delay, or ``slow_delay``
        for a slow person when set."""
        if person.check_delay_seconds > 0 and self.slow_delay is not None:
            return self.slow_delay
        return person.check_delay_seconds

    def _find(self, nik: str) -> Person | None:
        """The person with this NIK, if any (blocking)."""
        if len(nik) != NIK_LENGTH or not nik.isdigit():
            return None
        with self._sessions() as session:
            row = session.execute(
                select(people_table).where(people_table.c.nik == nik)
            ).one_or_none()
        return None if row is None else _person(row)

    def _registered_on_kk(self, person: Person) -> int:
        """NIKs other than ``person``'s counted on their KK (blocking).

        `kk_registered_count` counts every applicant registered here on the KK,
        and registration reserves the KK slot before the NIK check, so the
        person's own applicant (same NIK, same KK) is left out; family members
        registered outside this deployment are added.
        """
        with self._sessions() as session:
            counted = kk_registered_count(session, person.kk_number)
            applicant = find_applicant(session, person.nik)
        own = int(applicant is not None and applicant.kk_number == person.kk_number)
        return max(counted - own, 0) + person.family_registered_elsewhere

    async def _judge(self, person: Person, request: NikRequest) -> str:
        """The outcome for a known person, in the order Dukcapil would refuse."""
        if (
            not _same_name(person.full_name, request.full_name)
            or person.birth_date != request.birth_date
            or person.kk_number != _digits(request.kk_number)
        ):
            return "data_mismatch"
        if person.civil_servant:
            return "civil_servant"
        if person.student:
            return "student"
        if person.participant:
            return "already_participant"
        if self.kk_cap is not None:
            others = await asyncio.to_thread(self._registered_on_kk, person)
            if others >= self.kk_cap:
                return "kk_full"
        return "verified"
