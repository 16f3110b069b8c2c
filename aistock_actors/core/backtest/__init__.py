"""Pure walk-forward backtesting: the portfolio simulator, its regime labels, metrics and curves."""
