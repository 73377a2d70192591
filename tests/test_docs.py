"""The documentation: README.md and docs/ build as a site with `mkdocs build --strict`, and every
relative link in them (files and #anchors) resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {_github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def _links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def test_site_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    for page in (ROOT / "docs").glob("*.md"):  # every page is in the nav and rendered
        built = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert built.is_file(), page.name


def test_every_relative_link_resolves():
    broken, seen = [], 0
    for doc in _documents():
        for target in _links(doc):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            seen += 1
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert seen > 20  # the README links to every docs page, the pages to each other
    assert not broken, "\n".join(broken)


def test_github_slug_matches_github():
    assert _github_slug("How a request flows") == "how-a-request-flows"
    assert _github_slug("`POST /v1/completions` — legacy text completions") == "post-v1completions--legacy-text-completions"
    assert _github_slug("Routing matrix: which AI serves which feature (seed 003, AI_CONFIG_CORE)") == \
        "routing-matrix-which-ai-serves-which-feature-seed-003-ai_config_core"
