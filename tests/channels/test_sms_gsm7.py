"""GSM-7 conversion and SMS segment counting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.sms import SegmentInfo, is_gsm7, segment_info, to_gsm7
from bot.channels.sms.gsm7 import GSM7_BASIC, GSM7_EXTENSION


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\u201cHalo\u201d, kata \u2018Budi\u2019", "\"Halo\", kata 'Budi'"),
        ("Senin\u2013Jumat \u2014 08.00", "Senin-Jumat - 08.00"),
        ("Tunggu\u2026", "Tunggu..."),
        ("Rp3.500.000\u00a0per orang", "Rp3.500.000 per orang"),
        ("Halo \U0001f44b apa kabar \U0001f600\U0001f600", "Halo apa kabar"),
        ("\u2705 Terdaftar", "v Terdaftar"),
        ("\u274c Gagal", "x Gagal"),
        ("Daftar \u2192 Tes", "Daftar -> Tes"),
        ("1\ufe0f\u20e3 Pertama", "1 Pertama"),
        ("\U0001f44d\U0001f3fd oke", "oke"),
        (
            "Ir. S\u014dekarno, na\u00efve, \u00e7a, \u00c1gata",
            "Ir. Soekarno, naive, ca, Agata",
        ),
        ("\ufb01le \uff21\uff22", "file AB"),
        ("zero\u200bwidth", "zerowidth"),
        ("baris satu \U0001f389\nbaris dua", "baris satu\nbaris dua"),
    ],
)
def test_to_gsm7_replaces_what_feature_phones_cannot_show(
    raw: str, expected: str
) -> None:
    converted = to_gsm7(raw)
    assert converted == expected
    assert is_gsm7(converted)


def test_gsm7_characters_are_kept_as_they_are() -> None:
    text = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
    assert is_gsm7(text)
    assert to_gsm7(text) == text
    assert to_gsm7("caf\u00e9 \u00e0 \u00c4 \u20ac5 {x} [y] ~z^ |") == (
        "caf\u00e9 \u00e0 \u00c4 \u20ac5 {x} [y] ~z^ |"
    )


def test_to_gsm7_never_produces_characters_outside_the_tables() -> None:
    every_bmp_character = "".join(
        chr(code) for code in range(0x20, 0x10000) if not 0xD800 <= code <= 0xDFFF
    )
    emoji = "".join(chr(code) for code in range(0x1F300, 0x1FAFF))
    assert is_gsm7(to_gsm7(every_bmp_character))
    assert is_gsm7(to_gsm7(emoji))


def test_is_gsm7() -> None:
    assert is_gsm7("Rp3.550.000 @ ok \u20ac {}")
    for bad in ("\u2013", "\u201chai\u201d", "\U0001f600", "`", "\u0101"):
        assert not is_gsm7(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentInfo("GSM-7", 0, 0)),
        ("a" * 160, SegmentInfo("GSM-7", 1, 160)),
        ("a" * 161, SegmentInfo("GSM-7", 2, 161)),
        ("a" * 306, SegmentInfo("GSM-7", 2, 306)),
        ("a" * 307, SegmentInfo("GSM-7", 3, 307)),
        ("a" * 459, SegmentInfo("GSM-7", 3, 459)),
        ("a" * 460, SegmentInfo("GSM-7", 4, 460)),
        # extension characters cost two septets
        ("\u20ac" * 80, SegmentInfo("GSM-7", 1, 160)),
        ("a" * 159 + "{", SegmentInfo("GSM-7", 2, 161)),
        ("[" * 152, SegmentInfo("GSM-7", 2, 304)),
        ("[" * 153, SegmentInfo("GSM-7", 3, 306)),  # 76 + 76 + 1 per part
        # an escape sequence is never split: 152 + (2) moves to the next part
        ("a" * 152 + "\u20ac" + "a" * 152, SegmentInfo("GSM-7", 3, 306)),
        ("\f", SegmentInfo("GSM-7", 1, 2)),
        # UCS-2 counts UTF-16 code units
        ("\u0416" * 70, SegmentInfo("UCS-2", 1, 70)),
        ("\u0416" * 71, SegmentInfo("UCS-2", 2, 71)),
        ("\u0416" * 134, SegmentInfo("UCS-2", 2, 134)),
        ("\u0416" * 135, SegmentInfo("UCS-2", 3, 135)),
        ("a" * 69 + "\u2019", SegmentInfo("UCS-2", 1, 70)),
        ("\U0001f600" * 35, SegmentInfo("UCS-2", 1, 70)),
        ("\U0001f600" * 36, SegmentInfo("UCS-2", 2, 72)),
        # a surrogate pair is never split: 66 + (2) moves to the next part
        ("a" * 66 + "\U0001f600" + "a" * 66, SegmentInfo("UCS-2", 3, 134)),
    ],
)
def test_segment_info(text: str, expected: SegmentInfo) -> None:
    assert segment_info(text) == expected


def test_segment_info_is_frozen() -> None:
    info = segment_info("halo")
    with pytest.raises(AttributeError):
        info.segments = 5  # type: ignore[misc]


def _septets_one_by_one(text: str) -> SegmentInfo | None:
    """The definition, a character at a time: 1 septet for the basic table, 2
    for the extension, parts of 153 that never split an escape; None when the
    text is not GSM-7."""
    if any(char not in GSM7_BASIC and char not in GSM7_EXTENSION for char in text):
        return None
    costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
    total = sum(costs)
    if total <= 160:
        return SegmentInfo("GSM-7", 1 if total else 0, total)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > 153:
            segments, used = segments + 1, 0
        used += cost
    return SegmentInfo("GSM-7", segments, total)


_ALPHABET = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION)) + "ā😀é\u00a0"


@given(
    st.text(alphabet=_ALPHABET, max_size=700)
    | st.text(alphabet="ab{", min_size=150, max_size=330)
)
@settings(max_examples=400, deadline=None)
def test_the_fast_count_agrees_with_the_definition(text: str) -> None:
    """`segment_info` counts with regular expressions; it gives what counting
    one character at a time gives, escapes at part borders included."""
    expected = _septets_one_by_one(text)
    assert is_gsm7(text) is (expected is not None)
    if expected is not None:
        assert segment_info(text) == expected
