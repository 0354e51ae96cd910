"""docs/vi/ (issue 25): the Vietnamese quick start and glossary link to pages that exist,
the quick start to every English page, and the English README to the quick start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VI = DOCS / "vi"
ENGLISH_PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _links(path: Path) -> list[str]:
    """The targets of the page's Markdown links, code blocks left out."""
    text = re.sub(r"^ *```.*?^ *```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchor of each heading: lower case, punctuation dropped, spaces to hyphens
    (letters of any script kept), a repeated one numbered."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative(source: Path) -> list[tuple[str, Path, str]]:
    """(link, the file it points to, its #fragment) of each relative link of ``source``."""
    found = []
    for link in _links(source):
        if re.match(r"\w+:", link):  # https:, mailto:
            continue
        target, _, fragment = link.partition("#")
        found.append((link, (source.parent / target).resolve() if target else source, fragment))
    return found


@pytest.mark.parametrize("page", sorted(VI.glob("*.md")), ids=lambda page: page.name)
def test_every_relative_link_of_a_vietnamese_page_resolves(page: Path) -> None:
    links = _relative(page)

    assert links, f"{page.name} links nowhere"
    for link, path, fragment in links:
        assert path.exists(), f"{page.name}: {link} points to a missing file"
        if fragment and path.suffix == ".md":
            assert fragment in _anchors(path), f"{page.name}: {link}: no such heading"


def test_the_quick_start_links_every_english_page_and_the_glossary() -> None:
    linked = {path for _, path, _ in _relative(VI / "README.md")}

    missing = [page.relative_to(ROOT) for page in ENGLISH_PAGES if page not in linked]
    assert missing == []
    assert VI / "glossary.md" in linked


def test_the_english_readme_points_to_the_quick_start_near_its_top() -> None:
    top = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:5]

    assert "Tiếng Việt: [docs/vi/README.md](docs/vi/README.md)" in "\n".join(top)


def test_every_link_from_the_english_pages_into_docs_vi_resolves() -> None:
    into = [
        (page, link, path, fragment)
        for page in ENGLISH_PAGES
        for link, path, fragment in _relative(page)
        if VI in path.parents
    ]

    assert {page.name for page, *_ in into} >= {"README.md", "configuration.md", "sandbox.md"}
    for page, link, path, fragment in into:
        assert path.exists(), f"{page.name}: {link}"
        assert not fragment or fragment in _anchors(path), f"{page.name}: {link}"


def test_the_glossary_table_has_the_words_the_issue_names() -> None:
    rows = [
        line.split("|")[1:3]
        for line in (VI / "glossary.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| English")
    ]
    vietnamese = " ".join(cells[1] for cells in rows)

    assert len(rows) >= 30
    for term in ("phê duyệt", "từ chối", "triển khai", "đóng băng triển khai", "Hủy hẹn giờ"):
        assert term in vietnamese
