"""Pure supervision rules: cycle steps and failure policy, restart intensity, health verdicts."""
