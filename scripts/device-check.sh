#!/usr/bin/env bash
# Device check on a machine with an NVIDIA GPU (or a Jetson), in under 8 minutes:
#   1. the hardware-marked tests (cuda, tensorrt, jetson), which skip with a reason elsewhere;
#   2. a GPU benchmark of one small CNN: torch CUDA, ONNX Runtime's CUDA provider and
#      TensorRT where installed, through the harness's own runners (inputs on the device,
#      H2D / compute / D2H from device events), printing every figure.
#   scripts/device-check.sh [OUT_DIR]      (default /tmp/sentryfuse-device-check)
# Each step has its own time limit; the whole script stays under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/sentryfuse-device-check}
py=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && py=.venv/bin/python
mkdir -p "$out"
echo "== device"
(nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found") | head -8
[ -f /etc/nv_tegra_release ] && head -1 /etc/nv_tegra_release
"$py" - <<'PY'
import importlib.util
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
for mod in ("tensorrt", "pycuda", "onnxruntime", "pynvml", "jtop"):
    print(mod, "present" if importlib.util.find_spec(mod) else "absent")
PY
echo "== hardware-marked tests"
PYTHONPATH=$PWD timeout 240 "$py" -m pytest -q -rs -s -m "cuda or tensorrt or jetson" \
  tests/test_targets_hardware.py tests/test_targets_gpu_hardware.py 2>&1 | tail -40
tests_rc=${PIPESTATUS[0]}
echo "== GPU benchmark"
PYTHONPATH=$PWD timeout 200 "$py" benchmarks/device_check.py --out "$out" --duration-s 2
bench_rc=$?
echo "== done: tests exit $tests_rc, benchmark exit $bench_rc; results in $out"
[ "$tests_rc" = 0 ] || [ "$tests_rc" = 5 ] || exit 1
exit "$bench_rc"
