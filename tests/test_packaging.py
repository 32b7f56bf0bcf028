"""Installing from source carries the widget bundle (issue 9, item 1).

What a user does with a clone, each in a fresh virtualenv, and what they must get: widgets whose
front-end is the real bundle built from extension/.

- ``python -m build`` makes an sdist (with the bundle and extension/'s sources, without
  node_modules) and a wheel *from that sdist* (with the bundle);
- the wheel installs and its widgets load the bundle; the sdist installs with no npm on PATH;
- ``pip install .`` from a checkout whose bundle is built needs no npm;
- ``pip install -e .`` builds the bundle in place, and the editable install's widgets load it;
- a bundle older than extension/'s sources is rebuilt (kept, with a warning, without npm);
- without npm and without a bundle, the build fails with one line naming the fix.

Everything runs on a copy of the checkout in a temporary directory: building writes
convex_lab/static/, and the checkout is shared. The copy reuses the checkout's
extension/node_modules (a symlink) only when it is up to date with package-lock.json, so that
``npm ci`` never runs through it. The fresh venvs see the test venv's packages through a ``.pth``
file added after pip ran (so pip never sees, nor touches, the test venv's own convex_lab), which
is what keeps this quick: each install is ``--no-deps``. Builds are isolated, as a user's are, so
they fetch hatchling and hatch-jupyter-builder (pip's cache makes that cheap after the first).
Marked ``packaging``: deselect locally with ``-m "not packaging"``.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parent.parent
NPM = shutil.which("npm")
needs_npm = pytest.mark.skipif(
    NPM is None, reason="npm (Node.js) is not installed: the widget bundle cannot be built"
)
BUNDLE = ("convex_lab/static/widget.js", "convex_lab/static/widget.css")
TIMEOUT_S = 240

# Not copied: VCS and caches, the venv, build outputs, and the bundle itself (each copy must
# build its own, or show what happens when it cannot).
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "static", "__pycache__", ".*_cache", ".hypothesis",
    "test-artifacts", "dist", "build", "*.duckdb", "*.duckdb.wal", "*.egg-info",
)

# Run in a fresh venv: where convex_lab comes from, and the bundle a widget gets.
_PROBE = """
import hashlib, json
import convex_lab as cl
from convex_lab.jupyter._base import STATIC, load_bundle
from convex_lab.jupyter.widgets import logs_dashboard

esm, css = load_bundle()
backend = cl.Backend()
widget = logs_dashboard(backend)
print(json.dumps({
    "package": cl.__file__,
    "static": str(STATIC),
    "esm_sha": hashlib.sha256(esm.encode()).hexdigest(),
    "css_sha": hashlib.sha256(css.encode()).hexdigest(),
    "widget_has_bundle": widget._esm == esm and widget._css == css,
}))
widget.close()
backend.close()
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _copy_checkout(dest: Path, *, node_modules: bool = True) -> Path:
    """A copy of the checkout without a bundle (mtimes kept, so freshness means the same)."""
    shutil.copytree(REPO, dest, ignore=_IGNORE)
    ext = REPO / "extension"
    lock, installed = ext / "package-lock.json", ext / "node_modules" / ".package-lock.json"
    if (
        node_modules
        and installed.is_file()
        and installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        (dest / "extension" / "node_modules").symlink_to(ext / "node_modules")
    return dest


def _listing(root: Path) -> list[Path]:
    """Every path under ``root`` but bytecode caches (importing the build hook writes one)."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts)


def _env(*, npm: bool, bin_dir: Path | None = None) -> dict[str, str]:
    """The environment of a user's shell; without npm, PATH holds only ``bin_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SKIP_JUPYTER_BUILDER")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if not npm:
        env["PATH"] = str(bin_dir) if bin_dir is not None else os.devnull
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def _ok(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode == 0, (
        f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )


def _fresh_venv(path: Path) -> Path:
    """A new venv without pip (pip runs from the test venv with ``--python``); its python."""
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(path)], cwd=path.parent,
             env=_env(npm=True)), "python -m venv")
    return path / "bin" / "python"


