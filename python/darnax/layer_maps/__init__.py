"""Layer maps: which module carries the message from sender layer ``j`` to receiver layer ``i``."""
