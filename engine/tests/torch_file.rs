//! The strict `torch.save` reader against fixtures written by torch 2.11
//! (`tests/fixtures/pth/make_pth_fixtures.py`): every dtype, views sharing a storage,
//! non-contiguous, 0-d and empty tensors, protocols 2/4/5, the official I-JEPA checkpoint
//! layout (state dicts with `module.` names, an AdamW state dict, a GradScaler state dict),
//! compared exactly (bit patterns) with the generator's `*.expect.json`; pickles naming
//! forbidden globals (nothing runs); and broken files, each a clear `Error::Checkpoint`.

use ijepa_engine::checkpoint::pickle::Value;
use ijepa_engine::checkpoint::torch_file::{self, load, load_lazy, load_selected, state_dict};
use ijepa_engine::Error;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// What the malicious fixtures' payload would write.
const MARKER: &str = "/tmp/ijepa-pth-fixture-pwned";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pth").join(name)
}

fn expectation(name: &str) -> Json {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn kind_of(dtype: &str) -> Kind {
    match dtype {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        "float16" => Kind::Half,
        "bfloat16" => Kind::BFloat16,
        "int64" => Kind::Int64,
        "int32" => Kind::Int,
        "int16" => Kind::Int16,
        "int8" => Kind::Int8,
        "uint8" => Kind::Uint8,
        "bool" => Kind::Bool,
        other => panic!("dtype {other}"),
    }
}

/// Element bit patterns as the generator writes them.
fn bits(t: &Tensor) -> Vec<i64> {
    let t = match t.kind() {
        Kind::Float => t.view_dtype(Kind::Int),
        Kind::Double => t.view_dtype(Kind::Int64),
        Kind::Half | Kind::BFloat16 => t.view_dtype(Kind::Int16),
        _ => t.shallow_clone(),
    };
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).reshape([-1])).unwrap()
}

fn json_list<'a>(j: &'a Json, path: &str) -> &'a Vec<Json> {
    j.as_array().unwrap_or_else(|| panic!("{path}: expectation is not a list"))
}

/// Compares a loaded value with the generator's description, exactly.
fn check(v: &Value, j: &Json, path: &str) {
    let obj = j.as_object().unwrap();
    let (tag, want) = obj.iter().find(|(k, _)| *k != "repr").unwrap();
    match (tag.as_str(), v) {
        ("none", Value::None) => {}
        ("bool", Value::Bool(b)) => assert_eq!(Some(*b), want.as_bool(), "{path}"),
        ("int", Value::Int(i)) => assert_eq!(Some(*i), want.as_i64(), "{path}"),
        ("float", Value::Float(x)) => assert_eq!(Some(x.to_bits() as i64), want.as_i64(), "{path} = {x}"),
        ("str", Value::Str(s)) => assert_eq!(Some(s.as_str()), want.as_str(), "{path}"),
        ("list", Value::List(items)) | ("tuple", Value::Tuple(items)) => {
            let want = json_list(want, path);
            assert_eq!(items.len(), want.len(), "{path}: length");
            for (i, (x, w)) in items.iter().zip(want).enumerate() {
                check(x, w, &format!("{path}/{i}"));
            }
        }
        ("dict", Value::Dict(items)) => {
            let want = json_list(want, path);
            assert_eq!(items.len(), want.len(), "{path}: length");
            for ((k, x), w) in items.iter().zip(want) {
                let w = json_list(w, path);
                check(k, &w[0], &format!("{path}/key"));
                let seg = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                check(x, &w[1], &format!("{path}/{seg}"));
            }
        }
        ("tensor", Value::Tensor(t)) => {
            let kind = kind_of(want["dtype"].as_str().unwrap());
            assert_eq!(t.kind(), kind, "{path}: dtype");
            let shape: Vec<i64> = json_list(&want["shape"], path).iter().map(|x| x.as_i64().unwrap()).collect();
            assert_eq!(t.size(), shape, "{path}: shape");
            assert!(t.is_contiguous(), "{path}: contiguous");
            assert!(!t.requires_grad(), "{path}: requires_grad is dropped");
            assert_eq!(t.device(), tch::Device::Cpu);
            let want_bits: Vec<i64> = json_list(&want["bits"], path).iter().map(|x| x.as_i64().unwrap()).collect();
            assert_eq!(bits(t), want_bits, "{path}: values");
        }
        (tag, v) => panic!("{path}: expected {tag}, got {v:?}"),
    }
}

