"""The one error every reader raises: it names where in the file the problem is."""

from __future__ import annotations


class DatasetError(ValueError):
    """A data set file cannot be imported; the message names the row (1-based) and field when known."""

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        self.row = row
        self.field = field
        self.reason = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
