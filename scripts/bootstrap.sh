#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install the pinned requirements (runtime + test tools).
# Installs Debian's python3-venv first when the interpreter cannot create virtual environments.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(pick_python) || {
    echo "error: MiniRAG needs Python 3.11 or newer (none found on PATH; set PYTHON=/path/to/python3.11)." >&2
    exit 1
  }
  if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "Installing python3-venv with apt-get..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      echo "error: $python cannot create virtual environments; install python3-venv." >&2
      exit 1
    fi
  fi
  echo "Creating .venv with $("$python" --version)..."
  "$python" -m venv .venv
fi

echo "Installing pinned requirements into .venv (first run takes a minute)..."
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
