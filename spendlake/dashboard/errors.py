"""Errors of the dashboard builder."""

from __future__ import annotations


class DashboardError(RuntimeError):
    """Raised when the dashboard cannot be built or written. The message names the cause and the next step."""
