//! Public-API tests: a fake but realistic runs folder (two experiments, pretrain runs and
//! linear / low-shot / k-NN evals of I-JEPA, random-init and raw-pixel features, plus a sweep
//! over `mask.targets.scale`) turned into tables and a report.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use ijepa_reports::tables::rows_as_text;
use ijepa_reports::{
    ablation_table, linear_table, load_registry, lowshot_table, paper_table, write_report,
    DataFrame,
};
use serde_json::json;

fn write_json(path: &Path, v: &serde_json::Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn pretrain(runs: &Path, exp: &str, hash: &str, target_scale: [f64; 2], final_loss: f64) {
    let dir = runs.join(exp).join(format!("pretrain-{hash}"));
    write_json(
        &dir.join("manifest.json"),
        &json!({"stage": "pretrain", "experiment": exp, "hash": format!("{hash}0000"), "status": "done",
                "started": 1_795_762_172, "finished": 1_795_762_772, "ijepa_version": "0.1.0", "host": "vm",
                "world_size": 1, "device": "cuda:0", "steps": 40, "final_loss": final_loss, "error": null}),
    );
    write_json(
        &dir.join("config.json"),
        &json!({"name": exp, "recipe": "ijepa", "epochs": 4,
                "data": {"dataset": "fashion-mnist", "crop_size": 28, "batch_size": 64},
                "encoder": {"preset": null, "patch_size": 4, "embed_dim": 192, "depth": 6, "num_heads": 3},
                "mask": {"n_targets": 4, "target_scale": target_scale, "context_scale": [0.85, 1.0]}}),
    );
    let mut csv = String::from(
        "step,epoch,loss,lr,wd,momentum,context_len,target_len,ms_per_step,img_per_s,skipped\n",
    );
    for step in 1..=40u32 {
        let loss = final_loss + 0.4 * (-(step as f64) / 8.0).exp();
        csv.push_str(&format!(
            "{step},{},{loss:.6},1e-3,0.04,0.996,30,9,12.5,5120.0,0\n",
            (step - 1) / 10 + 1
        ));
    }
    fs::write(dir.join("metrics.csv"), csv).unwrap();
}

#[allow(clippy::too_many_arguments)]
fn eval(
    runs: &Path,
    exp: &str,
    name: &str,
    protocol: &str,
    model: &str,
    top1: f64,
    fraction: Option<f64>,
    varied: serde_json::Value,
) {
    let method = match model {
        "ijepa" => "I-JEPA (ours)",
        "random-init" => "random init",
        _ => "raw pixels",
    };
    let curve: Vec<_> = (1..=5)
        .map(|e| json!({"epoch": e, "top1": top1 - 10.0 / e as f64}))
        .collect();
    write_json(
        &runs
            .join(exp)
            .join(format!("eval-{name}-abcdef012345/eval.json")),
        &json!({"experiment": exp, "stage": format!("eval-{protocol}"), "protocol": protocol, "model": model,
                "method": method, "arch": if model == "raw-pixels" { "pixels" } else { "ViT-192x6/4" },
                "pretrain_epochs": if model == "ijepa" { json!(4) } else { json!(null) },
                "data": "Fashion-MNIST", "resolution": 28, "head": "linear",
                "features": match model { "ijepa" => "last4", "random-init" => "last", _ => "pixels" },
                "fraction": fraction,
                "sweep": [{"params": {"lr": 0.01}, "heldout_top1": top1 - 1.0}, {"params": {"lr": 0.1}, "heldout_top1": top1 - 3.0}],
                "chosen": {"lr": 0.01}, "top1": top1, "train_examples": 60000, "test_examples": 10000,
                "wall_s": 12.5, "varied": varied, "pretrain_dir": null, "curve": curve,
                "some_future_field": [1, 2, 3]}),
    );
}

fn fake_runs(runs: &Path) {
    pretrain(runs, "fmnist", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    eval(
        runs,
        "fmnist",
        "linear",
        "linear",
        "ijepa",
        82.5,
        None,
        json!({}),
    );
    eval(
        runs,
        "fmnist",
        "linear-random",
        "linear",
        "random-init",
        45.1,
        None,
        json!({}),
    );
    eval(
        runs,
        "fmnist",
        "linear-pixels",
        "linear",
        "raw-pixels",
        77.0,
        None,
        json!({}),
    );
    eval(
        runs,
        "fmnist",
        "low-shot",
        "low-shot",
        "ijepa",
        60.3,
        Some(0.01),
        json!({}),
    );
    eval(runs, "fmnist", "knn", "knn", "ijepa", 79.9, None, json!({}));
    pretrain(runs, "fmnist-tscale", "bbbbbbbbbbbb", [0.15, 0.2], 0.06);
    pretrain(runs, "fmnist-tscale", "cccccccccccc", [0.2, 0.3], 0.08);
    pretrain(runs, "fmnist-tscale", "dddddddddddd", [0.5, 0.6], 0.09);
    eval(
        runs,
        "fmnist-tscale",
        "linear-s1",
        "linear",
        "ijepa",
        80.1,
        None,
        json!({"mask.targets.scale": "0.15-0.2"}),
    );
    eval(
        runs,
        "fmnist-tscale",
        "linear-s2",
        "linear",
        "ijepa",
        76.4,
        None,
        json!({"mask.targets.scale": "0.2-0.3"}),
    );
    eval(
        runs,
        "fmnist-tscale",
        "linear-s3",
        "linear",
        "ijepa",
        70.0,
        None,
        json!({"mask.targets.scale": "0.5-0.6"}),
    );
    // Neither manifest nor eval: skipped.
    fs::create_dir_all(runs.join("fmnist").join("scratch")).unwrap();
}

/// Rows of a table as column-name -> text maps.
fn rows(df: &DataFrame) -> Vec<HashMap<String, String>> {
    let t = rows_as_text(df, false);
    t[1..]
        .iter()
        .map(|r| t[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn find<'a>(
    rows: &'a [HashMap<String, String>],
    pairs: &[(&str, &str)],
) -> Vec<&'a HashMap<String, String>> {
    rows.iter()
        .filter(|r| {
            pairs
                .iter()
                .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

#[test]
fn registry_reads_all_runs() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), 4);
    assert_eq!(reg.evals.len(), 8);
    assert_eq!(reg.experiments(), vec!["fmnist", "fmnist-tscale"]);
    let p = &reg.pretrains[0];
    assert_eq!(p.metrics.len(), 40);
    assert_eq!(p.metrics[39].epoch, Some(4));
    assert_eq!(p.arch().as_deref(), Some("ViT-192x6/4"));
    // a preset the file overrode shows its real shape beside its name (it showed `vit-tiny`
    // for a 16-wide, 1-block encoder)
    let mut q = p.clone();
    let enc = q.config.as_mut().unwrap().get_mut("encoder").unwrap();
    enc["preset"] = serde_json::json!("vit-tiny");
    enc["embed_dim"] = serde_json::json!(16);
    enc["depth"] = serde_json::json!(1);
    assert_eq!(q.arch().as_deref(), Some("vit-tiny (ViT-16x1/4)"));
    assert_eq!(reg.evals[0].record.sweep.len(), 2);
}

#[test]
fn linear_and_lowshot_tables() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let reg = load_registry(tmp.path()).unwrap();

    let lin = rows(&linear_table(&reg));
    let ours = find(&lin, &[("source", "ours")]);
    assert_eq!(
        ours.len(),
        3,
        "sweep points and other protocols are not in Table 1: {ours:?}"
    );
    assert_eq!(
        find(&lin, &[("method", "I-JEPA (ours)"), ("source", "ours")])[0]["top1"],
        "82.5"
    );
    assert_eq!(find(&lin, &[("method", "I-JEPA (ours)")])[0]["epochs"], "4");
    assert_eq!(find(&lin, &[("method", "random init")])[0]["top1"], "45.1");
    assert_eq!(find(&lin, &[("method", "raw pixels")])[0]["top1"], "77.0");
    assert_eq!(find(&lin, &[("method", "random init")])[0]["epochs"], "");
    // the features each of our heads read (the set a probe chose), none for the paper's rows
    let features = |m: &str| find(&lin, &[("method", m), ("source", "ours")])[0]["features"].clone();
    assert_eq!((features("I-JEPA (ours)"), features("random init"), features("raw pixels")), ("last4".into(), "last".into(), "pixels".into()));
    let h14 = find(
        &lin,
        &[
            ("method", "I-JEPA"),
            ("arch", "ViT-H/14"),
            ("source", "paper"),
        ],
    );
    assert_eq!(h14.len(), 1);
    assert_eq!(h14[0]["top1"], "79.3");
    assert_eq!(h14[0]["data"], "ImageNet-1k");
    assert_eq!(h14[0]["features"], "", "the paper names no feature set");
    assert_eq!(
        find(&lin, &[("method", "MAE"), ("arch", "ViT-B/16")]).len(),
        1,
        "duplicated paper rows are kept once"
    );

    let low = rows(&lowshot_table(&reg));
    let ours = find(&low, &[("source", "ours")]);
    assert_eq!(ours.len(), 1);
    assert_eq!(
        (ours[0]["top1"].as_str(), ours[0]["fraction"].as_str()),
        ("60.3", "0.01")
    );
    let h14 = find(
        &low,
        &[
            ("method", "I-JEPA"),
            ("arch", "ViT-H/14"),
            ("source", "paper"),
        ],
    );
    assert_eq!(h14[0]["top1"], "73.3");
    assert_eq!(find(&low, &[("method", "MSN")])[0]["top1"], "75.7");

    assert!(paper_table().height() >= 40);
}

#[test]
fn ablation_pairs_with_paper() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(ablation_table(&reg, "fmnist").height(), 0);
    let abl = rows(&ablation_table(&reg, "fmnist-tscale"));
    assert_eq!(abl.len(), 3);
    let values: Vec<&str> = abl.iter().map(|r| r["value"].as_str()).collect();
    assert_eq!(values, ["0.15-0.2", "0.2-0.3", "0.5-0.6"]);
    let r = &abl[0];
    assert_eq!(
        (
            r["key"].as_str(),
            r["protocol"].as_str(),
            r["top1"].as_str()
        ),
        ("mask.targets.scale", "linear", "80.1")
    );
    assert_eq!(
        (
            r["paper_setting"].as_str(),
            r["paper_top1"].as_str(),
            r["paper_table"].as_str()
        ),
        ("target-scale=0.15-0.2", "54.2", "8")
    );
    assert_eq!(abl[1]["paper_top1"], "33.6");
    assert_eq!(
        (
            abl[2]["paper_setting"].as_str(),
            abl[2]["paper_top1"].as_str()
        ),
        ("", "")
    );
    // another recipe's sweep over a setting of the same name is not the paper's ablation
    eval(tmp.path(), "custom-tscale", "linear-s1", "linear", "ijepa", 80.1, None, json!({"mask.targets.scale": "0.15-0.2"}));
    let file = tmp.path().join("custom-tscale/eval-linear-s1-abcdef012345/eval.json");
    let mut e: serde_json::Value = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    e["recipe"] = json!("linear-ae");
    e["model"] = json!("linear-ae");
    write_json(&file, &e);
    let reg = load_registry(tmp.path()).unwrap();
    let abl = rows(&ablation_table(&reg, "custom-tscale"));
    assert_eq!((abl.len(), abl[0]["top1"].as_str(), abl[0]["paper_top1"].as_str()), (1, "80.1", ""));
    // each number names the folder it is read from, under the runs folder
    assert_eq!(abl[0]["eval_dir"], "custom-tscale/eval-linear-s1-abcdef012345");
}

#[test]
fn report_files_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    fake_runs(&runs);
    let reg = load_registry(&runs).unwrap();
    let out = tmp.path().join("out");
    let files = write_report(&reg, &out).unwrap();
    for p in files.all() {
        assert!(
            fs::metadata(p).unwrap().len() > 0,
            "{} is empty",
            p.display()
        );
    }
    let names = |v: &[std::path::PathBuf]| {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&files.tables),
        [
            "pretrain.csv",
            "linear.csv",
            "lowshot.csv",
            "knn.csv",
            "ablation-fmnist-tscale.csv"
        ]
    );
    let plots = names(&files.plots);
    for stem in [
        "loss-fmnist",
        "schedules-fmnist",
        "probe-fmnist",
        "sweep-fmnist-tscale",
        "loss-fmnist-tscale",
        "schedules-fmnist-tscale",
        "probe-fmnist-tscale",
    ] {
        for ext in ["svg", "png"] {
            assert!(plots.contains(&format!("{stem}.{ext}")), "no {stem}.{ext} in {plots:?}");
        }
    }
    assert_eq!(plots.len(), 14, "{plots:?}");
    for p in &files.plots {
        let bytes = fs::read(p).unwrap();
        if p.extension().unwrap() == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            assert!(bytes.starts_with(b"<svg"), "{}", p.display());
        }
    }
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("## Linear probe (paper Table 1)") && md.contains("ImageNet-1k results"));
    assert!(
        md.contains("| I-JEPA (ours) | ViT-192x6/4 | 4 | Fashion-MNIST | last4 | 82.5 | ours |"),
        "{md}"
    );
    assert!(md.contains("| mask.targets.scale | 0.15-0.2 | linear | I-JEPA (ours) | 80.1 | 8 | target-scale=0.15-0.2 | 54.2 |"), "{md}");
    assert!(md.contains("![Training loss: fmnist](plots/loss-fmnist.png)"), "{md}");
    let html = fs::read_to_string(&files.html).unwrap();
    assert_self_contained(&html);
    // every figure inline, as SVG with its text: the sweep trend names the swept key, the
    // points, and the paper's numbers beside ours
    assert_eq!(html.matches("<figure id=\"fig-").count(), 7);
    let sweep = html.split("id=\"fig-sweep-fmnist-tscale\"").nth(1).unwrap().split("</figure>").next().unwrap();
    for text in ["mask.targets.scale", "0.15-0.2", "0.2-0.3", "0.5-0.6", "top-1 (%)", "paper Table 8"] {
        assert!(sweep.contains(text), "the sweep figure lacks {text}");
    }
    // for screen readers: header cells name their columns, each figure has a <title>
    assert!(html.contains("<thead><tr><th scope=\"col\">method</th>") && !html.contains("<th>"), "{html}");
    assert_eq!(html.matches("<tbody>").count(), html.matches("<table>").count());
    assert!(sweep.contains("<title>Sweep"), "{sweep}");
    // the title of the Markdown report is text: a method named with markup or a line break
    // stays one heading, shown as written
    patch_json(&runs.join("fmnist/eval-linear-abcdef012345/eval.json"), |v| v["method"] = json!("I-JEPA <b>x</b> &\nnl"));
    let files2 = write_report(&load_registry(&runs).unwrap(), &tmp.path().join("out-title")).unwrap();
    let md2 = fs::read_to_string(&files2.markdown).unwrap();
    assert!(md2.starts_with("# I-JEPA / I-JEPA &lt;b&gt;x&lt;/b&gt; &amp; nl report\n"), "{md2}");
    let csv = fs::read_to_string(out.join("tables/linear.csv")).unwrap();
    assert!(
        csv.starts_with("method,arch,epochs,data,features,top1,source\n")
            && csv.contains("I-JEPA,ViT-H/14,300,ImageNet-1k,,79.3,paper")
            && csv.contains("I-JEPA (ours),ViT-192x6/4,4,Fashion-MNIST,last4,82.5,ours"),
        "{csv}"
    );
}

/// No reference the browser would fetch: no `src`/`href` to anything, no CSS `url(`, no
/// `@import` (the SVG namespace `xmlns` is a name, not a fetch).
fn assert_self_contained(html: &str) {
    assert!(html.contains("<style>"));
    for bad in [" src=", " href=", "url(", "@import", "<link", "<script"] {
        assert!(!html.contains(bad), "the HTML has `{bad}`: it must be self-contained");
    }
}

/// A sweep laid out as `ijepa run` writes it: each point is an experiment of its own
/// (`<study>-<point>`) holding its pretraining, and the study's folder holds the evaluations
/// (with `varied` and the `pretrain_dir` they read) and the unswept baselines.
fn study_runs(runs: &Path) {
    let study = "tscale";
    for (i, (lo, top1, knn)) in [(0.1, 71.0, 60.5), (0.15, 73.5, 62.0), (0.2, 72.0, 61.0)].into_iter().enumerate() {
        let point = format!("{study}-targets-scale-{lo}-0.2");
        let hash = format!("{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}");
        pretrain(runs, &point, &hash, [lo, 0.2], 0.05 + 0.01 * i as f64);
        let pdir = runs.join(&point).join(format!("pretrain-{hash}"));
        let mut mon = String::from("step,epoch,encoder,knn_top1,rankme,spread,seconds\n");
        mon.push_str("0,0,target,40.0,3.0,0.14,1.0\n0,0,context,40.0,3.0,0.14,1.0\n0,0,pixels,76.0,296.0,0.70,0.5\n");
        for e in 1..=4 {
            mon.push_str(&format!("{},{e},target,{},{},0.3,1.0\n{},{e},context,{},{},0.3,1.0\n", e * 10, 40 + 5 * e, 5 + e, e * 10, 41 + 5 * e, 6 + e));
        }
        fs::write(pdir.join("monitor.csv"), mon).unwrap();
        for (protocol, top1) in [("linear", top1), ("knn", knn)] {
            eval(runs, study, &format!("{protocol}-ijepa-{i}"), protocol, "ijepa", top1, None, json!({"mask.targets.scale": format!("{lo}-0.2")}));
            let f = runs.join(study).join(format!("eval-{protocol}-ijepa-{i}-abcdef012345/eval.json"));
            let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
            v["pretrain_dir"] = json!(format!("runs/{point}/pretrain-{hash}"));
            write_json(&f, &v);
        }
    }
    for (protocol, model, top1) in [("linear", "random-init", 68.0), ("linear", "raw-pixels", 83.0), ("knn", "random-init", 54.0), ("knn", "raw-pixels", 82.8)] {
        eval(runs, study, &format!("{protocol}-{model}"), protocol, model, top1, None, json!({}));
    }
}

#[test]
fn a_study_reads_as_one_sweep_with_its_trend_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let reg = load_registry(&runs).unwrap();
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let html = fs::read_to_string(&files.html).unwrap();
    assert_self_contained(&html);
    // the study's figures show its three points' runs; the points get no figures of their own
    let ids: Vec<&str> = html.split("<figure id=\"fig-").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(ids, ["sweep-tscale", "loss-tscale", "schedules-tscale", "monitor-tscale", "probe-tscale"]);
    let fig = |id: &str| html.split(&format!("id=\"fig-{id}\"")).nth(1).unwrap().split("</figure>").next().unwrap().to_string();
    for hash in ["000000000000", "111111111111", "222222222222"] {
        assert!(fig("loss-tscale").contains(&format!("pretrain-{hash} [mask.targets.scale=")), "loss legend lacks run {hash}");
        assert!(fig("monitor-tscale").contains(&format!("pretrain-{hash} [mask.targets.scale=")));
    }
    let sweep = fig("sweep-tscale");
    for text in ["I-JEPA (ours) · linear", "I-JEPA (ours) · knn", "random init · linear", "raw pixels · knn", "0.1-0.2", "0.15-0.2", "0.2-0.2", "paper Table 8"] {
        assert!(sweep.contains(text), "the sweep figure lacks {text}");
    }
    // the baselines every point shares are rows of the sweep table (they were in no table:
    // the figure alone drew them), first of their protocol
    let abl = rows(&ablation_table(&reg, "tscale"));
    let got: Vec<_> = abl.iter().map(|r| (r["key"].as_str(), r["value"].as_str(), r["protocol"].as_str(), r["method"].as_str(), r["top1"].as_str())).collect();
    assert_eq!(&got[..3], [("mask.targets.scale", "every point", "knn", "random init", "54.0"), ("mask.targets.scale", "every point", "knn", "raw pixels", "82.8"), ("mask.targets.scale", "0.1-0.2", "knn", "I-JEPA (ours)", "60.5")], "{abl:?}");
    assert_eq!(got.len(), 10, "{abl:?}");
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("| mask.targets.scale | every point | linear | raw pixels | 83.0 |"), "{md}");
    // the pixels' level of the three runs' same held-out images: one line, one legend entry
    // (it was three identical ones)
    assert_eq!(fig("monitor-tscale").matches("raw pixels (the same images for 3 runs)").count(), 1);
    assert!(!fig("monitor-tscale").contains("raw pixels (same images)") && fig("monitor-tscale").contains("Effective rank"));
    // a run on other data is not one of them, whatever its value
    let config = runs.join("tscale-targets-scale-0.2-0.2/pretrain-222222222222/config.json");
    let mut c: serde_json::Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    c["data"]["limit"] = json!(1234);
    write_json(&config, &c);
    let files = write_report(&load_registry(&runs).unwrap(), &tmp.path().join("out2")).unwrap();
    let html = fs::read_to_string(&files.html).unwrap();
    let monitor = html.split("id=\"fig-monitor-tscale\"").nth(1).unwrap().split("</figure>").next().unwrap();
    assert_eq!((monitor.matches("raw pixels (the same images for 2 runs)").count(), monitor.matches("pretrain-222222222222 [mask.targets.scale=0.2-0.2] raw pixels (same images)").count()), (1, 1), "{monitor}");
}

/// The HTML of figure `id` (`loss-tscale`) in the report of `runs` written to `out`.
fn figure_of_report(runs: &Path, out: &Path, id: &str) -> String {
    let files = write_report(&load_registry(runs).unwrap(), out).unwrap();
    let html = fs::read_to_string(&files.html).unwrap();
    html.split(&format!("id=\"fig-{id}\"")).nth(1).unwrap_or_else(|| panic!("no figure {id}")).split("</figure>").next().unwrap().to_string()
}

