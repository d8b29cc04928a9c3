"""``python -m studytables [--check] [FILE]``: regenerate ARCHITECTURE.md's column tables.

With ``--check`` nothing is written; the exit status is 1 when FILE differs from its rendering.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .docs import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studytables", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=Path(__file__).resolve().parents[1] / "ARCHITECTURE.md")
    parser.add_argument("--check", action="store_true", help="only report whether FILE is up to date")
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    try:
        new = render(text)
    except ValueError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{args.file}: up to date")
        return 0
    if args.check:
        print(f"{args.file}: out of date; run `python -m studytables`", file=sys.stderr)
        return 1
    args.file.write_text(new, encoding="utf-8")
    print(f"{args.file}: rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