def _pip_install(
    python: Path, *args: str, cwd: Path, npm: bool
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", *args]
    return _run(cmd, cwd=cwd, env=_env(npm=npm, bin_dir=python.parent))


def _probe(python: Path) -> dict[str, object]:
    """Run _PROBE in the venv, with the test venv's packages (the dependencies) after its own."""
    done = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=python.parent, env=_env(npm=True))
    _ok(done, "locating the venv's site-packages")
    site = Path(done.stdout.strip())
    (site / "zzz_test_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run([str(python), "-c", _PROBE], cwd=python.parent.parent, env=_env(npm=True))
    _ok(done, "loading the widget bundle in the fresh venv")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _assert_loads(python: Path, bundle: dict[str, bytes], *, package_under: Path) -> None:
    got = _probe(python)
    assert Path(str(got["package"])).is_relative_to(package_under), got
    assert got["esm_sha"] == _sha(bundle["convex_lab/static/widget.js"]), got
    assert got["css_sha"] == _sha(bundle["convex_lab/static/widget.css"]), got
    assert got["widget_has_bundle"] is True, got


@dataclass
class Dists:
    source: Path  # the copy built from; it keeps its built bundle
    sdist: Path
    wheel: Path
    bundle: dict[str, bytes]  # what npm built, by path in the checkout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    if NPM is None:
        pytest.skip("npm (Node.js) is not installed: the widget bundle cannot be built")
    root = tmp_path_factory.mktemp("dists")
    source = _copy_checkout(root / "convex_lab")
    out = root / "dist"
    # No arguments: the sdist first, then the wheel built from the unpacked sdist.
    done = _run([sys.executable, "-m", "build", "--outdir", str(out), "."], cwd=source,
                env=_env(npm=True))
    _ok(done, "python -m build")
    bundle = {name: (source / name).read_bytes() for name in BUNDLE}
    assert len(bundle["convex_lab/static/widget.js"]) > 10_000  # a real bundle, not a stub
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dists(source, sdist, wheel, bundle)


@needs_npm
def test_sdist_carries_the_bundle_and_the_front_end_sources_without_node_modules(
    dists: Dists,
) -> None:
    with tarfile.open(dists.sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        names = {name.removeprefix(prefix + "/") for name in tar.getnames()}
        for name in BUNDLE:
            member = tar.extractfile(f"{prefix}/{name}")
            assert member is not None and member.read() == dists.bundle[name], name
    for name in ("extension/package.json", "extension/package-lock.json",
                 "extension/tsconfig.json", "extension/src/index.ts", "scripts/bundle.py"):
        assert name in names, f"{name} missing from the sdist"
    assert not [n for n in names if "node_modules" in n]


@needs_npm
def test_wheel_built_from_the_sdist_carries_the_bundle(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as whl:
        for name in BUNDLE:
            assert whl.read(name) == dists.bundle[name], name
        assert not [n for n in whl.namelist() if n.startswith(("extension/", "scripts/"))]


@needs_npm
def test_the_wheel_installed_in_a_fresh_venv_gives_widgets_the_bundle(
    dists: Dists, tmp_path: Path
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    _ok(_pip_install(python, str(dists.wheel), cwd=tmp_path, npm=True), "pip install <wheel>")
    _assert_loads(python, dists.bundle, package_under=tmp_path / "venv")


@needs_npm
def test_the_sdist_installs_without_npm_and_gives_widgets_the_bundle(
    dists: Dists, tmp_path: Path
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    done = _pip_install(python, str(dists.sdist), cwd=tmp_path, npm=False)
    _ok(done, "pip install <sdist> without npm")
    _assert_loads(python, dists.bundle, package_under=tmp_path / "venv")


@needs_npm
def test_pip_install_dot_needs_no_npm_once_the_bundle_is_built(
    dists: Dists, tmp_path: Path
) -> None:
    python = _fresh_venv(tmp_path / "venv")
    done = _pip_install(python, ".", cwd=dists.source, npm=False)
    _ok(done, "pip install . without npm, bundle built")
    _assert_loads(python, dists.bundle, package_under=tmp_path / "venv")


@needs_npm
def test_editable_install_builds_the_bundle_in_place_and_widgets_load_it(tmp_path: Path) -> None:
    source = _copy_checkout(tmp_path / "clone")
    python = _fresh_venv(tmp_path / "venv")
    _ok(_pip_install(python, "-e", ".", cwd=source, npm=True), "pip install -e .")
    bundle = {name: (source / name).read_bytes() for name in BUNDLE}
    assert len(bundle["convex_lab/static/widget.js"]) > 10_000
    _assert_loads(python, bundle, package_under=source)


@needs_npm
def test_a_bundle_older_than_its_sources_is_rebuilt_with_npm_and_kept_without(
    tmp_path: Path,
) -> None:
    # scripts/bundle.py is what the build hook and ./scripts/test both run.
    source = _copy_checkout(tmp_path / "clone")
    bundle_py = [sys.executable, "scripts/bundle.py"]
    _ok(_run(bundle_py, cwd=source, env=_env(npm=True)), "building the bundle")
    built = {name: (source / name).read_bytes() for name in BUNDLE}
    past = (source / "extension" / "package.json").stat().st_mtime - 3600
    for name in BUNDLE:
        os.utime(source / name, (past, past))

    done = _run(bundle_py, cwd=source, env=_env(npm=False))
    _ok(done, "bundle.py without npm, stale bundle")
    assert "warning: npm is not on PATH" in done.stderr
    assert all((source / name).stat().st_mtime == past for name in BUNDLE)  # kept as it was

    done = _run(bundle_py, cwd=source, env=_env(npm=True))
    _ok(done, "bundle.py with npm, stale bundle")
    assert "building the widget bundle" in done.stderr
    assert all((source / name).stat().st_mtime > past for name in BUNDLE)  # rebuilt
    assert {name: (source / name).read_bytes() for name in BUNDLE} == built


@pytest.mark.parametrize("how", ["pip install .", "pip install -e ."])
def test_without_npm_and_without_a_bundle_the_build_fails_with_one_line_naming_the_fix(
    how: str, tmp_path: Path
) -> None:
    source = _copy_checkout(tmp_path / "clone", node_modules=False)
    before = _listing(source)
    python = _fresh_venv(tmp_path / "venv")
    args = ["-e", "."] if how.endswith("-e .") else ["."]
    done = _pip_install(python, *args, cwd=source, npm=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"{how} without npm nor bundle succeeded:\n{output[-3000:]}"
    lines = [line.strip() for line in output.splitlines() if "widget bundle" in line]
    assert len(lines) == 1, output[-3000:]
    (line,) = lines
    assert line.startswith("error: convex_lab's widget bundle (convex_lab/static/widget.js)"), line
    assert "is missing" in line, line
    for fix in ("npm is not on PATH", "install Node.js", "npm --prefix extension run build"):
        assert fix in line, line
    assert "Traceback" not in output
    # Nothing was installed, and the clone lost nothing.
    assert not list((tmp_path / "venv").rglob("convex_lab*"))
    assert _listing(source) == before
