"""No user-facing Indonesian sentence outside the text catalogue: the code of
bot/ and actions/ is scanned; what is found must be in the short allow-list of
text no applicant reads (the agents' console, the developer's simulator,
matching patterns)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bot", "actions")
INDONESIAN = re.compile(
    r"\b(?:kamu|kami|saya|untuk|tidak|sudah|belum|dengan|ketik|balas|maaf|silakan"
    r"|mohon|yang|atau|dan|ini|itu|sedang|bisa|akan|lagi|pesan|petugas|gelombang"
    r"|hari|menit|jam|besok|pukul|tanggal|lahir|nama|nomor|hapus|lolos|cocok"
    r"|pilih|terima|kasih|gagal|diterima|terdaftar|pendaftaran|ya|oke)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[A-Za-z]{2,}")

ALLOWED_MODULES = {
    # The agents' and admins' console: staff read it, applicants never do.
    "bot/console/admin.py",
    "bot/console/admin_batches.py",
    "bot/console/agents.py",
    "bot/console/app.py",
    "bot/console/batch_pages.py",
    "bot/console/canned.py",  # agent-side labels; the phrases are catalogue keys
    "bot/console/labels.py",
    "bot/console/panel.py",
    "bot/console/password_policy.py",
    "bot/console/sms.py",
    "bot/console/stats.py",
    "bot/console/views.py",
    "bot/console/web.py",
    "bot/selection/errors.py",  # refusals shown to the admin in the console
    "bot/handoff/tickets.py",  # transcript placeholder for agents
    # Development data and tools: the fake Dukcapil population's notes, the
    # web simulator's form errors.
    "bot/verification/population.py",
    "bot/channels/simulator.py",
    "bot/gateway/simulator.py",
}
ALLOWED_TEXTS = {
    # Patterns and keywords that match what people type, not what they read.
    r"\b(ulang|kirim ulang|kirim lagi|resend|lagi)\b",
    r"\b(setuju|sepakat|bersedia|boleh|mau)\b",
    r"\d+ (?:menit|jam)",  # recognises the gateway's own wait notice
    "alembic.ini",  # a file name
    " pukul   WIB",  # format_datetime: the date format, beside the month names
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _is_user_text(text: str) -> bool:
    words = WORD.findall(text)
    return len(words) >= 2 and len(INDONESIAN.findall(text)) >= 1


def stray_texts(path: Path) -> list[str]:
    """Indonesian strings written in one module's code (docstrings left out;
    the literal parts of an f-string are joined)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            ]
            for part in node.values:
                skip.add(id(part))
            text = " ".join(parts)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in skip:
                continue
            text = node.value
        else:
            continue
        if _is_user_text(text) and text not in ALLOWED_TEXTS:
            found.append(text)
    return found


def _modules() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))


def test_no_user_text_outside_the_catalogue() -> None:
    stray = {
        str(path.relative_to(ROOT)): texts
        for path in _modules()
        if str(path.relative_to(ROOT)) not in ALLOWED_MODULES
        and (texts := stray_texts(path))
    }
    assert stray == {}, "move these into bot/policy/messages.yml"


def test_the_allow_list_names_existing_modules() -> None:
    for module in ALLOWED_MODULES:
        assert (ROOT / module).is_file(), module


def test_the_scan_finds_a_stray_sentence(tmp_path: Path) -> None:
    module = tmp_path / "stray.py"
    module.write_text(
        '"""Docstrings are fine: ketik apa saja."""\n'
        'HELLO = "Halo, ketik DAFTAR untuk mulai."\n'
        'def f(n):\n    return f"Sisa {n} kali coba lagi."\n'
        'LOG = "rasa does not answer"\n',
        encoding="utf-8",
    )
    assert stray_texts(module) == [
        "Halo, ketik DAFTAR untuk mulai.",
        "Sisa   kali coba lagi.",
    ]
