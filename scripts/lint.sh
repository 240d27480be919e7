#!/usr/bin/env bash
# Lint and format check of the whole tree with the ruff pinned in requirements-build.txt
# (./scripts/setup.sh installs it into .venv); settings in pyproject.toml [tool.ruff].
#
#   ./scripts/lint.sh          # check only (what CI runs)
#   ./scripts/lint.sh --fix    # apply the safe lint fixes and format the tree
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUFF="$ROOT/.venv/bin/ruff"
[[ -x "$RUFF" ]] || { printf '[lint] error: %s not found; run ./scripts/setup.sh\n' "$RUFF" >&2; exit 1; }
cd "$ROOT"
if [[ "${1:-}" == "--fix" ]]; then
  "$RUFF" check --fix .
  "$RUFF" format .
else
  "$RUFF" check .
  "$RUFF" format --check .
fi
