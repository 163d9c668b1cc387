"""Trainers: the per-batch protocols (dynamics, then a local update through Optax)."""
