//! Links libsembed dynamically. Where from, in order:
//!
//! 1. `SEMBED_LIB_DIR`: a directory holding libsembed.so (a CMake build folder, or an install's
//!    lib directory);
//! 2. `pkg-config --variable=libdir sembed` (after `cmake --install`, with PKG_CONFIG_PATH
//!    pointing at the installed sembed.pc when the prefix is not a system one);
//! 3. the linker's default search path.
//!
//! For 1 and 2 the directory is also written into this package's test, example and binary
//! executables as an rpath, so that they run without LD_LIBRARY_PATH. Cargo applies
//! `rustc-link-arg` to this package's own targets only: a crate depending on this one sets its
//! own rpath (or LD_LIBRARY_PATH) when the library is not on the system path.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SEMBED_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    if let Some(dir) = from_env().or_else(from_pkg_config) {
        if !dir.join("libsembed.so").exists() {
            println!("cargo:warning=no libsembed.so in {}", dir.display());
        }
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    // `dylib`: a build folder holds libsembed.a too, and its dependencies (OpenBLAS, ...) would
    // then have to be linked here as well.
    println!("cargo:rustc-link-lib=dylib=sembed");
}

/// SEMBED_LIB_DIR made absolute: a relative path would otherwise mean the package directory to
/// the linker but the test's working directory to the rpath.
fn from_env() -> Option<PathBuf> {
    let dir = PathBuf::from(env::var_os("SEMBED_LIB_DIR").filter(|v| !v.is_empty())?);
    Some(dir.canonicalize().unwrap_or(dir))
}

fn from_pkg_config() -> Option<PathBuf> {
    let out = Command::new("pkg-config").args(["--variable=libdir", "sembed"]).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}
