"""Geometry of the funnel bar chart, drawn as SVG by the supervisor template.

One horizontal bar per stage, its length proportional to the stage's count
(the first stage, everyone registered, is the full width), with the count and
its share of all registered written beside it. Only numbers and fixed labels
end up in the SVG, and the template escapes them anyway; colours come from the
console's stylesheet (classes), since the CSP forbids inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.console.stats import FunnelStage

WIDTH = 720
LABEL_WIDTH = 180
VALUE_WIDTH = 170
BAR_HEIGHT = 30
GAP = 14
TOP = 10


@dataclass(frozen=True)
class Bar:
    """One stage's bar and its texts, in SVG user units."""

    label: str
    value_text: str
    label_x: int
    y: int
    width: int
    text_y: int
    value_x: int


@dataclass(frozen=True)
class FunnelChart:
    """The whole chart."""

    width: int
    height: int
    label_width: int
    track_width: int
    bar_height: int
    bars: tuple[Bar, ...]
    summary: str


def percent(share: float) -> str:
    """A share as an Indonesian percentage with two decimals (`5,43%`)."""
    return f"{share * 100:.2f}%".replace(".", ",")


def funnel_chart(stages: list[FunnelStage]) -> FunnelChart:
    """Bars for the funnel's stages (an empty registry draws empty bars)."""
    track = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    top = max((stage.count for stage in stages), default=0)
    bars = []
    for index, stage in enumerate(stages):
        y = TOP + index * (BAR_HEIGHT + GAP)
        width = round(track * stage.count / top) if top else 0
        if stage.count and width < 2:
            width = 2  # a stage with people in it stays visible
        bars.append(
            Bar(
                label=stage.label,
                label_x=8,
                value_text=f"{stage.count:,}".replace(",", ".")
                + f" ({percent(stage.share_of_registered)})",
                y=y,
                width=width,
                text_y=y + BAR_HEIGHT // 2 + 5,
                value_x=LABEL_WIDTH + track + 8,
            )
        )
    summary = "; ".join(f"{bar.label}: {bar.value_text}" for bar in bars)
    height = TOP * 2 + len(stages) * (BAR_HEIGHT + GAP)
    return FunnelChart(
        WIDTH, height, LABEL_WIDTH, track, BAR_HEIGHT, tuple(bars), summary
    )
