"""`ArtifactStore`: files under one root, written atomically and checked by SHA-256 on read.

Used by the server and by worker processes alike; it knows nothing of the web.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from livetrain.errors import IntegrityError, ValidationError


@dataclass(frozen=True)
class ArtifactRef:
    """Where a file lives (relative to the store's root) and what its bytes hash to."""

    path: str
    sha256: str
    size: int


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Files under `root`; every path is relative and may not leave the root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def resolve(self, relpath: str) -> Path:
        """The absolute path of `relpath`, refusing anything that escapes the root."""
        if not relpath or relpath.startswith(("/", "\\")) or "\x00" in relpath:
            raise ValidationError(f"invalid artifact path {relpath!r}")
        full = (self.root / relpath).resolve()
        if full != self.root and self.root not in full.parents:
            raise ValidationError(f"artifact path {relpath!r} leaves the artifact folder")
        return full

    def write(self, relpath: str, writer: Callable[[BinaryIO], None]) -> ArtifactRef:
        """Write through `writer` into a temp file, fsync, then rename into place."""
        target = self.resolve(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                hashing = _HashingWriter(fh)
                writer(hashing)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with _suppress_missing():
                os.unlink(tmp)
            raise
        return ArtifactRef(relpath, hashing.digest.hexdigest(), hashing.size)

    def write_bytes(self, relpath: str, data: bytes) -> ArtifactRef:
        """Atomically store `data` at `relpath`."""
        return self.write(relpath, lambda fh: fh.write(data))

    def open_verified(self, relpath: str, sha256: str) -> io.BytesIO:
        """The file's bytes, after checking they hash to `sha256`."""
        path = self.resolve(relpath)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"artifact {relpath} is missing") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"artifact {relpath} does not match its recorded SHA-256")
        return io.BytesIO(data)

    def exists(self, relpath: str) -> bool:
        """True if the file is there."""
        return self.resolve(relpath).is_file()

    def delete(self, relpath: str) -> bool:
        """Remove a file or a folder; True if something was removed."""
        path = self.resolve(relpath)
        if path.is_dir():
            shutil.rmtree(path)
            return True
        if path.exists():
            path.unlink()
            return True
        return False


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += len(view)
        return self._fh.write(view)

    def flush(self) -> None:
        self._fh.flush()

    # torch.save and zipfile probe for these on file-like objects
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.size


class _suppress_missing:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, FileNotFoundError)
