"""Typed lake errors; each message names the table, the dates and what was wrong."""


class LakeError(Exception):
    """Base class for lake read/write failures."""


class LakeSchemaError(LakeError):
    """Data whose columns or types differ from the catalogue (schema drift)."""


class LakeDuplicateKeyError(LakeError):
    """Rows that repeat a table's primary key."""


class LakeDateError(LakeError):
    """Rows dated outside the trade dates a writer owns, or null keys."""


class TableNotFound(LakeError):
    """A catalogued table that has not been written yet."""
