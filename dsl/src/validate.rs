//! Cross-field checks on a read experiment: rules that involve more than one setting (patch
//! vs crop, heads vs width, mask ranges vs grid and `min-keep`). Each check runs only when
//! the settings it uses were read without error, and points at the settings as written (or
//! at the block / experiment node when a setting is a default).

use crate::config::Experiment;
use crate::diagnostics::DslError;
use crate::multiblock::{check_feasible, Infeasible};
use crate::reader::Ctx;

/// Runs every cross-field check, reporting into `cx`.
pub(crate) fn validate(cx: &mut Ctx, exp: &Experiment) {
    // (the rules of settings only the pretraining reads: not for `ijepa eval`, which reads the
    // data, encoder and evaluations; their defaults are the official 224 px run's)
    let pretraining = !cx.origin.evaluating;
    // (first: a refused images= is set aside before the rules that count it)
    if pretraining {
        monitor_holds_enough_images(cx, exp);
    }
    patch_divides_crop(cx, exp);
    // (a width its heads do not divide is reported once, by the heads rule, whose help gives a
    // width fitting both rules: `width=30 heads=4` was two errors)
    let heads_reported = heads_divide_width(cx, exp);
    sincos_widths(cx, exp, &heads_reported);
    if pretraining {
        mask_is_feasible(cx, exp);
    }
    data_source_rules(cx, exp);
    // (`ijepa eval` runs in one process: the layout is the pretraining's)
    if pretraining {
        distributed_rules(cx, exp);
    }
    last4_needs_four_blocks(cx, exp);
    if pretraining {
        random_mask_keeps_a_patch(cx, exp);
        dino_local_crops_fit(cx, exp);
        limit_holds_a_batch(cx, exp);
    }
    finetune_batch_fits_the_limit(cx, exp);
    mlp_has_width(cx, exp);
    if pretraining {
        dino_has_no_ipe_scale(cx, exp);
    }
    rescale_init_is_read(cx, exp);
    if pretraining {
        dino_settings_are_read(cx, exp);
        dino_temperature_warmup_fits(cx, exp);
        dino_local_views_are_smaller(cx, exp);
        monitor_rank_floor_can_be_met(cx, exp);
    }
    registered_rules(cx, exp);
}

/// The monitor's leave-one-out kNN needs at least 20 held-out images, and more than its
/// neighbours: checked on the experiment as a whole, where a sweep's point has set both
/// (`vary "monitor.images" 21 40` beside `vary "monitor.k" 5 30` refused images=21 against the
/// file's k=30 or passed it, by the order of the two `vary` lines); one error, at `images=`,
/// saying the least it may be.
fn monitor_holds_enough_images(cx: &mut Ctx, exp: &Experiment) {
    let Some(m) = &exp.monitor else { return };
    if !cx.ok(&["monitor", "monitor.images"]) {
        return;
    }
    // (a refused k is said once: not against the default kept in its place)
    let fewest = if cx.ok(&["monitor.k"]) { crate::fewest_monitor_images(m.k) } else { crate::MIN_MONITOR_IMAGES };
    if m.images >= fewest {
        return;
    }
    let message = format!("must be at least {fewest}");
    cx.poison("monitor.images");
    cx.err(DslError::OutOfRange {
        what: "monitor.images".into(),
        message: message.clone(),
        span: cx.span_or(&["monitor.images", "monitor.k", "monitor"]),
        // (inherited from a base file, not the default: the base wrote it)
        label: match (cx.span_of("monitor.images"), cx.written("monitor.images")) {
            (Some(_), _) => message,
            (None, true) => format!("images={} (the base file's) {message}", m.images),
            (None, false) => format!("images={} (the default) {message}", m.images),
        },
        help: monitor_images_help(m.k, m.images, fewest),
    });
}

/// Why a monitor holding out `found` images is refused, `fewest` being the least it may hold
/// out with `k` neighbours (lowering k helps only where it, not the floor of 20, decides: not
/// for 16 images, which no k makes enough).
fn monitor_images_help(k: usize, found: usize, fewest: usize) -> String {
    use crate::MIN_MONITOR_IMAGES as MIN;
    let lower = if fewest > MIN && found >= MIN { "; lower k= to hold out fewer" } else { "" };
    // (the least it takes is warned of next where its vote takes half of them or more)
    // (k is unbounded: saturated, not wrapped)
    let most_voted = k.saturating_mul(2).saturating_add(1);
    let vote = if most_voted > fewest { format!("; {most_voted} or more keep its vote to the nearest ones") } else { String::new() };
    format!(
        "the monitor's leave-one-out kNN votes among the k={k} nearest of the held-out images to each of them: it holds out at least {MIN} images, and more than k (found {found}{lower}){vote}"
    )
}

/// The rules a registered recipe adds ([`crate::recipes::register_check`]): each break at
/// the setting it names, once the settings it uses (the recipe, its own nodes, the named
/// setting) were read without error.
fn registered_rules(cx: &mut Ctx, exp: &Experiment) {
    let checks = crate::recipes::checks(&exp.recipe);
    if checks.is_empty() || !cx.ok(&["recipe"]) {
        return;
    }
    let own: Vec<String> = crate::recipes::schema(&exp.recipe).map(|s| s.settings.iter().map(|n| n.name.clone()).collect()).unwrap_or_default();
    if !own.iter().all(|n| cx.ok(&[n.as_str()])) {
        return;
    }
    for check in checks {
        for b in check(exp) {
            if !cx.ok(&[&b.path]) {
                continue;
            }
            let block = b.path.split('.').next().unwrap_or("").to_string();
            let span = cx.span_or(&[&b.path, &block, "recipe"]);
            cx.err(DslError::InvalidValue { what: b.path, message: b.message, span, help: b.help });
        }
    }
}

/// The monitor's effective rank is that of `images` features of the encoder's width (every
/// shipped recipe's monitored encoders pool to it; a custom recipe's could differ): at most
/// the smaller of the two. A `rank-floor` at or above it warned "collapsing" at every epoch of
/// a healthy run.
fn monitor_rank_floor_can_be_met(cx: &mut Ctx, exp: &Experiment) {
    let Some(m) = &exp.monitor else { return };
    if !cx.ok(&["monitor", "monitor.rank-floor", "monitor.images", "encoder", "encoder.width", "encoder.preset"]) {
        return;
    }
    let most = exp.encoder.embed_dim.min(m.images);
    if m.rank_floor < most as f64 {
        return;
    }
    cx.err(DslError::InvalidValue {
        what: "rank-floor".into(),
        message: format!(
            "rank-floor={} is never met: the effective rank of {} features of {} dimensions is below {most}",
            m.rank_floor, m.images, exp.encoder.embed_dim
        ),
        span: cx.span_or(&["monitor.rank-floor", "monitor"]),
        // (the smaller of the two: "well under the encoder's width" was advised where the
        // held-out images were the bound, and a floor under the width was refused again)
        help: format!(
            "a floor well under {most}, the smaller of the held-out images ({}) and the encoder's width ({}) (default 2: the rank of features that have collapsed)",
            m.images, exp.encoder.embed_dim
        ),
    });
}

