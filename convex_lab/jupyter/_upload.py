"""File widgets: an upload picker, and a live table that previews stored files.

* :func:`upload_widget` — ``cl.upload_widget(save_file)``: pick (or drop) files; for each one the
  front-end asks for an upload URL (``{"type": "upload_url"}``, answered with a fresh
  ``generate_upload_url()`` of the backend), POSTs the bytes there (Convex's upload flow, with
  progress), then reports ``{"type": "uploaded", "storageId", "name", "contentType", "size"}``;
  the kernel checks that the ID is a stored file and calls the mutation, fixed from Python, with
  ``storageId`` — plus ``name``, ``contentType`` and ``size`` when the mutation declares them —
  and the widget's ``args``. ``uploads`` (a trait) lists the last 20 files and how each went.
* :func:`watch_files` — ``cl.watch_files(list_files)``: ``cl.watch`` whose table shows the file
  URLs in the value (what ``ctx.storage.get_url`` returns) as thumbnails (images) or links.

The browser uploads to the kernel's loopback server, so it must run on the same machine as the
kernel (JupyterLab on your computer); the kernel never trusts the browser for which function to
call (``_base``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import traitlets

from convex_lab.errors import ProtocolError
from convex_lab.jupyter._base import ConvexWidget, RequestHandler, now_ms
from convex_lab.jupyter._fallback import DESCRIBERS, Fallback
from convex_lab.jupyter._live import LiveQueryWidget
from convex_lab.jupyter._protocol import encode, field

if TYPE_CHECKING:
    from convex_lab.backend import Backend
    from convex_lab.functions import FunctionDef, FunctionLike

KEEP = 20
FILE_FIELDS = ("name", "contentType", "size")


class UploadWidget(ConvexWidget):
    """A file picker that stores each file and hands its ID to a mutation (module docstring)."""

    _view = traitlets.Unicode("upload").tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)
    accept = traitlets.Unicode("").tag(sync=True)
    multiple = traitlets.Bool(True).tag(sync=True)
    uploads: traitlets.List[Any] = traitlets.List().tag(sync=True)

    def __init__(self, backend: Backend, mutation: FunctionLike, *,
                 args: Mapping[str, Any] | None = None, accept: str | None = None,
                 multiple: bool = True) -> None:
        fn = backend.resolve(mutation, "mutation")
        super().__init__(path=fn.path, accept=accept or "", multiple=multiple, status="ready")
        self._backend = backend
        self._fn = fn
        self._args = dict(args or {})
        self._file_fields = _declared(fn)

    def _handlers(self) -> dict[str, RequestHandler]:
        return {"upload_url": self._upload_url, "uploaded": self._uploaded,
                "upload_failed": self._failed}

    def _upload_url(self, _request: dict[str, Any]) -> dict[str, str]:
        return {"url": self._backend.files.generate_upload_url()}

    def _uploaded(self, request: dict[str, Any]) -> Any:
        storage_id = field(request, "storageId", str)
        name = field(request, "name", str, "")
        content_type = field(request, "contentType", str, "")
        size = float(field(request, "size", (int, float), 0.0))
        entry = {"name": name, "size": size, "storageId": storage_id}
        try:
            if self._backend.files.document(storage_id, None) is None:  # only stored files
                raise ProtocolError(f"{storage_id!r} is not a file stored in this backend.")
            call = {"storageId": storage_id, **self._args}
            for key, value in (("name", name), ("contentType", content_type or None),
                               ("size", size)):
                if key in self._file_fields and value is not None:
                    call[key] = value
            result = self._backend.mutation(self._fn, call)
        except Exception as e:
            self._record({**entry, "status": "error", "error": str(e)})
            raise
        self._record({**entry, "status": "saved", "error": None})
        return encode(result)

    def _failed(self, request: dict[str, Any]) -> None:
        self._record({"name": field(request, "name", str, ""), "size": 0.0, "storageId": None,
                      "status": "error", "error": field(request, "message", str, "failed")})

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._set_state(uploads=[*self.uploads, entry][-KEEP:], updated_at=now_ms())

    def _fallback(self) -> Fallback:
        fb = Fallback("File upload", f"→ {self.path}",
                      details=[f"{len(self.uploads)} file(s)" if self.uploads else "no files yet"])
        if self.uploads:
            fb.columns = ["name", "status", "storageId"]
            fb.rows = [[str(u.get("name")), str(u.get("status")), str(u.get("storageId") or
                                                                      u.get("error") or "")]
                       for u in self.uploads]
        else:
            fb.text = "(pick files in the widget to upload them)"
        return fb


class FilePreviewsWidget(LiveQueryWidget):
    """A live query whose table previews the file URLs in its value."""

    _view = traitlets.Unicode("upload_previews").tag(sync=True)

    def _fallback(self) -> Fallback:
        return DESCRIBERS["live_query"](self)


def _declared(fn: FunctionDef) -> frozenset[str]:
    """Which of ``name``, ``contentType``, ``size`` the mutation takes."""
    validator = fn.args_validator
    if validator is not None:
        return frozenset(FILE_FIELDS).intersection(validator.fields)
    if fn.parameters is None:  # **kwargs: anything goes
        return frozenset(FILE_FIELDS)
    return frozenset(FILE_FIELDS).intersection(fn.parameters[0])


def upload_widget(mutation: FunctionLike, *, args: Mapping[str, Any] | None = None,
                  accept: str | None = None, multiple: bool = True,
                  backend: Backend | None = None) -> UploadWidget:
    """An :class:`UploadWidget` on ``backend`` (default: the notebook's backend). ``accept`` is
    the file input's filter (``"image/*"``, ``".csv,.json"``)."""
    from convex_lab.backend import default_backend  # noqa: PLC0415

    return UploadWidget(backend if backend is not None else default_backend(), mutation,
                        args=args, accept=accept, multiple=multiple)


def watch_files(query: FunctionLike, args: Mapping[str, Any] | None = None, /,
                **kwargs: Any) -> FilePreviewsWidget:
    """A live table of ``query`` on the default backend with file previews (``cl.watch``'s
    arguments: a dict or keywords)."""
    from convex_lab.backend import default_backend  # noqa: PLC0415

    if args is not None and kwargs:
        raise TypeError("Give the query's arguments as a dict or as keywords, not both.")
    live = default_backend().subscribe(query, args if args is not None else kwargs)
    return FilePreviewsWidget(live)
