"""mapper-pii: apply the tenant's PII policy to every field, failing closed."""

from __future__ import annotations

import json
import typing as t
from datetime import datetime
from pathlib import Path

import msgspec
import singer_sdk.singerlib as singer
from msgspec import UNSET
from singer_sdk import InlineMapper
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities

from mappers.pii.actions import Transforms
from mappers.pii.fast_path import FastRecordReader, OutputBuffer, StreamCodec
from mappers.pii.plan import MappingError, NameClassifier, StreamPlan, build_plan
from mappers.pii.settings import SettingsError, resolve_settings
from mappers.pii.state_check import check_state
from privacy.field_crypto import FieldCipher
from privacy.keys import TenantKeys
from privacy.pseudonyms import Pseudonymizer
from spendlake.singer_io import BufferedMsgSpecWriter, SafeMsgSpecReader, _replace_lone_surrogates


class PIIMapper(InlineMapper):
    """Map every field by its `x-pii` class and the tenant's policy; never pass a record through unmapped."""

    name = "mapper-pii"
    package_name = "spendlake"
    # Replaced in __init__ by a `FastRecordReader` bound to this mapper.
    message_reader_class = SafeMsgSpecReader
    message_writer_class = BufferedMsgSpecWriter
    # The SDK's stream maps and flattening would reshape records outside the policy.
    capabilities: t.ClassVar[list[t.Any]] = [PluginCapabilities.ABOUT, PluginCapabilities.STRUCTURED_LOGGING]

    config_jsonschema = th.PropertiesList(
        th.Property("tenant", th.StringType, required=True, description="Tenant (client) id whose keys and policy are used."),
        th.Property(
            "source",
            th.StringType,
            description=(
                "Source name of the input, such as stripe: it selects the policy's stream rules and is bound into "
                "encrypted values. Meltano passes the extractor's load schema."
            ),
        ),
        th.Property("home", th.StringType, description="spendlake home folder; defaults to SPENDLAKE_HOME or ./.spendlake."),
        th.Property(
            "policy_file",
            th.StringType,
            description=(
                "Path of the tenant's policy YAML. Defaults to policies/<tenant>.yaml in the working directory "
                "when that file exists, else the built-in defaults."
            ),
        ),
        th.Property(
            "policy",
            th.ObjectType(additional_properties=th.StringType),
            description="PII class to action overrides applied on top of the policy file's classes.",
        ),
        th.Property(
            "unclassified",
            th.StringType,
            allowed_values=["detect", "strict", "fail", "drop"],
            description=(
                "Overrides the policy's mode for fields without an x-pii class: detect, strict (drop them) or fail; "
                "drop means strict."
            ),
        ),
        th.Property(
            "default_phone_region",
            th.StringType,
            description="Overrides the policy's phone_region: the ISO 3166 region of phone numbers written without a country code.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs.setdefault("message_reader", FastRecordReader(self))
        super().__init__(*args, **kwargs)
        try:
            settings = resolve_settings(self.config, Path.cwd())
        except SettingsError as error:
            # The SDK's command line prints these errors without a traceback and exits with 1.
            raise ConfigValidationError("Config validation failed", errors=error.problems) from None

        self._settings = settings
        self._policy = settings.policy
        self._keys = settings.keys
        pseudonymizer = Pseudonymizer(settings.keys.hmac_key, default_phone_region=settings.policy.phone_region)
        self._transforms = Transforms(
            pseudonymizer,
            phone_region=settings.policy.phone_region,
            cipher_factory=lambda: _field_cipher(settings.keys, settings.tenant, pseudonymizer),
        )
        self._erased = settings.erased
        self._plans: dict[str, StreamPlan] = {}
        self._codecs: dict[str, StreamCodec] = {}
        self._matched_rules: set[str] = set()
        self._free_form_warned: set[str] = set()
        self.output = OutputBuffer()
        self._log_start()

    def _log_start(self) -> None:
        for warning in self._settings.warnings:
            self.logger.warning("%s", warning)
        effective = self._policy.effective()
        # The processing facts name the controller's contacts; the log line lists only their keys.
        effective["processing"] = sorted(effective["processing"])
        effective["source"] = self._settings.source or None
        effective["erased_subjects"] = len(self._erased)
        self.logger.info("Effective PII policy: %s", json.dumps(effective, sort_keys=True))

    # SCHEMA

    def map_schema_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Build the stream's plan and emit the rewritten schema."""
        self._assert_line_requires(message_dict, requires={"stream", "schema"})
        stream = message_dict["stream"]
        source = self._settings.source
        plan = build_plan(
            stream,
            message_dict["schema"],
            message_dict.get("key_properties") or [],
            self._policy,
            source,
            classify_name=self._name_classifier(),
        )
        plan.output_schema["x-pii-tenant"] = self._settings.tenant
        plan.output_schema["x-pii-key-id"] = self._keys.pseudonym_key_id
        self._plans[stream] = plan
        self._codecs[stream] = StreamCodec(
            plan, self._transforms, erased=self._erased, fail_on_unknown=self._policy.unclassified == "fail"
        )
        self._matched_rules.add(f"{source}.{stream}")
        self._log_plan(plan)

        yield singer.SchemaMessage(
            stream=stream,
            schema=plan.output_schema,
            key_properties=plan.key_properties,
            bookmark_properties=message_dict.get("bookmark_properties"),
        )

    def _name_classifier(self) -> NameClassifier | None:
        """Return the field-name classifier in detect mode (it is imported only then)."""
        if self._policy.unclassified != "detect":
            return None
        from privacy.detectors import classify_field_name

        return classify_field_name

    # RECORD

    def codec_for(self, stream: str) -> StreamCodec | None:
        """Return the codec of a stream whose SCHEMA arrived, else None."""
        return self._codecs.get(stream)

    def _process_record_message(self, message_dict: dict[str, t.Any]) -> None:
        """Map a RECORD the fast path could not read (a lone surrogate, a field missing from the SCHEMA) the same way."""
        codec, message = self._decoded_record(message_dict)
        codec.write(message, self.output)

    def map_record_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Return the mapped RECORD as a message object; `listen` writes records without this step."""
        codec, message = self._decoded_record(message_dict)
        if codec.map(message.record):
            mapped = msgspec.json.decode(msgspec.json.encode(message.record))
            yield singer.RecordMessage(stream=message.stream, record=mapped, version=message_dict.get("version"))

    def _decoded_record(self, message_dict: dict[str, t.Any]) -> tuple[StreamCodec, t.Any]:
        """Turn a fully decoded RECORD message into the stream's message Struct."""
        self._assert_line_requires(message_dict, requires={"stream", "record"})
        stream = message_dict["stream"]
        codec = self._codecs.get(stream)
        if codec is None:
            msg = f"Stream {stream!r}: a RECORD arrived before its SCHEMA message, so its fields cannot be classified."
            raise MappingError(msg)
        record = message_dict["record"]
        if not isinstance(record, dict):
            msg = f"Stream {stream!r}: a RECORD message's 'record' is a {type(record).__name__}, not a JSON object."
            raise MappingError(msg)

        version = message_dict.get("version")
        time_extracted = _time_text(message_dict.get("time_extracted"))
        message = codec.envelope_type(
            type="RECORD",
            stream=stream,
            record=codec.record_from_values(_replace_lone_surrogates(record)),
            version=version if isinstance(version, int) and not isinstance(version, bool) else UNSET,
            time_extracted=time_extracted if time_extracted is not None else UNSET,
        )
        return codec, message

    # STATE and the other messages

    def map_state_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Pass STATE through once no bookmark, partition context or progress marker may hold personal data."""
        value = message_dict["value"]
        check_state(value, self._plans, self._policy.phone_region)
        yield singer.StateMessage(value=value)

    def map_activate_version_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Pass ACTIVATE_VERSION through unchanged."""
        yield singer.ActivateVersionMessage(stream=message_dict["stream"], version=message_dict["version"])

    def map_batch_message(self, message_dict: dict[str, t.Any]) -> t.Iterable[singer.Message]:
        """Reject BATCH messages: their files bypass this mapper, so personal data would reach disk."""
        msg = (
            f"Stream {message_dict.get('stream')!r}: BATCH messages cannot be mapped, so their files "
            "would reach the warehouse unmapped; turn off batch_config in the tap."
        )
        raise MappingError(msg)

    def write_message(self, message: singer.Message) -> None:
        """Append a message to the output in input order; flush after STATE so it follows its records."""
        self.output.write_line(self.message_writer.serialize_message(message))
        if getattr(message, "type", None) == "STATE":
            self.output.flush()

    # End of input

    def process_endofpipe(self) -> None:
        """Fail on policy rules no SCHEMA matched, log what was dropped, then flush the output."""
        self._check_rules_matched()
        self._log_drops()
        super().process_endofpipe()
        self.output.flush()

    def _check_rules_matched(self) -> None:
        """Stop when a stream rule of this run's source matched no SCHEMA: its stream was never mapped."""
        unmatched = sorted(rules.key for rules in self._policy.stream_rules(self._settings.source) if rules.key not in self._matched_rules)
        if unmatched:
            msg = (
                f"The policy {self._policy.origin} has rules for stream(s) {', '.join(unmatched)}, but no SCHEMA "
                "of such a stream arrived in this run. Remove the rule(s), or select the stream(s) in the tap."
            )
            raise MappingError(msg)

    def _log_plan(self, plan: StreamPlan) -> None:
        grouped = plan.by_action()
        summary = "; ".join(f"{action} {len(names)} ({', '.join(names)})" for action, names in sorted(grouped.items()))
        self.logger.info("Stream %s: %s", plan.stream, summary)
        if plan.unclassified:
            self.logger.warning(
                "Stream %s: %d field(s) without an x-pii class, mapped by the %s mode: %s",
                plan.stream,
                len(plan.unclassified),
                self._policy.unclassified,
                ", ".join(f"{name} ({plan.fields[name].action})" for name in sorted(plan.unclassified)),
            )
        if plan.free_form and plan.stream not in self._free_form_warned:
            self._free_form_warned.add(plan.stream)
            self.logger.warning(
                "Stream %s: kept object field(s) without declared properties pass whole, so sub-fields are not "
                "checked: %s. Declare their properties in the tap to keep only those.",
                plan.stream,
                ", ".join(plan.free_form),
            )

    def _log_drops(self) -> None:
        for stream, codec in self._codecs.items():
            plan = codec.plan
            if plan.unknown_fields:
                counts = ", ".join(f"{name} ({count})" for name, count in sorted(plan.unknown_fields.items()))
                self.logger.warning("Stream %s: dropped field(s) missing from the SCHEMA: %s", stream, counts)
            if plan.dropped_subfields:
                counts = ", ".join(f"{name} ({count})" for name, count in sorted(plan.dropped_subfields.items()))
                self.logger.warning("Stream %s: dropped sub-field value(s) missing from the SCHEMA, per field: %s", stream, counts)
            if codec.erased_records:
                self.logger.info("Stream %s: dropped %d record(s) of erased data subjects", stream, codec.erased_records)


def _field_cipher(keys: TenantKeys, tenant: str, pseudonymizer: Pseudonymizer) -> FieldCipher:
    """Return the tenant's field cipher; the keyring must hold a field key."""
    return FieldCipher(keys.field_key, tenant, pseudonymizer)


def _time_text(value: t.Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str) else None


if __name__ == "__main__":
    PIIMapper.cli()

