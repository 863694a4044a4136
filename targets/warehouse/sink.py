"""Batch sink: each drained batch becomes one encrypted Parquet file and one DuckDB transaction."""

from __future__ import annotations

import datetime
import typing as t
from collections.abc import Sequence

import jsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

from targets.warehouse.arrow_batch import build_batch
from targets.warehouse.arrow_schema import StreamLayout, layout_from_schema
from targets.warehouse.errors import UnsupportedMessageError
from targets.warehouse.pii_guard import check_mapped_values, check_pii_mapped, check_schema_actions
from targets.warehouse.parquet_store import check_folder_name, write_parquet_batch
from targets.warehouse.primary_key import reject_duplicate_keys

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding

    from targets.warehouse.session import WarehouseSession
    from targets.warehouse.target import TargetWarehouse


#: Columns singer-sdk adds for record metadata that the warehouse does not store.
_SDK_METADATA_COLUMNS = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)


class _ValueFreeValidator(JSONSchemaValidator):
    """The SDK's jsonschema validator with messages that name the field and rule, not the value."""

    def validate(self, record: dict) -> None:
        """Raise `InvalidRecord` when `record` violates the stream's JSON Schema."""
        try:
            self.validator.validate(record)
        except jsonschema.ValidationError as error:
            field = "/".join(str(part) for part in error.absolute_path) or "(record)"
            message = f"field {field!r} fails the JSON Schema rule {error.validator!r}"
            raise InvalidRecord(message, {}) from None


class WarehouseSink(BatchSink):
    """Writes one stream of one source into the tenant's Parquet lake and DuckDB warehouse."""

    def __init__(
        self,
        target: TargetWarehouse,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        self._session_source = target.warehouse_session
        self._undeclared_fields: dict[str, int] = {}
        super().__init__(target=target, stream_name=stream_name, schema=schema, key_properties=key_properties)

    @property
    def session(self) -> WarehouseSession:
        """The run's open warehouse (opened when the first sink needs it)."""
        return self._session_source()

    def setup(self) -> None:
        """Map the SCHEMA message to columns and create or evolve the stream's table."""
        check_folder_name(self.stream_name)
        if self.config.get("require_pii_mapping", True):
            check_pii_mapped(self.stream_name, self.schema, self.config["tenant"], self.session.pseudonym_key_id)
            check_schema_actions(self.stream_name, self.schema)
        self.layout: StreamLayout = layout_from_schema(self.stream_name, self.schema, self.key_properties)
        self.session.writer.ensure_table(self.layout)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Return a value-free jsonschema validator when `validate_records` is on, else None."""
        if not self.validate_schema:
            return None
        return _ValueFreeValidator(self.schema, validate_formats=self.validate_field_string_format)

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: DatetimeErrorTreatmentEnum) -> None:
        """Skip the SDK's per-record date parsing: its errors quote the value.

        `arrow_batch` parses date and date-time strings per column instead.
        NOTE: this overrides a private singer-sdk 0.54.9 hook; recheck it when upgrading the SDK.
        """

    def _remove_sdc_metadata_from_schema(self) -> None:
        """Drop the SDK's record metadata columns, but keep the tombstone column `_sdc_deleted_at`.

        A source that reports deletions sends the key plus `_sdc_deleted_at`, and the
        upsert then turns the stored row into that tombstone.
        NOTE: this overrides a private singer-sdk 0.54.9 hook; recheck it when upgrading the SDK.
        """
        properties = self.schema["properties"]
        for column in _SDK_METADATA_COLUMNS:
            properties.pop(column, None)

    def _remove_sdc_metadata_from_record(self, record: dict) -> None:
        """Drop the SDK's record metadata values except `_sdc_deleted_at` (see the schema hook)."""
        for column in _SDK_METADATA_COLUMNS:
            record.pop(column, None)

    def preprocess_record(self, record: dict, context: dict) -> dict:
        """Count fields the SCHEMA does not declare; they are not stored."""
        declared = self.schema["properties"]
        for name in record:
            if name not in declared:
                self._undeclared_fields[name] = self._undeclared_fields.get(name, 0) + 1
        return record

    def process_batch(self, context: dict) -> None:
        """Write the batch: Parquet file first, then the DuckDB transaction that lists it in the ledger."""
        records = context.get("records") or []
        if not records:
            return

        loaded_at = datetime.datetime.now(datetime.UTC)
        table = build_batch(self.layout, records, loaded_at)
        reject_duplicate_keys(self.layout, table)
        if self.config.get("require_pii_mapping", True):
            check_mapped_values(self.layout, table)

        folder = self.session.parquet_folder(self.stream_name)
        crypto = self.session.parquet_crypto
        parquet_path = write_parquet_batch(table, folder, crypto, self.layout.pii_columns, loaded_at)
        relative_path = parquet_path.relative_to(self.session.tenant_dir).as_posix()
        try:
            self.session.writer.write_batch(self.layout, table, relative_path, loaded_at)
        except BaseException:
            # The file is not in the ledger, so remove it rather than leave an orphan in the lake.
            parquet_path.unlink(missing_ok=True)
            raise

        self.logger.info("Committed %d rows of stream %r (%s).", table.num_rows, self.stream_name, relative_path)

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: Sequence[str]) -> None:
        """Reject BATCH messages: their files bypass mapper-pii, so they may hold raw personal data."""
        msg = (
            f"Stream {self.stream_name!r}: BATCH messages are not accepted, because batch files skip "
            f"mapper-pii. Run the tap without `batch_config` so that records pass through the mapper."
        )
        raise UnsupportedMessageError(msg)

    def clean_up(self) -> None:
        """Log how many values of undeclared fields were dropped, by field name."""
        for name, count in sorted(self._undeclared_fields.items()):
            self.logger.warning(
                "Stream %r: dropped %d values of field %r, which the SCHEMA message does not declare.",
                self.stream_name,
                count,
                name,
            )
        super().clean_up()
