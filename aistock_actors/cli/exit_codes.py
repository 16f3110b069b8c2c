"""The CLI's exit codes (README, "Exit codes"): one place for the numbers scripts rely on."""

EXIT_OK = 0
EXIT_CYCLE_FAILED = 1
EXIT_USAGE = 2
EXIT_HALTED = 3
EXIT_LOCKED = 4
EXIT_AUDIT_BROKEN = 5
EXIT_STATE = 6
EXIT_INTEGRITY = 7
