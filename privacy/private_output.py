"""Write files that hold personal data: readable by their owner only, replaced atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 through a synced temporary file in the same folder, then rename it."""
    path = path.resolve()
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
