"""Network states: one buffer of unit activities per layer."""
