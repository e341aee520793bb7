"""Status texts: GSM-7, at most two SMS, and the one next action for each state.

Standings are built by hand for every combination of NIK step, batch membership
and batch schedule, with long values (September dates, three-digit batch
numbers, six-digit places left) so the size checks hold for real data too.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest

from bot.channels.sms.gsm7 import GSM7_BASIC, GSM7_EXTENSION, segment_info
from bot.channels.sms.render import MAX_SEGMENTS
from bot.policy.eligibility import EligibilityAnswers, assess
from bot.policy.programme import format_date, load_policy
from bot.registration.desk import JoinResult, Standing, Submission
from bot.registration.status import (
    FINAL_REASONS,
    JOIN_TEXTS,
    REGISTER_AGAIN,
    batch_line,
    failure_reason_text,
    first_training_deadline,
    join_text,
    next_action,
    nik_problem_text,
    nik_result_text,
    status_text,
    submission_text,
    when,
)
from bot.registry import ApplicantInfo, BatchInfo, MembershipInfo, StepInfo
from bot.registry.models import (
    RESULT_NOT_SELECTED,
    RESULT_PENDING,
    RESULT_SELECTED,
    STEP_DONE,
    STEP_EMAIL,
    STEP_FAILED,
    STEP_NIK,
    STEP_NOT_STARTED,
    STEP_PENDING,
    STEPS,
)
from bot.verification.nik import REASONS

MOMENT = datetime(2026, 9, 20, 3, 0)
FAILURES = tuple(reason for reason in REASONS if reason != "verified")
OPEN = BatchInfo(
    id=1,
    number=123,
    opens_at=datetime(2026, 9, 10, 12, 0),
    closes_at=datetime(2026, 9, 30, 16, 59),  # 23.59 WIB
    quota=164000,
    joined_count=17,
)
UPCOMING = BatchInfo(
    id=2,
    number=124,
    opens_at=datetime(2026, 9, 30, 17, 0),  # 1 Oktober, 00.00 WIB
    closes_at=datetime(2026, 10, 30, 16, 59),
    quota=164000,
    joined_count=0,
)
OTHER_OPEN = BatchInfo(
    id=3,
    number=125,
    opens_at=datetime(2026, 9, 12, 12, 0),
    closes_at=datetime(2026, 9, 28, 16, 59),
    quota=164000,
    joined_count=163999,
)
NIK_STATES = (
    (STEP_PENDING, None),
    *((STEP_FAILED, reason) for reason in FAILURES),
    (STEP_DONE, None),
    (STEP_NOT_STARTED, None),
)
SCHEDULES = (
    ((OPEN,), UPCOMING),
    ((), UPCOMING),
    ((), None),
    ((OPEN, OTHER_OPEN), None),
)
MEMBERSHIPS = (None, RESULT_PENDING, RESULT_SELECTED, RESULT_NOT_SELECTED)
TOO_OLD = assess(
    load_policy("2021"),
    EligibilityAnswers(birth_date=date(1950, 1, 1)),
    date(2026, 11, 20),
).reasons


def applicant(verified: bool = True) -> ApplicantInfo:
    """An applicant with the longest plausible personal data."""
    return ApplicantInfo(
        id=1,
        nik="3174015509900001",
        kk_number="3174010101200001",
        full_name="SITI RAHAYU PUTRI WULANDARI",
        birth_date=date(1990, 9, 15),
        email="siti.rahayu.putri.wulandari@gmail.com",
        email_verified_at=MOMENT if verified else None,
        phone="+6281234567890",
        policy_version="2021",
        status="registered",
        created_at=MOMENT,
    )


def standing(
    nik_status: str = STEP_PENDING,
    reason: str | None = None,
    membership: str | None = None,
    opened: tuple[BatchInfo, ...] = (),
    upcoming: BatchInfo | None = None,
    email_done: bool = True,
) -> Standing:
    """A standing with the NIK step, membership result and schedule given."""
    steps = {step: StepInfo(step=step, status=STEP_NOT_STARTED) for step in STEPS}
    if email_done:
        steps[STEP_EMAIL] = StepInfo(STEP_EMAIL, STEP_DONE, completed_at=MOMENT)
    steps[STEP_NIK] = StepInfo(STEP_NIK, nik_status, failure_reason=reason)
    memberships = []
    if membership is not None:
        memberships.append(
            MembershipInfo(
                id=1,
                applicant_id=1,
                batch_id=OPEN.id,
                batch_number=OPEN.number,
                joined_at=MOMENT,
                result=membership,
                decided_at=None if membership == RESULT_PENDING else MOMENT,
                published_at=None if membership == RESULT_PENDING else MOMENT,
            )
        )
    return Standing(
        applicant=applicant(email_done),
        steps=steps,
        memberships=memberships,
        open_batches=list(opened),
        upcoming=upcoming,
        nik_job=None,
    )


def assert_sms_sized(text: str) -> None:
    """GSM-7 only, at most two segments, no template left over."""
    assert text.strip(), "empty text"
    bad = {char for char in text if char not in GSM7_BASIC | GSM7_EXTENSION}
    assert not bad, f"not GSM-7: {sorted(bad)!r} in {text!r}"
    info = segment_info(text)
    assert info.segments <= MAX_SEGMENTS, f"{info.segments} SMS: {text!r}"
    assert "{" not in text and "}" not in text, text


ALL_STANDINGS = [
    pytest.param(
        standing(status, reason, member, opened, upcoming),
        id=f"{status}-{reason}-{member}-{len(opened)}open-{bool(upcoming)}",
    )
    for (status, reason), member, (opened, upcoming) in itertools.product(
        NIK_STATES, MEMBERSHIPS, SCHEDULES
    )
]


# --- size and alphabet -----------------------------------------------------------


@pytest.mark.parametrize("state", ALL_STANDINGS)
def test_every_status_text_fits_two_gsm7_sms(state: Standing) -> None:
    for text in (
        status_text(state),
        next_action(state),
        nik_result_text(state),
        nik_problem_text(state),
    ):
        assert_sms_sized(text)


@pytest.mark.parametrize("outcome", sorted({*JOIN_TEXTS, "choose"}))
@pytest.mark.parametrize(
    ("alternative", "alternative_open"),
    [(None, False), (OTHER_OPEN, True), (UPCOMING, False)],
    ids=["no-alternative", "open-alternative", "upcoming-alternative"],
)
def test_every_join_text_fits_two_gsm7_sms(
    outcome: str, alternative: BatchInfo | None, alternative_open: bool
) -> None:
    result = JoinResult(
        outcome,
        batch=OPEN,
        alternative=alternative,
        choices=(OPEN, OTHER_OPEN, UPCOMING) if outcome == "choose" else (),
        reasons=TOO_OLD if outcome == "not_eligible" else (),
        alternative_open=alternative_open,
    )

    assert_sms_sized(join_text(result))


@pytest.mark.parametrize(
    "submission",
    [
        Submission("queued", 1),
        Submission("corrected", 1),
        Submission("registered_already", 1),
        Submission("nik_taken"),
        Submission("kk_full"),
        Submission("email_unproven"),
        Submission("not_eligible", reasons=TOO_OLD),
        Submission("no_consent"),
    ],
    ids=lambda submission: submission.outcome,
)
def test_every_submission_text_fits_two_gsm7_sms(submission: Submission) -> None:
    assert_sms_sized(submission_text(submission))


# --- the next action -------------------------------------------------------------


def test_a_pending_check_is_waited_for() -> None:
    assert next_action(standing(STEP_PENDING)) == (
        "tunggu hasil cek NIK, kami kabari di sini."
    )


@pytest.mark.parametrize("reason", ["unknown_nik", "data_mismatch"])
def test_wrong_data_is_typed_again(reason: str) -> None:
    assert next_action(standing(STEP_FAILED, reason)) == REGISTER_AGAIN
    assert "DAFTAR" in REGISTER_AGAIN


def test_an_unavailable_check_is_started_again() -> None:
    assert next_action(standing(STEP_FAILED, "unavailable")) == (
        "ketik DAFTAR untuk mengulang cek NIK."
    )


@pytest.mark.parametrize("reason", sorted(FINAL_REASONS))
def test_a_final_failure_points_to_a_person(reason: str) -> None:
    text = next_action(standing(STEP_FAILED, reason, opened=(OPEN,)))

    assert text == ("pendaftaran tidak bisa lanjut. Jika datamu salah, ketik PETUGAS.")


def test_a_verified_applicant_joins_the_open_batch() -> None:
    text = next_action(standing(STEP_DONE, opened=(OPEN,), upcoming=UPCOMING))

    assert text == (
        "ketik GABUNG untuk ikut Gelombang 123 "
        "(tutup 30 September 2026 pukul 23.59 WIB)."
    )


def test_a_verified_applicant_waits_for_the_next_batch() -> None:
    text = next_action(standing(STEP_DONE, upcoming=UPCOMING))

    assert text == (
        "tunggu Gelombang 124, dibuka 1 Oktober 2026 pukul 00.00 WIB. "
        "Ketik GABUNG saat sudah dibuka."
    )


def test_with_no_batch_planned_the_applicant_waits() -> None:
    assert next_action(standing(STEP_DONE)) == "tunggu pengumuman gelombang berikutnya."


def test_in_a_batch_the_selection_is_waited_for() -> None:
    state = standing(STEP_DONE, membership=RESULT_PENDING, opened=(OPEN,))

    assert next_action(state) == "tunggu pengumuman seleksi Gelombang 123."


def test_once_selected_the_first_training_is_bought() -> None:
    state = standing(STEP_DONE, membership=RESULT_SELECTED, opened=(OPEN,))

    action = next_action(state)
    assert "beli pelatihan pertamamu" in action
    assert "dicabut" in action and "hangus" in action


@pytest.mark.parametrize(
    ("version", "days"), [("2020", 30), ("2021", 30), ("2023", 15)]
)
def test_the_selected_are_told_the_purchase_deadline(
    monkeypatch: pytest.MonkeyPatch, version: str, days: int
) -> None:
    monkeypatch.setenv("PRAKERJA_POLICY", version)
    decided = datetime(2023, 3, 1, 3, 0)  # 10.00 WIB
    action = first_training_deadline(decided)
    assert format_date(date(2023, 3, 1) + timedelta(days=days)) in action
    assert "kepesertaan dicabut dan saldo hangus" in action
    assert f"dalam {days} hari setelah lolos" in first_training_deadline(None)
    joined = join_text(JoinResult("selected"))
    assert f"{days} hari" in joined and "dicabut" in joined


def test_not_selected_the_next_open_batch_is_joined() -> None:
    state = standing(STEP_DONE, membership=RESULT_NOT_SELECTED, opened=(OTHER_OPEN,))

    assert next_action(state).startswith("ketik GABUNG untuk ikut Gelombang 125 ")


def test_an_unchecked_nik_means_registering_on() -> None:
    assert next_action(standing(STEP_NOT_STARTED)) == (
        "ketik DAFTAR untuk melanjutkan pendaftaran."
    )


# --- the status lines ------------------------------------------------------------


def test_the_status_lists_every_step_and_the_next_action() -> None:
    state = standing(STEP_DONE, membership=RESULT_PENDING, opened=(OPEN,))

    assert status_text(state).splitlines() == [
        "Status pendaftaran Prakerja:",
        "Email: terverifikasi",
        "NIK: cocok dengan Dukcapil",
        "Gelombang: Gelombang 123",
        "Seleksi: menunggu pengumuman",
        "Berikutnya: tunggu pengumuman seleksi Gelombang 123.",
    ]


@pytest.mark.parametrize(
    ("state", "nik_line", "batch_line_", "selection_line"),
    [
        (standing(STEP_PENDING), "NIK: sedang dicek", "Gelombang: belum ikut", "-"),
        (
            standing(STEP_FAILED, "data_mismatch"),
            "NIK: gagal, nama, tanggal lahir atau KK tidak cocok dengan Dukcapil",
            "Gelombang: belum ikut",
            "-",
        ),
        (
            standing(STEP_DONE, membership=RESULT_SELECTED),
            "NIK: cocok dengan Dukcapil",
            "Gelombang: Gelombang 123",
            "lolos",
        ),
        (
            standing(STEP_DONE, membership=RESULT_NOT_SELECTED),
            "NIK: cocok dengan Dukcapil",
            "Gelombang: Gelombang 123",
            "belum lolos",
        ),
    ],
    ids=["pending", "mismatch", "selected", "not-selected"],
)
def test_the_status_names_each_state(
    state: Standing, nik_line: str, batch_line_: str, selection_line: str
) -> None:
    lines = status_text(state).splitlines()

    assert nik_line in lines
    assert batch_line_ in lines
    assert f"Seleksi: {selection_line}" in lines
    assert lines[-1] == f"Berikutnya: {next_action(state)}"


def test_an_unverified_email_is_shown() -> None:
    state = standing(STEP_PENDING, email_done=False)

    assert "Email: belum" in status_text(state).splitlines()


def test_the_status_shows_no_personal_data() -> None:
    state = standing(STEP_DONE, membership=RESULT_PENDING, opened=(OPEN,))
    person = state.applicant

    text = status_text(state) + nik_result_text(state) + nik_problem_text(state)

    for secret in (person.nik, person.kk_number, person.full_name, person.phone):
        assert secret is not None and secret not in text
    assert person.email is not None and person.email not in text


# --- NIK results -----------------------------------------------------------------


def test_a_verified_nik_is_told_with_the_next_step() -> None:
    text = nik_result_text(standing(STEP_DONE, opened=(OPEN,)))

    assert text.startswith("Cek NIK selesai: cocok dengan Dukcapil.")
    assert "Gelombang 123 buka sampai " in text  # the menu offers to join it
    later = nik_result_text(standing(STEP_DONE, upcoming=UPCOMING))
    assert later.endswith(
        "Berikutnya: " + next_action(standing(STEP_DONE, upcoming=UPCOMING))
    )


@pytest.mark.parametrize("reason", FAILURES)
def test_a_failed_nik_is_told_with_the_full_reason(reason: str) -> None:
    state = standing(STEP_FAILED, reason)

    result = nik_result_text(state)
    problem = nik_problem_text(state)

    told = failure_reason_text(reason)
    assert told in result and told in problem
    if reason != "unavailable":
        assert told == REASONS[reason]
    assert result.endswith(next_action(state))
    assert problem.endswith(next_action(state))


def test_a_check_that_gave_up_does_not_promise_a_retry() -> None:
    text = nik_result_text(standing(STEP_FAILED, "unavailable"))

    assert "dicoba lagi nanti" not in text
    assert "tidak ditolak" in text and text.endswith(
        "ketik DAFTAR untuk mengulang cek NIK."
    )


def test_a_pending_nik_problem_says_it_is_being_checked() -> None:
    text = nik_problem_text(standing(STEP_PENDING))

    assert text.startswith("NIK kamu sedang dicek.")


# --- submissions and joining -----------------------------------------------------


def test_a_queued_submission_says_the_nik_is_being_checked() -> None:
    assert "sedang dicek" in submission_text(Submission("queued", 1))
    assert submission_text(Submission("corrected", 1)).startswith("Perbaikan data")


def test_a_refused_submission_says_why() -> None:
    assert submission_text(Submission("kk_full")).startswith(REASONS["kk_full"])
    assert TOO_OLD[0] in submission_text(Submission("not_eligible", reasons=TOO_OLD))
    assert "persetujuan" in submission_text(Submission("no_consent"))
    assert "sudah terdaftar" in submission_text(Submission("nik_taken"))


def test_joining_names_the_batch() -> None:
    assert join_text(JoinResult("joined", OPEN)).startswith(
        "Berhasil! Kamu ikut Gelombang 123."
    )
    assert "Gelombang 123" in join_text(JoinResult("already_joined", OPEN))
    assert "Gelombang 123" in join_text(JoinResult("waiting", OPEN))


def test_a_refusal_offers_the_open_alternative() -> None:
    text = join_text(JoinResult("full", OPEN, OTHER_OPEN, alternative_open=True))

    assert text == (
        "Maaf, kuota Gelombang 123 sudah penuh. Gelombang 125 masih dibuka: "
        "ketik GABUNG 125."
    )


def test_a_refusal_names_when_the_next_batch_opens() -> None:
    text = join_text(JoinResult("closed", OPEN, UPCOMING))

    assert text == (
        "Gelombang 123 sudah ditutup. Gelombang 124 dibuka 1 Oktober 2026 pukul "
        "00.00 WIB."
    )


def test_with_nothing_open_or_planned_we_promise_to_tell() -> None:
    text = join_text(JoinResult("none_open"))

    assert text == (
        "Belum ada gelombang yang dibuka. Kami kabari saat gelombang baru dibuka."
    )


def test_choosing_lists_each_open_batch() -> None:
    text = join_text(JoinResult("choose", choices=(OPEN, OTHER_OPEN)))

    assert text.splitlines() == [
        "Pilih gelombang (ketik GABUNG dan nomornya):",
        batch_line(OPEN),
        batch_line(OTHER_OPEN),
    ]
    assert batch_line(OPEN) == (
        "Gelombang 123: tutup 30 September 2026 pukul 23.59 WIB, sisa 163.983 tempat"
    )


def test_not_eligible_to_join_gives_the_reasons() -> None:
    text = join_text(JoinResult("not_eligible", reasons=TOO_OLD))

    assert text == "Maaf, kamu tidak bisa ikut gelombang. " + TOO_OLD[0]


def test_moments_are_told_in_wib() -> None:
    assert when(datetime(2026, 11, 30, 16, 59)) == "30 November 2026 pukul 23.59 WIB"
    assert when(datetime(2026, 11, 30, 17, 0)) == ("1 Desember 2026 pukul 00.00 WIB")
