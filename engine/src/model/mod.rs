//! Models and the parameter store they live in.
//!
//! [`ParamStore`] is a small ordered store of named tensors: the name of a parameter is its
//! path of segments joined by '.', built so that it equals the official PyTorch state-dict key
//! (`blocks.3.attn.qkv.weight`, conventions §2). Insertion order is kept, so every process
//! sees the parameters in the same order (a requirement for bucketed all-reduce later).

pub mod init;
pub mod layer_norm;
pub mod linear;
pub mod pos_embed;
pub mod vit;

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// Whether every value of `t` is finite (no NaN, no infinity): diverged weights or outputs.
///
/// # Errors
/// libtorch's.
pub fn all_finite(t: &Tensor) -> Result<bool> {
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0)
}

/// One named tensor of a model.
#[derive(Debug)]
pub struct Param {
    /// Full dotted name (official key, e.g. `blocks.0.norm1.weight`).
    pub name: String,
    /// The tensor (shares storage with the module that uses it).
    pub tensor: Tensor,
    /// Whether the optimiser updates it (false for fixed buffers such as `pos_embed`).
    pub trainable: bool,
}

/// An ordered store of named parameters on one device.
#[derive(Debug, Clone)]
pub struct ParamStore {
    params: Rc<RefCell<Vec<Param>>>,
    device: Device,
}

/// A position in a [`ParamStore`]'s name hierarchy.
#[derive(Debug, Clone)]
pub struct Path {
    store: ParamStore,
    prefix: String,
}

impl ParamStore {
    /// An empty store whose parameters live on `device`.
    pub fn new(device: Device) -> Self {
        Self { params: Rc::new(RefCell::new(Vec::new())), device }
    }

    /// The device of the store.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The root path (names without prefix).
    pub fn root(&self) -> Path {
        Path { store: self.clone(), prefix: String::new() }
    }

