#!/usr/bin/env bash
# The CUDA checks of issue 19 in one run on a GPU machine (an H200 lent for minutes): build darnax
# with DARNAX_CUDA=ON against the jax installed there (its CUDA plugin included), run the GPU
# tests, then the kernel table on the GPU. Logs and JSON go to $OUT (default: ./gpu-out).
#
# Usage, from the repository root on the GPU machine:  bash tools/gpu_check.sh
# Expects python3 with jax + its CUDA plugin, scikit-build-core, nanobind, cmake, equinox, optax,
# pytest, hypothesis and scipy installed (the lent machines' image has them), and nvcc on PATH.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PATH="/usr/local/cuda/bin:$PATH"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"

# Build into a temporary folder; --no-deps: the image's packages are the ones to use.
time "$PY" -m pip install -q --no-build-isolation --no-deps -e . \
    -Cbuild-dir=/tmp/darnax-build-cuda -Ccmake.define.DARNAX_CUDA=ON 2>&1 | tee "$OUT/build.log"
"$PY" -c "import darnax.ops._ffi as f; assert f.built_with_cuda, 'no CUDA kernels in the build'; \
print('CUDA targets:', sorted(f.cuda_targets))" | tee -a "$OUT/gpu.txt"

# Every op against its CPU twin (bit for bit) and its oracle, on the GPU.
"$PY" -m pytest -q -rs tests/ops/test_cuda.py 2>&1 | tee "$OUT/test_cuda.log"

# Item 3's kernel table: darnax against dense jnp and BCOO on the same GPU.
"$PY" -m darnax bench --ops sparse_matmul sparse_outer --sizes 2000x2000:0.99 20000x20000:0.999 \
    --batch 16 256 4096 --budget 2 --json "$OUT/gpu_kernels.json" 2>&1 | tee "$OUT/gpu_kernels.txt"

# Item 3's epoch: the seed network's Fashion-MNIST epochs with the GPU as jax's default device,
# then on this machine's CPUs (the same build); metrics.jsonl has train_seconds per epoch. The
# data is carried to the machine: copy ../shared/datasets/fashion-mnist into .gpu-data/ (ignored).
DATA=${DARNAX_GPU_DATA:-.gpu-data}
if [ -d "$DATA/fashion-mnist" ]; then
    for platform in cuda cpu; do
        JAX_PLATFORMS=$platform "$PY" -m darnax train --preset seed-sparse --dataset fashion-mnist \
            --data-dir "$DATA" --epochs 2 --out "$OUT/epoch-$platform" 2>&1 | tee "$OUT/epoch-$platform.log"
    done
else
    echo "no $DATA/fashion-mnist: the epoch on the GPU is not measured" | tee "$OUT/epoch.log"
fi
