"""target-warehouse: encrypted Parquet lake and encrypted DuckDB warehouse per tenant."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from targets.warehouse.target import TargetWarehouse

__all__ = ["TargetWarehouse"]


def __getattr__(name: str) -> t.Any:
    # Imported on first use, so that `targets.warehouse.main` can configure pyarrow before pyarrow loads.
    if name == "TargetWarehouse":
        from targets.warehouse.target import TargetWarehouse

        return TargetWarehouse
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