    /// (name, tensor) of every parameter, in creation order (shallow clones).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        self.params.borrow().iter().map(|p| (p.name.clone(), p.tensor.shallow_clone())).collect()
    }

    /// (name, tensor) of the trainable parameters, in creation order.
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        self.params
            .borrow()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| (p.name.clone(), p.tensor.shallow_clone()))
            .collect()
    }

    /// The parameter called `name`, if any.
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.params.borrow().iter().find(|p| p.name == name).map(|p| p.tensor.shallow_clone())
    }

    /// Marks every parameter as fixed (no gradient, not optimised): for EMA target models.
    pub fn freeze(&self) {
        for p in self.params.borrow_mut().iter_mut() {
            p.trainable = false;
            let _ = p.tensor.shallow_clone().set_requires_grad(false);
        }
    }

    /// Makes the parameter called `name` trainable (a gradient, optimised): a table that one
    /// model holds fixed and another trains (MAE's fine-tuning trains the position table its
    /// pretraining held fixed). False when there is no such parameter.
    pub fn unfreeze(&self, name: &str) -> bool {
        match self.params.borrow_mut().iter_mut().find(|p| p.name == name) {
            Some(p) => {
                p.trainable = true;
                let _ = p.tensor.shallow_clone().set_requires_grad(true);
                true
            }
            None => false,
        }
    }

    /// Number of scalar values in the trainable parameters.
    pub fn num_trainable(&self) -> i64 {
        self.params.borrow().iter().filter(|p| p.trainable).map(|p| p.tensor.numel() as i64).sum()
    }

    /// Copies every value of `tensors` (keys relative to this store, i.e. without any prefix)
    /// into the store. Strict: a missing, unexpected or mis-shaped key is an error naming it.
    /// `origin` names the file for the error message.
    pub fn load_strict(&self, tensors: &HashMap<String, Tensor>, origin: &FsPath) -> Result<()> {
        self.load_strict_from(tensors, origin, "")
    }

    /// [`Self::load_strict`] of the tensors that `origin` holds under `prefix`
    /// (`target_encoder.`): the errors name its keys in full (a missing `norm.weight` did not
    /// say which of the file's encoders lacked it).
    pub fn load_strict_from(&self, tensors: &HashMap<String, Tensor>, origin: &FsPath, prefix: &str) -> Result<()> {
        let params = self.params.borrow();
        let err = |message: String| Error::Checkpoint { path: origin.to_path_buf(), message };
        // (the blocks of each stack on each side — `blocks`, `predictor_blocks`,
        // `decoder_blocks`, `backbone.blocks` — : a depth that differs was said as a key missing
        // or unexpected, naming no cause, where a width or a grid that differs was named)
        let depth_hint = || {
            let (ours, theirs) = (stacks(params.iter().map(|p| p.name.as_str())), stacks(tensors.keys().map(String::as_str)));
            ours.iter()
                .find_map(|(stack, n)| theirs.get(stack).filter(|t| *t != n).map(|t| format!(": the file's `{prefix}{stack}` has {t} block(s), the model's {n}: weights of another depth")))
                .unwrap_or_default()
        };
        for p in params.iter() {
            let Some(src) = tensors.get(&p.name) else {
                // (an encoder with a class token loaded as one without, or the reverse: the
                // weights of another recipe)
                let hint = if p.name.ends_with("cls_token") { ": the model has a class token (MAE's and DINO's encoders), the file's encoder none (I-JEPA's?)".to_string() } else { depth_hint() };
                return Err(err(format!("missing key `{prefix}{}`{hint}", p.name)));
            };
            if src.size() != p.tensor.size() {
                let (theirs, ours) = (src.size(), p.tensor.size());
                let pos_embed = p.name.ends_with("pos_embed") && theirs.len() == 3 && ours.len() == 3 && theirs[2] == ours[2];
                let hint = if pos_embed && theirs[1] == ours[1] + 1 {
                    ": one position more, a class token's (MAE's and DINO's encoders have one, I-JEPA's none): the weights of another recipe?".to_string()
                } else if let Some((a, b)) = pos_embed.then(|| grids(theirs[1], ours[1])).flatten() {
                    format!(": positions of a {a}x{a} patch grid, where this experiment's crop-size and patch give {b}x{b}: the weights were trained at another crop-size or patch (positions are not interpolated): give the experiment theirs")
                } else if p.name.ends_with("mlp.fc1.weight") && theirs.len() == 2 && ours.len() == 2 && theirs[1] == ours[1] && theirs[0] == ours[0] + 1 {
                    // (`int(width x ratio)` was rounded up where the product fell just below a
                    // whole number, e.g. 60 x 4.1 = 245.99999999999997: 246, not Python's 245)
                    ": one hidden unit more, the MLP width an ijepa before 2026-12-08 gave this MLP ratio (it rounded up a product just below a whole number, where the official int() does not): weights of such a run cannot be loaded by this version; train it again (`ijepa run --force`)".to_string()
                } else {
                    String::new()
                };
                return Err(err(format!("key `{prefix}{}` has shape {theirs:?}, the model expects {ours:?}{hint}", p.name)));
            }
            // weights are floating point (fp32, bf16, fp16, fp64 convert); integers or booleans
            // are not weights, whatever their shape
            if !src.is_floating_point() {
                return Err(err(format!("key `{prefix}{}` holds {:?} values, not floating-point weights", p.name, src.kind())));
            }
        }
        if let Some(extra) = tensors.keys().find(|k| !params.iter().any(|p| &p.name == *k)) {
            return Err(err(format!("unexpected key `{prefix}{extra}`{}", depth_hint())));
        }
        tch::no_grad(|| -> Result<()> {
            for p in params.iter() {
                let src = &tensors[&p.name];
                let mut dst = p.tensor.shallow_clone();
                dst.f_copy_(&src.f_to_kind(Kind::Float)?.f_to_device(self.device)?)?;
            }
            Ok(())
        })
    }

    /// Copies every parameter of `src` (same names and shapes) into this store.
    pub fn copy_from(&self, src: &ParamStore) -> Result<()> {
        let map: HashMap<String, Tensor> = src.named().into_iter().collect();
        self.load_strict(&map, FsPath::new("<in-memory copy>"))
    }
}

