"""When a day without trades may be published.

A day that reads no trades is usually a quiet day or a gap in the data, and is published empty.
Two situations make it more likely that input was lost, and there ``raw_trades`` refuses to
publish unless the user states that the day genuinely had no trades (the ``empty_days`` config):

- some input holds no rows at all (a 0-byte file, a file with only its header line): such a file
  cannot say which day it was meant for, and an empty download or export is a classic failure;
- the day's published partition has trades: publishing would silently replace them with nothing.

A statement is checked too: a day stated empty for which the source does have trades is an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date


class EmptyDayError(ValueError):
    pass


def how_to_state(day: date) -> str:
    config = {"ops": {"raw_trades": {"config": {"empty_days": [day.isoformat()]}}}}
    return f"--config-json '{json.dumps(config)}'"


def check_empty_day(
    day: date, rows: int, empty_inputs: Sequence[str], published_trades: int | None, stated_empty: bool
) -> None:
    """Raise :class:`EmptyDayError` when ``day`` may not be published. ``rows`` counts the day's
    rows from the source, readable or not (bad rows are the contract check's to report)."""
    if stated_empty:
        if rows:
            raise EmptyDayError(
                f"raw_trades {day}: stated empty (empty_days) but the source has {rows} row(s) for it; "
                "remove the day from empty_days"
            )
        return
    if rows:
        return
    if empty_inputs:
        more = f" (and {len(empty_inputs) - 1} more empty input(s))" if len(empty_inputs) > 1 else ""
        raise EmptyDayError(
            f"raw_trades {day}: no trades, and {empty_inputs[0]}{more}. An empty file is usually a "
            "failed download or export: fix or remove it. If the day genuinely had no trades, state "
            f"it with the raw_trades config empty_days, e.g. {how_to_state(day)}"
        )
    if published_trades:
        raise EmptyDayError(
            f"raw_trades {day}: the source has no trades for this day, but the published partition holds "
            f"{published_trades}; refusing to replace them with an empty day. If the day genuinely had "
            f"no trades, state it with the raw_trades config empty_days, e.g. {how_to_state(day)}"
        )
