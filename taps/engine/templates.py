"""Templates in declarations: `{config.NAME}` is replaced by a tap setting.

A value that is exactly one placeholder keeps the setting's type (so
`limit: "{config.page_size}"` sends an integer); a placeholder inside a longer
string is formatted into it.
"""

from __future__ import annotations

import re
import typing as t

_PLACEHOLDER = re.compile(r"\{config\.([a-z][a-z0-9_]*)\}")


class TemplateError(KeyError):
    """Raised when a template names a setting that has no value."""


def referenced_settings(template: str) -> list[str]:
    """Return the setting names a template refers to, in order."""
    return _PLACEHOLDER.findall(template)


def render(template: t.Any, config: t.Mapping[str, t.Any]) -> t.Any:
    """Fill the placeholders of one template from the tap config."""
    if not isinstance(template, str):
        return template

    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return config.get(whole.group(1))
    return _PLACEHOLDER.sub(lambda match: str(_lookup(match.group(1), config)), template)


def render_mapping(templates: t.Mapping[str, t.Any], config: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Fill every value of a mapping, dropping keys whose setting is unset (None)."""
    rendered = {key: render(value, config) for key, value in templates.items()}
    return {key: value for key, value in rendered.items() if value is not None}


def _lookup(name: str, config: t.Mapping[str, t.Any]) -> t.Any:
    if config.get(name) is None:
        msg = f"Setting {name!r} has no value; set it in the tap config."
        raise TemplateError(msg)
    return config[name]


def render_tree(template: t.Any, config: t.Mapping[str, t.Any]) -> t.Any:
    """Fill placeholders in every string of a JSON-like tree (a request body template)."""
    if isinstance(template, dict):
        return {key: render_tree(value, config) for key, value in template.items()}
    if isinstance(template, list):
        return [render_tree(item, config) for item in template]
    return render(template, config)
