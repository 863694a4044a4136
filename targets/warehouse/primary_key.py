"""Reject a batch that contains two records with the same primary key.

Two rows with one key in one batch mean the key misses a dimension the source
groups by (for example a breakdown such as country), so an upsert would keep
one of them at random. Failing loudly keeps both rows' owners visible.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from targets.warehouse.arrow_schema import StreamLayout
from targets.warehouse.errors import DuplicateKeyError


def reject_duplicate_keys(layout: StreamLayout, table: pa.Table) -> None:
    """Raise `DuplicateKeyError` when a key value occurs twice in `table`; no-op for keyless streams."""
    keys = list(layout.key_properties)
    if not keys or table.num_rows < 2:
        return

    counts = table.group_by(keys).aggregate([([], "count_all")])
    if counts.num_rows == table.num_rows:
        return

    repeated = counts.filter(pc.greater(counts["count_all"], 1)).num_rows
    msg = (
        f"Stream {layout.stream!r}: {repeated} primary key value(s) over the key columns {keys} occur more "
        f"than once in one batch of {table.num_rows} records. The key must include every dimension the "
        f"source groups by; fix the stream's key properties. Nothing from this batch was written."
    )
    raise DuplicateKeyError(msg)
