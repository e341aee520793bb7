"""The personal data detector: whatever the parsers accept, in any spacing, is
found and masked (property tests), and the review's examples are."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.policy.validation import (
    MONTHS,
    PROVINCE_CODES,
    mask_email,
    mask_nik,
    mask_phone,
    normalize_phone,
    parse_date,
    validate_email,
    validate_kk,
    validate_nik,
)
from bot.privacy.detect import (
    DATE,
    EMAIL,
    KK,
    NIK,
    PHONE,
    find_personal_data,
    mask_personal_data,
)

# Runs of what people put between digit groups.
SEPARATORS = st.text(alphabet=" \t\n.-()/", min_size=1, max_size=4)
# Text around the value: no digits, so any digit left after masking is the value's.
CONTEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz :,!?\n", max_size=15)
PROPERTY = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spaced(draw: st.DrawFn, digits: str) -> str:
    """`digits` cut into groups at random places, joined by random separators."""
    cuts = sorted(
        draw(st.sets(st.integers(1, len(digits) - 1), max_size=len(digits) - 1))
    )
    bounds = zip([0, *cuts], [*cuts, len(digits)], strict=True)
    groups = [digits[a:b] for a, b in bounds]
    text = groups[0]
    for group in groups[1:]:
        text += draw(SEPARATORS) + group
    return text


@st.composite
def niks(draw: st.DrawFn) -> str:
    """A NIK `validate_nik` accepts."""
    born = draw(st.dates(date(1940, 1, 1), date(2010, 12, 31)))
    day = born.day + (40 if draw(st.booleans()) else 0)
    nik = (
        draw(st.sampled_from(sorted(PROVINCE_CODES)))
        + f"{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 99)):02d}"
        + f"{day:02d}{born.month:02d}{born.year % 100:02d}"
        + f"{draw(st.integers(1, 9999)):04d}"
    )
    assert validate_nik(nik).valid
    return nik


@st.composite
def kks(draw: st.DrawFn) -> str:
    """A KK number `validate_kk` accepts."""
    kk = (
        draw(st.sampled_from(sorted(PROVINCE_CODES)))
        + f"{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 99)):02d}"
        + "".join(
            draw(st.lists(st.sampled_from("0123456789"), min_size=10, max_size=10))
        )
    )
    assert validate_kk(kk).valid
    return kk


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    """(as typed, national digits without the 0) of a number `normalize_phone`
    accepts."""
    rest = "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=7, max_size=10))
    )
    national = f"8{draw(st.integers(1, 9))}{rest}"
    prefix = draw(st.sampled_from(["0", "62", "+62"]))
    typed = draw(spaced(prefix.lstrip("+") + national))
    typed = ("+" + typed) if prefix.startswith("+") else typed
    assert normalize_phone(prefix + national) is not None
    return typed, national


@st.composite
def written_dates(draw: st.DrawFn) -> str:
    """A date in one of the forms `parse_date` reads (day first, year first,
    month names, DDMMYYYY, two-digit years), in any spacing."""
    day = draw(st.dates(date(1900, 1, 1), date(2100, 12, 31)))
    form = draw(st.sampled_from(["dmy", "ymd", "named", "compact"]))
    pad = draw(st.booleans())
    d, m = (
        (f"{day.day:02d}", f"{day.month:02d}")
        if pad
        else (
            str(day.day),
            str(day.month),
        )
    )
    year = f"{day.year % 100:02d}" if draw(st.booleans()) else str(day.year)
    if form == "dmy":
        return d + draw(SEPARATORS) + m + draw(SEPARATORS) + year
    if form == "ymd":
        return str(day.year) + draw(SEPARATORS) + m + draw(SEPARATORS) + d
    if form == "named":
        names = sorted(name for name, number in MONTHS.items() if number == day.month)
        name = draw(st.sampled_from(names))
        name = draw(st.sampled_from([name, name.title(), name.upper()]))
        gap = st.text(alphabet=" \t\n-/.,", max_size=3)
        return d + draw(gap) + name + draw(gap) + year
    return f"{day.day:02d}{day.month:02d}{day.year}"


_ALNUM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=9
)
EMAILS = st.builds(
    "{}{}@{}.{}".format,
    _ALNUM,
    st.sampled_from(["", ".budi", ".x1"]),
    _ALNUM,
    st.sampled_from(["com", "co.id", "id", "net"]),
)


def with_spacing(number: str) -> st.SearchStrategy[tuple[str, str]]:
    """(number, number as typed in some spacing)."""
    return st.tuples(st.just(number), spaced(number))


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


@PROPERTY
@given(CONTEXT, st.one_of(niks(), kks()).flatmap(with_spacing), CONTEXT)
def test_any_nik_or_kk_in_any_spacing_is_masked(
    before: str, value: tuple[str, str], after: str
) -> None:
    number, typed = value
    masked = mask_personal_data(f"{before} {typed} {after}")
    assert masked == f"{before} {mask_nik(number)} {after}"
    assert number not in digits_of(masked)


@PROPERTY
@given(CONTEXT, phones(), CONTEXT)
def test_any_phone_number_in_any_spacing_is_masked(
    before: str, phone: tuple[str, str], after: str
) -> None:
    typed, national = phone
    masked = mask_personal_data(f"{before} {typed} {after}")
    assert masked == f"{before} {mask_phone('0' + national)} {after}"
    assert national not in digits_of(masked)


@PROPERTY
@given(CONTEXT, written_dates(), CONTEXT)
def test_any_date_the_parser_reads_is_masked(
    before: str, written: str, after: str
) -> None:
    text = f"{before} {written} {after}"
    masked = mask_personal_data(text)
    assert parse_date(masked) is None, (text, masked)
    assert parse_date(masked.replace("-", " ")) is None


@PROPERTY
@given(CONTEXT, EMAILS, CONTEXT)
def test_any_email_is_masked(before: str, email: str, after: str) -> None:
    assume(validate_email(email).valid)
    masked = mask_personal_data(f"{before} {email} {after}")
    assert masked == f"{before} {mask_email(email)} {after}"
    assert email not in masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("3174  0115  0890  0001", "3174********0001"),
        ("3271 - 0512 - 0395 - 0002", "3271********0002"),
        ("NIK 3174011508\n900001 ya", "NIK 3174********0001 ya"),
        ("3174\t011508900001", "3174********0001"),
        ("(0812) 3456-7890", "+62812*****890"),
        ("lahir 15-08-1990", "lahir **-**-****"),
        ("15 Agt 1990 kak", "**-**-**** kak"),
        ("Apakah 16-08-1990 sudah benar?", "Apakah **-**-**** sudah benar?"),
        ("hp 0812-3456-7890 ya, gelombang 3", "hp +62812*****890 ya, gelombang 3"),
        ("email Budi.Santoso@Example.com", "email Bu***@Example.com"),
        ("nomor 1234 5678 9012 3", "nomor 1234*****0123"),
        ("gaji Rp 3.500.000, kode 123456", "gaji Rp 3.500.000, kode 123456"),
    ],
)
def test_the_reviews_examples_are_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


def test_spans_carry_the_value_as_the_parser_reads_it() -> None:
    text = "nik 3174 0115 0890 0001, kk 3174.0199.0115.0001, hp +62 812-3456-7890, "
    text += "lahir 15 agustus 1990, email BUDI@gmail.com"
    assert [(s.kind, s.value) for s in find_personal_data(text)] == [
        (NIK, "3174011508900001"),
        (KK, "3174019901150001"),
        (PHONE, "+6281234567890"),
        (DATE, "1990-08-15"),
        (EMAIL, "budi@gmail.com"),
    ]


def test_a_huge_run_of_digit_groups_is_handled_quickly() -> None:
    text = "1 " * 20_000
    assert mask_personal_data(text).count("*") > 0
