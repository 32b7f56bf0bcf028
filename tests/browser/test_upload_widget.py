"""The files tutorial in a real JupyterLab: the upload widget uploads a picked image, the live
previews show it (the image really loaded from the kernel's loopback server), and the webhook's
live table shows the rows posted to the site URL.

The checks read the rendered DOM, as a person sees it; screenshots go to the artifacts dir
(``$E2E_ARTIFACTS``): ``upload-*.png``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from _jlab import LabServer, NotebookPage

TUTORIAL = Path(__file__).resolve().parents[2] / "notebooks" / "04-files-http-auth.ipynb"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_upload_widget_and_previews_in_the_tutorial(
    lab: LabServer, notebook: Callable[..., NotebookPage]
) -> None:
    from playwright.sync_api import expect

    nb = notebook("04-files-http-auth.ipynb", TUTORIAL)
    nb.run_all_in_order()
    upload = nb.output(nb.index_of("upload-widget"))
    previews = nb.output(nb.index_of("file-previews"))
    # The tutorial's own upload from Python is in the previews, as a loaded image.
    expect(previews.locator("td.cl-file img.cl-thumb")).to_have_count(1)

    # Pick a file in the widget: it is uploaded, saved by save_file, and previewed.
    picker = upload.locator("input[type=file]")
    expect(picker).to_have_attribute("accept", "image/*")
    picker.set_input_files({"name": "teal.png", "mimeType": "image/png",
                            "buffer": png(40, 24, (20, 160, 150))})
    saved = upload.locator("li.cl-upload-item[data-status=saved]")
    expect(saved).to_have_count(1, timeout=30_000)
    expect(saved).to_contain_text("✓ teal.png")
    names = previews.locator("tbody td.cl-v-string")
    expect(names.filter(has_text="teal.png")).to_have_count(1)
    thumbs = previews.locator("td.cl-file img.cl-thumb")
    expect(thumbs).to_have_count(2)
    previews.scroll_into_view_if_needed()  # thumbnails load lazily, once on screen
    nb.page.wait_for_function(
        """(els) => els.length === 2 && els.every((img) => img.complete && img.naturalWidth > 0)""",
        arg=thumbs.element_handles(), polling=100, timeout=30_000)
    widths = [t.evaluate("img => img.naturalWidth") for t in thumbs.element_handles()]
    assert sorted(widths) == [40, 48], widths  # teal.png and the tutorial's orange.png
    nb.screenshot("upload-1-picked-file-previewed", at_cell=nb.index_of("upload-widget"))

    # A second file that is not an image: uploaded, listed, shown as a link.
    picker.set_input_files({"name": "notes.txt", "mimeType": "text/plain",
                            "buffer": b"not an image"})
    expect(saved).to_have_count(2, timeout=30_000)
    expect(previews.locator("td.cl-file a", has_text="file ↗")).to_have_count(1)

    # The webhook's live table shows what was posted to the site URL.
    events = nb.output(nb.index_of("live-events"))
    expect(events.locator("tbody td.cl-v-string", has_text="closed #42")).to_have_count(1)
    nb.screenshot("upload-2-webhook-table", at_cell=nb.index_of("live-events"))
    assert not [e for e in nb.page_errors() if "convex_lab" in e or "widget" in e]
