#!/usr/bin/env bash
# Installs every build, test and runtime dependency, pinned, from Debian's archive and
# PyPI only. Idempotent: a second run checks and skips what is already there.
#   scripts/install_deps.sh            C++ toolchain, libraries, LibTorch (.venv)
#   scripts/install_deps.sh --python   also the Python reference stack (goldens, benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 (bookworm) packages. Versions are pinned by the distribution release.
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-venv
  clang libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev gnuplot-nox curl libssl-dev
  libgloo-dev  # headers for c10d ProcessGroupGloo (the torch wheel ships its header, not gloo's)
  prometheus  # promtool, for tests/integration/monitoring_test.sh (deploy/prometheus rules)
  openssl python3-yaml  # test certificates (scripts/make_test_certs.sh); deploy_test.sh
)

# PyPI pins. torch's wheel carries LibTorch: C++ headers, shared libraries, CMake config.
TORCH_PIN="torch==2.9.1"
# CUDA 12.8 headers the wheel's nvidia-*-cu12 dependencies lack (crt/, nv/target), for
# -DRLHF_WITH_CUDA=ON (cmake/TorchCuda.cmake). Headers only: nothing of ours runs nvcc.
CUDA_HEADER_PINS=(nvidia-cuda-nvcc-cu12==12.8.93 nvidia-cuda-cccl-cu12==12.8.90)
PY_REFERENCE_PINS=(transformers==4.57.1 tokenizers==0.22.1 safetensors==0.6.2
                   numpy==2.3.4 trl==0.24.0 accelerate==1.11.0 datasets==4.4.1 peft==0.17.1)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[install_deps] apt: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >.apt-install.log 2>&1 \
    || { cat .apt-install.log; exit 1; }
fi

# A project-local virtual environment holds LibTorch (never the system Python).
PYTHON="${RLHF_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[install_deps] creating .venv"
  "$PYTHON" -m venv .venv
fi
pip_has() { .venv/bin/python -m pip show "${1%%==*}" 2>/dev/null | grep -qx "Version: ${1##*==}"; }
if ! pip_has "$TORCH_PIN"; then
  echo "[install_deps] pip: $TORCH_PIN"
  .venv/bin/python -m pip install -q --disable-pip-version-check "$TORCH_PIN"
fi
need=()
for p in "${CUDA_HEADER_PINS[@]}"; do pip_has "$p" || need+=("$p"); done
if ((${#need[@]})); then
  echo "[install_deps] pip: ${need[*]}"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "${need[@]}"
fi
if [ "${1:-}" = "--python" ]; then
  need=()
  for p in "${PY_REFERENCE_PINS[@]}"; do pip_has "$p" || need+=("$p"); done
  if ((${#need[@]})); then
    echo "[install_deps] pip: ${need[*]}"
    .venv/bin/python -m pip install -q --disable-pip-version-check "${need[@]}" "$TORCH_PIN"
  fi
fi
echo "[install_deps] ok"
