"""Errors a user can meet: each says what was wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class SalesBIError(Exception):
    """Base class for errors shown to users without a traceback (the CLI exits 2)."""

    def __init__(
        self,
        what: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.what = what
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.message)

    @property
    def where(self) -> str:
        """Return ``file, line N, column C`` for the parts that are known, or ''."""
        parts = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    @property
    def message(self) -> str:
        """Return the full one-paragraph message: where, what, and what to do."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text += f". {self.hint}"
        return text


class StructuralError(SalesBIError):
    """The input cannot be read as the contract needs (missing file or column, bad encoding, empty file).

    Raised before the warehouse is touched.
    """


class ProfileError(SalesBIError):
    """A profile is unknown or malformed."""


class ConfigurationError(SalesBIError):
    """A setting (warehouse URL, output folder, parameter) is wrong."""


class ValidationFailed(SalesBIError):
    """A table-level validation rule failed; the run stops before ``core`` changes."""


class StepSkipped(SalesBIError):
    """A step cannot run meaningfully on this data (too little history, a table the source lacks).

    The run goes on without the step; the run's status becomes ``succeeded_with_warnings`` and
    its summary, insights and artifacts name the step and this reason.
    """