fn checkpoint_error(name: &str) -> String {
    match load(&fixture(name)) {
        Ok(v) => panic!("{name}: loaded {v:?}"),
        Err(Error::Checkpoint { path, message }) => {
            assert_eq!(path, fixture(name));
            message
        }
        Err(e) => panic!("{name}: not a checkpoint error: {e}"),
    }
}

#[test]
fn dtypes_views_and_protocols_load_exactly() {
    let want = expectation("dtypes.expect.json");
    for name in ["dtypes.pth", "dtypes_p4.pth", "dtypes_p5.pth"] {
        let v = load(&fixture(name)).unwrap();
        check(&v, &want, name);
    }
    let path = fixture("dtypes.pth");
    let v = load(&path).unwrap();
    let sd = state_dict(&v, &path).unwrap();
    let names: Vec<&str> = sd.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["f32", "f64", "f16"]);
    assert_eq!(names.len(), 22);
    // a strided view of a storage comes back as a copy of its own (a contiguous one shares the
    // storage, as torch's load shares it)
    let base = v.get("base").unwrap().as_tensor().unwrap();
    let before = bits(v.get("base_t").unwrap().as_tensor().unwrap());
    let mut b = base.shallow_clone();
    let _ = b.f_add_scalar_(1.0).unwrap();
    assert_eq!(bits(v.get("base_t").unwrap().as_tensor().unwrap()), before);
    assert_eq!(v.get("scalar").unwrap().to_f64(), Some(3.25));
    assert_eq!(v.get("scalar").unwrap().as_tensor().unwrap().dim(), 0);
}

#[test]
fn lazy_and_selected_loading() {
    let path = fixture("dtypes.pth");
    let v = load_lazy(&path).unwrap();
    let base = v.get("base").unwrap().as_lazy().unwrap();
    let base_t = v.get("base_t").unwrap().as_lazy().unwrap();
    let col2 = v.get("col2").unwrap().as_lazy().unwrap();
    assert_eq!(base.storage, base_t.storage);
    assert_eq!((base_t.size.as_slice(), base_t.stride.as_slice()), (&[4i64, 3][..], &[1i64, 4][..]));
    assert_eq!((col2.offset, col2.stride.as_slice()), (2, &[4i64][..]));
    assert_eq!(base.storage.kind, Kind::Float);
    assert_eq!(base.storage.location, "cpu");
    assert!(v.get("param").unwrap().as_lazy().unwrap().requires_grad);
    assert!(v.get("grad").unwrap().as_lazy().unwrap().requires_grad);
    assert!(!base.requires_grad);
    assert_eq!(v.get("bf16").unwrap().as_lazy().unwrap().storage.kind, Kind::BFloat16);
    let err = state_dict(&v, &path).unwrap_err().to_string();
    assert!(err.contains("`f32` is a tensor (not loaded)"), "{err}");

    let v = load_selected(&path, |p| p == ["row1"] || p == ["tail"]).unwrap();
    assert_eq!(bits(v.get("row1").unwrap().as_tensor().unwrap()), bits(&(Tensor::from_slice(&[0.0f32, 0.25, 0.5, 0.75]))));
    assert_eq!(v.get("tail").unwrap().as_tensor().unwrap().size(), [10]);
    assert!(v.get("base").unwrap().as_lazy().is_some());
    // a lazy load does not read storages: a missing one goes unnoticed
    assert!(load_lazy(&fixture("missing_storage.pth")).is_ok());
}

