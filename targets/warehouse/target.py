"""`target-warehouse`: the Singer target writing a tenant's encrypted Parquet lake and DuckDB warehouse."""

from __future__ import annotations

import threading
import typing as t

from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.target_base import Target

from spendlake.paths import InvalidTenantError, spendlake_home, validate_tenant
from spendlake.singer_io import SafeMsgSpecReader
from targets.warehouse.session import WarehouseSession
from spendlake.state_marker import STATE_MARKER, check_state_marker
from spendlake.tenant_lock import TenantLock
from targets.warehouse.sink import WarehouseSink

if t.TYPE_CHECKING:
    from pathlib import PurePath

    from singer_sdk.singerlib.encoding.base import GenericSingerReader

_SOURCE_RULE = (
    "use 1-63 characters of lower-case letters, digits, '-' or '_', starting with a letter or digit "
    "(for example 'stripe' or 'google-ads')"
)


class TargetWarehouse(Target):
    """Singer target that loads one source of one tenant into encrypted Parquet files and DuckDB.

    A STATE message is written to stdout only after every record read before it
    is committed: the SDK emits state when it drains all sinks, and each drained
    batch is committed (Parquet file synced, DuckDB transaction committed) first.
    """

    name = "target-warehouse"
    package_name = "spendlake"
    default_sink_class = WarehouseSink
    message_reader_class = SafeMsgSpecReader

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
                    self._session = WarehouseSession(home, self.config["tenant"], self.config["source"])
                except BaseException:
                    self._release_tenant_lock()
                    raise
            return self._session

    def _release_tenant_lock(self) -> None:
        if self._tenant_lock is not None:
            self._tenant_lock.release()
            self._tenant_lock = None

    def _process_state_message(self, message_dict: dict) -> None:
        """Check the state belongs to this warehouse, then mark it with the warehouse's id.

        Bookmarks saved for another warehouse (one since deleted or replaced)
        would make the taps resume where that one stopped and leave a gap here.
        """
        value = message_dict.get("value")
        if isinstance(value, dict):
            session = self.warehouse_session()
            check_state_marker(value, session.warehouse_id, session.tenant)
            message_dict = {**message_dict, "value": {**value, STATE_MARKER: {"warehouse_id": session.warehouse_id}}}
        super()._process_state_message(message_dict)

    def process_endofpipe(self) -> None:
        """Drain all sinks (which writes the final STATE), then checkpoint and close the database."""
        super().process_endofpipe()
        with self._session_lock:
            if self._session is not None:
                self._session.finish()
                self._session = None
            self._release_tenant_lock()

    def close(self) -> None:
        """Close the database after a failed run; committed batches stay in DuckDB's write-ahead log."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None
            self._release_tenant_lock()

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

        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
