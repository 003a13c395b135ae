"""The repository stands alone: no tracked text points outside it, and the data the tests read
is inside ``tests/data``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Folders that are not the project's source (installs, outputs, caches).
SKIP = {".git", ".venv", "outputs", "multirun", "__pycache__", ".pytest_cache", ".hypothesis"}
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".txt", ".ini", ""}
OUTSIDE = re.compile(r"\.\./shared|parents\[\d\]\s*/\s*[\"']shared[\"']")


def project_files() -> list[Path]:
    files = []
    for p in ROOT.rglob("*"):
        rel = p.relative_to(ROOT)
        if any(part in SKIP or part.endswith(".egg-info") for part in rel.parts):
            continue
        if p.is_file() and p.suffix in TEXT:
            files.append(p)
    return files


def test_nothing_points_outside_the_repository():
    files = project_files()
    assert len(files) > 50  # the walk found the project
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in files
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if OUTSIDE.search(line) and p != Path(__file__).resolve()]
    assert hits == []
