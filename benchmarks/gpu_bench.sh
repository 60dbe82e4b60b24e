#!/usr/bin/env bash
# Whole benchmark on one GPU, under 6 minutes including compilation. Run from the repo root:
#   OUT=/some/dir bash benchmarks/gpu_bench.sh
# Needs python3 with jax[cuda], flax, optax, equinox and torch (CUDA) already installed (no network).
# Writes $OUT/gpu_results.json, $OUT/gpu_parallel.json and $OUT/gpu_bench.log.
set -u
OUT="${OUT:-benchmarks/gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_bench.log"
export PYTHONPATH="${PYTHONPATH:-}:."
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # share the GPU with torch
export TF_CPP_MIN_LOG_LEVEL=1
PY="${PYTHON:-python3}"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  "$PY" -c "import jax, sys; print('jax', jax.__version__, jax.devices(), sys.version.split()[0])"
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available(), torch.backends.cudnn.version())" 2>&1 | tail -1
} >>"$LOG" 2>&1
# Main table (all competitors, incl. torch cuDNN and jax.experimental.rnn); JSON is rewritten after every shape.
timeout 220 "$PY" benchmarks/run.py --device gpu --rounds 5 --out "$OUT/gpu_results.json" >>"$LOG" 2>&1
echo "run.py exit $?" >>"$LOG"
# Sequential vs associative scan, T = 128 ... 16384.
timeout 110 "$PY" benchmarks/bench_parallel.py --device gpu --batch 16 --hidden 256 --rounds 5 --cells min_gru,linear_complex_diagonal \
  --out "$OUT/gpu_parallel.json" >>"$LOG" 2>&1
echo "bench_parallel.py exit $?" >>"$LOG"
date -u >>"$LOG"
tail -n 80 "$LOG"
