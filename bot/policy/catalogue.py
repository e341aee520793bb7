"""The one catalogue of user-facing text, rendered per channel and policy.

Two YAML files form it: ``answers.yml`` (programme answers, eligibility) and
``messages.yml`` (everything else the assistant, the gateway, the handoff, the
privacy desk and the console send to applicants). A text is addressed by its
dotted key (``"privacy.erased"``, ``"intents.ask_test.general"``).

A template is a string or a ``when:`` mapping: ``when: channel`` picks ``sms``
or ``chat`` (Telegram, the simulator, the shell), any other selector picks the
policy's variant (:func:`bot.policy.texts.selectors`). Placeholders are filled
from the policy (:func:`bot.policy.texts.policy_values`) and the caller's
values. Runs of spaces collapse, line breaks stay. Nothing is read at import
time; ``tests/unit/test_catalogue.py`` checks every entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from bot.policy.programme import Policy, load_policy
from bot.policy.texts import TEXTS_PATH, Template, load_texts, policy_values, selectors
from bot.policy.yaml_file import read_yaml

MESSAGES_PATH = Path(__file__).with_name("messages.yml")
CATALOGUE_PATHS = (TEXTS_PATH, MESSAGES_PATH)
SMS, CHAT = "sms", "chat"
CHANNEL_VARIANTS = (SMS, CHAT)
NOT_TEXT = frozenset({"keywords", "exclude", "contact_keywords"})
"""Keys whose values are matching data, not text anyone reads."""

_SPACES = re.compile(r"[ \t]+")
_FIELD = re.compile(r"(?<!\{)\{([a-z_][a-z0-9_]*)\}(?!\})")


@lru_cache(maxsize=2)
def _messages(path: Path = MESSAGES_PATH) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    return data


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    """Both files as one mapping of sections (a section in both is an error)."""
    answers, messages = load_texts(), _messages()
    clash = set(answers) & set(messages)
    if clash:
        raise ValueError(f"sections in both catalogue files: {sorted(clash)}")
    return {**answers, **messages}


def is_template(node: object) -> bool:
    """A string, or a ``when:`` mapping of variants."""
    return isinstance(node, str) or (
        isinstance(node, Mapping) and isinstance(node.get("when"), str)
    )


def _walk(node: object, prefix: str) -> Iterator[tuple[str, Template]]:
    if is_template(node):
        yield prefix, cast(Template, node)
    elif isinstance(node, Mapping):
        for name, child in node.items():
            if str(name) not in NOT_TEXT:
                yield from _walk(child, f"{prefix}.{name}" if prefix else str(name))


def entries() -> dict[str, Template]:
    """Every text of the catalogue by dotted key."""
    return dict(_entries())


@lru_cache(maxsize=1)
def _entries() -> tuple[tuple[str, Template], ...]:
    return tuple(_walk(catalogue(), ""))


def template(key: str) -> Template:
    """The template at ``key`` (KeyError when there is none)."""
    node: Any = catalogue()
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"no text {key!r} in the catalogue")
        node = node[part]
    if not is_template(node):
        raise KeyError(f"{key!r} is a section, not a text")
    return cast(Template, node)


def section(key: str) -> dict[str, Template]:
    """The texts directly under ``key`` (e.g. a reason per outcome)."""
    node: Any = catalogue()
    for part in key.split("."):
        node = node[part]
    return {str(name): child for name, child in node.items() if is_template(child)}


def variant(template_: Template, policy: Policy, channel: str | None = None) -> str:
    """The string a ``when:`` template resolves to for this policy and channel."""
    if isinstance(template_, str):
        return template_
    selector = str(template_["when"])
    if selector == "channel":
        chosen = SMS if channel == SMS else CHAT
    else:
        chosen = selectors(policy)[selector]
    if chosen not in template_:
        raise KeyError(f"template has no variant {chosen!r} for {selector!r}")
    return variant(cast(Template, template_[chosen]), policy, channel)


def fields(text: str) -> set[str]:
    """The placeholder names in ``text``."""
    return set(_FIELD.findall(text))


def fill(text: str, values: Mapping[str, object]) -> str:
    """Format ``text``; spaces collapse and each line is stripped."""
    filled = text.format_map(values)
    lines = (_SPACES.sub(" ", line).strip() for line in filled.split("\n"))
    return "\n".join(lines).strip()


def say(
    key: str,
    /,
    policy: Policy | None = None,
    channel: str | None = None,
    **values: object,
) -> str:
    """The text at ``key`` for ``policy`` (default: the active one) and
    ``channel`` ("sms", else a chat), filled with ``values``."""
    found = template(key)
    if policy is None and isinstance(found, str) and fields(found) <= set(values):
        return fill(found, values)  # nothing from a policy: none is loaded
    chosen = policy or load_policy()
    merged: dict[str, object] = dict(policy_values(chosen))
    merged.update(values)
    return fill(variant(found, chosen, channel), merged)


def says(prefix: str, policy: Policy | None = None, **values: object) -> dict[str, str]:
    """Every text under ``prefix``, rendered, by its last key part."""
    return {
        name: say(f"{prefix}.{name}", policy, None, **values)
        for name in section(prefix)
    }


def module_texts(names: Mapping[str, str]) -> Callable[[str], str]:
    """A module ``__getattr__`` that serves constant names from the catalogue
    (``{"APOLOGY": "gateway.apology"}``), read when first used, not on import."""

    def constant(name: str) -> str:
        if name in names:
            return say(names[name])
        raise AttributeError(name)

    return constant