#[test]
fn official_checkpoint_layout() {
    let path = fixture("official_layout.pth");
    let ck = load(&path).unwrap();
    check(&ck, &expectation("official_layout.expect.json"), "official_layout");
    let keys: Vec<&str> = ck.as_dict().unwrap().iter().map(|(k, _)| k.as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["encoder", "predictor", "target_encoder", "opt", "scaler", "epoch", "loss", "batch_size", "world_size", "lr"]
    );
    for part in ["encoder", "predictor", "target_encoder"] {
        let sd = state_dict(ck.get(part).unwrap(), &path).unwrap();
        assert!(!sd.is_empty());
        assert!(sd.iter().all(|(n, _)| n.starts_with("module.")), "{part}");
    }
    let enc = state_dict(ck.get("encoder").unwrap(), &path).unwrap();
    assert_eq!(enc[0].0, "module.pos_embed");
    assert_eq!(enc[1].0, "module.patch_embed.proj.weight");
    assert_eq!(enc[1].1.size(), [8, 3, 2, 2]);
    assert_eq!(ck.get("epoch").unwrap().as_int(), Some(1));
    assert_eq!(ck.get("batch_size").unwrap().as_int(), Some(2));
    assert_eq!(ck.get("world_size").unwrap().as_int(), Some(1));
    assert_eq!(ck.get("lr").unwrap().as_float(), Some(1.25e-4));
    assert!(ck.get("loss").unwrap().as_float().unwrap() > 0.0);

    let opt = ck.get("opt").unwrap();
    let groups = opt.get("param_groups").unwrap().as_list().unwrap();
    assert_eq!(groups.len(), 4);
    for (i, g) in groups.iter().enumerate() {
        let betas = g.get("betas").unwrap().as_tuple().unwrap();
        assert_eq!((betas[0].as_float(), betas[1].as_float()), (Some(0.9), Some(0.999)));
        assert_eq!(g.get("lr").unwrap().as_float(), Some(1.25e-4));
        assert_eq!(g.get("eps").unwrap().as_float(), Some(1e-8));
        assert_eq!(g.get("WD_exclude").and_then(Value::as_bool), (i >= 2).then_some(true));
        let wd = g.get("weight_decay").unwrap().as_float().unwrap();
        assert_eq!(wd, if i >= 2 { 0.0 } else { 0.04 });
        assert!(g.get("params").unwrap().as_list().unwrap().iter().all(|p| p.as_int().is_some()));
    }
    let state = opt.get("state").unwrap().as_dict().unwrap();
    // parameter 0 (`pos_embed`, frozen) has no state: the first entry is parameter 1
    let (k, first) = &state[0];
    assert_eq!(k.as_int(), Some(1));
    assert!(opt.get("state").unwrap().get_int(0).is_none());
    let step = first.get("step").unwrap();
    assert_eq!(step.as_tensor().unwrap().dim(), 0, "torch 2.x keeps `step` as a 0-d tensor");
    assert_eq!(step.to_f64(), Some(1.0));
    let (n0, p0) = &state_dict(ck.get("encoder").unwrap(), &path).unwrap()[1];
    assert_eq!(n0, "module.patch_embed.proj.weight");
    assert_eq!(first.get("exp_avg").unwrap().as_tensor().unwrap().size(), p0.size());
    assert_eq!(first.get("exp_avg_sq").unwrap().as_tensor().unwrap().size(), p0.size());
    let scaler = ck.get("scaler").unwrap();
    assert_eq!(scaler.get("scale").unwrap().as_float(), Some(65536.0));
    assert_eq!(scaler.get("growth_interval").unwrap().as_int(), Some(2000));

    // not a state dict: the first non-tensor entry is named
    let err = state_dict(&ck, &path).unwrap_err().to_string();
    assert!(err.contains("`encoder` is a dict, not a tensor"), "{err}");
}

#[test]
fn other_prefix_without_byteorder_and_zip64() {
    for name in ["prefix_other.pth", "zip64.pth"] {
        let v = load(&fixture(name)).unwrap();
        check(&v, &expectation("prefix_other.expect.json"), name);
    }
}

