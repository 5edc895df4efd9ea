//! Finds libvwn for the raw bindings.
//!
//! 1. pkg-config `vwn` (an installed libvwn; PKG_CONFIG_PATH=<prefix>/lib/pkgconfig for a
//!    non-system prefix), unless VWN_NO_PKG_CONFIG=1;
//! 2. else libvwn is built from the repository sources (../../.. from this crate) with CMake
//!    (Release, VWN_BUILD_TESTS=OFF, VWN_BUILD_CLI=OFF) and installed into OUT_DIR.
//!
//! Either way libvwn is linked dynamically. The directory holding libvwn.so is exported to the
//! build scripts of dependent crates as DEP_VWN_LIBDIR (the `vwn` crate turns it into an rpath for
//! its tests and examples), and set as an rpath of this crate's own test binaries.
use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=VWN_NO_PKG_CONFIG");
    println!("cargo:rerun-if-changed=build.rs");

    let no_pkg_config = env::var("VWN_NO_PKG_CONFIG").map(|v| v == "1").unwrap_or(false);
    if !no_pkg_config {
        match pkg_config::Config::new().atleast_version("0.2.0").probe("vwn") {
            Ok(lib) => {
                // pkg-config has printed the link-search and link-lib lines.
                if let Some(dir) = lib.link_paths.first() {
                    export_libdir(dir);
                }
                return;
            }
            Err(e) => println!(
                "cargo:warning=vwn-sys: pkg-config did not find libvwn ({}); building it from the \
                 repository sources with CMake",
                e.to_string().lines().next().unwrap_or("")
            ),
        }
    }
    build_with_cmake();
}

fn build_with_cmake() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let source = manifest.join("../../..");
    if !source.join("include/vwn.h").exists() {
        panic!("vwn-sys: libvwn not found by pkg-config and no libvwn source tree at {}", source.display());
    }
    for dir in ["lib", "include", "cmake", "pkgconfig", "CMakeLists.txt"] {
        println!("cargo:rerun-if-changed={}", source.join(dir).display());
    }
    let dst = cmake::Config::new(&source)
        .profile("Release")
        .define("VWN_BUILD_TESTS", "OFF")
        .define("VWN_BUILD_CLI", "OFF")
        .define("VWN_WERROR", "OFF")
        .define("CMAKE_INSTALL_LIBDIR", "lib")
        .build();
    let libdir = dst.join("lib");
    println!("cargo:rustc-link-search=native={}", libdir.display());
    println!("cargo:rustc-link-lib=dylib=vwn");
    export_libdir(&libdir);
}

fn export_libdir(dir: &Path) {
    // Visible to dependents' build scripts as DEP_VWN_LIBDIR (this package has `links = "vwn"`).
    println!("cargo:libdir={}", dir.display());
    // rpath for this crate's own tests.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