/// A block's MLP is `int(width x mlp-ratio)` wide (the official `int(dim * mlp_ratio)`): a
/// ratio that rounds it to zero would train a model without MLPs.
fn mlp_has_width(cx: &mut Ctx, exp: &Experiment) {
    // the predictor and the decoder count where the recipe owns them (I-JEPA, MAE)
    let owns = |node: &str| crate::recipes::schema(&exp.recipe).is_some_and(|s| s.own_nodes.iter().any(|n| n == node));
    let modules = [
        ("encoder", exp.encoder.embed_dim, exp.encoder.mlp_ratio, true),
        ("predictor", exp.predictor.embed_dim, exp.predictor.mlp_ratio, owns("predictor")),
        ("decoder", exp.decoder.embed_dim, exp.decoder.mlp_ratio, owns("decoder")),
    ];
    for (module, width, ratio, used) in modules {
        let (ratio_path, width_path) = (format!("{module}.mlp-ratio"), format!("{module}.width"));
        if !used || !cx.ok(&[module, &ratio_path, &width_path, &format!("{module}.preset")]) {
            continue;
        }
        if (width as f64 * ratio) as usize >= 1 {
            continue;
        }
        cx.err(DslError::Conflict {
            message: format!("the {module}'s MLP would be int({width} x {ratio}) = 0 wide"),
            span: cx.span_or(&[&ratio_path, module]),
            label: "no MLP".into(),
            other: cx.span_of(&width_path),
            other_label: format!("width {width}"),
            // (1/width itself: 196 x (1/196) is 0.999... in floating point, and was refused again)
            help: format!("use mlp-ratio of at least {} (the official is 4)", least_ratio(width.max(1))),
        });
    }
}

/// `encoder rescale-init=#true` (I-JEPA's official `fix_init_weight`): MAE and DINO build
/// their encoders as their official code does, without it. Accepted there, it was ignored
/// while it moved the stage hash: a sweep over it trained one model twice under two labels.
///
/// A sweep over recipes among which one reads it (I-JEPA) keeps it for those points, as it keeps
/// each recipe's own settings (and its other points as they were); over MAE and DINO alone, no
/// point reads it.
fn rescale_init_is_read(cx: &mut Ctx, exp: &Experiment) {
    let unread = |r: &str| ["mae", "dino"].contains(&r);
    if !exp.encoder.rescale_init || !unread(&exp.recipe) || !cx.ok(&["encoder", "recipe"]) {
        return;
    }
    if cx.swept_recipes.iter().any(|r| !unread(r)) {
        return;
    }
    let written = cx.span_of("encoder.rescale-init").is_some();
    cx.err(DslError::NotOfRecipe {
        node: "encoder rescale-init".into(),
        owner: "\"ijepa\"".into(),
        recipe: exp.recipe.clone(),
        span: cx.span_or(&["encoder.rescale-init", "encoder", "recipe"]),
        help: format!(
            "{} initialises its encoder as its official code does, without I-JEPA's per-block rescale (`fix_init_weight`): {}",
            crate::recipes::schema(&exp.recipe).map_or(exp.recipe.clone(), |s| s.display),
            if written { "remove `rescale-init=#true`".to_string() } else { "the base this file extends writes `rescale-init=#true`: write `rescale-init=#false` on this file's `encoder`".to_string() }
        ),
    });
}

/// DINO's schedules (lr, wd, teacher momentum and temperature) span the run's own steps: the
/// official `ipe_scale` of I-JEPA has no meaning there.
fn dino_has_no_ipe_scale(cx: &mut Ctx, exp: &Experiment) {
    if exp.recipe != "dino" || exp.ipe_scale == 1.0 || !cx.ok(&["ipe-scale", "recipe"]) {
        return;
    }
    cx.err(DslError::InvalidValue {
        what: "ipe-scale".into(),
        message: format!("ipe-scale {} would stretch schedules DINO does not stretch: its schedules span the run's own steps", exp.ipe_scale),
        span: cx.span_or(&["ipe-scale"]),
        help: "remove `ipe-scale` from this DINO experiment (I-JEPA's official `ipe_scale`)".into(),
    });
}

