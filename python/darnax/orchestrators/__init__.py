"""Orchestrators: run the network dynamics and collect local updates over a LayerMap."""
