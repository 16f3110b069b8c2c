"""Pure rules of a market replay: which bars it walks, and the figures of its summary."""
