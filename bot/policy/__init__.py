"""Programme policy: versioned rules and amounts, eligibility, input validation.

Modules: ``programme`` (load a :class:`~bot.policy.programme.Policy`),
``eligibility`` (questions and verdicts), ``validation`` (parsers for dates,
NIK/KK, phone, e-mail, masking), ``answers`` (FAQ answers from the policy) and
``texts`` (template rendering). Pure Python: no Rasa, no I/O at import time.
"""
