#!/usr/bin/env bash
# What the widget's browser tests need besides Python: Debian's Chromium (driven by Playwright at
# /usr/bin/chromium; Playwright never downloads a browser here) and axe-core from npm (pinned in
# package-lock.json). Installs what is missing with apt-get and `npm ci`, or says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {  # package...
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing $* with apt-get (once)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
  else
    echo "error: the widget tests need $* (apt-get install -y $*; run as root)." >&2
    exit 1
  fi
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

# Re-install when the lock file changed since the last install.
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "Installing the pinned test tools from package-lock.json (npm ci)..."
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
