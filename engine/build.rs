//! Build script: links libtorch with an rpath (see build/torch_link.rs) and compiles the two C++
//! shims: `csrc/shim.cpp` (autocast) and `csrc/c10d.cpp` (distributed collectives on c10d).
include!("../build/torch_link.rs");

use std::path::{Path, PathBuf};

fn main() {
    emit_torch_link_args();
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    println!("cargo:rerun-if-changed=csrc/ffi.h");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_NCCL");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not export DEP_TCH_LIBTORCH_LIB; set LIBTORCH_USE_PYTORCH=1 and use the project venv (see README)");
    };
    let lib = PathBuf::from(lib);
    let include = lib.join("..").join("include");
    build_autocast_shim(&include);
    build_c10d_shim(&lib, &include);
    println!("cargo:rustc-link-lib=torch_cpu");
    println!("cargo:rustc-link-lib=c10");
}

/// The flags every shim shares: the headers of the torch that torch-sys linked (`<lib>/../include`).
fn torch_build(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false);
    b
}

/// `csrc/shim.cpp`: bf16 autocast on any device through `at::autocast`.
fn build_autocast_shim(include: &Path) {
    torch_build(include).file("csrc/shim.cpp").compile("ijepa_shim");
}

/// `csrc/c10d.cpp`: TCPStore + ProcessGroupGloo (+ ProcessGroupNCCL under feature `nccl`).
///
/// The torch wheel ships no gloo headers; Debian's `libgloo-dev` provides them in
/// /usr/include/gloo (only the headers: at run time libtorch's bundled gloo does the work, so we
/// never link Debian's libgloo). c10d classes have no stable ABI: torch is pinned at 2.11.0.
fn build_c10d_shim(lib: &Path, include: &Path) {
    let gloo_root = std::env::var("IJEPA_GLOO_INCLUDE").unwrap_or_else(|_| "/usr/include".into());
    println!("cargo:rerun-if-env-changed=IJEPA_GLOO_INCLUDE");
    if !Path::new(&gloo_root).join("gloo/config.h").exists() {
        panic!(
            "gloo headers not found ({gloo_root}/gloo/config.h): the distributed shim needs them. \
             Install the Debian package libgloo-dev (`apt-get install libgloo-dev`; scripts/env.sh \
             does it when run as root), or point IJEPA_GLOO_INCLUDE at a folder holding gloo/."
        );
    }
    let mut b = torch_build(include);
    b.file("csrc/c10d.cpp").flag("-DUSE_C10D_GLOO");
    if gloo_root != "/usr/include" {
        b.include(&gloo_root);
    }
    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        b.flag("-DIJEPA_NCCL").flag("-DUSE_C10D_NCCL");
        for dir in nvidia_include_dirs(lib) {
            b.include(dir);
        }
        println!("cargo:rustc-link-lib=torch_cuda");
        println!("cargo:rustc-link-lib=c10_cuda");
    }
    b.compile("ijepa_c10d");
}

/// The CUDA/NCCL header folders of the venv's nvidia wheels:
/// `<site-packages>/nvidia/*/include` (cu13 runtime, crt, cccl, nccl), where site-packages is
/// `<torch lib>/../..`. `IJEPA_CUDA_INCLUDE` (colon-separated) adds folders first, e.g. a system
/// CUDA toolkit's include.
fn nvidia_include_dirs(lib: &Path) -> Vec<PathBuf> {
    println!("cargo:rerun-if-env-changed=IJEPA_CUDA_INCLUDE");
    let mut dirs: Vec<PathBuf> = std::env::var("IJEPA_CUDA_INCLUDE")
        .map(|s| s.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    let nvidia = lib.join("..").join("..").join("nvidia");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&nvidia)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path().join("include")).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    found.sort();
    dirs.extend(found);
    let has = |rel: &str| dirs.iter().any(|d| d.join(rel).exists());
    let mut missing = Vec::new();
    for (header, package) in [
        ("nccl.h", "nvidia-nccl-cu13"),
        ("cuda_runtime_api.h", "nvidia-cuda-runtime"),
        ("crt/host_defines.h", "nvidia-cuda-crt"),
        ("nv/target", "nvidia-cuda-cccl"),
    ] {
        if !has(header) {
            missing.push(format!("{header} (pip package {package})"));
        }
    }
    if !missing.is_empty() {
        panic!(
            "feature `nccl`: CUDA/NCCL headers not found under {}/*/include: {}. \
             Run scripts/build-nccl.sh (it installs them into the venv), or set IJEPA_CUDA_INCLUDE.",
            nvidia.display(),
            missing.join(", ")
        );
    }
    dirs
}
