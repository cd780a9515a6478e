"""No code in competitions/ or scoring/ reads a stored file by `.path`: a worker host shares
no disk with the web process, so stored files go through the storage API
(competitions/files.py). Every `.path` attribute in the code must be on a receiver known not
to be a stored file (a bundle's extracted entry, a request, os.path...)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Receivers whose `.path` is not a FieldFile's or a storage's.
NOT_STORED = {
    "os",  # os.path
    "request",  # the URL path
    "parts",  # urllib.parse results
    "target",  # a webhook's parsed URL
    "reader",  # bundle reader: a member's path inside the zip
    "self",  # the bundle reader's own path() method
    "item",  # a bundle member extracted to a temporary folder
    "f",  # a bundle diff entry's key, or a bundle member
}


def path_receivers(source: str) -> list[str]:
    """The receivers of every `.path` attribute in `source`, as source text."""
    return [
        ast.unparse(node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "path"
    ]


def test_the_check_catches_a_stored_files_path():
    sample = "p = submission.file.path\nq = storages['private'].path(name)\nr = os.path.join"
    found = [r for r in path_receivers(sample) if r not in NOT_STORED]
    assert found == ["submission.file", "storages['private']"]


def test_no_code_reads_a_stored_file_by_its_path():
    offenders = []
    for folder in ("competitions", "scoring"):
        for file in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in file.parts:
                continue
            for receiver in path_receivers(file.read_text()):
                if receiver not in NOT_STORED:
                    offenders.append(f"{file.relative_to(ROOT)}: {receiver}.path")
    assert offenders == []
