"""tap-google-ads: the Google Ads declaration turned into a Singer tap."""

from __future__ import annotations

from importlib import resources

from taps.engine.tap import tap_from_declaration

TapGoogleAds = tap_from_declaration(resources.files(__name__).joinpath("google_ads.yaml"))

__all__ = ["TapGoogleAds"]
