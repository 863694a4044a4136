"""tap-magento: the Magento 2 REST declaration turned into a Singer tap."""

from __future__ import annotations

from importlib import resources

from taps.engine.tap import tap_from_declaration

TapMagento = tap_from_declaration(resources.files(__name__).joinpath("magento.yaml"))

__all__ = ["TapMagento"]
