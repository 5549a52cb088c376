// Shared by the build scripts of every package that links libtorch (included with `include!`).
//
// tch gives the final binaries no rpath and the default `--as-needed` drops libtorch_cuda
// (nothing references its symbols directly), so a build that should use CUDA where present
// would silently run on CPU. We emit both flags for every target of the package (bins, tests,
// examples), with the libtorch folder that torch-sys found (`links = "tch"` exports it as
// DEP_TCH_LIBTORCH_LIB).

/// Emits `-Wl,--no-as-needed` and an rpath to libtorch's folder for all targets of the package.
fn emit_torch_link_args() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(lib) => {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
            // Keep libtorch_cuda in the DT_NEEDED list when this torch has it.
            if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
                println!("cargo:rustc-link-arg=-ltorch_cuda");
            }
        }
        Err(_) => println!("cargo:warning=DEP_TCH_LIBTORCH_LIB unset: no rpath to libtorch"),
    }
}
