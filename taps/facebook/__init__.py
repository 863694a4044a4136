"""tap-facebook: the Meta Marketing API declaration turned into a Singer tap."""

from __future__ import annotations

from importlib import resources

from taps.engine.tap import tap_from_declaration

TapFacebook = tap_from_declaration(resources.files(__name__).joinpath("facebook.yaml"))

__all__ = ["TapFacebook"]
