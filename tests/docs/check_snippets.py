#!/usr/bin/env python3
"""Checks that the code in crew's guides is code the build compiles.

Every ```cpp or ```cmake block of the given Markdown files must follow a marker line
    <!-- snippet: PATH -->          (the whole file PATH, relative to the repository root)
    <!-- snippet: PATH#NAME -->     (the lines between `[NAME]` and `[/NAME]` comments in PATH)
and be identical to what it names (trailing blanks and a region's common indentation
ignored). The files named are built and run
by the tests, so a guide cannot show code that does not build.

usage: check_snippets.py [--fix] REPO_ROOT DOC.md...
  --fix   rewrite each block from the code it names instead of checking it
"""
import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!--\s*snippet:\s*(\S+?)(?:#(\S+))?\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
CHECKED = {"cpp", "c++", "cmake"}


def region(path: Path, name: str | None) -> list[str]:
    lines = path.read_text().splitlines()
    if name is None:
        return lines
    begin = [i for i, l in enumerate(lines) if re.search(r"\[" + re.escape(name) + r"\]", l)]
    end = [i for i, l in enumerate(lines) if re.search(r"\[/" + re.escape(name) + r"\]", l)]
    if len(begin) != 1 or len(end) != 1 or end[0] <= begin[0]:
        raise ValueError(f"{path}: region [{name}] ... [/{name}] not found exactly once")
    body = lines[begin[0] + 1 : end[0]]
    # A region inside a function is shown without its indentation.
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return [l[indent:] for l in body]


def check(root: Path, doc: Path, fix: bool = False) -> list[str]:
    errors = []
    lines = doc.read_text().splitlines()
    out = []  # the document with each checked block replaced by its code (for --fix)
    pending = None  # (path, name, line number) of the last marker
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        if m:
            pending = (m.group(1), m.group(2), i + 1)
            out.append(lines[i])
            i += 1
            continue
        f = FENCE.match(lines[i])
        if f and f.group(1):
            lang = f.group(1).lower()
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            block = [l.rstrip() for l in lines[start:j]]
            replacement = lines[start:j]
            if lang in CHECKED:
                if pending is None:
                    errors.append(f"{doc}:{i + 1}: a ```{lang} block without a snippet marker")
                else:
                    path, name, at = pending
                    try:
                        want = [l.rstrip() for l in region(root / path, name)]
                    except (OSError, ValueError) as e:
                        errors.append(f"{doc}:{at}: {e}")
                    else:
                        # Leading and trailing blank lines of a region do not count.
                        while want and not want[0]:
                            want.pop(0)
                        while want and not want[-1]:
                            want.pop()
                        replacement = want
                        if block != want and not fix:
                            first = next((k for k in range(max(len(block), len(want)))
                                          if k >= len(block) or k >= len(want) or block[k] != want[k]), 0)
                            got_line = block[first] if first < len(block) else "<end of block>"
                            want_line = want[first] if first < len(want) else "<end of region>"
                            errors.append(
                                f"{doc}:{start + first + 1}: differs from {path}"
                                f"{'#' + name if name else ''}:\n  doc:  {got_line}\n  code: {want_line}")
            out.append(lines[i])
            out.extend(replacement)
            if j < len(lines):
                out.append(lines[j])
            pending = None
            i = j + 1
            continue
        if lines[i].strip():
            pending = pending if lines[i].startswith("<!--") else None
        out.append(lines[i])
        i += 1
    if fix and not errors:
        doc.write_text("\n".join(out) + "\n")
    return errors


def main() -> int:
    if len([a for a in sys.argv[1:] if a != "--fix"]) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    args = sys.argv[1:]
    fix = "--fix" in args
    args = [a for a in args if a != "--fix"]
    root = Path(args[0])
    errors = []
    blocks = 0
    for d in args[1:]:
        doc = Path(d)
        errors += check(root, doc, fix)
        blocks += sum(1 for l in doc.read_text().splitlines() if MARKER.match(l))
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print(f"{blocks} snippets match the code they name")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
