#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (root, or a user with sudo):
# the package with its test extra, reference implementations the statistics are checked against,
# and what the browser tests drive (Debian chromium with Indic fonts, playwright-core from npm).
# The embedded Argilla server's own environment is built by the tests on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# tests/constraints.txt pins every package of the test environment (the statistics' reference
# implementations included), so a test run does not depend on what happens to be newest on PyPI.
python -m pip install -q -c tests/constraints.txt -e '.[test]'
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -q 'Noto Sans Tamil'; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-core >/dev/null
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' || { echo "node >= 20 is needed (playwright-core)"; exit 1; }
(cd tests/browser && npm ci --no-audit --no-fund --silent)