/// A pretraining shared by points that differ in an evaluation's settings alone is not
/// labelled with one of those points' values (its legend read `[eval.knn.k=5]`, as if it were
/// the pretraining of that point alone).
#[test]
fn a_pretraining_is_not_labelled_with_an_evaluation_s_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    for protocol in ["linear", "knn"] {
        patch_eval(&runs, "tscale", &format!("{protocol}-ijepa-0"), |v| v["varied"] = json!({"eval.knn.k": "5"}));
    }
    let loss = figure_of_report(&runs, &tmp.path().join("out"), "loss-tscale");
    assert!(loss.contains("pretrain-000000000000") && !loss.contains("pretrain-000000000000 [") && !loss.contains("eval.knn.k"), "{loss}");
    assert!(loss.contains("pretrain-111111111111 [mask.target"), "{loss}");
}

/// The time figure (methods side by side) draws the pixels' level of each set of held-out
/// images, as the monitor figure does: one level, the first run's, stood for runs measured on
/// other images.
#[test]
fn the_time_figure_draws_each_held_out_set_s_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let p2 = runs.join("tscale-targets-scale-0.2-0.2/pretrain-222222222222");
    // (with MAE's own defaults of what the held-out images do not depend on)
    patch_json(&p2.join("config.json"), |c| {
        c["recipe"] = json!("mae");
        c["data"]["crop_scale"] = json!([0.2, 1.0]);
        c["data"]["hflip"] = json!(0.5);
        c["data"]["interpolation"] = json!("bicubic");
    });
    let time = |out: &str| figure_of_report(&runs, &tmp.path().join(out), "time-tscale");
    // the same images: one level, as before
    let alike = time("out");
    assert_eq!(alike.matches("raw pixels (same held-out images)").count(), 1, "{alike}");
    // the MAE run on other data, its pixels at another value: a level of its own
    patch_json(&p2.join("config.json"), |c| c["data"]["limit"] = json!(1234));
    let text = fs::read_to_string(p2.join("monitor.csv")).unwrap().replace("0,0,pixels,76.0,", "0,0,pixels,70.0,");
    fs::write(p2.join("monitor.csv"), text).unwrap();
    let apart = time("out2");
    assert!(!apart.contains("raw pixels (same held-out images)"), "{apart}");
    assert_eq!(apart.matches("raw pixels (the same held-out images for 2 runs)").count(), 1, "{apart}");
    // (the legend cuts the run's label)
    assert!(apart.contains("pretrain-222222222222 [mask.target…] raw pixels (its held-out images)"), "{apart}");
}

/// A point of a sweep that diverged has no evaluation: it is a row of its study's sweep table
/// saying so, and its curves are drawn in the study's figures labelled with its point, not as
/// an experiment of its own (the sweep showed only the points that were evaluated).
#[test]
fn a_diverged_point_stays_in_its_study() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let point = "tscale-targets-scale-0.3-0.2";
    pretrain(&runs, point, "999999999999", [0.3, 0.2], 0.05);
    patch_json(&runs.join(point).join("pretrain-999999999999/manifest.json"), |m| {
        m["status"] = json!("failed");
        m["diverged_at"] = json!(12);
        m["study"] = json!("tscale");
        m["varied"] = json!({"mask.targets.scale": "0.3-0.2"});
    });
    // (its last logged loss, the divergence itself)
    let metrics = runs.join(point).join("pretrain-999999999999/metrics.csv");
    let mut csv = fs::read_to_string(&metrics).unwrap();
    csv.push_str("41,5,6500000000.0,1e-3,0.04,0.996,30,9,12.5,5120.0,0\n");
    fs::write(&metrics, csv).unwrap();
    let reg = load_registry(&runs).unwrap();
    let abl = rows(&ablation_table(&reg, "tscale"));
    let row = find(&abl, &[("value", "0.3-0.2")]);
    assert_eq!(row.len(), 1, "{abl:?}");
    assert_eq!((row[0]["key"].as_str(), row[0]["protocol"].as_str(), row[0]["top1"].as_str()), ("mask.targets.scale", "none (pretraining diverged at step 12)", ""));
    // the evaluated points are rows as before, and no point of theirs reads "none"
    assert_eq!(abl.iter().filter(|r| r["protocol"].starts_with("none")).count(), 1);
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let html = fs::read_to_string(&files.html).unwrap();
    let ids: Vec<&str> = html.split("<figure id=\"fig-").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(ids, ["sweep-tscale", "loss-tscale", "schedules-tscale", "monitor-tscale", "probe-tscale"], "no figures of the point's own");
    let loss = html.split("id=\"fig-loss-tscale\"").nth(1).unwrap().split("</figure>").next().unwrap();
    assert!(loss.contains("pretrain-999999999999 [mask.targets.scale=0.3-0.2]"), "the diverged point's curve, labelled");
    // its loss of 6.5e9 does not set the axis (the other runs were a flat line at 0), and the
    // caption says where its curve stops
    let ticks: Vec<f64> = loss.split("</text>").filter_map(|t| t.rsplit('>').next()?.trim().parse().ok()).collect();
    assert!(!ticks.is_empty() && ticks.iter().all(|t| *t < 1.0 || (*t >= 5.0 && t.fract() == 0.0 && *t <= 50.0)), "{ticks:?}");
    assert!(html.contains("A run that diverged is drawn only where its loss stays within twice the highest loss of the runs that did not."));
    // the sweep figure draws no point for it, and says so (and that its axis is no scale)
    assert!(html.contains("Not drawn, with no result: 0.3-0.2 (pretraining diverged at step 12) (the sweep table lists them).") && html.contains("placed evenly in their order, not to scale"));
}

/// A point's run that a later run of the point replaced (its file edited: another hash) is no
/// row of the sweep table in a report of the whole folder, evaluated or not: the point showed
/// twice (once evaluated, once "diverged"; or evaluated twice, rows no column told apart).
#[test]
fn a_point_replaced_by_a_later_run_shows_once() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let point = "tscale-targets-scale-0.3-0.2";
    for (hash, status, started) in [("999999999999", "failed", 1_795_762_000u64), ("888888888888", "done", 1_795_763_000)] {
        pretrain(&runs, point, hash, [0.3, 0.2], 0.05);
        patch_json(&runs.join(point).join(format!("pretrain-{hash}/manifest.json")), |m| {
            m["status"] = json!(status);
            if status == "failed" {
                m["diverged_at"] = json!(12);
            }
            m["started"] = json!(started);
            m["study"] = json!("tscale");
            m["varied"] = json!({"mask.targets.scale": "0.3-0.2"});
        });
    }
    // neither evaluated: the later run's row
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "tscale"));
    let row = find(&abl, &[("value", "0.3-0.2")]);
    assert_eq!(row.iter().map(|r| r["protocol"].as_str()).collect::<Vec<_>>(), ["none (pretraining done, not evaluated)"], "{abl:?}");
    // the later run evaluated: its row, and no "none" row of the point
    eval(&runs, "tscale", "knn-ijepa-3", "knn", "ijepa", 71.5, None, json!({"mask.targets.scale": "0.3-0.2"}));
    patch_eval(&runs, "tscale", "knn-ijepa-3", |v| v["pretrain_dir"] = json!(format!("runs/{point}/pretrain-888888888888")));
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "tscale"));
    let row = find(&abl, &[("value", "0.3-0.2")]);
    assert_eq!(row.iter().map(|r| r["protocol"].as_str()).collect::<Vec<_>>(), ["knn"], "{abl:?}");
    // a still later run of the point diverged: the point is that run's row, not the older
    // evaluation's
    pretrain(&runs, point, "777777777777", [0.3, 0.2], 0.05);
    patch_json(&runs.join(point).join("pretrain-777777777777/manifest.json"), |m| {
        m["status"] = json!("failed");
        m["diverged_at"] = json!(3);
        m["started"] = json!(1_795_764_000u64);
        m["study"] = json!("tscale");
        m["varied"] = json!({"mask.targets.scale": "0.3-0.2"});
    });
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "tscale"));
    let row = find(&abl, &[("value", "0.3-0.2")]);
    assert_eq!(row.iter().map(|r| r["protocol"].as_str()).collect::<Vec<_>>(), ["none (pretraining diverged at step 3)"], "{abl:?}");
    // the other points' rows are untouched (and the two baselines every point shares)
    assert_eq!(abl.iter().filter(|r| r["protocol"] == "knn" && r["value"] != "every point").count(), 3, "{abl:?}");
}

/// A report of the whole folder, which holds every version of a study, shows the stages the
/// last `ijepa run` of each file planned (its `planned-<file>.json`): a point evaluated again
/// (the file's `k` edited) and a point pretrained again (its pretraining settings edited) stood
/// beside the current results, and the sweep figure averaged them into the point's line as if
/// they were seeds, while its table hid some of them. What is left out is listed with why; a
/// stage another file's plan names, an `ijepa eval` of a checkpoint, and a study without a
/// record are kept.
#[test]
fn a_folder_report_shows_each_file_as_its_last_run_planned_it() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    // point 0.15 evaluated again, with other settings
    eval(&runs, "tscale", "knn-ijepa-1b", "knn", "ijepa", 50.0, None, json!({"mask.targets.scale": "0.15-0.2"}));
    patch_eval(&runs, "tscale", "knn-ijepa-1b", |v| v["pretrain_dir"] = json!("runs/tscale-targets-scale-0.15-0.2/pretrain-111111111111"));
    // point 0.1 pretrained again, not evaluated yet
    pretrain(&runs, "tscale-targets-scale-0.1-0.2", "aaaaaaaaaaaa", [0.1, 0.2], 0.05);
    patch_json(&runs.join("tscale-targets-scale-0.1-0.2/pretrain-aaaaaaaaaaaa/manifest.json"), |m| {
        m["study"] = json!("tscale");
        m["varied"] = json!({"mask.targets.scale": "0.1-0.2"});
    });
    // a checkpoint evaluated at a point with `ijepa eval --point`: no plan names it
    eval(&runs, "tscale", "knn-ijepa-given", "knn", "ijepa", 33.0, None, json!({"mask.targets.scale": "0.2-0.2"}));
    patch_eval(&runs, "tscale", "knn-ijepa-given", |v| {
        v["checkpoint"] = json!("/elsewhere/official.pth.tar");
        v["method"] = json!("I-JEPA (official.pth.tar)");
        v["settings"] = json!({"k": 10.0, "temperature": 0.07});
        v["data_fingerprints"] = json!(["train-now", "test-now"]);
    });
    // ... and the baseline that `ijepa eval` ran beside it, at its settings (a baseline records
    // no checkpoint: it was left out as an earlier version's)
    eval(&runs, "tscale", "knn-raw-pixels-given", "knn", "raw-pixels", 44.0, None, json!({}));
    patch_eval(&runs, "tscale", "knn-raw-pixels-given", |v| {
        v["checkpoint"] = json!("");
        v["settings"] = json!({"k": 10.0, "temperature": 0.07});
        v["data_fingerprints"] = json!(["train-now", "test-now"]);
    });
    // a baseline of the earlier version (its record's checkpoint empty, as a baseline's is), at
    // the given checkpoint's settings but on other images: not kept beside it
    eval(&runs, "tscale", "knn-random-init-old", "knn", "random-init", 12.0, None, json!({}));
    patch_eval(&runs, "tscale", "knn-random-init-old", |v| {
        v["checkpoint"] = json!("");
        v["settings"] = json!({"k": 10.0, "temperature": 0.07});
        v["data_fingerprints"] = json!(["train-before", "test-now"]);
    });
    // ... nor one on its images at other settings
    eval(&runs, "tscale", "knn-raw-pixels-old", "knn", "raw-pixels", 13.0, None, json!({}));
    patch_eval(&runs, "tscale", "knn-raw-pixels-old", |v| {
        v["checkpoint"] = json!("");
        v["settings"] = json!({"k": 20.0, "temperature": 0.07});
        v["data_fingerprints"] = json!(["train-now", "test-now"]);
    });
    let stages = [
        "tscale-targets-scale-0.1-0.2/pretrain-aaaaaaaaaaaa",
        "tscale-targets-scale-0.15-0.2/pretrain-111111111111",
        "tscale/eval-knn-ijepa-1b-abcdef012345",
        "tscale/eval-linear-ijepa-1-abcdef012345",
        "tscale/eval-knn-random-init-abcdef012345",
        "tscale/eval-knn-raw-pixels-abcdef012345",
        "tscale/eval-linear-random-init-abcdef012345",
        "tscale/eval-linear-raw-pixels-abcdef012345",
    ];
    let experiments = ["tscale", "tscale-targets-scale-0.1-0.2", "tscale-targets-scale-0.15-0.2"];
    let planned = json!({"file": "exp/tscale.kdl", "experiments": experiments, "stages": stages});
    write_json(&runs.join("tscale/planned-tscale.json"), &planned);
    // another file's plan reads the 0.2 point's pretraining and its evaluations
    // (a file name holding HTML and a backtick: shown as written in the prose of both formats)
    let other = json!({"file": "exp/tscale-<i>`0.2.kdl", "experiments": ["tscale-targets-scale-0.2-0.2"],
                       "stages": ["tscale-targets-scale-0.2-0.2/pretrain-222222222222", "tscale/eval-knn-ijepa-2-abcdef012345", "tscale/eval-linear-ijepa-2-abcdef012345"]});
    write_json(&runs.join("tscale/planned-tscale-0.2.json"), &other);
    // a study with no record is shown whole
    fake_runs(&runs);
    let reg = load_registry(&runs).unwrap();
    let abl = rows(&ablation_table(&reg, "tscale"));
    let at = |value: &str| find(&abl, &[("value", value)]).iter().map(|r| (r["protocol"].clone(), r["method"].clone(), r["top1"].clone())).collect::<Vec<_>>();
    let ours = |p: &str, t: &str| (p.to_string(), "I-JEPA (ours)".to_string(), t.to_string());
    assert_eq!(at("0.15-0.2"), [ours("knn", "50.0"), ours("linear", "73.5")], "{abl:?}");
    assert_eq!(at("0.1-0.2"), [("none (pretraining done, not evaluated)".to_string(), String::new(), String::new())], "{abl:?}");
    assert_eq!(at("0.2-0.2"), [("knn".to_string(), "I-JEPA (official.pth.tar)".to_string(), "33.0".to_string()), ours("knn", "61.0"), ours("linear", "72.0")], "{abl:?}");
    let panel = sweep_panel(&reg, "tscale");
    assert_eq!(series(&panel, "I-JEPA (ours) · knn").points, [(0.0, 50.0), (1.0, 61.0)], "the figure's points are the table's");
    let left: Vec<&String> = reg.unreadable.iter().filter(|w| w.contains("planned other stages for")).collect();
    assert_eq!(left.len(), 6, "{left:?}");
    assert!(reg.evals.iter().any(|e| e.dir.ends_with("eval-knn-raw-pixels-given-abcdef012345")), "the given checkpoint's baseline is kept");
    assert!(left.iter().any(|w| w.contains("eval-knn-raw-pixels-old-abcdef012345")), "{left:?}");
    for stage in ["tscale-targets-scale-0.1-0.2/pretrain-000000000000", "eval-knn-random-init-old-abcdef012345", "eval-knn-ijepa-0-abcdef012345", "eval-linear-ijepa-0-abcdef012345", "eval-knn-ijepa-1-abcdef012345"] {
        assert!(left.iter().any(|w| w.contains(stage) && w.contains(": the last `ijepa run` of exp/tscale.kdl planned other stages for tscale")), "{stage}: {left:?}");
    }
    // the points of two files that name one experiment are pooled in its sweep table and seed
    // means: the report says so where they are (two files of other `epochs` read as seeds of
    // one setting)
    assert_eq!(reg.files_pooled("tscale"), ["exp/tscale-<i>`0.2.kdl", "exp/tscale.kdl"]);
    let out = tmp.path().join("rep");
    ijepa_reports::write_report(&reg, &out).unwrap();
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Caution: the points of 2 files that name this experiment (exp/tscale-&lt;i&gt;\u{2cb}0.2.kdl, exp/tscale.kdl) are pooled here"), "{md}");
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("(exp/tscale-&lt;i&gt;\u{2cb}0.2.kdl, exp/tscale.kdl)") && !html.contains("<i>"), "{html}");
    // (the sweep's baselines are not the linear table's: its one experiment names no column)
    let lin = rows(&linear_table(&reg));
    let ours: Vec<_> = lin.iter().filter(|r| r["source"] == "ours").collect();
    assert!(!ours.is_empty() && ours.iter().all(|r| r.get("experiment").is_none_or(|e| e == "fmnist")), "the study without a record: {lin:?}");
    // a damaged record (its file unknown) shows its study whole, as it says: the other
    // records of the study hid the damaged one's current stages as earlier versions
    fs::write(runs.join("tscale/planned-broken-0123abcd.json"), "garbage{").unwrap();
    let reg = load_registry(&runs).unwrap();
    assert!(reg.unreadable.iter().any(|w| w.contains("planned-broken-0123abcd.json") && w.contains("its study is shown whole")), "{:?}", reg.unreadable);
    assert!(!reg.unreadable.iter().any(|w| w.contains("planned other stages for")), "{:?}", reg.unreadable);
    // (and no record read: no file known, nothing said)
    assert!(reg.files_pooled("tscale").is_empty());
}

/// A baseline a plain file and its sweep share (one stage, whose record has the values of the
/// file that ran it first) is filed under each file's values in the folder's report, as each
/// file's record of its plan places it: it was shown under the first file alone (the sweep's
/// seed mean of the baseline counted one seed, or the plain file's table had no baseline row),
/// and the plain file was named as pooling the sweep's points. A record of an earlier version,
/// which does not say, leaves the baseline where its record files it.
#[test]
fn a_baseline_a_plain_file_and_its_sweep_share_is_filed_under_each() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // the plain file ran first: the shared seed-0 baseline records no values
    eval(&runs, "sd", "linear-random-init-0", "linear", "random-init", 17.2, None, json!({}));
    eval(&runs, "sd", "linear-random-init-1", "linear", "random-init", 16.35, None, json!({"seed": "1"}));
    let (shared, other) = ("sd/eval-linear-random-init-0-abcdef012345", "sd/eval-linear-random-init-1-abcdef012345");
    let plain = json!({"file": "base.kdl", "experiments": ["sd"], "stages": [shared], "varied": {}});
    write_json(&runs.join("sd/planned-base-00000001.json"), &plain);
    let sweep = json!({"file": "seeds.kdl", "experiments": ["sd", "sd-seed-0", "sd-seed-1"], "stages": [shared, other],
                       "varied": {shared: {"seed": "0"}, other: {"seed": "1"}}});
    write_json(&runs.join("sd/planned-seeds-00000002.json"), &sweep);
    let placed = |reg: &ijepa_reports::Registry| {
        let mut v: Vec<(String, String)> = reg.evals.iter().map(|e| (e.dir.file_name().unwrap().to_string_lossy().into_owned(), serde_json::to_string(&e.record.varied).unwrap())).collect();
        v.sort();
        v
    };
    let reg = load_registry(&runs).unwrap();
    let (zero, one) = ("eval-linear-random-init-0-abcdef012345".to_string(), "eval-linear-random-init-1-abcdef012345".to_string());
    assert_eq!(placed(&reg), [(zero.clone(), "{\"seed\":\"0\"}".to_string()), (zero.clone(), "{}".to_string()), (one.clone(), "{\"seed\":\"1\"}".to_string())]);
    // (the sweep's file alone files the seeds: the plain one pools none of its points)
    assert!(reg.files_pooled("sd").is_empty(), "{:?}", reg.files_pooled("sd"));
    let seeds = rows(&ijepa_reports::seeds_table(&reg, "sd"));
    let random = find(&seeds, &[("method", "random init")]);
    assert!(random.len() == 1 && random[0]["seeds"] == "2" && random[0]["mean"] == "16.775", "{seeds:?}");
    // the sweep's record of an earlier version, which does not say: its baseline keeps the
    // values it recorded (it was moved under the plain file's alone)
    patch_eval(&runs, "sd", "linear-random-init-0", |v| v["varied"] = json!({"seed": "0"}));
    write_json(&runs.join("sd/planned-seeds-00000002.json"), &json!({"file": "seeds.kdl", "experiments": ["sd", "sd-seed-0", "sd-seed-1"], "stages": [shared, other]}));
    let reg = load_registry(&runs).unwrap();
    assert_eq!(placed(&reg), [(zero.clone(), "{\"seed\":\"0\"}".to_string()), (zero.clone(), "{}".to_string()), (one.clone(), "{\"seed\":\"1\"}".to_string())]);
    patch_eval(&runs, "sd", "linear-random-init-0", |v| v["varied"] = json!({}));
    // records of an earlier version say nothing of values: as recorded
    write_json(&runs.join("sd/planned-base-00000001.json"), &json!({"file": "base.kdl", "experiments": ["sd"], "stages": [shared]}));
    write_json(&runs.join("sd/planned-seeds-00000002.json"), &json!({"file": "seeds.kdl", "experiments": ["sd", "sd-seed-0", "sd-seed-1"], "stages": [shared, other]}));
    let reg = load_registry(&runs).unwrap();
    assert_eq!(placed(&reg), [(zero, "{}".to_string()), (one, "{\"seed\":\"1\"}".to_string())]);
}

