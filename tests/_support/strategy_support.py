"""Helpers for the strategy-cycle tests: user strategy modules written next to a config, data
whose last bar is a big move, and the candidate-set configs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from _support.lifecycle_support import lifecycle_config, planted_frames
from aistock_actors.core.data.sample_data import write_universe_csvs

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "reversal_strategy.py"
RULES = ["autocorrelation", "time_series_momentum", "sma_cross"]

FLAKY = '''"""A test strategy: follows a big last move, and misbehaves on bars after ``after``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Flaky:
    mode: str = "raise"
    """What it does on a bar after ``after``: raise, nan or big (a weight of 3)."""
    after: str = "2100-01-01"
    horizon: int = 1
    name: str = "flaky"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        close = pd.DataFrame({s: f["close"] for s, f in frames.items()}).sort_index()
        ret = pd.DataFrame(np.log(close)).diff().stack(future_stack=True)
        ret.index = ret.index.set_names(["timestamp", "symbol"])
        return pd.DataFrame({"ret": ret})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        ret = features["ret"].unstack("symbol").fillna(0.0)
        w = np.sign(ret) * (ret.abs() > 0.02)
        late = w.index > pd.Timestamp(self.after, tz="UTC")
        if late.any():
            if self.mode == "raise":
                raise RuntimeError("flaky broke")
            w.loc[late] = np.nan if self.mode == "nan" else 3.0
        return w


class NoWeights:
    horizon = 1
    name = "no_weights"

    def features(self, frames):
        return pd.DataFrame()

    def fit(self, features, forward_returns):
        return None
'''


def write_user_modules(folder: Path) -> None:
    """``reversal_strategy.py`` (the example) and ``flaky_strategy.py`` into ``folder``."""
    shutil.copy(EXAMPLE, folder / "reversal_strategy.py")
    (folder / "flaky_strategy.py").write_text(FLAKY)


def write_data(tmp: Path, jump: float = 0.06) -> None:
    """Planted-pattern CSVs whose last bar is a big move, up in every other symbol and down in
    the rest (so a strategy that trades big or idiosyncratic moves has targets on the newest
    bar)."""
    frames = planted_frames(phi=0.25)  # 0.3 makes the rule too good: held as leak_suspected
    for i, frame in enumerate(frames.values()):
        last = frame.index[-1]
        move = 1.0 + (jump if i % 2 == 0 else -jump)
        close = round(float(frame["open"].iloc[-1]) * move, 4)
        frame.loc[last, "close"] = close
        frame.loc[last, "high"] = max(frame.loc[last, "high"], close)
        frame.loc[last, "low"] = min(frame.loc[last, "low"], close)
    write_universe_csvs(tmp / "data", frames)


def strategy_config(
    tmp: Path, candidates: list[str], strategies: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> Path:
    """A lifecycle config (next to the user modules) training this candidate set."""
    training = {"candidates": candidates, "strategies": strategies or []}
    return lifecycle_config(tmp, training=training, **sections)
