"""Config validation messages that never quote the value of a secret setting.

jsonschema's messages quote the invalid value, such as "{'private_key': ...}
is not of type 'string', 'null'". singer-sdk 0.54.9 logs them as they are.
For a secret setting, and any value nested in it, the message here names the
setting's place, the rule and the expected type, never the value. Errors on
other settings keep jsonschema's text, because a quoted id helps fix a pattern.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from jsonschema import ValidationError

# Rules whose message at the top of the config names keys, never values.
_ROOT_RULES_WITHOUT_VALUES = frozenset({"required", "additionalProperties", "dependentRequired"})

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def config_error_message(error: ValidationError, secret_settings: t.Collection[str]) -> str:
    """Describe one config validation error, hiding the value when it belongs to a secret setting."""
    path = list(error.path)
    if not path:
        if error.validator in _ROOT_RULES_WITHOUT_VALUES:
            return error.message
        return f"The config fails the JSON Schema rule {error.validator!r}; check that it is a JSON object of settings."

    place = "config" + "".join(f"[{index!r}]" for index in path)
    if path[0] not in secret_settings:
        # singer-sdk's own text, plus the setting's description, which describes the expected form in words.
        message = f"{error.message} in {place}"
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        if error.validator == "pattern" and description:
            message += f". Expected: {description}"
        return message

    hidden = f"the value is not shown because setting {path[0]!r} is secret"
    if error.validator == "type":
        return f"{place} is {_json_type(error.instance)}, but must be {_expected_types(error.validator_value)}; {hidden}."
    return f"{place} fails the JSON Schema rule {error.validator!r} ({error.validator_value!r}); {hidden}."


def _json_type(value: t.Any) -> str:
    if value is None:
        return "null"
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _expected_types(types: t.Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(str(name) for name in names)
