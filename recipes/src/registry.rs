//! The built-in recipes' registry entries: I-JEPA (the reference), MAE and DINO. A program that
//! embeds the engine calls [`register_builtins`] once (the `ijepa` binary does at start-up),
//! then may register its own recipes with [`ijepa_engine::recipe::register`]; the language,
//! the plan, `bench`, `eval`, import and export all read the one registry.

use crate::{Dino, IJepa, Mae};
use ijepa_engine::checkpoint::export::HfModel;
use ijepa_engine::error::Result;
use ijepa_engine::model::vit::VitConfig;
use ijepa_engine::recipe::{fixed_module, register, DynRecipe, RecipeEntry};
use std::sync::Arc;

fn schema(name: &str) -> ijepa_dsl::recipes::RecipeSchema {
    ijepa_dsl::recipes::schema(name).expect("the language knows its built-in recipes")
}

/// I-JEPA's entry: modules `encoder`, `predictor`, `target_encoder`; evaluations read the
/// target encoder (as the paper does).
pub fn ijepa() -> RecipeEntry {
    RecipeEntry {
        schema: schema("ijepa"),
        modules: vec!["encoder".into(), "predictor".into(), "target_encoder".into()],
        feature_module: Arc::new(|exp| crate::ijepa::feature_module(exp.target.kind).into()),
        encoder_config: Arc::new(|exp| VitConfig::from_dsl(&exp.encoder, exp.data.crop_size)),
        build: Arc::new(|exp, device, rank, world| -> Result<Box<dyn DynRecipe>> {
            Ok(Box::new(IJepa::for_experiment(exp, device, rank, world)?))
        }),
        cost: Some(Arc::new(crate::ijepa::cost::cost)),
        masks: Some(Arc::new(crate::ijepa::mask::report)),
        hf_model: Some(HfModel::IJepa),
    }
}

/// MAE's entry: modules `encoder`, `decoder`; evaluations read the encoder (with its class
/// token, average-pooling the patch tokens).
pub fn mae() -> RecipeEntry {
    RecipeEntry {
        schema: schema("mae"),
        modules: vec!["encoder".into(), "decoder".into()],
        feature_module: fixed_module("encoder"),
        encoder_config: Arc::new(crate::mae::encoder_config),
        build: Arc::new(|exp, device, rank, world| -> Result<Box<dyn DynRecipe>> {
            Ok(Box::new(Mae::for_experiment(exp, device, rank, world)?))
        }),
        cost: Some(Arc::new(crate::mae::cost)),
        masks: Some(Arc::new(crate::mae::masks_report)),
        hf_model: Some(HfModel::VitMae),
    }
}

/// DINO's entry: modules `student.backbone`, `student.head`, `teacher.backbone`,
/// `teacher.head` (the official checkpoint's `student` / `teacher` state dicts) and
/// `dino_loss` (the centre); evaluations read the teacher's backbone.
pub fn dino() -> RecipeEntry {
    RecipeEntry {
        schema: schema("dino"),
        modules: vec!["student.backbone".into(), "student.head".into(), "teacher.backbone".into(), "teacher.head".into(), "dino_loss".into()],
        feature_module: fixed_module("teacher.backbone"),
        encoder_config: Arc::new(crate::dino::encoder_config),
        build: Arc::new(|exp, device, rank, world| -> Result<Box<dyn DynRecipe>> {
            Ok(Box::new(Dino::for_experiment(exp, device, rank, world)?))
        }),
        cost: Some(Arc::new(crate::dino::cost::cost)),
        masks: None,
        hf_model: Some(HfModel::Vit),
    }
}

/// Registers I-JEPA, MAE and DINO (idempotent).
///
/// # Errors
/// Never for the built-ins (their schemas are the language's own).
pub fn register_builtins() -> Result<()> {
    register(ijepa())?;
    register(mae())?;
    register(dino())
}