/// A sweep of evaluation settings alone whose one shared pretraining diverged: a row for each
/// point, by its settings (the pretraining's `varied` is empty: it had none, and no section),
/// in the order of the values; and a row for a point planned and never begun.
#[test]
fn a_diverged_pretraining_shared_by_points_is_a_row_for_each() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain(&runs, "kk-knn-k-5", "999999999999", [0.15, 0.2], 0.05);
    patch_json(&runs.join("kk-knn-k-5/pretrain-999999999999/manifest.json"), |m| {
        m["status"] = json!("failed");
        m["diverged_at"] = json!(2);
        m["study"] = json!("kk");
        m["points"] = json!([{"eval.knn.k": "5"}, {"eval.knn.k": "10"}]);
    });
    let reg = load_registry(&runs).unwrap();
    let abl = rows(&ablation_table(&reg, "kk"));
    let got: Vec<(&str, &str, &str)> = abl.iter().map(|r| (r["key"].as_str(), r["value"].as_str(), r["protocol"].as_str())).collect();
    assert_eq!(got, [("eval.knn.k", "5", "none (pretraining diverged at step 2)"), ("eval.knn.k", "10", "none (pretraining diverged at step 2)")], "{abl:?}");
    // a point the file's last run planned and never reached (stopped before its pretraining
    // began: no folder) is a row too, where it was in no table; not a baseline's
    let e = |h: &str| format!("kk/eval-knn-ijepa-{h}");
    write_json(
        &runs.join("kk/planned-kk-00000001.json"),
        &json!({"file": "kk.kdl", "experiments": ["kk", "kk-knn-k-5", "kk-knn-k-3"],
                "stages": ["kk-knn-k-5/pretrain-999999999999", e("111111111111"), e("222222222222"), "kk-knn-k-3/pretrain-333333333333", e("444444444444"), "kk/eval-knn-raw-pixels-555555555555"],
                "varied": {e("111111111111"): {"eval.knn.k": "5"}, e("222222222222"): {"eval.knn.k": "10"}, e("444444444444"): {"eval.knn.k": "3"}, "kk/eval-knn-raw-pixels-555555555555": {"eval.knn.k": "30"}},
                "reads": {e("111111111111"): "kk-knn-k-5/pretrain-999999999999", e("222222222222"): "kk-knn-k-5/pretrain-999999999999", e("444444444444"): "kk-knn-k-3/pretrain-333333333333"}}),
    );
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "kk"));
    let got: Vec<(&str, &str, &str)> = abl.iter().map(|r| (r["key"].as_str(), r["value"].as_str(), r["protocol"].as_str())).collect();
    assert_eq!(got, [("eval.knn.k", "3", "none (pretraining not started)"), ("eval.knn.k", "5", "none (pretraining diverged at step 2)"), ("eval.knn.k", "10", "none (pretraining diverged at step 2)")], "{abl:?}");
    // a point added to the sweep that shares the pretraining (which never named it): its
    // pretraining's state, not "not started"
    let mut planned: serde_json::Value = serde_json::from_str(&fs::read_to_string(runs.join("kk/planned-kk-00000001.json")).unwrap()).unwrap();
    planned["reads"][e("444444444444")] = json!("kk-knn-k-5/pretrain-999999999999");
    write_json(&runs.join("kk/planned-kk-00000001.json"), &planned);
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "kk"));
    let got: Vec<(&str, &str)> = abl.iter().map(|r| (r["value"].as_str(), r["protocol"].as_str())).collect();
    assert_eq!(got, [("3", "none (pretraining diverged at step 2)"), ("5", "none (pretraining diverged at step 2)"), ("10", "none (pretraining diverged at step 2)")], "{abl:?}");
    // a record of an earlier version, which does not say what an evaluation reads: no claim
    planned.as_object_mut().unwrap().remove("reads");
    write_json(&runs.join("kk/planned-kk-00000001.json"), &planned);
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), "kk"));
    assert_eq!(abl.iter().map(|r| r["value"].as_str()).collect::<Vec<_>>(), ["5", "10"], "{abl:?}");
}

/// A sweep none of whose points was evaluated (all diverged, or `run --only` pretrained them)
/// is still one study: its sweep table lists each point, its figures draw their runs, and no
/// point is an experiment of its own; a point's run evaluated by the plain file (which takes
/// the run of its settings) is no "not evaluated" row.
#[test]
fn a_study_without_evaluations_is_still_one_study() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (i, lr) in ["1e8", "1e9"].into_iter().enumerate() {
        let point = format!("div-lr-peak-{lr}");
        let hash = format!("{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}{i}");
        pretrain(&runs, &point, &hash, [0.15, 0.2], 0.05);
        patch_json(&runs.join(&point).join(format!("pretrain-{hash}/manifest.json")), |m| {
            m["status"] = json!("failed");
            m["diverged_at"] = json!(2);
            m["study"] = json!("div");
            m["varied"] = json!({"optimizer.lr.peak": lr});
        });
    }
    let reg = load_registry(&runs).unwrap();
    assert!(reg.experiments().contains(&"div".to_string()), "{:?}", reg.experiments());
    let abl = rows(&ablation_table(&reg, "div"));
    assert_eq!(abl.iter().filter(|r| r["protocol"] == "none (pretraining diverged at step 2)").count(), 2, "{abl:?}");
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let html = fs::read_to_string(&files.html).unwrap();
    let ids: Vec<&str> = html.split("<figure id=\"fig-").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(ids, ["loss-div", "schedules-div"], "the study's figures, none of the points' own");

    // the plain file's evaluation of a point's run: that point is evaluated
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain(&runs, "tb", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    patch_json(&runs.join("tb/pretrain-aaaaaaaaaaaa/manifest.json"), |m| {
        m["study"] = json!("tb");
        m["varied"] = json!({"optimizer.lr.peak": "1e-3"});
    });
    eval(&runs, "tb", "knn-ijepa", "knn", "ijepa", 43.7, None, json!({}));
    patch_eval(&runs, "tb", "knn-ijepa", |v| v["pretrain_dir"] = json!("runs/tb/pretrain-aaaaaaaaaaaa"));
    let reg = load_registry(&runs).unwrap();
    assert_eq!(ablation_table(&reg, "tb").height(), 0, "{:?}", rows(&ablation_table(&reg, "tb")));
}

/// The report in headless Chromium (scripts/check-report.sh): loads without console errors,
/// fetches nothing, shows every figure. Runs where Chromium is installed; CI installs it and
/// sets IJEPA_REQUIRE_CHROMIUM=1, so there a missing browser fails instead of skipping.
#[test]
fn report_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    fake_runs(&runs);
    study_runs(&runs);
    let reg = load_registry(&runs).unwrap();
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-report.sh");
    let shot = tmp.path().join("shot.png");
    let o = std::process::Command::new("bash").arg(&script).arg(&files.html).arg(&shot).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(3) && std::env::var_os("IJEPA_REQUIRE_CHROMIUM").is_none() {
        eprintln!("skipped: {stderr}");
        return;
    }
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("12 figures shown"), "{stderr}");
    assert_eq!(&fs::read(&shot).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // and the check can fail: a reference to a file beside the report is caught
    let html = fs::read_to_string(&files.html).unwrap().replacen("</body>", "<img src=\"plots/loss-fmnist.png\"></body>", 1);
    let broken = tmp.path().join("out/broken.html");
    fs::write(&broken, html).unwrap();
    let o = std::process::Command::new("bash").arg(&script).arg(&broken).arg(&shot).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("loss-fmnist.png"), "{stderr}");
}

/// A malformed `eval.json` leaves its folder out of the report, named with the cause; every
/// other run is still read and reported.
#[test]
fn malformed_eval_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let whole = load_registry(tmp.path()).unwrap();
    assert!(whole.unreadable.is_empty());
    let bad = tmp.path().join("fmnist/eval-broken-000000000000/eval.json");
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::write(
        &bad,
        r#"{"experiment": "fmnist", "protocol": "linear", "top1": "#,
    )
    .unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.unreadable.len(), 1, "{:?}", reg.unreadable);
    assert!(reg.unreadable[0].contains("eval-broken-000000000000/eval.json: invalid JSON: "), "{:?}", reg.unreadable);
    assert_eq!((reg.evals.len(), reg.pretrains.len()), (whole.evals.len(), whole.pretrains.len()));
    // JSON that is no record (a `null` where a number is) is said to be so, not "invalid JSON"
    let null = tmp.path().join("fmnist/eval-null-000000000000/eval.json");
    fs::create_dir_all(null.parent().unwrap()).unwrap();
    fs::write(&null, r#"{"experiment": "fmnist", "protocol": "linear", "top1": null}"#).unwrap();
    let with_null = load_registry(tmp.path()).unwrap();
    let said = with_null.unreadable.iter().find(|u| u.contains("eval-null-000000000000")).expect("named");
    assert!(said.contains("eval.json: not a valid record: invalid type: null, expected f64"), "{said}");
    fs::remove_dir_all(null.parent().unwrap()).unwrap();
    // the report is written, and says what it left out
    let out = tmp.path().join("out");
    let files = write_report(&reg, &out).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("Left out: 1 stage folder") && md.contains("eval-broken-000000000000/eval.json"), "{md}");
    assert!(fs::read_to_string(&files.html).unwrap().contains("Left out: 1 stage folder"));
    // an evaluation that never wrote its record (it failed) is named too, not silently absent
    fs::create_dir_all(tmp.path().join("fmnist/eval-knn-ijepa-111111111111")).unwrap();
    fs::write(tmp.path().join("fmnist/eval-knn-ijepa-111111111111/.lock"), "").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.unreadable.iter().any(|u| u.contains("eval-knn-ijepa-111111111111: an evaluation without its eval.json")), "{:?}", reg.unreadable);
}

/// A copy of a stage folder (`cp -r` to a `.bak`, a file manager's "(copy)") and an
/// `eval.json` in a folder that is not its stage's are left out and named: their rows counted
/// twice (and skewed the seed means); a stray `eval.json` in a pretraining's folder no longer
/// hides the run.
#[test]
fn copies_and_misplaced_records_are_left_out_not_counted_twice() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let whole = load_registry(tmp.path()).unwrap();
    assert!(whole.unreadable.is_empty(), "{:?}", whole.unreadable);
    let first = whole.evals[0].dir.clone();
    let exp = first.parent().unwrap().to_path_buf();
    let name = first.file_name().unwrap().to_str().unwrap().to_string();
    let copy = |to: &str| {
        fs::create_dir_all(exp.join(to)).unwrap();
        fs::copy(first.join("eval.json"), exp.join(to).join("eval.json")).unwrap();
    };
    copy(&format!("{name}.bak"));
    copy(&format!("{name} (copy)"));
    copy("backup");
    // another protocol's folder holding this record
    let other = if name.starts_with("eval-knn") { "eval-linear-ijepa-0123456789ab" } else { "eval-knn-ijepa-0123456789ab" };
    copy(other);
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.evals.len(), whole.evals.len(), "{:?}", reg.evals.iter().map(|e| &e.dir).collect::<Vec<_>>());
    assert_eq!(reg.unreadable.len(), 4, "{:?}", reg.unreadable);
    for left in [format!("{name}.bak"), format!("{name} (copy)"), "backup".to_string()] {
        assert!(reg.unreadable.iter().any(|u| u.contains(&left) && u.contains("not a stage folder's")), "{left}: {:?}", reg.unreadable);
    }
    assert!(reg.unreadable.iter().any(|u| u.contains(other) && u.contains("not of the stage its name says")), "{:?}", reg.unreadable);
    // its protocol edited in its own folder: a kNN score was shown in the linear table
    fs::remove_dir_all(exp.join(other)).unwrap();
    let text = fs::read_to_string(first.join("eval.json")).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let edited = if record["protocol"] == "knn" { "linear" } else { "knn" };
    record["protocol"] = edited.into();
    fs::write(first.join("eval.json"), record.to_string()).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.evals.len(), whole.evals.len() - 1);
    assert!(reg.unreadable.iter().any(|u| u.contains(&name) && u.contains(&format!("records the protocol `{edited}`"))), "{:?}", reg.unreadable);
    fs::write(first.join("eval.json"), text).unwrap();
    // a stray eval.json in a pretraining's folder: the run stays, the file is named
    let run = whole.pretrains[0].dir.clone();
    fs::copy(first.join("eval.json"), run.join("eval.json")).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), whole.pretrains.len());
    assert!(reg.unreadable.iter().any(|u| u.contains(&format!("{}/eval.json", run.display())) && u.contains("ignored")), "{:?}", reg.unreadable);
    fs::remove_file(run.join("eval.json")).unwrap();
    // a pretraining's folder copied under another stage's name (no plan record to tell): its
    // manifest records the stage it is, so it is left out, not counted twice
    let copied = run.with_file_name("pretrain-0123456789ab");
    assert_ne!(copied, run);
    fs::create_dir_all(&copied).unwrap();
    for f in fs::read_dir(&run).unwrap().flatten().filter(|f| f.path().is_file()) {
        fs::copy(f.path(), copied.join(f.file_name())).unwrap();
    }
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), whole.pretrains.len(), "{:?}", reg.pretrains.iter().map(|r| &r.dir).collect::<Vec<_>>());
    let own = run.file_name().unwrap().to_str().unwrap();
    assert!(reg.unreadable.iter().any(|u| u.contains("pretrain-0123456789ab") && u.contains(&format!("the record of the stage {own}"))), "{:?}", reg.unreadable);
}

/// A point renamed (`-2`: a new value took its folder name) evaluates again in its new folder
/// while its pretraining, found by hash, stays in the old one: the report of the plan keeps the
/// record in the plan's folder, where the old one, beside the pretraining, was kept as the
/// original and the plan's left out as its copy (and the plan's report then showed neither).
#[test]
fn the_plans_own_copy_of_a_renamed_point_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let whole = load_registry(&runs).unwrap();
    let old = whole.evals.iter().find(|e| e.record.pretrain_dir.is_some()).unwrap().dir.clone();
    let renamed = runs.join("tscale-2").join(old.file_name().unwrap());
    fs::create_dir_all(&renamed).unwrap();
    fs::copy(old.join("eval.json"), renamed.join("eval.json")).unwrap();
    // without a plan: the one beside its pretraining's study, as before
    let reg = load_registry(&runs).unwrap();
    assert!(reg.evals.iter().any(|e| e.dir == old) && !reg.evals.iter().any(|e| e.dir == renamed));
    // the plan's report: its own folder's
    let reg = ijepa_reports::load_registry_for(&runs, std::slice::from_ref(&renamed)).unwrap();
    assert!(reg.evals.iter().any(|e| e.dir == renamed) && !reg.evals.iter().any(|e| e.dir == old), "{:?}", reg.unreadable);
    assert!(reg.unreadable.iter().any(|u| u.contains(&old.display().to_string()) && u.contains("a copy of")), "{:?}", reg.unreadable);
}

/// A copy of a whole experiment folder (`cp -r runs/x "runs/x (copy)"`, a sweep point's
/// `.bak`) holds the same stages of the same experiment: they are left out and named, the
/// ones in the folder the run wrote kept (every row counted twice, and a seed mean skewed).
#[test]
fn a_copied_experiment_folder_is_left_out_not_counted_twice() {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let whole = load_registry(tmp.path()).unwrap();
    let exp = whole.pretrains[0].dir.parent().unwrap().to_path_buf();
    let stages = whole.evals.iter().filter(|e| e.dir.parent() == Some(exp.as_path())).count() + whole.pretrains.iter().filter(|r| r.dir.parent() == Some(exp.as_path())).count();
    // (sorted before the original: the one at home is kept, not the first by path)
    let copy = tmp.path().join(format!("0-{} (copy)", exp.file_name().unwrap().to_string_lossy()));
    copy_dir(&exp, &copy);
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!((reg.evals.len(), reg.pretrains.len()), (whole.evals.len(), whole.pretrains.len()), "{:?}", reg.unreadable);
    assert!(reg.evals.iter().all(|e| !e.dir.starts_with(&copy)) && reg.pretrains.iter().all(|r| !r.dir.starts_with(&copy)));
    assert_eq!(reg.unreadable.iter().filter(|u| u.contains("(copy)") && u.contains("its rows would count twice")).count(), stages, "{:?}", reg.unreadable);
}

/// Names from the records are shown as written in report.md: a `|`, a backslash, a line break
/// or HTML (`<script>`) neither breaks its tables nor runs in a viewer that renders HTML in
/// Markdown; a long name gives its figures file names a file system takes (one of 240
/// characters failed the whole report).
#[test]
fn odd_names_stay_text_and_long_ones_get_short_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let odd = "<script>alert(1)<\\script> a|b\\|c &amp;";
    let long = "x".repeat(240);
    for exp in [odd, long.as_str()] {
        pretrain(tmp.path(), exp, "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
        eval(tmp.path(), exp, "linear", "linear", "ijepa", 82.5, None, json!({}));
    }
    // a line break in a field a table shows
    let m = tmp.path().join(odd).join("pretrain-aaaaaaaaaaaa/manifest.json");
    let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
    v["device"] = "cpu\n| injected | row |".into();
    write_json(&m, &v);
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.unreadable.is_empty(), "{:?}", reg.unreadable);
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(!md.contains("<script") && md.contains("&lt;script&gt;alert(1)&lt;\\\\script&gt; a\\|b\\\\\\|c &amp;amp;"), "{md}");
    for table in md.split("\n\n").filter(|b| b.starts_with("| ")) {
        assert!(table.lines().all(|l| l.starts_with("| ") && l.ends_with(" |")), "{table}");
    }
    assert!(!md.contains("\n| injected") && md.contains("cpu \\| injected \\| row \\| |"), "{md}");
    for f in files.plots.iter().chain(&files.tables) {
        assert!(f.file_name().unwrap().len() < 130, "{}", f.display());
    }
}

/// A finished run's metrics.csv without a row (its header alone) is named: the run's loss and
/// schedule figures were missing without a word.
#[test]
fn a_finished_run_without_metrics_rows_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let metrics = tmp.path().join("fmnist/pretrain-aaaaaaaaaaaa/metrics.csv");
    let header = fs::read_to_string(&metrics).unwrap().lines().next().unwrap().to_string();
    fs::write(&metrics, format!("{header}\n")).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.pretrains.iter().any(|r| r.dir.ends_with("pretrain-aaaaaaaaaaaa")), "the run is still shown");
    assert!(reg.unreadable.iter().any(|u| u.contains("metrics.csv: no rows, though the run trained 40 steps")), "{:?}", reg.unreadable);
}

/// A damaged or missing file of a pretrain run is named with the file and the cause: a
/// malformed metrics row (its line) costs the run its curves, not its row (its status, steps
/// and warnings: the whole run was left out); so does a missing metrics.csv of a finished run,
/// and a missing or damaged config.json its settings (each left the run out of the report).
#[test]
fn missing_or_bad_pretrain_files_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let n = load_registry(tmp.path()).unwrap().pretrains.len();
    let metrics = tmp.path().join("fmnist/pretrain-aaaaaaaaaaaa/metrics.csv");
    fs::write(&metrics, "step,epoch,loss\n1,1,0.5\n2,1,oops\n").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains("metrics.csv") && reg.unreadable[0].contains("line 3"), "{:?}", reg.unreadable);
    assert!(reg.unreadable[0].contains("shown without its loss and schedule figures") && !reg.unreadable[0].contains("no rows"), "{:?}", reg.unreadable);
    assert_eq!(reg.pretrains.len(), n);
    let run = reg.pretrains.iter().find(|r| r.dir.ends_with("pretrain-aaaaaaaaaaaa")).expect("the run is still shown");
    assert!(run.metrics.is_empty());
    // a step or epoch that is no count (read as 0 before) is named
    for (bad, what) in [("-5,1,0.4", "`-5` in column `step` is not a count"), ("2,NaN,0.4", "`NaN` in column `epoch` is not a count"), ("2.5,1,0.4", "`2.5` in column `step`")] {
        fs::write(&metrics, format!("step,epoch,loss\n1,1,0.5\n{bad}\n3,1,0.3\n")).unwrap();
        let reg = load_registry(tmp.path()).unwrap();
        assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains(what) && reg.unreadable[0].contains("line 3"), "{:?}", reg.unreadable);
    }
    fs::remove_file(&metrics).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(
        reg.unreadable.len() == 1 && reg.unreadable[0].contains("pretrain-aaaaaaaaaaaa/metrics.csv: missing (the run is shown without its loss and schedule figures)"),
        "{:?}",
        reg.unreadable
    );
    assert_eq!(reg.pretrains.len(), n);
    let config = tmp.path().join("fmnist/pretrain-aaaaaaaaaaaa/config.json");
    let text = fs::read_to_string(&config).unwrap();
    for (damage, what) in [(Some(&text[..text.len() / 2]), "config.json"), (Some("null"), "config.json: not a JSON object"), (None, "config.json: missing")] {
        match damage {
            Some(t) => fs::write(&config, t).unwrap(),
            None => fs::remove_file(&config).unwrap(),
        }
        let reg = load_registry(tmp.path()).unwrap();
        assert_eq!(reg.pretrains.len(), n, "{:?}", reg.unreadable);
        let run = reg.pretrains.iter().find(|r| r.dir.ends_with("pretrain-aaaaaaaaaaaa")).expect("the run is still shown");
        assert!(run.config.is_none());
        assert!(reg.unreadable.iter().any(|u| u.contains(what) && u.contains("shown without its settings; the next `ijepa run` of its file writes it again")), "{:?}", reg.unreadable);
    }
    // (and the report is written, its row without the settings)
    write_report(&load_registry(tmp.path()).unwrap(), &tmp.path().join("rep")).unwrap();
    // another run's metrics copied in, with rows past the 40 steps this run trained: not drawn
    // as its curves (they were, without a word)
    let rows: String = (1..=60).map(|s| format!("{s},1,0.5\n")).collect();
    fs::write(&metrics, format!("step,epoch,loss\n{rows}")).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    let run = reg.pretrains.iter().find(|r| r.dir.ends_with("pretrain-aaaaaaaaaaaa")).expect("the run is still shown");
    assert!(run.metrics.is_empty());
    assert!(reg.unreadable.iter().any(|u| u.contains("metrics.csv: rows up to step 60, past the run's 40 steps (another run's file?)")), "{:?}", reg.unreadable);
    let monitor = tmp.path().join("fmnist/pretrain-aaaaaaaaaaaa/monitor.csv");
    fs::write(&monitor, "step,epoch,encoder,knn_top1,rankme,spread,seconds\n0,0,target,40,3,0.2,1\n80,2,target,60,20,0.3,1\n").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.unreadable.iter().any(|u| u.contains("monitor.csv: rows past the run's 40 steps")), "{:?}", reg.unreadable);
    fs::write(&monitor, "step,epoch,encoder,knn_top1,rankme,spread,seconds\n0,0,target,40,3,0.2,1\n40,1,target,60,20,0.3,1\n").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert!(!reg.unreadable.iter().any(|u| u.contains("monitor.csv")), "{:?}", reg.unreadable);
    // a runs folder that cannot be read at all is still an error
    assert!(load_registry(&tmp.path().join("absent")).is_err());
}

