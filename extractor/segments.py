"""Segments as a view: customers grouped by their current state (e.g. urgent + negative + cancel intent).

A segment is a combination of values of the chosen dimensions; it is recomputed from the states,
never stored, so it cannot drift from them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .types import CustomerState

DIMENSIONS = ("urgency", "urgency.peak", "sentiment", "trend", "intent", "channel")


def value(st: CustomerState, dim: str) -> str:
    if dim == "urgency":
        return st.urgency.level if st.urgency else "none"
    if dim == "urgency.peak":
        return st.urgency.peak_level if st.urgency else "none"
    if dim == "sentiment":
        return st.sentiment.label if st.sentiment else "none"
    if dim == "trend":
        return st.sentiment.trend if st.sentiment else "none"
    if dim == "intent":  # one segment per customer: their most recent active intent
        active = [i for i in st.intents if i.active]
        return active[0].label if active else "none"
    if dim == "channel":
        return max(st.channels, key=lambda c: c.count).channel if st.channels else "none"
    if dim.startswith("profile."):
        return str(((st.profile or {}).get("attributes") or {}).get(dim.split(".", 1)[1], "none"))
    raise ConfigError(f"--by {dim!r}: use {', '.join(DIMENSIONS)} or profile.<attribute>")


def segments(workspace: str | Path, by: list[str], *, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """``[{"segment": {dim: value}, "count": n, "customers": [...]}]``, largest first."""
    from .state import states

    for dim in by:
        if dim not in DIMENSIONS and not dim.startswith("profile."):
            raise ConfigError(f"--by {dim!r}: use {', '.join(DIMENSIONS)} or profile.<attribute>")
    groups: dict[tuple, list[str]] = defaultdict(list)
    attributes: set[str] = set()
    for st in states(workspace, as_of=as_of):
        attributes.update((st.profile or {}).get("attributes") or {})
        groups[tuple(value(st, d) for d in by)].append(st.customer_id)
    for dim in by:  # a misspelt attribute would put everyone in "none"
        if dim.startswith("profile.") and attributes and dim.split(".", 1)[1] not in attributes:
            raise ConfigError(f"--by {dim!r}: no profile has that attribute; they have "
                              f"{', '.join(sorted(attributes)[:20])}")
    return [{"segment": dict(zip(by, k)), "count": len(v), "customers": sorted(v)}
            for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