impl Path {
    /// The child path `self.segment`. Segments must not contain '.'.
    pub fn sub(&self, segment: impl std::fmt::Display) -> Path {
        let seg = segment.to_string();
        debug_assert!(!seg.contains('.'), "path segment {seg:?} contains '.'");
        let prefix = if self.prefix.is_empty() { seg } else { format!("{}.{seg}", self.prefix) };
        Path { store: self.store.clone(), prefix }
    }

    /// Full name of a parameter called `name` under this path.
    pub fn name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The device of the store.
    pub fn device(&self) -> Device {
        self.store.device
    }

    /// Registers `tensor` (moved to the store's device, float32) under `name`; trainable
    /// parameters require grad. Returns a handle sharing its storage.
    ///
    /// # Errors
    /// libtorch's, e.g. when the copy to the device cannot be allocated.
    pub fn add(&self, name: &str, tensor: Tensor, trainable: bool) -> std::result::Result<Tensor, tch::TchError> {
        let t = tensor.f_to_device(self.store.device)?.f_to_kind(Kind::Float)?.f_detach()?;
        let t = if trainable { t.f_set_requires_grad(true)? } else { t };
        self.store.params.borrow_mut().push(Param {
            name: self.name(name),
            tensor: t.shallow_clone(),
            trainable,
        });
        Ok(t)
    }
}

impl std::ops::Div<&str> for &Path {
    type Output = Path;
    fn div(self, rhs: &str) -> Path {
        self.sub(rhs)
    }
}

/// The blocks of each stack of `names` (`blocks.3.norm1.weight` -> `blocks`: 4), by the path
/// up to a segment ending in `blocks` that a block number follows.
fn stacks<'a>(names: impl Iterator<Item = &'a str>) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        if let Some(i) = (0..parts.len().saturating_sub(1)).find(|&i| parts[i].ends_with("blocks") && parts[i + 1].parse::<usize>().is_ok()) {
            let n = parts[i + 1].parse::<usize>().unwrap_or(0) + 1;
            let e = out.entry(parts[..=i].join(".")).or_insert(0);
            *e = n.max(*e);
        }
    }
    out
}

