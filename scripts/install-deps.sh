#!/usr/bin/env bash
# Installs the Debian packages vlzoo builds, tests and benchmarks with,
# skipping those already present. Runs apt-get as root, or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang clang-format
  libdnnl-dev            # oneDNN: the CPU GEMM
  libjson-c-dev          # every JSON vlzoo reads or writes
  libyaml-dev            # zoo configs
  libprotobuf-c-dev protobuf-c-compiler  # MindSpore .ckpt
  ocl-icd-opencl-dev opencl-c-headers libclblast-dev  # OpenCL backend (OpenCL 1.2, CLBlast)
  pocl-opencl-icd        # a CPU OpenCL device, so that the "opencl" tests run in CI
  libjpeg-dev libpng-dev # image decoding
  libutf8proc-dev        # Unicode normalization for the tokenizers
  libopenblas-dev jq bc  # the benchmarks: GEMM competitor and result summaries
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
