"""People and what they type: the flows and the identities who register."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from bench.gateway import (
    SMS,
    TELEGRAM,
)

SEED = 2026

SMS_BASE = 62_813_0000_0000
TELEGRAM_BASE = 710_000_000

MIX = (("registration", 0.3), ("eligibility", 0.25), ("handoff", 0.1), ("faq", 0.35))
FAQ = (
    "kartu prakerja itu program apa sih",
    "syarat ikut prakerja apa aja",
    "dapet duit berapa kalo ikut prakerja",
    "gimana cara daftar prakerja",
    "insentifnya cair kapan ya",
    "pelatihannya online atau offline",
    "mahasiswa boleh ikut gak",
    "gelombang berikutnya kapan dibuka",
    "halo",
    "makasih ya",
)
ELIGIBILITY = (
    "cek dong aku bisa ikut prakerja gak",
    "umur saya 27 tahun",
    "iya saya wni",
    "tidak, sudah lulus",
    "bukan",
    "belum pernah",
    "tidak",
)
HANDOFF = ("sambungkan saya ke petugas", "BATAL")


@dataclass
class Step:
    """One message a person sends (or two at once, when `pair` is set)."""

    text: str
    expect: str = ""  # wait for a reply containing this (case-insensitive)
    kind: str = ""  # "email", "code", "handoff": what the checks count
    pair: str = ""  # a second text posted at the same instant to the other gateway
    turn: str = "faq"  # what the step is, for the time to reply by turn


@dataclass(frozen=True)
class Identity:
    """Who registers: name, e-mail and the identity numbers typed."""

    full_name: str
    email: str
    nik: str
    kk_number: str
    birth_date: date


@dataclass
class Person:
    """One person on one channel with the script they follow."""

    index: int
    channel: str
    address: str
    flow: str
    steps: list[Step]
    identity: Identity | None = None


def _faq(rng: random.Random, count: int) -> list[Step]:
    return [Step(rng.choice(FAQ)) for _ in range(count)]


def registration_steps(identity: Identity) -> list[Step]:
    """A full registration: consent, name, e-mail + code, NIK, KK, birth date,
    the NIK result (sent by the gateway), joining the open batch, status."""
    born = identity.birth_date.strftime("%d-%m-%Y")
    return [
        Step("daftar", turn="registration: start"),
        Step("setuju", turn="registration: consent"),
        Step(identity.full_name, turn="registration: name"),
        Step(identity.email, kind="email", turn="registration: e-mail"),
        Step("", kind="code", turn="registration: code"),  # read from the mail
        Step(identity.nik, turn="registration: NIK"),
        Step(identity.kk_number, turn="registration: KK"),
        Step(born, expect="Cek NIK ", turn="registration: birth date"),  # NIK check
        Step("gabung", turn="registration: join the batch"),
        Step("status", turn="registration: status"),
    ]


def identities(count: int, first: int = 0) -> list[Identity]:
    """The test people of the population first (only for `first` 0), then
    synthetic ones numbered from `first`."""
    from bench.registration import make_people
    from bot.verification.population import TEST_PEOPLE

    found = [
        Identity(p.full_name.title(), f"uji{i}@gmail.com", p.nik, p.kk_number,
                 p.birth_date)
        for i, p in enumerate(TEST_PEOPLE if first == 0 else ())
    ]  # fmt: skip
    extra = max(0, count - len(found))
    for person in make_people(extra, start=50_000 + first) if extra else []:
        d = person.details
        found.append(
            Identity(d.full_name, f"soak{person.index}@gmail.com", d.nik,
                     d.kk_number, d.birth_date)
        )  # fmt: skip
    return found[:count]


def build_people(
    people: int, messages: int, rng: random.Random, first: int = 0
) -> list[Person]:
    """`people` people sending `messages` in all, in the mix of flows; `first`:
    the number of the first (addresses, e-mails and identities follow it), so
    crowds built with `first` apart by at least `people` never share any."""
    share = [messages // people + (1 if i < messages % people else 0)
             for i in range(people)]  # fmt: skip
    flows = [rng.choices([f for f, _ in MIX], [w for _, w in MIX])[0]
             for _ in range(people)]  # fmt: skip
    registering = iter(identities(flows.count("registration"), first))
    result = []
    for index, (flow, count) in enumerate(zip(flows, share, strict=True), first):
        identity = next(registering) if flow == "registration" else None
        if identity is not None:
            steps = registration_steps(identity)
        elif flow == "eligibility":
            steps = [Step(text, turn="eligibility") for text in ELIGIBILITY]
        elif flow == "handoff":
            steps = [Step(HANDOFF[0], kind="handoff", turn="handoff: ask"),
                     Step(HANDOFF[1], turn="handoff: cancel")]  # fmt: skip
        else:
            steps = []
        if len(steps) < count:
            filler = _faq(rng, count - len(steps))
            if flow == "faq" and count - len(steps) >= 2:
                filler[0].pair = rng.choice(FAQ)
                filler.pop()  # the pair is two messages
            steps = filler[:1] + steps + filler[1:] if flow != "faq" else filler
        steps = steps[:count] if identity is None else steps
        sms = index % 2 == 0
        result.append(
            Person(
                index=index,
                channel=SMS if sms else TELEGRAM,
                address=f"+{SMS_BASE + index}" if sms else str(TELEGRAM_BASE + index),
                flow=flow,
                steps=steps,
                identity=identity,
            )
        )
    return result
