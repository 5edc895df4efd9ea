# aarch64-linux-gnu.cmake -- cross-compiles libvwn for 64-bit ARM Linux (the NEON kernels) with
# Debian's cross gcc, and runs what it builds (ctest, try_run) under qemu user emulation:
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static, and the arm64
# libraries the build links from the multiarch tree, i.e. libutf8proc-dev:arm64 after
# `dpkg --add-architecture arm64 && apt-get update` (scripts/test_neon.sh installs all of it).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(VWN_CROSS_TRIPLE aarch64-linux-gnu)
find_program(VWN_CROSS_CC NAMES ${VWN_CROSS_TRIPLE}-gcc REQUIRED)
set(CMAKE_C_COMPILER ${VWN_CROSS_CC})

# ctest and try_run start the aarch64 binaries through qemu. -L makes the ELF interpreter
# (/lib/ld-linux-aarch64.so.1) come from the cross sysroot, and LD_LIBRARY_PATH (set in the guest
# by -E) makes libc and libm come from there too: otherwise ld.so finds them in the multiarch tree
# (/lib/aarch64-linux-gnu, installed with libc6:arm64 as a dependency of libutf8proc2:arm64), a
# different glibc build from the cross one, and the mix hangs in the first pthread_create. The
# other arm64 libraries (libutf8proc) are still found in /usr/lib/aarch64-linux-gnu.
find_program(VWN_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${VWN_QEMU_AARCH64} -L /usr/${VWN_CROSS_TRIPLE}
    -E LD_LIBRARY_PATH=/usr/${VWN_CROSS_TRIPLE}/lib)

# Libraries and headers: the cross sysroot (/usr/aarch64-linux-gnu) and Debian's multiarch tree
# (/usr/lib/aarch64-linux-gnu, /usr/include), never the host's x86-64 ones. pkg-config is pointed
# at the arm64 .pc files only.
set(CMAKE_LIBRARY_ARCHITECTURE ${VWN_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH /usr/${VWN_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${VWN_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
