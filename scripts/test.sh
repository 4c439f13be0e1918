#!/usr/bin/env bash
# The test command of the README: the system packages the tests drive for real (Debian's chromium
# for every web page; curl and jq for the README's REST examples; softhsm2 for validator keys in
# a PKCS#11 module), a virtual environment with the [dev] extra, then the whole suite.
# Arguments are passed to pytest (e.g. `bash scripts/test.sh tests/e2e -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite needs, installed only when missing (apt-get needs root: sudo otherwise).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)   # the README's REST examples
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)   # PKCS#11 validator keys
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages the tests use: ${need[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi

[ -x .venv/bin/python ] || python3.11 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
# The suite starts hundreds of fresh interpreters (nodes, CLIs, README blocks). Compile the
# source once here: where PYTHONDONTWRITEBYTECODE is set (as on CI machines) each of them would
# otherwise compile every module it imports again, ~0.6 s of CPU a process.
.venv/bin/python -m compileall -q src
# Two workers (pytest-xdist), one a core: the suite's networks are real processes that spend
# much of their time waiting, and the whole run must stay under 15 minutes on 2 cores.
# The run is bound by CPU (1,100-1,450 s of it in 12-15 minutes, ~80 % of both cores): a
# third worker (-n 3) and whole modules a worker with tests/e2e as one unit (--dist loadfile)
# were both measured no faster (bench/RESULTS.md, 2026-12-07, "the suite's time").
exec .venv/bin/pytest -n 2 "$@"
