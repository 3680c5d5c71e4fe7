#!/usr/bin/env bash
# GPU checks (issue 13, "GPU workers"): one prepared run on a machine with an NVIDIA GPU.
# Never part of the normal test suite (scripts/test.sh, ctest); nothing else needs it.
#
# Needs: nvidia-smi with a working driver; python3 with a CUDA 12 torch wheel (2.9.1, as
# scripts/install_deps.sh pins) and its nvidia-* packages, including the header-only
# nvidia-cuda-nvcc-cu12 and nvidia-cuda-cccl-cu12 (cmake/TorchCuda.cmake); CMake >= 3.25,
# Ninja, a C++20 compiler; transformers for the bench. No system CUDA toolkit is used.
# The Debian libraries (gRPC, Protobuf, Abseil, prometheus-cpp, GoogleTest, Benchmark,
# SQLite, nlohmann-json, PCRE2, utf8proc, OpenSSL, pkg-config), if not installed, may come
# as Debian 12 .deb files (tests/gpu/fetch_debs.sh DIR downloads them) in a folder named by
# RLHF_DEB_DIR; they are unpacked there (dpkg-deb -x). The build finds them through
# CMAKE_PREFIX_PATH, PKG_CONFIG_PATH, PATH and LD_LIBRARY_PATH; the binaries it makes
# through their run path (DT_RPATH, which also serves their libraries' own dependencies),
# so Python (transformers, in the bench) never loads Debian's copies.
#
# Steps, each PASS or FAIL (SKIP where a prerequisite is missing), then a summary:
#   build   -DRLHF_WITH_CUDA=ON into build-gpu/: rlhf, rlhf-actor, device_parity_test,
#           generation_bench (ccache and an existing build-gpu/ make a rerun quick)
#   logits  device_parity_test: the golden fixture models' logits on cuda:0 vs the CPU and
#           vs transformers' goldens, float32 (1e-4) and bfloat16 (0.25); token logprobs
#           and entropy vs the CPU; the reward model's scores
#   greedy  device_parity_test: greedy float32 tokens on CUDA = transformers', alone and
#           batched; `rlhf generate --device cuda:0` = `--device cpu` (ids, greedy, fp32)
#   eval    `rlhf eval --device cuda:0` measures = the CPU's (1e-3)
#   ppo     `rlhf local --device cuda` runs a PPO job to SUCCEEDED
#   grpo    the same for a GRPO job (group sampling, length reward)
#   nccl    a one-rank NCCL group: all-reduce and broadcast (device_parity_test); and
#           rlhf-actor --device cuda with torchrun's RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*
#           serves (one GPU allows one NCCL rank; two ranks need two GPUs)
#   bench   tests/bench/generation_bench.py --device cuda: decode tokens/s at batch 1, 8,
#           32, rlhf vs transformers on the same GPU (reported; FAIL only if it cannot run)
#   shape   only with RLHF_GPU_REAL_SHAPE=1 (a few more minutes; =quick: the settings without
#           checkpointing or micro-batching, one GRPO job): at the Qwen2.5-0.5B shape
#           (tests/bench/make_qwen_shaped.py), the training step fp32 / bf16-mixed / with
#           checkpointing vs PyTorch on the same GPU (tests/bench/train_step_bench.py
#           --device), and a GRPO job's stage seconds on the GPU, one optimizer step per
#           batch (no Evaluate pass) and two (reported; FAIL only if it cannot run)
# About 5-8 minutes on one H200 with 16 cores, most of it the first build.
#
# Usage: tests/gpu/run_gpu_checks.sh [--dry-run]   (from any directory)
#   --dry-run   list the steps and the prerequisites found, build and run nothing
# Exit: 0 all passed; 1 a step failed; 2 no NVIDIA GPU here (nvidia-smi absent or failing).
# Env: RLHF_BUILD_DIR (build-gpu), PYTHON (.venv/bin/python if present, else python3),
#      RLHF_DEB_DIR (above), RLHF_GPU_LOGS (BUILD_DIR/gpu-checks: one log per step);
#      RLHF_GPU_STEPS (the steps after build, in order; default all of them);
#      RLHF_GPU_PREBUILT=1: RLHF_BUILD_DIR already holds the four binaries, built elsewhere
#      (-DRLHF_WITH_CUDA=ON against the same torch version as $PYTHON's, the libraries they
#      name reachable, the source tree at the path they were built from): the build step
#      checks that they load and start instead of building (it saves the device minutes
#      of a first build);
#      RLHF_GPU_CHECKS_SELFTEST=1 checks this script itself without a GPU: every "cuda" is
#      the CPU, RLHF_BUILD_DIR must hold a CPU build, the bench is tiny; it proves nothing
#      about GPUs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "run_gpu_checks.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

