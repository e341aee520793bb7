"""The registry: applicants, channel identities, consent, registration steps,
batches (gelombang), per-KK counts, verification jobs and e-mail codes.

Tables are in `models` (migrated by Alembic, `migrations/`); the functions in the
modules below take a SQLAlchemy `Session`, return plain frozen dataclasses
(`records`) and never commit: the caller decides each transaction, e.g.

    with sessions.begin() as session:
        applicant = register_applicant(session, nik=..., kk_cap=policy_cap, ...)
        link_identity(session, identity.id, applicant.id, LINK_REGISTRATION)

Expected refusals are typed (`errors`) and raised only after the function has
undone its own writes. The rules that must survive simultaneous requests (one
applicant per NIK, batch quotas, KK caps, one lease per job) are enforced by the
database with constraints and conditional updates, on SQLite and PostgreSQL.
"""

from bot.registry.applicants import (
    correct_applicant,
    find_applicant,
    get_applicant,
    kk_registered_count,
    register_applicant,
    release_kk_slot,
    reserve_kk_slot,
    set_applicant_status,
)
from bot.registry.batches import (
    Decision,
    batch_by_number,
    ensure_batch,
    ensure_policy_batches,
    get_batch,
    join_batch,
    membership,
    memberships_of,
    next_batch,
    open_batches,
    pending_membership,
    record_decisions,
    record_selection,
    upcoming_batch,
)
from bot.registry.consents import (
    active_consent,
    attach_consents,
    grant_consent,
    withdraw_consent,
)
from bot.registry.email_codes import (
    code_usable,
    codes_sent_since,
    create_email_code,
    proven_email,
    verify_email_code,
)
from bot.registry.errors import (
    AlreadyInBatch,
    AlreadyRegistered,
    ApplicantHasIdentity,
    ApplicantNotFound,
    BatchClosed,
    BatchFull,
    BatchNotFound,
    IdentityLinked,
    IdentityNotFound,
    KkCapReached,
    NotEligible,
    RegistryError,
)
from bot.registry.identities import (
    find_identity,
    get_identity,
    get_or_create_identity,
    identities_of,
    link_identity,
    owner_of,
    unlink_identity,
)
from bot.registry.jobs import (
    claim_jobs,
    complete_job,
    enqueue_job,
    fail_job,
    get_job,
    jobs_of,
    retry_job,
)
from bot.registry.records import (
    ApplicantInfo,
    BatchInfo,
    CodeCheck,
    ConsentInfo,
    IdentityInfo,
    IssuedCode,
    JobInfo,
    MembershipInfo,
    StepInfo,
)
from bot.registry.steps import applicant_steps, set_step

__all__ = [
    "AlreadyInBatch",
    "AlreadyRegistered",
    "ApplicantHasIdentity",
    "ApplicantInfo",
    "ApplicantNotFound",
    "BatchClosed",
    "BatchFull",
    "BatchInfo",
    "BatchNotFound",
    "CodeCheck",
    "ConsentInfo",
    "Decision",
    "IdentityInfo",
    "IdentityLinked",
    "IdentityNotFound",
    "IssuedCode",
    "JobInfo",
    "KkCapReached",
    "MembershipInfo",
    "NotEligible",
    "RegistryError",
    "StepInfo",
    "active_consent",
    "applicant_steps",
    "attach_consents",
    "batch_by_number",
    "claim_jobs",
    "code_usable",
    "codes_sent_since",
    "correct_applicant",
    "complete_job",
    "create_email_code",
    "enqueue_job",
    "ensure_batch",
    "ensure_policy_batches",
    "fail_job",
    "find_applicant",
    "find_identity",
    "get_applicant",
    "get_batch",
    "get_identity",
    "get_job",
    "get_or_create_identity",
    "grant_consent",
    "identities_of",
    "jobs_of",
    "join_batch",
    "kk_registered_count",
    "link_identity",
    "membership",
    "memberships_of",
    "next_batch",
    "open_batches",
    "owner_of",
    "pending_membership",
    "proven_email",
    "record_decisions",
    "record_selection",
    "register_applicant",
    "release_kk_slot",
    "reserve_kk_slot",
    "retry_job",
    "set_applicant_status",
    "set_step",
    "unlink_identity",
    "upcoming_batch",
    "verify_email_code",
    "withdraw_consent",
]
