"""Blocks held as frames until a table is long enough to be written to its spill file."""

from __future__ import annotations

import pandas as pd


class HeldUntilSpilled:
    """The write side shared by the spill writers: hold blocks, then write them once long enough.

    Blocks are held as frames while the table has fewer than ``keep_below`` rows (and while it
    has none); once it reaches that, the held blocks and every later one go to :meth:`_write`
    (a subclass writes one block to its file). :meth:`take_held` hands the held frames over.
    """

    def __init__(self, keep_below: int = 0) -> None:
        self.keep_below = keep_below
        self.rows = 0
        self._held: list[pd.DataFrame] = []
        self._spilling = False

    @property
    def spilling(self) -> bool:
        """Return whether the rows go to the file (the table reached ``keep_below`` rows)."""
        return self._spilling

    def append(self, block: pd.DataFrame) -> None:
        """Take the table's next rows ``block``: hold them, or write them."""
        self.rows += len(block)
        if self._spilling:
            self._write(block)
            return
        self._held.append(block)
        if self.rows < self.keep_below or self.rows == 0:
            return
        self._spilling = True
        for frame in self.take_held():
            self._write(frame)

    def take_held(self) -> list[pd.DataFrame]:
        """Return the held frames, holding none any more."""
        held, self._held = self._held, []
        return held

    def _write(self, block: pd.DataFrame) -> None:
        raise NotImplementedError