/// A damaged monitor.csv costs the run its monitor rows, not its place in the report; a
/// pretraining folder without its manifest is named, not silently skipped.
#[test]
fn a_bad_monitor_keeps_the_run_and_a_lost_manifest_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    let n = load_registry(tmp.path()).unwrap().pretrains.len();
    let run = tmp.path().join("fmnist/pretrain-aaaaaaaaaaaa");
    fs::write(run.join("monitor.csv"), "epoch,step\n0,0\n").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), n, "{:?}", reg.unreadable);
    assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains("monitor.csv") && reg.unreadable[0].contains("without its monitor rows"), "{:?}", reg.unreadable);
    // a folder in its place is named too (its figure vanished without a word)
    fs::remove_file(run.join("monitor.csv")).unwrap();
    fs::create_dir(run.join("monitor.csv")).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), n, "{:?}", reg.unreadable);
    assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains("monitor.csv") && reg.unreadable[0].contains("without its monitor rows"), "{:?}", reg.unreadable);
    // ... and a header alone (a finished run monitors its epoch 0 at least: its curves went
    // without a word)
    fs::remove_dir(run.join("monitor.csv")).unwrap();
    fs::write(run.join("monitor.csv"), "step,epoch,encoder,knn_top1,rankme,spread,seconds\n").unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), n, "{:?}", reg.unreadable);
    assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains("monitor.csv: no rows, though the run finished (the run is shown without its monitor rows)"), "{:?}", reg.unreadable);
    // ... and none at all, where the run's config monitors it (deleted: its figure went, its
    // warnings stayed, without a word); a run that monitors nothing has none to miss
    fs::remove_file(run.join("monitor.csv")).unwrap();
    assert!(load_registry(tmp.path()).unwrap().unreadable.is_empty());
    let mut config: serde_json::Value = serde_json::from_str(&fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    config["monitor"] = json!({"every": 1, "images": 2000, "k": 20, "rank_floor": 2.0, "spread_floor": 0.05});
    write_json(&run.join("config.json"), &config);
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), n, "{:?}", reg.unreadable);
    assert!(reg.unreadable.len() == 1 && reg.unreadable[0].contains("monitor.csv: missing, though the run's config.json monitors it"), "{:?}", reg.unreadable);
    fs::remove_file(run.join("manifest.json")).unwrap();
    let reg = load_registry(tmp.path()).unwrap();
    assert_eq!(reg.pretrains.len(), n - 1);
    assert!(reg.unreadable.iter().any(|u| u.contains("pretrain-aaaaaaaaaaaa/manifest.json") && u.contains("missing")), "{:?}", reg.unreadable);
}

/// `ijepa-report` is `ijepa report` without libtorch: the same defaults (`runs`,
/// `reports-out`), the same line on stdout, the same refusals.
#[test]
fn binary_writes_the_report_as_ijepa_report_does() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    fake_runs(&runs);
    let out = tmp.path().join("rep");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report"))
        .arg(&runs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.trim(), format!("report of {} written to {}: {} and report.html, 5 tables, 14 plots", runs.display(), out.display(), out.join("report.md").display()));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| I-JEPA | ViT-H/14 | 300 | ImageNet-1k |  | 79.3 | paper |"), "{md}");
    // a closed stdout (`ijepa-report | true`) is no panic: the report is written, exit 0
    let piped = tmp.path().join("piped");
    for args in [vec![runs.as_os_str(), "--out".as_ref(), piped.as_os_str()], vec!["--help".as_ref()]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{args:?}: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    }
    assert!(piped.join("report.md").is_file());
    // the defaults: `runs` of the working folder, into `reports-out`
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).current_dir(tmp.path()).output().unwrap();
    assert!(o.status.success() && tmp.path().join("reports-out/report.md").is_file(), "{}", String::from_utf8_lossy(&o.stderr));
    // as `ijepa report`: never into the runs folder or anywhere inside it (it wrote there)
    for into in [runs.clone(), runs.join("fmnist"), runs.join("new")] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&runs).arg("--out").arg(&into).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains("the runs folder, inside it or inside a stage folder"), "{err}");
        assert!(!into.join("report.md").exists());
    }
    // a study's report stage marker in the folder goes: this report replaces that stage's
    std::fs::write(out.join("report-stage.json"), "{}").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&runs).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success() && !out.join("report-stage.json").exists(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report"))
        .arg(tmp.path().join("nope"))
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("nope"));
    // a file for --out is refused naming it, as `ijepa report` says it ("FILE/report-stage.json:
    // Not a directory")
    let file = tmp.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&runs).arg("--out").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&format!("{}: it is a file where a folder is needed: move it aside", file.display())), "{err}");
    // a runs folder (or --out) whose name is not UTF-8 is a folder (the arguments panicked)
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = tmp.path().join(std::ffi::OsStr::from_bytes(b"runs-\xff"));
        std::fs::rename(&runs, &odd).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&odd).arg("--out").arg(tmp.path().join(std::ffi::OsStr::from_bytes(b"rep-\xff"))).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // ... as `--out=DIR` too
        let mut eq = std::ffi::OsString::from("--out=");
        eq.push(tmp.path().join(std::ffi::OsStr::from_bytes(b"rep2-\xff")));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&odd).arg(&eq).output().unwrap();
        assert!(o.status.success() && tmp.path().join(std::ffi::OsStr::from_bytes(b"rep2-\xff")).join("report.md").is_file(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::rename(&odd, &runs).unwrap();
    }
    // a second --out is refused, as `ijepa report` refuses it (the last one won, silently)
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&runs).args(["--out", "a", "--out"]).arg(tmp.path().join("b")).output().unwrap();
    assert!(o.status.code() == Some(2) && String::from_utf8_lossy(&o.stderr).starts_with("error: --out given twice") && !tmp.path().join("b").exists());
    // an empty --out (`--out=` too) is refused: it wrote the report into the working folder
    for args in [&["--out", ""][..], &["--out="]] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).current_dir(&runs).arg(".").args(args).output().unwrap();
        assert!(o.status.code() == Some(2) && String::from_utf8_lossy(&o.stderr).starts_with("error: --out needs a folder") && !runs.join("report.md").exists(), "{o:?}");
    }
    // a failed write to stdout is an error, as `ijepa report`'s (it exited 0)
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg("--help").stdout(full).output().unwrap();
        assert!(o.status.code() == Some(1) && String::from_utf8_lossy(&o.stderr).contains("error: writing the standard output: "), "{o:?}");
    }
    // `--version` as `ijepa --version`, and a runs folder named `-...` after `--`
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg("--version").output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("ijepa-report "), "{o:?}");
    let dashed = tmp.path().join("-runs");
    std::fs::rename(&runs, &dashed).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).current_dir(tmp.path()).args(["--out", "d", "--", "-runs"]).output().unwrap();
    assert!(o.status.success() && tmp.path().join("d/report.md").is_file(), "{}", String::from_utf8_lossy(&o.stderr));
    // ... and one named `--out=x` (it was read as `--out x`)
    let named = tmp.path().join("--out=x");
    std::fs::rename(&dashed, &named).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).current_dir(tmp.path()).args(["--out", "e", "--", "--out=x"]).output().unwrap();
    assert!(o.status.success() && tmp.path().join("e/report.md").is_file(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&named, &runs).unwrap();
    // `--out=DIR` is `--out DIR`, as `ijepa report` reads it
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&runs).arg(format!("--out={}", tmp.path().join("c").display())).output().unwrap();
    assert!(o.status.success() && tmp.path().join("c/report.md").is_file(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn minimal_eval_with_nulls_loads() {
    let tmp = tempfile::tempdir().unwrap();
    write_json(
        &tmp.path().join("x/eval-knn-000000000000/eval.json"),
        &json!({"experiment": "x", "protocol": "knn", "model": "ijepa", "method": "I-JEPA (ours)",
                "arch": "ViT-96x4/4", "top1": 70.5, "varied": null, "curve": null, "sweep": null}),
    );
    let reg = load_registry(tmp.path()).unwrap();
    assert!(reg.evals[0].record.varied.is_empty() && reg.evals[0].record.curve.is_empty());
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    assert!(files.plots.is_empty());
    assert!(fs::read_to_string(&files.markdown)
        .unwrap()
        .contains("| I-JEPA (ours) | ViT-96x4/4 |  |  |  | 70.5 | ours |"));
}

/// A run killed without a word (SIGKILL, the out-of-memory killer) leaves its manifest
/// `running`; the runs table says `killed` once no process on this host holds the folder,
/// and `running` while one does.
#[test]
fn a_running_manifest_whose_process_is_gone_shows_as_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    pretrain(runs, "fmnist", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    let dir = runs.join("fmnist").join("pretrain-aaaaaaaaaaaa");
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["status"] = json!("running");
    // (the manifest's count, written at its start: it has no checkpoint)
    m["seconds"] = json!(1.782e-6);
    write_json(&path, &m);
    let cells = |runs: &Path| {
        let reg = load_registry(runs).unwrap();
        let table = rows(&ijepa_reports::tables::pretrain_table(&reg));
        (table[0]["status"].clone(), table[0]["minutes"].clone())
    };
    let status = |runs: &Path| cells(runs).0;
    let lock = |pid: u32| {
        fs::write(
            dir.join(ijepa_schema::LOCK),
            ijepa_schema::lock_text(pid, &ijepa_schema::host_name(), 0, "ijepa run x.kdl"),
        )
        .unwrap()
    };
    lock(std::process::id());
    assert_eq!(status(runs), "running");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    lock(gone);
    assert_eq!(status(runs), "killed");
    // killed before its first checkpoint, its manifest counted only its start (the cell said
    // 2.97e-8 minutes); after one, the time up to it
    assert_eq!(cells(runs).1, "");
    m["checkpoints"] = json!([{"file": "latest.safetensors", "step": 10, "sha256": "00"}]);
    m["seconds"] = json!(90.0);
    write_json(&path, &m);
    assert_eq!(cells(runs), ("killed".to_string(), "1.5".to_string()));
}

/// A grid over a pretraining setting and an evaluation setting (`vary "optimizer.lr.peak"`,
/// `vary "eval.knn.k"`, every combination measured): the x axis is the setting of the most
/// values (the learning rate, in numeric order even for values written with an exponent), each
/// k a line of its own colour (one line through the six combinations went from k=5's largest
/// rate to k=10's smallest); a baseline that depends on k is drawn beside each k's line in its
/// colour, one that depends on nothing swept as a grey level; no baseline joins the encoder's
/// lines. A zip of the same values (settings varied together) keeps one line through them.
#[test]
fn a_sweep_over_an_eval_setting_draws_its_baselines_against_the_points() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "lrk";
    for (i, (lr, k, top1)) in [("1e-3", "5", 31.0), ("1e-4", "5", 20.0), ("5e-4", "5", 28.0), ("1e-3", "10", 33.0), ("1e-4", "10", 21.0), ("5e-4", "10", 29.0)]
        .into_iter()
        .enumerate()
    {
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1, None, json!({"optimizer.lr.peak": lr, "eval.knn.k": k}));
    }
    eval(&runs, study, "knn-raw-pixels-5", "knn", "raw-pixels", 69.7, None, json!({"eval.knn.k": "5"}));
    eval(&runs, study, "knn-raw-pixels-10", "knn", "raw-pixels", 68.1, None, json!({"eval.knn.k": "10"}));
    eval(&runs, study, "knn-random-init", "knn", "random-init", 15.0, None, json!({}));
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let sweep = figs.iter().find(|f| f.stem == "sweep-lrk").expect("a sweep figure");
    assert_eq!(sweep.figure.panels.len(), 1, "one panel per protocol");
    let panel = &sweep.figure.panels[0];
    let ijepa_reports::plot::XAxis::Categories(values) = &panel.x else { panic!("categorical x") };
    assert_eq!(values, &["1e-4", "5e-4", "1e-3"]);
    assert_eq!((panel.x_label.as_str(), panel.title.as_str()), ("optimizer.lr.peak", "knn"));
    let line = |label: &str| series(panel, label);
    let (k5, k10) = (line("I-JEPA (ours) · eval.knn.k=5"), line("I-JEPA (ours) · eval.knn.k=10"));
    assert_eq!(k5.points, [(0.0, 20.0), (1.0, 28.0), (2.0, 31.0)]);
    assert_eq!(k10.points, [(0.0, 21.0), (1.0, 29.0), (2.0, 33.0)]);
    assert_ne!(k5.colour, k10.colour);
    let pixels = (line("raw pixels · eval.knn.k=5"), line("raw pixels · eval.knn.k=10"));
    assert_eq!(pixels.0.points, [(0.0, 69.7), (1.0, 69.7), (2.0, 69.7)]);
    assert_eq!(pixels.1.points, [(0.0, 68.1), (1.0, 68.1), (2.0, 68.1)]);
    assert_eq!((pixels.0.colour, pixels.1.colour), (k5.colour, k10.colour));
    let random = line("random init");
    assert_eq!(random.points, [(0.0, 15.0), (2.0, 15.0)]);
    assert!(![k5.colour, k10.colour].contains(&random.colour));
    assert!(sweep.caption.contains("one colour per value of `eval.knn.k`"), "{}", sweep.caption);
    ijepa_reports::plot::render(&sweep.figure).unwrap();

    // a combination with no result (a diverged point): the grid keeps its lines, that one
    // with a gap (it fell back to one line through the combinations)
    let runs = tmp.path().join("gap");
    for (i, (lr, k, top1)) in [("1e-3", "5", 31.0), ("1e-4", "5", 20.0), ("5e-4", "5", 28.0), ("1e-3", "10", 33.0), ("1e-4", "10", 21.0)].into_iter().enumerate() {
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1, None, json!({"optimizer.lr.peak": lr, "eval.knn.k": k}));
    }
    let panel = sweep_panel(&load_registry(&runs).unwrap(), study);
    assert_eq!(panel.x, ijepa_reports::plot::XAxis::Categories(vec!["1e-4".into(), "5e-4".into(), "1e-3".into()]));
    let gap = &series(&panel, "I-JEPA (ours) · eval.knn.k=10").points;
    assert_eq!((gap.len(), gap[0], gap[2]), (3, (0.0, 21.0), (2.0, 33.0)));
    assert!(gap[1].1.is_nan(), "{gap:?}");
    // pixels that depend on the setting along x alone: one grey line, not one per line drawn
    // each over the other; and the paper's Table 8 triangles at the mask scales
    let runs = tmp.path().join("by-x");
    for (i, (scale, k, top1)) in [("0.125 0.2", "5", 30.0), ("0.125 0.2", "10", 31.0), ("0.125 0.2", "20", 32.0), ("0.15 0.2", "5", 20.0), ("0.15 0.2", "10", 21.0), ("0.15 0.2", "20", 22.0)]
        .into_iter()
        .enumerate()
    {
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1, None, json!({"mask.targets.scale": scale, "eval.knn.k": k}));
    }
    for (i, (k, top1)) in [("5", 60.0), ("10", 61.0), ("20", 62.0)].into_iter().enumerate() {
        eval(&runs, study, &format!("knn-raw-pixels-{i}"), "knn", "raw-pixels", top1, None, json!({"eval.knn.k": k}));
    }
    let reg = load_registry(&runs).unwrap();
    let panel = sweep_panel(&reg, study);
    assert_eq!(panel.x_label, "eval.knn.k");
    assert_eq!(series(&panel, "raw pixels").points, [(0.0, 60.0), (1.0, 61.0), (2.0, 62.0)]);
    assert!(!panel.series.iter().any(|s| s.label.as_deref().is_some_and(|l| l.starts_with("raw pixels ·"))));
    // (each line's setting's row, at each x)
    assert_eq!(series(&panel, "paper Table 8 (ViT-B/16, 1% ImageNet-1k)").points.len(), 6);
    assert!(sweep_figure_caption(&reg, study).contains("Triangles: the I-JEPA paper's ablation"));
    // a zip (k and the rate varied together): no grid, one line in the points' order
    let runs = tmp.path().join("zip");
    for (i, (lr, k, top1)) in [("1e-4", "5", 20.0), ("5e-4", "10", 29.0), ("1e-3", "20", 33.0)].into_iter().enumerate() {
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1, None, json!({"optimizer.lr.peak": lr, "eval.knn.k": k}));
    }
    let panel = sweep_panel(&load_registry(&runs).unwrap(), study);
    assert_eq!(panel.x, ijepa_reports::plot::XAxis::Categories(vec!["5, 1e-4".into(), "10, 5e-4".into(), "20, 1e-3".into()]));
    assert_eq!(series(&panel, "I-JEPA (ours) · knn").points, [(0.0, 20.0), (1.0, 29.0), (2.0, 33.0)]);
}

/// A grid of two settings with several seeds each and two protocols: a panel per protocol,
/// each line the mean over its seeds at each x with a circle per seed.
#[test]
fn a_grid_sweep_with_seeds_draws_a_panel_per_protocol() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "grid";
    let mut i = 0;
    for (lr, wd, base) in [("1e-3", "0.04", 30.0), ("2e-3", "0.04", 32.0), ("1e-3", "0.1", 34.0), ("2e-3", "0.1", 36.0)] {
        for seed in ["0", "1"] {
            for (protocol, plus) in [("knn", 0.0), ("linear", 10.0)] {
                let top1 = base + plus + if seed == "1" { 1.0 } else { 0.0 };
                eval(&runs, study, &format!("{protocol}-ijepa-{i}"), protocol, "ijepa", top1, None, json!({"optimizer.lr.peak": lr, "optimizer.weight-decay": wd, "seed": seed}));
                i += 1;
            }
        }
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let sweep = figs.iter().find(|f| f.stem == "sweep-grid").expect("a sweep figure");
    let titles: Vec<&str> = sweep.figure.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["knn", "linear"]);
    // two values each: the first key (in the records' order) is the x axis
    let linear = &sweep.figure.panels[1];
    assert_eq!(linear.x_label, "optimizer.lr.peak");
    let mean = series(linear, "I-JEPA (ours) · optimizer.weight-decay=0.1 (mean over seeds)");
    assert_eq!(mean.points, [(0.0, 44.5), (1.0, 46.5)]);
    let each = series(linear, "I-JEPA (ours) · optimizer.weight-decay=0.1, each seed");
    assert_eq!((each.points.len(), each.stroke), (4, ijepa_reports::plot::Stroke::Points));
    ijepa_reports::plot::render(&sweep.figure).unwrap();
}

/// Rewrites an evaluation's `eval.json` (as [`eval`] wrote it) with `f`.
fn patch_eval(runs: &Path, exp: &str, name: &str, f: impl FnOnce(&mut serde_json::Value)) {
    patch_json(&runs.join(exp).join(format!("eval-{name}-abcdef012345/eval.json")), f);
}

/// Edits the JSON file at `path` in place.
fn patch_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    write_json(path, &v);
}

/// The sweep figure's only panel of an experiment, with a lookup of its series by label.
fn sweep_panel(reg: &ijepa_reports::Registry, exp: &str) -> ijepa_reports::plot::Panel {
    let figs = ijepa_reports::figures::experiment_figures(reg, exp);
    let sweep = figs.iter().find(|f| f.stem == format!("sweep-{exp}")).expect("a sweep figure");
    sweep.figure.panels[0].clone()
}

fn sweep_figure_caption(reg: &ijepa_reports::Registry, exp: &str) -> String {
    let figs = ijepa_reports::figures::experiment_figures(reg, exp);
    figs.iter().find(|f| f.stem == format!("sweep-{exp}")).expect("a sweep figure").caption.clone()
}

fn series<'a>(panel: &'a ijepa_reports::plot::Panel, label: &str) -> &'a ijepa_reports::plot::Series {
    let labels: Vec<_> = panel.series.iter().filter_map(|s| s.label.as_deref()).collect();
    panel.series.iter().find(|s| s.label.as_deref() == Some(label)).unwrap_or_else(|| panic!("no {label} in {labels:?}"))
}

