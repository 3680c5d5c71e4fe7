#!/usr/bin/env bash
# Installs dependencies (idempotent) and builds everything into build/ (binaries in
# build/bin/, tests in build/tests/). Extra arguments go to `cmake --build`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
BUILD_DIR=${RLHF_BUILD_DIR:-build}
# BASEDIR makes cached objects reusable across checkouts in different directories.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
# Needed for ccache to cache compiles that use the torch precompiled header.
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" "$@"