selftest=${RLHF_GPU_CHECKS_SELFTEST:-0}
dev=cuda:0 bench_args=(--rounds 2 --new-tokens 64)
[ "$selftest" = 1 ] && dev=cpu bench_args=(--rounds 1 --new-tokens 4 --batch-sizes 1,2)
have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
if [ "$selftest" != 1 ] && ! have_gpu; then
  if [ "$dry_run" -eq 0 ]; then
    echo "run_gpu_checks.sh: no NVIDIA GPU here (nvidia-smi is missing or fails); these" \
      "checks need one. The normal suite is scripts/test.sh." >&2
    exit 2
  fi
  echo "(dry run: no NVIDIA GPU here; a real run would exit 2)"
fi

build=${RLHF_BUILD_DIR:-build-gpu}
logs=${RLHF_GPU_LOGS:-$build/gpu-checks}
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x .venv/bin/python ] && PYTHON=$root/.venv/bin/python
fi
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DRLHF_WITH_CUDA=ON)
build_env=()  # the environment of cmake's configure and build
if [ -n "${RLHF_DEB_DIR:-}" ]; then
  deb=$(cd "$RLHF_DEB_DIR" && pwd)
  if [ "$dry_run" -eq 0 ] && [ ! -d "$deb/usr" ]; then
    for f in "$deb"/*.deb; do dpkg-deb -x "$f" "$deb"; done
  fi
  libdir=$deb/usr/lib/x86_64-linux-gnu
  # LIBRARY_PATH: some .pc files (re2's) name /usr/lib/... itself for their -l flags.
  build_env=(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    LIBRARY_PATH="$libdir${LIBRARY_PATH:+:$LIBRARY_PATH}"
    PATH="$deb/usr/bin:$PATH"
    PKG_CONFIG_PATH="$libdir/pkgconfig:$deb/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}")
  # The .pc files say prefix=/usr; --define-prefix takes it from where they lie.
  cmake_args+=("-DCMAKE_PREFIX_PATH=$deb/usr" "-DPKG_CONFIG_ARGN=--define-variable=prefix=$deb/usr"
    "-DCMAKE_BUILD_RPATH=$libdir" "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags")
fi
# A CUDA 13 torch wheel lacks crt/ and nv/target; cmake/TorchCuda.cmake takes them from the
# toolkit under CUDA_HOME (or /usr/local/cuda*): the one whose nvcc is on PATH, if any.
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null 2>&1; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  export CUDA_HOME
fi
torch_prefix=$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' \
  2>/dev/null || true)
[ -n "$torch_prefix" ] && cmake_args+=("-DTorch_DIR=$torch_prefix/Torch")
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

if [ "$dry_run" -eq 1 ]; then
  echo "steps: build logits greedy eval ppo grpo nccl bench shape"
  echo "build: cmake -S . -B $build ${cmake_args[*]}"
  echo "python: $PYTHON (torch at: ${torch_prefix:-NOT FOUND})"
  for tool in cmake ninja c++ ccache; do
    printf '%-7s %s\n' "$tool:" "$(command -v $tool || echo 'NOT FOUND')"
  done
  "$PYTHON" -c 'import transformers' 2>/dev/null && echo "transformers: yes" ||
    echo "transformers: NOT FOUND (the bench step would SKIP)"
  exit 0
fi

mkdir -p "$logs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$build/bin
model=$root/tests/golden/fixtures/models/gpt2
declare -a names=() results=() times=()

# run_step NAME FUNCTION: runs FUNCTION (set -e inside) with its output in $logs/NAME.log;
# it prints SKIP: REASON and returns 3 to skip.
run_step() {
  local name=$1 fn=$2 start status result
  start=$(date +%s)
  echo "--- $name"
  set +e
  (set -euo pipefail; "$fn") >"$logs/$name.log" 2>&1
  status=$?
  set -e
  case $status in
    0) result=PASS ;;
    3) result=SKIP ;;
    *) result=FAIL ;;
  esac
  names+=("$name") results+=("$result") times+=($(($(date +%s) - start)))
  # Each step's findings: "[ gpu ] ..." and "ok   ..." lines, the bench's table.
  { grep -E '^(\[ gpu \]|ok   |SKIP)' "$logs/$name.log" || true; } | head -40 | sed 's/^/    /'
  [ "$name" = bench ] && [ "$result" = PASS ] && tail -6 "$logs/$name.log" | sed 's/^/    /'
  [ "$name" = shape ] && [ "$result" = PASS ] && grep '^|' "$logs/$name.log" | sed 's/^/    /'
  if [ "$result" = FAIL ]; then
    echo "    ... last lines of $logs/$name.log:"
    tail -15 "$logs/$name.log" | sed 's/^/    | /'
  fi
  echo "$result $name (${times[-1]} s)"
}
built=0
need_build() { [ "$built" -eq 1 ] || { echo "the build failed"; return 1; }; }

step_build() {
  [ "$selftest" = 1 ] || nvidia-smi -L
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
      "sees a GPU:", torch.cuda.is_available())' || true
  [ -n "$torch_prefix" ] || { echo "$PYTHON cannot import torch"; return 1; }
  if [ "${RLHF_GPU_PREBUILT:-0}" = 1 ]; then
    local b
    for b in bin/rlhf bin/rlhf-actor tests/device_parity_test bench/generation_bench; do
      [ -x "$build/$b" ] || { echo "RLHF_GPU_PREBUILT: $build/$b is missing"; return 1; }
      if ldd "$build/$b" | grep -F 'not found'; then
        echo "RLHF_GPU_PREBUILT: $build/$b cannot load the libraries above"
        return 1
      fi
    done
    "$bin/rlhf" --help >/dev/null
    "$build/tests/device_parity_test" --gtest_list_tests | tail -3
    echo "ok   prebuilt binaries in $build load and start"
    return
  fi
  if [ "$selftest" = 1 ]; then  # the CPU build given; only the missing targets are built
    timeout 3000 cmake --build "$build" -j "$(nproc)" --target rlhf rlhf-actor \
      device_parity_test generation_bench
    return
  fi
  [ -f "$build/build.ninja" ] || env "${build_env[@]}" cmake -S . -B "$build" "${cmake_args[@]}"
  timeout 540 env "${build_env[@]}" cmake --build "$build" -j "$(nproc)" \
    --target rlhf rlhf-actor device_parity_test generation_bench
}

step_logits() {
  need_build
  RLHF_PARITY_DEVICE=$dev timeout 180 "$build/tests/device_parity_test" \
    --gtest_filter='*LogitsMatchTheCpuAndTransformers*:*TokenLogprobs*:*RewardModel*'
}

step_greedy() {
  need_build
  RLHF_PARITY_DEVICE=$dev timeout 120 "$build/tests/device_parity_test" --gtest_filter='*Greedy*'
  local dir prompt out_cpu out_cuda
  for dir in "$model" "$root/tests/golden/fixtures/models/gpt2-padded-vocab" \
    "$root/examples/models/tiny-gpt2"; do
    for prompt in "Once upon a time" "hello world, the quick brown fox"; do
      out_cpu=$(timeout 60 "$bin/rlhf" generate --model "$dir" --prompt "$prompt" \
        --temperature 0 --max-new-tokens 24 --show-ids --device cpu)
      out_cuda=$(timeout 60 "$bin/rlhf" generate --model "$dir" --prompt "$prompt" \
        --temperature 0 --max-new-tokens 24 --show-ids --device "$dev" --dtype float32)
      if [ "$out_cpu" != "$out_cuda" ]; then
        printf 'greedy differs for %s, "%s":\ncpu:  %s\ncuda: %s\n' "$dir" "$prompt" \
          "$out_cpu" "$out_cuda"
        return 1
      fi
      echo "ok   rlhf generate greedy: $dev = cpu ($(basename "$dir"), \"$prompt\")"
    done
  done
}

step_eval() {
  need_build
  local device
  for device in cpu "$dev"; do
    timeout 120 "$bin/rlhf" eval --policy "$model" --reference "$model" \
      --pairs "$root/examples/data/preference.jsonl" --prompts "$work/prompts.jsonl" \
      --temperature 0 --max-response-tokens 8 --device "$device" --dtype float32 \
      --output "$work/eval-$device.json"
  done
  "$PYTHON" - "$work/eval-cpu.json" "$work/eval-$dev.json" <<'EOF'
import json, sys
cpu, cuda = (json.load(open(p)) for p in sys.argv[1:])
assert cpu.keys() == cuda.keys(), (cpu, cuda)
bad = {k: (cpu[k], cuda[k]) for k in cpu if abs(cpu[k] - cuda[k]) > 1e-3 * max(1, abs(cpu[k]))}
assert not bad, f"rlhf eval on the device vs cpu differ: {bad}"
print("ok   rlhf eval on the device = cpu:", ", ".join(f"{k} {v:.4g}" for k, v in cuda.items()))
EOF
}

# job NAME ALGORITHM EXTRA_JSON: a small job spec (as tests/integration/local_test.sh's).
job() {
  cat >"$work/$1.json" <<EOF
{"name": "gpu-$1", "algorithm": "$2", "models": {"policy_dir": "$model"},
 "data": {"train_path": "$work/prompts.jsonl"}, "optimizer": {"learning_rate": 1e-4},
 "training": {"batch_size": 4, "minibatch_size": 2, "ppo_epochs": 2, "iterations": 3},
 "checkpoint": {"dir": "$work/ckpt-$1", "interval": 2}, "runtime": {"seed": 3} $3}
EOF
  echo "$work/$1.json"
}
run_local() {  # run_local NAME ALGORITHM EXTRA_JSON
  need_build
  local out
  out=$(timeout 240 "$bin/rlhf" local "$(job "$@")" --device "${dev%%:*}" 2>&1) ||
    { echo "$out"; return 1; }
  echo "$out"
  grep -q "summary: SUCCEEDED after 3/3 iterations" <<<"$out" ||
    { echo "no 'summary: SUCCEEDED after 3/3 iterations'"; return 1; }
  [ -f "$work/ckpt-$1/final/model.safetensors" ] || { echo "no final policy"; return 1; }
  echo "ok   rlhf local --device ${dev%%:*}: $2 SUCCEEDED, final policy written"
}
step_ppo() {
  run_local ppo ppo ', "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8},
    "reward": {"kind": "regex", "pattern": "[a-z]"}'
}
step_grpo() {
  run_local grpo grpo ', "generation": {"max_prompt_tokens": 16, "max_response_tokens": 8,
    "samples_per_prompt": 2}, "reward": {"kind": "length", "target_length": 4}'
}

step_nccl() {
  need_build
  [ "$selftest" = 1 ] ||  # (the CPU build's NCCL is a stub that refuses)
    timeout 120 "$build/tests/device_parity_test" --gtest_filter='NcclTest.*'
  local port log=$work/actor.log
  port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$bin/rlhf-actor" --model "$model" --device "${dev%%:*}" --listen 127.0.0.1:0 \
    --metrics-listen '' \
    >"$log" 2>&1 &
  actor_pid=$!
  trap 'kill -9 $actor_pid 2>/dev/null || true' EXIT  # this step's subshell
  local address=
  for _ in $(seq 1 600); do
    address=$(sed -n 's/.*listening on \(127.0.0.1:[0-9]*\),.*/\1/p' "$log" | head -1)
    [ -n "$address" ] && timeout 5 "$bin/rlhf" health "$address" >/dev/null 2>&1 && break
    kill -0 "$actor_pid" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.1
  done
  timeout 5 "$bin/rlhf" health "$address" || { cat "$log"; return 1; }
  kill -TERM "$actor_pid"
  wait "$actor_pid" || { cat "$log"; return 1; }
  echo "ok   rlhf-actor --device ${dev%%:*} (torchrun env, one rank) served and drained"
}