/// A sweep over recipes (`vary "recipe" "ijepa" "mae" "dino"`): every recipe's random init
/// is a baseline of its own, all with an empty `varied`; each point is compared with its own
/// recipe's (named in the method: `random init (MAE)`), not with the first one as a level,
/// and the line through the points is named for the methods it joins, not for one of them.
#[test]
fn a_sweep_over_recipes_compares_each_point_with_its_own_random_init() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "methods";
    for (recipe, method, top1) in [("ijepa", "I-JEPA (ours)", 47.55), ("mae", "MAE (ours)", 48.9), ("dino", "DINO (ours)", 45.7)] {
        let name = format!("knn-{recipe}");
        eval(&runs, study, &name, "knn", "ijepa", top1, None, json!({"recipe": recipe}));
        patch_eval(&runs, study, &name, |v| {
            v["model"] = json!(recipe);
            v["method"] = json!(method);
        });
    }
    for (name, method, top1) in [("knn-random-a", "random init", 47.35), ("knn-random-b", "random init (MAE)", 47.75), ("knn-random-c", "random init (DINO)", 45.7)] {
        eval(&runs, study, name, "knn", "random-init", top1, None, json!({}));
        patch_eval(&runs, study, name, |v| v["method"] = json!(method));
    }
    eval(&runs, study, "knn-pixels", "knn", "raw-pixels", 75.3, None, json!({}));
    let reg = load_registry(&runs).unwrap();
    let panel = sweep_panel(&reg, study);
    assert_eq!(panel.x, ijepa_reports::plot::XAxis::Categories(vec!["dino".into(), "ijepa".into(), "mae".into()]));
    let ours = series(&panel, "ours (DINO, I-JEPA, MAE) · knn");
    assert_eq!(ours.points, [(0.0, 45.7), (1.0, 47.55), (2.0, 48.9)]);
    // the sweep table: the pixels are every point's, under the sweep's key; a random init is
    // its recipe's, not every point's
    let abl = rows(&ablation_table(&reg, study));
    let shared: Vec<(&str, &str)> = abl.iter().filter(|r| r["value"] == "every point").map(|r| (r["key"].as_str(), r["method"].as_str())).collect();
    assert_eq!(shared, [("recipe", "raw pixels")], "{abl:?}");
    let random = series(&panel, "random init (each point's recipe) · knn");
    assert_eq!(random.points, [(0.0, 45.7), (1.0, 47.35), (2.0, 47.75)]);
    // methods are names, not an order: dots and crosses, no line from one to the next
    use ijepa_reports::plot::Stroke;
    assert_eq!((ours.stroke, random.stroke), (Stroke::Dots, Stroke::Crosses));
    // the pixels are every recipe's: a level
    assert_eq!(series(&panel, "raw pixels · knn").points, [(0.0, 75.3), (2.0, 75.3)]);
    // over named data, the baselines are each point's: the pixels' marks are not the random
    // init's (both drew crosses of one colour)
    let roots = "roots";
    for (root, a, b, c) in [("/data/x", 60.0, 40.0, 70.0), ("/data/y", 62.0, 45.0, 72.0)] {
        let varied = json!({"data.root": root});
        eval(&runs, roots, &format!("knn-ours-{}", &root[6..]), "knn", "ijepa", a, None, varied.clone());
        eval(&runs, roots, &format!("knn-init-{}", &root[6..]), "knn", "random-init", b, None, varied.clone());
        eval(&runs, roots, &format!("knn-pix-{}", &root[6..]), "knn", "raw-pixels", c, None, varied);
    }
    let by_root = sweep_panel(&load_registry(&runs).unwrap(), roots);
    let strokes: Vec<Stroke> = ["random init · knn", "raw pixels · knn"].iter().map(|l| series(&by_root, l).stroke).collect();
    assert_eq!(strokes, [Stroke::Crosses, Stroke::Squares]);
    let drawn = tmp.path().join("rep-roots");
    ijepa_reports::write_report(&load_registry(&runs).unwrap(), &drawn).unwrap();
    let svg = std::fs::read_to_string(drawn.join("plots/sweep-roots.svg")).unwrap();
    assert!(svg.contains("<rect") && svg.contains("raw pixels · knn"), "{svg}");
    assert!(!panel.series.iter().any(|s| s.label.as_deref() == Some("DINO (ours) · knn")));
    // in the kNN table, beside `random init (MAE)`, I-JEPA's baseline is named too (a plain
    // `random init` read as every method's)
    let out = tmp.path().join("rep");
    ijepa_reports::write_report(&reg, &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| random init (I-JEPA) |") && md.contains("| random init (MAE) |") && !md.contains("| random init |"), "{md}");
    // ... and so in the sweep's table, where each recipe's baseline is its point's (`sweep.csv`
    // said the plain name beside `knn.csv`'s `random init (I-JEPA)`)
    let apart = "meth2";
    for (recipe, name, method) in [("ijepa", "knn-random-a", "random init"), ("mae", "knn-random-b", "random init (MAE)")] {
        eval(&runs, apart, name, "knn", "random-init", 40.0, None, json!({"recipe": recipe}));
        patch_eval(&runs, apart, name, |v| v["method"] = json!(method));
    }
    let abl = rows(&ablation_table(&load_registry(&runs).unwrap(), apart));
    let methods: Vec<&str> = abl.iter().map(|r| r["method"].as_str()).collect();
    assert_eq!(methods, ["random init (I-JEPA)", "random init (MAE)"], "{abl:?}");
    // the probe curves: each recipe's random init in a colour of its own (they shared one and
    // a stroke), as each point's pretrained encoder is
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let probe = figs.iter().find(|f| f.stem == format!("probe-{study}")).expect("a probe figure");
    let colour = |prefix: &str| -> Vec<usize> { probe.figure.panels[0].series.iter().filter(|s| s.label.as_deref().is_some_and(|l| l.starts_with(prefix))).map(|s| s.colour).collect() };
    let (ours, inits) = (colour(""), colour("random init"));
    assert_eq!(inits.len(), 3);
    // two checkpoints evaluated by `ijepa eval` (methods named by their files) each in a colour
    // of its own (they drew in one)
    let cks = "cks";
    for (name, method) in [("knn-a", "I-JEPA (a.safetensors)"), ("knn-b", "I-JEPA (b.safetensors)")] {
        eval(&runs, cks, name, "knn", "ijepa", 50.0, None, json!({}));
        patch_eval(&runs, cks, name, |v| v["method"] = json!(method));
    }
    let figs = ijepa_reports::figures::experiment_figures(&load_registry(&runs).unwrap(), cks);
    let probe_cks = figs.iter().find(|f| f.stem == format!("probe-{cks}")).expect("a probe figure");
    let cks_colours: Vec<usize> = probe_cks.figure.panels[0].series.iter().map(|s| s.colour).collect();
    assert!(cks_colours.len() == 2 && cks_colours[0] != cks_colours[1], "{cks_colours:?}");
    let distinct: std::collections::BTreeSet<usize> = ours.iter().copied().collect();
    assert_eq!(distinct.len(), ours.len(), "every curve its own colour: {:?}", probe.figure.panels[0].series.iter().map(|s| (s.label.clone(), s.colour)).collect::<Vec<_>>());

    // records that carry their `recipe` are matched by it, whatever their display names say
    // (here every random init is called plainly "random init", which read as I-JEPA's)
    let study = "methods-recorded";
    for (recipe, top1, random) in [("ijepa", 47.55, 47.35), ("mae", 48.9, 47.75), ("dino", 45.7, 44.0)] {
        let name = format!("knn-{recipe}");
        eval(&runs, study, &name, "knn", recipe, top1, None, json!({"recipe": recipe}));
        patch_eval(&runs, study, &name, |v| {
            v["method"] = json!(format!("{recipe} run (ours)"));
            v["recipe"] = json!(recipe);
        });
        let name = format!("knn-random-{recipe}");
        eval(&runs, study, &name, "knn", "random-init", random, None, json!({}));
        patch_eval(&runs, study, &name, |v| {
            v["method"] = json!("random init");
            v["recipe"] = json!(recipe);
        });
    }
    let reg = load_registry(&runs).unwrap();
    let panel = sweep_panel(&reg, study);
    assert_eq!(series(&panel, "random init (each point's recipe) · knn").points, [(0.0, 44.0), (1.0, 47.35), (2.0, 47.75)]);
    // the title names each method once: a checkpoint given to `ijepa eval` (`MAE
    // (epoch-0002.safetensors)`) is MAE, not a method of its own
    eval(&runs, "mae-checkpoint", "knn-mae", "knn", "mae", 40.0, None, json!({}));
    patch_eval(&runs, "mae-checkpoint", "knn-mae", |v| v["method"] = json!("MAE (epoch-0002.safetensors)"));
    let reg = load_registry(&runs).unwrap();
    let out = tmp.path().join("rep-title");
    ijepa_reports::write_report(&reg, &out).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# DINO / I-JEPA / MAE / dino run / ijepa run / mae run report"), "{}", md.lines().next().unwrap_or_default());
}

/// Monitors of a DINO run and an MAE run: the encoder evaluations read is solid (DINO's
/// teacher, though `student` sorts first), the other dashed; MAE's one `encoder` is not
/// labelled "encoder encoder".
#[test]
fn the_monitor_draws_the_evaluated_encoder_solid() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // (a registered recipe's names, in its order: `slow` evaluated, though `fast` sorts first)
    for (exp, hash, encoders) in [("dino", "aaaaaaaaaaaa", &["teacher", "student"][..]), ("mae", "bbbbbbbbbbbb", &["encoder"][..]), ("custom", "cccccccccccc", &["slow", "fast"][..])] {
        pretrain(&runs, exp, hash, [0.15, 0.2], 0.05);
        let mut mon = String::from("step,epoch,encoder,knn_top1,rankme,spread,seconds\n");
        for e in 0..=2 {
            for enc in encoders {
                mon.push_str(&format!("{},{e},{enc},{},5.0,0.3,1.0\n", e * 10, 40 + e));
            }
            if e == 0 {
                mon.push_str("0,0,pixels,76.0,296.0,0.70,0.5\n");
            }
        }
        fs::write(runs.join(exp).join(format!("pretrain-{hash}/monitor.csv")), mon).unwrap();
    }
    let reg = load_registry(&runs).unwrap();
    let strokes = |exp: &str| -> Vec<(String, ijepa_reports::plot::Stroke)> {
        let figs = ijepa_reports::figures::experiment_figures(&reg, exp);
        let fig = figs.iter().find(|f| f.stem == format!("monitor-{exp}")).expect("a monitor figure");
        assert!(fig.caption.contains("DINO's teacher"), "{}", fig.caption);
        fig.figure.panels[0].series.iter().filter_map(|s| Some((s.label.clone()?, s.stroke))).collect()
    };
    use ijepa_reports::plot::Stroke;
    assert_eq!(
        strokes("dino")[..2],
        [("pretrain-aaaaaaaaaaaa teacher encoder".to_string(), Stroke::Solid), ("pretrain-aaaaaaaaaaaa student encoder".to_string(), Stroke::Dashed)]
    );
    assert_eq!(strokes("mae")[0], ("pretrain-bbbbbbbbbbbb encoder".to_string(), Stroke::Solid));
    assert_eq!(
        strokes("custom")[..2],
        [("pretrain-cccccccccccc slow encoder".to_string(), Stroke::Solid), ("pretrain-cccccccccccc fast encoder".to_string(), Stroke::Dashed)]
    );
}

/// A run monitored at epoch 0 alone (killed, or still in its first epoch): the pixels' level
/// and the floors span epochs 0 to 1, so that they are seen and the axis is of epochs (they
/// ran from 0 to 0, on an axis of +-0.004).
#[test]
fn a_run_monitored_at_epoch_zero_alone_draws_its_levels_over_an_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain(&runs, "first", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    let dir = runs.join("first/pretrain-aaaaaaaaaaaa");
    let mut config: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["monitor"] = json!({"rank_floor": 2.0, "spread_floor": 0.05});
    write_json(&dir.join("config.json"), &config);
    fs::write(dir.join("monitor.csv"), "step,epoch,encoder,knn_top1,rankme,spread,seconds\n0,0,target,40.0,3.0,0.3,1.0\n0,0,context,40.0,3.0,0.3,1.0\n0,0,pixels,76.0,296.0,0.70,0.5\n").unwrap();
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, "first");
    let fig = figs.iter().find(|f| f.stem == "monitor-first").expect("a monitor figure");
    let levels: Vec<(String, Vec<(f64, f64)>)> = fig.figure.panels.iter().flat_map(|p| &p.series).filter_map(|s| Some((s.label.clone()?, s.points.clone()))).filter(|(l, _)| l.contains("pixels") || l.contains("floor")).collect();
    assert_eq!(levels.len(), 3, "{levels:?}");
    assert!(levels.iter().all(|(_, pts)| pts.len() == 2 && pts[0].0 == 0.0 && pts[1].0 == 1.0), "{levels:?}");
}

/// A sweep with `seeds`: the seed is a repeat of a setting, so the paper's row of the setting
/// still pairs with it, and the figure draws the seeds of a setting at one x (their mean on
/// the line, each as a circle), not as settings of their own joined by a zig-zag.
#[test]
fn seeds_of_a_sweep_share_their_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "seeds";
    for (i, (scale, seed, top1)) in [("0.125 0.2", "0", 47.35), ("0.125 0.2", "1", 47.75), ("0.15 0.2", "0", 50.0), ("0.15 0.2", "1", 51.0)].into_iter().enumerate() {
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1, None, json!({"mask.targets.scale": scale, "seed": seed}));
    }
    for (seed, top1) in [("0", 40.0), ("1", 41.0)] {
        eval(&runs, study, &format!("knn-random-{seed}"), "knn", "random-init", top1, None, json!({"seed": seed}));
    }
    let reg = load_registry(&runs).unwrap();
    let abl = rows(&ablation_table(&reg, study));
    let points = find(&abl, &[("method", "I-JEPA (ours)")]);
    assert_eq!(points.len(), 4);
    // each seed's random init, shared by every point of that seed, first of its protocol under
    // the sweep's setting (filed under `seed`, they came after every point's rows)
    let got: Vec<(&str, &str, &str)> = abl.iter().map(|r| (r["key"].as_str(), r["value"].as_str(), r["method"].as_str())).collect();
    assert_eq!(
        &got[..3],
        [("mask.targets.scale, seed", "every point, seed 0", "random init"), ("mask.targets.scale, seed", "every point, seed 1", "random init"), ("mask.targets.scale, seed", "0.125 0.2, 0", "I-JEPA (ours)")],
        "{abl:?}"
    );
    for r in points {
        let paper = if r["value"].starts_with("0.125") { "42.4" } else { "54.2" };
        assert_eq!((r["paper_table"].as_str(), r["paper_top1"].as_str()), ("8", paper), "{r:?}");
    }
    let panel = sweep_panel(&reg, study);
    assert_eq!(panel.x, ijepa_reports::plot::XAxis::Categories(vec!["0.125 0.2".into(), "0.15 0.2".into()]));
    assert_eq!(panel.x_label, "mask.targets.scale");
    assert_eq!(series(&panel, "I-JEPA (ours) · knn (mean over seeds)").points, [(0.0, 47.55), (1.0, 50.5)]);
    let each = series(&panel, "I-JEPA (ours) · knn, each seed");
    assert_eq!((each.points.len(), each.stroke), (4, ijepa_reports::plot::Stroke::Points));
    assert!(each.points.iter().all(|p| p.0 == 0.0 || p.0 == 1.0), "{:?}", each.points);
    // the random init of each seed: one level, their mean
    assert_eq!(series(&panel, "random init · knn").points, [(0.0, 40.5), (1.0, 40.5)]);
    assert_eq!(series(&panel, "paper Table 8 (ViT-B/16, 1% ImageNet-1k)").points, [(0.0, 42.4), (1.0, 54.2)]);
    // and it renders (the circles included)
    ijepa_reports::plot::render(&ijepa_reports::plot::Figure { title: "t".into(), panels: vec![panel] }).unwrap();
    // each setting over its seeds: count, mean, spread (the sweep table lists the seeds' rows)
    let seeds = rows(&ijepa_reports::seeds_table(&reg, study));
    let got: Vec<[&str; 7]> = seeds.iter().map(|r| [&r["setting"], &r["method"], &r["seeds"], &r["mean"], &r["std"], &r["min"], &r["max"]].map(String::as_str)).collect();
    assert_eq!(
        got,
        [
            ["", "random init", "2", "40.5", "0.7071067811865476", "40.0", "41.0"],
            ["mask.targets.scale=0.125 0.2", "I-JEPA (ours)", "2", "47.55", "0.282842712474618", "47.35", "47.75"],
            ["mask.targets.scale=0.15 0.2", "I-JEPA (ours)", "2", "50.5", "0.7071067811865476", "50.0", "51.0"],
        ],
        "{seeds:?}"
    );
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("Seeds of `seeds`") && tmp.path().join("out/tables/seeds-seeds.csv").is_file(), "{md}");
    // beside another recipe's random init, I-JEPA's is named as the other tables name it
    eval(&runs, study, "knn-random-mae-0", "knn", "random-init", 39.0, None, json!({"seed": "0"}));
    patch_eval(&runs, study, "knn-random-mae-0", |v| {
        v["method"] = json!("random init (MAE)");
        v["recipe"] = json!("mae");
    });
    let seeds = rows(&ijepa_reports::seeds_table(&load_registry(&runs).unwrap(), study));
    let methods: Vec<&str> = seeds.iter().map(|r| r["method"].as_str()).collect();
    assert!(methods.contains(&"random init (I-JEPA)") && methods.contains(&"random init (MAE)") && !methods.contains(&"random init"), "{methods:?}");
    // a study without seeds has no such table
    let other = tmp.path().join("other");
    study_runs(&other);
    assert_eq!(ijepa_reports::seeds_table(&load_registry(&other).unwrap(), "tscale").height(), 0);
}

/// A folder holding none of our runs (an experiment folder instead of the runs folder, an
/// empty one, the folder above `runs`) still gets the paper's tables, with a warning naming
/// the folder and what to pass instead, in the report and on the binary's stderr.
#[test]
fn a_folder_without_runs_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    fake_runs(&runs);
    assert_eq!(load_registry(&runs).unwrap().no_runs_warning(), None);
    let warning = |dir: &Path| load_registry(dir).unwrap().no_runs_warning().unwrap_or_else(|| panic!("no warning for {}", dir.display()));
    let exp = runs.join("fmnist").join("pretrain-aaaaaaaaaaaa").parent().unwrap().to_path_buf();
    let w = warning(&exp);
    assert!(w.contains(&exp.display().to_string()) && w.contains("experiment folder") && w.contains(&format!("pass its parent, `{}`", runs.display())), "{w}");
    let w = warning(tmp.path());
    assert!(w.contains(&format!("pass `{}`", runs.display())), "{w}");
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let w = warning(&empty);
    assert!(w.contains(&empty.display().to_string()) && w.contains("holds no folders") && w.contains("pass the runs folder"), "{w}");
    // the report is written all the same, and says so
    let reg = load_registry(&exp).unwrap();
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("**Warning: ") && md.contains("pass its parent") && md.contains("| I-JEPA | ViT-H/14 |"), "{md}");
    assert!(fs::read_to_string(&files.html).unwrap().contains("<strong>Warning: "));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa-report")).arg(&exp).arg("--out").arg(tmp.path().join("rep")).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && stderr.contains("warning: ") && stderr.contains("pass its parent"), "{stderr}");
}

/// Plain evaluations of several experiments in one results table get an `experiment` column
/// (else two experiments' `I-JEPA (ours)` rows read as one result twice); the paper's rows
/// have none.
#[test]
fn results_of_several_experiments_name_their_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    fake_runs(tmp.path());
    eval(tmp.path(), "other", "linear", "linear", "ijepa", 19.8, None, json!({}));
    eval(tmp.path(), "other", "knn", "knn", "ijepa", 30.0, None, json!({}));
    let reg = load_registry(tmp.path()).unwrap();
    let lin = rows(&linear_table(&reg));
    let ours = find(&lin, &[("method", "I-JEPA (ours)")]);
    let mut exps: Vec<&str> = ours.iter().map(|r| r["experiment"].as_str()).collect();
    exps.sort_unstable();
    assert_eq!(exps, ["fmnist", "other"]);
    assert_eq!(find(&lin, &[("source", "paper")])[0]["experiment"], "");
    let knn = rows(&ijepa_reports::knn_table(&reg));
    assert_eq!(find(&knn, &[("experiment", "other")])[0]["top1"], "30.0");
    // one experiment: no such column
    let one = load_registry(&{
        let t = tmp.path().join("one");
        eval(&t, "fmnist", "knn", "knn", "ijepa", 30.0, None, json!({}));
        t
    })
    .unwrap();
    assert!(!rows_as_text(&linear_table(&one), false)[0].contains(&"experiment".to_string()));
}

