"""darnax."""
