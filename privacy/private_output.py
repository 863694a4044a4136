"""Write files that hold personal data: readable by their owner only, replaced atomically."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


class PrivateOutputError(RuntimeError):
    """Raised when an output file cannot be written; the message names the file and the fix."""


def write_private_text(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 through a synced temporary file in the same folder, then rename it."""
    path = path.resolve()
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        msg = (
            f"Cannot write {path}: {error.strerror}. The file is written through a temporary file beside it, so "
            "choose a regular file in a folder you can write to, or leave out --out to print to standard output."
        )
        raise PrivateOutputError(msg) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
