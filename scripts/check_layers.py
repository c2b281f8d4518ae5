#!/usr/bin/env python3
"""Checks that includes run down the layers only (docs/ARCHITECTURE.md, "The layers").

The library folders, lowest first: autograd -> nn, optim, data -> train. Inside train/, the rooms,
lowest first: common -> config -> io -> dist -> run -> ablation -> cli. A file may include its own
folder or room and any lower one, never a higher one or a sibling at the same level (nn/optim/data
know nothing of each other; run/ and ablation/ neither). Prints every offending include (file, line,
the include and why) and exits 1; prints one summary line and exits 0 when all is well.

Usage: python3 scripts/check_layers.py [REPO_ROOT]
"""
import pathlib
import re
import sys

# Each unit and the units it may include (besides itself).
ALLOWED = {
    "autograd": set(),
    "nn": {"autograd"},
    "optim": {"autograd"},
    "data": {"autograd"},
}
ROOMS = ["common", "config", "io", "dist", "run", "ablation", "cli"]
# run/ and ablation/ are siblings: the runner starts `lmlab train` processes, it never links the
# trainer; dist/ and io/ likewise.
SIBLINGS = {frozenset({"run", "ablation"}), frozenset({"io", "dist"})}
LIBS = {"autograd", "nn", "optim", "data"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def unit_of(rel: pathlib.PurePosixPath):
    """The layer unit a repository path belongs to: 'nn', 'train/io', ... or None (tests, bench)."""
    parts = rel.parts
    if not parts:
        return None
    if parts[0] in LIBS:
        return parts[0]
    if parts[0] == "train" and len(parts) > 2 and parts[1] in ROOMS:
        return "train/" + parts[1]
    if parts[0] == "train":
        return "train/?"
    return None


def may_include(src: str, dst: str) -> bool:
    if src == dst:
        return True
    if src in ALLOWED:
        return dst in ALLOWED[src]
    if src.startswith("train/"):
        if dst in LIBS:
            return True
        if not dst.startswith("train/") or dst == "train/?" or src == "train/?":
            return False
        a, b = ROOMS.index(src[6:]), ROOMS.index(dst[6:])
        return b < a and frozenset({src[6:], dst[6:]}) not in SIBLINGS
    return True


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems, checked = [], 0
    for folder in sorted(LIBS | {"train"}):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in {".h", ".cpp", ".cu", ".cuh"}:
                continue
            rel = pathlib.PurePosixPath(path.relative_to(root).as_posix())
            src = unit_of(rel)
            if src == "train/?":
                problems.append(f"{rel}: a file of train/ outside its rooms ({', '.join(ROOMS)})")
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                checked += 1
                dst = unit_of(pathlib.PurePosixPath(m.group(1)))
                if dst is not None and not may_include(src, dst):
                    problems.append(f"{rel}:{n}: includes \"{m.group(1)}\": {src} may not use {dst}")
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layers (docs/ARCHITECTURE.md)")
        return 1
    print(f"check_layers: {checked} includes, all down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
