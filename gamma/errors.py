"""Error types with messages a user can act on: each names the file, line, row or field."""

from __future__ import annotations


class GammaError(Exception):
    """Base class of every error gamma raises on bad input."""


class ModelFileError(GammaError):
    """A model (layer table) file is malformed."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        self.path, self.where, self.reason = path, where, reason
        super().__init__(f"{path}: {where}: {reason}")


class MappingFileError(GammaError):
    """A MAESTRO mapping file (or mapping text) cannot be parsed."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class HardwareError(GammaError):
    """A hardware description has an impossible value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"hardware field '{field}' = {value!r}: {reason}")
