#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, and runs
#   1. every unit/integration test (ctest, Release build in build/),
#   2. the bad-input tests of io/tokenizer/model again under ASan + UBSan (build-asan/),
#   3. each libFuzzer target briefly (build-fuzz/, clang),
#   4. the CUDA build (build-cuda/, -DRLHF_WITH_CUDA=ON: the torch wheel's CUDA 12 and NCCL)
#      compiles and links, and its unit tests pass on this machine's CPU.
# Idempotent; a second run rebuilds only what changed (ccache, Ninja).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${RLHF_FUZZ_SECONDS:-30}
JOBS=$(nproc)
# BASEDIR makes cached objects reusable across checkouts in different directories.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
start=$(date +%s)
stage() { echo; echo "=== $* ($(($(date +%s) - start)) s) ==="; }

stage "dependencies and build"
scripts/build.sh

stage "unit and integration tests"
ctest --test-dir build --output-on-failure -j "$JOBS"

stage "sanitizers: ASan + UBSan on the bad-input areas"
if [ ! -f build-asan/build.ninja ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRLHF_SANITIZE=address,undefined -DRLHF_BUILD_BENCH=OFF
fi
cmake --build build-asan -j "$JOBS" --target rlhf_sanitized_tests
# Container-overflow annotations are off: libtorch itself is not instrumented.
ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L sanitize

stage "fuzzing: ${FUZZ_SECONDS}s per target"
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRLHF_WITH_TORCH=OFF -DRLHF_BUILD_TESTS=OFF -DRLHF_FUZZ=ON \
    -DRLHF_SANITIZE=fuzzer-no-link,address,undefined
fi
cmake --build build-fuzz -j "$JOBS"
for fuzzer in safetensors tokenizer chat_template; do
  corpus=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$fuzzer/." "$corpus/"
  log=build-fuzz/$fuzzer.log
  if ! build-fuzz/fuzz/${fuzzer}_fuzzer -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
       -artifact_prefix=build-fuzz/ "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"; echo "fuzzer $fuzzer failed; the input is saved in build-fuzz/"; exit 1
  fi
  echo "$fuzzer: $(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}') inputs, no crash"
  rm -rf "$corpus"
done

stage "CUDA build: -DRLHF_WITH_CUDA=ON compiles, links, and passes the unit tests on the CPU"
# Every file but the NCCL backend compiles as in build/, so ccache serves nearly all of it.
if [ ! -f build-cuda/build.ninja ]; then
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DRLHF_WITH_CUDA=ON
fi
cmake --build build-cuda -j "$JOBS"
# (ldd's output first: grep -q would close the pipe early and pipefail report it)
linked=$(ldd build-cuda/bin/rlhf-actor)
grep -q "libnccl.so.2 => .*/nvidia/nccl/" <<<"$linked" ||
  { echo "build-cuda/bin/rlhf-actor does not link the wheel's NCCL"; exit 1; }
# Every unit test, /metrics included: libtorch_cuda's static TLS no longer starves
# civetweb's 100 KiB thread stacks (cmake/TorchCuda.cmake, cmake/static_tls_stack.c).
ctest --test-dir build-cuda --output-on-failure -j "$JOBS" -L unit
if ! nvidia-smi -L >/dev/null 2>&1; then  # no GPU: asking for one is one line and exit 2
  set +e
  out=$(build-cuda/bin/rlhf-actor --model examples/models/tiny-gpt2 --device cuda 2>&1); status=$?
  set -e
  [ "$status" -eq 2 ] && grep -q "CUDA is not available here" <<<"$out" ||
    { echo "rlhf-actor --device cuda without a GPU: exit $status: $out"; exit 1; }
fi

stage "all tests passed"
