"""Tests for the pure input parsers and validators."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.validation import (
    EMAIL_WORDS,
    KK_WORDS,
    NIK_WORDS,
    PROVINCE_CODES,
    SAID_AFTER,
    SAID_BEFORE,
    answer_of,
    mask_email,
    mask_nik,
    mask_phone,
    nik_birth_date_matches,
    normalize_phone,
    parse_age,
    parse_count,
    parse_date,
    parse_yes_no,
    validate_email,
    validate_kk,
    validate_nik,
)

TODAY = date(2020, 4, 12)

# --- dates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15-08-1990", date(1990, 8, 15)),
        ("15/08/1990", date(1990, 8, 15)),
        ("15.8.1990", date(1990, 8, 15)),
        ("5-8-1990", date(1990, 8, 5)),
        ("1990-08-15", date(1990, 8, 15)),
        ("15 agustus 1990", date(1990, 8, 15)),
        ("15 Agustus 1990", date(1990, 8, 15)),
        ("15 Agt 1990", date(1990, 8, 15)),
        ("15 Agt. 1990", date(1990, 8, 15)),
        ("15 ags 1990", date(1990, 8, 15)),
        ("15 agu 90", date(1990, 8, 15)),
        ("15-agu-1990", date(1990, 8, 15)),
        ("1 mei 2000", date(2000, 5, 1)),
        ("17 des 1985", date(1985, 12, 17)),
        ("3 okt 1979", date(1979, 10, 3)),
        ("9 nop 1970", date(1970, 11, 9)),
        ("12 peb 1991", date(1991, 2, 12)),
        ("8 August 1990", date(1990, 8, 8)),
        ("8 oct 1990", date(1990, 10, 8)),
        ("tgl lahir saya 20 maret 1995", date(1995, 3, 20)),
        ("15081990", date(1990, 8, 15)),
        ("29 feb 2000", date(2000, 2, 29)),
        ("29-02-1996", date(1996, 2, 29)),
    ],
)
def test_parse_date(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01-01-00", date(2000, 1, 1)),
        ("01-01-20", date(2020, 1, 1)),  # current yy (2020) -> 2000s
        ("01-01-21", date(1921, 1, 1)),  # above current yy -> 1900s
        ("15 agu 05", date(2005, 8, 15)),
        ("15 agu 99", date(1999, 8, 15)),
    ],
)
def test_parse_date_two_digit_years(text: str, expected: date) -> None:
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "31-02-1990",
        "29-02-2001",
        "29 feb 1900",
        "32-01-1990",
        "15-13-1990",
        "15 xyz 1990",
        "kemarin",
        "",
        "08/15/1990",  # month-first is not Indonesian
        "15-08-1850",
        "budi15agt1990@gmail.com",  # an e-mail address is never a date
        "t_3jul05hjjd@gmail.com",  # nor the token that stands for one
    ],
)
def test_parse_date_invalid(text: str) -> None:
    assert parse_date(text, today=TODAY) is None


# --- age ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25", 25),
        ("umur 25", 25),
        ("25 thn", 25),
        ("25thn", 25),
        ("usia saya 30 tahun", 30),
        ("0", 0),
        ("120", 120),
        ("121", None),
        ("1990", None),
        ("umur 25 tahun 3 bulan", None),
        ("15-08-1990", None),
        ("dua lima", None),
        ("", None),
        ("umur 25.", 25),
        ("kapan2 aja", None),  # digit glued to a word is not an age
        ("lahir tahun 90an", None),
        ("rt05", None),
    ],
)
def test_parse_age(text: str, expected: int | None) -> None:
    assert parse_age(text) == expected


# --- yes / no -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "ya", "iya", "iyaa", "Iyaaa", "y", "Y", "yes", "betul", "benar", "bener",
        "sudah", "udah", "udh", "sdh", "pernah", "oke", "ok", "OK",
        "ya saya WNI", "iya benar", "sudah pernah",
    ],
)  # fmt: skip
def test_parse_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "tidak", "tdk", "gak", "ga", "gk", "nggak", "enggak", "ngga", "no",
        "bukan", "belum", "blm", "blum", "tak", "tidak pernah", "belum pernah",
        "bukan pns", "Gak kok", "ya, bukan", "tdk sdh",
    ],
)  # fmt: skip
def test_parse_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize("text", ["", "hmm", "gak tau", "tidak tahu", "mungkin", "?"])
def test_parse_yes_no_unclear(text: str) -> None:
    assert parse_yes_no(text) is None


@pytest.mark.parametrize(
    ("text", "question", "expected"),
    [
        ("udah lulus", "in_education", False),
        ("sudah tamat sma", "in_education", False),
        ("belum lulus", "in_education", True),
        ("iya masih kuliah", "in_education", True),
        ("saya mahasiswa", "in_education", True),
        ("udah gak kuliah", "in_education", False),
        ("sudah kerja", "in_education", False),
        ("tidak", "in_education", False),
        ("saya WNI", "citizen", True),
        ("bukan, saya WNA", "citizen", False),
        ("saya bukan wna", "citizen", True),
        ("bukan wni", "citizen", False),
        ("iya", "citizen", True),
        ("saya pns", "excluded_occupation", True),
        ("bukan pns", "excluded_occupation", False),
        ("karyawan swasta", "excluded_occupation", False),
        ("karyawan bumn", "excluded_occupation", False),  # only BUMN boards excluded
        ("sudah pernah lolos", "prior_participant", True),
        ("belum pernah lolos", "prior_participant", False),
        ("gak, baru pertama kali", "prior_participant", False),
        ("gagal terus", "prior_participant", False),
        ("saya dapat pkh", "receives_social_aid", True),
        ("tidak pernah dapat bansos", "receives_social_aid", False),
        ("gak dapet", "receives_social_aid", False),
        ("masih kuliah tapi udah lulus d3", "in_education", None),  # conflicting
        ("udah lulus", None, True),  # without context "udah" is just yes
        ("udah lulus", "unknown_question", True),
    ],
)
def test_parse_yes_no_with_question(
    text: str, question: str | None, expected: bool | None
) -> None:
    assert parse_yes_no(text, question) is expected


# --- counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("belum ada", 0),
        ("tidak ada", 0),
        ("gak ada", 0),
        ("belum", 0),
        ("nol", 0),
        ("1", 1),
        ("satu", 1),
        ("dua", 2),
        ("2 orang", 2),
        ("ada 3 orang", 3),
        ("sepuluh", 10),
        ("ada", None),
        ("entahlah", None),
        ("1 atau 2", None),
        ("99", None),
    ],
)
def test_parse_count(text: str, expected: int | None) -> None:
    assert parse_count(text) == expected


# --- NIK / KK -------------------------------------------------------------------

MALE_NIK = "3174091508900001"  # DKI Jakarta, born 15-08-90
FEMALE_NIK = "3174095508900001"  # same date, day + 40


def test_valid_male_nik() -> None:
    check = validate_nik(MALE_NIK)
    assert check.valid and check.error is None
    assert check.normalized == MALE_NIK
    assert (check.birth_date_day, check.birth_date_month, check.birth_date_yy) == (
        15,
        8,
        90,
    )
    assert check.female is False


def test_female_nik_day_plus_40() -> None:
    check = validate_nik(FEMALE_NIK)
    assert check.valid and check.female is True
    assert check.birth_date_day == 15
    assert nik_birth_date_matches(FEMALE_NIK, date(1990, 8, 15))
    assert not nik_birth_date_matches(FEMALE_NIK, date(1990, 8, 16))


@pytest.mark.parametrize(
    ("nik", "born", "matches"),
    [
        (MALE_NIK, date(1990, 8, 15), True),
        (MALE_NIK, date(2090, 8, 15), True),  # only the 2-digit year is stored
        (MALE_NIK, date(1991, 8, 15), False),
        (MALE_NIK, date(1990, 9, 15), False),
        ("3174094102000001", date(2000, 2, 1), True),
        ("12345", date(1990, 8, 15), False),
    ],
)
def test_nik_birth_date_matches(nik: str, born: date, matches: bool) -> None:
    assert nik_birth_date_matches(nik, born) is matches


@pytest.mark.parametrize(
    "text", ["3174 0915 0890 0001", "31.74.09.150890.0001", "3174-0915-0890-0001"]
)
def test_nik_separators_removed(text: str) -> None:
    check = validate_nik(text)
    assert check.valid and check.normalized == MALE_NIK


@pytest.mark.parametrize(
    ("nik", "fragment"),
    [
        ("317409150890", "yang kamu kirim 12 digit"),
        ("31740915089000011", "yang kamu kirim 17 digit"),
        ("", "belum diisi"),
        ("3174O91508900001", "hanya boleh berisi angka"),
        ("0074091508900001", "kode provinsi"),
        ("2074091508900001", "(20)"),
        ("9774091508900001", "(97)"),
        ("3100091508900001", "kabupaten"),
        ("3174001508900001", "kecamatan"),
        ("3174093102900001", "tanggal lahir"),  # 31 February
        ("3174097102900001", "tanggal lahir"),  # woman, 31 February
        ("3174090013900001", "tanggal lahir"),  # day 00, month 13
        ("3174094008900001", "tanggal lahir"),  # day 40 -> woman day 0
        ("3174091508900000", "0000"),
    ],
)
def test_invalid_nik(nik: str, fragment: str) -> None:
    check = validate_nik(nik)
    assert not check.valid
    assert check.error is not None and fragment in check.error


def test_nik_29_february_in_any_century() -> None:
    assert validate_nik("3174092902000001").valid  # 2000 is leap
    assert not validate_nik("3174092902010001").valid  # 1901/2001 are not


@pytest.mark.parametrize(
    "code",
    ["11", "19", "21", "31", "36", "51", "53", "61", "65", "71", "76", "81", "82"]
    + ["91", "92", "93", "94", "95", "96"],
)
def test_province_codes_valid(code: str) -> None:
    assert code in PROVINCE_CODES
    assert validate_nik(code + "74091508900001").valid


@pytest.mark.parametrize("code", ["00", "10", "20", "22", "30", "37", "54", "66", "83"])
def test_province_codes_invalid(code: str) -> None:
    assert code not in PROVINCE_CODES


def test_province_code_count() -> None:
    assert len(PROVINCE_CODES) == 38  # provinces of Indonesia since 2022


@pytest.mark.parametrize(
    ("kk", "valid", "fragment"),
    [
        ("3174010101200005", True, None),
        ("3174 0101 0120 0005", True, None),
        ("317401010120", False, "12 digit"),
        ("0074010101200005", False, "kode provinsi"),
        ("31740101012000ab", False, "angka"),
    ],
)
def test_validate_kk(kk: str, valid: bool, fragment: str | None) -> None:
    check = validate_kk(kk)
    assert check.valid is valid
    if fragment is None:
        assert check.error is None and check.normalized == "3174010101200005"
    else:
        assert check.error is not None and fragment in check.error
        assert "KK" in check.error


# --- phone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08123456789", "+628123456789"),
        ("0812-3456-789", "+628123456789"),
        ("0812 3456 7890", "+6281234567890"),
        ("628123456789", "+628123456789"),
        ("+62 812-3456-789", "+628123456789"),
        ("+62 (812) 3456 789", "+628123456789"),
        ("0857 1234 5678", "+6285712345678"),
        ("0812345678", "+62812345678"),  # 10 digits
        ("0812345678901", "+62812345678901"),  # 13 digits
    ],
)
def test_normalize_phone(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "021-5551234",  # Jakarta landline
        "0215551234",
        "081234567",  # 9 digits
        "08123456789012",  # 14 digits
        "0801234567",
        "+65 8123 4567",  # Singapore
        "08123abc789",
        "",
        "8123456789",
    ],
)
def test_normalize_phone_rejects(text: str) -> None:
    assert normalize_phone(text) is None


# --- e-mail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("budi@gmail.com", "budi@gmail.com"),
        (" Budi.Santoso@Gmail.COM ", "budi.santoso@gmail.com"),
        ("budi90@yahoo.co.id", "budi90@yahoo.co.id"),
        ("budi@kemnaker.go.id", "budi@kemnaker.go.id"),
    ],
)
def test_valid_email(text: str, normalized: str) -> None:
    check = validate_email(text)
    assert check.valid and check.error is None
    assert check.normalized == normalized
    assert check.suggestion is None and check.warning is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("budi_santoso@gmail.com", "_"),
        ("budi+prakerja@gmail.com", "+"),
        ("budi-s@gmail.com", "-"),
        ("budi s@gmail.com", "spasi"),
        ("budi", "@"),
        ("budi@@gmail.com", "@"),
        ("@gmail.com", "sebelum @"),
        (".budi@gmail.com", "sebelum @"),
        ("budi..s@gmail.com", "sebelum @"),
        ("budi@gmail", "setelah @"),
        ("budi@.com", "setelah @"),
        ("", "belum diisi"),
    ],
)
def test_invalid_email(text: str, fragment: str) -> None:
    check = validate_email(text)
    assert not check.valid and check.normalized is None
    assert check.error is not None and fragment in check.error


def test_invalid_email_states_programme_rule() -> None:
    error = validate_email("budi_s@gmail.com").error
    assert error is not None and "a-z" in error and "0-9" in error and "titik" in error


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("budi@gmial.com", "budi@gmail.com"),
        ("budi@gmail.co", "budi@gmail.com"),
        ("budi@gmail.con", "budi@gmail.com"),
        ("budi@gmai.com", "budi@gmail.com"),
        ("budi@gamil.com", "budi@gmail.com"),
        ("budi@gmail.co.id", "budi@gmail.com"),
        ("budi@yaho.com", "budi@yahoo.com"),
        ("budi@yahoo.co.di", "budi@yahoo.co.id"),
        ("budi@hotmial.com", "budi@hotmail.com"),
    ],
)
def test_email_typo_suggestion(text: str, suggestion: str) -> None:
    check = validate_email(text)
    assert check.valid  # a typo is still a well-formed address: ask, don't reject
    assert check.suggestion == suggestion
    assert check.warning is not None and suggestion in check.warning


def test_ambiguous_yahoo_co_is_not_guessed() -> None:
    check = validate_email("budi@yahoo.co")
    assert check.valid and check.suggestion is None
    assert check.warning is not None
    assert "yahoo.com" in check.warning and "yahoo.co.id" in check.warning


@pytest.mark.parametrize(
    "text", ["budi@mail.com", "budi@email.com", "budi@ymail.com", "budi@live.com"]
)
def test_real_domains_not_corrected(text: str) -> None:
    check = validate_email(text)
    assert check.suggestion is None and check.warning is None


# --- words around an answer ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words", "answer"),
    [
        (
            "alamat email saya budi.santoso@gmail.com",
            EMAIL_WORDS,
            "budi.santoso@gmail.com",
        ),
        ("Email: Budi@Gmail.com ya kak", EMAIL_WORDS, "Budi@Gmail.com"),
        ("emailnya budi@gmail.com.", EMAIL_WORDS, "budi@gmail.com"),
        ("ini email baru saya: budi@gmail.com makasih", EMAIL_WORDS, "budi@gmail.com"),
        ("nik saya 3174 0115 0890 0001", NIK_WORDS, "3174 0115 0890 0001"),
        ("NIK: 3174011508900001", NIK_WORDS, "3174011508900001"),
        ("no. ktp sy 3174-0115-0890-0001 ya", NIK_WORDS, "3174-0115-0890-0001"),
        ("nomor kk saya 3174010101090001", KK_WORDS, "3174010101090001"),
        ("no kartu keluarga - 3174010101090001", KK_WORDS, "3174010101090001"),
    ],
)
def test_known_words_around_an_answer_are_dropped(
    text: str, words: frozenset[str], answer: str
) -> None:
    assert answer_of(text, words) == answer


@pytest.mark.parametrize(
    "text",
    [
        "budi santoso@gmail.com",  # a space inside the address: refused whole
        "pak budi@gmail.com",  # "pakbudi@..." typed with a space
        "aku cantik@gmail.com",  # "akucantik@...": no name of the answer before it
        "budi@gmail.com.",  # only what is around an answer is trimmed
        "email saya",  # no answer at all: the validator's own message
    ],
)
def test_an_answer_without_known_words_around_it_is_unchanged(text: str) -> None:
    assert answer_of(text, EMAIL_WORDS) == text


def test_a_space_inside_the_address_is_kept_after_known_words() -> None:
    answer = answer_of("email saya budi santoso@gmail.com", EMAIL_WORDS)

    assert answer == "budi santoso@gmail.com"
    assert validate_email(answer).valid is False


def test_a_word_ending_in_a_dot_is_kept_before_an_address() -> None:
    """ "saya. budi@..." may be "saya.budi@..." with a space after the dot."""
    answer = answer_of("email saya. budi@gmail.com", EMAIL_WORDS)

    assert answer == "saya. budi@gmail.com"
    assert validate_email(answer).valid is False


def test_a_kk_word_is_not_dropped_before_a_nik() -> None:
    assert answer_of("kk 3174010101090001", NIK_WORDS) == "kk 3174010101090001"


_TYPED = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz.:@0123456789-", min_size=1, max_size=12),
    st.sampled_from(sorted(KK_WORDS | EMAIL_WORDS | SAID_BEFORE | SAID_AFTER)),
    st.sampled_from(["budi@gmail.com", "3174011508900001", "saya.", "nik:", ","]),
)


@given(
    st.lists(_TYPED, min_size=1, max_size=6), st.sampled_from([EMAIL_WORDS, KK_WORDS])
)
def test_only_known_words_at_the_edges_are_dropped(
    typed: list[str], names: frozenset[str]
) -> None:
    """What is kept is a run of the typed words, whole but for a final . , ! ?;
    before it only names and fillers, among them a name; after it only
    courtesies: no part of an address or a number is ever cut off."""
    text = " ".join(typed)
    kept = answer_of(text, names)
    if kept == text:
        return
    words, kept_words = text.replace(":", " : ").split(), kept.split()
    for start in range(len(words) - len(kept_words) + 1):
        run = words[start : start + len(kept_words)]
        if run[:-1] == kept_words[:-1] and run[-1].rstrip(".,!?") == kept_words[-1]:
            lead = [word.lower().rstrip(":,") or ":" for word in words[:start]]
            assert all(word in names | SAID_BEFORE | {":"} for word in lead)
            assert not lead or any(word in names for word in lead)
            after = words[start + len(kept_words) :]
            assert all(
                word.lower().strip(":;,.-!?\"'()") in SAID_AFTER | {""}
                for word in after
            )
            return
    raise AssertionError(f"{kept_words} is not a run of {words}")


# --- masking --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("3174091508900001", "3174********0001"),
        ("3174 0915 0890 0001", "3174********0001"),
        ("1234567", "*******"),
    ],
)
def test_mask_nik(raw: str, masked: str) -> None:
    assert mask_nik(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("08123456789", "+62812****789"),
        ("+62 812-3456-7890", "+62812*****890"),
        ("021555", "***555"),
    ],
)
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("budi@gmail.com", "bu***@gmail.com"),
        ("budi.santoso@gmail.com", "bu***@gmail.com"),
        ("ab@gmail.com", "a***@gmail.com"),
        ("not-an-email", "***"),
    ],
)
def test_mask_email(raw: str, masked: str) -> None:
    assert mask_email(raw) == masked


def test_masks_hide_the_middle() -> None:
    assert "0915089" not in mask_nik(MALE_NIK)
    assert "3456" not in mask_phone("08123456789")
    assert "santoso" not in mask_email("budi.santoso@gmail.com")
