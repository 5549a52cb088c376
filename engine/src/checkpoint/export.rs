//! Export of an encoder in the Hugging Face transformers layout: `IJepaModel` for I-JEPA's
//! encoders (the key names of transformers' `convert_ijepa_to_hf.py`), `ViTMAEModel` for
//! MAE's (the same names plus `embeddings.cls_token`, as transformers'
//! `convert_vit_mae_to_pytorch.py` writes them without the `vit.` prefix of the pretraining
//! model), `ViTModel` for DINO's (the names of transformers' `convert_dino_to_pytorch.py`,
//! base model): fused qkv split into query/key/value, blocks under `encoder.layer.{i}`,
//! `embeddings.*`, final `layernorm`; plus the matching `config.json`. Which class a
//! checkpoint becomes is its recipe's (`RecipeEntry::hf_model`).

use super::import::StateDict;
use crate::error::{Error, Result};
use crate::model::vit::VitConfig;
use std::path::Path;
use tch::Kind;

/// The transformers class an encoder is exported as (a recipe declares its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfModel {
    /// `IJepaModel` (`model_type` `ijepa`): no class token.
    IJepa,
    /// `ViTMAEModel` (`vit_mae`): a class token and MAE's fixed sin-cos position table; written
    /// with `mask_ratio` 0 so it keeps every patch as a feature extractor.
    VitMae,
    /// `ViTModel` (`vit`): a class token and a learnt position table (DINO's backbone).
    Vit,
}

impl HfModel {
    /// The transformers class name (`config.json`'s `architectures`).
    pub fn class(self) -> &'static str {
        match self {
            Self::IJepa => "IJepaModel",
            Self::VitMae => "ViTMAEModel",
            Self::Vit => "ViTModel",
        }
    }

    /// Whether the class expects `embeddings.cls_token`.
    pub fn has_cls_token(self) -> bool {
        !matches!(self, Self::IJepa)
    }
}

/// The HF name of an official encoder key (qkv is handled by [`to_hf`]).
fn hf_name(key: &str) -> Option<String> {
    let fixed = match key {
        "pos_embed" => Some("embeddings.position_embeddings"),
        "cls_token" => Some("embeddings.cls_token"),
        "patch_embed.proj.weight" => Some("embeddings.patch_embeddings.projection.weight"),
        "patch_embed.proj.bias" => Some("embeddings.patch_embeddings.projection.bias"),
        "norm.weight" => Some("layernorm.weight"),
        "norm.bias" => Some("layernorm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = key.strip_prefix("blocks.")?;
    let (i, tail) = rest.split_once('.')?;
    let mapped = match tail {
        "norm1.weight" => "layernorm_before.weight",
        "norm1.bias" => "layernorm_before.bias",
        "norm2.weight" => "layernorm_after.weight",
        "norm2.bias" => "layernorm_after.bias",
        "attn.proj.weight" => "attention.output.dense.weight",
        "attn.proj.bias" => "attention.output.dense.bias",
        "mlp.fc1.weight" => "intermediate.dense.weight",
        "mlp.fc1.bias" => "intermediate.dense.bias",
        "mlp.fc2.weight" => "output.dense.weight",
        "mlp.fc2.bias" => "output.dense.bias",
        _ => return None,
    };
    Some(format!("encoder.layer.{i}.{mapped}"))
}

/// Whether the file at `path` is weights [`write_hf`] wrote: every tensor under the HF names
/// it writes (`embeddings.`, `encoder.layer.`, `layernorm.`) and the data's SHA-256 in its
/// metadata, which ijepa writes and transformers' `save_pretrained` does not. Read from the
/// header alone. A training checkpoint, a copy of a run's weights, or a user's own model saved
/// by transformers is not (`--format hf` replaced them without a word).
pub fn is_hf_export(path: &Path) -> bool {
    const NAMES: [&str; 3] = ["embeddings.", "encoder.layer.", "layernorm."];
    super::state::header_of(path).is_some_and(|(v, _, _)| {
        v.as_object().is_some_and(|o| {
            let signed = o.get("__metadata__").and_then(|m| m.get(super::state::DATA_SHA256)).is_some();
            let mut keys = o.keys().filter(|k| *k != "__metadata__").peekable();
            signed && keys.peek().is_some() && keys.all(|k| NAMES.iter().any(|n| k.starts_with(n)))
        })
    })
}

/// Renames an encoder state dict (official names) to the HF names (those of `IJepaModel`,
/// `ViTMAEModel` and `ViTModel` alike).
pub fn to_hf(encoder: &StateDict, path: &Path) -> Result<StateDict> {
    let mut out = Vec::with_capacity(encoder.len() + 8);
    for (k, t) in encoder {
        let t = t.f_to_kind(Kind::Float)?;
        if let Some(rest) = k.strip_prefix("blocks.") {
            if let Some((i, kind)) = rest.split_once(".attn.qkv.") {
                let parts = t.f_chunk(3, 0)?;
                for (name, part) in ["query", "key", "value"].iter().zip(parts) {
                    out.push((format!("encoder.layer.{i}.attention.attention.{name}.{kind}"), part.f_contiguous()?));
                }
                continue;
            }
        }
        let name = hf_name(k).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("key `{k}` has no Hugging Face transformers counterpart"),
        })?;
        out.push((name, t));
    }
    Ok(out)
}

