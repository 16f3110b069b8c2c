"""The retraining cadence applied to the stores: does this cycle's train step train?

The rule is :mod:`aistock_actors.core.supervision.cadence`; this module gathers its two facts
(the newest stored candidate's last training bar, and the bar times stored since) so the Trainer
answers a cycle without a due training in a few milliseconds, before it loads any frame.
"""

from __future__ import annotations

from aistock_actors.config import Config
from aistock_actors.core.supervision.cadence import TrainingDue, bars_since, training_due
from aistock_actors.store.bars import BarStore
from aistock_actors.store.model_folders import newest_candidate
from aistock_actors.store.models import ModelStore


def check(config: Config, bars: BarStore, models: ModelStore) -> TrainingDue:
    """Whether to train now (``training.retrain_every_bars`` new bars since the newest
    candidate, or no candidate yet)."""
    every = config.training.retrain_every_bars
    newest = newest_candidate(models)
    if newest is None:
        return training_due(None, every)
    record, data_end = newest
    stored = (bars.arrays(symbol)[0] for symbol in bars.symbols())
    return training_due(bars_since(stored, data_end), every, record.model_id)