/// A failed (diverged) run has no final loss: its last logged loss, often the divergence
/// itself, is not shown as one; a finished run's is.
#[test]
fn a_failed_run_shows_no_final_loss() {
    let tmp = tempfile::tempdir().unwrap();
    pretrain(tmp.path(), "fmnist", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    pretrain(tmp.path(), "nan", "bbbbbbbbbbbb", [0.15, 0.2], 31739187200.0);
    let path = tmp.path().join("nan/pretrain-bbbbbbbbbbbb/manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["status"] = json!("failed");
    m["final_loss"] = json!(null);
    m["error"] = json!("training: the loss is NaN at step 41 (epoch 5): training diverged");
    write_json(&path, &m);
    let reg = load_registry(tmp.path()).unwrap();
    let t = rows(&ijepa_reports::tables::pretrain_table(&reg));
    assert_eq!(find(&t, &[("experiment", "nan")])[0]["status"], "failed");
    assert_eq!(find(&t, &[("experiment", "nan")])[0]["final_loss"], "");
    assert_eq!(find(&t, &[("experiment", "fmnist")])[0]["final_loss"], "0.05");
    // a run that recorded the step it diverged at says so (it read `failed`, as any other stop)
    patch_json(&path, |m| m["diverged_at"] = json!(41));
    let t = rows(&ijepa_reports::tables::pretrain_table(&load_registry(tmp.path()).unwrap()));
    assert_eq!(find(&t, &[("experiment", "nan")])[0]["status"], "diverged at step 41");
}

/// A methods comparison (a sweep over recipes) with `seeds`: its raw pixels, whose points
/// vary the seed alone, are rows of the method tables (they were left out, the strongest row
/// among them), and each method's seeds stand together, the method with the best top-1 first.
#[test]
fn a_methods_sweep_with_seeds_keeps_its_pixels_and_groups_its_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (seed, (ijepa, init, pixels)) in [(0, (64.5, 64.4, 82.6)), (1, (63.0, 60.9, 82.7))] {
        let v = |recipe: Option<&str>| match recipe {
            Some(r) => json!({"recipe": r, "seed": seed.to_string()}),
            None => json!({"seed": seed.to_string()}),
        };
        eval(&runs, "m", &format!("linear-ijepa-{seed}"), "linear", "ijepa", ijepa, None, v(Some("ijepa")));
        eval(&runs, "m", &format!("linear-random-init-{seed}"), "linear", "random-init", init, None, v(Some("ijepa")));
        eval(&runs, "m", &format!("linear-raw-pixels-{seed}"), "linear", "raw-pixels", pixels, None, v(None));
    }
    let t = rows(&ijepa_reports::tables::linear_table(&load_registry(&runs).unwrap()));
    let ours: Vec<(String, String)> = t.iter().filter(|r| r["source"] == "ours").map(|r| (r["method"].clone(), r["top1"].clone())).collect();
    let want = [("raw pixels", "82.7"), ("raw pixels", "82.6"), ("I-JEPA (ours)", "64.5"), ("I-JEPA (ours)", "63.0"), ("random init", "64.4"), ("random init", "60.9")];
    assert_eq!(ours, want.map(|(m, v)| (m.to_string(), v.to_string())), "{t:?}");
}

/// What the monitors warned of a run (kept in its manifest) is a section of the report, with
/// its run: a report that ranked a method first showed nothing of the run's "not learning"
/// warnings, which only the terminal had seen.
#[test]
fn the_monitors_warnings_are_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    pretrain(tmp.path(), "quiet", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    let (rep, out) = (tmp.path().join("rep"), tmp.path().join("rep"));
    let files = write_report(&load_registry(tmp.path()).unwrap(), &rep).unwrap();
    assert!(!std::fs::read_to_string(&files.markdown).unwrap().contains("Warnings of the settings"));
    pretrain(tmp.path(), "stalled", "bbbbbbbbbbbb", [0.15, 0.2], 0.05);
    let path = tmp.path().join("stalled/pretrain-bbbbbbbbbbbb/manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["warnings"] = json!(["epoch 3: the encoder is not learning: held-out kNN 40.1% against 40.0% at its initialisation (epoch 0)"]);
    // (and what its settings warned of before it trained, first)
    m["setting_warnings"] = json!(["the learning-rate warm-up (2 epoch(s)) lasts at least the whole schedule (2 epoch(s))"]);
    write_json(&path, &m);
    let files = write_report(&load_registry(tmp.path()).unwrap(), &out).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("## Warnings of the settings and the monitors") && md.contains("| stalled | pretrain-bbbbbbbbbbbb | epoch 3: the encoder is not learning: held-out kNN 40.1%"), "{md}");
    let before = md.find("| stalled | pretrain-bbbbbbbbbbbb | before training: the learning-rate warm-up (2 epoch(s)) lasts at least").expect(&md);
    assert!(before < md.find("epoch 3: the encoder is not learning").unwrap(), "{md}");
    let csv = fs::read_to_string(out.join("tables/warnings.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
}

/// A sweep point's pretraining row names the point's settings (its experiment's name is cut
/// and hashed when they are long); a table without sweep points has no such column.
#[test]
fn a_pretraining_row_names_its_sweep_point() {
    let tmp = tempfile::tempdir().unwrap();
    pretrain(tmp.path(), "plain", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    let t = rows(&ijepa_reports::tables::pretrain_table(&load_registry(tmp.path()).unwrap()));
    assert!(!t[0].contains_key("point"), "{t:?}");
    pretrain(tmp.path(), "grid-data-root-5f3a9c01", "bbbbbbbbbbbb", [0.15, 0.2], 0.05);
    let path = tmp.path().join("grid-data-root-5f3a9c01/pretrain-bbbbbbbbbbbb/manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["varied"] = json!({"data.root": "/data/a long folder", "optimizer.lr.peak": "1e-3"});
    write_json(&path, &m);
    let t = rows(&ijepa_reports::tables::pretrain_table(&load_registry(tmp.path()).unwrap()));
    assert_eq!(find(&t, &[("experiment", "grid-data-root-5f3a9c01")])[0]["point"], "data.root=/data/a long folder, optimizer.lr.peak=1e-3");
    assert_eq!(find(&t, &[("experiment", "plain")])[0]["point"], "");
}

/// A run still running (or stopped) shows its final loss over the window a finished run's
/// uses (the mean of the last 10 of its 40 logged losses), not its last logged loss.
#[test]
fn a_running_run_shows_the_final_loss_of_a_finished_one() {
    let tmp = tempfile::tempdir().unwrap();
    pretrain(tmp.path(), "live", "cccccccccccc", [0.15, 0.2], 1.0);
    let path = tmp.path().join("live/pretrain-cccccccccccc/manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    m["status"] = json!("interrupted");
    m["final_loss"] = json!(null);
    m["finished"] = json!(null);
    m["seconds"] = json!(90.0);
    write_json(&path, &m);
    let reg = load_registry(tmp.path()).unwrap();
    let t = rows(&ijepa_reports::tables::pretrain_table(&reg));
    let shown: f64 = find(&t, &[("experiment", "live")])[0]["final_loss"].parse().unwrap();
    let want = (31..=40).map(|s| 1.0 + 0.4 * (-(s as f64) / 8.0).exp()).sum::<f64>() / 10.0;
    assert!((shown - want).abs() < 5e-4, "{shown} against {want} (the last row alone: {})", 1.0 + 0.4 * (-5.0f64).exp());
    // a stopped run shows the minutes its processes spent (the cell was empty); a running one
    // is not over and shows none
    assert_eq!(find(&t, &[("experiment", "live")])[0]["minutes"], "1.5");
    m["status"] = json!("running");
    write_json(&path, &m);
    fs::write(tmp.path().join("live/pretrain-cccccccccccc").join(ijepa_schema::LOCK), ijepa_schema::lock_text(std::process::id(), &ijepa_schema::host_name(), 0, "ijepa run x.kdl")).unwrap();
    let t = rows(&ijepa_reports::tables::pretrain_table(&load_registry(tmp.path()).unwrap()));
    assert_eq!((find(&t, &[("experiment", "live")])[0]["status"].as_str(), find(&t, &[("experiment", "live")])[0]["minutes"].as_str()), ("running", ""));
}

/// A sweep over where the target is masked, in a file that fixes random masks: no row of Table
/// 11, which was measured with multi-block masks (the varied setting alone was matched, and
/// the points were given 56.1 and 67.3); with the file's mask the method's, the rows are there.
#[test]
fn a_setting_fixed_off_the_method_has_no_paper_row() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (mask, study) in [(json!({"kind": "random", "ratio": 0.6}), "fixed-random"), (json!({"n_targets": 4}), "fixed-default")] {
        for (i, at) in ["output", "input"].into_iter().enumerate() {
            let exp = format!("{study}-at-{at}");
            let hash = format!("{i}{}", "b".repeat(11));
            pretrain(&runs, &exp, &hash, [0.15, 0.2], 0.05);
            let config = runs.join(&exp).join(format!("pretrain-{hash}/config.json"));
            let mut c: serde_json::Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
            c["mask"] = mask.clone();
            c["target"] = json!({"masking": at});
            write_json(&config, &c);
            eval(&runs, study, &format!("low-shot-ijepa-{i}"), "low-shot", "ijepa", 50.0, Some(0.01), json!({"target.masking": at}));
            let record = runs.join(study).join(format!("eval-low-shot-ijepa-{i}-abcdef012345/eval.json"));
            let mut r: serde_json::Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
            r["pretrain_dir"] = json!(runs.join(&exp).join(format!("pretrain-{hash}")).display().to_string());
            write_json(&record, &r);
        }
    }
    let reg = load_registry(&runs).unwrap();
    let paper = |study: &str| rows(&ablation_table(&reg, study)).into_iter().map(|r| r["paper_top1"].clone()).collect::<Vec<_>>();
    assert_eq!(paper("fixed-random"), ["", ""]);
    let mut shown = paper("fixed-default");
    shown.sort();
    assert_eq!(shown, ["56.1", "67.3"]);
}

/// The zip over Tables 6, 7 and 11's variants: each variant reads against its own table's
/// method (Table 11's input masking against 67.3, not Table 6's 54.2); the paper's 1%-label
/// linear probes sit beside our low-shot rows, not repeated beside the kNN rows; the figure
/// draws each table's method at the method's point.
#[test]
fn a_variant_reads_against_its_own_table_s_method() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "variants";
    let points = [("multi-block", "representation", "output", 60.0), ("multi-block", "pixels", "output", 40.0), ("multi-block", "representation", "input", 50.0)];
    for (i, (mask, target, at, top1)) in points.into_iter().enumerate() {
        let varied = json!({"mask": mask, "target": target, "target.masking": at});
        eval(&runs, study, &format!("low-shot-ijepa-{i}"), "low-shot", "ijepa", top1, Some(0.01), varied.clone());
        eval(&runs, study, &format!("knn-ijepa-{i}"), "knn", "ijepa", top1 + 5.0, None, varied);
    }
    let reg = load_registry(&runs).unwrap();
    let abl = rows(&ablation_table(&reg, study));
    let paper = |protocol: &str, at: &str, target: &str| {
        let r = abl.iter().find(|r| r["protocol"] == protocol && r["value"].contains(at) && r["value"].contains(target)).expect("a row");
        (r["paper_table"].clone(), r["paper_top1"].clone(), r["paper_method_top1"].clone())
    };
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(paper("low-shot", "input", "representation"), s("11", "56.1", "67.3"));
    assert_eq!(paper("low-shot", "output", "pixels"), s("7", "40.7", "66.9"));
    assert_eq!(paper("low-shot", "output", "representation"), s("6", "54.2", "54.2"));
    assert_eq!(paper("knn", "input", "representation"), s("", "", ""));
    let panel = sweep_panel(&reg, study);
    let at = |v: &str| match &panel.x {
        ijepa_reports::plot::XAxis::Categories(c) => c.iter().position(|x| x == v).unwrap() as f64,
        _ => unreachable!(),
    };
    // (each table's triangles a little to the side of the point, so the three at the method's
    // point stand side by side)
    let method = at("multi-block, representation, output");
    let near = |pts: &[(f64, f64)]| pts.iter().map(|p| (p.0.round(), p.1)).collect::<Vec<_>>();
    let mut t11 = near(&series(&panel, "paper Table 11 (ViT-H/16, 1% ImageNet-1k)").points);
    t11.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(t11, [(at("multi-block, representation, input"), 56.1), (method, 67.3)]);
    assert!(near(&series(&panel, "paper Table 7 (ViT-L/16, 1% ImageNet-1k)").points).contains(&(method, 66.9)));
    // three tables, three colours
    let colours: std::collections::BTreeSet<usize> = panel.series.iter().filter(|s| s.label.as_deref().is_some_and(|l| l.starts_with("paper Table"))).map(|s| s.colour).collect();
    assert_eq!(colours.len(), 3);
    ijepa_reports::plot::render(&ijepa_reports::plot::Figure { title: "t".into(), panels: vec![panel] }).unwrap();
}

/// Rows of a results table that differ only in what the table has no column for are told
/// apart: a recipe sweep's seeds by a `point` column, two evaluations of one pretraining with
/// other settings (two files) by their folder, in a `stage` column shown only for them.
#[test]
fn rows_that_would_read_the_same_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (seed, top1) in [("0", 40.0), ("1", 41.0)] {
        eval(&runs, "methods", &format!("knn-ijepa-{seed}"), "knn", "ijepa", top1, None, json!({"recipe": "ijepa", "seed": seed}));
    }
    eval(&runs, "plain", "knn-ijepa-k20", "knn", "ijepa", 39.1, None, json!({}));
    eval(&runs, "plain", "knn-ijepa-k5", "knn", "ijepa", 37.9, None, json!({}));
    eval(&runs, "plain", "knn-random", "knn", "random-init", 30.0, None, json!({}));
    let reg = load_registry(&runs).unwrap();
    let t = rows(&ijepa_reports::knn_table(&reg));
    let seeds: Vec<&str> = find(&t, &[("experiment", "methods")]).iter().map(|r| r["point"].as_str()).collect();
    assert_eq!(seeds, ["seed=1", "seed=0"]);
    let mut stages: Vec<&str> = find(&t, &[("experiment", "plain"), ("method", "I-JEPA (ours)")]).iter().map(|r| r["stage"].as_str()).collect();
    stages.sort_unstable();
    assert_eq!(stages, ["eval-knn-ijepa-k20-abcdef012345", "eval-knn-ijepa-k5-abcdef012345"]);
    // a row that reads as itself alone names no folder
    assert_eq!(find(&t, &[("method", "random init")])[0]["stage"], "");
    // kNN rows that voted with other k say so in a `k` column (rows that differed in their
    // method's name had nothing to tell k 20 from k 512), and need no folder then
    for (name, k) in [("knn-ijepa-k20", 20), ("knn-ijepa-k5", 5)] {
        let f = runs.join("plain").join(format!("eval-{name}-abcdef012345/eval.json"));
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        v["chosen"] = json!({"k": k, "temperature": 0.07});
        write_json(&f, &v);
    }
    let t = rows(&ijepa_reports::knn_table(&load_registry(&runs).unwrap()));
    let mut ks: Vec<(&str, &str)> = find(&t, &[("experiment", "plain"), ("method", "I-JEPA (ours)")]).iter().map(|r| (r["k"].as_str(), r["top1"].as_str())).collect();
    ks.sort_unstable();
    assert_eq!(ks, [("20", "39.1"), ("5", "37.9")]);
    assert!(t.iter().all(|r| !r.contains_key("stage")), "{t:?}");
    assert!(t.iter().all(|r| !r.contains_key("precision")), "one precision needs no column: {t:?}");
    // one checkpoint evaluated in bf16 (an `auto` file on a bf16 machine) and in fp32 (a copy
    // that says so): a `precision` column, where the rows read alike but for their score
    for (name, precision) in [("knn-ijepa-k20", "bf16"), ("knn-ijepa-k5", "fp32")] {
        let f = runs.join("plain").join(format!("eval-{name}-abcdef012345/eval.json"));
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        v["chosen"] = json!({"k": 20, "temperature": 0.07});
        v["precision"] = json!(precision);
        write_json(&f, &v);
    }
    let t = rows(&ijepa_reports::knn_table(&load_registry(&runs).unwrap()));
    let mut ps: Vec<(&str, &str)> = find(&t, &[("experiment", "plain"), ("method", "I-JEPA (ours)")]).iter().map(|r| (r["precision"].as_str(), r["top1"].as_str())).collect();
    ps.sort_unstable();
    assert_eq!(ps, [("bf16", "39.1"), ("fp32", "37.9")]);
    assert!(t.iter().all(|r| !r.contains_key("stage") && !r.contains_key("k")), "{t:?}");
    // ... at other temperatures: a `temperature` column (and one head: none)
    for (name, temperature) in [("knn-ijepa-k20", 0.07), ("knn-ijepa-k5", 0.5)] {
        let f = runs.join("plain").join(format!("eval-{name}-abcdef012345/eval.json"));
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        v["chosen"] = json!({"k": 20, "temperature": temperature});
        v["precision"] = json!("fp32");
        write_json(&f, &v);
    }
    let t = rows(&ijepa_reports::knn_table(&load_registry(&runs).unwrap()));
    let mut ts: Vec<(&str, &str)> = find(&t, &[("experiment", "plain"), ("method", "I-JEPA (ours)")]).iter().map(|r| (r["temperature"].as_str(), r["top1"].as_str())).collect();
    ts.sort_unstable();
    assert_eq!(ts, [("0.07", "39.1"), ("0.5", "37.9")]);
    assert!(t.iter().all(|r| !r.contains_key("stage") && !r.contains_key("precision") && !r.contains_key("head")), "{t:?}");
    // low-shot probes fit with other heads: a `head` column
    eval(&runs, "plain", "low-shot-ijepa-logistic", "low-shot", "ijepa", 50.0, Some(0.01), json!({}));
    eval(&runs, "plain", "low-shot-ijepa-bn", "low-shot", "ijepa", 55.0, Some(0.01), json!({}));
    for (name, head) in [("low-shot-ijepa-logistic", "logistic"), ("low-shot-ijepa-bn", "bn-linear")] {
        let f = runs.join("plain").join(format!("eval-{name}-abcdef012345/eval.json"));
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        v["head"] = json!(head);
        write_json(&f, &v);
    }
    let t = rows(&ijepa_reports::lowshot_table(&load_registry(&runs).unwrap()));
    let mut hs: Vec<(&str, &str)> = find(&t, &[("method", "I-JEPA (ours)")]).iter().map(|r| (r["head"].as_str(), r["top1"].as_str())).collect();
    hs.sort_unstable();
    assert_eq!(hs, [("bn-linear", "55.0"), ("logistic", "50.0")]);
    assert!(t.iter().all(|r| !r.contains_key("stage")), "{t:?}");
}

/// Runs of several recipes draw their losses in a panel each, labelled with what the loss
/// measures, and the pretraining table names it beside the final loss: DINO's cross-entropy
/// (about 4), MAE's pixel error (about 1) and I-JEPA's latent loss (about 0.3) shared one
/// "training loss" axis and column, where I-JEPA read as lowest.
#[test]
fn each_recipe_s_loss_is_drawn_on_its_own_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    for (recipe, hash, loss) in [("ijepa", "aaaaaaaaaaaa", 0.3), ("mae", "bbbbbbbbbbbb", 1.1), ("dino", "cccccccccccc", 4.0)] {
        let exp = format!("m-{recipe}");
        pretrain(&runs, &exp, hash, [0.15, 0.2], loss);
        patch_json(&runs.join(&exp).join(format!("pretrain-{hash}/config.json")), |c| {
            c["recipe"] = json!(recipe);
            c["decoder"] = json!({"norm_pix_loss": true});
            c["name"] = json!("m");
        });
        patch_json(&runs.join(&exp).join(format!("pretrain-{hash}/manifest.json")), |m| {
            m["study"] = json!("m");
            m["varied"] = json!({"recipe": recipe});
        });
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, "m");
    let loss = figs.iter().find(|f| f.stem == "loss-m").expect("a loss figure");
    let labels: Vec<&str> = loss.figure.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(labels, ["DINO: cross-entropy, student vs teacher", "I-JEPA: smooth-L1 on target representations", "MAE: MSE on normalised pixels"]);
    assert!(loss.caption.contains("One panel per loss"), "{}", loss.caption);
    let t = rows(&ijepa_reports::pretrain_table(&reg));
    let got: Vec<(&str, &str)> = t.iter().map(|r| (r["experiment"].as_str(), r["loss"].as_str())).collect();
    assert_eq!(got, [("m-dino", "DINO: cross-entropy, student vs teacher"), ("m-ijepa", "I-JEPA: smooth-L1 on target representations"), ("m-mae", "MAE: MSE on normalised pixels")]);
    // a default decoder, which config.json leaves out, normalises the pixels
    patch_json(&runs.join("m-mae/pretrain-bbbbbbbbbbbb/config.json"), |c| {
        c.as_object_mut().unwrap().remove("decoder");
    });
    assert_eq!(load_registry(&runs).unwrap().pretrains.iter().find(|r| r.manifest.experiment == "m-mae").unwrap().loss_name().as_deref(), Some("MAE: MSE on normalised pixels"));
    // one recipe: one panel, and no column
    let one = tmp.path().join("one");
    pretrain(&one, "x", "dddddddddddd", [0.15, 0.2], 0.3);
    let reg = load_registry(&one).unwrap();
    assert!(!rows(&ijepa_reports::pretrain_table(&reg))[0].contains_key("loss"));
    let figs = ijepa_reports::figures::experiment_figures(&reg, "x");
    let panels = &figs.iter().find(|f| f.stem == "loss-x").unwrap().figure.panels;
    assert_eq!((panels.len(), panels[0].y_label.as_str()), (1, "I-JEPA: smooth-L1 on target representations"));
}

/// DINO's metrics call the teacher's EMA momentum `teacher_momentum`: the schedules figure
/// draws it beside I-JEPA's `momentum` (it was left out).
#[test]
fn dino_s_teacher_momentum_is_read_as_the_ema_momentum() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain(&runs, "dino", "0123456789ab", [0.15, 0.2], 1.0);
    let csv = runs.join("dino/pretrain-0123456789ab/metrics.csv");
    let text = fs::read_to_string(&csv).unwrap().replacen(",momentum,", ",teacher_momentum,", 1);
    fs::write(&csv, text).unwrap();
    let reg = load_registry(&runs).unwrap();
    assert_eq!(reg.pretrains[0].metrics[0].momentum, Some(0.996));
}

/// What a report shows was measured on what is there now: an evaluation of a checkpoint that
/// is no longer its pretraining's final one (the pretraining trained again since: `--force`
/// from another file that shares it) is left out and listed, as `ijepa plan` counts it to run
/// again; an accuracy outside 0-100 is no measurement; a metrics row or monitor row torn by a
/// crash costs that row, not the run.
#[test]
fn outdated_or_impossible_records_are_left_out_and_torn_rows_cost_one_row() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    // point 0's pretraining now has another final checkpoint than its linear eval read
    let pdir = runs.join("tscale-targets-scale-0.1-0.2/pretrain-000000000000");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(pdir.join("manifest.json")).unwrap()).unwrap();
    m["checkpoints"] = json!([{"file": "final.safetensors", "step": 40, "sha256": "new"}]);
    write_json(&pdir.join("manifest.json"), &m);
    patch_eval(&runs, "tscale", "linear-ijepa-0", |v| v["checkpoint_sha256"] = json!("old"));
    // point 1's reads the final one it has: kept
    let p1 = runs.join("tscale-targets-scale-0.15-0.2/pretrain-111111111111");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(p1.join("manifest.json")).unwrap()).unwrap();
    m["checkpoints"] = json!([{"file": "final.safetensors", "step": 40, "sha256": "same"}, {"file": "latest.safetensors", "step": 40, "sha256": "latest-now"}]);
    write_json(&p1.join("manifest.json"), &m);
    patch_eval(&runs, "tscale", "linear-ijepa-1", |v| v["checkpoint_sha256"] = json!("same"));
    // `ijepa eval --checkpoint` of point 1's `latest` at step 10, written again since: left out
    // (it was shown as that file's result); of the `latest` there is now: kept
    let latest = p1.join("checkpoints/latest.safetensors");
    fs::create_dir_all(p1.join("checkpoints")).unwrap();
    fs::write(&latest, b"weights").unwrap();
    // ... and a copy of the run elsewhere (a snapshot to evaluate its latest safely) is that
    // copy's file, which the run's manifest does not describe: kept
    let copy = tmp.path().join("snap/tscale-targets-scale-0.15-0.2/pretrain-111111111111/checkpoints/latest.safetensors");
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    fs::write(&copy, b"weights").unwrap();
    patch_eval(&runs, "tscale", "linear-ijepa-2", |v| {
        v["pretrain_dir"] = serde_json::Value::Null;
        v["checkpoint"] = json!(copy.display().to_string());
        v["checkpoint_sha256"] = json!("latest-then");
    });
    let given = |read: &'static str, path: String| {
        move |v: &mut serde_json::Value| {
            v["pretrain_dir"] = serde_json::Value::Null;
            v["checkpoint"] = json!(path);
            v["checkpoint_sha256"] = json!(read);
            v["checkpoint_step"] = json!(10);
        }
    };
    // (as earlier versions recorded it: relative to the folder `ijepa eval` ran in, which is not
    // the report's; the report's result depended on the folder it ran from)
    let relative = "elsewhere/runs/tscale-targets-scale-0.15-0.2/pretrain-111111111111/checkpoints/latest.safetensors";
    assert!(!Path::new(relative).exists());
    patch_eval(&runs, "tscale", "knn-ijepa-1", given("latest-then", relative.to_string()));
    patch_eval(&runs, "tscale", "knn-ijepa-0", given("latest-now", latest.display().to_string()));
    // an impossible accuracy
    patch_eval(&runs, "tscale", "knn-ijepa-2", |v| v["top1"] = json!(150.0));
    // point 2's metrics and monitor end in a torn row
    let p2 = runs.join("tscale-targets-scale-0.2-0.2/pretrain-222222222222");
    for f in ["metrics.csv", "monitor.csv"] {
        let mut text = fs::read_to_string(p2.join(f)).unwrap();
        text.push_str("41,5,0.0");
        fs::write(p2.join(f), text).unwrap();
    }
    let reg = load_registry(&runs).unwrap();
    let dirs: Vec<String> = reg.evals.iter().map(|e| e.dir.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(!dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-0-") || d.starts_with("eval-knn-ijepa-2-")), "{dirs:?}");
    assert!(dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-1-")), "{dirs:?}");
    assert!(!dirs.iter().any(|d| d.starts_with("eval-knn-ijepa-1-")) && dirs.iter().any(|d| d.starts_with("eval-knn-ijepa-0-")), "{dirs:?}");
    assert!(dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-2-")), "the copy's evaluation is kept: {dirs:?}");
    let listed = reg.unreadable.join("\n");
    assert!(
        listed.contains("eval-knn-ijepa-1-")
            && listed.contains("evaluated latest.safetensors of tscale-targets-scale-0.15-0.2/pretrain-111111111111 at step 10, which has been written again since (now the one of step 40)"),
        "{listed}"
    );
    assert!(listed.contains("eval-linear-ijepa-0-") && listed.contains("no longer the final one of its pretraining"), "{listed}");
    assert!(listed.contains("top1 150 is not a percentage"), "{listed}");
    let run = reg.pretrains.iter().find(|r| r.dir == p2).expect("the run with torn rows is shown");
    assert_eq!((run.metrics.len(), run.monitor.len()), (40, 11), "every whole row, without the torn one");
}

/// An evaluation of a pretraining left out as a copy of another stage's folder (its manifest
/// the record of another stage) is left out too: it measured that stage's weights, filed as
/// this one's.
#[test]
fn an_evaluation_of_a_copied_stage_folder_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let point = runs.join("tscale-targets-scale-0.1-0.2");
    fs::rename(point.join("pretrain-000000000000"), point.join("pretrain-0000000000ff")).unwrap();
    patch_eval(&runs, "tscale", "linear-ijepa-0", |v| v["pretrain_dir"] = json!("runs/tscale-targets-scale-0.1-0.2/pretrain-0000000000ff"));
    let reg = load_registry(&runs).unwrap();
    let dirs: Vec<String> = reg.evals.iter().map(|e| e.dir.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(!dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-0-")) && dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-1-")), "{dirs:?}");
    let said = reg.unreadable.join("\n");
    assert!(said.contains("eval-linear-ijepa-0-") && said.contains("whose manifest.json is the record of the stage pretrain-000000000000 (a copy or a renamed stage folder)"), "{said}");
}

/// A finished pretraining whose manifest records no final checkpoint (versions before
/// 2026-11-30 recorded none) keeps its evaluations, as `ijepa plan` and `run` do (they were
/// left out as of a run "trained again since, not finished"); one still running does not.
#[test]
fn a_finished_run_recording_no_final_checkpoint_keeps_its_evaluations() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    patch_eval(&runs, "tscale", "linear-ijepa-0", |v| v["checkpoint_sha256"] = json!("read"));
    patch_eval(&runs, "tscale", "linear-ijepa-1", |v| v["checkpoint_sha256"] = json!("read"));
    patch_json(&runs.join("tscale-targets-scale-0.15-0.2/pretrain-111111111111/manifest.json"), |m| m["status"] = json!("running"));
    let reg = load_registry(&runs).unwrap();
    let dirs: Vec<String> = reg.evals.iter().map(|e| e.dir.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-0-")), "{dirs:?}");
    assert!(!dirs.iter().any(|d| d.starts_with("eval-linear-ijepa-1-")), "{dirs:?}");
    assert!(reg.unreadable.join("\n").contains("trained again since, not finished"), "{:?}", reg.unreadable);
}

/// A checkpoint from elsewhere evaluated at a sweep's point (`ijepa eval --point P
/// --checkpoint F`: no pretraining folder) is drawn apart, as dots of its own: it was averaged
/// with the point's own evaluation into a value neither measured.
#[test]
fn a_foreign_checkpoint_at_a_point_is_not_averaged_into_it() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    eval(&runs, "tscale", "linear-foreign", "linear", "ijepa", 90.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    patch_eval(&runs, "tscale", "linear-foreign", |v| {
        v["method"] = json!("I-JEPA (final.safetensors)");
        v["checkpoint"] = json!("/elsewhere/final.safetensors");
    });
    let reg = load_registry(&runs).unwrap();
    let panel = sweep_panel(&reg, "tscale");
    // the line keeps the point's own 71.0; the checkpoint is a dot at its point
    assert_eq!(series(&panel, "I-JEPA (ours) · linear").points[0], (0.0, 71.0));
    assert_eq!(series(&panel, "I-JEPA (final.safetensors) · linear").points, vec![(0.0, 90.0)]);
    // (as open diamonds: the open circles of a seeded sweep's seeds made it read as one more seed)
    assert_eq!(series(&panel, "I-JEPA (final.safetensors) · linear").stroke, ijepa_reports::plot::Stroke::Diamonds);
    ijepa_reports::plot::render(&ijepa_reports::plot::Figure { title: "t".into(), panels: vec![panel] }).unwrap();
}

/// Two runs' final checkpoints given to `ijepa eval` share the file name: each is named by the
/// end of its path that tells them apart, in the tables and the figures (both read
/// `I-JEPA (final.safetensors)`, one legend entry in one colour for two encoders); one file
/// (by its SHA-256) evaluated by two protocols keeps one name, however its path was written,
/// and a file alone with its name keeps it. One path that gave two files (written again
/// between two evaluations) names them by the start of their SHA-256 (they read alike).
#[test]
fn checkpoints_of_one_name_are_named_apart_by_their_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    let given = |path: &'static str, sha: &'static str| {
        move |v: &mut serde_json::Value| {
            let file = path.rsplit('/').next().unwrap();
            v["method"] = json!(format!("I-JEPA ({file})"));
            v["pretrain_dir"] = serde_json::Value::Null;
            v["checkpoint"] = json!(path);
            v["checkpoint_sha256"] = json!(sha);
        }
    };
    eval(&runs, "tscale", "linear-a", "linear", "ijepa", 90.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    patch_eval(&runs, "tscale", "linear-a", given("/r/x/pretrain-aaaaaaaaaaaa/checkpoints/final.safetensors", "a"));
    // (the same file, its path written another way: one name)
    eval(&runs, "tscale", "knn-a", "knn", "ijepa", 80.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    patch_eval(&runs, "tscale", "knn-a", given("x/pretrain-aaaaaaaaaaaa/checkpoints/final.safetensors", "a"));
    eval(&runs, "tscale", "linear-b", "linear", "ijepa", 60.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    patch_eval(&runs, "tscale", "linear-b", given("/r/x/pretrain-bbbbbbbbbbbb/checkpoints/final.safetensors", "b"));
    eval(&runs, "tscale", "linear-c", "linear", "ijepa", 50.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    patch_eval(&runs, "tscale", "linear-c", given("/r/x/official.pth.tar", "c"));
    let reg = load_registry(&runs).unwrap();
    let method = |dir: &str| reg.evals.iter().find(|e| e.dir.file_name().unwrap().to_string_lossy().starts_with(dir)).unwrap().record.method.clone();
    assert_eq!(method("eval-linear-a-"), "I-JEPA (pretrain-aaaaaaaaaaaa/checkpoints/final.safetensors)");
    assert_eq!(method("eval-knn-a-"), "I-JEPA (pretrain-aaaaaaaaaaaa/checkpoints/final.safetensors)");
    assert_eq!(method("eval-linear-b-"), "I-JEPA (pretrain-bbbbbbbbbbbb/checkpoints/final.safetensors)");
    assert_eq!(method("eval-linear-c-"), "I-JEPA (official.pth.tar)");
    let panel = sweep_panel(&reg, "tscale");
    // (an evaluation of the file at `path` recording `sha`, none where empty; the method each
    // evaluation is named by, read again)
    let add = |name: &str, protocol: &str, top1: f64, path: &'static str, sha: &'static str| {
        eval(&runs, "tscale", name, protocol, "ijepa", top1, None, json!({"mask.targets.scale": "0.1-0.2"}));
        patch_eval(&runs, "tscale", name, |v| {
            given(path, sha)(v);
            if sha.is_empty() {
                v.as_object_mut().unwrap().remove("checkpoint_sha256");
            }
        });
    };
    let named = |dir: &str| load_registry(&runs).unwrap().evals.iter().find(|e| e.dir.file_name().unwrap().to_string_lossy().starts_with(dir)).unwrap().record.method.clone();
    add("linear-d", "linear", 40.0, "/r/y/mine.safetensors", "9f86d081884c7d659a2feaa0c55ad015");
    add("knn-d", "knn", 30.0, "/r/y/mine.safetensors", "60303ae22b998861bce3b28f33eec1be");
    assert_eq!(named("eval-linear-d-"), "I-JEPA (mine.safetensors, SHA-256 9f86d081884c)");
    assert_eq!(named("eval-knn-d-"), "I-JEPA (mine.safetensors, SHA-256 60303ae22b99)");
    assert_eq!(named("eval-linear-c-"), "I-JEPA (official.pth.tar)");
    // (an earlier version's record of a file at one path, which recorded no SHA-256, keeps the
    // path's name, as does the one record of it with a SHA-256: it may be the same file)
    add("linear-e", "linear", 20.0, "/r/z/theirs.safetensors", "1111222233334444");
    add("knn-e", "knn", 10.0, "/r/z/theirs.safetensors", "");
    assert_eq!(named("eval-linear-e-"), "I-JEPA (theirs.safetensors)");
    assert_eq!(named("eval-knn-e-"), "I-JEPA (theirs.safetensors)");
    assert_eq!(series(&panel, "I-JEPA (pretrain-aaaaaaaaaaaa/checkpoints/final.safetensors) · linear").points, vec![(0.0, 90.0)]);
    assert_eq!(series(&panel, "I-JEPA (pretrain-bbbbbbbbbbbb/checkpoints/final.safetensors) · linear").points, vec![(0.0, 60.0)]);
}

/// A report written where an earlier report of another runs folder lies keeps none of that
/// report's tables and figures (they stayed beside the new one, of experiments it does not
/// read), nor the temporary files a report killed while writing left; other files of the
/// folder stay.
#[test]
fn a_report_replaces_the_files_of_the_earlier_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, out) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("out"));
    study_runs(&a);
    fake_runs(&b);
    let first = write_report(&load_registry(&a).unwrap(), &out).unwrap();
    fs::write(out.join("plots").join("mine.png"), b"a file of the user's").unwrap();
    // what a report killed while writing a file left (the temporary files of a process that
    // is gone: they stayed for good), and one of a process still running, which stays
    let host = ijepa_schema::temporary::host();
    // (an earlier version's name too, `.NAME.HOST-PID.tmp`)
    let dead = [
        out.join(format!(".report.html@{host}-4000000000.tmp")),
        out.join("plots").join(format!(".loss-x.png@{host}-4000000000.tmp")),
        out.join(format!(".report.md.{host}-4000000000.tmp")),
    ];
    // (process 1, init, always runs; another machine's may be writing on a shared folder, a
    // dotted host's too; a file of the user's is no report's)
    let live = [
        out.join(format!(".report.md@{host}-1.tmp")),
        out.join(".report.md@elsewhere-4000000000.tmp"),
        out.join(format!(".report.md.node.{host}-4000000000.tmp")),
        out.join(format!(".notes@{host}-4000000000.tmp")),
    ];
    for f in dead.iter().chain(&live) {
        fs::write(f, b"half").unwrap();
    }
    let second = write_report(&load_registry(&b).unwrap(), &out).unwrap();
    assert!(dead.iter().all(|f| !f.exists()) && live.iter().all(|f| f.exists()));
    let now: Vec<std::path::PathBuf> = second.tables.iter().chain(&second.plots).cloned().collect();
    let gone: Vec<_> = first.tables.iter().chain(&first.plots).filter(|f| !now.contains(f)).collect();
    assert!(!gone.is_empty(), "the two runs folders share every file name: nothing tested");
    for f in gone {
        assert!(!f.exists(), "{} of the earlier report is still there", f.display());
    }
    for f in &now {
        assert!(f.exists(), "{}", f.display());
    }
    assert!(out.join("plots").join("mine.png").exists());
}

/// A study that replicates one experiment over seeds shows each seed in the method tables,
/// told apart by its point (the tables showed the paper's rows alone, ours only in the sweep's
/// sections); a sweep over another setting stays in its sweep's sections.
#[test]
fn a_seeds_study_has_its_rows_in_the_method_tables() {
    let tmp = tempfile::tempdir().unwrap();
    for (seed, top1) in [("0", 61.5), ("1", 63.0)] {
        eval(tmp.path(), "rep", &format!("linear-ijepa-s{seed}"), "linear", "ijepa", top1, None, json!({"seed": seed}));
        eval(tmp.path(), "rep", &format!("linear-random-init-s{seed}"), "linear", "random-init", top1 - 20.0, None, json!({"seed": seed}));
        for lr in ["1e-3", "2e-3"] {
            eval(tmp.path(), "lrs", &format!("linear-ijepa-s{seed}-{lr}"), "linear", "ijepa", top1 + 5.0, None, json!({"seed": seed, "optimizer.lr.peak": lr}));
        }
    }
    // a grid of recipes x learning rates is a sweep: none of its rows (its random inits vary
    // the recipe alone and its pixels nothing, and stood in the table without the methods)
    for lr in ["1e-4", "5e-4"] {
        eval(tmp.path(), "grid", &format!("linear-ijepa-{lr}"), "linear", "ijepa", 50.0, None, json!({"recipe": "ijepa", "optimizer.lr.peak": lr}));
    }
    eval(tmp.path(), "grid", "linear-random-init", "linear", "random-init", 30.0, None, json!({"recipe": "ijepa"}));
    eval(tmp.path(), "grid", "linear-raw-pixels", "linear", "raw-pixels", 80.0, None, json!({}));
    // a zip giving each method its own epochs (one value each, as fmnist-methods does) is a
    // methods comparison: its rows are the table's, each naming its other settings
    for (recipe, epochs, top1) in [("ijepa", "8", 55.0), ("mae", "9", 52.0)] {
        eval(tmp.path(), "methods", &format!("linear-{recipe}"), "linear", "ijepa", top1, None, json!({"recipe": recipe, "epochs": epochs}));
        eval(tmp.path(), "methods", &format!("linear-random-{recipe}"), "linear", "random-init", top1 - 20.0, None, json!({"recipe": recipe}));
    }
    // (its pixels vary with a setting each method has its own value of: still a comparison)
    for limit in ["200", "300"] {
        eval(tmp.path(), "methods", &format!("linear-raw-pixels-{limit}"), "linear", "raw-pixels", 70.0, None, json!({"data.limit": limit}));
    }
    // a plain file sharing its study with a sweep: its own rows and the baselines they share
    eval(tmp.path(), "lrs", "linear-ijepa-plain", "linear", "ijepa", 70.0, None, json!({}));
    eval(tmp.path(), "lrs", "linear-raw-pixels", "linear", "raw-pixels", 81.0, None, json!({}));
    let reg = load_registry(tmp.path()).unwrap();
    let lin = rows(&linear_table(&reg));
    let mut ours: Vec<(&str, &str, &str, &str)> =
        lin.iter().filter(|r| r["source"] == "ours").map(|r| (r["experiment"].as_str(), r["method"].as_str(), r["point"].as_str(), r["top1"].as_str())).collect();
    ours.sort_unstable();
    assert_eq!(
        ours,
        [
            ("lrs", "I-JEPA (ours)", "", "70.0"),
            ("lrs", "raw pixels", "", "81.0"),
            ("methods", "I-JEPA (ours)", "epochs=8", "55.0"),
            ("methods", "I-JEPA (ours)", "epochs=9", "52.0"),
            ("methods", "random init", "", "32.0"),
            ("methods", "random init", "", "35.0"),
            ("methods", "raw pixels", "data.limit=200", "70.0"),
            ("methods", "raw pixels", "data.limit=300", "70.0"),
            ("rep", "I-JEPA (ours)", "seed=0", "61.5"),
            ("rep", "I-JEPA (ours)", "seed=1", "63.0"),
            ("rep", "random init", "seed=0", "41.5"),
            ("rep", "random init", "seed=1", "43.0"),
        ],
        "{lin:?}"
    );
}

/// The monitor's rank and spread panels draw the floors below which it warns of a collapse,
/// once per value (a rank wobbling by 0.1 filled its panel, with nothing to read it against);
/// a run whose config names none (or a floor of 0) draws none.
#[test]
fn the_monitor_figure_draws_its_collapse_floors() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    study_runs(&runs);
    // (per panel, each floor's label and points)
    type Floors = Vec<Vec<(String, Vec<(f64, f64)>)>>;
    let floors = |reg: &ijepa_reports::Registry| -> Floors {
        let figs = ijepa_reports::figures::experiment_figures(reg, "tscale");
        let fig = figs.iter().find(|f| f.stem == "monitor-tscale").expect("a monitor figure");
        // (the caption names the floors where they are drawn)
        assert_eq!(fig.caption.contains("the floors of the rank and the spread"), fig.figure.panels.iter().flat_map(|p| &p.series).any(|s| s.label.as_deref().is_some_and(|l| l.starts_with("collapse-warning floor"))), "{}", fig.caption);
        fig.figure.panels.iter().map(|p| p.series.iter().filter(|s| s.label.as_deref().is_some_and(|l| l.starts_with("collapse-warning floor"))).map(|s| (s.label.clone().unwrap(), s.points.clone())).collect()).collect()
    };
    assert_eq!(floors(&load_registry(&runs).unwrap()), vec![vec![]; 3], "no monitor settings recorded: no floor");
    for (i, lo) in [0.1, 0.15, 0.2].into_iter().enumerate() {
        let config = runs.join(format!("tscale-targets-scale-{lo}-0.2/pretrain-{}/config.json", i.to_string().repeat(12)));
        let mut c: serde_json::Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
        c["monitor"] = json!({"every": 1, "images": 100, "k": 20, "rank_floor": if i == 2 { 0.0 } else { 2.0 }, "spread_floor": 0.05});
        write_json(&config, &c);
    }
    let drawn = floors(&load_registry(&runs).unwrap());
    assert_eq!(drawn[0], vec![], "the kNN panel has the pixels' level, no floor");
    assert_eq!(drawn[1], vec![("collapse-warning floor (2)".to_string(), vec![(0.0, 2.0), (4.0, 2.0)])]);
    assert_eq!(drawn[2], vec![("collapse-warning floor (0.05)".to_string(), vec![(0.0, 0.05), (4.0, 0.05)])]);
}

