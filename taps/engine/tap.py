"""Turn a validated source declaration into a singer-sdk Tap class."""

from __future__ import annotations

import threading
import typing as t
from datetime import UTC, date, datetime

from requests.auth import AuthBase

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.plugin_base import JSONSchemaValidator

from taps.engine.auth import auth_config_problems, build_authenticator, register_secret
from taps.engine.config_errors import config_error_message
from taps.engine.declaration import SettingSpec, SourceSpec, StreamSpec, load_declaration
from taps.engine.fields import annotate_schema
from spendlake.singer_io import BufferedMsgSpecWriter
from taps.engine.stream import DeclarativeStream
from spendlake.state_marker import STATE_MARKER


SUNSET_WARNING_DAYS = 30
UNSAFE_CAPABILITIES = (PluginCapabilities.BATCH, PluginCapabilities.STREAM_MAPS, PluginCapabilities.FLATTENING)
UNSAFE_SETTINGS = ("batch_config", "stream_maps", "stream_map_config", "flattening_enabled")


def settings_schema(settings: t.Iterable[SettingSpec]) -> dict[str, t.Any]:
    """Return the tap's config JSON Schema built from the declared settings."""
    properties: dict[str, t.Any] = {}
    required: list[str] = []
    for setting in settings:
        prop: dict[str, t.Any] = {"type": [setting.type] if setting.required else [setting.type, "null"]}
        if setting.type == "array":
            prop["items"] = {"type": "string", **({"pattern": setting.pattern} if setting.pattern else {})}
        elif setting.pattern:
            prop["pattern"] = setting.pattern
        for key in ("format", "default", "minimum", "maximum", "description"):
            value = getattr(setting, key)
            if value is not None:
                prop[key] = value
        if setting.secret:
            prop["secret"] = True
            prop["writeOnly"] = True
        properties[setting.name] = prop
        if setting.required:
            required.append(setting.name)
    return {"type": "object", "properties": properties, "required": required}


class StreamsStoppedError(RuntimeError):
    """Raised at the end of a sync when an API error stopped one or more stream partitions."""


