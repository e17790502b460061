"""Timeline lines for people: virtual timestamps, regions, and measurements with their verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bellwether.sim.runner import Entry

_COLOURS = {"green": "32", "red": "31", "yellow": "33", "blue": "34", "bold": "1", "dim": "2", "cyan": "36"}
_VERDICT = {"Successful": ("✓", "green"), "Failed": ("✗", "red"), "Inconclusive": ("?", "yellow")}
_KIND_COLOUR = {"apply": "cyan", "phase": "bold", "step": "blue", "promoted": "green", "pods": "yellow"}


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, colour: str) -> str:
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m" if self.colour else text


def clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def value(metric: str, v: float | None) -> str:
    """Error rates as percentages, latencies in s or ms: what a dashboard would show."""
    if v is None:
        return "no data"
    if any(w in metric for w in ("error", "fail", "5xx")):
        return f"{v * 100:.2f}%"
    return f"{v:.2f}s" if v >= 1 else f"{v * 1000:.0f}ms"


def measurement(m: Mapping[str, Any], style: Style) -> str:
    mark, colour = _VERDICT.get(m["verdict"], ("·", "dim"))
    text = f"{m['metric']} {value(m['metric'], m.get('value'))}"
    if m.get("baseline") is not None:
        text += f" vs {value(m['metric'], m['baseline'])}"
    text += " " + style(mark, colour)
    if m["verdict"] != "Successful" and m.get("reason"):
        text += style(f" ({m['reason']})", colour)
    return text


def line(entry: Entry, style: Style, region_width: int = 9) -> str:
    when = style(f"[{clock(entry.at)}]", "dim")
    where = (entry.region or "").ljust(region_width)
    if entry.kind == "measurement":
        body = "  ".join(measurement(m, style) for m in entry.data.get("measurements", []))
        return f"{when} {where} {body}"
    colour = _KIND_COLOUR.get(entry.kind)
    if entry.kind == "event":
        colour = "red" if entry.data.get("type") == "Warning" else "green"
    message = style(entry.message, colour) if colour else entry.message
    return f"{when} {where} {message}"
