#!/usr/bin/env python3
"""Lists the functions longer than a limit in lmlab's C++ and CUDA sources (DESIGN.md: a function
of one idea; the "house" issue: none over 80 lines).

A function is a brace block opened right after a parameter list (`) {`, `) const {`, `) -> T {`,
a constructor's initializer list ending in `)`) outside any other function; lambdas and blocks inside count
toward the function that holds them. Comments, string and character literals are blanked first.
Its length is the lines from the line of its opening brace to the line of its closing brace.

Usage: python3 scripts/check_function_size.py [--max N] [ROOT]   (default 80, ROOT .)
Prints `file:line: N lines` per offender, longest first, and exits 1 if there is any.
"""
import argparse
import pathlib
import re
import sys

FOLDERS = ["autograd", "nn", "optim", "data", "train", "tests", "bench"]
SUFFIXES = {".h", ".cpp", ".cu", ".cuh"}
# What may stand between a parameter list's ')' and the body's '{'.
QUALIFIERS = re.compile(r"\)\s*(const|noexcept|override|final|mutable|volatile|&|&&|\s)*"
                        r"(->\s*[\w:<>,\s*&]+)?\s*$")


def blank(text: str) -> str:
    """Comments, strings and char literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i) and re.match(r'R"([^(\s]*)\(', text[i:]):
            delim = re.match(r'R"([^(\s]*)\(', text[i:]).group(1)
            j = text.find(")" + delim + '"', i)
            j = n if j < 0 else j + len(delim) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'" and not (c == "'" and i > 0 and text[i - 1].isalnum()):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j, n) + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text: str):
    """(first line, line count) of every function body in the text."""
    code = blank(text)
    stack, found, line = [], [], 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            in_fn = any(kind == "fn" for kind, _ in stack)
            head = code[max(0, i - 400):i]
            is_fn = not in_fn and QUALIFIERS.search(head) is not None
            stack.append(("fn" if is_fn else "other", line))
        elif c == "}" and stack:
            kind, start = stack.pop()
            if kind == "fn":
                found.append((start, line - start + 1))
    return found


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=80)
    ap.add_argument("root", nargs="?", default=".")
    args = ap.parse_args()
    root = pathlib.Path(args.root).resolve()
    offenders = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in SUFFIXES or "fixtures" in path.parts:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for start, count in functions(text):
                if count > args.max:
                    offenders.append((count, f"{path.relative_to(root)}:{start}"))
    for count, where in sorted(offenders, reverse=True):
        print(f"{where}: {count} lines")
    if offenders:
        print(f"check_function_size: {len(offenders)} function(s) over {args.max} lines")
        return 1
    print(f"check_function_size: no function over {args.max} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