/// What `config.json` says of an MAE decoder (its weights are not exported: `ViTMAEModel` is
/// the encoder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HfDecoder {
    /// Width, read from the weights (`decoder_embed.weight`).
    pub width: i64,
    /// Block count, read from the weights.
    pub depth: usize,
    /// MLP hidden width, read from the weights (`fc1`).
    pub hidden: i64,
    /// Attention heads: in no tensor's shape; from the run's config, when there is one.
    pub heads: Option<usize>,
    /// Whether the loss normalised the target pixels: from the run's config, when there is one.
    pub norm_pix_loss: Option<bool>,
}

/// The shape of an MAE decoder read from its weights (`decoder_embed.weight`, the block count,
/// `fc1`), for `config.json`. Heads and the loss's pixel normalisation are not in the weights.
pub fn decoder_shape(decoder: &StateDict) -> Option<HfDecoder> {
    let width = decoder.iter().find(|(k, _)| k == "decoder_embed.weight")?.1.size()[0];
    let depth = (0..).take_while(|i| decoder.iter().any(|(k, _)| k.starts_with(&format!("decoder_blocks.{i}.")))).count();
    let hidden = decoder.iter().find(|(k, _)| k == "decoder_blocks.0.mlp.fc1.weight").map(|(_, t)| t.size()[0]).unwrap_or(4 * width);
    Some(HfDecoder { width, depth, hidden, heads: None, norm_pix_loss: None })
}

/// The `config.json` of the exported model as `model` (`ViTMAEModel`: `mask_ratio` 0 so it
/// keeps every patch when used as a feature extractor, and the decoder's shape when the
/// checkpoint has one).
pub fn hf_config(cfg: &VitConfig, model: HfModel, decoder: Option<HfDecoder>) -> serde_json::Value {
    // the ViT fields both layouts share
    let mut c = serde_json::json!({
        "hidden_size": cfg.embed_dim,
        "num_hidden_layers": cfg.depth,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.mlp_hidden(),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": cfg.eps,
        "image_size": cfg.image_size,
        "patch_size": cfg.patch_size,
        "num_channels": 3,
        "qkv_bias": true,
        "torch_dtype": "float32"
    });
    let own = match model {
        HfModel::VitMae => {
            let mut m = serde_json::json!({
                "architectures": [model.class()],
                "model_type": "vit_mae",
                "mask_ratio": 0.0,
                "dtype": "float32"
            });
            if let Some(d) = decoder {
                m["decoder_hidden_size"] = d.width.into();
                m["decoder_num_hidden_layers"] = d.depth.into();
                m["decoder_intermediate_size"] = d.hidden.into();
                // unknown ones are left to transformers' defaults rather than guessed
                if let Some(h) = d.heads {
                    m["decoder_num_attention_heads"] = h.into();
                }
                if let Some(n) = d.norm_pix_loss {
                    m["norm_pix_loss"] = n.into();
                }
            }
            m
        }
        HfModel::Vit => serde_json::json!({
            "architectures": [model.class()],
            "model_type": "vit",
            "encoder_stride": cfg.patch_size,
            "dtype": "float32"
        }),
        HfModel::IJepa => serde_json::json!({
            "architectures": [model.class()],
            "model_type": "ijepa",
            "mlp_ratio": cfg.mlp_ratio,
            "pooler_act": "tanh"
        }),
    };
    if let (Some(base), Some(extra)) = (c.as_object_mut(), own.as_object()) {
        base.extend(extra.clone());
    }
    c
}

