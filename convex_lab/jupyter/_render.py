"""``render=`` for live widgets: a Python object → an HTML fragment the front-end shows.

What a render function may return (checked in this order):

* a matplotlib ``Figure`` (or ``Axes``: its figure) → ``<img>`` with a PNG data URL; a figure
  that pyplot tracks is closed afterwards, so re-rendering on every change does not pile up
  figures and the inline backend does not print it again at the end of the cell;
* a pandas ``DataFrame``/``Series`` → its ``to_html()`` table (values escaped);
* a ``str`` → used as HTML as is (it is the notebook owner's own code);
* an object with ``_repr_html_`` (``IPython.display.HTML``, styled frames, ...) → that HTML;
  else ``_repr_svg_`` → inline SVG, else ``_repr_png_`` → ``<img>``;
* ``None`` → empty; anything else → its escaped ``repr`` in a ``<pre>``.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from typing import Any

MAX_FRAME_ROWS = 200


def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def _png_img(data: bytes, alt: str) -> str:
    b64 = base64.standard_b64encode(data).decode("ascii")
    return f'<img class="cl-render-img" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _figure_html(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)  # a no-op for figures pyplot does not track
    return _png_img(buf.getvalue(), "chart")


def render_html(obj: Any) -> str:
    """The HTML fragment for what a ``render=`` function returned (module docstring)."""
    if obj is None:
        return ""
    module = _module(obj)
    if module.startswith("matplotlib"):
        fig = getattr(obj, "figure", None) if not hasattr(obj, "savefig") else obj
        if fig is not None and hasattr(fig, "savefig"):
            return _figure_html(fig)
    if module.startswith("pandas") and hasattr(obj, "to_html"):
        text = obj.to_html(max_rows=MAX_FRAME_ROWS, border=0, classes="cl-frame")
        return str(text)
    if isinstance(obj, str):
        return obj
    for name in ("_repr_html_", "_repr_svg_"):
        method = getattr(obj, name, None)
        if callable(method):
            out = method()
            if isinstance(out, str):
                return out
    png = getattr(obj, "_repr_png_", None)
    if callable(png):
        data = png()
        if isinstance(data, bytes):
            return _png_img(data, type(obj).__name__)
    return f'<pre class="cl-render-repr">{html.escape(repr(obj))}</pre>'
