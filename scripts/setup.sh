#!/usr/bin/env bash
# setup.sh -- install what libvwn needs on a fresh Debian machine and build it into build/.
#   scripts/setup.sh          system packages (as root, via apt) + Python venv + Release build
#   VWN_SKIP_APT=1 ...        skip apt (packages already there)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build pkg-config clang libomp-dev libclang-rt-14-dev
              libmimalloc-dev libutf8proc-dev python3 python3-venv python3-pip python3-numpy python3-torch libopenblas0-openmp
              valgrind
              gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static libutf8proc-dev:arm64)
# (the last line: scripts/test_neon.sh cross-compiles for AArch64 and runs the tests under qemu;
#  libutf8proc-dev:arm64 comes from Debian's arm64 multiarch archive, added below if needed)

if [ "${VWN_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    echo "setup: installing ${missing[*]}"
    if printf '%s\n' "${missing[@]}" | grep -q ':arm64$' && ! dpkg --print-foreign-architectures | grep -qx arm64; then
      $SUDO dpkg --add-architecture arm64
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# Python tools (converter, reference, trainer, tests): a venv over Debian's python3 so that
# Debian's python3-torch is visible; the rest from PyPI.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt

# The library, the vwn command, examples and C tests (clang: OpenMP from LLVM's libomp).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build
echo "setup: built build/bin/vwn and build/lib/libvwn.so"
