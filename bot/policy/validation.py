"""Pure parsers and validators for what applicants type (no I/O).

Messages returned to users are Indonesian and GSM-7 safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.policy.catalogue import say

# Province codes used in NIK/KK numbers (Kemendagri), including the Papua
# provinces created in 2022: 93 Papua Selatan, 94 Papua Tengah, 95 Papua
# Pegunungan, 96 Papua Barat Daya. (97 is a BPS statistics code, not Kemendagri.)
PROVINCE_CODES: frozenset[str] = frozenset(
    [str(c) for c in range(11, 20)]
    + ["21"]
    + [str(c) for c in range(31, 37)]
    + ["51", "52", "53"]
    + [str(c) for c in range(61, 66)]
    + [str(c) for c in range(71, 77)]
    + ["81", "82"]
    + [str(c) for c in range(91, 97)]
)

NIK_LENGTH = 16
FEMALE_DAY_OFFSET = 40

MONTHS: dict[str, int] = {
    # Indonesian names and common abbreviations
    "januari": 1, "jan": 1,
    "februari": 2, "pebruari": 2, "feb": 2, "peb": 2,
    "maret": 3, "mar": 3, "mrt": 3,
    "april": 4, "apr": 4,
    "mei": 5,
    "juni": 6, "jun": 6,
    "juli": 7, "jul": 7,
    "agustus": 8, "agu": 8, "agt": 8, "ags": 8, "agst": 8, "agus": 8,
    "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10,
    "november": 11, "nov": 11, "nop": 11, "nopember": 11,
    "desember": 12, "des": 12,
    # English
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7,
    "august": 8, "aug": 8, "october": 10, "oct": 10, "december": 12, "dec": 12,
}  # fmt: skip

_SEP = r"[-/.]"
_NUMERIC_DMY = re.compile(
    rf"(?<!\d)(\d{{1,2}}){_SEP}(\d{{1,2}}){_SEP}(\d{{4}}|\d{{2}})(?!\d)"
)
_NUMERIC_YMD = re.compile(rf"(?<!\d)(\d{{4}}){_SEP}(\d{{1,2}}){_SEP}(\d{{1,2}})(?!\d)")
_COMPACT = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_NAMED = re.compile(
    r"(?<![a-z0-9])(\d{1,2})[\s\-/.,]*([a-z]{3,9})\.?[\s\-/.,]*(\d{4}|\d{2})(?!\d)"
)


def _two_digit_year(yy: int, today: date) -> int:
    """``00``..current ``yy`` -> 2000s, anything above -> 1900s."""
    return 2000 + yy if yy <= today.year % 100 else 1900 + yy


def _make_date(year: int, month: int, day: int) -> date | None:
    if not 1900 <= year <= 2100:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _year(raw: str, today: date) -> int:
    return int(raw) if len(raw) == 4 else _two_digit_year(int(raw), today)


def parse_date(text: str, today: date | None = None) -> date | None:
    """Parse a day-first date in Indonesian/English forms; None if invalid.

    Accepts ``15-08-1990``, ``15/08/1990``, ``15.8.1990``, ``1990-08-15``,
    ``15 agustus 1990``, ``15 Agt 1990``, ``15081990`` and two-digit years
    (``00`` up to this year's ``yy`` mean 2000s, higher mean 1900s). Text
    with an ``@`` (an e-mail address) is not a date.
    """
    current = today or date.today()
    clean = text.strip().lower()
    if "@" in clean:  # an e-mail address (or its token: "t_3jul05...@gmail.com")
        return None
    if match := _NUMERIC_YMD.search(clean):
        year, month, day = (int(g) for g in match.groups())
        return _make_date(year, month, day)
    if match := _NUMERIC_DMY.search(clean):
        day, month = int(match.group(1)), int(match.group(2))
        return _make_date(_year(match.group(3), current), month, day)
    if match := _NAMED.search(clean):
        month_number = MONTHS.get(match.group(2))
        if month_number is None:
            return None
        year = _year(match.group(3), current)
        return _make_date(year, month_number, int(match.group(1)))
    if match := _COMPACT.search(clean):
        digits = match.group(1)
        dmy = _make_date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
        return dmy or _make_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    return None


# A stand-alone number, optionally glued to a year unit ("25thn"); digits glued
# to other letters ("kapan2", "90an") are not ages.
_AGE = re.compile(r"(?<!\w)(\d+)(?:th|thn|tahun|thun|taun)?(?!\w)")
_MAX_AGE = 120


def parse_age(text: str) -> int | None:
    """An age in years from ``25``, ``umur 25``, ``25 thn``, ``usia saya 30 tahun``.

    Only 0-120 is plausible; text with several numbers, a date, or digits glued
    to a word (``kapan2``, ``90an``) gives None.
    """
    clean = text.lower()
    numbers = [match.group(1) for match in _AGE.finditer(clean)]
    if len(numbers) != 1 or re.search(r"\d[-/.,]\d", clean):
        return None
    age = int(numbers[0])
    return age if 0 <= age <= _MAX_AGE else None


def _collapse(word: str) -> str:
    """Squash repeated letters: ``iyaaa`` -> ``iya``, ``nggak`` -> ``ngak``."""
    return re.sub(r"(.)\1+", r"\1", word)


_YES = frozenset(
    _collapse(w)
    for w in (
        "ya", "iya", "iy", "y", "yes", "yup", "yap", "yoi", "betul", "benar",
        "bener", "sudah", "udah", "udh", "sdh", "dah", "pernah", "oke", "ok",
        "okay", "okey", "sip", "siap", "boleh", "setuju", "tentu", "memang",
    )
)  # fmt: skip
_NO = frozenset(
    _collapse(w)
    for w in (
        "tidak", "tdk", "tak", "gak", "ga", "gk", "nggak", "ngga", "nggk",
        "enggak", "engga", "ndak", "nda", "kagak", "no", "nope", "bukan", "bkn",
        "belum", "blm", "blum", "belom", "jangan", "tida",
    )
)  # fmt: skip
_UNSURE = frozenset(
    ("tahu", "tau", "yakin", "ragu", "lupa", "mungkin", "entah", "bingung", "paham")
)
_WORD = re.compile(r"[a-z]+")
_CLAUSE_BREAK = re.compile(r"[,.;:!?]+")


# Per-question cue words: (words meaning yes, words meaning no) for that
# question. A cue right after a negation (skipping filler such as "pernah")
# flips: "belum lulus" to "are you studying?" means yes.
_CUES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "citizen": (frozenset({"wni", "indonesia"}), frozenset({"wna", "asing"})),
    "in_education": (
        frozenset({"masih", "kuliah", "sekolah", "mahasiswa", "mahasiswi", "pelajar",
                   "siswa", "siswi", "mhs"}),
        frozenset({"lulus", "tamat", "lulusan", "alumni", "berhenti", "keluar",
                   "kerja", "bekerja", "nganggur", "pengangguran"}),
    ),
    "excluded_occupation": (
        frozenset({"pns", "asn", "pppk", "tni", "polri", "polisi", "tentara", "kades",
                   "sekdes", "dpr", "dprd", "pejabat", "komisaris", "direksi",
                   "direktur", "perangkat"}),
        frozenset({"swasta", "wiraswasta", "karyawan", "buruh", "nganggur",
                   "pengangguran", "phk", "dirumahkan", "pedagang", "petani",
                   "nelayan", "ojol", "irt", "freelance", "usaha"}),
    ),
    "prior_participant": (
        frozenset({"lolos", "dicabut", "penerima", "alumni"}),
        frozenset({"pertama", "baru", "gagal"}),
    ),
    "receives_social_aid": (
        frozenset({"pkh", "bsu", "bpum", "bansos", "dtks", "blt", "bpnt", "dapat",
                   "dapet", "terima", "menerima"}),
        frozenset(),
    ),
}  # fmt: skip
_FILLER = frozenset(
    {"pernah", "sempat", "jadi", "lagi", "sedang", "masih", "dapat", "dapet",
     "terima", "menerima", "ikut"}
)  # fmt: skip


def _negated(words: list[str], index: int) -> bool:
    """Whether ``words[index]`` follows a negation, skipping filler words.

    ``words`` is one clause: punctuation ends a negation's scope.
    """
    for previous in reversed(words[:index]):
        if previous in _NO:
            return True
        if previous not in _FILLER:
            return False
    return False


def parse_yes_no(text: str, question: str | None = None) -> bool | None:
    """Informal Indonesian yes/no; negation wins; None when unclear.

    ``"belum pernah"`` and ``"bukan pns"`` are False; ``"gak tau"`` is None.
    With ``question`` (an eligibility question name) its cue words count
    first: to ``in_education`` "udah lulus" is False and "saya mahasiswa" True;
    to ``citizen`` "saya WNI" is True. Conflicting cues give None.
    """
    clauses = [
        [_collapse(w) for w in _WORD.findall(part)]
        for part in _CLAUSE_BREAK.split(text.lower())
    ]
    words = [word for clause in clauses for word in clause]
    if any(w in _UNSURE for w in words):
        return None
    yes_cues, no_cues = _CUES.get(question or "", (frozenset(), frozenset()))
    votes = {
        (word in yes_cues) != _negated(clause, i)
        for clause in clauses
        for i, word in enumerate(clause)
        if word in yes_cues or word in no_cues
    }
    if votes:
        return votes.pop() if len(votes) == 1 else None
    if any(w in _NO for w in words):
        return False
    if any(w in _YES for w in words):
        return True
    return None


_NUMBER_WORDS: dict[str, int] = {
    "nol": 0, "kosong": 0, "satu": 1, "seorang": 1, "dua": 2, "tiga": 3,
    "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "delapan": 8, "sembilan": 9,
    "sepuluh": 10,
}  # fmt: skip
_MAX_COUNT = 20


def parse_count(text: str) -> int | None:
    """A small head count: ``0``, ``2 orang``, ``dua``, ``belum ada`` -> 0."""
    clean = text.lower()
    digits = re.findall(r"(?<!\d)\d+(?!\d)", clean)
    if len(digits) == 1:
        value = int(digits[0])
        return value if value <= _MAX_COUNT else None
    if digits:
        return None
    words = _WORD.findall(clean)
    for word in words:
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    if any(_collapse(word) in _NO for word in words):
        return 0  # "belum ada", "tidak ada", "gak"
    return None


# --- Words around an answer ----------------------------------------------------

# The words that name a form answer ("nik saya 3174...", "alamat email saya
# budi@gmail.com"), and the fillers typed with them. Words before an answer go
# only when a name is among them: "aku cantik@gmail.com" may be a space typed
# into "akucantik@gmail.com", and must stay refused, not mailed to
# cantik@gmail.com; for the same reason a word is matched with only ":" or ","
# after it ("saya." may be the start of "saya.budi@...") and honorifics ("pak")
# are no fillers.
SAID_BEFORE = frozenset((
    "saya", "sy", "aku", "ku", "ini", "itu", "nya", "adalah", "yaitu", "yakni",
    "yg", "yang", "punya", "punyaku", "baru", "pakai", "pake", "berikut", "-",
))  # fmt: skip
EMAIL_WORDS = frozenset((
    "email", "e-mail", "emailnya", "emailku", "imel", "alamat", "alamatnya",
))  # fmt: skip
NIK_WORDS = frozenset((
    "nik", "niknya", "nikku", "no", "no.", "nomor", "nomer", "nmr", "nomornya",
    "ktp", "e-ktp", "ektp",
))  # fmt: skip
KK_WORDS = NIK_WORDS | frozenset(("kk", "kk-nya", "kknya", "kartu", "keluarga"))
# What people type after an answer; nothing an answer ends with.
SAID_AFTER = frozenset((
    "ya", "yaa", "iya", "kak", "ka", "min", "pak", "bu", "gan", "dong", "nih",
    "ini", "tuh", "aja", "saja", "deh", "makasih", "terimakasih", "trims",
    "thx", "tq",
))  # fmt: skip
_TRIMMED = ":;,.-!?\"'()"


def answer_of(text: str, names: frozenset[str]) -> str:
    """`text` without the words typed before and after the answer: "alamat
    email saya budi@gmail.com ya" -> "budi@gmail.com". Before it, a run of
    `names` and fillers that holds a name; after it, courtesies. Any other
    word stays for the validator to refuse: "budi santoso@gmail.com" and
    "email budi santoso@gmail.com" are refused for the space."""
    words = text.replace(":", " : ").split()
    start, end = 0, len(words)
    named = False
    while start < end:
        word = words[start].lower().rstrip(":,") or ":"
        if word not in names and word not in SAID_BEFORE and word != ":":
            break
        named = named or word in names
        start += 1
    if not named:
        start = 0
    while end > start and words[end - 1].lower().strip(_TRIMMED) in SAID_AFTER | {""}:
        end -= 1
    if start == end or (start, end) == (0, len(words)):
        return text
    return " ".join(words[start:end]).rstrip(".,!?")


# --- NIK and KK -----------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s.\-]+")


@dataclass(frozen=True)
class NikCheck:
    """Result of :func:`validate_nik`; birth parts are set when readable."""

    valid: bool
    normalized: str | None
    error: str | None
    birth_date_day: int | None = None
    birth_date_month: int | None = None
    birth_date_yy: int | None = None
    female: bool | None = None


@dataclass(frozen=True)
class KkCheck:
    """Result of :func:`validate_kk`."""

    valid: bool
    normalized: str | None
    error: str | None


def _digits_error(label: str, raw: str) -> tuple[str | None, str | None]:
    """Strip separators; return (digits, error)."""
    digits = _SEPARATORS.sub("", raw)
    if not digits:
        return None, say("validation.empty", label=label, digits=NIK_LENGTH)
    if not digits.isdigit():
        return None, say("validation.only_digits", label=label)
    if len(digits) != NIK_LENGTH:
        return None, say(
            "validation.digits", label=label, digits=NIK_LENGTH, typed=len(digits)
        )
    return digits, None


def _area_error(label: str, card: str, digits: str) -> str | None:
    province = digits[:2]
    if province not in PROVINCE_CODES:
        return say("validation.province", label=label, province=province, card=card)
    if digits[2:4] == "00" or digits[4:6] == "00":
        return say("validation.area", label=label, card=card)
    return None


def _date_exists(day: int, month: int, yy: int) -> bool:
    """True if day/month exist with ``yy`` in the 1900s or 2000s."""
    return any(
        _make_date(century + yy, month, day) is not None for century in (1900, 2000)
    )


def validate_nik(nik: str) -> NikCheck:
    """Check a NIK's structure (no check digit exists; Dukcapil has the truth).

    Digits 7-12 are the birth date DDMMYY, women adding 40 to the day.
    """
    label = say("validation.nik")
    digits, error = _digits_error(label, nik)
    if digits is None:
        return NikCheck(False, None, error)
    area_error = _area_error(label, say("validation.ktp"), digits)
    if area_error:
        return NikCheck(False, digits, area_error)
    raw_day, month, yy = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
    female = raw_day > FEMALE_DAY_OFFSET
    day = raw_day - FEMALE_DAY_OFFSET if female else raw_day
    if not _date_exists(day, month, yy):
        return NikCheck(False, digits, say("validation.nik_date"))
    if digits[12:] == "0000":
        return NikCheck(False, digits, say("validation.nik_serial"))
    return NikCheck(True, digits, None, day, month, yy, female)


_SIXTEEN = re.compile(r"(?<!\d)\d{16}(?!\d)")


def split_identity(text: str) -> tuple[str, str, str] | None:
    """NIK, KK number and the rest (the birth date) from one message that holds
    all three ("3174... 3174... 15-08-1990"), or None when it holds fewer than
    two 16-digit numbers (then it is one answer)."""
    numbers = _SIXTEEN.findall(text)
    if len(numbers) != 2:
        return None
    rest = _SIXTEEN.sub(" ", text)
    return numbers[0], numbers[1], " ".join(rest.replace(",", " ").split())


def nik_birth_date_matches(nik: str, birth_date: date) -> bool:
    """Whether the NIK's date part (day, month, 2-digit year) matches.

    A mismatch is a warning to confirm, not a rejection: some real NIKs differ.
    """
    check = validate_nik(nik)
    return (
        check.valid
        and check.birth_date_day == birth_date.day
        and check.birth_date_month == birth_date.month
        and check.birth_date_yy == birth_date.year % 100
    )


def validate_kk(kk: str) -> KkCheck:
    """Check a family card (KK) number: 16 digits with a valid area prefix."""
    digits, error = _digits_error(say("validation.kk"), kk)
    if digits is None:
        return KkCheck(False, None, error)
    area_error = _area_error(
        say("validation.kk_inline"), say("validation.kk_card"), digits
    )
    if area_error:
        return KkCheck(False, digits, area_error)
    return KkCheck(True, digits, None)


# --- Phone --------------------------------------------------------------------

_PHONE_CHARS = re.compile(r"[\s\-.()]+")


def normalize_phone(text: str) -> str | None:
    """Indonesian mobile number -> E.164 ``+628...``; None if not a mobile.

    Accepts ``08xx``, ``628xx``, ``+62 8xx`` with spaces/dashes; the national
    form (leading 0) must have 10-13 digits and start with ``08[1-9]``.
    """
    raw = _PHONE_CHARS.sub("", text.strip())
    if raw.startswith("+62"):
        national = "0" + raw[3:]
    elif raw.startswith("62"):
        national = "0" + raw[2:]
    else:
        national = raw
    if not national.isdigit() or not re.fullmatch(r"08[1-9]\d{7,10}", national):
        return None
    return "+62" + national[1:]


# --- E-mail -------------------------------------------------------------------

KNOWN_EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "yahoo.com", "yahoo.co.id", "ymail.com", "rocketmail.com",
    "hotmail.com", "outlook.com", "outlook.co.id", "live.com", "icloud.com",
    "mail.com", "gmx.com", "aol.com", "yandex.com", "protonmail.com",
    "yahoo.co.uk", "yahoo.co.in", "me.com", "msn.com", "email.com",
)  # fmt: skip
# Frequent Indonesian typos that edit distance alone would not catch.
EMAIL_DOMAIN_TYPOS: dict[str, str] = {
    "gmail.co.id": "gmail.com",
    "gmail.id": "gmail.com",
    "gmail.com.id": "gmail.com",
    "gmail.com.com": "gmail.com",
}
# Typos with more than one plausible correction: warn, do not guess.
AMBIGUOUS_EMAIL_DOMAINS: dict[str, tuple[str, ...]] = {
    "yahoo.co": ("yahoo.com", "yahoo.co.id"),
    "yahoo.id": ("yahoo.com", "yahoo.co.id"),
}
_EMAIL_ALLOWED = re.compile(r"[a-z0-9.@]")
_DOMAIN = re.compile(r"(?:[a-z0-9]+\.)+[a-z]{2,}")
_LOCAL = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")


@dataclass(frozen=True)
class EmailCheck:
    """Result of :func:`validate_email`; ``suggestion`` is a corrected address."""

    valid: bool
    normalized: str | None
    error: str | None
    suggestion: str | None = None
    warning: str | None = None


def _distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment)."""
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            rows[i][j] = min(
                rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]


def suggest_domain(domain: str) -> tuple[str | None, tuple[str, ...]]:
    """(unique correction, ambiguous candidates) for a likely typo'd domain."""
    if domain in KNOWN_EMAIL_DOMAINS:
        return None, ()
    if domain in AMBIGUOUS_EMAIL_DOMAINS:
        return None, AMBIGUOUS_EMAIL_DOMAINS[domain]
    if domain in EMAIL_DOMAIN_TYPOS:
        return EMAIL_DOMAIN_TYPOS[domain], ()
    scored = sorted((_distance(domain, known), known) for known in KNOWN_EMAIL_DOMAINS)
    best_distance = scored[0][0]
    if best_distance > 2 or best_distance >= len(domain) // 3:
        return None, ()
    best = tuple(name for dist, name in scored if dist == best_distance)
    return (best[0], ()) if len(best) == 1 else (None, best)


def validate_email(text: str) -> EmailCheck:
    """Check an e-mail under the programme's rule: only a-z, 0-9, ``.`` and ``@``.

    Upper case is lowered, not rejected. Likely domain typos (``gmial.com``)
    give a ``suggestion``; ambiguous ones (``yahoo.co``) a ``warning``.
    """
    email = text.strip().lower()
    if not email:
        return EmailCheck(False, None, say("validation.email_empty"))
    bad = sorted({ch for ch in email if not _EMAIL_ALLOWED.fullmatch(ch)})
    if bad:
        space = say("validation.space")
        shown = " ".join(space if ch.isspace() else ch for ch in bad)
        return EmailCheck(False, None, say("validation.email_chars", shown=shown))
    if email.count("@") != 1:
        return EmailCheck(False, None, say("validation.email_at"))
    local, domain = email.split("@")
    if not _LOCAL.fullmatch(local):
        return EmailCheck(False, None, say("validation.email_local"))
    if not _DOMAIN.fullmatch(domain):
        return EmailCheck(False, None, say("validation.email_domain"))
    correction, candidates = suggest_domain(domain)
    suggestion = f"{local}@{correction}" if correction else None
    warning = None
    if candidates:
        joiner = f" {say('validation.or')} "
        options = joiner.join(f"{local}@{c}" for c in candidates)
        warning = say("validation.email_suggest", options=options)
    elif suggestion:
        warning = say("validation.email_suggest", options=suggestion)
    return EmailCheck(True, email, None, suggestion, warning)


# --- Masking for logs ---------------------------------------------------------


def mask_nik(nik: str) -> str:
    """``3174012345670001`` -> ``3174********0001``."""
    digits = _SEPARATORS.sub("", nik)
    if len(digits) <= 8:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def mask_phone(phone: str) -> str:
    """``08123456789`` -> ``+62812****789`` (other text: all but 3 masked)."""
    e164 = normalize_phone(phone)
    if e164 is None:
        raw = _PHONE_CHARS.sub("", phone)
        return "*" * max(len(raw) - 3, 0) + raw[-3:]
    return e164[:6] + "*" * (len(e164) - 9) + e164[-3:]


def mask_email(email: str) -> str:
    """``budi.santoso@gmail.com`` -> ``bu***@gmail.com``."""
    text = email.strip()
    if "@" not in text:
        return "***"
    local, _, domain = text.rpartition("@")
    keep = local[:2] if len(local) > 2 else local[:1]
    return f"{keep}***@{domain}"
