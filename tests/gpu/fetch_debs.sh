#!/usr/bin/env bash
# Downloads (apt-get download, Debian 12) the .deb files a GPU machine without our Debian
# libraries needs to build for tests/gpu/run_gpu_checks.sh (RLHF_DEB_DIR=DIR): the -dev
# packages scripts/install_deps.sh installs and the libraries they need that a CUDA image
# does not carry (the C library, libstdc++ and the like are left out). About 26 MB.
#
# Usage: tests/gpu/fetch_debs.sh DIR
set -euo pipefail
dir=${1:?usage: tests/gpu/fetch_debs.sh DIR}
packages=(
  libgrpc++-dev libgrpc++1.51 libgrpc-dev libgrpc29 protobuf-compiler-grpc
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler
  libabsl-dev libabsl20220623 libc-ares-dev libc-ares2 libre2-dev libre2-9
  prometheus-cpp-dev libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  libprometheus-cpp-push1.0 civetweb libcivetweb-dev libcivetweb1 libcurl4-openssl-dev libcurl4
  googletest libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libsqlite3-dev libsqlite3-0 nlohmann-json3-dev libssl-dev libssl3 zlib1g-dev zlib1g
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libutf8proc-dev libutf8proc2 libgloo-dev libgloo0 pkgconf pkgconf-bin libpkgconf3
)
mkdir -p "$dir"
cd "$dir"
apt-get download "${packages[@]}"
echo "fetch_debs: $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) in $PWD"