/// The sides of the square patch grids of two position tables of `theirs` and `ours`
/// positions, both with a class token's position or both without; `None` where they are not
/// square grids.
fn grids(theirs: i64, ours: i64) -> Option<(i64, i64)> {
    let side = |n: i64| (0..=n).find(|s| s * s >= n).filter(|s| s * s == n);
    match (side(theirs), side(ours)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => Some((side(theirs - 1)?, side(ours - 1)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strict loading names the key of a missing, mis-shaped, unexpected or non-float tensor;
    /// other float kinds convert.
    #[test]
    fn strict_loading_refuses_what_is_not_the_model_s_weights() {
        let store = ParamStore::new(Device::Cpu);
        let _weight = store.root().sub("w").add("weight", Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)), true).unwrap();
        let origin = FsPath::new("x.safetensors");
        let with = |t: Tensor| HashMap::from([("w.weight".to_string(), t)]);
        store.load_strict(&with(Tensor::ones([2, 3], (Kind::Double, Device::Cpu))), origin).unwrap();
        assert_eq!(store.named()[0].1.sum(Kind::Float).double_value(&[]), 6.0);
        for (t, says) in [
            (Tensor::ones([2, 3], (Kind::Int64, Device::Cpu)), "holds Int64 values, not floating-point weights"),
            (Tensor::ones([3, 2], (Kind::Float, Device::Cpu)), "has shape [3, 2]"),
        ] {
            let e = store.load_strict(&with(t), origin).unwrap_err().to_string();
            assert!(e.contains("x.safetensors") && e.contains("`w.weight`") && e.contains(says), "{e}");
        }
        assert!(store.load_strict(&HashMap::new(), origin).unwrap_err().to_string().contains("missing key `w.weight`"));
        // under the module's prefix in the file, the key is named in full
        assert!(store.load_strict_from(&HashMap::new(), origin, "target_encoder.").unwrap_err().to_string().contains("missing key `target_encoder.w.weight`"));
        // a class token's position more (an MAE or DINO encoder where I-JEPA's is expected),
        // or a class token missing: said, beside the shapes
        let vit = ParamStore::new(Device::Cpu);
        let _pos = vit.root().add("pos_embed", Tensor::zeros([1, 49, 8], (Kind::Float, Device::Cpu)), false).unwrap();
        let e = vit.load_strict(&HashMap::from([("pos_embed".to_string(), Tensor::zeros([1, 50, 8], (Kind::Float, Device::Cpu)))]), origin).unwrap_err().to_string();
        assert!(e.contains("has shape [1, 50, 8], the model expects [1, 49, 8]") && e.contains("class token"), "{e}");
        // weights trained at another crop: the two grids said (with a class token or without)
        let e = vit.load_strict(&HashMap::from([("pos_embed".to_string(), Tensor::zeros([1, 64, 8], (Kind::Float, Device::Cpu)))]), origin).unwrap_err().to_string();
        assert!(e.contains("positions of a 8x8 patch grid, where this experiment's crop-size and patch give 7x7"), "{e}");
        assert_eq!(grids(50, 65), Some((7, 8)));
        assert_eq!(grids(50, 60), None);
        let _cls = vit.root().add("cls_token", Tensor::zeros([1, 1, 8], (Kind::Float, Device::Cpu)), true).unwrap();
        let e = vit.load_strict(&HashMap::from([("pos_embed".to_string(), Tensor::zeros([1, 49, 8], (Kind::Float, Device::Cpu)))]), origin).unwrap_err().to_string();
        assert!(e.contains("missing key `cls_token`") && e.contains("class token"), "{e}");
        // another depth: the blocks on each side said, whichever key is found first
        let two = ParamStore::new(Device::Cpu);
        for i in 0..2 {
            let _w = two.root().sub("blocks").sub(i).add("weight", Tensor::zeros([2], (Kind::Float, Device::Cpu)), true).unwrap();
        }
        let blocks = |n: usize| (0..n).map(|i| (format!("blocks.{i}.weight"), Tensor::zeros([2], (Kind::Float, Device::Cpu)))).collect::<HashMap<_, _>>();
        let e = two.load_strict(&blocks(4), origin).unwrap_err().to_string();
        assert!(e.contains("unexpected key `blocks.") && e.contains("the file's `blocks` has 4 block(s), the model's 2: weights of another depth"), "{e}");
        let e = two.load_strict_from(&blocks(1), origin, "target_encoder.").unwrap_err().to_string();
        assert!(e.contains("missing key `target_encoder.blocks.1.weight`: the file's `target_encoder.blocks` has 1 block(s), the model's 2"), "{e}");
        // an MLP one unit wider: the width an earlier version gave a ratio whose product fell
        // just below a whole number (60 x 4.1)
        let mlp = ParamStore::new(Device::Cpu);
        let _fc1 = mlp.root().sub("blocks").sub(0).sub("mlp").sub("fc1").add("weight", Tensor::zeros([245, 60], (Kind::Float, Device::Cpu)), true).unwrap();
        let e = mlp.load_strict(&HashMap::from([("blocks.0.mlp.fc1.weight".to_string(), Tensor::zeros([246, 60], (Kind::Float, Device::Cpu)))]), origin).unwrap_err().to_string();
        assert!(e.contains("one hidden unit more") && e.contains("--force"), "{e}");
        // (a stack under a path: DINO's `backbone.blocks`, MAE's `decoder_blocks`)
        assert_eq!(stacks(["backbone.blocks.3.norm1.weight", "backbone.blocks.0.mlp.fc1.bias", "decoder_blocks.1.x", "head.mlp.0.weight"].into_iter()), std::collections::BTreeMap::from([("backbone.blocks".to_string(), 4), ("decoder_blocks".to_string(), 2)]));
        two.load_strict(&blocks(2), origin).unwrap();
    }
}
