"""Check STATE messages before they pass: the pipeline stores them in clear.

singer-sdk writes a stream's bookmark either directly under
`bookmarks.<stream>` or, for a partitioned or child stream, once per
partition under `bookmarks.<stream>.partitions[]` with the partition's
`context`. Either may carry `progress_markers` while a sync is running.

A bookmark must sit on a field the policy keeps, and so must a context key
that is a field of the stream. No text in a context may look like an e-mail
address, phone number, IP address or card number.
"""

from __future__ import annotations

import typing as t

from mappers.pii.actions import KEEP
from mappers.pii.errors import MappingError
from mappers.pii.plan import StreamPlan
from privacy.detectors import detect_value_class

_CLASS_WORDS = {"email": "an e-mail address", "phone": "a phone number", "ip": "an IP address", "secret": "a card number"}


def check_state(state: t.Any, plans: t.Mapping[str, StreamPlan], phone_region: str) -> None:
    """Raise `MappingError` when a STATE value may hold personal data; messages never quote a value."""
    bookmarks = state.get("bookmarks") if isinstance(state, dict) else None
    if not isinstance(bookmarks, dict):
        return

    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            continue
        plan = plans.get(stream)
        _check_bookmark(stream, plan, bookmark, "the bookmark", phone_region)
        partitions = bookmark.get("partitions")
        for index, partition in enumerate(partitions if isinstance(partitions, list) else ()):
            if isinstance(partition, dict):
                _check_bookmark(stream, plan, partition, f"partition {index} of the bookmark", phone_region)


def _check_bookmark(stream: str, plan: StreamPlan | None, bookmark: dict[str, t.Any], place: str, phone_region: str) -> None:
    _check_replication_key(stream, plan, bookmark.get("replication_key"), place)
    markers = bookmark.get("progress_markers")
    if isinstance(markers, dict):
        _check_replication_key(stream, plan, markers.get("replication_key"), f"the progress marker of {place}")

    context = bookmark.get("context")
    if isinstance(context, dict):
        for key, value in context.items():
            _check_context_entry(stream, plan, str(key), value, place, phone_region)


def _check_replication_key(stream: str, plan: StreamPlan | None, key: t.Any, place: str) -> None:
    # Without the stream's SCHEMA in this run, the bookmark comes from an earlier run that checked it.
    if key is None or plan is None or key in plan.kept:
        return
    msg = (
        f"Stream {stream!r}: {place} is on field {key!r}, which the policy does not keep, so its "
        "value would be stored in clear in the pipeline state. Bookmark on a field classed none."
    )
    raise MappingError(msg)


def _check_context_entry(stream: str, plan: StreamPlan | None, key: str, value: t.Any, place: str, phone_region: str) -> None:
    field = plan.fields.get(key) if plan is not None else None
    if field is not None and field.action != KEEP:
        msg = (
            f"Stream {stream!r}: the context of {place} has key {key!r}, a field the policy maps with "
            f"{field.action}, so its value would be stored in clear in the pipeline state. Keep that field "
            "(class none) or partition the stream by another field."
        )
        raise MappingError(msg)

    for text in _texts(value):
        found = detect_value_class(text, default_region=phone_region)
        if found is not None:
            msg = (
                f"Stream {stream!r}: the value of context key {key!r} in {place} looks like "
                f"{_CLASS_WORDS.get(found, found)}, which would be stored in clear in the pipeline state. "
                "Partition the stream by a field classed none."
            )
            raise MappingError(msg)


def _texts(value: t.Any) -> t.Iterator[str]:
    """Yield every string in a JSON value, nested ones included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
