"""File storage (reference §12): the ``_storage`` system table, blobs beside the store, and
``ctx.storage`` as Convex splits it between queries, mutations and actions.

* ``blobs.py`` — the bytes: one file per stored file, written to a temporary name, hashed while
  streaming, made durable, then renamed to its storage ID; removed after its document's delete
  commits; orphans swept when the store opens.
* ``tokens.py`` — signed, single-use upload tokens (valid one hour on the backend's clock) and
  the signatures that make file URLs unguessable from storage IDs.
* ``engine.py`` — :class:`~convex_lab.files.engine.FileStorage`, one per backend: uploads,
  downloads, deletes, and the ``ctx.storage`` objects (``ctx.py``) it hands to executions
  through ``Executor.provide("storage", ...)``.
"""
