"""A local stand-in for Dukcapil: a small synthetic population kept in code.

Every NIK here is made up but structurally valid (area codes, birth date with
+40 on the day for women, a non-zero serial). One person per outcome, so the
whole assistant can be tried without any external service; :data:`TEST_PEOPLE`
lists what to type to get each outcome.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from bot.policy.validation import mask_nik, validate_nik
from bot.verification.nik import NikCheckResult, NikRequest, result_for

logger = logging.getLogger(__name__)

KkCounter = Callable[[str, str], "int | Awaitable[int]"]
DEFAULT_KK_CAP = 2  # max NIKs per KK (2021 from wave 12 and 2023 onward)
DEFAULT_SLOW_DELAY = 2.0  # seconds the "slow" person's check takes


@dataclass(frozen=True)
class Person:
    """One resident as the registry knows them."""

    nik: str
    kk_number: str
    full_name: str
    birth_date: date
    student: bool = False
    civil_servant: bool = False
    participant: bool = False
    slow: bool = False


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
    Person("3374013004910008", "3374012001160009", "EKO PRASETYO", date(1991, 4, 30)),
    Person(
        "6471024707970009",
        "6471021505190010",
        "INDAH PERMATASARI",
        date(1997, 7, 7),
        slow=True,
    ),
)

# NIKs on each KK already registered outside this deployment (other family
# members); added to what the caller's counter reports.
KK_ALREADY_REGISTERED: dict[str, int] = {"3374012001160009": DEFAULT_KK_CAP}

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


class LocalPopulationVerifier:
    """:class:`~bot.verification.nik.NikVerifier` over :data:`POPULATION`."""

    def __init__(
        self,
        *,
        kk_registered_count: KkCounter | None = None,
        kk_cap: int | None = DEFAULT_KK_CAP,
        slow_delay: float = DEFAULT_SLOW_DELAY,
        people: tuple[Person, ...] = POPULATION,
    ) -> None:
        """kk_registered_count(kk_number, nik): NIKs other than ``nik`` already
        registered on that KK here (sync or async); kk_cap None means no cap
        (policy 2020); slow_delay: seconds the slow person's check takes."""
        self._count = kk_registered_count
        self.kk_cap = kk_cap
        self.slow_delay = slow_delay
        self._people = {person.nik: person for person in people}

    async def _registered_on(self, kk_number: str, nik: str) -> int:
        count = KK_ALREADY_REGISTERED.get(kk_number, 0)
        if self._count is not None:
            extra = self._count(kk_number, nik)
            count += await extra if inspect.isawaitable(extra) else extra
        return count

    async def verify(self, request: NikRequest) -> NikCheckResult:
        """Check the request against the synthetic population."""
        nik = validate_nik(request.nik).normalized or _digits(request.nik)
        person = self._people.get(nik)
        masked = mask_nik(nik)
        if person is None:
            outcome = "unknown_nik"
        else:
            if person.slow:
                await asyncio.sleep(self.slow_delay)
            outcome = await self._judge(person, request)
        logger.info("local NIK check %s: %s", masked, outcome)
        return result_for(outcome)

    async def _judge(self, person: Person, request: NikRequest) -> str:
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
            registered = await self._registered_on(person.kk_number, person.nik)
            if registered >= self.kk_cap:
                return "kk_full"
        return "verified"