step_bench() {
  need_build
  "$PYTHON" -c 'import transformers' 2>/dev/null ||
    { echo "SKIP: $PYTHON has no transformers"; return 3; }
  timeout 300 "$PYTHON" tests/bench/generation_bench.py --device "$dev" --build "$build" \
    "${bench_args[@]}"
}

step_shape() {
  need_build
  case "${RLHF_GPU_REAL_SHAPE:-0}" in
    1 | quick) ;;
    *) echo "SKIP: set RLHF_GPU_REAL_SHAPE=1 (or quick)"; return 3 ;;
  esac
  "$PYTHON" -c 'import transformers' 2>/dev/null ||
    { echo "SKIP: $PYTHON has no transformers"; return 3; }
  local qwen=$build/bench/qwen2.5-0.5b-shape minibatch minibatches="4 2" quick=()
  # RLHF_GPU_REAL_SHAPE=quick: the plain settings only, one GRPO job (about half the time).
  [ "$RLHF_GPU_REAL_SHAPE" = quick ] && quick=(--plain-only) minibatches=4
  timeout 400 "$PYTHON" tests/bench/train_step_bench.py --device "$dev" --build "$build" \
    --model "$qwen" --rows 16 --prompt-tokens 64 --response-tokens 192 --steps 3 "${quick[@]}"
  # The bundled tokenizer (its ids are a prefix of the vocabulary): prompts in, ids out.
  cp "$root"/examples/models/tiny-gpt2/tokenizer*.json "$qwen"/
  for minibatch in $minibatches; do
    cat >"$work/qwen-$minibatch.json" <<EOF
{"name": "qwen-grpo", "algorithm": "grpo", "models": {"policy_dir": "$qwen"},
 "data": {"train_path": "$work/prompts.jsonl"}, "optimizer": {"learning_rate": 1e-6},
 "training": {"batch_size": 4, "minibatch_size": $minibatch, "ppo_epochs": 1, "iterations": 3},
 "generation": {"max_prompt_tokens": 32, "max_response_tokens": 128, "samples_per_prompt": 8,
   "temperature": 1.0}, "reward": {"kind": "length", "target_length": 64},
 "checkpoint": {"dir": "$work/ckpt-qwen-$minibatch", "interval": 100}, "runtime": {"seed": 3}}
