"""Choosing among pre-registered candidates, corrected for how many were ever tried.

The best of ``N`` walk-forward Sharpe ratios is biased upwards even when no candidate has any
skill. The deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio", 2014)
is the probability that the selected candidate's true Sharpe is above what the best of ``N``
skill-less trials would show:

``DSR = Phi( (SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )`` with
``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``,

where ``SR`` is the per-bar (not annualised) Sharpe of ``T`` returns, ``g3`` / ``g4`` their
skewness and (non-excess) kurtosis, ``gamma`` the Euler-Mascheroni constant and ``V`` the variance
of a Sharpe estimate under the null, ``1 / (T - 1)``. ``N`` counts every trial ever run on the
state directory, not only this cycle's, so re-rolling the dice every cycle is paid for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_max_sharpe(n_trials: int, n_returns: int) -> float:
    """``SR0``: the per-bar Sharpe the best of ``n_trials`` skill-less trials is expected at."""
    if n_trials < 1 or n_returns < 2:
        raise ValueError(f"need >= 1 trial and >= 2 returns, got {n_trials} and {n_returns}")
    if n_trials == 1:
        return 0.0
    spread = math.sqrt(1.0 / (n_returns - 1))
    first = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return spread * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe_ratio(returns: Sequence[float], n_trials: int) -> float:
    """The probability (0..1) that ``returns``' Sharpe beats the best of ``n_trials`` null trials.

    Non-finite returns are dropped; fewer than 3 left, or no variance, gives 0.0 (no evidence).
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 3:
        return 0.0
    sd = float(r.std(ddof=1))
    if not sd > 0.0:
        return 0.0
    sharpe = float(r.mean()) / sd
    centred = (r - r.mean()) / float(r.std(ddof=0))
    skew = float(np.mean(centred**3))
    kurtosis = float(np.mean(centred**4))
    denominator = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not denominator > 0.0:
        return 0.0
    z = (sharpe - expected_max_sharpe(n_trials, int(r.size))) * math.sqrt(r.size - 1)
    return float(_NORMAL.cdf(z / math.sqrt(denominator)))


def best_index(sharpes: Sequence[float]) -> int:
    """Position of the highest finite Sharpe (the first on a tie); ``ValueError`` if none is."""
    finite = [(s, -i) for i, s in enumerate(sharpes) if math.isfinite(s)]
    if not finite:
        raise ValueError("no candidate has a finite Sharpe ratio")
    return -max(finite)[1]
