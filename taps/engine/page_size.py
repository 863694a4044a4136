"""The page size a stream requests, when its declaration takes it from a setting (`page_size`)."""

from __future__ import annotations

import dataclasses
import typing as t

from singer_sdk.exceptions import ConfigValidationError

from taps.engine.declaration import PaginatorSpec, StreamSpec
from taps.engine.templates import render

#: Paginator kinds that send a page size.
SIZED_PAGINATORS = ("offset", "page_number")


def paginator_with_page_size(spec: StreamSpec, config: t.Mapping[str, t.Any]) -> PaginatorSpec:
    """Return the stream's paginator spec with `page_size` rendered from the config, when declared.

    Raises ConfigValidationError when the rendered value is not a positive integer.
    """
    if spec.page_size is None or spec.paginator.type not in SIZED_PAGINATORS:
        return spec.paginator

    value = render(spec.page_size, config)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"Stream {spec.name!r}: page_size {spec.page_size!r} does not give a positive integer; fix the setting it names."
        raise ConfigValidationError("Config validation failed", errors=[msg])
    return dataclasses.replace(spec.paginator, options={**spec.paginator.options, "page_size": value})