/// DINO settings that another setting turns off ([`Experiment::dino_settings_turned_off`]: the
/// warm-up's start temperature with no warm-up epochs, the local crops' size and scale with no
/// local crops, the student's stochastic depth on an encoder of one block, the head's hidden
/// width with a head of one layer). Accepted, they were never read, yet moved the pretraining's
/// hash (the same model trained again under another folder); a sweep that varies the setting
/// that turns them on reads them at its other points.
fn dino_settings_are_read(cx: &mut Ctx, exp: &Experiment) {
    if exp.recipe != "dino" || !cx.ok(&["dino", "recipe"]) {
        return;
    }
    for crate::config::TurnedOff { switch, settings, off, why, help, .. } in exp.dino_settings_turned_off() {
        // the switch, or a node above it (`encoder` for `encoder.depth`), varied by a sweep
        let swept = cx.swept_paths.iter().any(|p| p == "dino" || switch.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')));
        if !off || swept || !cx.ok(&[switch]) {
            continue;
        }
        for &path in settings {
            if !cx.written(path) || !cx.ok(&[path]) {
                continue;
            }
            let node = path.trim_start_matches("dino.");
            cx.err(DslError::InvalidValue {
                what: node.into(),
                message: format!("`{node}` is not read with {why}: it would be ignored"),
                span: cx.span_or(&[path, switch, "dino"]),
                help: help.into(),
            });
        }
    }
}

/// DINO's teacher temperature warms up over `warmup-teacher-temp-epochs`: longer than the run,
/// it never reaches `teacher-temp` (the official `np.ones(nepochs - warmup)` fails there).
fn dino_temperature_warmup_fits(cx: &mut Ctx, exp: &Experiment) {
    let w = exp.dino.warmup_teacher_temp_epochs;
    if exp.recipe != "dino" || w <= exp.epochs || !cx.ok(&["dino", "recipe", "dino.warmup-teacher-temp-epochs", "epochs"]) {
        return;
    }
    cx.err(DslError::InvalidValue {
        what: "warmup-teacher-temp-epochs".into(),
        message: format!("the teacher temperature would warm up over {w} epochs, longer than the run's {}: it would never reach teacher-temp {}", exp.epochs, exp.dino.teacher_temp),
        span: cx.span_or(&["dino.warmup-teacher-temp-epochs", "epochs", "dino"]),
        help: format!("write `warmup-teacher-temp-epochs` of at most {} (the official 30 of 100 epochs and more), or more epochs", exp.epochs),
    });
}

/// DINO's local crops are the small views: a local scale range entirely above the global one
/// (local 0.5-1.0 with global 0.05-0.1) swaps the two kinds of views, which the loss then
/// treats the wrong way round (the teacher sees only the global ones).
fn dino_local_views_are_smaller(cx: &mut Ctx, exp: &Experiment) {
    let d = &exp.dino;
    if exp.recipe != "dino" || d.local_crops == 0 || d.local_scale.0 <= d.global_scale.1 || !cx.ok(&["dino", "recipe", "dino.local-scale", "dino.global-scale", "dino.local-crops"]) {
        return;
    }
    cx.err(DslError::Conflict {
        message: format!(
            "DINO's local crops ({}-{} of the image) are all larger than its global crops ({}-{}): the teacher would see only the small views",
            d.local_scale.0, d.local_scale.1, d.global_scale.0, d.global_scale.1
        ),
        span: cx.span_or(&["dino.local-scale", "dino.global-scale", "dino"]),
        label: "local scale".into(),
        other: cx.span_of("dino.global-scale"),
        other_label: "global scale".into(),
        help: "the local crops are the small views: official local-scale 0.05 0.4, global-scale 0.4 1.0".into(),
    });
}

/// With `limit N`, or on the embedded Fashion-MNIST subset, the training images are known
/// here: the monitor's held-out images must leave some, and with `limit` each process must get
/// at least one batch of what is left (else the run fails when it starts, after the file was
/// accepted). (A file on the embedded subset without `limit` may stand for a larger data set
/// in `ijepa estimate --images N`: its batch is not held to the subset's size here.)
fn limit_holds_a_batch(cx: &mut Ctx, exp: &Experiment) {
    // (`limit` above the embedded subset's size keeps all of it)
    let (limit, by_limit) = match (exp.data.limit, exp.data.embedded_train_images()) {
        (Some(l), Some(e)) if e < l => (e, false),
        (Some(l), _) => (l, true),
        (None, Some(e)) => (e, false),
        (None, None) => return,
    };
    if !cx.ok(&["data", "data.limit", "data.batch-size", "monitor", "monitor.images", "distributed"]) {
        return;
    }
    // what holds the images, where it is written, and the way to more of them
    let (has, other, other_label, more) = match by_limit {
        true => (format!("`limit` keeps {limit} training images"), cx.span_of("data.limit"), format!("{limit} images"), "raise `limit`"),
        false => (
            format!("the embedded Fashion-MNIST subset has {limit} training images"),
            cx.span_of("data.limit").or_else(|| cx.span_of("data")),
            format!("the embedded subset: {limit} images"),
            "give the full data set (`root=`, e.g. Debian's /usr/share/datasets/fashion-mnist)",
        ),
    };
    let held = exp.monitor.as_ref().map_or(0, |m| m.images);
    if held >= limit {
        cx.err(DslError::Conflict {
            message: format!("the monitor holds out {held} images, and {has}"),
            span: cx.span_or(&["monitor.images", "monitor"]),
            label: format!("{held} held out"),
            other,
            other_label,
            // (the monitor takes at least MIN_MONITOR_IMAGES, and more than its k: below that,
            // only a larger `limit` helps)
            // (images, k and limit are unbounded with folder data: saturated, not wrapped)
            help: match (limit >= crate::fewest_monitor_images(exp.monitor.as_ref().map_or(0, |m| m.k)).saturating_add(exp.data.batch_size), by_limit) {
                (true, _) => format!("lower `monitor images=` below {limit} (and leave at least a batch to train on), or {more}"),
                (false, true) => format!("raise `limit` to at least {} (the monitor's {held} images and a batch of {} to train on), or remove `monitor`", held.saturating_add(exp.data.batch_size), exp.data.batch_size),
                (false, false) => format!("lower `batch-size` and `monitor images=`, or {more}"),
            },
        });
        return;
    }
    let world = exp.distributed.world_size().max(1);
    let per_rank = (limit - held) / world;
    // (with `limit`, of the images it keeps: the subset's, when it asks for more)
    if exp.data.limit.is_some() && per_rank < exp.data.batch_size {
        let mut of = match by_limit {
            true => format!("{limit} images"),
            false => format!("the embedded subset's {limit} images (`limit` asks for more)"),
        };
        if held > 0 {
            of.push_str(&format!(" less the monitor's {held}"));
        }
        if world > 1 {
            of.push_str(&format!(" shared by {world} processes"));
        }
        cx.err(DslError::Conflict {
            message: format!("{of} leave {per_rank} per process, less than one batch of {}", exp.data.batch_size),
            span: cx.span_or(&["data.limit", "data"]),
            label: format!("{per_rank} per process"),
            other: cx.span_of("data.batch-size"),
            other_label: format!("batch {}", exp.data.batch_size),
            // (not past the embedded subset's size, where a larger `limit` keeps the same
            // images: the help sent one to the next error)
            // (nor "at most 0", nor "a larger `limit` keeps no more" below the subset's size,
            // nor the full data set alone, where `limit` still keeps as few)
            help: match (by_limit, exp.data.embedded_train_images()) {
                (true, Some(e)) if (exp.data.batch_size * world).saturating_add(held) > e => {
                    // (not beyond the full set's 60,000 images: `limit` at least 160000 was
                    // advised to 16 processes of 10,000)
                    let needed = exp.data.batch_size * world + held;
                    let full = match needed <= crate::config::FASHION_MNIST_TRAIN {
                        true => format!("; or give the full data set (`root=`, e.g. Debian's /usr/share/datasets/fashion-mnist) with `limit` at least {needed}"),
                        false => format!(" (the full data set's {} images are fewer than the {needed} a batch a process needs)", crate::config::FASHION_MNIST_TRAIN),
                    };
                    match (e.saturating_sub(held) / world, per_rank) {
                        (0, _) => format!("the embedded subset's {e} images less the monitor's {held} leave none per process: fewer processes or a smaller monitor{full}"),
                        (most, now) if most == now => format!("lower `batch-size` to at most {most}: the embedded subset has {e} images, so a larger `limit` keeps no more{full}"),
                        (most, 0) => format!("lower `batch-size` to at most {most} and raise `limit` to {e}, the embedded subset's size (a larger one keeps no more){full}"),
                        (most, now) => format!(
                            "lower `batch-size` to at most {now}, or to at most {most} with `limit` raised to {e}, the embedded subset's size (a larger one keeps no more){full}"
                        ),
                    }
                }
                (true, _) => format!("raise `limit` to at least {} or lower `batch-size`", (exp.data.batch_size * world).saturating_add(held)),
                (false, _) => format!("lower `batch-size`, or {more}"),
            },
        });
    }
}

/// With `limit N`, fine-tuning's batch must fit in the N training images a fit trains on
/// (its default batch is 256): the run stopped on it after pretraining.
fn finetune_batch_fits_the_limit(cx: &mut Ctx, exp: &Experiment) {
    let Some(limit) = exp.data.limit else { return };
    if !cx.ok(&["data.limit"]) {
        return;
    }
    for e in exp.evals.iter().filter(|e| e.protocol == crate::config::EvalProtocol::Finetune && e.batch_size > limit) {
        let at = format!("eval.{}.batch-size", e.name());
        if !cx.ok(&[&at]) {
            continue;
        }
        cx.err(DslError::Conflict {
            message: format!("fine-tuning's batch of {} is more than the {limit} training images `limit` keeps", e.batch_size),
            span: cx.span_or(&[&at, &format!("eval.{}", e.name())]),
            label: format!("batch {}", e.batch_size),
            other: cx.span_of("data.limit"),
            other_label: format!("{limit} images"),
            help: format!("write a `batch-size` of at most {limit} in the eval block (fine-tuning's default is 256), or raise `limit`"),
        });
    }
}

/// MAE's random mask keeps `floor(N x (1 - ratio))` of the N patches (official
/// `random_masking`): a ratio that keeps none leaves the encoder nothing to read.
fn random_mask_keeps_a_patch(cx: &mut Ctx, exp: &Experiment) {
    if exp.recipe != "mae" || exp.mask.kind != crate::config::MaskKind::Random || !cx.ok(&["mask", "mask.ratio", "encoder.patch", "encoder.preset", "data.crop-size"]) {
        return;
    }
    // a 1x1 grid has its own diagnostic (patch_divides_crop)
    let Some(g) = grid(exp).filter(|&g| g > 1) else { return };
    let n = g * g;
    let keep = crate::config::len_keep(n, exp.mask.ratio);
    if keep == n {
        // nothing masked: the loss, a mean over the masked patches, is 0/0
        cx.err(DslError::Conflict {
            message: format!("mask ratio {} masks no patch of the {g}x{g} grid's {n}: the loss, over the masked patches, would be 0/0", exp.mask.ratio),
            span: cx.span_or(&["mask.ratio", "mask"]),
            label: "masks nothing".into(),
            other: cx.span_of("data.crop-size").or(cx.span_of("encoder.patch")),
            other_label: format!("{n} patches"),
            // (it keeps floor(N x (1 - ratio)): a ratio whose 1 - ratio is below 1 in floating
            // point masks a patch, 0.001 too; 1e-17 rounds to 1)
            help: format!("any ratio of 1e-15 or more masks at least one of the {n} patches (it keeps floor({n} x (1 - ratio)))"),
        });
        return;
    }
    if keep >= 1 {
        return;
    }
    cx.err(DslError::Conflict {
        message: format!("mask ratio {} keeps no patch of the {g}x{g} grid's {n}", exp.mask.ratio),
        span: cx.span_or(&["mask.ratio", "mask"]),
        label: "masks every patch".into(),
        other: cx.span_of("data.crop-size").or(cx.span_of("encoder.patch")),
        other_label: format!("{n} patches"),
        help: format!("a ratio of at most {} keeps one patch of {n}", most_ratio_keeping_one(n)),
    });
}

/// The least MLP ratio, in three significant digits, that `int(width x ratio)` takes to 1 or
/// more (`1/width` itself is refused by floating point at widths such as 196).
fn least_ratio(width: usize) -> f64 {
    let w = width as f64;
    let x = 1.0 / w;
    let scale = 10f64.powi(2 - x.log10().floor() as i32);
    let mut r = (x * scale).ceil() / scale;
    while ((w * r) as usize) < 1 {
        r = ((r * scale).round() + 1.0) / scale;
    }
    r
}

/// The largest mask ratio, rounded down to as many decimals as the grid's `n` patches need
/// (4 at least), that keeps one of them (`floor(n x (1 - ratio))`): 48/49 = 0.97959... shown as
/// 0.9796 keeps no patch, and 0.9975, 1 - 1/400 to the digit, keeps none in floating point.
fn most_ratio_keeping_one(n: usize) -> f64 {
    let decimals = (n as f64).log10().ceil().max(3.0) as i32 + 1;
    let scale = 10f64.powi(decimals);
    let mut r = ((1.0 - 1.0 / n as f64) * scale).floor() / scale;
    while crate::config::len_keep(n, r) < 1 {
        r = ((r * scale).round() - 1.0) / scale;
    }
    r
}

/// DINO's local crops are cut in patches like the global ones (a side that is a multiple of
/// the patch) and are the small views (no larger than the global crop: the default 96 px is
/// the official size for 224 px crops). Checked on the resolved experiment: what a base wrote
/// and the bare defaults (the language's ViT-H/14 has no whole number of patches in 96 px)
/// too, else the run failed when it built the model, or trained on local crops larger than
/// the image's global ones.
fn dino_local_crops_fit(cx: &mut Ctx, exp: &Experiment) {
    let d = &exp.dino;
    if exp.recipe != "dino" || d.local_crops == 0 || !cx.ok(&["dino", "dino.local-size", "dino.local-crops", "encoder.patch", "encoder.preset", "data.crop-size"]) {
        return;
    }
    let (patch, crop, local) = (exp.encoder.patch_size.max(1), exp.data.crop_size, d.local_size);
    let suggest = {
        let whole = ((crop as f64 * 96.0 / 224.0 / patch as f64).round() as usize).clamp(1, (crop / patch).max(1));
        format!("local-size {} (the official 96/224 of the crop, in whole patches)", whole * patch)
    };
    let default_note = match (cx.written("dino.local-size"), cx.span_of("dino.local-size")) {
        (false, _) => format!(" (the default {local})"),
        (true, None) => " (from the base)".to_string(),
        (true, Some(_)) => String::new(),
    };
    // what is wrong, the setting it is wrong against, and the help
    let (problem, other, other_label, help) = if !local.is_multiple_of(patch) {
        (format!("are not a whole number of {patch} px patches"), "encoder.patch", format!("{patch} px patches"), format!("write {suggest}"))
    } else if local > crop {
        (
            format!("are larger than its {crop} px global crops"),
            "data.crop-size",
            format!("{crop} px global crops"),
            format!("the local crops are the small views: write {suggest}"),
        )
    } else {
        return;
    };
    cx.err(DslError::Conflict {
        message: format!("DINO's local crops of {local} px{default_note} {problem}"),
        // (where it is written; else the DINO block, the recipe or the `extends` that brought it)
        span: cx.span_or(&["dino.local-size", "dino", "recipe", "extends"]),
        label: format!("{local} px"),
        other: cx.span_of(other),
        other_label,
        help,
    });
}

/// `features "last4"` pools the last four blocks: the encoder needs at least four (found here,
/// not after the pretraining when the probe extracts its features).
fn last4_needs_four_blocks(cx: &mut Ctx, exp: &Experiment) {
    use crate::config::FeatureChoice;
    let depth = exp.encoder.depth;
    if depth >= 4 || !cx.ok(&["encoder.depth", "encoder.preset"]) {
        return;
    }
    for e in exp.evals.iter().filter(|e| e.features.contains(&FeatureChoice::Last4)) {
        let at = format!("eval.{}.features", e.name());
        if !cx.ok(&[&at]) {
            continue;
        }
        cx.err(DslError::Conflict {
            message: format!("`features \"last4\"` pools the last four blocks of an encoder of depth {depth}"),
            span: cx.span_or(&[&at, &format!("eval.{}", e.name())]),
            label: "the last four blocks".into(),
            other: cx.span_of("encoder.depth"),
            other_label: format!("{depth} blocks"),
            help: "use `features \"last\"`, or an encoder of depth 4 or more".into(),
        });
    }
}

/// Layouts the launcher and backend cannot run: NCCL on the CPU, several machines with the
/// local launcher, every process pinned to one GPU, SLURM settings without SLURM.
fn distributed_rules(cx: &mut Ctx, exp: &Experiment) {
    use crate::config::{DistBackend, Launcher};
    let d = &exp.distributed;
    if d.backend == DistBackend::Nccl
        && exp.device == "cpu"
        && cx.ok(&["distributed.backend", "device"])
    {
        cx.err(DslError::Conflict {
            message: "the NCCL backend cannot run on the CPU".into(),
            span: cx.span_or(&["distributed.backend", "distributed"]),
            label: "NCCL needs CUDA devices".into(),
            other: cx.span_of("device"),
            other_label: "the run is on the CPU".into(),
            help: "use backend \"gloo\" (or \"auto\": NCCL on CUDA, Gloo on the CPU), or run on \
                   device \"cuda\""
                .into(),
        });
    }
    if d.launcher == Launcher::Local
        && d.nodes > 1
        && cx.ok(&["distributed.launcher", "distributed.nodes"])
    {
        cx.err(DslError::Conflict {
            message: format!("the local launcher cannot start processes on {} machines", d.nodes),
            span: cx.span_or(&["distributed.nodes", "distributed"]),
            label: format!("{} machines", d.nodes),
            other: cx.span_of("distributed.launcher"),
            other_label: "starts the processes of this machine only".into(),
            help: "`ijepa launch` runs one machine's processes; for several machines use \
                   launcher \"torchrun\" (started on every machine) or \"slurm\""
                .into(),
        });
    }
    let pinned = exp.device.starts_with("cuda:");
    if pinned && d.procs_per_node > 1 && cx.ok(&["device", "distributed.gpus-per-node"]) {
        cx.err(DslError::Conflict {
            message: format!(
                "device {:?} puts all {} processes of a machine on one GPU",
                exp.device, d.procs_per_node
            ),
            span: cx.span_or(&["device"]),
            label: "one fixed GPU".into(),
            other: cx.span_of("distributed.gpus-per-node"),
            other_label: format!("{} processes per machine", d.procs_per_node),
            help: "each process takes the GPU of its local rank: write device \"cuda\" (or \
                   \"auto\"), or use one process per machine"
                .into(),
        });
    }
    // SLURM shows a job only the GPUs it allocates, numbered from 0: with one process (one
    // GPU) per machine `cuda:1` named a GPU no task has (it failed on the node, after the
    // queue); with more, the rule above refuses any `cuda:N`
    let index = exp.device.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok());
    if let Some(n) = index.filter(|&n| n >= 1 && d.procs_per_node == 1 && d.launcher == Launcher::Slurm) {
        if cx.ok(&["device", "distributed.launcher", "distributed.gpus-per-node"]) {
            cx.err(DslError::Conflict {
                message: format!("device {:?} names a GPU a SLURM job of one GPU per machine does not have", exp.device),
                span: cx.span_or(&["device"]),
                label: format!("GPU {n}"),
                other: cx.span_of("distributed.launcher"),
                other_label: "SLURM numbers the job's GPUs from 0".into(),
                help: "write device \"cuda\" (or \"auto\"): each process takes the GPU of its local rank among \
                       the ones SLURM allocated"
                    .into(),
            });
        }
    }
    if let Some(slurm) = cx.span_of("distributed.slurm") {
        if d.launcher != Launcher::Slurm && cx.ok(&["distributed.launcher"]) {
            cx.err(DslError::Conflict {
                message: "SLURM settings are written but the launcher is not SLURM".into(),
                span: slurm,
                label: "only used by the SLURM launcher".into(),
                other: cx.span_of("distributed.launcher"),
                other_label: "another launcher".into(),
                help: "write launcher \"slurm\" to submit the run with `ijepa slurm`, or remove \
                       the `slurm` node"
                    .into(),
            });
        }
    }
}

