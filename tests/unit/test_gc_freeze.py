"""`bot.gc_freeze` in a process of its own (a freeze lasts for the process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import gc, json, weakref
    from bot.gc_freeze import YOUNG_THRESHOLD, freeze_startup_objects

    class Node:
        pass

    kept = [Node() for _ in range(5000)]
    garbage = Node()
    garbage.self = garbage  # a cycle only the collector frees
    garbage_ref = weakref.ref(garbage)
    del garbage
    before = gc.get_threshold()
    freeze_startup_objects()
    first = gc.get_freeze_count()
    later = [Node() for _ in range(5000)]
    freeze_startup_objects()
    print(json.dumps({
        "before": before, "after": gc.get_threshold(), "young": YOUNG_THRESHOLD,
        "first": first, "second": gc.get_freeze_count(),
        "garbage_frozen": garbage_ref() is not None,
    }))
    """
)


def test_a_freeze_keeps_the_live_objects_out_once_and_collects_young_less_often() -> (
    None
):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["first"] >= 5000  # the live objects, the kept list's included
    assert not seen["garbage_frozen"]  # collected before the freeze
    assert seen["second"] == seen["first"]  # the second call froze nothing more
    assert seen["after"] == [seen["young"], *seen["before"][1:]]
    assert seen["young"] > seen["before"][0]
