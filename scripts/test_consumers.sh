#!/usr/bin/env bash
# test_consumers.sh -- libvwn as a third party sees it: install it into a temporary prefix
# (cmake --install), check the install tree (SONAME, header, CMake package, pkg-config file), check
# that vwn.h compiles cleanly as C11 and C++17 (gcc and clang, -Wall -Wextra -Werror -pedantic),
# then build examples/cpp (find_package(vwn) + vwn::vwn) and examples/c-pkgconfig (pkg-config)
# against the prefix and run both on a model.
#   scripts/test_consumers.sh MODEL.gguf        (VWN_BUILD_DIR: the build to install, default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=${1:?usage: scripts/test_consumers.sh MODEL.gguf}
MODEL=$(realpath "$MODEL")
BUILD=$(realpath "${VWN_BUILD_DIR:-$ROOT/build}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vwn-consumers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix

passed=0; failed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >"$TMP/out.log" 2>&1; then passed=$((passed+1)); echo "ok   $what"
  else failed=$((failed+1)); echo "FAIL $what"; sed 's/^/     | /' "$TMP/out.log" | tail -30; fi
}

echo "== install $BUILD into $PREFIX"
cmake --build "$BUILD" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; echo "build of $BUILD failed"; exit 1; }
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; exit 1; }
LIBDIR=$PREFIX/lib
[ -d "$LIBDIR" ] || LIBDIR=$(dirname "$(find "$PREFIX" -name libvwn.so | head -1)")

echo "== install tree"
check "libvwn.so.0 is the SONAME" bash -c "readelf -d '$LIBDIR/libvwn.so' | grep -q 'SONAME.*\[libvwn.so.0\]'"
check "libvwn.so -> libvwn.so.0 -> libvwn.so.0.x.y" bash -c "[ -L '$LIBDIR/libvwn.so' ] && [ -L '$LIBDIR/libvwn.so.0' ] && ls '$LIBDIR'/libvwn.so.0.*.*"
check "only vwn_* symbols are exported" bash -c "! nm -D --defined-only '$LIBDIR/libvwn.so' | awk '\$2 ~ /[TDBR]/ {print \$3}' | grep -v '^vwn_' | grep -v '^_'"
check "header installed" test -f "$PREFIX/include/vwn.h"
check "lib/cmake/vwn/vwnConfig.cmake" test -f "$LIBDIR/cmake/vwn/vwnConfig.cmake"
check "lib/cmake/vwn/vwnConfigVersion.cmake" test -f "$LIBDIR/cmake/vwn/vwnConfigVersion.cmake"
check "lib/pkgconfig/vwn.pc names the prefix" grep -qx "prefix=$PREFIX" "$LIBDIR/pkgconfig/vwn.pc"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
check "pkg-config --modversion vwn" bash -c "[ \"\$(pkg-config --modversion vwn)\" = \"\$(sed -n 's/^#define VWN_VERSION_STRING \"\\(.*\\)\"/\\1/p' '$PREFIX/include/vwn.h')\" ]"

echo "== header"
printf '#include <vwn.h>\nint main(void) { return vwn_version() == 0; }\n' >"$TMP/h.c"
printf '#include <vwn.h>\nint main() { return vwn_version() == nullptr; }\n' >"$TMP/h.cpp"
for cc in gcc clang; do
  command -v $cc >/dev/null || continue
  check "vwn.h as C11 ($cc -std=c11 -Wall -Wextra -Werror -pedantic)" \
    $cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$PREFIX/include" -c "$TMP/h.c" -o "$TMP/h.o"
done
for cxx in g++ clang++; do
  command -v $cxx >/dev/null || continue
  check "vwn.h as C++17 ($cxx -std=c++17 -Wall -Wextra -Werror -pedantic)" \
    $cxx -std=c++17 -Wall -Wextra -Werror -pedantic -I"$PREFIX/include" -c "$TMP/h.cpp" -o "$TMP/h.o"
done

echo "== consumers"
check "examples/cpp: cmake configure (find_package(vwn))" \
  cmake -S examples/cpp -B "$TMP/cpp" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release
check "examples/cpp: build" cmake --build "$TMP/cpp"
check "examples/cpp: run" bash -c "'$TMP/cpp/vwn_cpp_example' '$MODEL' 'Hello' 8 > '$TMP/cpp.out' && grep -q 'generated 8' '$TMP/cpp.out'"
cp -r examples/c-pkgconfig "$TMP/c"
check "examples/c-pkgconfig: make (pkg-config --cflags --libs vwn)" make -C "$TMP/c"
check "examples/c-pkgconfig: run (rpath from pkg-config's libdir)" \
  bash -c "env -u LD_LIBRARY_PATH '$TMP/c/vwn_c_example' '$MODEL' 'Hello' 8 > '$TMP/c.out' && grep -q 'generated 8' '$TMP/c.out'"
check "C and C++ consumers generate the same text" \
  bash -c "diff <(sed -n '/^--- generated/,/^--- end/p' '$TMP/c.out') <(sed -n '/^--- generated/,/^--- end/p' '$TMP/cpp.out')"
mkdir -p "$TMP/static"
cat >"$TMP/static/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(vwn_static_consumer LANGUAGES C)
find_package(vwn REQUIRED)
add_executable(static_consumer main.c)
target_link_libraries(static_consumer PRIVATE vwn::vwn_static)
CMAKE
printf '#include <vwn.h>\n#include <stdio.h>\nint main(void) { puts(vwn_version()); return 0; }\n' >"$TMP/static/main.c"
check "vwn::vwn_static: configure, build, run without libvwn.so" bash -c "
  cmake -S '$TMP/static' -B '$TMP/static/b' -DCMAKE_PREFIX_PATH='$PREFIX' && cmake --build '$TMP/static/b' &&
  '$TMP/static/b/static_consumer' && ! ldd '$TMP/static/b/static_consumer' | grep -q libvwn"
check "a bad model path fails with the library's message" \
  bash -c "! '$TMP/c/vwn_c_example' /nonexistent.gguf 2>'$TMP/err' && grep -q 'VWN_ERR_IO.*/nonexistent.gguf' '$TMP/err'"

echo "consumers: $passed passed, $failed failed"
[ "$failed" = 0 ]