/// Folder datasets need `root=`; `subset` and `test-root` apply to image folders only, and an
/// image folder's evaluations need `test-root` (its training images are not a test set).
fn data_source_rules(cx: &mut Ctx, exp: &Experiment) {
    use crate::config::{DataSource, DatasetKind};
    if !cx.ok(&["data.dataset", "data.root"]) {
        return;
    }
    let kind = &exp.data.dataset;
    if *kind != DatasetKind::FashionMnist && exp.data.source == DataSource::Embedded {
        cx.err(DslError::MissingProperty {
            node: "data".into(),
            name: "root".into(),
            span: cx.span_or(&["data.dataset", "data"]),
            // (the example was an image folder's, another kind than the one written)
            help: format!(
                "only Fashion-MNIST has an embedded subset; give the dataset's folder, e.g. data \"{}\" root=\"/datasets/...\"",
                crate::schema::data::DATASETS.iter().find(|(_, k)| k == kind).map_or("...", |(name, _)| name)
            ),
        });
    }
    // decoding settings of image files: a dataset of arrays (idx, CIFAR batches) decodes none,
    // so they would be ignored there (and still move the pretraining's hash)
    let dataset_swept = cx.swept_paths.iter().any(|p| p == "data" || p.starts_with("data.dataset"));
    if *kind != DatasetKind::ImageFolder && !dataset_swept {
        for (node, what) in [("decode", "how JPEG files are decoded"), ("on-error", "what an unreadable image file does")] {
            let path = format!("data.{node}");
            if cx.written(&path) && cx.ok(&[&path]) {
                cx.err(DslError::InvalidValue {
                    what: node.into(),
                    message: format!("`{node}` says {what}, and this dataset is arrays, not image files: it would be ignored"),
                    span: cx.span_or(&[&path, "data"]),
                    help: format!("remove `{node}` here; it is a setting of data \"image-folder\""),
                });
            }
        }
    }
    if exp.data.subset.is_some() && *kind != DatasetKind::ImageFolder && cx.ok(&["data.subset"]) {
        cx.err(DslError::InvalidValue {
            what: "subset".into(),
            message: "a subset list selects files of an image folder".into(),
            span: cx.span_or(&["data.subset"]),
            help: "use `subset` with data \"image-folder\", or `limit N` for the first N images"
                .into(),
        });
    }
    // a split file names files of a whole image folder (found here, not after the pretraining)
    for e in exp.evals.iter().filter(|e| e.split_file.is_some() && e.protocol == crate::config::EvalProtocol::LowShot) {
        let at = format!("eval.{}.split-file", e.name());
        if !cx.ok(&[&at, "data.limit", "data.subset"]) {
            continue;
        }
        let why = if *kind != DatasetKind::ImageFolder {
            Some("a split file names files of an image folder; this dataset has none")
        } else if exp.data.limit.is_some() || exp.data.subset.is_some() {
            Some("a split file names files of the whole image folder, which `limit` / `subset` cut")
        } else {
            None
        };
        if let Some(message) = why {
            cx.err(DslError::InvalidValue {
                what: "split-file".into(),
                message: message.into(),
                span: cx.span_or(&[&at, &format!("eval.{}", e.name())]),
                help: "use `fraction=` for a share of each class's labels, or data \"image-folder\" root=... without `limit` / `subset`".into(),
            });
        }
    }
    if exp.data.test_root.is_some() && *kind != DatasetKind::ImageFolder && cx.ok(&["data.test-root"]) {
        cx.err(DslError::InvalidValue {
            what: "test-root".into(),
            message: "a test folder belongs to an image folder; this dataset has its own test split".into(),
            span: cx.span_or(&["data.test-root"]),
            help: "drop `test-root`: the evaluations read the dataset's test split".into(),
        });
    }
    if *kind == DatasetKind::ImageFolder && exp.data.test_root.is_none() && cx.ok(&["data.test-root"]) {
        if let Some(e) = exp.evals.first() {
            cx.err(DslError::Conflict {
                message: format!(
                    "`eval \"{}\"` scores on test images, and this image folder has none",
                    e.name()
                ),
                span: cx.span_or(&[&format!("eval.{}", e.name())]),
                label: "needs test images".into(),
                other: cx.span_of("data.dataset").or(cx.span_of("data")),
                other_label: "training images only".into(),
                help: "give the test images in the same <class>/<image> layout inside the data \
                       block, e.g. test-root \"/data/imagenet/val\" (scoring on the training \
                       images would measure memory, not features)"
                    .into(),
            });
        }
    }
}

