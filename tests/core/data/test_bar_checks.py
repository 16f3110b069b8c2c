"""``check_arrays`` accepts and refuses a provider's bars exactly as ``parse`` does CSV rows."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aistock_actors.core.data.bar_checks import check_arrays
from aistock_actors.core.data.bars import FIELDS, format_timestamp, parse

T0 = 1_767_225_600 * 10**9  # 2026-01-01
HOUR = 3600 * 10**9

prices = st.one_of(
    st.floats(min_value=-5, max_value=200, allow_nan=False, allow_infinity=False),
    st.sampled_from([math.nan, math.inf, 0.0, 100.0]),
)
rows = st.tuples(prices, prices, prices, prices, prices)


def as_csv(ts: list[int], values: list[tuple[float, ...]]) -> str:
    lines = ["timestamp," + ",".join(FIELDS)]
    lines += [f"{format_timestamp(t)},{','.join(repr(v) for v in row)}"
              for t, row in zip(ts, values, strict=True)]
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(rows, max_size=8),
    steps=st.lists(st.integers(min_value=-1, max_value=2), min_size=8, max_size=8),
    after=st.one_of(st.none(), st.integers(min_value=-2, max_value=3)),
)
def test_same_verdict_and_wording_as_a_csv_row(
    values: list[tuple[float, ...]], steps: list[int], after: int | None
) -> None:
    ts = [int(t) for t in T0 + HOUR * np.cumsum(steps[: len(values)])]
    after_ns = None if after is None else T0 + after * HOUR
    good, reason = check_arrays(np.array(ts, dtype=np.int64),
                                np.array(values, dtype=np.float64).reshape(-1, 5), after=after_ns)
    parsed = parse(as_csv(ts, values), after=after_ns, max_problems=1)
    if parsed.ok:
        assert (good, reason) == (len(values), None)
    else:
        first = parsed.problems[0]
        assert good == (first.row or 0) - 2
        if "strictly increasing" not in first.reason:  # parse names the line, we the bar
            assert reason == first.reason


def test_high_below_low_is_named() -> None:
    good, reason = check_arrays(np.array([T0, T0 + HOUR]),
                                np.array([[1.0, 2, 0.5, 1.5, 3], [1.0, 0.9, 1.1, 1.0, 3]]))
    assert good == 1 and reason is not None and reason.startswith("inconsistent OHLC: low 1.1")
