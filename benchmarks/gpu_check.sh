#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests, compute-sanitizer memcheck on the corpus
# (small cases), and the benchmark table. Logs under ${OUT:-out}/.
#   bash benchmarks/gpu_check.sh [tests] [sanitizer] [bench] [bench-quick] [compile] [wgsl] [wgsl-diag] [sweep] [dynamic] [layouts] [layouts-quick]
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
cd "$(dirname "$0")/.."
if ls .gl/*.deb >/dev/null 2>&1; then    # the Vulkan loader for wgpu (README of the device tool)
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && \
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if ls .whl/*.whl >/dev/null 2>&1; then   # wheels carried to a machine without a registry
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1
export TORSH_JIT_CACHE_DIR=$(mktemp -d)
steps="${*:-tests sanitizer bench}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
for s in $steps; do
  case $s in
    wgsl-diag) timeout 400 python3 benchmarks/wgsl_diag.py --big 2>&1 | tee "$OUT/wgsl-diag.log" ;;
    tests) timeout 420 python3 -m pytest -q -rs tests/backends/test_cuda_gpu.py tests/backends/test_gpu_layouts.py 2>&1 | tee "$OUT/tests.log" | tail -40 ;;
    sanitizer) TORSH_JIT_GPU_CASES=small timeout 420 compute-sanitizer --tool memcheck --error-exitcode 9 \
        python3 -m pytest -q -x tests/backends/test_cuda_gpu.py -k "corpus" > "$OUT/sanitizer.log" 2>&1;
        echo "sanitizer exit $?"; grep -E "ERROR SUMMARY|passed|failed|Invalid|========= " "$OUT/sanitizer.log" | tail -15 ;;
    bench) timeout 540 python3 benchmarks/gpu.py --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" ;;
    wgsl) timeout 300 python3 -m pytest -q -rs tests/backends/test_wgsl.py tests/targets/test_corpus.py -k wgsl 2>&1 | tee "$OUT/wgsl-tests.log" | tail -15
        timeout 300 python3 benchmarks/gpu.py --only wgsl 2>&1 | tee "$OUT/wgsl.log" ;;
    sweep|sweep-gemm|sweep-rows) timeout 400 python3 benchmarks/gpu.py --only $s 2>&1 | tee "$OUT/$s.log" ;;
    dynamic) timeout 300 python3 -m pytest -q -rs tests/backends/test_dynamic_gpu.py tests/targets/test_dynamic_targets.py -k "cuda or wgsl" 2>&1 | tee "$OUT/dynamic-tests.log" | tail -8
        timeout 400 python3 benchmarks/gpu.py --only dynamic --json "$OUT/dynamic.json" 2>&1 | tee "$OUT/dynamic.log" ;;
    layouts) timeout 560 python3 benchmarks/layouts_gpu.py --json "$OUT/layouts.json" 2>&1 | tee "$OUT/layouts.log" ;;
    layouts-quick) timeout 400 python3 benchmarks/layouts_gpu.py --quick --json "$OUT/layouts.json" 2>&1 | tee "$OUT/layouts.log" ;;
    compile) timeout 300 python3 benchmarks/gpu.py --only compile,copy,chain --json "$OUT/compile.json" 2>&1 | tee "$OUT/compile.log" ;;
    bench-quick) timeout 300 python3 benchmarks/gpu.py --quick --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" ;;
  esac
done
