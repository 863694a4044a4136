"""`target-warehouse`: the Singer target writing a tenant's encrypted Parquet lake and DuckDB warehouse."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
import threading
import typing as t

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.target_base import Target

import msgspec

from spendlake.paths import InvalidTenantError, spendlake_home, validate_tenant
from privacy.key_errors import KeyringError
from spendlake.state_marker import STATE_MARKER, StateMismatchError, check_state_marker
from spendlake.tenant_lock import TenantBusyError, TenantLock
from targets.warehouse.errors import WarehouseError
from targets.warehouse.line_blocks import line_blocks
from targets.warehouse.message_loop import LoopSettings, MessageLoop
from targets.warehouse.session import WarehouseSession

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import PurePath

    from singer_sdk.singerlib.encoding.base import GenericSingerReader

#: Twelve DuckDB vectors: a batch of a multiple of 2,048 rows fills whole row groups.
DEFAULT_BATCH_ROWS = 24_576
_state_encoder = msgspec.json.Encoder(decimal_format="number")

_SOURCE_RULE = (
    "use 1-63 characters of lower-case letters, digits, '-' or '_', starting with a letter or digit "
    "(for example 'stripe' or 'google-ads')"
)


class TargetWarehouse(Target):
    """Singer target that loads one source of one tenant into encrypted Parquet files and DuckDB.

    singer-sdk provides the command line, settings and `--about`. The input is
    read by `MessageLoop`, which batches records column-wise instead of through
    the SDK's per-record sink path. A STATE is written to stdout only after every
    record read before it is committed (Parquet file published, DuckDB
    transaction committed).
    """

    name = "target-warehouse"
    package_name = "spendlake"
    default_sink_class = None

    config_jsonschema = th.PropertiesList(
        th.Property(
            "tenant",
            th.StringType,
            required=True,
            description="Tenant (client) id. Selects the tenant's keyring and its folder under warehouse/.",
        ),
        th.Property(
            "source",
            th.StringType,
            required=True,
            description=(
                "Source name, for example 'stripe'. Names the DuckDB schema and the Parquet folder "
                "of this load; same rules as the tenant id."
            ),
        ),
        th.Property(
            "home",
            th.StringType,
            description="spendlake home folder. Default: the SPENDLAKE_HOME variable, else ./.spendlake.",
        ),
        th.Property(
            "validate_records",
            th.BooleanType,
            default=False,
            description=(
                "Validate each record against its JSON Schema before loading. Off by default: every "
                "column's type is still checked when the batch is converted to Arrow."
            ),
        ),
        th.Property(
            "require_pii_mapping",
            th.BooleanType,
            default=True,
            description=(
                "Reject streams that did not pass through mapper-pii for this tenant. Turn off only for "
                "sources known to carry no personal data."
            ),
        ),
        th.Property(
            "batch_size_rows",
            th.IntegerType,
            default=DEFAULT_BATCH_ROWS,
            description=(
                "Records per committed batch (one Parquet file and one DuckDB transaction each). A multiple of "
                "2,048 up to 122,880 lets DuckDB write each batch as whole row groups, without its write-ahead log."
            ),
        ),
        th.Property(
            "max_batch_age_seconds",
            th.NumberType,
            default=300,
            description="Commit a stream's buffered records at the latest this many seconds after the first arrived.",
        ),
        th.Property(
            "lake_url",
            th.StringType,
            description=(
                "Where the Parquet lake lives: unset for the tenant folder under the home, or "
                "`s3://bucket/prefix` for S3 (the bucket's default encryption must be SSE-KMS)."
            ),
        ),
        th.Property(
            "s3_endpoint_url",
            th.StringType,
            description="S3 endpoint for an S3-compatible store; default: boto3's (AWS_ENDPOINT_URL or AWS).",
        ),
        th.Property(
            "s3_kms_key_id",
            th.StringType,
            description="KMS key for the lake's objects; default: the bucket's default SSE-KMS key.",
        ),
        th.Property(
            "load_method",
            th.StringType,
            default="upsert",
            allowed_values=["upsert"],
            description="Rows upsert by primary key; streams without key properties append.",
        ),
    ).to_dict()

    def __init__(
        self,
        *,
        config: dict | PurePath | str | list[PurePath | str] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: GenericSingerReader | None = None,
    ) -> None:
        self._session: WarehouseSession | None = None
        self._tenant_lock: TenantLock | None = None
        self._session_lock = threading.Lock()
        self._loop: MessageLoop | None = None
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader,
        )
        if validate_config:
            self._check_names()

    def warehouse_session(self) -> WarehouseSession:
        """Return the run's warehouse session, opening the keyring and database on first use."""
        with self._session_lock:
            if self._session is None:
                home = spendlake_home(self.config.get("home"))
                # Key rotation, erasure and retention rewrite the tenant's files under the same lock.
                self._tenant_lock = TenantLock(home, self.config["tenant"], "the load")
                try:
                    self._session = WarehouseSession(
                        home,
                        self.config["tenant"],
                        self.config["source"],
                        lake_url=self.config.get("lake_url"),
                        s3_endpoint_url=self.config.get("s3_endpoint_url"),
                        s3_kms_key_id=self.config.get("s3_kms_key_id"),
                        batch_rows=self._loop_settings().batch_size_rows,
                    )
                except BaseException:
                    self._release_tenant_lock()
                    raise
            return self._session

    def _release_tenant_lock(self) -> None:
        if self._tenant_lock is not None:
            self._tenant_lock.release()
            self._tenant_lock = None

    def process_lines(self, file_input: t.IO[str] | None) -> t.Counter[str]:  # type: ignore[override]
        """Read messages from `file_input` (default: standard input) and load them; see `MessageLoop`."""
        if self._loop is None:
            self._loop = MessageLoop(self.warehouse_session, self._loop_settings(), self._marked_state, _write_state)
        try:
            return self._loop.run(line_blocks(_binary_input(file_input)))
        except BaseException:
            self.close()
            raise

    def process_endofpipe(self) -> None:
        """Commit what is buffered, forward the last STATE, then checkpoint and close the warehouse."""
        if self._loop is not None:
            try:
                self._loop.finish()
            except BaseException:
                self.close()
                raise
        self._finish()

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        """Run the command; a warehouse error is logged as one line and exits with status 1."""
        try:
            super().invoke(*args, **kwargs)
        except (WarehouseError, KeyringError, StateMismatchError, TenantBusyError) as error:
            cls.logger.error("%s", error)  # noqa: TRY400 - the message names the fix; a traceback adds nothing
            raise SystemExit(1) from None

    def _loop_settings(self) -> LoopSettings:
        return LoopSettings(
            batch_size_rows=int(self.config.get("batch_size_rows") or DEFAULT_BATCH_ROWS),
            max_batch_age_seconds=float(self.config.get("max_batch_age_seconds") or 300),
            require_pii_mapping=bool(self.config.get("require_pii_mapping", True)),
            validate_records=bool(self.config.get("validate_records", False)),
        )

    def _marked_state(self, value: t.Any) -> t.Any:
        """Check a state belongs to this warehouse, then mark it with the warehouse's id.

        Bookmarks saved for another warehouse (one since deleted or replaced)
        would make the taps resume where that one stopped and leave a gap here.
        """
        if not isinstance(value, dict):
            return value
        session = self.warehouse_session()
        check_state_marker(value, session.warehouse_id, session.tenant)
        return {**value, STATE_MARKER: {"warehouse_id": session.warehouse_id}}

    def _finish(self) -> None:
        """Checkpoint and close the database, then release the tenant lock."""
        self._close_loop()
        with self._session_lock:
            if self._session is not None:
                self._session.finish()
                self._session = None
            self._release_tenant_lock()

    def close(self) -> None:
        """Close the database after a failed run; committed batches stay in DuckDB's write-ahead log."""
        self._close_loop()
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None
            self._release_tenant_lock()

    def _close_loop(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _check_names(self) -> None:
        errors = []
        try:
            validate_tenant(self.config.get("tenant", ""))
        except InvalidTenantError as error:
            errors.append(f"Setting 'tenant': {error}")
        try:
            validate_tenant(self.config.get("source", ""))
        except InvalidTenantError:
            errors.append(f"Setting 'source': invalid source name; {_SOURCE_RULE}.")

        reshaping = [name for name in ("stream_maps", "flattening_enabled", "add_record_metadata") if self.config.get(name)]
        if reshaping:
            errors.append(
                f"Setting(s) {', '.join(reshaping)} cannot be used: they change records after mapper-pii "
                "classified them. Remove them."
            )

        errors += _batch_setting_problems(self.config)
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)


def _batch_setting_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    """Describe batch settings that are present but not positive."""
    problems = []
    for name in ("batch_size_rows", "max_batch_age_seconds"):
        value = config.get(name)
        # singer-sdk reads numbers of the config file as Decimal.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value <= 0):
            problems.append(f"Setting {name!r}: must be a positive number; remove it to use the default.")
    return problems


def _binary_input(file_input: t.IO[str] | None) -> t.BinaryIO | Iterable[bytes]:
    """Return the input as bytes: standard input, a file opened by `--input`, or a text stream's lines."""
    if file_input is None:
        return sys.stdin.buffer
    buffer = getattr(file_input, "buffer", None)
    if buffer is not None:
        return buffer
    return (line.encode("utf-8", "surrogatepass") for line in file_input)


def _write_state(value: t.Any) -> None:
    """Write one state value as a JSON line and flush, so the orchestrator saves it now."""
    try:
        text = _state_encoder.encode(value).decode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, default=str)  # A lone surrogate: `json` writes it as an escape.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
