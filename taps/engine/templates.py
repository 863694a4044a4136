"""Templates in declarations: placeholders filled from the config, the stream context or the window.

- `{config.NAME}` is a tap setting;
- `{context.NAME}` is a value of the stream's context (a partition or a parent record);
- `{window.start}` and `{window.end}` are the bounds of the current read window.

A value that is exactly one placeholder keeps the value's type (so
`limit: "{config.page_size}"` sends an integer); a placeholder inside a longer
string is formatted into it.
"""

from __future__ import annotations

import re
import typing as t

_PLACEHOLDER = re.compile(r"\{(config|context|window)\.([a-z][a-z0-9_]*)\}")

NAMESPACES = ("config", "context", "window")


class TemplateError(KeyError):
    """Raised when a template names a value that is not set."""


def referenced_settings(template: str) -> list[str]:
    """Return the setting names a template refers to, in order."""
    return [name for namespace, name in _PLACEHOLDER.findall(template) if namespace == "config"]


def referenced_names(template: str, namespace: str) -> list[str]:
    """Return the names a template refers to in one namespace (config, context or window)."""
    return [name for space, name in _PLACEHOLDER.findall(template) if space == namespace]


def render(
    template: t.Any,
    config: t.Mapping[str, t.Any],
    extra: t.Mapping[str, t.Mapping[str, t.Any]] | None = None,
) -> t.Any:
    """Fill the placeholders of one template from the config and the `extra` namespaces."""
    if not isinstance(template, str):
        return template

    values = {"config": config, **(extra or {})}
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return (values.get(whole.group(1)) or {}).get(whole.group(2))
    return _PLACEHOLDER.sub(lambda match: str(_lookup(match.group(1), match.group(2), values)), template)


def render_mapping(
    templates: t.Mapping[str, t.Any],
    config: t.Mapping[str, t.Any],
    extra: t.Mapping[str, t.Mapping[str, t.Any]] | None = None,
) -> dict[str, t.Any]:
    """Fill every value of a mapping, dropping keys whose value is unset (None)."""
    rendered = {key: render(value, config, extra) for key, value in templates.items()}
    return {key: value for key, value in rendered.items() if value is not None}


def _lookup(namespace: str, name: str, values: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Any:
    found = (values.get(namespace) or {}).get(name)
    if found is None:
        if namespace == "config":
            msg = f"Setting {name!r} has no value; set it in the tap config."
        else:
            msg = f"Template value {namespace}.{name} has no value for this request; check the stream's {namespace}."
        raise TemplateError(msg)
    return found


def render_tree(
    template: t.Any,
    config: t.Mapping[str, t.Any],
    extra: t.Mapping[str, t.Mapping[str, t.Any]] | None = None,
) -> t.Any:
    """Fill placeholders in every string of a JSON-like tree (a request body template)."""
    if isinstance(template, dict):
        return {key: render_tree(value, config, extra) for key, value in template.items()}
    if isinstance(template, list):
        return [render_tree(item, config, extra) for item in template]
    return render(template, config, extra)
