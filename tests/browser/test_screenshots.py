"""The README's pictures can be made again: `python -m tools.screenshots` runs its scene in a
sandbox of its own and saves both, small enough for the repository; and the committed ones
are there."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tools.screenshots import IMAGES, SCALE, VIEWPORT, take

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 200_000


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG), path
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def test_the_script_saves_the_request_and_the_closed_request(tmp_path: Path) -> None:
    saved = take(tmp_path)

    assert [p.name for p in saved] == ["request.png", "closed.png"]
    for path in saved:
        width, height = _png_size(path)
        # an element of the page at a phone's width, drawn at twice the pixels
        assert VIEWPORT["width"] * SCALE * 0.8 <= width <= VIEWPORT["width"] * SCALE
        assert 200 < height < VIEWPORT["height"] * SCALE
        assert path.stat().st_size < MAX_BYTES


@pytest.mark.parametrize("name", ["request.png", "closed.png"])
def test_the_readmes_pictures_are_committed(name: str) -> None:
    path = IMAGES / name
    assert _png_size(path)[0] > 0
    assert path.stat().st_size < MAX_BYTES
    assert f"docs/images/{name}" in (IMAGES.parents[1] / "README.md").read_text()
