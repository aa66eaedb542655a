#!/usr/bin/env bash
# Install (idempotent) and run the whole pipeline locally: a Tansu broker, the worker on the
# embedded ClickHouse (chdb), and a replay of sample reviews. Extra arguments go to
# `reviewpulse demo`, e.g.: bash deploy/local/demo.sh --count 10000 --exit-after-replay
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash deploy/local/setup.sh
exec .venv/bin/reviewpulse demo "$@"
