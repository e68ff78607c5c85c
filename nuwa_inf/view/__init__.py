"""Deep-zoom pages of finished canvases: `nuwa-inf view IMAGE|RUN_DIR` and `build_zoom`.

    from nuwa_inf.view import build_zoom
    page = build_zoom("scroll.png", "scroll_zoom/")   # -> scroll_zoom/index.html

`source.py` finds the image, `pyramid.py` cuts the Deep Zoom tile pyramid with libvips,
`page.py` writes the one HTML page (template: `viewer.html` + `viewer.js`, our own viewer),
`build.py` puts them together into an output folder that appears whole or not at all.
"""
from .build import build_zoom

__all__ = ["build_zoom"]
