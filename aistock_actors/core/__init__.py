"""Pure logic: no threads, no I/O beyond arguments."""
