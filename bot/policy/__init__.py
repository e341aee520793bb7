"""Programme policy: versioned rules and amounts, eligibility, input validation.

Modules: ``programme`` (load a :class:`~bot.policy.programme.Policy`),
``eligibility`` (questions and verdicts), ``validation`` (parsers for dates,
NIK/KK, phone, e-mail, masking), ``answers`` (FAQ answers from the policy),
``texts`` (template rendering), ``yaml_file`` (the data files, parsed once) and
``warm`` (all of it read before a server is ready). Pure Python: no Rasa, no
I/O at import time.
"""
