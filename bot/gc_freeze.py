"""What a server keeps for its whole life, set aside from garbage collection.

Once started, each of our long-running processes holds objects that never
become garbage: modules, classes, the app and its routes, and in Rasa the
model (about 650,000 objects in Rasa, 175,000 in the action server and
155,000 in the gateway, counted with `gc.get_objects()` under load). CPython's
oldest-generation collections walk every one of them each time: under the
whole-path load Rasa ran 13 of them, at about 200 ms of CPU each (the event
loop stopped meanwhile), and they were most of its collector's time.
`gc.freeze()` (the standard library's) moves the objects alive now to a
permanent generation that collections ignore; garbage made later is
collected as before. A collection runs first, so no garbage is frozen.

The youngest generation is also collected less often (`YOUNG_THRESHOLD`
container objects allocated and not freed, instead of 700): a turn makes and
drops thousands of objects, nearly all freed by their reference counts, so a
collection every 700 ran about once a message for little garbage (Rasa:
2,227 collections of the youngest generation and 202 of the middle one for
2,792 messages). Each collection walks only the young objects alive at that
moment, so fewer of them do less work in all, and a cycle's garbage waits
for at most that many allocations (a few megabytes).

Measured in one `bench.e2e` run each on SQLite (200 people, 50 in flight),
collector CPU summed from `gc.callbacks`: Rasa 3.57 s before, 2.46 s frozen,
0.80 s frozen with the higher threshold; the gateway 0.48 s, 0.37 s, 0.20 s.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 10_000
"""Allocations (less frees) of container objects between two collections of
the youngest generation, once started (CPython's default: 700)."""

_frozen = False


def freeze_startup_objects() -> None:
    """Collect, then leave every object alive now out of later collections,
    and collect the youngest generation less often. Once per process: a
    second call (a model loaded again, a test starting a second app) does
    nothing."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.info(
        "%d objects of the started process left out of collections",
        gc.get_freeze_count(),
    )


async def freeze_after_start(*_: object) -> None:
    """`freeze_startup_objects` as a Sanic `after_server_start` listener (Rasa
    and the action server: their model and actions are loaded by then)."""
    freeze_startup_objects()
