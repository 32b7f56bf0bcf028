# shellcheck shell=bash
# Sourced by scripts/lab and scripts/test: make sure the project venv exists and has
# `pip install -e ".[EXTRAS]"` done for the current pyproject.toml.
#
#   ensure_venv EXTRAS        e.g. ensure_venv lab   or   ensure_venv test,lab
#
# The venv is $CONVEX_LAB_VENV (default: <repo>/.venv), made with $PYTHON (default: python3).
# pip runs only when the venv is new, or pyproject.toml / the Python / the extras changed since
# the last successful install: a stamp file per extras set lives inside the venv.
# Set CONVEX_LAB_REINSTALL=1 to force the install.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONVEX_LAB_VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

_log() {
    if [[ -t 2 ]]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}

_hash() {
    # sha256 of stdin, without depending on sha256sum being present
    "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

ensure_venv() {
    local extras="$1"
    if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        _log "creating virtualenv $VENV with $($PYTHON --version 2>&1)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.convex_lab-installed-${extras//,/-}"
    local want
    want="$({ cat "$REPO_ROOT/pyproject.toml"; echo "extras=$extras"; "$VENV/bin/python" -VV; } | _hash)"
    if [[ "${CONVEX_LAB_REINSTALL:-0}" != 1 && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    _log "installing convex_lab[$extras] (editable) into $VENV"
    rm -f "$stamp"
    local quiet=(-q)
    [[ "${CI:-}" == true ]] && quiet=(--progress-bar off)
    # The install's build hook (scripts/bundle.py) fails without a widget bundle and without npm
    # to build one; here the core and its tests still run, so skip the hook in that case only
    # (scripts/_bundle.sh has already said that widgets will not load).
    local skip_hook=""
    if [[ "${CONVEX_LAB_SKIP_BUNDLE:-0}" == 1 ]] ||
        { [[ ! -f "$REPO_ROOT/convex_lab/static/widget.js" ]] && ! command -v npm >/dev/null 2>&1; }; then
        skip_hook=1
    fi
    SKIP_JUPYTER_BUILDER="$skip_hook" \
        "$VENV/bin/python" -m pip install "${quiet[@]}" --disable-pip-version-check -e "$REPO_ROOT[$extras]"
    # The notebook kernel must be this venv's Python: register its `python3` kernelspec inside the
    # venv (jupyter prefers the environment's kernelspecs over the user's when run from a venv).
    if "$VENV/bin/python" -c 'import ipykernel' >/dev/null 2>&1; then
        "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
    fi
    echo "$want" >"$stamp"
}
