"""`ArtifactStore`: files under one root, written atomically and checked by SHA-256 on read.

Used by the server and by worker processes alike; it knows nothing of the web.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from livetrain.errors import IntegrityError, ValidationError

SPOOL_DIR = ".spool"  # uploads being received, on the same disk as their final place


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

    def spool(self, *, on_write: Callable[[], None] | None = None) -> Spool:
        """A new file under `.spool/` that hashes what is written to it; `adopt` moves it into place."""
        folder = self.root / SPOOL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=folder)
        return Spool(Path(path), os.fdopen(fd, "w+b"), on_write)

    def adopt(self, spool: Spool, relpath: str) -> ArtifactRef:
        """Move a finished spool file to `relpath` (a rename: no copy), keeping the hash it was written with."""
        target = self.resolve(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        spool.sync()
        os.replace(spool.path, target)
        return ArtifactRef(relpath, spool.sha256, spool.size)

    def clear_spool(self, older_than: float = 24 * 3600) -> int:
        """Remove spool files left by uploads that a crash interrupted; how many were removed."""
        folder = self.root / SPOOL_DIR
        if not folder.is_dir():
            return 0
        removed = 0
        cutoff = time.time() - older_than
        for path in folder.glob("upload-*.part"):
            with _suppress_missing():
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    def verified_path(self, relpath: str, sha256: str) -> Path:
        """The file's path, after checking in chunks (never whole in memory) that it hashes to `sha256`."""
        path = self.resolve(relpath)
        if not path.is_file():
            raise IntegrityError(f"artifact {relpath} is missing")
        if sha256_file(path) != sha256:
            raise IntegrityError(f"artifact {relpath} does not match its recorded SHA-256")
        return path

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


class Spool:
    """A file being received (an upload): written once, front to back, hashed on the way.

    Behaves as the writable, seekable file Werkzeug streams a multipart file into.
    """

    def __init__(self, path: Path, fh: BinaryIO, on_write: Callable[[], None] | None = None) -> None:
        self.path = path
        self._fh = fh
        self._hashing = _HashingWriter(fh)  # the same hashing every artifact write does
        self._on_write = on_write
        self.sha256 = ""

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._hashing.size

    def write(self, data) -> int:
        written = self._hashing.write(data)
        if self._on_write is not None:
            self._on_write()
        return written

    def finish(self) -> None:
        """Close the file (readable by others from here on) and fix the hash; not yet on disk for sure."""
        if not self._fh.closed:
            self._fh.close()
        self.sha256 = self.sha256 or self._hashing.digest.hexdigest()

    def sync(self) -> None:
        """Make sure the bytes are on disk. After the file has been read and prepared the kernel has
        usually written it back already, so syncing then costs little."""
        self.finish()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Close and remove the file, if it is still here."""
        if not self._fh.closed:
            self._fh.close()
        with _suppress_missing():
            os.unlink(self.path)

    # what Werkzeug's form parser and FileStorage call on the stream
    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence) if not self._fh.closed else 0

    def tell(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self.finish()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


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

    # torch.save, zipfile and pyarrow probe for these on file-like objects
    closed = False

    def close(self) -> None:
        """Nothing: the store closes the file underneath once the writer returns."""

    def read(self, *_args) -> bytes:
        """Never: write-only (numpy's savez takes a file object by its having `read`)."""
        raise io.UnsupportedOperation("the artifact writer is write-only")

    def readable(self) -> bool:
        return False

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
