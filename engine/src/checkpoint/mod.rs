//! Checkpoints: our safetensors format (atomic writes, exact resume) and the official
//! PyTorch `.pth.tar` files (zip + pickle), read with a restricted unpickler that never runs code.

pub mod export;
pub mod import;
pub mod pickle;
pub mod state;
pub mod torch_file;
pub mod writer;
