"""Cut the scorer image's requirements out of requirements.lock.

Usage: python runtime_pins.py requirements.lock numpy pandas ...

Prints, for the named packages and everything they need (followed through the
lock's "# via" comments), each pin with all of its --hash lines, so the image
installs exactly what the web app and the workers run, checked by hash. Exits
non-zero if a named package is not in the lock.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+")
VIA_INLINE = re.compile(r"^\s+# via (\S.*)$")
VIA_ITEM = re.compile(r"^\s+#\s{3}(\S.*)$")


@dataclass
class Block:
    lines: list[str] = field(default_factory=list)
    needed_by: set[str] = field(default_factory=set)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, Block]:
    blocks: dict[str, Block] = {}
    current: Block | None = None
    for line in text.splitlines():
        if match := PIN.match(line):
            current = blocks.setdefault(normalise(match.group(1)), Block())
            current.lines.append(line)
        elif current is None:
            continue
        elif line.lstrip().startswith("--hash="):
            current.lines.append(line)
        elif match := VIA_INLINE.match(line) or VIA_ITEM.match(line):
            # "-r requirements.in" style entries are not packages; harmless here.
            current.needed_by.add(normalise(match.group(1).split()[0]))
    return blocks


def closure(blocks: dict[str, Block], roots: list[str]) -> list[str]:
    wanted = {normalise(root) for root in roots}
    missing = wanted - blocks.keys()
    if missing:
        raise SystemExit(f"not pinned in the lock: {', '.join(sorted(missing))}")
    grew = True
    while grew:
        grew = False
        for name, block in blocks.items():
            if name not in wanted and block.needed_by & wanted:
                wanted.add(name)
                grew = True
    return sorted(wanted)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        sys.stderr.write(__doc__ or "")
        return 2
    blocks = parse_lock(Path(argv[1]).read_text())
    for name in closure(blocks, argv[2:]):
        sys.stdout.write("\n".join(blocks[name].lines).rstrip(" \\") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
