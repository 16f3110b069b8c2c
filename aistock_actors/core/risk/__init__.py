"""Pure risk rules: hard ceilings, the adaptive policy, the governor's state machine, the
allocator."""