/// Patch-grid side `crop / patch`, when the patch is valid and divides the crop.
fn grid(exp: &Experiment) -> Option<usize> {
    let (crop, patch) = (exp.data.crop_size, exp.encoder.patch_size);
    (patch > 0 && crop > 0 && crop.is_multiple_of(patch)).then(|| crop / patch)
}

/// The most patches an image may be cut into: a 256 x 256 grid (the official ViT-H/16 at 448
/// px has 28 x 28); beyond it a step's attention maps alone outgrow any device.
pub const MAX_GRID_SIDE: usize = 256;

fn patch_divides_crop(cx: &mut Ctx, exp: &Experiment) {
    if !cx.ok(&["encoder.patch", "encoder.preset", "data.crop-size"]) {
        return;
    }
    let (crop, patch) = (exp.data.crop_size, exp.encoder.patch_size);
    if patch > 0 && crop / patch > MAX_GRID_SIDE {
        let side = crop / patch;
        cx.err(DslError::OutOfRange {
            what: "encoder.patch".into(),
            message: format!("a {crop} px crop in {patch} px patches is a {side}x{side} grid, more than {MAX_GRID_SIDE}x{MAX_GRID_SIDE}"),
            span: cx.span_or(&["encoder.patch", "encoder"]),
            label: format!("{side}x{side} patches"),
            help: format!("use patches of at least {} px for this crop, or a smaller crop-size", crop.div_ceil(MAX_GRID_SIDE)),
        });
        return;
    }
    if patch == 0 || crop == 0 {
        return;
    }
    if crop == patch {
        // a 1x1 grid: a recipe that masks patches (I-JEPA's context and targets, MAE's
        // visible patches) needs at least two of them to pretrain (not to evaluate)
        if !cx.origin.evaluating && crate::recipes::schema(&exp.recipe).is_some_and(|s| !s.mask_kinds.is_empty()) {
            cx.err(DslError::Conflict {
                message: format!("a {crop} px crop in {patch} px patches is a single patch: the {} recipe masks some patches and reads the others", exp.recipe),
                span: cx.span_or(&["encoder.patch", "encoder"]),
                label: "one patch".into(),
                other: cx.span_of("data.crop-size"),
                other_label: format!("crop {crop}"),
                help: format!("use a crop of at least {} px (a 2x2 grid) or smaller patches", 2 * patch),
            });
        }
        return;
    }
    if crop.is_multiple_of(patch) {
        return;
    }
    // a sweep's other patches (where the crop is not swept) or crops (where the patch is not):
    // the advice holds at every point (`patch=3` for a swept crop of 30 broke its 28 and 32)
    let swept = |path: &str| -> Vec<usize> { cx.swept_values.get(path).into_iter().flatten().filter_map(|t| t.parse::<usize>().ok()).collect() };
    let (patches, crops) = (swept("encoder.patch"), swept("data.crop-size"));
    let mut help = format!(
        "the image is cut into {patch}x{patch} patches, so crop-size must be a multiple of {patch}"
    );
    // both swept (a zip or a grid of them): a number for this point broke another, or repeated
    // one (`patch=3` in a zip of patches 3 5 4 over one crop made two points alike)
    if !patches.is_empty() && !crops.is_empty() {
        help.push_str(": change the sweep's values so that each point's crop-size is a multiple of its patch");
        cx.err(DslError::PatchCrop { patch, crop, span: cx.span_or(&["encoder.patch", "encoder"]), crop_span: cx.span_of("data.crop-size"), help });
        return;
    }
    let patches = if patches.is_empty() { vec![patch] } else { patches };
    let crops = if crops.is_empty() { vec![crop] } else { crops };
    // (the multiple of every patch: one patch's, or the swept ones' least common multiple)
    let step = patches.iter().try_fold(1usize, |l, &p| (p > 0).then(|| l / gcd(l, p)).and_then(|q| q.checked_mul(p))).unwrap_or(patch);
    let largest = patches.iter().copied().max().unwrap_or(patch);
    let lower = (crop / step) * step;
    // (a recipe that masks patches needs a 2x2 grid at least: "try crop-size 16" for patch 16
    // was refused next as a single patch)
    let masks = !cx.origin.evaluating && crate::recipes::schema(&exp.recipe).is_some_and(|s| !s.mask_kinds.is_empty());
    let smallest = if masks { 2 * largest } else { largest };
    // (nor a crop the grid's bound or the largest crop refuses, nor one the sweep lists
    // already: `32` for a swept 30 beside 28 and 32 was a value listed twice)
    let fits = |c: &usize| patches.iter().all(|p| c / p <= MAX_GRID_SIDE) && *c <= crate::schema::data::MAX_CROP && (crops.len() == 1 || !crops.contains(c));
    let above = (1..=8usize).filter_map(|k| lower.checked_add(k.checked_mul(step)?)).map(|c| c.max(smallest)).find(fits);
    let below = (0..8usize).filter_map(|k| lower.checked_sub(k.checked_mul(step)?)).find(|l| *l >= smallest && *l > 0 && fits(l));
    let choices: Vec<String> = [above, below].into_iter().flatten().map(|c| c.to_string()).collect();
    if !choices.is_empty() {
        let every = if patches.len() > 1 { " (a multiple of every swept patch)" } else { "" };
        help.push_str(&format!(": try crop-size {}{every}", choices.join(" or ")));
    }
    // or a patch that divides the crop (the largest below this one giving a grid it can use,
    // and dividing DINO's local crops too, each a sweep lists: `patch=3` for local crops swept
    // over 12 and 10 was refused next for the 10)
    let locals: Vec<usize> = match swept("dino.local-size") {
        l if !l.is_empty() => l,
        _ => vec![exp.dino.local_size],
    };
    let locals: &[usize] = if exp.recipe == "dino" && exp.dino.local_crops > 0 { &locals } else { &[] };
    // (no patch above the crop divides it: a patch of 2^32 searched for minutes; nor one whose
    // grid is over the bound: `patch=2` for 514 px was refused next, advising 3 again)
    let usable = |p: &usize| crops.iter().all(|c| c.is_multiple_of(*p) && c / p >= if masks { 2 } else { 1 } && c / p <= MAX_GRID_SIDE) && locals.iter().all(|l| l.is_multiple_of(*p));
    // (not one the sweep lists already: two points alike)
    let usable = |p: &usize| usable(p) && (patches.len() == 1 || !patches.contains(p));
    if let Some(p) = (1..patch.min(crop.saturating_add(1))).rev().find(usable) {
        let every = if crops.len() > 1 { " (it divides every swept crop-size)" } else { "" };
        help.push_str(&format!(", or patch={p}{every}"));
    }
    if cx.span_of("encoder.patch").is_none() {
        help.push_str(&format!(
            "; the encoder's patch size {patch} is not written in this file (a default, or a base's): write `patch=N` on `encoder`"
        ));
    }
    cx.err(DslError::PatchCrop {
        patch,
        crop,
        span: cx.span_or(&["encoder.patch", "encoder"]),
        crop_span: cx.span_of("data.crop-size"),
        help,
    });
}

