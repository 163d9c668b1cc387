"""A one-line progress bar on stderr (batches done, samples/s), silent when ``quiet``."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Progress of one epoch: call :meth:`update` after each chunk, :meth:`close` at the end."""

    def __init__(self, label: str, total: int, batch_size: int, *, quiet: bool = False, stream: TextIO = sys.stderr):
        self.label, self.total, self.batch_size = label, total, batch_size
        self.quiet, self.stream = quiet, stream
        self.done, self.start = 0, time.perf_counter()

    def update(self, batches: int) -> None:
        """Record ``batches`` more batches and redraw."""
        self.done += batches
        if self.quiet:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = self.done * self.batch_size / max(time.perf_counter() - self.start, 1e-9)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} batches, {rate:,.0f} samples/s")
        self.stream.flush()

    def close(self) -> float:
        """Finish the line; returns the elapsed seconds."""
        if not self.quiet:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
        return time.perf_counter() - self.start
