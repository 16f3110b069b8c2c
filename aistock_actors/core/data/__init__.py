"""Pure bar handling: parsing and validating OHLCV text, the sample-data generator."""