/// The evaluation transform an export's image processor performs: the shorter side resized
/// (bilinear) to `resize` px, then the centre `crop x crop` (`crop`: the encoder's input size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfPreprocess {
    /// The shorter side after resizing.
    pub resize: usize,
    /// The side of the centre crop.
    pub crop: usize,
}

impl HfPreprocess {
    /// The evaluation transform of data `dataset` (a run's `data.dataset`) at `crop`:
    /// ImageNet's 256 / 224 ratio for an image folder (or data no run names: what the official
    /// checkpoints were evaluated with), a plain resize to the crop for the small-image sets.
    pub fn of(dataset: Option<&str>, crop: usize) -> Self {
        match dataset {
            Some(d) if d != "image-folder" => Self { resize: crop, crop },
            _ => Self { resize: crop * 256 / 224, crop },
        }
    }
}

/// Writes `dir/model.safetensors`, `dir/config.json` (for `model`'s `.from_pretrained(dir)`) and
/// `dir/preprocessor_config.json`: a `BitImageProcessor` doing `pre` (grey images made RGB, as
/// the loader replicates them; the ImageNet normalisation every dataset goes through here).
pub fn write_hf(encoder: &StateDict, cfg: &VitConfig, model: HfModel, decoder: Option<HfDecoder>, pre: HfPreprocess, dir: &Path, origin: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tensors = to_hf(encoder, origin)?;
    super::state::save_weights(&dir.join("model.safetensors"), &tensors)?;
    crate::run_dir::write_json(&dir.join("config.json"), &hf_config(cfg, model, decoder))?;
    crate::run_dir::write_json(&dir.join("preprocessor_config.json"), &preprocessor_config(pre))
}

/// The image processor's settings for `pre`. A `ViTImageProcessor` (resize to a square, no
/// crop, no RGB conversion) refused the grey images of the data sets the models were trained
/// on and stretched an image folder's, which the evaluations resize and centre-crop.
fn preprocessor_config(pre: HfPreprocess) -> serde_json::Value {
    let (mean, std) = (crate::data::transform::IMAGENET_MEAN, crate::data::transform::IMAGENET_STD);
    serde_json::json!({
        "image_processor_type": "BitImageProcessor",
        "do_convert_rgb": true,
        "do_resize": true,
        "size": {"shortest_edge": pre.resize},
        "resample": 2,
        "do_center_crop": true,
        "crop_size": {"height": pre.crop, "width": pre.crop},
        "do_rescale": true,
        "rescale_factor": 1.0 / 255.0,
        "do_normalize": true,
        "image_mean": mean,
        "image_std": std
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    /// The processor does what the evaluations do to the run's data: an image folder's
    /// resize and centre crop (it was resized to a square, stretched), the small sets' resize.
    #[test]
    fn the_image_processor_is_the_evaluation_transform() {
        assert_eq!(HfPreprocess::of(Some("image-folder"), 224), HfPreprocess { resize: 256, crop: 224 });
        assert_eq!(HfPreprocess::of(Some("fashion-mnist"), 28), HfPreprocess { resize: 28, crop: 28 });
        assert_eq!(HfPreprocess::of(None, 28), HfPreprocess { resize: 32, crop: 28 });
        let c = preprocessor_config(HfPreprocess { resize: 256, crop: 224 });
        assert_eq!((c["size"]["shortest_edge"].as_u64(), c["crop_size"]["width"].as_u64()), (Some(256), Some(224)));
        assert_eq!((c["do_center_crop"].as_bool(), c["do_convert_rgb"].as_bool(), c["resample"].as_u64()), (Some(true), Some(true), Some(2)));
    }

    #[test]
    fn qkv_is_split_in_query_key_value_order() {
        let qkv = Tensor::arange(6 * 2, (Kind::Float, tch::Device::Cpu)).view([6, 2]);
        let sd = vec![("blocks.3.attn.qkv.weight".to_string(), qkv.shallow_clone()), ("norm.bias".to_string(), Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)))];
        let hf = to_hf(&sd, Path::new("x")).unwrap();
        let names: Vec<&str> = hf.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["encoder.layer.3.attention.attention.query.weight", "encoder.layer.3.attention.attention.key.weight", "encoder.layer.3.attention.attention.value.weight", "layernorm.bias"]);
        assert!(hf[1].1.equal(&qkv.narrow(0, 2, 2)));
        assert!(to_hf(&vec![("blocks.0.weird".to_string(), qkv)], Path::new("x")).is_err());
    }
}
