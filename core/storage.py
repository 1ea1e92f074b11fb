"""File storage for uploaded imports (the data dir; a shared volume when workers run on several hosts)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import BinaryIO

from core.errors import InvalidInput

CHUNK = 1024 * 1024


class TooLarge(InvalidInput):
    def __init__(self, limit: int) -> None:
        super().__init__("file", f"larger than the upload limit of {limit} bytes")
        self.limit = limit


def safe_name(filename: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "upload").name)[:100]
    return name or "upload"


def save_upload(root: Path, workspace_id: int, stream: BinaryIO, filename: str, limit: int) -> tuple[Path, int]:
    """Copies an upload to storage in 1 MiB chunks; returns its path and size. Over `limit` → TooLarge."""
    folder = root / str(workspace_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}-{safe_name(filename)}"
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size
