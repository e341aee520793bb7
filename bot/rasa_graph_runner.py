"""Inside Rasa: run the model's graph in order, without Dask's scheduler.

Rasa 3.6 runs its model graph (the NLU pipeline on each message, the policies on
each prediction, about three runs per message) with `DaskGraphRunner`, which on
every run builds the minimal schema for the targets, formats its inputs (the
tracker) into a debug message whatever the log level, and hands a dictionary
graph to Dask's synchronous scheduler: about a tenth of the Rasa server's CPU on
the whole path (a sampling profile of `make bench-e2e`, docs/benchmarks.md). The
nodes are plain functions of their parents' outputs and Dask's synchronous
scheduler calls them one after another anyway, so `install` replaces `run` with
the same calls in a topological order computed once per set of targets: the same
nodes, the same arguments (a parent that is neither a node nor an input is passed
as its name, as Dask does), the same result and the same errors. Training keeps
Rasa's runner (`rasa train` never imports this module).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

log = logging.getLogger(__name__)
RASA_RUN = DaskGraphRunner.run
"""Rasa's own `run` (kept for the tests that compare the two)."""
_ORDER = "_prakerja_run_order"
"""The runner's attribute caching, per tuple of targets, the nodes to run and
what each needs, in a topological order."""

Plan = list[tuple[str, tuple[str, ...]]]


def run_order(runner: DaskGraphRunner, targets: list[str]) -> Plan:
    """The nodes `targets` depend on (themselves included), each after the
    nodes it needs, with the names of what it needs in Rasa's order."""
    nodes = runner._graph_schema.minimal_graph_schema(targets).nodes
    order: Plan = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name not in nodes:
            return
        if name in path:
            raise GraphRunError(f"the graph has a cycle through '{name}'")
        needs = tuple(nodes[name].needs.values())
        for need in needs:
            place(need, (*path, name))
        placed.add(name)
        order.append((name, needs))

    for name in nodes:
        place(name, ())
    return order


def run_in_order(
    self: DaskGraphRunner,
    inputs: dict[str, Any] | None = None,
    targets: list[str] | None = None,
) -> dict[str, Any]:
    """`DaskGraphRunner.run`, its nodes called in a cached order."""
    run_targets = targets if targets else self._graph_schema.target_names
    plans: dict[tuple[str, ...], tuple[Plan, frozenset[str]]]
    plans = self.__dict__.setdefault(_ORDER, {})
    key = tuple(run_targets)
    if key not in plans:
        plan = run_order(self, list(run_targets))
        plans[key] = plan, frozenset(name for name, _ in plan)
    plan, planned = plans[key]
    outputs: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and (value in planned or value in outputs):
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure "
                f"that none of the input names passed to the `run` method are the "
                f"same as node names in the graph schema."
            )
        outputs[name] = (name, value)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("running graph targets %s", run_targets)
    try:
        for name, needs in plan:
            if name in outputs:  # an input of that name stands for the node
                continue
            node = self._instantiated_nodes[name]
            outputs[name] = node(*(outputs.get(need, need) for need in needs))
    except RuntimeError as error:
        raise GraphRunError("Error running runner.") from error
    return dict(outputs.get(target, target) for target in run_targets)


def install() -> None:
    """Make Rasa's graph runner call its nodes in a cached order (idempotent)."""
    DaskGraphRunner.run = run_in_order
