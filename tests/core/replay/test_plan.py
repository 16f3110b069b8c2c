"""Which bar times a replay walks (core/replay/plan.py)."""

from __future__ import annotations

import numpy as np
import pytest

from aistock_actors.core.replay.plan import (
    DAY_NS,
    first_trainable,
    parse_date,
    resolve_window,
    union_timeline,
)
from aistock_actors.errors import ReplayError


def days(*numbers: int) -> np.ndarray:
    return np.array([parse_date("2020-01-01") + n * DAY_NS for n in numbers], dtype=np.int64)


DATA = {"AAA": days(0, 1, 2, 3, 4, 5, 6, 7), "BBB": days(2, 3, 4, 5, 6, 7, 8, 9)}


def test_union_timeline_and_first_trainable() -> None:
    assert list(union_timeline(DATA)) == list(days(*range(10)))
    assert first_trainable(DATA, 3) == days(2)[0]  # AAA has 3 bars at day 2
    assert first_trainable(DATA, 9) is None


def test_default_window_starts_where_training_can_and_ends_at_the_last_bar() -> None:
    window = resolve_window(DATA, 5)
    assert list(window.steps) == list(days(4, 5, 6, 7, 8, 9))
    assert window.total == 6


def test_dates_name_whole_days() -> None:
    window = resolve_window(DATA, 5, start=parse_date("2020-01-02"),
                            end=parse_date("2020-01-05", end_of_day=True),
                            start_text="2020-01-02", end_text="2020-01-05")
    assert list(window.steps) == list(days(1, 2, 3, 4))
    intraday = {"AAA": days(0, 1) + 15 * 3600 * 10**9}
    at = resolve_window(intraday, 1, start=parse_date("2020-01-01"), start_text="2020-01-01")
    assert at.total == 2  # --from the first bar's day, though the bar is at 15:00


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2020-01-06", "2020-01-03", "--from 2020-01-06 is after --to 2020-01-03"),
        ("2019-12-01", None, "--from 2019-12-01 is before the first bar"),
        ("2020-02-01", None, "--from 2020-02-01 is after the last bar"),
        (None, "2021-01-01", "--to 2021-01-01 is after the last bar"),
        (None, "2019-01-01", "--to 2019-01-01 is before the first bar"),
        (None, "2020-01-02", "--to 2020-01-02 is before 2020-01-05, the first bar with enough"),
    ],
)
def test_refusals_say_why_in_one_line(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(ReplayError) as caught:
        resolve_window(
            DATA, 5,
            start=parse_date(start) if start else None,
            end=parse_date(end, end_of_day=True) if end else None,
            start_text=start, end_text=end,
        )
    assert message in str(caught.value) and "\n" not in str(caught.value)
    if "bar:" in str(caught.value):
        assert "the data covers 2020-01-01 to 2020-01-10" in str(caught.value)


def test_no_data_and_too_little_history_are_refused() -> None:
    with pytest.raises(ReplayError, match="holds no bar"):
        resolve_window({"AAA": days()}, 5)
    with pytest.raises(ReplayError, match="no symbol has the 50 bars a candidate needs"):
        resolve_window(DATA, 50)
    assert resolve_window(DATA, 50, start=days(0)[0], start_text="2020-01-01").total == 10


def test_parse_date_rejects_what_is_no_date() -> None:
    with pytest.raises(ReplayError, match="not an ISO date"):
        parse_date("01/02/2020")
    assert parse_date("2020-01-01T12:00:00+01:00") == parse_date("2020-01-01") + 11 * 3600 * 10**9