/// A sweep over seeds alone replicates one setting: no sweep figure draws the seeds as
/// settings joined by a line (its rows are in the method and seeds tables), and in the probe
/// figure each seed's baselines get a colour of their own (they shared their subject's).
#[test]
fn a_seeds_study_draws_no_trend_and_tells_its_baselines_apart() {
    let tmp = tempfile::tempdir().unwrap();
    for (seed, top1) in [("0", 61.5), ("1", 63.0)] {
        for model in ["ijepa", "random-init", "raw-pixels"] {
            eval(tmp.path(), "rep", &format!("linear-{model}-s{seed}"), "linear", model, top1, None, json!({"seed": seed}));
        }
    }
    let reg = load_registry(tmp.path()).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, "rep");
    let stems: Vec<&str> = figs.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(stems, ["probe-rep"]);
    let series = &figs[0].figure.panels[0].series;
    let colours: std::collections::BTreeSet<usize> = series.iter().map(|s| s.colour).collect();
    assert_eq!(colours.len(), 6, "{:?}", series.iter().map(|s| (s.label.clone(), s.colour)).collect::<Vec<_>>());
}

/// A grid of recipes x learning rates: each value holds a number (`1e-4, ijepa`), but the
/// recipes are names, not an order: dots, not one line zig-zagging from one method to the
/// other along the learning rates; a sweep of numbers alone keeps its line.
#[test]
fn a_grid_of_recipes_and_numbers_draws_no_line_between_methods() {
    let tmp = tempfile::tempdir().unwrap();
    for (recipe, lr, top1) in [("ijepa", "1e-4", 40.0), ("ijepa", "5e-4", 45.0), ("mae", "1e-4", 35.0), ("mae", "5e-4", 30.0)] {
        eval(tmp.path(), "grid", &format!("knn-{recipe}-{lr}"), "knn", "ijepa", top1, None, json!({"recipe": recipe, "optimizer.lr.peak": lr}));
        eval(tmp.path(), "lrs", &format!("knn-{recipe}-{lr}"), "knn", "ijepa", top1, None, json!({"optimizer.lr.peak": lr, "seed": if recipe == "ijepa" { "0" } else { "1" }}));
    }
    // names with digits are names too
    for (data, top1) in [("cifar10", 40.0), ("cifar100", 20.0)] {
        eval(tmp.path(), "datasets", &format!("knn-{data}"), "knn", "ijepa", top1, None, json!({"data": data}));
    }
    let reg = load_registry(tmp.path()).unwrap();
    use ijepa_reports::plot::Stroke;
    assert!(sweep_figure_caption(&reg, "datasets").contains("one colour per protocol"));
    let strokes = |exp: &str| -> Vec<Stroke> { sweep_panel(&reg, exp).series.iter().filter(|s| s.label.as_deref().is_some_and(|l| !l.ends_with("each seed"))).map(|s| s.stroke).collect() };
    assert_eq!(strokes("grid"), [Stroke::Dots]);
    assert_eq!(strokes("datasets"), [Stroke::Dots]);
    assert_eq!(strokes("lrs"), [Stroke::Solid]);
}