/// Returns the blocks (`"encoder"`, `"predictor"`, `"decoder"`) whose width it refused.
fn heads_divide_width(cx: &mut Ctx, exp: &Experiment) -> Vec<&'static str> {
    let mut reported = Vec::new();
    let enc = &exp.encoder;
    let enc_ok = cx.ok(&["encoder.heads", "encoder.width", "encoder.preset"]);
    if enc_ok && enc.num_heads > 0 && !enc.embed_dim.is_multiple_of(enc.num_heads) {
        cx.err(DslError::HeadsWidth {
            block: "encoder".into(),
            heads: enc.num_heads,
            width: enc.embed_dim,
            span: cx.span_or(&["encoder.heads", "encoder"]),
            width_span: cx.span_of("encoder.width"),
            help: divisor_help(enc.embed_dim, enc.num_heads, matches!(exp.recipe.as_str(), "ijepa" | "mae")),
        });
        reported.push("encoder");
    }
    let dec = &exp.decoder;
    if exp.recipe == "mae" && cx.ok(&["decoder.heads", "decoder.width"]) && !dec.embed_dim.is_multiple_of(dec.num_heads.max(1)) {
        cx.err(DslError::HeadsWidth {
            block: "decoder".into(),
            heads: dec.num_heads,
            width: dec.embed_dim,
            span: cx.span_or(&["decoder.heads", "decoder"]),
            width_span: cx.span_of("decoder.width"),
            help: divisor_help(dec.embed_dim, dec.num_heads, true),
        });
        reported.push("decoder");
    }
    if exp.recipe != "ijepa" {
        return reported;
    }
    let pred = &exp.predictor;
    let (heads, inherited) = match pred.num_heads {
        Some(h) => (h, false),
        None => (enc.num_heads, true),
    };
    let pred_ok = cx.ok(&["predictor.heads", "predictor.width"]) && (!inherited || enc_ok);
    if pred_ok && heads > 0 && !pred.embed_dim.is_multiple_of(heads) {
        let mut help = divisor_help(pred.embed_dim, heads, true);
        if inherited {
            // (written where the caret is, on the encoder's heads, `heads=10` was refused for
            // the encoder's width and advised 8 again)
            help.push_str(&format!(
                " (on `predictor`: it takes the encoder's {heads} heads, labelled here, unless it \
                 writes `heads=` of its own)"
            ));
        }
        // Inherited heads: the encoder's `heads=` is where the number was written, else its
        // preset (a sweep point's preset value: the file's `heads=` is dropped there)
        let at: &[&str] = if inherited {
            &["encoder.heads", "encoder.preset", "predictor", "encoder"]
        } else {
            &["predictor.heads", "predictor"]
        };
        cx.err(DslError::HeadsWidth {
            block: "predictor".into(),
            heads,
            width: pred.embed_dim,
            span: cx.span_or(at),
            width_span: cx.span_of("predictor.width"),
            help,
        });
        reported.push("predictor");
    }
    reported
}

