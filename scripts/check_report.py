#!/usr/bin/env python3
"""Checks a report page as a browser rendered it against the JSON it came from.

    check_report.py DOM.html REPORT.json [--min-numbers N] [--same-as OTHER.json]

DOM.html is the page's DOM after rendering (`chromium-headless-shell --dump-dom`). Every element with
a `data-key` (a JSON pointer) must show the JSON's number at that pointer, rounded to its
`data-decimals`; there must be at least N of them; every chart must be an SVG with something drawn;
every picture the page shows must exist beside it. `--same-as` also checks that the report's values
equal another JSON's (the command's own `--out` / `--json` output) wherever both have them.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.numbers: list[tuple[str, int, str]] = []
        self.images: list[str] = []
        self.svgs = 0
        self.svg_shapes = 0
        self._open: list[list] = []
        self._in_svg = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-key" in a:
            self._open.append([a["data-key"], int(a.get("data-decimals", "0")), ""])
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "svg":
            self.svgs += 1
            self._in_svg += 1
        elif self._in_svg and tag in ("rect", "circle", "polyline", "path", "line"):
            self.svg_shapes += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg -= 1
        if tag == "span" and self._open:
            key, decimals, text = self._open.pop()
            self.numbers.append((key, decimals, text.strip()))

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data


def pointer(doc, ptr: str):
    for part in ptr.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def flat(doc, prefix=""):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from flat(v, f"{prefix}/{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from flat(v, f"{prefix}/{i}")
    else:
        yield prefix, doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dom")
    ap.add_argument("report")
    ap.add_argument("--min-numbers", type=int, default=1)
    ap.add_argument("--same-as")
    args = ap.parse_args()
    page = Page()
    page.feed(Path(args.dom).read_text())
    report = json.loads(Path(args.report).read_text())
    problems = []
    for key, decimals, shown in page.numbers:
        try:
            want = pointer(report, key)
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"{key}: shown {shown!r}, but the JSON has nothing there")
            continue
        if not isinstance(want, (int, float)) or isinstance(want, bool):
            problems.append(f"{key}: shown {shown!r}, the JSON has {want!r}")
            continue
        try:
            got = float(shown)
        except ValueError:
            problems.append(f"{key}: shown {shown!r}, not a number")
            continue
        if abs(got - want) > 0.5 * 10 ** -decimals + 1e-9 * max(1.0, abs(want)):
            problems.append(f"{key}: shown {shown}, the JSON has {want}")
    if len(page.numbers) < args.min_numbers:
        problems.append(f"{len(page.numbers)} numbers tagged with their JSON pointer, expected at least {args.min_numbers}")
    if page.svgs == 0 or page.svg_shapes < 10 * page.svgs:
        problems.append(f"{page.svgs} charts with {page.svg_shapes} shapes: a chart drew nothing")
    base = Path(args.report).parent
    for src in page.images:
        if not (base / src).is_file():
            problems.append(f"picture {src} is not beside the page")
    if args.same_as:
        other = dict(flat(json.loads(Path(args.same_as).read_text())))
        for k, v in flat(report):
            if k in other and other[k] != v:
                problems.append(f"{k}: the page's JSON has {v!r}, {args.same_as} has {other[k]!r}")
    for p in problems[:30]:
        print(f"  FAIL {p}", file=sys.stderr)
    if problems:
        print(f"{args.dom}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"  ok   {len(page.numbers)} numbers match {args.report}; {page.svgs} charts, {len(page.images)} pictures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
