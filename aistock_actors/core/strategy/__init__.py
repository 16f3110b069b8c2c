"""Trading strategies: the Strategy protocol, built-in rules and their walk-forward test."""