EOF
    timeout 300 "$bin/rlhf" local "$work/qwen-$minibatch.json" --device "${dev%%:*}" \
      --metrics-jsonl "$work/qwen-$minibatch.jsonl" | tail -2
    "$PYTHON" - "$work/qwen-$minibatch.jsonl" "$minibatch" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
stages = ["generate", "reference", "evaluate", "train", "sync", "iteration"]
print(f"[ gpu ] GRPO at the Qwen2.5-0.5B shape, 4 prompts x 8 samples x 128 tokens, "
      f"minibatch {sys.argv[2]} of 4:")
for r in rows:
    print("[ gpu ]   " + ", ".join(f"{s} {r['time_' + s + '_seconds']:.2f} s" for s in stages))
EOF
  done
}

printf '%s\n' '{"prompt": "hello world"}' '{"prompt": "the quick brown fox"}' \
  '{"prompt": "once upon a time"}' '{"prompt": "a b c"}' >"$work/prompts.jsonl"
steps=${RLHF_GPU_STEPS:-logits greedy eval ppo grpo nccl bench shape}
for step in $steps; do
  declare -F "step_$step" >/dev/null || { echo "RLHF_GPU_STEPS: no step '$step'" >&2; exit 2; }
done
run_step build step_build
[ "${results[-1]}" = PASS ] && built=1
for step in $steps; do run_step "$step" "step_$step"; done

echo
if [ "$selftest" = 1 ]; then
  echo "=== GPU checks: SELF-TEST on the CPU (nothing about GPUs was checked)"
else
  echo "=== GPU checks: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
fi
failed=0
for i in "${!names[@]}"; do
  printf '%-4s %-7s %4s s\n' "${results[$i]}" "${names[$i]}" "${times[$i]}"
  [ "${results[$i]}" = FAIL ] && failed=$((failed + 1))
done
echo "logs: $logs/"
[ "$failed" -eq 0 ] || { echo "$failed step(s) FAILED"; exit 1; }
echo "all steps passed"
