//! Gives this crate's tests and examples an rpath to the libvwn that vwn-sys found (DEP_VWN_LIBDIR),
//! so they run without LD_LIBRARY_PATH when libvwn lives in a non-system prefix. Programs in other
//! packages need their own rpath, LD_LIBRARY_PATH, or libvwn in a system directory.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_VWN_LIBDIR");
    if let Ok(dir) = std::env::var("DEP_VWN_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
