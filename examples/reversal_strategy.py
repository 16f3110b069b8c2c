"""A complete user strategy: fade big one-bar moves, but only where fading has paid in training.

Name it in the config as ``reversal_strategy:FadeBigMoves`` with params, next to the config file
(see ``examples/README.md``). ``fit`` learns, on the purged training rows only, whether big moves
tended to reverse or continue; ``weights`` then trades the next bar in that direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FadeBigMoves:
    threshold: float = 2.0
    """A move bigger than this many trailing standard deviations is 'big'."""
    window: int = 20
    horizon: int = 1
    name: str = "fade_big_moves"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        close = pd.DataFrame({s: f["close"] for s, f in frames.items()}).sort_index()
        ret = pd.DataFrame(np.log(close)).diff()
        vol = ret.rolling(self.window, min_periods=self.window).std().shift(1)
        z = (ret / vol).stack(future_stack=True)  # bar t's move in units of the vol before it
        z.index = z.index.set_names(["timestamp", "symbol"])
        return pd.DataFrame({"z": z})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> float:
        big = features["z"].abs() > self.threshold
        # The mean next-bar return in the direction of big moves: < 0 means they reverse.
        follow = np.sign(features["z"][big]) * forward_returns[big]
        return float(follow.mean()) if big.any() else 0.0

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        z = features["z"].unstack("symbol").fillna(0.0)
        direction = 1.0 if isinstance(state, float) and state > 0 else -1.0
        return direction * np.sign(z) * (z.abs() > self.threshold)
