"""Pure paper trading: orders, the ledger, simulated execution, costs and one trading cycle."""
