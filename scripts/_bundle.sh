# shellcheck shell=bash
# Sourced by scripts/test and scripts/lab (after scripts/_venv.sh): build the widget front-end,
# extension/ → convex_lab/static/widget.js + widget.css, when it is missing or older than its
# sources. The bundle is not committed; the wheel ships it (hatch `artifacts`).
#
#   ensure_bundle            npm ci (when node_modules is missing or stale) + npm run build
#
# Without npm it warns and returns 0: the core and its tests do not need the bundle, and widgets
# then fail with "widget bundle missing: run npm --prefix extension run build".
# CONVEX_LAB_SKIP_BUNDLE=1 skips the check; CONVEX_LAB_REBUILD_BUNDLE=1 forces a build.

ensure_bundle() {
    local ext="$REPO_ROOT/extension" static="$REPO_ROOT/convex_lab/static"
    [[ "${CONVEX_LAB_SKIP_BUNDLE:-0}" == 1 || ! -f "$ext/package.json" ]] && return 0
    if [[ "${CONVEX_LAB_REBUILD_BUNDLE:-0}" != 1 && -f "$static/widget.js" && -f "$static/widget.css" ]] \
        && [[ -z "$(find "$ext/src" "$ext/package.json" "$ext/package-lock.json" "$ext/tsconfig.json" \
                    -newer "$static/widget.js" -print -quit 2>/dev/null)" ]]; then
        return 0  # up to date
    fi
    if ! command -v npm >/dev/null 2>&1; then
        _log "npm not found: cannot build the widget bundle (convex_lab/static/widget.js); widgets will not load"
        return 0
    fi
    if [[ ! -f "$ext/node_modules/.package-lock.json" \
          || "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]]; then
        _log "installing the widget front-end's npm packages (npm ci --prefix extension)"
        npm ci --prefix "$ext" --no-audit --no-fund --loglevel=error || return 1
    fi
    _log "building the widget bundle (npm --prefix extension run build)"
    npm run --prefix "$ext" --silent build
}

# Whether the front-end's own checks (tsc, vitest) can run here.
have_extension_tools() {
    command -v npm >/dev/null 2>&1 && [[ -f "$REPO_ROOT/extension/node_modules/.package-lock.json" ]]
}
