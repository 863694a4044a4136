"""tap-toy: a source declared only in `source.yaml`."""

from taps.engine.plugins import tap_from_package

TapToy = tap_from_package(__name__)