#[test]
fn forbidden_globals_are_rejected_and_nothing_runs() {
    let _ = std::fs::remove_file(MARKER);
    for (name, global) in [
        ("evil_os_system.pth", "`os.system`"),
        ("evil_os_system_stack.pth", "`os.system`"),
        ("evil_posix_system.pth", "`posix.system`"),
        ("evil_eval.pth", "`__builtin__.eval`"), // protocol 2 writes Python 2 names
        ("evil_eval_p4.pth", "`builtins.eval`"),
        ("evil_popen.pth", "`subprocess.Popen`"),
        ("evil_popen_p2.pth", "`commands.Popen`"),
        ("evil_torch_load.pth", "`torch.load`"),
    ] {
        let msg = checkpoint_error(name);
        assert!(msg.contains(&format!("forbidden pickle global {global}")), "{name}: {msg}");
        assert!(load_lazy(&fixture(name)).is_err());
    }
    assert!(!Path::new(MARKER).exists(), "a payload ran");
}

#[test]
fn broken_files_are_clear_errors() {
    for (name, needle) in [
        ("empty.pth", "empty file"),
        ("not_a_zip.pth", "not a zip archive"),
        ("legacy_format.pth", "legacy torch.save format"),
        ("truncated_half.pth", "corrupt or truncated zip archive"),
        ("garbage_pkl.pth", "data.pkl"),
        ("truncated_pkl.pth", "truncated pickle"),
        ("no_data_pkl.pth", "no `data.pkl`"),
        ("missing_storage.pth", "entry `small_ok/data/0` is missing"),
        ("short_storage.pth", "holds 16 bytes, expected 24"),
        ("crc_mismatch.pth", "Invalid checksum"),
        ("storage_too_small.pth", "reach past its storage `0` of 4 elements"),
        ("offset_too_large.pth", "reach past its storage"),
        ("broadcast_view.pth", "a view of 1000000000000 elements over a storage `0` of 1 element (size [1000000, 1000000], stride [0, 0]"),
        ("broadcast_views.pth", "with the file's other expanded tensors, more than the 256 MiB"),
        ("storage_two_dtypes.pth", "storage `0` is named as"),
        ("bad_bool.pth", "bool storage"),
        ("big_endian.pth", "big-endian"),
        ("deflated.pth", "compress"),
    ] {
        let msg = checkpoint_error(name);
        assert!(msg.contains(needle), "{name}: {msg}");
        eprintln!("{name}: {msg}");
    }
    match load(&fixture("does-not-exist.pth")) {
        Err(Error::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
}

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ijepa-torch-file-{}-{tag}.pth", std::process::id()))
}

#[test]
fn every_truncation_and_random_corruption_is_an_error_not_a_panic() {
    for name in ["prefix_other.pth", "dtypes.pth"] {
        let raw = std::fs::read(fixture(name)).unwrap();
        let tmp = scratch("cut");
        let step = (raw.len() / 400).max(1);
        for n in (0..raw.len()).step_by(step) {
            std::fs::write(&tmp, &raw[..n]).unwrap();
            assert!(load(&tmp).is_err(), "{name} cut at {n}");
        }
        let tmp = scratch("flip");
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut ok, mut bad) = (0, 0);
        for _ in 0..600 {
            let mut q = raw.clone();
            for _ in 0..1 + rand() % 3 {
                let i = (rand() % q.len() as u64) as usize;
                q[i] ^= 1 << (rand() % 8);
            }
            std::fs::write(&tmp, &q).unwrap();
            match load(&tmp) {
                Ok(_) => ok += 1,
                Err(Error::Checkpoint { .. }) => bad += 1,
                Err(e) => panic!("{name}: unexpected error kind {e}"),
            }
        }
        eprintln!("{name}: random bit flips: {ok} still load, {bad} rejected");
        let _ = std::fs::remove_file(scratch("cut"));
        let _ = std::fs::remove_file(tmp);
    }
}

#[test]
fn value_helpers() {
    let v = load(&fixture("official_layout.pth")).unwrap();
    assert!(v.get("nope").is_none());
    assert!(v.get("scaler").unwrap().get("scale").unwrap().as_int().is_none());
    assert_eq!(v.get("epoch").unwrap().as_float(), Some(1.0));
    assert_eq!(v.get("epoch").unwrap().type_name(), "int");
    let groups = v.get("opt").unwrap().get("param_groups").unwrap();
    assert!(groups.as_seq().is_some() && groups.as_tuple().is_none());
    assert!(groups.as_list().unwrap()[0].get("foreach").unwrap().is_none());
    // torch_file is the module path the docs use
    let _ = torch_file::load_lazy;
}
