"""Our simulator against backtesting.py (kernc/backtesting.py) on a long/short SMA crossover.

Rules, made identical on both sides:

* Data: ~1500 daily bars of a geometric random walk with five drift/volatility regimes, generated
  here with a fixed seed; opens gap from the previous close; H/L bracket O/C (only used by
  backtesting.py for stop/limit orders, which we do not place).
* Signal: SMA(10) and SMA(30) of the close (the same numpy function feeds both engines). At bar
  ``t`` (from backtesting.py's first ``next()`` call, bar 30) an up-cross
  (``fast[t-1] < slow[t-1] and fast[t] > slow[t]``) goes long all-in, a down-cross goes short
  all-in; nothing happens before the first cross.
* Fills: at bar ``t+1``'s OPEN (``trade_on_close=False``); a reversal closes the old position and
  opens the new one at that same open (``exclusive_orders=True``).
* Costs: commission 0.1 % of traded notional on entry AND exit; no spread.
* Sizing: whole shares on both sides (backtesting.py has no fractional shares; our engine runs
  with ``integer_shares=True``). Cash is 10M so prices ~100 give ~100k shares and rounding is
  negligible. One known, deliberate difference: backtesting.py sizes at 99.99 % of equity net of
  the entry commission (and after paying the exit commission of a reversal), ours at 100 % of the
  pre-trade equity; that changes exposure by ~0.1 % per trade, so final equity must agree within
  1 % and per-trade returns (``pnl / entry notional``, size-independent) agree to ~1e-12.
* Open trades at the end are marked at the last close on both sides (backtesting.py's
  ``finalize_trades=False``; its "trades remain open" warning is silenced for this test only, as
  are pandas deprecation warnings raised from inside the ``backtesting`` package).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting")

from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402

from aistock_actors.core.backtest.simulator import CostModel, simulate  # noqa: E402

COMMISSION = 0.001
CASH = 10_000_000.0
FAST, SLOW = 10, 30


def sma(values: npt.ArrayLike, n: int) -> npt.NDArray[np.float64]:
    return pd.Series(np.asarray(values, dtype=np.float64)).rolling(n).mean().to_numpy()


def make_ohlc(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regimes = [
        (0.0008, 0.010, 300),
        (-0.0010, 0.025, 250),
        (0.0003, 0.015, 350),
        (0.0012, 0.008, 300),
        (-0.0005, 0.030, 300),
    ]  # (daily drift, daily vol, bars)
    log_ret = np.concatenate([rng.normal(mu, sd, n) for mu, sd, n in regimes])
    close = 100.0 * np.exp(np.cumsum(log_ret))
    prev_close = np.concatenate(([100.0], close[:-1]))
    open_ = prev_close * np.exp(rng.normal(0.0, 0.004, close.size))
    wiggle = np.abs(rng.normal(0.0, 0.005, (2, close.size)))
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    index = pd.bdate_range("2015-01-02", periods=close.size)
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close}, index=index)


class SmaCross(Strategy):
    def init(self) -> None:
        self.fast = self.I(sma, self.data.Close, FAST)
        self.slow = self.I(sma, self.data.Close, SLOW)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            self.buy()
        elif crossover(self.slow, self.fast):
            self.sell()


def our_targets(close: npt.NDArray[np.float64], start: int) -> npt.NDArray[np.float64]:
    """The same event rule, bar by bar: hold the last cross's side, 0 before the first cross."""
    fast, slow = sma(close, FAST), sma(close, SLOW)
    target = np.zeros(close.size)
    side = 0.0
    for t in range(start, close.size):
        if fast[t - 1] < slow[t - 1] and fast[t] > slow[t]:
            side = 1.0
        elif fast[t - 1] > slow[t - 1] and fast[t] < slow[t]:
            side = -1.0
        target[t] = side
    return target


@pytest.mark.filterwarnings("ignore:Some trades remain open at the end of backtest")
@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:backtesting")
@pytest.mark.filterwarnings("ignore::FutureWarning:backtesting")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:backtesting")
def test_sma_crossover_matches_backtesting_py() -> None:
    data = make_ohlc()
    bt = Backtest(
        data,
        SmaCross,
        cash=CASH,
        commission=COMMISSION,
        trade_on_close=False,
        exclusive_orders=True,
    )
    stats: Any = bt.run()
    theirs = stats["_trades"]
    assert len(theirs) >= 20  # the comparison is meaningful

    close = data["Close"].to_numpy()
    res = simulate(
        close,
        our_targets(close, start=SLOW),
        open_=data["Open"].to_numpy(),
        fill="next_open",
        costs=CostModel(commission_rate=COMMISSION, half_spread_bps=0.0, impact_bps=0.0),
        initial_cash=CASH,
        integer_shares=True,
    )

    final_theirs = float(stats["Equity Final [$]"])
    assert res.equity[-1] == pytest.approx(final_theirs, rel=0.01)
    their_curve = stats["_equity_curve"]["Equity"].to_numpy()
    assert np.max(np.abs(res.equity / their_curve - 1)) < 0.01

    ours = res.trades
    closed = ours.closed
    assert int(closed.sum()) == len(theirs)
    assert np.array_equal(ours.entry_bar[closed], theirs["EntryBar"].to_numpy())
    assert np.array_equal(ours.exit_bar[closed], theirs["ExitBar"].to_numpy())
    assert np.allclose(ours.entry_price[closed], theirs["EntryPrice"].to_numpy(), rtol=1e-12)
    assert np.allclose(ours.exit_price[closed], theirs["ExitPrice"].to_numpy(), rtol=1e-12)
    assert np.array_equal(ours.side[closed], np.sign(theirs["Size"].to_numpy()))
    assert np.allclose(ours.ret[closed], theirs["ReturnPct"].to_numpy(), rtol=1e-9, atol=1e-12)
    assert res.metrics.trade_count == len(theirs)
    assert res.metrics.win_rate == pytest.approx(float(stats["Win Rate [%]"]) / 100, abs=1e-12)
    assert res.metrics.max_drawdown == pytest.approx(
        -float(stats["Max. Drawdown [%]"]) / 100, abs=0.01
    )
    # backtesting.py leaves the last position open, as we do
    assert int((~closed).sum()) == 1
