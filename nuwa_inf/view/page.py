"""The one HTML page of a zoom folder: `viewer.html` with the tile source and `viewer.js` written into it.

Why our own viewer and not OpenSeadragon: the page must open from `file://` on a fresh machine
with no npm and no network, and no third-party file may be copied into this repository. A
Deep Zoom viewer is small when it only has to do what this page does (pan, zoom around the
cursor, keys, an overview, a link to a place), so `viewer.js` (~300 lines, plain JS + canvas)
is ours, and the page carries everything inline: the tile source is JSON in a
`<script type="application/json">` block, not a `.dzi` fetched at run time (browsers refuse
XHR/fetch from `file://`). Tiles are plain `<img>` loads, which `file://` allows.
"""
from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path

from ..atomic import write_bytes
from .pyramid import TileSource

PAGE_NAME = "index.html"
_SLOT = re.compile(r"\{\{([A-Z_]+)\}\}")


def render_page(source: TileSource, title: str) -> str:
    """The page's text: the template with the title, the tile source JSON and the viewer script filled in."""
    package = resources.files(__package__)
    template = package.joinpath("viewer.html").read_text(encoding="utf-8")
    script = package.joinpath("viewer.js").read_text(encoding="utf-8")
    if "</script" in script.lower():
        raise ValueError("viewer.js must not contain '</script' (it is inlined in a <script> element)")
    tile_json = json.dumps(source.as_json_dict(), sort_keys=True).replace("</", "<\\/")
    slots = {"TITLE": html.escape(title), "TILE_SOURCE": tile_json, "VIEWER_JS": script}
    return _SLOT.sub(lambda m: slots[m.group(1)], template)  # one pass: filled text is never re-read


def write_page(folder: Path, source: TileSource, title: str) -> Path:
    path = folder / PAGE_NAME
    write_bytes(path, render_page(source, title).encode("utf-8"))
    return path
