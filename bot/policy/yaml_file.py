"""Reading the policy's YAML files, once per file, with libyaml where PyYAML has it.

The three files (`programme.yml`, `answers.yml`, `messages.yml`) are about 85 KB
of YAML. PyYAML's pure-Python parser takes about 160 ms for them on this
project's machines, its libyaml parser (`CSafeLoader`, built into the pinned
wheel) about 12 ms, and both build the same data (`tests/unit/test_yaml_file.py`
compares them). The parsed data is kept per path, so callers that ask with and
without an explicit path share one parse; callers must not change it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it, else the Python one."""


@lru_cache(maxsize=16)
def read_yaml(path: Path) -> Any:
    """The data in the YAML file at ``path``, parsed once per path."""
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=SafeLoader)  # noqa: S506 (a safe loader)
