"""Errors raised by target-warehouse.

Every message names the stream, field, file or tenant involved and the fix.
No message carries a record value, a key or a response body, and errors that
wrap a library error are raised `from None` because library messages (pyarrow,
DuckDB) often quote the offending value.
"""

from __future__ import annotations

from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException


class WarehouseError(RuntimeError):
    """Base class of the target's errors."""


class WarehouseSchemaError(WarehouseError):
    """A SCHEMA message cannot be mapped to columns or conflicts with the stored table."""


class RecordTypeError(WarehouseError):
    """A record value does not match the type its SCHEMA message declares."""


class DuplicateKeyError(WarehouseError):
    """One batch contains two records with the same primary key."""


class EncryptionNotActiveError(WarehouseError):
    """The DuckDB database would be written without encryption."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the lock on the tenant's DuckDB database."""


class WarehouseNotFoundError(WarehouseError):
    """The tenant has no DuckDB database yet."""


class WarehouseKeyError(WarehouseError):
    """The tenant's keys do not open the database or a Parquet file."""


class WarehouseWriteError(WarehouseError):
    """DuckDB rejected a batch; the batch was rolled back."""


class UnsupportedMessageError(WarehouseError):
    """The input contains a Singer message type this target does not accept."""


class UnmappedPersonalDataError(WarehouseError):
    """Raised when a stream's schema shows that mapper-pii did not process it for this tenant."""


class LakeLocationError(WarehouseError):
    """The configured lake location is malformed, unreachable or not encrypted as required."""


class InputLineError(WarehouseError):
    """A line of the input is not a Singer message this target can process; the message names the line."""


class RecordBeforeSchemaError(InputLineError, RecordsWithoutSchemaException):
    """A RECORD arrived before its stream's SCHEMA message."""


class MissingKeyError(RecordTypeError, MissingKeyPropertiesError):
    """A record lacks a value for one of its stream's key properties."""
