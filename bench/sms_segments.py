"""How many SMS segments the assistant's answers cost on a feature phone.

Usage: python -m bench.sms_segments

Renders every programme answer (each FAQ intent, its general answer and every
sub-topic) under every policy version through the SMS channel, as one turn, and
counts the segments of each SMS and how many answers needed paging ("balas 9").
"""

from __future__ import annotations

import statistics
from collections import Counter

from bot.channels.base import Reply
from bot.channels.sms import SmsChannel
from bot.channels.sms.gsm7 import is_gsm7, segment_info
from bot.policy.answers import FAQ_INTENTS
from bot.policy.programme import known_versions, load_policy
from bot.policy.texts import load_texts, render_text


def answers(version: str) -> list[str]:
    """Every general and sub-topic answer of every FAQ intent, for one version."""
    policy = load_policy(version)
    texts = load_texts()["intents"]
    out = []
    for intent in sorted(FAQ_INTENTS):
        entry = texts[intent]
        out.append(render_text(entry["general"], policy))
        for topic in (entry.get("topics") or {}).values():
            out.append(render_text(topic["answer"], policy))
    return out


def main() -> None:
    """Print the distribution as a Markdown table."""
    channel = SmsChannel()
    print(
        "| policy | answers | SMS per answer (first page) | segments: 1 / 2 "
        "| paged | GSM-7 |"
    )
    print("|---|---|---|---|---|---|")
    for version in known_versions():
        texts = answers(version)
        segments: Counter[int] = Counter()
        paged = 0
        all_gsm7 = True
        for text in texts:
            rendered = channel.render([Reply(text=text)], {})
            paged += bool(rendered.state.get("pages"))
            for body in rendered.bodies:
                segments[segment_info(body["text"]).segments] += 1
                all_gsm7 = all_gsm7 and is_gsm7(body["text"])
        per_answer = statistics.mean(
            len(channel.render([Reply(text=t)], {}).bodies) for t in texts
        )
        print(
            f"| {version} | {len(texts)} | {per_answer:.2f} | {segments[1]} / "
            f"{segments[2]} | {paged} | {'yes' if all_gsm7 else 'NO'} |"
        )


if __name__ == "__main__":
    main()
