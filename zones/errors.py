"""Typed errors for invalid user input; the CLI turns every one into exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Invalid input from the user (file, field or value). The CLI prints it and exits with code 2."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.reason = message
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ConfigError(InputError):
    """A camera configuration (or other config file) failed validation."""


class DetectionsFileError(InputError):
    """A detections JSON Lines file (DESIGN §3.3) is malformed."""


class VideoError(InputError):
    """A video cannot be opened or decoded at all."""


class ModelError(InputError):
    """Model weights are missing, unreadable or lack the classes we need."""
