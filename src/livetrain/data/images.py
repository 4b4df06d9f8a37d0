"""A tiny PNG encoder for grayscale images, so examples need no imaging library."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def grayscale_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a 2-D array of intensities in [0, 1]."""
    image = np.clip(np.asarray(pixels, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    height, width = image.shape
    rows = b"".join(b"\x00" + image[r].tobytes() for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def png_base64(pixels: np.ndarray) -> str:
    """Base64 of `grayscale_png` (no data-URL prefix, as the original server sent)."""
    return base64.b64encode(grayscale_png(pixels)).decode("ascii")
