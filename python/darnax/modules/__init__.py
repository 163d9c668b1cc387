"""Modules: layers (own a state, reduce messages, apply an activation) and adapters (carry messages)."""
