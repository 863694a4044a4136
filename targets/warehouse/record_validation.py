"""Optional JSON Schema validation of each record (setting `validate_records`), with value-free errors.

Off by default: the batch decoder already checks every value's JSON type
against its column. Turn it on to enforce the other rules of a SCHEMA
(patterns, enums, lengths) at the cost of a slower load.
"""

from __future__ import annotations

import typing as t

import jsonschema

from targets.warehouse.errors import RecordTypeError
from targets.warehouse.record_decoder import RecordValidator


def schema_validator(stream: str, schema: dict[str, t.Any]) -> RecordValidator:
    """Return a function that raises `RecordTypeError` naming the line, field and rule a record breaks."""
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    def validate(record: dict[str, t.Any], line_number: int) -> None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is None:
            return
        field = "/".join(str(part) for part in error.absolute_path) or "(record)"
        msg = (
            f"Line {line_number}, stream {stream!r}: field {field!r} fails the JSON Schema rule "
            f"{error.validator!r}. Fix the value at the source, or turn off `validate_records`."
        )
        raise RecordTypeError(msg)

    return validate
