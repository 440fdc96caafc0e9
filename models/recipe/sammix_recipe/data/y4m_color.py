"""RGB clips as YUV4MPEG2, converted exactly as the runtime converts them (``src/y4m/convert.rs``).

The writer stores full-range BT.601 YCbCr (``XCOLORRANGE=FULL``), 4:2:0 (``C420jpeg``, chroma the
mean of each 2×2 block) or 4:4:4 (``C444``), in the runtime's 16.16 fixed point, rounded to nearest.
The reader gives back the RGB frames the runtime's Y4M source hands the pipeline (chroma upsampled
by nearest neighbour), so a bundle's demo masks are computed on the very pixels ``sammix run`` sees.
"""

from __future__ import annotations

import os

import numpy as np

ONE = 1 << 16
CHROMA = {"420jpeg": 1, "444": 0}  # log2 of the chroma subsampling, both axes


def _q16(x: float) -> int:
    return int(x * ONE + 0.5)


def _to_u8(v: np.ndarray) -> np.ndarray:
    return np.clip((v + ONE // 2) >> 16, 0, 255).astype(np.uint8)


def rgb_to_planes(frame: np.ndarray, colorspace: str) -> bytes:
    """One (H,W,3) uint8 frame → Y, Cb, Cr planes (full-range BT.601)."""
    s = CHROMA[colorspace]
    f = frame.astype(np.int64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = _to_u8(19595 * r + 38470 * g + 7471 * b)
    h, w = r.shape
    ch, cw = (h + (1 << s) - 1) >> s, (w + (1 << s) - 1) >> s
    pad = ((0, ch * (1 << s) - h), (0, cw * (1 << s) - w))
    count = np.pad(np.ones((h, w), np.int64), pad).reshape(ch, 1 << s, cw, 1 << s).sum(axis=(1, 3))

    def block(c):
        return np.pad(c, pad).reshape(ch, 1 << s, cw, 1 << s).sum(axis=(1, 3))

    rs, gs, bs = block(r), block(g), block(b)
    div = count << 16

    def rnd(v):
        return np.clip(np.floor_divide(v + div // 2, div) + 128, 0, 255).astype(np.uint8)

    cb = rnd(-11058 * rs - 21710 * gs + 32768 * bs)
    cr = rnd(32768 * rs - 27439 * gs - 5329 * bs)
    return y.tobytes() + cb.tobytes() + cr.tobytes()


def planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, colorspace: str) -> np.ndarray:
    """Full-range Y (H,W) and chroma planes → (H,W,3) uint8, chroma upsampled by nearest neighbour."""
    s = CHROMA[colorspace]
    h, w = y.shape
    up = lambda c: np.repeat(np.repeat(c, 1 << s, 0), 1 << s, 1)[:h, :w].astype(np.int64) - 128  # noqa: E731
    yy, cbb, crr = y.astype(np.int64) * _q16(1.0), up(cb), up(cr)
    return np.stack([_to_u8(yy + _q16(1.402) * crr),
                     _to_u8(yy - _q16(0.344136) * cbb - _q16(0.714136) * crr),
                     _to_u8(yy + _q16(1.772) * cbb)], axis=-1)


def write_y4m_rgb(path: str | os.PathLike, frames: np.ndarray, fps: int = 25, colorspace: str = "420jpeg") -> None:
    """(T,H,W,3) uint8 frames as a full-range BT.601 YUV4MPEG2 file."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a (T,H,W,3) uint8 array, got {frames.dtype} {frames.shape}")
    if colorspace not in CHROMA:
        raise ValueError(f"colorspace must be one of {sorted(CHROMA)}, not {colorspace!r}")
    _, h, w, _ = frames.shape
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{int(fps)}:1 Ip A1:1 C{colorspace} XCOLORRANGE=FULL\n".encode("ascii"))
        for frame in frames:
            f.write(b"FRAME\n" + rgb_to_planes(frame, colorspace))


def read_y4m_rgb(path: str | os.PathLike) -> np.ndarray:
    """The (T,H,W,3) RGB frames of a clip :func:`write_y4m_rgb` wrote, as the runtime decodes them."""
    data = open(path, "rb").read()
    end = data.index(b"\n")
    tags = {t[:1].decode(): t[1:].decode() for t in data[:end].split(b" ")[1:] if t}
    if tags.get("X") != "COLORRANGE=FULL" or tags.get("C") not in CHROMA:
        raise ValueError(f"{path}: not a full-range C420jpeg/C444 clip of write_y4m_rgb ({tags})")
    w, h, s = int(tags["W"]), int(tags["H"]), CHROMA[tags["C"]]
    ch, cw = (h + (1 << s) - 1) >> s, (w + (1 << s) - 1) >> s
    n = w * h + 2 * cw * ch
    frames, pos = [], end + 1
    while pos < len(data):
        start = data.index(b"\n", pos) + 1
        buf = np.frombuffer(data, np.uint8, n, start)
        y = buf[: w * h].reshape(h, w)
        cb = buf[w * h : w * h + cw * ch].reshape(ch, cw)
        cr = buf[w * h + cw * ch :].reshape(ch, cw)
        frames.append(planes_to_rgb(y, cb, cr, tags["C"]))
        pos = start + n
    return np.stack(frames)
