"""target-warehouse: encrypted Parquet lake and encrypted DuckDB warehouse per tenant."""

from __future__ import annotations

from targets.warehouse.target import TargetWarehouse

__all__ = ["TargetWarehouse"]
