"""The warehouse's id in pipeline state, so bookmarks are never applied to another warehouse.

The target adds `spendlake_warehouse: {warehouse_id: ...}` to every STATE it
forwards. The taps carry it through the next run's state. When it names
another warehouse (the tenant's warehouse was deleted or replaced while the
bookmarks stayed), the run stops before that state is saved again.
"""

from __future__ import annotations

import typing as t

STATE_MARKER = "spendlake_warehouse"


class StateMismatchError(RuntimeError):
    """Raised when the pipeline state was saved for another warehouse of the tenant."""


def check_state_marker(state: dict[str, t.Any], warehouse_id: str, tenant: str) -> None:
    """Raise when `state` carries a marker of a warehouse other than `warehouse_id`."""
    marker = state.get(STATE_MARKER)
    saved_for = marker.get("warehouse_id") if isinstance(marker, dict) else None
    if saved_for is None or saved_for == warehouse_id:
        return
    msg = (
        f"The bookmarks of this run were saved for warehouse {saved_for} of tenant {tenant!r}, but the tenant's "
        f"warehouse is now {warehouse_id}: it was deleted or replaced while the bookmarks stayed. Resuming from them "
        "would leave a gap. Clear the pipeline state (`meltano state clear` for the job, or delete "
        ".spendlake/state for the demo) to load everything again, or restore the warehouse that matches the state."
    )
    raise StateMismatchError(msg)
