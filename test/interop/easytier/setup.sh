#!/usr/bin/env bash
# Installs the Python the tests use into one venv, build/venv: the real EasyTier core (the
# easytier-pyo3 wheel, EasyTier 2.6.4) for the EasyTier interop tests, and the Prometheus project's
# text parser (prometheus_client) for the metrics test. Safe to run again; it skips what is done.
# The wheel is cp311 manylinux: it needs CPython 3.11 (Debian 12's python3) and python3-venv.
set -euo pipefail
cd "$(dirname "$0")/../../.."

WHEEL=easytier-pyo3==0.1.3
VENV=build/venv
PARSER=prometheus_client==0.26.0

py_ok() { python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; }
if ! py_ok; then
  echo "easytier setup: needs python3 3.11 (the wheel is cp311); found $(python3 --version 2>&1)" >&2
  exit 2
fi
if ! dpkg -s python3-venv >/dev/null 2>&1; then
  echo "easytier setup: installing python3-venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

if "$VENV/bin/python" -c 'import easytier_pyo3, prometheus_client' >/dev/null 2>&1 \
   && "$VENV/bin/pip" show easytier-pyo3 2>/dev/null | grep -qx 'Version: 0.1.3'; then
  exit 0
fi
echo "easytier setup: creating $VENV with $WHEEL $PARSER"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" "$PARSER"
"$VENV/bin/python" -c 'import easytier_pyo3; print("easytier setup: EasyTier", easytier_pyo3.version())'
