"""Reject a batch that contains two records with the same primary key.

Two rows with one key in one batch mean the key misses a dimension the source
groups by (for example a breakdown such as country), so an upsert would keep
one of them at random. Failing loudly keeps both rows' owners visible. The
error names the key columns and the input lines of two such records, not the
key's value.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from targets.warehouse.arrow_schema import StreamLayout
from targets.warehouse.errors import DuplicateKeyError

_POSITION = "__spendlake_position"


def reject_duplicate_keys(layout: StreamLayout, table: pa.Table, line_numbers: Sequence[int]) -> None:
    """Raise `DuplicateKeyError` when a key value occurs twice in `table`; no-op for keyless streams."""
    keys = list(layout.key_properties)
    if not keys or table.num_rows < 2:
        return

    # Counting the distinct keys is about three times cheaper than listing the rows of each key.
    if table.select(keys).group_by(keys, use_threads=False).aggregate([]).num_rows == table.num_rows:
        return

    keyed = table.select(keys).append_column(_POSITION, pa.array(range(table.num_rows), pa.int64()))
    groups = keyed.group_by(keys, use_threads=False).aggregate([(_POSITION, "list")])
    sizes = pc.list_value_length(groups[f"{_POSITION}_list"])
    repeated = groups.filter(pc.greater(sizes, 1))
    positions = sorted(repeated[f"{_POSITION}_list"][0].as_py())
    first, second = (line_numbers[position] for position in positions[:2])
    msg = (
        f"Stream {layout.stream!r}: lines {first} and {second} carry the same primary key over the key columns "
        f"{keys}; {repeated.num_rows} key value(s) occur more than once in this batch of {table.num_rows} records. "
        f"The key must include every dimension the source groups by; fix the stream's key properties. Nothing "
        f"from this batch was written."
    )
    raise DuplicateKeyError(msg)
