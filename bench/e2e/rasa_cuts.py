"""Rasa's CPU for the model's work of a message (parse, a prediction, the
action, a prediction), with Rasa's own code and with each of our cuts added in
turn (`bot.rasa_graph_runner`, then `bot.rasa_slot_copy`, then
`bot.rasa_past_states` replaying as Rasa does, then carrying the states on
with `bot.rasa_states_replay`, then `bot.rasa_debug_copies`, then
`bot.rasa_rule_keys`, then `bot.rasa_applied_events`, then
`bot.rasa_count_vectors`), in one process, alternating.

    python -m bench.e2e.rasa_cuts [--rounds 3] [--conversations 10] [--times 1]

Each measurement runs a short conversation (greeting, FAQ, registration start,
consent, an e-mail, status, benefits, thanks; `--times` times over in one
session) through the trained model `--conversations` times, five times, and
keeps the least CPU per message.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from bench.soak.stack import MODEL

TEXTS = [
    "halo",
    "gmn cara daftar",
    "mau daftar",
    "iya",
    "budi.santoso@gmail.com",
    "cek status",
    "berapa insentifnya",
    "makasih",
]
REPEATS = 5


def conversation(agent: Any, loop: asyncio.AbstractEventLoop, times: int = 1) -> None:
    """The texts, `times` over, as one conversation: each parsed, two
    predictions after it."""
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = agent.processor
    names = agent.domain.action_names_or_texts
    tracker = DialogueStateTracker.from_events(
        "bench", [ActionExecuted("action_listen")], agent.domain.slots
    )
    for text in TEXTS * times:
        message = UserMessage(text, sender_id="bench")
        parsed = loop.run_until_complete(processor.parse_message(message, tracker))
        tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        prediction = processor._predict_next_with_tracker(tracker)
        tracker.update(ActionExecuted(names[prediction.max_confidence_index]))
        processor._predict_next_with_tracker(tracker)
        tracker.update(ActionExecuted("action_listen"))


def cpu_ms_per_message(
    run: Callable[[], None], conversations: int, times: int = 1
) -> float:
    """The least CPU per message over REPEATS runs of `conversations`."""
    run()  # warm
    best = float("inf")
    for _ in range(REPEATS):
        started = time.thread_time()
        for _ in range(conversations):
            run()
        spent = time.thread_time() - started
        best = min(best, spent * 1000 / (conversations * len(TEXTS) * times))
    return best


def main() -> None:
    """Print Rasa's CPU per message with each cut, round by round."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument(
        "--times",
        type=int,
        default=1,
        help="the texts this many times over in one session",
    )
    args = parser.parse_args()

    from rasa.core.agent import Agent
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )
    from rasa.shared.core.slots import Slot
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    from bot import (
        rasa_applied_events,
        rasa_count_vectors,
        rasa_debug_copies,
        rasa_past_states,
        rasa_rule_keys,
    )
    from bot.rasa_graph_runner import RASA_RUN, run_in_order
    from bot.rasa_slot_copy import copy_slot
    from bot.rasa_states_replay import past_states as carried_on

    configure_logging_and_warnings(logging.INFO, warn_only_once=True)  # as `rasa
    configure_structlog(logging.INFO)  # run` does: no debug logs built or printed
    agent = Agent.load(str(MODEL))
    rasas_copy = {module: module.copy for module in rasa_debug_copies.MODULES}
    loop = asyncio.new_event_loop()

    def run() -> None:
        conversation(agent, loop, args.times)

    def cpu() -> float:
        return cpu_ms_per_message(run, args.conversations, args.times)

    print("| round | Rasa's code | + graph in order | + short slot copy "
          "| + past states once | + states carried on "
          "| + debug copies when logged | + rules left out first "
          "| + applied events folded on | + each token counted once |")  # fmt: skip
    print("| ---: |" + " ---: |" * 9)
    for number in range(1, args.rounds + 1):
        DaskGraphRunner.run = RASA_RUN
        if "__copy__" in vars(Slot):
            del Slot.__copy__
        DialogueStateTracker.past_states = rasa_past_states._RASA_PAST_STATES
        if "format_tracker_states" in vars(RulePolicy):
            del RulePolicy.format_tracker_states
        RulePolicy._get_possible_keys = rasa_rule_keys._RASA_GET_POSSIBLE_KEYS
        for module, rasas in rasas_copy.items():
            module.copy = rasas  # type: ignore[attr-defined]
        DialogueStateTracker.applied_events = rasa_applied_events.RASA_APPLIED_EVENTS
        CountVectorsFeaturizer._create_features = (
            rasa_count_vectors.RASA_CREATE_FEATURES
        )
        rasa = cpu()
        DaskGraphRunner.run = run_in_order
        ordered = cpu()
        Slot.__copy__ = copy_slot
        copied = cpu()
        rasa_past_states.install()
        rasa_past_states.replay_past_states = rasa_past_states._RASA_PAST_STATES
        states = cpu()
        rasa_past_states.replay_past_states = carried_on
        carried = cpu()
        rasa_debug_copies.install()
        debug = cpu()
        rasa_rule_keys.install()
        rules = cpu()
        rasa_applied_events.install()
        applied = cpu()
        rasa_count_vectors.install()
        counted = cpu()
        print(f"| {number} | {rasa:.2f} ms | {ordered:.2f} ms | {copied:.2f} ms "
              f"| {states:.2f} ms | {carried:.2f} ms | {debug:.2f} ms "
              f"| {rules:.2f} ms | {applied:.2f} ms | {counted:.2f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