/// The fixed 2-D sin-cos position tables (I-JEPA's encoder and predictor, MAE's encoder and
/// decoder) give a quarter of the width to each of sin and cos of the row and of the column:
/// the width must be a multiple of 4. (DINO's table is learnt; a recipe a program registers
/// checks its own models.)
fn sincos_widths(cx: &mut Ctx, exp: &Experiment, heads_reported: &[&str]) {
    // (each block's heads too: the widths advised take them; `width=30 heads=3` was advised 28
    // or 32, which 3 heads do not divide)
    let pred_heads = exp.predictor.num_heads.unwrap_or(exp.encoder.num_heads);
    let widths: &[(&str, &str, usize, usize)] = match exp.recipe.as_str() {
        "ijepa" => &[("encoder.width", "encoder", exp.encoder.embed_dim, exp.encoder.num_heads), ("predictor.width", "predictor", exp.predictor.embed_dim, pred_heads)],
        "mae" => &[("encoder.width", "encoder", exp.encoder.embed_dim, exp.encoder.num_heads), ("decoder.width", "decoder", exp.decoder.embed_dim, exp.decoder.num_heads)],
        _ => &[],
    };
    for &(path, block, width, heads) in widths {
        let read = if block == "encoder" { cx.ok(&[path, "encoder.preset"]) } else { cx.ok(&[path]) };
        if !read || width == 0 || width.is_multiple_of(4) || heads_reported.contains(&block) {
            continue;
        }
        // (a head count near 2^64: no width takes it, none is advised)
        let help = match sincos_step(heads) {
            Some(step) if step > 4 => format!("{SINCOS_WHY}: {} (multiples of 4 that its {} heads divide)", widths_near(width, step), heads.max(1)),
            Some(step) => format!("{SINCOS_WHY}: {}", widths_near(width, step)),
            None => SINCOS_WHY.to_string(),
        };
        cx.err(DslError::OutOfRange {
            what: path.into(),
            message: format!("{width} is not a multiple of 4"),
            span: cx.span_or(&[path, block]),
            label: "not a multiple of 4".into(),
            help,
        });
    }
}

/// Why a sin-cos position table takes widths that are multiples of 4.
const SINCOS_WHY: &str = "the fixed 2-D sin-cos position table gives a quarter of the width to each of sin and cos of the row and the column";

/// The step of the widths that `heads` divide and a sin-cos table takes (their least common
/// multiple with 4); `None` where it overflows (a head count near 2^64, which no width takes).
fn sincos_step(heads: usize) -> Option<usize> {
    let h = heads.max(1);
    (h / gcd(h, 4)).checked_mul(4)
}

