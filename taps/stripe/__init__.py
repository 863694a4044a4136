"""tap-stripe: the Stripe declaration turned into a Singer tap."""

from __future__ import annotations

from importlib import resources

from taps.engine.tap import tap_from_declaration

TapStripe = tap_from_declaration(resources.files(__name__).joinpath("stripe.yaml"))

__all__ = ["TapStripe"]
