#!/usr/bin/env bash
# Install what ReviewPulse needs on a fresh Debian/Ubuntu machine. Idempotent: each step
# is skipped when its result is already there, so running it again is quick.
#   - clickhouse-server + clickhouse-client (Debian's 18.16; the tests start their own)
#   - fonts-noto-cjk (Chinese labels in training plots and on the live page)
#   - with --with-browser: chromium + chromium-driver (the live page's browser test)
#   - python3.11 with venv support
#   - .venv with the project installed editable with its test extras (torch pinned)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] \
  || missing+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
# ZooKeeper (with a JRE) for the replicated ClickHouse cluster tests and `up --cluster`
[ -e /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
# --with-browser (test.sh): Debian's chromium and its driver for the live page's browser test
# (selenium comes with .[test]).
if [ "${1:-}" = "--with-browser" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
command -v python3.11 >/dev/null 2>&1 || missing+=(python3.11)
if ! python3.11 -c "import ensurepip, venv" >/dev/null 2>&1; then missing+=(python3.11-venv); fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv (python3.11)"
  python3.11 -m venv .venv
fi

# Reinstall only when the dependency list changed since the last successful install.
stamp=.venv/.reviewpulse-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] \
  || ! .venv/bin/python -c "import stream, pytest" 2>/dev/null; then
  echo "setup: pip install -e '.[test]' (torch==2.13.0 is pinned in pyproject.toml)"
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$wanted" > "$stamp"
fi
echo "setup: ok ($(.venv/bin/python --version), clickhouse-server $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo '?'))"
