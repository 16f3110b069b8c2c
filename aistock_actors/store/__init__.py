"""Everything that touches disk: atomic JSON, audit log, alerts, bars, model artifacts."""