/// A zip giving each recipe a seed of its own repeats no setting: the seed stays on the axis
/// (the figure said "mean over seeds" of one seed each, and hid which seed each method ran).
#[test]
fn a_zip_of_recipes_and_seeds_keeps_the_seed_on_its_axis() {
    let tmp = tempfile::tempdir().unwrap();
    for (recipe, seed, top1) in [("ijepa", "0", 40.0), ("mae", "1", 35.0)] {
        eval(tmp.path(), "zip", &format!("knn-{recipe}"), "knn", "ijepa", top1, None, json!({"recipe": recipe, "seed": seed}));
    }
    let reg = load_registry(tmp.path()).unwrap();
    let panel = sweep_panel(&reg, "zip");
    assert_eq!(panel.x_label, "recipe, seed");
    assert!(!panel.series.iter().any(|s| s.label.as_deref().is_some_and(|l| l.contains("mean over seeds"))), "{:?}", panel.series);
}

/// A report folder is refused inside a stage folder, known by its name and its record: a
/// project's own `manifest.json` above the runs folder refused every report folder under it.
#[test]
fn a_manifest_of_the_project_above_the_runs_refuses_no_report_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    fs::create_dir_all(proj.join("runs")).unwrap();
    fs::write(proj.join("manifest.json"), "{}").unwrap();
    ijepa_reports::check_out(&proj.join("runs"), &proj.join("reports-out")).unwrap();
    // a stage folder is still refused
    let stage = proj.join("runs/x/pretrain-0123456789ab");
    fs::create_dir_all(&stage).unwrap();
    fs::write(stage.join("manifest.json"), "{}").unwrap();
    assert!(ijepa_reports::check_out(&proj.join("other-runs"), &stage.join("rep")).is_err());
}

/// Nor does a report go into another runs folder: one of its experiment folders, inside one
/// (its feature cache), or the folder itself (it was written there, among the experiments
/// `ijepa report` of that folder reads); beside them it goes.
#[test]
fn a_report_of_one_runs_folder_is_refused_in_another() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    let stage = other.join("qs/eval-knn-ijepa-0123456789ab");
    fs::create_dir_all(&stage).unwrap();
    fs::write(stage.join("eval.json"), r#"{"experiment": "qs"}"#).unwrap();
    fs::create_dir_all(other.join("qs/features")).unwrap();
    let runs = tmp.path().join("runs");
    for out in [other.clone(), other.join("qs"), other.join("qs/features"), other.join("qs/new")] {
        let e = ijepa_reports::check_out(&runs, &out).unwrap_err().to_string();
        assert!(e.contains("a runs folder, one of its experiment folders or inside one") && e.contains("eval-knn-ijepa-0123456789ab"), "{}: {e}", out.display());
    }
    ijepa_reports::check_out(&runs, &tmp.path().join("reports-out")).unwrap();
    ijepa_reports::check_out(&runs, &tmp.path().join("other-report")).unwrap();
    // a sweep point's folder (`<experiment>-<point>`), by its pretraining's manifest
    let point = other.join("qs-seed-1/pretrain-0123456789ab");
    fs::create_dir_all(&point).unwrap();
    fs::write(point.join("manifest.json"), r#"{"stage": "pretrain", "experiment": "qs-seed-1", "study": "qs"}"#).unwrap();
    assert!(ijepa_reports::check_out(&runs, &other.join("qs-seed-1")).is_err());
    // a stage folder copied elsewhere (into a home folder, to share it) refuses no report
    // folder beside it: its record names another experiment
    let home = tmp.path().join("alice");
    let copied = home.join("pretrain-0123456789ab");
    fs::create_dir_all(&copied).unwrap();
    fs::write(copied.join("manifest.json"), r#"{"stage": "pretrain", "experiment": "qs"}"#).unwrap();
    ijepa_reports::check_out(&home.join("project/runs"), &home.join("project/reports-out")).unwrap();
    // a folder of links to other folders' experiments (or of copies under other names) is a
    // runs folder too
    let compare = tmp.path().join("compare");
    fs::create_dir_all(&compare).unwrap();
    std::os::unix::fs::symlink(other.join("qs"), compare.join("qs-a")).unwrap();
    assert!(ijepa_reports::check_out(&runs, &compare).is_err());
}

/// The paper's Tables 1 and 2 are shown beside ours always: where they hold no row of ours, the
/// blurb says why (our evaluations of the protocol are sweep points, or there are none), where
/// two tables of the paper's rows alone read as ours missing.
#[test]
fn a_paper_table_without_rows_of_ours_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    eval(&runs, "sw", "linear-a", "linear", "ijepa", 80.1, None, json!({"mask.targets.scale": "0.15-0.2"}));
    eval(&runs, "sw", "linear-b", "linear", "ijepa", 79.0, None, json!({"mask.targets.scale": "0.1-0.2"}));
    let reg = load_registry(&runs).unwrap();
    let files = write_report(&reg, &tmp.path().join("out")).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    let section = |title: &str| md.split(&format!("## {title}")).nth(1).and_then(|s| s.split(" ## ").next()).unwrap_or_default().to_string();
    assert!(section("Linear probe").contains("Our evaluations of this protocol are sweep points"), "{md}");
    assert!(section("Low-shot evaluation").contains("No evaluation of ours used this protocol"), "{md}");
    // (with a row of ours, nothing is said)
    eval(&runs, "plain", "low-shot-a", "low-shot", "ijepa", 50.0, Some(0.01), json!({}));
    let reg = load_registry(&runs).unwrap();
    let files = write_report(&reg, &tmp.path().join("out2")).unwrap();
    let md = fs::read_to_string(&files.markdown).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    let section = |title: &str| md.split(&format!("## {title}")).nth(1).and_then(|s| s.split(" ## ").next()).unwrap_or_default().to_string();
    assert!(!section("Low-shot evaluation").contains("of ours") && section("Linear probe").contains("sweep points"), "{md}");
}

/// Point `i` of a sweep `study` over `optimizer.lr.peak` (`{i+1}e-4`, pretraining
/// `{i:012}`) as `ijepa run` lays it out: its pretraining, and in the study's folder a linear
/// evaluation of it (`linear-{i}`, `top1`); returns the pretraining's folder.
fn lr_point(runs: &Path, study: &str, i: usize, top1: f64) -> std::path::PathBuf {
    let lr = format!("{}e-4", i + 1);
    let point = format!("{study}-optimizer-lr-peak-{lr}");
    let hash = format!("{i:012}");
    pretrain(runs, &point, &hash, [0.15, 0.2], 0.05);
    let f = format!("linear-{i}");
    eval(runs, study, &f, "linear", "ijepa", top1, None, json!({"optimizer.lr.peak": lr}));
    patch_eval(runs, study, &f, |v| v["pretrain_dir"] = json!(format!("runs/{point}/pretrain-{hash}")));
    runs.join(&point).join(format!("pretrain-{hash}"))
}

/// A sweep of more runs than the figures have colours for: its first six points' runs (in
/// the sweep's order, not the folders') are named, each in one colour in every figure, the
/// probe figure's too (never the baselines' orange and green, the floors' black nor the
/// others' grey); the rest are drawn faint grey under one legend entry that counts them, which
/// the caption explains (12 runs drew 12 legend entries a figure in colours that repeated,
/// and a 60-point sweep a monitor figure 1,900 px tall).
#[test]
fn a_sweep_past_six_runs_names_six_and_draws_the_others_faint_grey() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "wide";
    // (values whose folders' order is not the sweep's: `10e-4` comes before `1e-4`)
    for i in 0..12 {
        let pdir = lr_point(&runs, study, i, 70.0 + i as f64);
        let mut mon = String::from("step,epoch,encoder,knn_top1,rankme,spread,seconds\n0,0,pixels,76.0,296.0,0.70,0.5\n");
        for e in 0..=4 {
            mon.push_str(&format!("{},{e},target,{},{},0.3,1.0\n{},{e},context,{},{},0.3,1.0\n", e * 10, 40 + 5 * e, 3 + e, e * 10, 41 + 5 * e, 4 + e));
        }
        fs::write(pdir.join("monitor.csv"), mon).unwrap();
        // (one of the grey runs diverged: the loss figure's caption says so, its grey stub
        // being told from the others by nothing)
        if i == 9 {
            patch_json(&pdir.join("manifest.json"), |m| {
                m["status"] = json!("failed");
                m["diverged_at"] = json!(12);
            });
        }
    }
    for (model, top1) in [("random-init", 68.0), ("raw-pixels", 83.0)] {
        eval(&runs, study, &format!("linear-{model}"), "linear", model, top1, None, json!({}));
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let fig = |stem: &str| figs.iter().find(|f| f.stem == format!("{stem}-{study}")).unwrap_or_else(|| panic!("no {stem} figure"));
    // (each run's colour in a figure, by its hash; and the figure's distinct legend labels)
    let colours = |stem: &str| -> std::collections::BTreeMap<String, usize> {
        fig(stem).figure.panels.iter().flat_map(|p| &p.series).filter_map(|s| {
            let l = s.label.as_deref()?;
            let hash = l.split("pretrain-").nth(1)?.get(..12)?;
            Some((hash.to_string(), s.colour))
        }).collect()
    };
    let labels = |stem: &str| -> std::collections::BTreeSet<String> {
        fig(stem).figure.panels.iter().flat_map(|p| &p.series).filter_map(|s| s.label.clone()).collect()
    };
    let loss = colours("loss");
    // the sweep's first six points
    assert_eq!(loss.keys().cloned().collect::<Vec<_>>(), (0..6).map(|i| format!("{i:012}")).collect::<Vec<_>>(), "{loss:?}");
    let distinct: std::collections::BTreeSet<usize> = loss.values().copied().collect();
    assert_eq!(distinct.len(), 6, "six colours: {loss:?}");
    assert!(loss.values().all(|&c| ![1, 2, 6, 7].contains(&c)), "neither the baselines' colours, black nor grey: {loss:?}");
    for stem in ["loss", "schedules", "monitor"] {
        assert_eq!(colours(stem), loss, "{stem}: each run its colour in every figure");
        let more: Vec<&ijepa_reports::plot::Series> = fig(stem).figure.panels.iter().flat_map(|p| &p.series).filter(|s| s.label.as_deref() == Some("6 more runs (faint grey; the tables name each)")).collect();
        // (the monitor: each other run's evaluated encoder alone, in each of its panels)
        assert_eq!(more.len(), if stem == "schedules" || stem == "monitor" { 18 } else { 6 }, "{stem}");
        assert!(more.iter().all(|s| s.colour == 7 && s.stroke == ijepa_reports::plot::Stroke::Faint), "{stem}");
        assert!(fig(stem).caption.contains("The first 6 runs (a sweep's in its order) have colours of their own; the other 6, which would repeat them, are drawn faint grey"), "{stem}: {}", fig(stem).caption);
        // six runs' entries (the monitor's: two encoders each), the others', the levels
        let n = labels(stem).len();
        assert!(n <= 2 * 6 + 3, "{stem}: {n} legend labels: {:?}", labels(stem));
    }
    assert!(fig("loss").caption.contains("One of the faint grey runs diverged (the pretraining table names it)."), "{}", fig("loss").caption);
    let probe = labels("probe");
    assert!(probe.contains("random init · linear") && probe.contains("raw pixels · linear"), "{probe:?}");
    assert!(probe.contains("6 more curves (faint grey; the tables name each)"), "{probe:?}");
    assert_eq!(probe.iter().filter(|l| l.starts_with("I-JEPA (ours) · linear [")).count(), 6, "{probe:?}");
    // (each run's encoder in its run's colour; the baselines in theirs)
    for s in fig("probe").figure.panels[0].series.iter().filter(|s| s.colour != 7) {
        let l = s.label.as_deref().unwrap();
        let want = match l {
            "random init · linear" => 1,
            "raw pixels · linear" => 2,
            _ => loss[&format!("{:012}", l.split("=").nth(1).unwrap().trim_end_matches("e-4]").parse::<usize>().unwrap() - 1)],
        };
        assert_eq!(s.colour, want, "{l}");
    }
    assert!(probe.contains("I-JEPA (ours) · linear [optimizer.lr.peak=1e-4]") && !probe.contains("I-JEPA (ours) · linear [optimizer.lr.peak=10e-4]"), "{probe:?}");
    assert!(fig("probe").caption.contains("6 curves, past the colours (of runs past the first runs, or subjects past the palette), are drawn faint grey"), "{}", fig("probe").caption);
    // a sweep of six: every run named, nothing grey, no word of others
    for i in 6..12 {
        fs::remove_dir_all(runs.join(format!("{study}-optimizer-lr-peak-{}e-4", i + 1))).unwrap();
        fs::remove_dir_all(runs.join(study).join(format!("eval-linear-{i}-abcdef012345"))).unwrap();
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    for f in &figs {
        assert!(!f.caption.contains("faint grey without names") && !f.caption.contains("drawn faint grey"), "{}: {}", f.stem, f.caption);
        assert!(f.figure.panels.iter().flat_map(|p| &p.series).all(|s| s.colour != 7), "{}", f.stem);
    }
}

/// A grid with more combinations of the other settings than the lines have colours for: the
/// first nine (in the values' order, the settings' alphabetical) are lines of their own colours, the others faint grey
/// lines under one legend entry, which the caption explains (it fell back to one line through
/// all 48 combinations, zig-zagging from one decay's largest learning rate to the next
/// decay's smallest).
#[test]
fn a_grid_past_nine_lines_draws_the_others_faint_grey() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let study = "wide-grid";
    let mut i = 0;
    // (4 learning rates along x; a line per decay and momentum: 4 x 3 = 12)
    for (d, wd) in ["1e-2", "2e-2", "4e-2", "8e-2"].into_iter().enumerate() {
        for (m, ema) in ["0.99", "0.996", "0.999"].into_iter().enumerate() {
            for lr in ["1e-4", "3e-4", "1e-3", "3e-3"] {
                eval(&runs, study, &format!("linear-{i}"), "linear", "ijepa", 50.0 + (3 * d + m) as f64, None, json!({"optimizer.lr.peak": lr, "optimizer.weight-decay": wd, "ema.start": ema}));
                i += 1;
            }
        }
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let sweep = figs.iter().find(|f| f.stem == format!("sweep-{study}")).expect("a sweep figure");
    let panel = &sweep.figure.panels[0];
    assert_eq!(panel.x_label, "optimizer.lr.peak");
    let named: Vec<&ijepa_reports::plot::Series> = panel.series.iter().filter(|s| s.label.as_deref().is_some_and(|l| l.starts_with("I-JEPA (ours) · "))).collect();
    assert_eq!(named.len(), 9, "{:?}", panel.series.iter().map(|s| &s.label).collect::<Vec<_>>());
    let flat = |y: f64| (0..4).map(|x| (x as f64, y)).collect::<Vec<_>>();
    assert_eq!(series(panel, "I-JEPA (ours) · ema.start=0.99, optimizer.weight-decay=1e-2").points, flat(50.0));
    assert_eq!(series(panel, "I-JEPA (ours) · ema.start=0.996, optimizer.weight-decay=2e-2").points, flat(54.0));
    let grey: Vec<&ijepa_reports::plot::Series> = panel.series.iter().filter(|s| s.label.as_deref() == Some("3 more combinations (faint grey; the tables name each)")).collect();
    assert_eq!(grey.len(), 3, "{:?}", panel.series.iter().map(|s| &s.label).collect::<Vec<_>>());
    assert!(grey.iter().all(|s| s.colour == 7 && s.stroke == ijepa_reports::plot::Stroke::Faint && s.points.len() == 4 && s.points.iter().all(|p| p.1 == s.points[0].1)));
    let colours: std::collections::BTreeSet<usize> = named.iter().map(|s| s.colour).collect();
    assert_eq!(colours.len(), 9);
    assert!(sweep.caption.contains("The first 9 combinations of `ema.start`, `optimizer.weight-decay` have colours of their own; the other 3, which would repeat them, are drawn as faint grey lines where they have results"), "{}", sweep.caption);
    ijepa_reports::plot::render(&sweep.figure).unwrap();
}

/// The probe figure's colours where runs and curves do not pair one to one: a sweep of an
/// evaluation's own setting draws one encoder's curves each in a colour of its own (all were
/// its run's colour, one stroke); beside six runs, two recipes' random inits keep colours of
/// their own (the second was drawn grey); and the monitor's raw-pixel levels of other images
/// are told apart (all were one green).
#[test]
fn probe_curves_and_pixel_levels_keep_apart_where_runs_do_not_pair_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain(&runs, "one", "aaaaaaaaaaaa", [0.15, 0.2], 0.05);
    for epochs in ["10", "20", "40"] {
        let f = format!("linear-{epochs}");
        eval(&runs, "one", &f, "linear", "ijepa", 70.0, None, json!({"eval.linear.epochs": epochs}));
        patch_eval(&runs, "one", &f, |v| v["pretrain_dir"] = json!("runs/one/pretrain-aaaaaaaaaaaa"));
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, "one");
    let probe = figs.iter().find(|f| f.stem == "probe-one").unwrap();
    let colours: std::collections::BTreeSet<usize> = probe.figure.panels[0].series.iter().map(|s| s.colour).collect();
    assert_eq!(colours.len(), 3, "{:?}", probe.figure.panels[0].series);
    assert!(!probe.caption.contains("in that run's colour"), "{}", probe.caption);

    let study = "six";
    for i in 0..6 {
        let pdir = lr_point(&runs, study, i, 70.0);
        // (two sets of held-out images: the last run's are others)
        let pixels = if i == 5 { 60.0 } else { 76.0 };
        let mut mon = format!("step,epoch,encoder,knn_top1,rankme,spread,seconds\n0,0,pixels,{pixels},296.0,0.70,0.5\n");
        for e in 0..=2 {
            mon.push_str(&format!("{},{e},target,{},5,0.3,1.0\n", e * 10, 40 + 5 * e));
        }
        fs::write(pdir.join("monitor.csv"), mon).unwrap();
    }
    for (name, method) in [("linear-init-ijepa", "random init"), ("linear-init-mae", "random init (MAE)")] {
        eval(&runs, study, name, "linear", "random-init", 60.0, None, json!({}));
        patch_eval(&runs, study, name, |v| v["method"] = json!(method));
    }
    let reg = load_registry(&runs).unwrap();
    let figs = ijepa_reports::figures::experiment_figures(&reg, study);
    let probe = figs.iter().find(|f| f.stem == format!("probe-{study}")).unwrap();
    let series = &probe.figure.panels[0].series;
    assert!(series.iter().all(|s| s.colour != 7), "none grey: {series:?}");
    let colours: std::collections::BTreeSet<usize> = series.iter().map(|s| s.colour).collect();
    assert_eq!(colours.len(), 8, "{series:?}");
    assert!(probe.caption.contains("in that run's colour") && !probe.caption.contains("faint grey"), "{}", probe.caption);
    let monitor = figs.iter().find(|f| f.stem == format!("monitor-{study}")).unwrap();
    let levels: Vec<&ijepa_reports::plot::Series> = monitor.figure.panels[0].series.iter().filter(|s| s.label.as_deref().is_some_and(|l| l.contains("raw pixels"))).collect();
    assert_eq!(levels.len(), 2, "{levels:?}");
    assert_ne!(levels[0].colour, levels[1].colour, "{levels:?}");
}

/// A `metrics.csv` value that is no number is said at its line of the file, blank lines
/// counted (the count of records named the line before).
#[test]
fn a_bad_metrics_value_is_said_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("metrics.csv");
    for (text, line) in [
        ("step,epoch,loss\n1,1,0.5\n2,1,0.4\n\n3,1,0.3\n4,1,0.2\n5,1,x.1\n6,1,0.1\n", 7),
        // (blank lines just before it, with Windows line ends too)
        ("step,epoch,loss\n1,1,0.5\n2,1,0.4\n\n\n\n5,1,x.1\n6,1,0.1\n", 7),
        ("step,epoch,loss\r\n\r\n5,1,x.1\r\n6,1,0.1\r\n", 3),
        ("step,epoch,loss\n5,1,x.1\n6,1,0.1\n", 2),
        // (lone carriage returns end lines too)
        ("step,epoch,loss\r1,1,0.5\r\r5,1,x.1\r6,1,0.1\r", 4),
    ] {
        fs::write(&csv, text).unwrap();
        let e = ijepa_reports::registry::read_metrics(&csv).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line}: `x.1` in column `loss` is not a number")), "{text:?}: {e}");
    }
}
