//! Build script: links libtorch with an rpath (see build/torch_link.rs).
include!("build/torch_link.rs");

fn main() {
    emit_torch_link_args();
}
