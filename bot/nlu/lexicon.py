"""Informal Indonesian spellings mapped to one standard form.

Covers the chat and SMS spellings applicants use (see ../shared/docs/intents.md) and
the programme's own jargon. Written for this project; extend it from real traffic.
"""

import re

SLANG: dict[str, str] = {
    # pronouns and address
    "sy": "saya", "aq": "saya", "aku": "saya", "ak": "saya", "gw": "saya",
    "gue": "saya", "gua": "saya", "sya": "saya", "sayah": "saya", "q": "saya",
    "km": "kamu", "kmu": "kamu", "lu": "kamu", "lo": "kamu", "anda": "kamu",
    "min": "admin", "mimin": "admin", "kak": "kakak", "ka": "kakak", "gan": "kakak",
    "sis": "kakak", "bro": "kakak", "pak": "bapak", "bu": "ibu",
    # negation
    "gak": "tidak", "ga": "tidak", "gk": "tidak", "g": "tidak", "nggak": "tidak",
    "ngga": "tidak", "enggak": "tidak", "engga": "tidak", "tdk": "tidak",
    "tak": "tidak", "ndak": "tidak", "kagak": "tidak", "kaga": "tidak",
    "gag": "tidak", "blm": "belum", "blom": "belum", "blum": "belum",
    "bkn": "bukan", "bukn": "bukan",
    # common words
    "sdh": "sudah", "udh": "sudah", "udah": "sudah", "dah": "sudah", "uda": "sudah",
    "sudh": "sudah", "yg": "yang", "yng": "yang", "dgn": "dengan", "dg": "dengan",
    "utk": "untuk", "untk": "untuk", "buat": "untuk", "tuk": "untuk",
    "krn": "karena", "karna": "karena", "soalnya": "karena", "tp": "tapi",
    "tpi": "tapi", "jg": "juga", "jgn": "jangan", "kalo": "kalau", "klo": "kalau",
    "kl": "kalau", "kalu": "kalau", "gmn": "bagaimana", "gmna": "bagaimana",
    "gimana": "bagaimana", "gmana": "bagaimana", "bgmn": "bagaimana",
    "gimn": "bagaimana", "knp": "kenapa", "knapa": "kenapa", "napa": "kenapa",
    "kpn": "kapan", "kapn": "kapan", "brp": "berapa", "brapa": "berapa",
    "dmn": "dimana", "dimn": "dimana", "mana": "mana", "apa2": "apa",
    "ap": "apa", "pa": "apa", "bs": "bisa", "bsa": "bisa", "bisaa": "bisa",
    "tlg": "tolong", "tolongin": "tolong", "mhn": "mohon", "trs": "terus",
    "trus": "terus", "lg": "lagi", "lgi": "lagi", "aja": "saja", "aj": "saja",
    "ja": "saja", "sj": "saja", "bgt": "sekali", "banget": "sekali",
    "bener": "benar", "bnr": "benar", "emg": "memang", "emang": "memang",
    "skrg": "sekarang", "skg": "sekarang", "skrang": "sekarang",
    "sampe": "sampai", "smpe": "sampai", "smp": "sampai", "msh": "masih",
    "masi": "masih", "dpt": "dapat", "dapet": "dapat", "ngk": "tidak",
    "byk": "banyak", "bnyk": "banyak", "org": "orang", "orng": "orang",
    "sm": "sama", "ama": "sama", "ato": "atau", "atw": "atau", "ny": "nya",
    "td": "tadi", "tdi": "tadi", "kmrn": "kemarin", "kemaren": "kemarin",
    "hr": "hari", "bln": "bulan", "thn": "tahun", "th": "tahun", "taun": "tahun",
    "tgl": "tanggal", "tggl": "tanggal", "no": "nomor", "nmr": "nomor",
    "nomer": "nomor", "hp": "handphone", "wa": "whatsapp", "sms": "sms",
    "ok": "oke", "okey": "oke", "okay": "oke", "okee": "oke", "sip": "oke",
    "yoi": "iya", "iy": "iya", "ya": "iya", "y": "iya", "yup": "iya",
    "mksh": "makasih", "makasi": "makasih", "mkasih": "makasih",
    "trims": "makasih", "thx": "makasih", "tq": "makasih", "thanks": "makasih",
    "ass": "assalamualaikum", "askum": "assalamualaikum",
    "assalamualaikum": "assalamualaikum", "p": "halo", "hai": "halo",
    "hallo": "halo", "hi": "halo", "hello": "halo",
    # programme jargon
    "daptar": "daftar", "dftr": "daftar", "dafar": "daftar",
    "pendaftran": "pendaftaran", "regis": "daftar", "registrasi": "daftar",
    "prakrja": "prakerja", "prakerj": "prakerja", "pra-kerja": "prakerja",
    "verif": "verifikasi", "verifkasi": "verifikasi", "vrifikasi": "verifikasi",
    "ferifikasi": "verifikasi", "pw": "password", "pass": "password",
    "sandi": "password", "katasandi": "password", "otp": "otp",
    "kode": "kode", "gel": "gelombang", "glombang": "gelombang",
    "gelmbang": "gelombang", "gelombg": "gelombang", "sertif": "sertifikat",
    "srtifikat": "sertifikat", "insentive": "insentif", "intensif": "insentif",
    "insentip": "insentif", "cair": "cair", "survey": "survei", "survay": "survei",
    "mhs": "mahasiswa", "mahasiswi": "mahasiswa", "kuliah": "kuliah",
    "ktp": "ktp", "e-ktp": "ktp", "ektp": "ktp", "kk": "kk", "nik": "nik",
    "gopay": "ewallet", "ovo": "ewallet", "dana": "dana", "linkaja": "ewallet",
    "e-wallet": "ewallet", "dompet": "ewallet", "rek": "rekening",
    "rekening": "rekening", "foto": "foto", "poto": "foto", "selfi": "selfie",
    "swafoto": "selfie", "upload": "unggah", "aplod": "unggah", "uplod": "unggah",
    "login": "masuk", "log-in": "masuk", "akun": "akun", "acc": "akun",
    "email": "email", "e-mail": "email", "imel": "email", "emel": "email",
    "cs": "petugas", "operator": "petugas", "admin2": "admin",
}

_REPEATS = re.compile(r"(\w)\1{2,}")
_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")


def normalize_token(token: str) -> str:
    """Lower-case, collapse letters repeated 3+ times, and map informal spellings."""
    word = _REPEATS.sub(r"\1", token.lower())
    word = _EDGE_PUNCTUATION.sub("", word) or word
    return SLANG.get(word, word)
