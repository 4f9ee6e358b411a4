#!/usr/bin/env python3
"""Checks a PNG screenshot of /vars: not blank, and a chart was drawn.
With --min-flame-pixels N (for /hotspots), checks for a flame graph instead
of a chart line: at least N pixels of the flame palette (red to yellow:
R >= 200, B <= 60, G <= 235).

Usage: check_screenshot.py FILE.png [--min-colors N] [--min-line-pixels N]
                           [--min-flame-pixels N]

Decodes the PNG with the standard library only (8-bit RGB or RGBA,
non-interlaced, all five filter types), then asserts that the image has
many distinct colors (a rendered page, not a blank or one-color canvas)
and at least a few hundred pixels of the chart's line color #2f6fed
(47,111,237) within a small tolerance -- the nav bar and links use other
colors, so only a drawn chart line produces that many.
"""

import struct
import sys
import zlib

LINE = (47, 111, 237)
TOLERANCE = 12


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos = 8
    idat = []
    header = None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace != 0:
        raise ValueError(
            f"unsupported PNG: bit depth {depth}, color type {color}, interlace {interlace}"
            " (need 8-bit RGB/RGBA, not interlaced)"
        )
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("IDAT size does not match the image size")
    rows = []
    prev = bytearray(stride)
    for y in range(height):
        off = y * (stride + 1)
        ftype = raw[off]
        line = bytearray(raw[off + 1 : off + 1 + stride])
        if ftype == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                if pa <= pb and pa <= pc:
                    pred = a
                elif pb <= pc:
                    pred = b
                else:
                    pred = c
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError(f"row {y}: unknown filter type {ftype}")
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main():
    args = sys.argv[1:]
    if not args:
        print(
            "usage: check_screenshot.py FILE.png [--min-colors N] [--min-line-pixels N]"
            " [--min-flame-pixels N]",
            file=sys.stderr,
        )
        return 2
    path = args[0]
    min_colors, min_line, min_flame = 50, 300, 0
    i = 1
    while i < len(args):
        if args[i] == "--min-colors":
            min_colors = int(args[i + 1])
        elif args[i] == "--min-line-pixels":
            min_line = int(args[i + 1])
        elif args[i] == "--min-flame-pixels":
            min_flame = int(args[i + 1])
            min_line = 0
        else:
            print(f"check_screenshot: unknown flag {args[i]}", file=sys.stderr)
            return 2
        i += 2
    try:
        width, height, bpp, rows = read_png(path)
    except (OSError, ValueError, zlib.error) as e:
        print(f"check_screenshot: {e}", file=sys.stderr)
        return 1
    colors = set()
    line_pixels = 0
    flame_pixels = 0
    r0, g0, b0 = LINE
    for row in rows:
        for x in range(0, len(row), bpp):
            r, g, b = row[x], row[x + 1], row[x + 2]
            colors.add((r, g, b))
            if abs(r - r0) <= TOLERANCE and abs(g - g0) <= TOLERANCE and abs(b - b0) <= TOLERANCE:
                line_pixels += 1
            if r >= 200 and b <= 60 and g <= 235:
                flame_pixels += 1
    print(
        f"check_screenshot: {path}: {width}x{height}, {len(colors)} distinct colors, "
        f"{line_pixels} chart-line pixels (#2f6fed +-{TOLERANCE}), {flame_pixels} flame pixels"
    )
    ok = True
    if len(colors) < min_colors:
        print(f"check_screenshot: looks blank: {len(colors)} colors < {min_colors}", file=sys.stderr)
        ok = False
    if line_pixels < min_line:
        print(
            f"check_screenshot: no chart drawn: {line_pixels} line-color pixels < {min_line}",
            file=sys.stderr,
        )
        ok = False
    if flame_pixels < min_flame:
        print(
            f"check_screenshot: no flame graph drawn: {flame_pixels} flame-color pixels < {min_flame}",
            file=sys.stderr,
        )
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
