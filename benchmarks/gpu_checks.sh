#!/usr/bin/env bash
# Issue 5's and 24's GPU measurements (≈ 9 minutes on one H100/H200, + ≈ 4 for step 5), for a
# session lent a GPU. Over two device calls (10 minutes each at most):
#   GPU_CHECKS_SKIP=grid bash benchmarks/gpu_checks.sh OUT; GPU_CHECKS_ONLY=grid bash ... OUT2
#
#   bash benchmarks/gpu_checks.sh [OUT]        # OUT: $OUT, else ./gpu_results
#
# Steps, each under its own time limit (a step that overruns is killed and the next one runs):
#   1. egl_speed   benchmarks/egl_speed.py --paper-size: naive / K-copies / the peers (BackPACK
#                  BatchL2Grad and Opacus GradSampleModule on K copies, torch.func; where their
#                  wheels were carried, below) / exact auto (the default), vmap and hooks /
#                  approx (m exact + tail mean + R probes) / "1 fwd + K bwd" bound, each row's
#                  peak GPU memory, and rank agreement on a briefly trained model
#   1b. egl_memory the default (auto) at 256 px, K = 30, 16 images per call, under
#                  --max-memory 16GiB: its images/s and peak memory (issue 22: fits 24 GiB)
#   2. affinity    benchmarks/affinity_scale.py: |U| = 10^6, |L| = 10^5, 256-d, chunked on the GPU
#   3. train       benchmarks/pose_train.py --sizes paper: plain fp32 loop vs the project's
#                  (bf16 autocast + channels_last), images/s
#   4. al_cycle    benchmarks/al_cycle.py: one paper-size AL cycle (egl++ exact and random),
#                  phase timings to extrapolate the paper experiment from
#   5. grid        benchmarks/gpu_grid.py (issue 24): one cycle of egl++ and random for 2 runs
#                  at the paper preset's model and image sizes (smaller pool, 1 epoch) on all
#                  visible GPUs (torchrun, one rank each) and on one: wall time, training and
#                  exact EGL++ images/s, the same scores?; and --match: EGL++ scored on the GPU
#                  from a CPU run's checkpoints selects what the CPU selected (gpu_match.py:
#                  Spearman >= 0.999, >= 90 % of the selected images in common)
# Writes egl_speed_gpu.json, egl_memory_gpu.json, affinity_scale_gpu.json, pose_train_gpu.json,
# al_cycle_gpu.json, gpu_grid_gpu.json,
# gpu_checks.log (every step's output) and summary.json (exit code and seconds of each step):
# eight files, what the device tool brings back (8).
#
# Needs: PyTorch with CUDA, numpy, scipy, typer, rich, pyyaml, matplotlib (all in the device
# image); eglpp runs from ./src (no install). openTSNE, used by the explain figure of the AL
# cycle, is not in the image: without it step 4 fails. Fetch its wheel here first, then carry it:
#   echo /.whl/ >> .git/info/exclude
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl openTSNE==1.0.4
# and, for the peer rows of step 1 (benchmark-only, never eglpp's dependencies), pure-Python
# wheels of BackPACK and Opacus with what they import (torchvision is not needed to run them):
#   python -m pip download --no-deps --only-binary=:all: -d .whl backpack-for-pytorch einops \
#     unfoldNd opacus opt_einsum
# and call the device tool with  command="bash benchmarks/gpu_checks.sh", carry=[".whl"],
# timeout_s=600.
#
# CPU dry run (no GPU needed; what tests/test_benchmarks_smoke.py runs, ≈ 20 s on 2 cores):
#   GPU_CHECKS_DEVICE=cpu GPU_CHECKS_SMALL=1 bash benchmarks/gpu_checks.sh /tmp/gc
# GPU_CHECKS_DEVICE (default cuda) is passed to every step as --device. GPU_CHECKS_SMALL=1 runs
# the same four steps at tiny sizes (a small hourglass at 64 px instead of --paper-size /
# --sizes paper / --preset paper, a few images, |U| = 2000, |L| = 500) to check that every step
# still runs and writes its JSON; its figures measure nothing. Away from CUDA, nvidia-smi is
# skipped, OMP_NUM_THREADS defaults to 1, and the files are named <step>_<device>[_small].json
# (e.g. egl_speed_cpu_small.json) instead of <step>_gpu.json.
set -u
OUT=${1:-${OUT:-gpu_results}}
DEVICE=${GPU_CHECKS_DEVICE:-cuda}
SMALL=${GPU_CHECKS_SMALL:-0}
mkdir -p "$OUT"
LOG="$OUT/gpu_checks.log"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
TAG=gpu
if [ "$DEVICE" != cuda ] || [ "$SMALL" = 1 ]; then
  TAG=${DEVICE//[^A-Za-z0-9]/_}
  [ "$SMALL" = 1 ] && TAG=${TAG}_small
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
if [[ $DEVICE == cuda* ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$LOG" 2>&1
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  echo "device $DEVICE (small=$SMALL, OMP_NUM_THREADS=$OMP_NUM_THREADS): nvidia-smi skipped" >"$LOG"
fi
$PY -c "import torch; print('torch', torch.__version__,
  torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')" >>"$LOG" 2>&1

STEPS=()
step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  if [[ -n ${GPU_CHECKS_ONLY:-} && ,$GPU_CHECKS_ONLY, != *,$name,* ]] ||
    [[ ,${GPU_CHECKS_SKIP:-}, == *,$name,* ]]; then
    return 0
  fi
  echo "=== $name (limit ${limit} s): $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
  STEPS+=("\"$name\": {\"exit\": $rc, \"seconds\": $((SECONDS - t0))}")
}

if [ "$SMALL" = 1 ]; then  # tiny sizes: every step runs, nothing is measured
  EGL_SIZE=(--channels 8 --pool 2 --rank-pool 4 --labelled 8 --batch-sizes 2 --approx 1+1
    --rank-approx 0+1,2+0 --bound-batch 2 --train-images 8 --train-epochs 1)
  AFF_SIZE=(--unlabelled 2000 --labelled 500)
  TRAIN_SIZE=(--sizes cpu --images 4 --batch-size 2 --epochs 1)
  AL_SIZE=(--preset tiny --n-pool 48 --initial 16 --budget 8 --n-test 16 --base-epochs 1
    --cycle-epochs 1)
  GRID=(--ranks 1,2 --match-small -- "${AL_SIZE[@]}")  # 2 ranks against 1, on the CPU
else
  EGL_SIZE=(--paper-size --pool 32 --rank-pool 96 --labelled 256 --batch-sizes 4,16
    --approx 12+0,0+4 --rank-approx 0+4,4+0,8+0,12+0 --train-images 1024 --train-epochs 4)
  AFF_SIZE=(--unlabelled 1000000 --labelled 100000)
  TRAIN_SIZE=(--sizes paper --images 1024 --batch-size 32 --epochs 2)
  AL_SIZE=(--preset paper --n-pool 1500 --initial 500 --budget 250 --n-test 300
    --base-epochs 3 --cycle-epochs 2)
  GRID=(-- --preset paper --runs 2 --n-pool 1000 --initial 300 --budget 200 --n-test 200
    --base-epochs 1 --cycle-epochs 1)
fi
# a fresh run directory (an old one, from a rerun on the same machine, would be resumed, not
# timed), removed at the end: only $OUT is kept
AL_RUN=$(mktemp -d /tmp/al_cycle.XXXXXX)
trap 'rm -rf "$AL_RUN"' EXIT

step egl_speed 180 $PY benchmarks/egl_speed.py --device "$DEVICE" "${EGL_SIZE[@]}" \
  --skip-affinity --out "$OUT/egl_speed_$TAG.json"
if [ "$SMALL" = 1 ]; then
  MEM_SIZE=(--channels 8 --pool 2 --batch-sizes 2 --rank-pool 2 --rank-approx 0+1 --labelled 8
    --train-epochs 0 --max-memory 64MiB)
else
  MEM_SIZE=(--paper-size --pool 32 --batch-sizes 16 --rank-pool 4 --rank-approx 0+1
    --labelled 64 --train-epochs 0 --max-memory 16GiB)
fi
step egl_memory 60 $PY benchmarks/egl_speed.py --device "$DEVICE" "${MEM_SIZE[@]}" \
  --methods auto:all --approx 12+0 --skip-naive --skip-k-copies --skip-peers --skip-affinity \
  --out "$OUT/egl_memory_$TAG.json"
step affinity 90 $PY benchmarks/affinity_scale.py --device "$DEVICE" "${AFF_SIZE[@]}" \
  --chunk-size 4096 --skip-opentsne --out "$OUT/affinity_scale_$TAG.json"
step train 90 $PY benchmarks/pose_train.py --device "$DEVICE" "${TRAIN_SIZE[@]}" \
  --out "$OUT/pose_train_$TAG.json"
step al_cycle 160 $PY benchmarks/al_cycle.py --device "$DEVICE" "${AL_SIZE[@]}" \
  --strategies egl++,random --run-dir "$AL_RUN" --out "$OUT/al_cycle_$TAG.json"
step grid 300 $PY benchmarks/gpu_grid.py --device "$DEVICE" --match --out "$OUT/gpu_grid_$TAG.json" \
  "${GRID[@]}"

(IFS=,; echo "{${STEPS[*]}}") >"$OUT/summary.json"
cat "$OUT/summary.json"