class DeclarativeTap(Tap):
    """A tap whose streams come from a `SourceSpec`; subclasses set `source`."""

    source: t.ClassVar[SourceSpec]
    package_name = "spendlake"
    message_writer_class = BufferedMsgSpecWriter

    # BATCH messages bypass record post-processing, so they would write fields
    # outside the whitelist to disk before the PII mapper could see them. Stream
    # maps and flattening can put a personal value into a field classed `none`,
    # or rename fields away from their class, so they are off too.
    capabilities: t.ClassVar[list[t.Any]] = [
        capability for capability in Tap.capabilities if capability not in UNSAFE_CAPABILITIES
    ]

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, t.Any]) -> None:
        """Add none of singer-sdk's built-in settings: batch, stream maps and flattening are off.

        singer-sdk 0.54 appends the stream-map and flattening settings by the
        base class's capabilities, so `--about` would list settings a sync rejects.
        """

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate the config as singer-sdk 0.54.9 does, but never quote the value of a secret setting.

        The SDK's `_validate_config` puts jsonschema's message, which quotes the
        invalid value, into the error and the log. Only the message text differs here.
        """
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        secret_settings = {setting.name for setting in self.source.settings if setting.secret}

        # The SDK's validator also fills in declared defaults, so it is used as is.
        validator = JSONSchemaValidator(schema)
        errors = [config_error_message(error, secret_settings) for error in validator.iter_errors(self._config)]
        if errors and raise_errors:
            raise ConfigValidationError("Config validation failed", errors=errors, schema=schema)
        if errors:
            self.logger.warning("Config validation failed")
        return errors

    def source_authenticator(self) -> AuthBase:
        """Return the one authenticator of this tap, built on first use from the declared auth."""
        with self._authenticator_lock:
            if self._authenticator is None:
                self._authenticator = build_authenticator(self.source.auth, self.config, source_name=self.source.name)
            return self._authenticator

    def stream_base(self, spec: StreamSpec) -> type[DeclarativeStream]:
        """Return the class a declared stream's class derives from; a source's hook module may override it."""
        return DeclarativeStream

    def discover_streams(self) -> list[DeclarativeStream]:
        """Create one stream per declared stream, each of its own class so children find their parent."""
        classes = {
            spec.name: type(f"{spec.name.title().replace('_', '')}Stream", (self.stream_base(spec),), {"__module__": __name__})
            for spec in self.source.streams
        }
        for spec in self.source.streams:
            classes[spec.name].selected_by_default = spec.selected_by_default
            if spec.parent:
                classes[spec.name].parent_stream_type = classes[spec.parent]
                # One bookmark per child stream, unless the declaration names context keys
                # (classed none) to split it by. Other parent values stay out of STATE.
                classes[spec.name].state_partitioning_keys = list(spec.state_keys)
        return [classes[spec.name](self, spec, self.source) for spec in self.source.streams]

    @property
    def catalog_dict(self) -> dict[str, t.Any]:
        """Return the catalog with the `x-pii` class on every field."""
        catalog = super().catalog_dict
        for entry in catalog.get("streams", []):
            spec = self._stream_spec(entry.get("tap_stream_id"))
            if spec is not None:
                entry["schema"] = annotate_schema(entry["schema"], spec)
        return catalog

    def load_state(self, state: dict[str, t.Any]) -> None:
        """Load bookmarks, and keep the warehouse marker the target puts into state."""
        super().load_state(state)
        if STATE_MARKER in state:
            self.state[STATE_MARKER] = state[STATE_MARKER]

    def note_stopped_stream(self, message: str) -> None:
        """Record a stream partition that stopped on an API error; `sync_all` fails at its end."""
        self._stopped_streams.append(message)

    def sync_all(self) -> None:
        """Sync every stream, then fail if an API error stopped any partition, after the others finished."""
        super().sync_all()
        if self._stopped_streams:
            listing = "\n".join(f"  - {message}" for message in self._stopped_streams)
            msg = f"{len(self._stopped_streams)} stream partition(s) stopped on an API error (a spent quota, a refused account, ...):\n{listing}"
            raise StreamsStoppedError(msg)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._stopped_streams: list[str] = []
        self._authenticator: AuthBase | None = None
        self._authenticator_lock = threading.Lock()
        super().__init__(*args, **kwargs)
        self._mask_secret_settings()
        self._warn_on_sunset()

    def _mask_secret_settings(self) -> None:
        """Mask every secret setting in log records, also those sent as plain headers (developer-token)."""
        for setting in self.source.settings:
            value = self.config.get(setting.name)
            if setting.secret and isinstance(value, str) and value:
                register_secret(value)

    def _warn_on_sunset(self) -> None:
        """Log a warning when the declared API version is past, or within 30 days of, its sunset date."""
        sunset = self.source.version_sunset
        if not sunset:
            return
        days_left = (date.fromisoformat(str(sunset)) - datetime.now(UTC).date()).days
        if days_left < 0:
            self.logger.warning(
                "API version %s of %s reached its sunset on %s; update the declaration to a supported version.",
                self.source.api_version, self.source.name, sunset,
            )
        elif days_left <= SUNSET_WARNING_DAYS:
            self.logger.warning(
                "API version %s of %s reaches its sunset on %s, in %d day(s).",
                self.source.api_version, self.source.name, sunset, days_left,
            )

    def setup_mapper(self) -> None:
        """Check the config, then register stream schemas with their `x-pii` classes for SCHEMA messages."""
        errors = self._config_errors()
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        super().setup_mapper()
        for stream_name, maps in list(self.mapper.stream_maps.items()):
            spec = self._stream_spec(stream_name)
            if spec is None or not maps:
                continue
            primary = maps[0]
            self.mapper.register_raw_stream_schema(
                stream_name,
                annotate_schema(primary.raw_schema, spec),
                primary.raw_key_properties,
            )

    def _config_errors(self) -> list[str]:
        """Find what the config JSON Schema does not check: unsafe SDK settings and timestamp formats."""
        errors = auth_config_problems(self.source.auth, self.config)
        unsafe = [name for name in UNSAFE_SETTINGS if self.config.get(name)]
        if unsafe:
            errors.append(
                f"Setting(s) {', '.join(unsafe)} cannot be used with {self.name}: they change records after "
                "their PII classes are set. Remove them; choose what happens to personal data in mapper-pii's policy."
            )
        for setting in self.source.settings:
            value = self.config.get(setting.name)
            if setting.format == "date-time" and value is not None and not _is_timestamp(value):
                errors.append(
                    f"Setting {setting.name!r} is not an ISO-8601 timestamp; use a value like 2026-01-01T00:00:00Z."
                )
        return errors

    def _stream_spec(self, name: str | None) -> StreamSpec | None:
        return next((stream for stream in self.source.streams if stream.name == name), None)


def _is_timestamp(value: t.Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def build_tap_class(source: SourceSpec) -> type[DeclarativeTap]:
    """Create the Tap subclass `tap-<name>` that serves the declared streams."""
    class_name = "Tap" + "".join(part.capitalize() for part in source.name.split("_"))
    attributes = {
        "name": f"tap-{source.name.replace('_', '-')}",
        "config_jsonschema": settings_schema(source.settings),
        "source": source,
        "__module__": __name__,
        "__doc__": source.description or f"Singer tap for {source.name}, built from its declaration.",
    }
    return t.cast("type[DeclarativeTap]", type(class_name, (DeclarativeTap,), attributes))


def tap_from_declaration(path: t.Any) -> type[DeclarativeTap]:
    """Load, validate and build a tap class from a YAML declaration path or resource."""
    return build_tap_class(load_declaration(path))
