//! Build script: links libtorch with an rpath (see build/torch_link.rs).
include!("../build/torch_link.rs");

/// Compiles `csrc/shim.cpp` (bf16 autocast on any device through `at::autocast`) against the
/// headers of the torch that torch-sys linked (`<lib>/../include`).
fn main() {
    emit_torch_link_args();
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not export DEP_TCH_LIBTORCH_LIB; set LIBTORCH_USE_PYTORCH=1 and use the project venv (see README)");
    };
    let include = std::path::Path::new(&lib).join("..").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .compile("ijepa_shim");
    println!("cargo:rustc-link-lib=torch_cpu");
    println!("cargo:rustc-link-lib=c10");
}