/// The multiples of `step` nearest `width`, as advised: "e.g. width=B" (the one at or below,
/// at least `step`) and " or width=A" (the one above, where it differs and does not overflow).
fn widths_near(width: usize, step: usize) -> String {
    let below = (width / step * step).max(step);
    let above = width.div_ceil(step).checked_mul(step).filter(|w| *w != below);
    format!("e.g. width={below}{}", above.map_or(String::new(), |w| format!(" or width={w}")))
}

/// How to make `heads` divide `width`: the nearest head count that does, or the next width
/// that takes these heads (a multiple of 4 too where a sin-cos table needs it: `sincos`; a
/// width that is not one is then changed, not the heads, and the help says why).
fn divisor_help(width: usize, heads: usize, sincos: bool) -> String {
    // (a head count near 2^64 wrapped, and was advised widths it does not divide: none is)
    let step = if sincos { sincos_step(heads) } else { Some(heads.max(1)) };
    let both = format!("each head gets width/heads channels, so heads must divide the width, and {SINCOS_WHY} (a multiple of 4)");
    let Some(step) = step else { return format!("{both}: lower heads=") };
    if sincos && !width.is_multiple_of(4) {
        return format!("{both}: {}", widths_near(width, step));
    }
    let next = width.div_ceil(step).checked_mul(step);
    // The head count dividing the width that is closest to the one written (small search).
    let nearest = (1..=width.min(1024))
        .filter(|h| width.is_multiple_of(*h))
        .min_by_key(|h| (h.abs_diff(heads), *h))
        .unwrap_or(1);
    let mut help = format!(
        "each head gets width/heads channels, so heads must divide the width: e.g. heads={nearest}"
    );
    if let Some(w) = next {
        help.push_str(&format!(" or width={w}"));
    }
    help
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn mask_is_feasible(cx: &mut Ctx, exp: &Experiment) {
    // (a misspelled `recipe` left the default's mask, checked as if it were meant)
    let needed = [
        "recipe",
        "mask",
        "encoder.patch",
        "encoder.preset",
        "data.crop-size",
        "mask.min-keep",
        "mask.aspect-sampling",
        "mask.targets",
        "mask.context",
    ];
    // only a recipe that samples the mask's kind is held to its feasibility: multi-block, and
    // the single block of `mask "block"` (drawn as one multi-block target with min-keep 0, so
    // an empty block is redrawn for ever; its context is the complement)
    use crate::config::MaskKind;
    let kind = exp.mask.kind;
    let samples = crate::recipes::schema(&exp.recipe).is_some_and(|s| s.mask_kinds.contains(&kind));
    if !cx.ok(&needed) || !matches!(kind, MaskKind::MultiBlock | MaskKind::Block) || !samples {
        return;
    }
    // a 1x1 grid has its own diagnostic (patch_divides_crop): one mistake, one error
    let Some(g) = grid(exp).filter(|&g| g > 1) else { return };
    let bads = match kind {
        MaskKind::Block => crate::multiblock::empty_single_block(&exp.mask, g, g).into_iter().collect(),
        _ => check_feasible(&exp.mask, g, g),
    };
    for bad in bads {
        let Infeasible { block, smallest: s, min_keep } = bad;
        let name = block.name();
        let (block_path, scale_path, aspect_path) = match (kind, name) {
            (MaskKind::Block, _) => ("mask", "mask.scale", "mask.aspect"),
            (_, "target") => ("mask.targets", "mask.targets.scale", "mask.targets.aspect"),
            _ => ("mask.context", "mask.context.scale", "mask.context.aspect"),
        };
        // (a refused `scale` or `aspect` inside the block: it was checked on the default kept in
        // its place; the other block, valid, is still checked)
        if !cx.ok_within(&[block_path]) {
            continue;
        }
        // a sweep point: the varied value that made it so, where one is among the causes (a
        // swept patch size pointed at the experiment's min-keep, or at the experiment)
        // (an aspect range whose end thins the smallest block below min-keep, where a square
        // block of the scale would keep enough: the aspect is the cause, and is advised; a
        // swept aspect was labelled nowhere, or at a swept scale that is fine with another)
        let (sh, sw) = crate::multiblock::block_size(g, g, s.scale, 1.0);
        let thinned = sh * sw > min_keep;
        let causes = if thinned { [aspect_path, scale_path] } else { [scale_path, aspect_path] };
        let swept = ["encoder.patch", "encoder.preset", "data.crop-size", causes[0], causes[1]].into_iter().find(|p| cx.swept_paths.iter().any(|s| s == p));
        let span = match swept.and_then(|p| cx.span_of(p)) {
            Some(span) => span,
            // (the mask node before min-keep: with the scale left to its default, both labels
            // landed on min-keep, and the one saying what min-keep asks was dropped)
            None => cx.span_or(&[scale_path, block_path, "mask", "mask.min-keep"]),
        };
        let min_keep_span = cx.span_of("mask.min-keep").filter(|m| *m != span);
        if kind == MaskKind::Block {
            // no min-keep here: the one block is redrawn until it holds a patch
            cx.err(DslError::InvalidValue {
                what: "mask scale".into(),
                message: format!("the block mask's block can be empty ({}x{} patches on the {g}x{g} grid): its sampler would redraw it for ever", s.h, s.w),
                span,
                help: format!(
                    "scale {:.4} with aspect {:.4} rounds to no patch (crop {} / patch {}): raise the low end of `scale`{}, or use a larger crop / smaller patch",
                    s.scale,
                    s.aspect,
                    exp.data.crop_size,
                    exp.encoder.patch_size,
                    if thinned { ", bring `aspect` closer to 1" } else { "" }
                ),
            });
            continue;
        }
        let mut help = format!(
            "on the {g}x{g} patch grid (crop {} / patch {}), scale {:.4} with aspect {:.4} gives \
             a {}x{} {name} block = {} patch{}; the official sampler redraws until a block keeps \
             more than min-keep patches, so it would never finish. ",
            exp.data.crop_size,
            exp.encoder.patch_size,
            s.scale,
            s.aspect,
            s.h,
            s.w,
            s.patches(),
            if s.patches() == 1 { "" } else { "es" }
        );
        // (a block thinned by its aspect: the scale alone was advised)
        let aspect = if thinned { format!(", or bring the {name} aspect range closer to 1") } else { String::new() };
        if s.patches() > 0 {
            help.push_str(&format!(
                "Lower min-keep to at most {}, or raise the low end of the {name} scale{aspect}.",
                s.patches() - 1
            ));
        } else {
            let aspect = if thinned { ", bring its aspect range closer to 1," } else { "" };
            help.push_str(&format!(
                "Raise the {name} scale{aspect} or use a larger crop / smaller patch: the block is empty."
            ));
        }
        cx.err(DslError::InfeasibleMask {
            block: name.into(),
            patches: s.patches(),
            min_keep,
            span,
            min_keep_span,
            help,
        });
    }
}
