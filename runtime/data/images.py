"""Qt-free, Pillow-free image reading: PNG (8-bit, non-interlaced) and PGM/PPM (P2/P3/P5/P6).

Returns uint8 arrays of shape (H, W, C) with C = 1 (grey), 3 (RGB) or 4 (RGBA).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import DataError

IMAGE_SUFFIXES = {".png", ".pgm", ".ppm", ".pnm"}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Largest image decoded (width x height): a small file can declare a huge image whose
# pixels would fill the memory (a decompression bomb: 12000x12000 in 140 KB is 1.4 GB)
MAX_PIXELS = 40_000_000


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    data = path.read_bytes()
    try:
        if data.startswith(_PNG_SIG):
            return _png(data)
        if data[:2] in (b"P2", b"P3", b"P5", b"P6"):
            return _pnm(data)
    except (ValueError, IndexError, zlib.error, struct.error) as exc:
        raise DataError(f"cannot decode image: {exc}", str(path)) from None
    raise DataError("not a PNG, PGM or PPM image", str(path))


def _png(data: bytes) -> np.ndarray:
    pos, idat, palette, hdr = 8, [], None, None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        raise ValueError("no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = hdr
    _check_size(w, h)
    if depth != 8 or interlace or ctype not in _CHANNELS:
        raise ValueError(f"only 8-bit non-interlaced PNGs are supported (bit depth {depth}, "
                         f"colour type {ctype}, interlace {interlace})")
    bpp = _CHANNELS[ctype]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    stride = w * bpp
    if raw.size < h * (stride + 1):
        raise ValueError("truncated image data")
    rows = raw[:h * (stride + 1)].reshape(h, stride + 1)
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 1:  # Sub: cumulative per channel
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) & 255
        elif f == 2:  # Up
            cur = (line + prev) & 255
        elif f in (3, 4):  # Average, Paeth: sequential along the row
            cur = line.copy()
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                if f == 3:
                    cur[x] = (cur[x] + ((a + b) >> 1)) & 255
                else:
                    c = prev[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[x] = (cur[x] + pred) & 255
        else:
            raise ValueError(f"bad filter type {f} in row {y}")
        out[y] = cur
        prev = cur
    img = out.astype(np.uint8).reshape(h, w, bpp)
    if ctype == 3:
        if palette is None:
            raise ValueError("palette image without PLTE chunk")
        img = palette[img[..., 0]]
    elif ctype == 4:  # grey + alpha: drop alpha
        img = img[..., :1]
    return img


def _pnm(data: bytes) -> np.ndarray:
    magic = data[:2]
    tokens, pos = [], 2
    while len(tokens) < 3:  # width, height, maxval (with # comments)
        while data[pos:pos + 1].isspace():
            pos += 1
        if pos >= len(data):
            raise ValueError("the header ends early (truncated file)")
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        tokens.append(int(data[pos:end]))
        pos = end
    w, h, maxval = tokens
    if not 0 < maxval < 65536:
        raise ValueError(f"maximum value {maxval} must be between 1 and 65535")
    _check_size(w, h)
    c = 3 if magic in (b"P3", b"P6") else 1
    if magic in (b"P5", b"P6"):
        dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
        px = np.frombuffer(data[pos + 1:], dtype)[:w * h * c]
    else:
        px = np.array(data[pos:].split()[:w * h * c], dtype=np.int64)
    if px.size < w * h * c:
        raise ValueError("truncated image data")
    img = px.reshape(h, w, c).astype(np.float64) * (255.0 / maxval)
    return np.round(img).astype(np.uint8)


def _check_size(w: int, h: int) -> None:
    if w < 1 or h < 1:
        raise ValueError(f"size {w}x{h} has no pixels")
    if w * h > MAX_PIXELS:
        raise ValueError(f"size {w}x{h} is {w * h:,} pixels, more than the limit of "
                         f"{MAX_PIXELS:,} (runtime.data.images.MAX_PIXELS)")


def write_pgm(path: str | Path, img: np.ndarray) -> None:
    """Write a grey (H, W) or RGB (H, W, 3) uint8 image as PGM/PPM (tests, examples)."""
    img = np.asarray(img, np.uint8)
    magic = b"P6" if img.ndim == 3 and img.shape[2] == 3 else b"P5"
    h, w = img.shape[:2]
    Path(path).write_bytes(magic + f"\n{w} {h}\n255\n".encode() + img.tobytes())


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write a grey (H, W) or RGB (H, W, 3) uint8 PNG (filter type 0)."""
    img = np.asarray(img, np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    ctype = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    Path(path).write_bytes(_PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
