"""File storage under SIGKILL: a killed process loses no acknowledged file and, once the store is
opened again, keeps no orphan (reference §12, DESIGN §7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import convex_lab as cl

REPO = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent("""
    import sys
    import convex_lab as cl

    app = cl.App()

    @app.action(name="put")
    def put(ctx, n: float):
        # Sizes vary so that kills land in writes, renames and commits alike.
        return ctx.storage.store(bytes([int(n) % 251]) * (1 + int(n) * 997 % 200_000))

    @app.mutation(name="drop")
    def drop(ctx, sid: str):
        ctx.storage.delete(sid)

    backend = cl.Backend(sys.argv[1], app=app)
    n = 0
    while True:
        sid = backend.action(put, {"n": n})
        if n % 3 == 2:
            backend.mutation(drop, {"sid": sid})
            sys.stdout.write(f"deleted {n} {sid}\\n")
        else:
            sys.stdout.write(f"stored {n} {sid}\\n")
        sys.stdout.flush()
        n += 1
""")


def run_and_kill(path: Path, acks_wanted: int) -> list[tuple[str, int, str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    acks: list[tuple[str, int, str]] = []
    try:
        for line in proc.stdout:
            what, n, sid = line.split()
            acks.append((what, int(n), sid))
            if len(acks) >= acks_wanted:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    return acks


def test_sigkill_loses_no_acknowledged_file_and_leaves_no_orphan(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    acks = run_and_kill(path, 40) + run_and_kill(path, 25)
    app = cl.App()

    @app.action(name="get")
    def get_file(ctx: object, sid: str) -> object:
        return ctx.storage.get(sid)  # type: ignore[attr-defined]

    with cl.Backend(path, app=app) as b:
        docs = b.store.tables["_storage"].docs
        for what, n, sid in acks:
            if what == "stored":
                assert b.action(get_file, {"sid": sid}) == bytes([n % 251]) * (
                    1 + n * 997 % 200_000), f"acknowledged file {n} lost or damaged"
            else:
                assert sid not in docs
        # Every file on disk belongs to a document, and every document has its file.
        on_disk = {p.name for p in b.files.blobs.root.iterdir() if not p.name.startswith(".")}
        assert on_disk == set(docs)
        assert not [p for p in b.files.blobs.root.iterdir() if p.name.startswith(".tmp-")]
        for sid, doc in docs.items():
            assert (b.files.blobs.root / sid).stat().st_size == doc["size"]
