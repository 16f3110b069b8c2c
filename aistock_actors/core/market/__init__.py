"""Pure market descriptions: causal per-bar regimes."""
