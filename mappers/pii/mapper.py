"""mapper-pii: hash or drop personal data per the tenant's policy, failing closed."""

from __future__ import annotations

import sys
import typing as t
from datetime import UTC, datetime

import singer_sdk.singerlib as singer
from singer_sdk import InlineMapper
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities

from mappers.pii.plan import MappingError, StreamPlan, build_plan
from privacy.keys import KeyringError, load_tenant_keys
from privacy.policy import PII_CLASSES, UNCLASSIFIED_MODES, PolicyError, build_policy
from privacy.pseudonyms import Pseudonymizer
from spendlake.paths import InvalidTenantError, spendlake_home, validate_tenant
from spendlake.singer_io import BufferedMsgSpecWriter, SafeMsgSpecReader


class PIIMapper(InlineMapper):
    """Hash or drop every field by its `x-pii` class; never pass a record through unmapped."""

    name = "mapper-pii"
    package_name = "spendlake"
    message_reader_class = SafeMsgSpecReader
    message_writer_class = BufferedMsgSpecWriter
    # The SDK's stream maps and flattening would reshape records outside the policy.
    capabilities: t.ClassVar[list[t.Any]] = [PluginCapabilities.ABOUT, PluginCapabilities.STRUCTURED_LOGGING]

    config_jsonschema = th.PropertiesList(
        th.Property("tenant", th.StringType, required=True, description="Tenant (client) id whose keys are used."),
        th.Property("home", th.StringType, description="spendlake home folder; defaults to SPENDLAKE_HOME or ./.spendlake."),
        th.Property(
            "policy",
            th.ObjectType(*(th.Property(name, th.StringType) for name in PII_CLASSES), additional_properties=False),
            description="PII class to action (keep, drop, hmac) overrides; unset classes use the defaults.",
        ),
        th.Property(
            "unclassified",
            th.StringType,
            default="drop",
            allowed_values=list(UNCLASSIFIED_MODES),
            description="What to do with a field that has no x-pii class: drop it (counted) or fail the run.",
        ),
        th.Property(
            "default_phone_region",
            th.StringType,
            default="US",
            description="ISO 3166 region used to read phone numbers written without a country code.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        reshaping = [name for name in ("stream_maps", "flattening_enabled") if self.config.get(name)]
        if reshaping:
            msg = f"Setting(s) {', '.join(reshaping)} cannot be used with mapper-pii; set the policy instead."
            raise ConfigValidationError("Config validation failed", errors=[msg])

        try:
            tenant = validate_tenant(self.config["tenant"])
            self._policy = build_policy(self.config.get("policy"), self.config.get("unclassified") or "drop")
            keys = load_tenant_keys(spendlake_home(self.config.get("home")), tenant)
        except (InvalidTenantError, PolicyError, KeyringError) as error:
            # The SDK's command line prints these errors without a traceback and exits with 1.
            raise ConfigValidationError("Config validation failed", errors=[str(error)]) from None

        self._tenant = tenant
        self._key_id = keys.pseudonym_key_id
        region = self.config.get("default_phone_region") or "US"
        self._pseudonymizer = Pseudonymizer(keys.hmac_key, default_phone_region=region)
        self._plans: dict[str, StreamPlan] = {}

    def map_schema_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Build the stream's plan and emit the rewritten schema."""
        stream = message_dict["stream"]
        plan = build_plan(stream, message_dict["schema"], message_dict.get("key_properties") or [], self._policy)
        plan.output_schema["x-pii-tenant"] = self._tenant
        plan.output_schema["x-pii-key-id"] = self._key_id
        self._plans[stream] = plan
        self._log_plan(plan)

        yield singer.SchemaMessage(
            stream=stream,
            schema=plan.output_schema,
            key_properties=plan.key_properties,
            bookmark_properties=message_dict.get("bookmark_properties"),
        )

    def map_record_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Emit the record with kept fields copied, hashed fields replaced and the rest left out."""
        stream = message_dict["stream"]
        plan = self._plans.get(stream)
        if plan is None:
            msg = f"Stream {stream!r}: a RECORD arrived before its SCHEMA message, so its fields cannot be classified."
            raise MappingError(msg)

        record = message_dict.get("record")
        if not isinstance(record, dict):
            msg = f"Stream {stream!r}: a RECORD message's 'record' is a {type(record).__name__}, not a JSON object."
            raise MappingError(msg)
        mapped = self._map_record(plan, record)
        yield singer.RecordMessage(
            stream=stream,
            record=mapped,
            version=message_dict.get("version"),
            time_extracted=_parse_time_extracted(message_dict.get("time_extracted")),
        )

    def map_state_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Pass STATE through once no bookmark is on a field the policy hashes or drops."""
        value = message_dict["value"]
        self._check_bookmarks(value)
        yield singer.StateMessage(value=value)

    def _check_bookmarks(self, state: t.Any) -> None:
        """Raise when a bookmark's value may be personal data: STATE is stored in clear."""
        bookmarks = state.get("bookmarks") if isinstance(state, dict) else None
        for stream, bookmark in (bookmarks or {}).items():
            key = bookmark.get("replication_key") if isinstance(bookmark, dict) else None
            plan = self._plans.get(stream)
            if key is None or plan is None or key in plan.kept:
                continue
            msg = (
                f"Stream {stream!r}: the bookmark is on field {key!r}, which the policy does not keep, so its "
                "value would be stored in clear in the pipeline state. Bookmark on a field classed none."
            )
            raise MappingError(msg)

    def map_activate_version_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Pass ACTIVATE_VERSION through unchanged."""
        yield singer.ActivateVersionMessage(stream=message_dict["stream"], version=message_dict["version"])

    def map_batch_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Reject BATCH messages: their files bypass this mapper, so personal data would reach disk."""
        msg = (
            f"Stream {message_dict.get('stream')!r}: BATCH messages cannot be mapped, so their files "
            "would reach the warehouse unhashed; turn off batch_config in the tap."
        )
        raise MappingError(msg)

    def _map_record(self, plan: StreamPlan, record: dict[str, t.Any]) -> dict[str, t.Any]:
        mapped = {name: record[name] for name in plan.kept if name in record}
        pseudonym = self._pseudonymizer.pseudonym
        for name, pii_class in plan.hashed.items():
            if name in record:
                mapped[name] = pseudonym(pii_class, record[name])

        if len(record) > len(mapped) + len(plan.dropped & record.keys()):
            self._count_unknown(plan, record)
        return mapped

    def _count_unknown(self, plan: StreamPlan, record: dict[str, t.Any]) -> None:
        """Fields absent from the SCHEMA have no class: drop and count them, or fail."""
        unknown = record.keys() - set(plan.kept) - plan.hashed.keys() - plan.dropped
        if unknown and self._policy.unclassified == "fail":
            msg = f"Stream {plan.stream!r}: a record carries field(s) not in its SCHEMA: {', '.join(sorted(unknown))}."
            raise MappingError(msg)
        plan.unknown_fields.update(unknown)

    def _log_plan(self, plan: StreamPlan) -> None:
        self.logger.info(
            "Stream %s: keeping %d field(s), hashing %d (%s), dropping %d (%s)",
            plan.stream,
            len(plan.kept),
            len(plan.hashed),
            ", ".join(sorted(plan.hashed)) or "none",
            len(plan.dropped),
            ", ".join(sorted(plan.dropped)) or "none",
        )
        if plan.unclassified:
            self.logger.warning(
                "Stream %s: dropped %d field(s) without an x-pii class: %s",
                plan.stream,
                len(plan.unclassified),
                ", ".join(sorted(plan.unclassified)),
            )

    def _summarise_unknown(self) -> None:
        for plan in self._plans.values():
            if plan.unknown_fields:
                counts = ", ".join(f"{name} ({count})" for name, count in sorted(plan.unknown_fields.items()))
                self.logger.warning("Stream %s: dropped field(s) missing from the SCHEMA: %s", plan.stream, counts)

    def process_endofpipe(self) -> None:
        """Log the fields dropped for lack of a schema entry, then flush the output."""
        self._summarise_unknown()
        super().process_endofpipe()
        sys.stdout.flush()


def _parse_time_extracted(value: t.Any) -> datetime | None:
    """Read `time_extracted`, which arrives as ISO-8601 text; a value without a zone is UTC."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


if __name__ == "__main__":
    PIIMapper.cli()
