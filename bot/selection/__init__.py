"""A batch from closing to its results: lifecycle, the draw, what follows.

- `models`: the announcement's per-member messages (`announcement_message`)
  and the notices due later (`due_notice`: purchase-deadline reminders); the
  batch's run (`batch_run`: places, state, seed, figures) is a registry table;
- `lifecycle`: schedule, close, publish (state changes as conditional updates,
  so each step happens once however often it is asked for);
- `errors`: the refusals, with their codes and Indonesian messages;
- `draw`: the reproducible random order from the recorded seed;
- `selection`: the eligibility re-check and the draw, recorded crash-safely;
- `announcements`, `notices`: the rows written when results are published;
- `figures`: what a supervisor reviews.

Nothing here commits (the caller owns each transaction), except
`selection.select_batch`, which runs the selection's two transactions.
"""
