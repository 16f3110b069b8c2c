"""Pure promotion rules: the gate, the active-strategy registry and the degradation rollback."""
