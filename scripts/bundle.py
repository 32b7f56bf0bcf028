"""Bring the widget bundle (convex_lab/static/widget.js, widget.css) up to date with extension/.

One implementation for every way the bundle gets made:

* the build hook: pyproject.toml's ``[tool.hatch.build.hooks.jupyter-builder]`` calls
  :func:`build` before hatchling packs an sdist, a wheel or an editable install, so
  ``pip install .``, ``pip install -e .`` and ``python -m build`` all carry the bundle;
* ``scripts/test`` and ``scripts/lab`` (through scripts/_bundle.sh):
  ``python3 scripts/bundle.py --if-npm``.

Contract
--------
* The bundle is *fresh* when widget.js and widget.css exist and no front-end source
  (extension/src/**, package.json, package-lock.json, tsconfig.json) is newer than either. A fresh
  bundle is used as it is: no npm needed. That is how a wheel is built from the sdist (which carries
  the bundle, with the sources' mtimes) and how ``pip install .`` works without npm once the bundle
  is built.
* Missing or stale, with npm on PATH: ``npm ci`` when extension/node_modules is missing or older
  than package-lock.json (``ci`` never rewrites the lock file, unlike ``npm install``), then
  ``npm run build``.
* Stale, without npm: the existing bundle is used, with a warning.
* Missing, without npm: :class:`BundleUnavailable`, a ``SystemExit`` whose message is one line
  naming the fix, so a build fails with that line and no traceback (the hook runner catches only
  ``Exception``). With ``--if-npm`` (the scripts) it is a warning instead: the core needs no bundle.

hatch_jupyter_builder.npm_builder is not used because it looks npm up before checking whether a
build is needed (so a built bundle still needs npm), runs ``npm install`` and fails without npm
with a message that does not name the fix. Standard library only: this runs in the build
backend's isolated environment and under whatever ``python3`` the scripts find.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
STATIC = ROOT / "convex_lab" / "static"
TARGETS = (STATIC / "widget.js", STATIC / "widget.css")
WEB = ROOT / "web"
WEB_TARGET = STATIC / "convex.browser.js"
BUILD_COMMAND = "npm --prefix extension ci && npm --prefix extension run build"


class BundleUnavailable(SystemExit):
    """The bundle cannot be made here; the message is one line naming the fix."""


def _log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _sources() -> list[Path]:
    files = [EXTENSION / name for name in ("package.json", "package-lock.json", "tsconfig.json")]
    files += (EXTENSION / "src").rglob("*")
    return [path for path in files if path.is_file()]


def status() -> str:
    """``"missing"``, ``"stale"`` or ``"fresh"`` (module docstring)."""
    if not all(target.is_file() for target in TARGETS):
        return "missing"
    built = min(target.stat().st_mtime for target in TARGETS)
    if any(source.stat().st_mtime > built for source in _sources()):
        return "stale"
    return "fresh"


def _run(npm: str, *args: str) -> None:
    command = ["npm", *args]
    _log(f"{' '.join(command)}   (in extension/)")
    done = subprocess.run([npm, *args], cwd=EXTENSION, check=False)
    if done.returncode != 0:
        raise BundleUnavailable(
            f"error: `{' '.join(command)}` in {EXTENSION} failed with exit status "
            f"{done.returncode} (its output is above): fix that, or build the bundle by hand "
            f"with `{BUILD_COMMAND}` and retry."
        )


def ensure(*, force: bool = False, require: bool = True) -> str:
    """Make the bundle fresh if it can; return the status it ends in (module docstring).

    ``force`` rebuilds a fresh bundle too (when npm is there); ``require=False`` turns the
    missing-without-npm error into a warning.
    """
    ensure_web()
    state = status()
    if state == "fresh" and not force:
        return state
    npm = shutil.which("npm")
    if npm is None:
        if state != "missing":
            _log(
                "warning: npm is not on PATH, so the widget bundle (convex_lab/static) cannot be "
                "rebuilt from extension/ and is used as it is; install Node.js (with npm) to "
                "rebuild it"
            )
            return state
        message = (
            "error: convex_lab's widget bundle (convex_lab/static/widget.js) is missing and npm is "
            "not on PATH to build it from extension/: install Node.js (which brings npm) and run "
            f"the install again, or build the bundle where npm is (`{BUILD_COMMAND}`) and put "
            "widget.js and widget.css in convex_lab/static/."
        )
        if not require:
            _log(message.replace("error: ", "warning: ", 1) + " Widgets will not load until then.")
            return state
        raise BundleUnavailable(message)
    if not (EXTENSION / "package.json").is_file():
        raise BundleUnavailable(
            f"error: the widget bundle needs building but {EXTENSION / 'package.json'} is "
            "missing: build from a complete convex_lab checkout or sdist (extension/ included)."
        )
    lock, installed = EXTENSION / "package-lock.json", EXTENSION / "node_modules/.package-lock.json"
    if not installed.is_file() or (
        lock.is_file() and lock.stat().st_mtime > installed.stat().st_mtime
    ):
        _log("installing the widget front-end's npm packages")
        _run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
    _log("building the widget bundle (extension/ -> convex_lab/static/)")
    _run(npm, "run", "--silent", "build")
    if all(target.is_file() for target in TARGETS):
        for target in TARGETS:  # an output esbuild left untouched would look stale forever
            target.touch()
    state = status()
    if state == "missing":
        raise BundleUnavailable(
            f"error: `npm run build` in {EXTENSION} succeeded but did not write "
            f"{' and '.join(str(t) for t in TARGETS)}: check extension/package.json's build script."
        )
    return state


def ensure_web() -> bool:
    """The npm ``convex`` client's browser build for the page the server serves
    (``convex_lab/server/page.py``): web/node_modules/convex/dist/browser.bundle.js (``npm ci``
    in web/ when missing or older than web/package-lock.json) copied to WEB_TARGET. Never fails a
    build: without npm (or on any npm error) it warns, and the page answers with how to get it.
    Returns whether WEB_TARGET exists."""
    lock = WEB / "package-lock.json"
    if not lock.is_file():
        return WEB_TARGET.is_file()
    source = WEB / "node_modules" / "convex" / "dist" / "browser.bundle.js"
    if WEB_TARGET.is_file() and WEB_TARGET.stat().st_mtime >= lock.stat().st_mtime:
        return True
    npm = shutil.which("npm")
    installed = WEB / "node_modules" / ".package-lock.json"
    if npm is not None and (not installed.is_file()
                            or installed.stat().st_mtime < lock.stat().st_mtime):
        _log("npm ci   (in web/: the convex client's browser build for the served page)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                               "--loglevel=error"], cwd=WEB, check=False)
        if done.returncode != 0:
            _log("warning: npm ci in web/ failed: the served web page will not load its client")
    if not source.is_file():
        if not WEB_TARGET.is_file():
            _log("warning: the convex client's browser build is missing (npm ci in web/): the "
                 "served web page will say so")
        return WEB_TARGET.is_file()
    STATIC.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, WEB_TARGET)
    return True


def build(target_name: str, version: str, **_kwargs: object) -> None:
    """The hatch-jupyter-builder build function: ``target_name`` is "wheel" or "sdist",
    ``version`` "standard" or "editable"; both kinds need the bundle (an editable install reads
    it from convex_lab/static/ in this tree)."""
    ensure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument(
        "--if-npm",
        action="store_true",
        help="without npm and without a bundle, warn instead of failing",
    )
    args = parser.parse_args(argv)
    ensure(force=args.force, require=not args.if_npm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
