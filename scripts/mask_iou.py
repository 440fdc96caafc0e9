#!/usr/bin/env python3
"""Per-frame IoU of two folders of masks (8-bit gray PNGs, 0 background,
non-zero target, named alike: NNNNNN.png). Both empty counts as IoU 1.

    mask_iou.py DIR_A DIR_B [--min 0.98] [--frames N]

Compares the names both folders have (or the first N of DIR_B's), prints
the frames compared, the minimum IoU and the frame it is on, the mean, and
every frame below --min; exits 1 when any is below --min or a frame of
DIR_B is missing from DIR_A. Standard library only (zlib PNG reader).
"""
import argparse
import struct
import sys
import zlib
from pathlib import Path


def png_gray(path):
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, w, h = 8, b"", None, None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            if (depth, color) != (8, 0):
                raise ValueError(f"{path}: expected an 8-bit gray PNG")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], bytes(w)
    for y in range(h):
        f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = bytes(line)
    return w, h, b"".join(rows)


def iou(a, b):
    if a[:2] != b[:2]:
        return 0.0
    inter = union = 0
    for p, q in zip(a[2], b[2]):
        if p or q:
            union += 1
            if p and q:
                inter += 1
    return 1.0 if union == 0 else inter / union


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--min", type=float, default=0.98)
    ap.add_argument("--frames", type=int)
    args = ap.parse_args()
    names = sorted(p.name for p in Path(args.b).glob("*.png"))
    if args.frames is not None:
        names = names[:args.frames]
    missing = [n for n in names if not (Path(args.a) / n).exists()]
    scores = [(iou(png_gray(Path(args.a) / n), png_gray(Path(args.b) / n)), n)
              for n in names if n not in missing]
    if not scores:
        print(f"no masks to compare in {args.a} and {args.b}", file=sys.stderr)
        return 1
    low, at = min(scores)
    mean = sum(s for s, _ in scores) / len(scores)
    print(f"  {len(scores)} frames compared: min IoU {low:.4f} ({at}), mean {mean:.4f}")
    bad = [(s, n) for s, n in scores if s < args.min]
    for s, n in bad:
        print(f"  {n}: IoU {s:.4f} < {args.min}", file=sys.stderr)
    for n in missing:
        print(f"  {n}: missing from {args.a}", file=sys.stderr)
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
