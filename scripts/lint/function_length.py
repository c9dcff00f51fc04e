#!/usr/bin/env python3
"""Fails when a function in the given source folders is longer than its limit.

    function_length.py --max 80 [--limit NAME=LINES ...] DIR_OR_FILE...

A function is a definition that starts at column 0 (the project's style: namespace contents are not
indented) and ends at the next line that is exactly "}". Its length counts the lines from the signature's
last line to the closing brace. Lambdas and class bodies inside it count toward it; that is the point.
"""
import argparse
import pathlib
import re
import sys

SIGNATURE_END = re.compile(r"^[A-Za-z_~].*\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(->\s*[\w:<>, ]+\s*)?\{\s*$")
CONTINUED = re.compile(r"^\s+.*\)\s*(const\s*)?(noexcept\s*)?\{\s*$")
NAME = re.compile(r"([A-Za-z_~][\w:~]*)\s*\(")


def functions(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        starts = SIGNATURE_END.match(line)
        if not starts and CONTINUED.match(line):
            # a signature wrapped over several lines: its first line is the last one at column 0 above
            j = i - 1
            while j >= 0 and lines[j].startswith((" ", "\t")):
                j -= 1
            starts = j >= 0 and re.match(r"^[A-Za-z_~]", lines[j]) and "(" in lines[j] and not lines[j].rstrip().endswith(";")
            head = lines[j] if starts else ""
        else:
            head = line
        if starts and not line.startswith(("namespace", "class", "struct", "enum", "union", "extern")):
            match = NAME.search(head)
            end = i + 1
            while end < len(lines) and lines[end] != "}":
                if lines[end].startswith(("namespace", "}  //")):
                    break
                end += 1
            if end < len(lines) and lines[end] == "}" and match:
                yield match.group(1), i + 1, end - i + 1
                i = end
        i += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, required=True)
    parser.add_argument("--limit", action="append", default=[], help="NAME=LINES for one function (its own budget)")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    limits = dict(item.split("=", 1) for item in args.limit)
    limits = {name: int(lines) for name, lines in limits.items()}
    files = []
    for p in map(pathlib.Path, args.paths):
        files += sorted(p.rglob("*.cpp")) if p.is_dir() else [p]
    over = []
    seen = set()
    for f in files:
        for name, line, length in functions(f):
            short = name.split("::")[-1]
            limit = limits.get(short, args.max)
            seen.add(short)
            if length > limit:
                over.append(f"{f}:{line}: {name} is {length} lines (at most {limit})")
    for name in limits:
        if name not in seen:
            over.append(f"--limit {name}: no function of that name in {' '.join(args.paths)} (the lint would check nothing)")
    print(f"{len(files)} files checked; functions over their limit: {len(over)}")
    for o in over:
        print(o)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
