# shellcheck shell=bash
# Sourced by scripts/test and scripts/lab (after scripts/_venv.sh): build the widget front-end,
# extension/ → convex_lab/static/widget.js + widget.css, when it is missing or older than its
# sources. The bundle is not committed; the sdist and the wheel carry it (pyproject.toml's build
# hook runs the same scripts/bundle.py, so `pip install .` and `pip install -e .` build it too).
#
#   ensure_bundle            npm ci (when node_modules is missing or stale) + npm run build
#
# Without npm it warns and returns 0: the core and its tests do not need the bundle, and widgets
# then fail with "widget bundle missing: run npm --prefix extension run build".
# CONVEX_LAB_SKIP_BUNDLE=1 skips the check (and the build hook of the editable install);
# CONVEX_LAB_REBUILD_BUNDLE=1 forces a build.

ensure_bundle() {
    [[ "${CONVEX_LAB_SKIP_BUNDLE:-0}" == 1 || ! -f "$REPO_ROOT/extension/package.json" ]] && return 0
    local flags=(--if-npm)
    [[ "${CONVEX_LAB_REBUILD_BUNDLE:-0}" == 1 ]] && flags+=(--force)
    "$PYTHON" "$REPO_ROOT/scripts/bundle.py" "${flags[@]}"
}

# Whether the front-end's own checks (tsc, vitest) can run here.
have_extension_tools() {
    command -v npm >/dev/null 2>&1 && [[ -f "$REPO_ROOT/extension/node_modules/.package-lock.json" ]]
}
