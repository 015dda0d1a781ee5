#!/usr/bin/env bash
# Set up broadcaster on a fresh Debian/Ubuntu machine: system services the tests and the dev
# stack use (only where missing), a virtualenv in .venv, and the package with its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    # policy-rc.d-style guard: packages must not start system services (Kannel, Redis) on install
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
      $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "please install: $*" >&2; exit 1
  fi
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# PostgreSQL: a running server is used as is for most tests; the binaries are needed anyway,
# for the private clusters of the tests that stop and restart PostgreSQL (test_outages.py).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Kannel (bearerbox, smsbox and fakesmsc) for the tests against a real open-source gateway.
{ [ -x /usr/sbin/bearerbox ] && [ -x /usr/lib/kannel/test/fakesmsc ]; } || missing+=(kannel kannel-extras)
# Chromium (Debian's package, /usr/bin/chromium) for the dashboard's browser tests, driven by
# Playwright with this binary: Playwright's own browser downloads are never used.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup done: .venv ready"
