//! Image decoding and the ImageNet-scale datasets (image folder, list-file subset, CIFAR)
//! over fixtures generated here: JPEGs written with the `jpeg-encoder` crate, PNGs with `png`,
//! CIFAR binaries by hand, all into a temporary folder (nothing binary is committed).

use std::path::{Path, PathBuf};

use ijepa_engine::data::cifar::{Cifar, CifarSplit, CifarVariant};
use ijepa_engine::data::decode::{decode, image_size};
use ijepa_engine::data::image_folder::{ImageFolder, OnError};
use ijepa_engine::data::list_file::Subset;
use ijepa_engine::data::{Dataset, Image};
use ijepa_engine::error::Error;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// A fresh temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ijepa-datasets-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn jpeg(data: &[u8], w: u16, h: u16, ct: ColorType, progressive: bool) -> Vec<u8> {
    jpeg_sampled(data, w, h, ct, progressive, SamplingFactor::F_2_2)
}

fn jpeg_sampled(
    data: &[u8],
    w: u16,
    h: u16,
    ct: ColorType,
    progressive: bool,
    sf: SamplingFactor,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut e = Encoder::new(&mut buf, 95);
    e.set_sampling_factor(sf);
    e.set_progressive(progressive);
    e.encode(data, w, h, ct).unwrap();
    buf
}

fn solid(w: usize, h: usize, px: &[u8]) -> Vec<u8> {
    px.repeat(w * h)
}

/// A smooth RGB gradient, `w x h`.
fn gradient(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            v.extend([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) * 127 / (w + h)) as u8,
            ]);
        }
    }
    v
}

fn png_bytes(
    w: u32,
    h: u32,
    ct: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut e = png::Encoder::new(&mut buf, w, h);
        e.set_color(ct);
        e.set_depth(depth);
        if let Some(p) = palette {
            e.set_palette(p.to_vec());
        }
        let mut wr = e.write_header().unwrap();
        wr.write_image_data(data).unwrap();
    }
    buf
}

fn assert_all_near(img: &Image, want: [u8; 3], tol: i32, what: &str) {
    assert_eq!(img.channels, 3, "{what}");
    assert_eq!(img.pixels.len(), img.height * img.width * 3, "{what}");
    for (k, p) in img.pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            let d = (p[c] as i32 - want[c] as i32).abs();
            assert!(
                d <= tol,
                "{what}: pixel {k} = {p:?}, want {want:?} (+-{tol})"
            );
        }
    }
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn jpeg_rgb_grey_and_progressive_decode_to_rgb() {
    let (w, h) = (64u16, 48u16);
    let rgb = solid(64, 48, &[200, 30, 90]);
    let (img, s) = decode(&jpeg(&rgb, w, h, ColorType::Rgb, false), 1, "rgb.jpg").unwrap();
    assert_eq!((s, img.height, img.width), (1, 48, 64));
    assert_all_near(&img, [200, 30, 90], 3, "rgb");

    let grey = solid(64, 48, &[77]);
    let (img, _) = decode(&jpeg(&grey, w, h, ColorType::Luma, false), 1, "grey.jpg").unwrap();
    assert_all_near(&img, [77, 77, 77], 1, "grey");

    let g = gradient(64, 48);
    let base = decode(&jpeg(&g, w, h, ColorType::Rgb, false), 1, "g.jpg")
        .unwrap()
        .0;
    let prog = decode(&jpeg(&g, w, h, ColorType::Rgb, true), 1, "gp.jpg")
        .unwrap()
        .0;
    assert!(
        mean_abs_diff(&base.pixels, &g) < 3.0,
        "{}",
        mean_abs_diff(&base.pixels, &g)
    );
    assert!(
        mean_abs_diff(&prog.pixels, &g) < 3.0,
        "{}",
        mean_abs_diff(&prog.pixels, &g)
    );
    assert_eq!((prog.height, prog.width), (48, 64));
}

#[test]
fn cmyk_and_ycck_jpegs_convert_like_pil() {
    // inks (C, M, Y, K) -> RGB by PIL's rule R = (255-K) - C(255-K)/255; jpeg-encoder writes the
    // Adobe marker and inverted values, as Photoshop does
    let cases: [([u8; 4], [u8; 3]); 4] = [
        ([255, 0, 0, 0], [0, 255, 255]),
        ([0, 0, 0, 128], [127, 127, 127]),
        ([0, 255, 255, 0], [255, 0, 0]),
        ([40, 200, 10, 30], [190, 49, 216]),
    ];
    // CMYK unsubsampled (Photoshop's layout) and with C, M, Y subsampled; YCCK 4:2:0
    for (ct, sf) in [
        (ColorType::Cmyk, SamplingFactor::F_1_1),
        (ColorType::Cmyk, SamplingFactor::F_2_2),
        (ColorType::CmykAsYcck, SamplingFactor::F_2_2),
        (ColorType::CmykAsYcck, SamplingFactor::F_1_1),
    ] {
        for (ink, want) in cases {
            let bytes = jpeg_sampled(&solid(32, 16, &ink), 32, 16, ct, false, sf);
            let (img, _) = decode(&bytes, 1, "cmyk.jpg").unwrap();
            assert_eq!((img.height, img.width), (16, 32));
            assert_all_near(&img, want, 5, &format!("{ct:?} {sf:?} {ink:?}"));
            let (img, s) = decode(&bytes, 2, "cmyk.jpg").unwrap();
            assert_eq!((s, img.height, img.width), (2, 8, 16));
        }
    }
}

/// A CMYK JPEG without Adobe's APP14 segment reads as PIL reads it: inverted all the same
/// ("CMYK;I", "assume adobe conventions"); it was read as plain inks, every colour flipped.
#[test]
fn cmyk_jpegs_without_the_adobe_segment_read_like_pil() {
    for (ink, want) in [([255u8, 0, 0, 0], [0u8, 255, 255]), ([40, 200, 10, 30], [190, 49, 216])] {
        let bytes = jpeg_sampled(&solid(32, 16, &ink), 32, 16, ColorType::Cmyk, false, SamplingFactor::F_1_1);
        // the APP14 segment (FF EE, length, "Adobe"...) cut out
        let at = bytes.windows(2).position(|w| w == [0xff, 0xee]).expect("jpeg-encoder writes an Adobe segment");
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        assert_eq!(&bytes[at + 4..at + 9], b"Adobe");
        let plain: Vec<u8> = bytes[..at].iter().chain(&bytes[at + 2 + len..]).copied().collect();
        let (img, _) = decode(&plain, 1, "plain-cmyk.jpg").unwrap();
        assert_all_near(&img, want, 5, &format!("no Adobe segment {ink:?}"));
    }
}

/// Bytes between two header segments that start no marker are skipped, as PIL and libjpeg do
/// (the header walk refused the file: "no marker at byte 20 of the header"): the size and the
/// pixels are the clean file's.
#[test]
fn junk_between_header_segments_is_skipped_like_pil() {
    let clean = jpeg(&gradient(40, 30), 40, 30, ColorType::Rgb, false);
    // after SOI and the first segment
    let len = u16::from_be_bytes([clean[4], clean[5]]) as usize;
    let at = 4 + len;
    // (a stuffed 0xFF, `FF 00`, among them is junk too)
    let junky: Vec<u8> = clean[..at].iter().chain(b"junk!\xff\x00\x10\x00".iter()).chain(&clean[at..]).copied().collect();
    assert_eq!(image_size(&junky, "junk.jpg").unwrap(), (30, 40));
    assert_eq!(decode(&junky, 1, "junk.jpg").unwrap().0.pixels, decode(&clean, 1, "clean.jpg").unwrap().0.pixels);
}

#[test]
fn scaled_jpeg_decode_reports_the_factor() {
    let g = gradient(200, 150);
    let bytes = jpeg(&g, 200, 150, ColorType::Rgb, false);
    let full = decode(&bytes, 1, "s.jpg").unwrap().0;
    for (max, want_s, want_hw) in [
        (0, 1, (150, 200)),
        (1, 1, (150, 200)),
        (2, 2, (75, 100)),
        (3, 2, (75, 100)),
        (4, 4, (38, 50)),
        (8, 8, (19, 25)),
        (100, 8, (19, 25)),
    ] {
        let (img, s) = decode(&bytes, max, "s.jpg").unwrap();
        assert_eq!(
            (s, (img.height, img.width)),
            (want_s, want_hw),
            "max_shrink {max}"
        );
        assert_eq!(img.pixels.len(), want_hw.0 * want_hw.1 * 3);
        // roughly the downscaled picture: compare a centre pixel with the full decode
        let (y, x) = (img.height / 2, img.width / 2);
        let (fy, fx) = (y * s as usize, x * s as usize);
        for c in 0..3 {
            let a = img.pixels[(y * img.width + x) * 3 + c] as i32;
            let b = full.pixels[(fy * full.width + fx) * 3 + c] as i32;
            assert!(
                (a - b).abs() <= 12,
                "max_shrink {max} channel {c}: {a} vs {b}"
            );
        }
    }
    // progressive files scale too
    let (img, s) = decode(&jpeg(&g, 200, 150, ColorType::Rgb, true), 4, "p.jpg").unwrap();
    assert_eq!((s, img.height, img.width), (4, 38, 50));
    // PNGs are never shrunk
    let p = png_bytes(
        8,
        4,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &solid(8, 4, &[1, 2, 3]),
        None,
    );
    let (img, s) = decode(&p, 8, "p.png").unwrap();
    assert_eq!((s, img.height, img.width), (1, 4, 8));
}

#[test]
fn png_colour_types_decode_to_rgb() {
    use png::{BitDepth as D, ColorType as C};
    let (w, h) = (5u32, 3u32);
    let n = (w * h) as usize;
    let cases: Vec<(&str, Vec<u8>, [u8; 3])> = vec![
        (
            "rgb",
            png_bytes(w, h, C::Rgb, D::Eight, &solid(5, 3, &[10, 20, 30]), None),
            [10, 20, 30],
        ),
        (
            "rgba",
            png_bytes(
                w,
                h,
                C::Rgba,
                D::Eight,
                &solid(5, 3, &[40, 50, 60, 0]),
                None,
            ),
            [40, 50, 60],
        ),
        (
            "grey",
            png_bytes(w, h, C::Grayscale, D::Eight, &vec![99; n], None),
            [99, 99, 99],
        ),
        (
            "grey-alpha",
            png_bytes(
                w,
                h,
                C::GrayscaleAlpha,
                D::Eight,
                &solid(5, 3, &[7, 128]),
                None,
            ),
            [7, 7, 7],
        ),
        (
            "palette",
            png_bytes(
                w,
                h,
                C::Indexed,
                D::Eight,
                &vec![1; n],
                Some(&[0, 0, 0, 250, 100, 5]),
            ),
            [250, 100, 5],
        ),
        (
            "rgb16",
            png_bytes(
                w,
                h,
                C::Rgb,
                D::Sixteen,
                &solid(5, 3, &[0x12, 0x34, 0xab, 0xcd, 0xff, 0x00]),
                None,
            ),
            [0x12, 0xab, 0xff],
        ),
        (
            "grey1bit",
            png_bytes(8, 1, C::Grayscale, D::One, &[0b1010_1010], None),
            [0, 0, 0],
        ),
    ];
    for (what, bytes, want) in cases {
        let (img, s) = decode(&bytes, 1, what).unwrap();
        assert_eq!(s, 1);
        if what == "grey1bit" {
            let got: Vec<u8> = img.pixels.chunks_exact(3).map(|p| p[0]).collect();
            assert_eq!(got, [255, 0, 255, 0, 255, 0, 255, 0], "{what}");
            continue;
        }
        assert_eq!((img.height, img.width), (3, 5), "{what}");
        assert_all_near(&img, want, 0, what);
    }
}

#[test]
fn headers_give_the_size() {
    let j = jpeg(&gradient(40, 30), 40, 30, ColorType::Rgb, false);
    assert_eq!(image_size(&j, "a.jpg").unwrap(), (30, 40));
    let jp = jpeg(&gradient(40, 30), 40, 30, ColorType::Rgb, true);
    assert_eq!(image_size(&jp, "a.jpg").unwrap(), (30, 40));
    let p = png_bytes(
        7,
        3,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &[0; 21],
        None,
    );
    assert_eq!(image_size(&p, "a.png").unwrap(), (3, 7));
    let e = image_size(&j[..20], "cut.jpg").unwrap_err().to_string();
    assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");
}

#[test]
fn truncated_and_garbage_files_are_errors_naming_the_file() {
    let j = jpeg(&gradient(64, 64), 64, 64, ColorType::Rgb, false);
    let p = png_bytes(
        16,
        16,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &gradient(16, 16),
        None,
    );
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
    let mut bad_jpeg = j.clone();
    for b in bad_jpeg.iter_mut().skip(200).take(400) {
        *b = 0xff; // a stream of fill bytes / bad markers in the scan data
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("half.jpg", j[..j.len() / 2].to_vec(), "truncated"),
        ("header-only.jpg", j[..100].to_vec(), "truncated file: it ends before its image data"),
        ("half.png", p[..p.len() / 2].to_vec(), "PNG"),
        ("eight.png", p[..8].to_vec(), "PNG"),
        ("garbage.jpg", garbage, "unsupported format"),
        ("empty.jpg", Vec::new(), "unsupported format"),
        (
            "jpeg-magic.jpg",
            vec![0xff, 0xd8, 0xff, 0xe0, 0, 16],
            "truncated file: it ends before its image data",
        ),
    ];
    for (name, bytes, needle) in cases {
        let e = decode(&bytes, 1, name).unwrap_err();
        assert!(matches!(e, Error::Data(_)), "{name}: {e:?}");
        let s = e.to_string();
        assert!(s.contains(name) && s.contains(needle), "{name}: {s}");
    }
    // damaged scan data: an error or a decoded image, never a panic
    let _ = decode(&bad_jpeg, 1, "bad.jpg");
    let _ = decode(&bad_jpeg, 4, "bad.jpg");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn image_folder_orders_classes_and_files_like_torchvision() {
    let t = TempDir::new("folder");
    let root = t.0.join("train");
    let red = jpeg(&solid(16, 8, &[250, 0, 0]), 16, 8, ColorType::Rgb, false);
    let blue = png_bytes(
        4,
        2,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &solid(4, 2, &[0, 0, 255]),
        None,
    );
    write(&root.join("b/z.JPEG"), &red);
    write(&root.join("b/a.png"), &blue);
    write(&root.join("b/notes.txt"), b"not an image");
    write(&root.join("a/x.jpg"), &red);
    write(&root.join("a/sub/y.Jpeg"), &red); // nested files count, after the folder's own
    write(&root.join("a_b/blue.jpeg"), &blue); // a PNG named .jpeg: told by its bytes
    write(&root.join("C/w.webp"), b"RIFF\x10\0\0\0WEBPVP8 ");
    write(&root.join("stray.jpg"), &red); // files at the root are not samples
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("a"), root.join("d")).unwrap();

    let ds = ImageFolder::open(&root, OnError::Skip).unwrap();
    let mut want = vec!["C", "a", "a_b", "b"];
    if cfg!(unix) {
        want.push("d");
    }
    assert_eq!(ds.classes(), want);
    assert_eq!(ds.num_classes(), want.len());
    assert_eq!(ds.on_error(), OnError::Skip);
    let files: Vec<(i64, String)> = (0..ds.len())
        .map(|i| {
            (
                ds.label(i),
                ds.relative_path(i).to_string_lossy().into_owned(),
            )
        })
        .collect();
    let mut expect = vec![
        (0, "w.webp"),
        (1, "x.jpg"),
        (1, "sub/y.Jpeg"),
        (2, "blue.jpeg"),
        (3, "a.png"),
        (3, "z.JPEG"),
    ];
    if cfg!(unix) {
        expect.extend([(4, "x.jpg"), (4, "sub/y.Jpeg")]);
    }
    let expect: Vec<(i64, String)> = expect
        .into_iter()
        .map(|(l, s)| (l, s.to_string()))
        .collect();
    assert_eq!(files, expect);
    assert_eq!(ds.file_name(2), "y.Jpeg");
    assert_eq!(ds.path(5), root.join("b").join("z.JPEG"));

    // sizes from headers, pixels from the decoder
    assert_eq!(ds.size(5).unwrap(), (8, 16));
    assert_eq!(ds.size(4).unwrap(), (2, 4));
    let (img, _) = ds.load(3, 1).unwrap();
    assert_all_near(&img, [0, 0, 255], 0, "png named .jpeg");
    let (img, s) = ds.load(5, 2).unwrap();
    assert_eq!((s, img.height, img.width), (2, 4, 8));
    assert_all_near(&img, [250, 0, 0], 4, "red");

    // an unsupported format fails at load, naming the file
    let e = ds.load(0, 1).unwrap_err().to_string();
    assert!(
        e.contains("w.webp") && e.contains("unsupported format"),
        "{e}"
    );
    assert!(ds.size(0).is_err());

    // the listing knows which samples cannot be images: the file that is no JPEG or PNG (a
    // `.webp`) and a link to nothing; a PNG under `.jpeg` is an image (they were found only
    // when read: after the steps before them, or after pretraining in a test folder)
    assert_eq!(ds.unreadable(), [(0, "neither JPEG nor PNG, the formats decoded")]);
    let cfg = |on_error| ijepa_dsl::config::DataConfig {
        dataset: ijepa_dsl::config::DatasetKind::ImageFolder,
        source: ijepa_dsl::config::DataSource::Path(root.clone()),
        test_root: Some(root.clone()),
        on_error,
        ..Default::default()
    };
    let open = |on_error, split| ijepa_engine::data::open_dataset(&cfg(on_error), split).map(|d| d.len()).map_err(|e| e.to_string());
    let e = open(ijepa_dsl::config::OnError::Fail, ijepa_engine::data::Split::Train).unwrap_err();
    assert!(e.contains("1 training image(s) cannot be read") && e.contains("w.webp (neither JPEG nor PNG"), "{e}");
    // skipped in pretraining (a warning), never in the evaluations' test images
    assert!(open(ijepa_dsl::config::OnError::Skip, ijepa_engine::data::Split::Train).is_ok());
    let e = open(ijepa_dsl::config::OnError::Skip, ijepa_engine::data::Split::Test).unwrap_err();
    assert!(e.contains("1 test image(s) cannot be read") && !e.contains("skip"), "{e}");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("gone.jpg"), root.join("b/gone.jpg")).unwrap();
        let e = open(ijepa_dsl::config::OnError::Fail, ijepa_engine::data::Split::Train).unwrap_err();
        assert!(e.contains("2 training image(s)") && e.contains("gone.jpg (a symbolic link to nothing)"), "{e}");
        // a subset that leaves them out never reads them
        let list = root.join("list.txt");
        std::fs::write(&list, "a/x.jpg\nb/z.JPEG\n").unwrap();
        let subset = ijepa_dsl::config::DataConfig { subset: Some(list), test_root: None, ..cfg(ijepa_dsl::config::OnError::Fail) };
        assert_eq!(ijepa_engine::data::open_dataset(&subset, ijepa_engine::data::Split::Train).map(|d| d.len()).unwrap(), 2);
        std::fs::remove_file(root.join("b/gone.jpg")).unwrap();
    }
    std::fs::remove_file(root.join("C/w.webp")).unwrap();
    write(&root.join("C/w.webp"), &red);
    assert!(ImageFolder::open(&root, OnError::Fail).unwrap().unreadable().is_empty(), "a JPEG under .webp is an image");
}

/// Names that are not UTF-8 sort as Python's `sorted()` orders what `os.scandir` gives (bytes
/// that are not UTF-8 decoded to U+DC80..U+DCFF): after `退` (U+9000), where byte order put
/// `\xE8` first and swapped the labels torchvision's ImageFolder gives; files and nested
/// folders alike.
#[cfg(unix)]
#[test]
fn image_folder_orders_names_that_are_not_utf8_like_python() {
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new("not-utf8");
    let root = t.0.join("train");
    let red = jpeg(&solid(8, 8, &[250, 0, 0]), 8, 8, ColorType::Rgb, false);
    let name = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_os_string();
    for class in [&b"\xe8"[..], "退".as_bytes(), b"z"] {
        let dir = root.join(name(class));
        write(&dir.join(name(b"\xe9.jpg")), &red);
        write(&dir.join("退.jpg"), &red);
        write(&dir.join(name(b"\xe9")).join("a.jpg"), &red);
        write(&dir.join("退").join("a.jpg"), &red);
    }
    let ds = ImageFolder::open(&root, OnError::Fail).unwrap();
    // Python: sorted(['\udce8', '退', 'z']) == ['z', '退', '\udce8']
    assert_eq!(ds.classes(), ["z", "退", "\"\\xE8\""]);
    let files: Vec<(i64, Vec<u8>)> = (0..ds.len()).map(|i| (ds.label(i), ds.relative_path(i).as_bytes().to_vec())).collect();
    // sorted(os.walk(class)): the class folder, then "退", then "\udce9"; files "退.jpg" before "\udce9.jpg"
    let of_class: Vec<Vec<u8>> = vec!["退.jpg".into(), b"\xe9.jpg".to_vec(), "退/a.jpg".into(), b"\xe9/a.jpg".to_vec()];
    let want: Vec<(i64, Vec<u8>)> = (0..3).flat_map(|l| of_class.iter().map(move |f| (l, f.clone()))).collect();
    assert_eq!(files, want);
    // a list file finds them by the ImageNet prefix rule (`CLASS_...`) in that order: a copy
    // named `\xE8_0.jpg` in another class does not make the line ambiguous
    let e8 = root.join(name(b"\xe8"));
    write(&e8.join(name(b"\xe8_0.jpg")), &red);
    write(&root.join("z").join(name(b"\xe8_0.jpg")), &red);
    write(&root.join("退").join("退_1.jpg"), &red);
    let list = t.0.join("list.txt");
    let mut lines = b"\xe8_0.jpg\n".to_vec();
    lines.extend("退_1.jpg\n".as_bytes());
    std::fs::write(&list, &lines).unwrap();
    let base = ImageFolder::open(&root, OnError::Fail).unwrap();
    let sub = Subset::from_list(base.clone(), &list).unwrap();
    let picked: Vec<(i64, Vec<u8>)> = (0..sub.len()).map(|i| (sub.label(i), base.relative_path(sub.base_index(i)).as_bytes().to_vec())).collect();
    assert_eq!(picked, [(2, b"\xe8_0.jpg".to_vec()), (1, "退_1.jpg".as_bytes().to_vec())]);
}

#[test]
fn image_folder_errors_at_open() {
    let t = TempDir::new("folder-errors");
    // missing root
    let e = ImageFolder::open(&t.0.join("nope"), OnError::Fail).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("nope"),
        "{e}"
    );
    // no class folder
    let root = t.0.join("empty");
    write(&root.join("loose.jpg"), b"x");
    let e = ImageFolder::open(&root, OnError::Fail)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty") && e.contains("no class folders"), "{e}");
    // a class folder without images
    let root = t.0.join("r");
    write(&root.join("good/a.jpg"), b"x");
    write(&root.join("hollow/readme.txt"), b"x");
    let e = ImageFolder::open(&root, OnError::Fail)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hollow") && e.contains("no image file") && !e.contains("good"),
        "{e}"
    );
}

/// A file removed since the folder was listed is a data error naming it and saying so (a bare
/// OS error said neither what read it nor what to do), when it is loaded, sized or sniffed.
#[test]
fn a_file_gone_since_the_listing_is_a_data_error_saying_so() {
    let t = TempDir::new("folder-gone");
    let root = t.0.join("r");
    write(&root.join("a/x.png"), &png_bytes(2, 2, png::ColorType::Rgb, png::BitDepth::Eight, &[0; 12], None));
    write(&root.join("a/y.png"), &png_bytes(2, 2, png::ColorType::Rgb, png::BitDepth::Eight, &[0; 12], None));
    let ds = ImageFolder::open(&root, OnError::Fail).unwrap();
    std::fs::remove_file(root.join("a/y.png")).unwrap();
    assert!(ds.load(0, 1).is_ok());
    for e in [ds.load(1, 1).map(|_| ()).unwrap_err(), ds.size(1).map(|_| ()).unwrap_err(), ds.check_format(1).unwrap_err()] {
        assert!(matches!(e, Error::Data(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("y.png: cannot be read: ") && e.contains("(it was there when the folder was listed: removed or renamed since?)"), "{e}");
    }
}

#[test]
fn list_file_subset_selects_named_files() {
    let t = TempDir::new("subset");
    let root = t.0.join("train");
    let img = png_bytes(
        2,
        2,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &[9; 12],
        None,
    );
    for f in [
        "n01/n01_1.JPEG",
        "n01/n01_2.JPEG",
        "n01/n01_3.JPEG",
        "n02/n02_5.JPEG",
        "n02/n02_6.JPEG",
    ] {
        write(&root.join(f), &img);
    }
    let base = ImageFolder::open(&root, OnError::Fail).unwrap();
    let list = t.0.join("1percent.txt");
    std::fs::write(&list, "n02_6.JPEG\r\nn01_2.JPEG\n\nn01_3.JPEG\n").unwrap();
    let sub = Subset::from_list(base.clone(), &list).unwrap();
    assert_eq!(sub.len(), 3);
    assert_eq!(sub.num_classes(), 2);
    assert_eq!((0..3).map(|i| sub.label(i)).collect::<Vec<_>>(), [1, 0, 0]);
    assert!(
        sub.describe(0).ends_with("n02_6.JPEG"),
        "{}",
        sub.describe(0)
    );
    assert_eq!(sub.base_index(1), 1);
    assert_eq!(sub.size(2).unwrap(), (2, 2));
    assert_eq!(sub.load(2, 1).unwrap().0.pixels, vec![9; 12]);

    std::fs::write(&list, "n01_1.JPEG\nn01_9.JPEG\nn07_1.JPEG\n").unwrap();
    let e = Subset::from_list(base.clone(), &list)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1percent.txt")
            && e.contains("line 2: n01_9.JPEG")
            && e.contains("line 3: n07_1.JPEG"),
        "{e}"
    );
    assert!(!e.contains("n01_1.JPEG"), "{e}");
    let e = Subset::from_list(base, &t.0.join("missing.txt")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");

    // class folders with `_` in their names, and `CLASS/FILE` lines; a name in two class
    // folders is not guessed
    let other = t.0.join("other");
    for f in ["cls_a/cls_a_1.png", "cls_a/same.png", "cls_b/x.png", "cls_b/same.png"] {
        write(&other.join(f), &img);
    }
    let base = ImageFolder::open(&other, OnError::Fail).unwrap();
    std::fs::write(&list, "cls_a_1.png
cls_b/same.png
x.png
").unwrap();
    let sub = Subset::from_list(base.clone(), &list).unwrap();
    assert_eq!((0..3).map(|i| sub.label(i)).collect::<Vec<_>>(), [0, 1, 1]);
    assert!(sub.describe(1).ends_with("cls_b/same.png"), "{}", sub.describe(1));
    std::fs::write(&list, "same.png
").unwrap();
    let e = Subset::from_list(base.clone(), &list).unwrap_err().to_string();
    // said as what it is (it read "names no file")
    assert!(e.contains("name a file that several folders") && e.contains("line 1: same.png (cls_a/same.png and cls_b/same.png)") && e.contains("CLASS/FILE"), "{e}");
    // two of one class folder's sub-folders: named by their paths, which a line may give (it
    // read "in nest and nest", and `nest/y.png` named neither)
    let nested = t.0.join("nested");
    for f in ["nest/a/y.png", "nest/b/y.png"] {
        write(&nested.join(f), &img);
    }
    let nested_base = ImageFolder::open(&nested, OnError::Fail).unwrap();
    std::fs::write(&list, "y.png\n").unwrap();
    let e = Subset::from_list(nested_base.clone(), &list).unwrap_err().to_string();
    assert!(e.contains("line 1: y.png (nest/a/y.png and nest/b/y.png)"), "{e}");
    std::fs::write(&list, "nest/b/y.png\n").unwrap();
    let sub = Subset::from_list(nested_base, &list).unwrap();
    assert!(sub.describe(0).ends_with("nest/b/y.png"), "{}", sub.describe(0));
    // a byte-order mark before the first line (a Windows editor's) is not part of its name
    std::fs::write(&list, "\u{feff}cls_a_1.png\nx.png\n").unwrap();
    let sub = Subset::from_list(base, &list).unwrap();
    assert_eq!((0..2).map(|i| sub.label(i)).collect::<Vec<_>>(), [0, 1]);
    // a class folder whose name is not UTF-8, named by its bytes in a `CLASS/FILE` line
    use std::os::unix::ffi::OsStrExt;
    let odd = t.0.join("odd");
    write(&odd.join(std::ffi::OsStr::from_bytes(b"k\xe8")).join("y.png"), &img);
    write(&odd.join("a").join("z.png"), &img);
    let base = ImageFolder::open(&odd, OnError::Fail).unwrap();
    std::fs::write(&list, b"k\xe8/y.png\na/z.png\n").unwrap();
    let sub = Subset::from_list(base, &list).unwrap();
    assert_eq!((0..2).map(|i| sub.label(i)).collect::<Vec<_>>(), [1, 0]);
}

/// The monitor's held-out images stay out of pretraining when a list names a file twice (the
/// subset keeps duplicates, as the official one does): a held-out file's other copy was
/// trained on, and the monitor scored 100% on images the encoder had seen.
#[test]
fn a_held_out_file_listed_twice_leaves_pretraining() {
    let t = TempDir::new("holdout-dupes");
    let root = t.0.join("train");
    let img = png_bytes(2, 2, png::ColorType::Rgb, png::BitDepth::Eight, &[9; 12], None);
    let mut lines = String::new();
    for c in ["a", "b"] {
        for i in 0..10 {
            write(&root.join(format!("{c}/{c}_{i}.png")), &img);
            lines.push_str(&format!("{c}_{i}.png\n"));
        }
    }
    // every file twice
    let list = t.0.join("list.txt");
    std::fs::write(&list, format!("{lines}{lines}")).unwrap();
    let base = ImageFolder::open(&root, OnError::Fail).unwrap();
    let sub: std::sync::Arc<dyn Dataset> = std::sync::Arc::new(Subset::from_list(base, &list).unwrap());
    assert_eq!(sub.len(), 40);
    let (rest, held) = ijepa_engine::data::hold_out(sub.clone(), 8, ijepa_engine::data::HoldOutNeeds::new(1, 1, 5)).unwrap();
    let held_files: std::collections::HashSet<String> = (0..held.len()).map(|i| held.describe(i)).collect();
    // 8 different files: two copies of one scored each other at cosine 1 in the monitor's
    // leave-one-out kNN
    assert_eq!((held.len(), held_files.len()), (8, 8));
    assert!((0..rest.len()).all(|i| !held_files.contains(&rest.describe(i))), "a held-out file is in pretraining");
    // the held-out files' other copies are gone, nothing else: 40 - 8 held - their twins
    assert_eq!(rest.len(), 40 - 8 - 8);
    // the evaluations' training split: each file once (a held-out copy scored against its
    // twin), in the list's order
    let (once, copies) = ijepa_engine::data::distinct(sub.clone());
    assert_eq!((once.len(), copies), (20, 20));
    assert_eq!((0..20).map(|i| once.describe(i)).collect::<Vec<_>>(), (0..20).map(|i| sub.describe(i)).collect::<Vec<_>>());
    // a file weighted up (listed 200 more times) is held out as any other: the draw is over
    // the list's files, the same as the list of each once draws (over its lines, the file was
    // held out 200 times as often, and all its copies left pretraining)
    let files = |ds: &std::sync::Arc<dyn Dataset>| (0..ds.len()).map(|i| ds.describe(i)).collect::<std::collections::BTreeSet<_>>();
    let once_list = t.0.join("once.txt");
    std::fs::write(&once_list, &lines).unwrap();
    let weighted_list = t.0.join("weighted.txt");
    std::fs::write(&weighted_list, format!("{lines}{}", "a_0.png\n".repeat(200))).unwrap();
    let open = |list: &std::path::Path| -> std::sync::Arc<dyn Dataset> { std::sync::Arc::new(Subset::from_list(ImageFolder::open(&root, OnError::Fail).unwrap(), list).unwrap()) };
    let needs = ijepa_engine::data::HoldOutNeeds::new(1, 1, 5);
    let (_, held_once) = ijepa_engine::data::hold_out(open(&once_list), 8, needs).unwrap();
    let (rest_weighted, held_weighted) = ijepa_engine::data::hold_out(open(&weighted_list), 8, needs).unwrap();
    assert_eq!(files(&held_weighted), files(&held_once));
    let a0_held = files(&held_once).iter().any(|f| f.ends_with("a_0.png"));
    assert_eq!(rest_weighted.len(), 220 - 8 - if a0_held { 200 } else { 0 });
    // more than the list's different files: said
    let e = ijepa_engine::data::hold_out(sub, 21, ijepa_engine::data::HoldOutNeeds::new(1, 1, 5)).err().expect("21 of 20 files").to_string();
    assert!(e.contains("the monitor holds out 21 images, but the training split names only 20 different files"), "{e}");
    // the way out it names works: fewer held-out images only where the fewest a monitor takes
    // (20) leaves pretraining its batch, else no monitor
    assert!(e.contains("too few for a monitor (it holds out at least 20, and pretraining needs 1 more): remove `monitor`"), "{e}");
    use ijepa_engine::data::{fewer_held_out, HoldOutNeeds};
    let fewer = fewer_held_out(100, HoldOutNeeds::new(16, 1, 20));
    assert!(fewer.starts_with("lower `monitor images=` to at most 84 (it takes at least 21;"), "{fewer}");
    // (k=20 neighbours need 21 images: 20 would be refused)
    let none = fewer_held_out(36, HoldOutNeeds::new(16, 1, 20));
    assert!(none.starts_with("too few for a monitor (it holds out at least 21") && none.contains("remove `monitor`"), "{none}");
    // even without a monitor, less than a batch: the batch size too
    let batch = fewer_held_out(50, HoldOutNeeds::new(64, 1, 20));
    assert!(batch.contains("remove `monitor` and lower the batch size (`batch-size`) to at most 50"), "{batch}");
    let two = fewer_held_out(70, HoldOutNeeds::new(32, 2, 5));
    assert!(two.contains("too few for a monitor") && two.contains("pretraining needs 64 more"), "{two}");
}

/// A CIFAR record: label byte(s) then a CHW image whose planes are `r`, `g`, `b` + index.
fn cifar_record(labels: &[u8], r: u8, g: u8, b: u8) -> Vec<u8> {
    let mut v = labels.to_vec();
    for base in [r, g, b] {
        v.extend((0..1024u32).map(|p| base.wrapping_add((p % 7) as u8)));
    }
    v
}

#[test]
fn cifar10_and_cifar100_binaries() {
    let t = TempDir::new("cifar");
    // CIFAR-10 in the archive's sub-folder: 5 train batches of 2 records, 1 test batch of 3
    let dir = t.0.join("cifar-10-batches-bin");
    for k in 1..=5u8 {
        let mut f = cifar_record(&[k], k, 100, 200);
        f.extend(cifar_record(&[9], 0, 1, 2));
        write(&dir.join(format!("data_batch_{k}.bin")), &f);
    }
    let test: Vec<u8> = (0..3u8)
        .flat_map(|i| cifar_record(&[i], 10 * i, 0, 0))
        .collect();
    write(&dir.join("test_batch.bin"), &test);

    let tr = Cifar::open(&t.0, CifarVariant::Cifar10, CifarSplit::Train).unwrap();
    assert_eq!((tr.len(), tr.num_classes()), (10, 10));
    assert_eq!(
        (0..10).map(|i| tr.label(i)).collect::<Vec<_>>(),
        [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]
    );
    let (img, s) = tr.load(4, 4).unwrap();
    assert_eq!((s, img.height, img.width, img.channels), (1, 32, 32, 3));
    assert_eq!(&img.pixels[..6], &[3, 100, 200, 4, 101, 201]); // HWC
    assert_eq!(tr.size(0).unwrap(), (32, 32));
    assert!(
        tr.describe(3).ends_with("data_batch_2.bin record 1"),
        "{}",
        tr.describe(3)
    );
    let te = Cifar::open(&dir, CifarVariant::Cifar10, CifarSplit::Test).unwrap();
    assert_eq!((0..3).map(|i| te.label(i)).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(te.load(2, 1).unwrap().0.pixels[0], 20);
    // a stray test batch in the root beside the archive's folder: both splits come from the
    // folder of the training batches (the root's was read as the archive's test split)
    write(&t.0.join("test_batch.bin"), &cifar_record(&[7], 0, 0, 0));
    let te = Cifar::open(&t.0, CifarVariant::Cifar10, CifarSplit::Test).unwrap();
    assert_eq!(te.len(), 3, "{}", te.describe(0));
    std::fs::remove_file(t.0.join("test_batch.bin")).unwrap();

    // a truncated batch
    write(
        &dir.join("data_batch_3.bin"),
        &cifar_record(&[1], 0, 0, 0)[..3000],
    );
    let e = Cifar::open(&t.0, CifarVariant::Cifar10, CifarSplit::Train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("3073"), "{e}");
    // a missing batch beside the others is said with the split's files
    write(&dir.join("data_batch_3.bin"), &cifar_record(&[3], 0, 0, 0));
    std::fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
    let e = Cifar::open(&t.0, CifarVariant::Cifar10, CifarSplit::Train)
        .unwrap_err()
        .to_string();
    assert!(e.contains("data_batch_4.bin: no such file") && e.contains("data_batch_1.bin, data_batch_2.bin") && e.contains("incomplete download"), "{e}");

    // CIFAR-100 at the root: coarse then fine label; the fine one is the label
    let c100 = t.0.join("c100");
    let train: Vec<u8> = [(3u8, 77u8), (19, 99), (0, 0)]
        .iter()
        .flat_map(|&(c, f)| cifar_record(&[c, f], f, f, f))
        .collect();
    write(&c100.join("train.bin"), &train);
    let ds = Cifar::open(&c100, CifarVariant::Cifar100, CifarSplit::Train).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (3, 100));
    assert_eq!((0..3).map(|i| ds.label(i)).collect::<Vec<_>>(), [77, 99, 0]);
    assert_eq!(&ds.load(1, 1).unwrap().0.pixels[..3], &[99, 99, 99]);
    // CIFAR-10 files read as CIFAR-100 (record sizes differ) and a bad label
    let e = Cifar::open(&c100, CifarVariant::Cifar100, CifarSplit::Test).unwrap_err().to_string();
    assert!(e.contains("test.bin: no such file, though") && e.contains("holds train.bin"), "{e}");
    write(&c100.join("test.bin"), &cifar_record(&[0, 100], 0, 0, 0));
    let e = Cifar::open(&c100, CifarVariant::Cifar100, CifarSplit::Test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test.bin: record 0: fine label 100 out of range (0-99)"), "{e}");
    // (the coarse label named where it is the one out of range: "label 64 (coarse 20)" read
    // as if the fine label were)
    write(&c100.join("test.bin"), &cifar_record(&[20, 64], 0, 0, 0));
    let e = Cifar::open(&c100, CifarVariant::Cifar100, CifarSplit::Test).unwrap_err().to_string();
    assert!(e.contains("test.bin: record 0: coarse label 20 out of range (0-19) beside fine label 64"), "{e}");
    write(&c100.join("test.bin"), &test); // 3 x 3073 bytes is no multiple of 3074
    let e = Cifar::open(&c100, CifarVariant::Cifar100, CifarSplit::Test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test.bin") && e.contains("3074"), "{e}");

    // a batch file that is a named pipe (its `open` waited for a writer forever), a device
    // (`/dev/zero` was read until the memory ran out), a folder or a link to nothing: said as
    // such, at once (on a thread: a hang fails the test instead of stalling it)
    #[cfg(unix)]
    {
        let fifo = dir.join("data_batch_3.bin");
        std::fs::remove_file(&fifo).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let open = |root: std::path::PathBuf| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Cifar::open(&root, CifarVariant::Cifar10, CifarSplit::Train).map(|_| ()).unwrap_err().to_string());
            });
            rx.recv_timeout(std::time::Duration::from_secs(20)).expect("Cifar::open hangs")
        };
        let e = open(t.0.clone());
        assert!(e.contains("data_batch_3.bin: not a regular file (a named pipe"), "{e}");
        std::fs::remove_file(&fifo).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &fifo).unwrap();
        assert!(open(t.0.clone()).contains("data_batch_3.bin: not a regular file"));
        std::fs::remove_file(&fifo).unwrap();
        std::os::unix::fs::symlink(dir.join("gone"), &fifo).unwrap();
        assert!(open(t.0.clone()).contains("data_batch_3.bin: a symbolic link to nothing"));
        // the first batch, which tells where the files are
        let first = dir.join("data_batch_1.bin");
        std::fs::remove_file(&first).unwrap();
        std::fs::create_dir(&first).unwrap();
        assert!(open(t.0.clone()).contains("data_batch_1.bin: a folder, not a data file"));
    }
    // an idx file that is a folder: said as such (it was "no such file")
    let fm = t.0.join("fm");
    std::fs::create_dir_all(fm.join("train-images-idx3-ubyte.gz")).unwrap();
    let e = ijepa_engine::data::fashion_mnist::FashionMnist::from_dir(&fm, ijepa_engine::data::fashion_mnist::Split::Train).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte.gz: a folder, not a data file"), "{e}");
}

/// Index speed on 200 classes x 1,000 empty files (run with `--ignored`; prints the time).
#[test]
#[ignore]
fn image_folder_index_speed() {
    let t = TempDir::new("speed");
    for c in 0..200 {
        let d = t.0.join(format!("n{c:08}"));
        std::fs::create_dir_all(&d).unwrap();
        for f in 0..1000 {
            std::fs::write(d.join(format!("n{c:08}_{f}.JPEG")), b"").unwrap();
        }
    }
    let t0 = std::time::Instant::now();
    let ds = ImageFolder::open(&t.0, OnError::Fail).unwrap();
    let dt = t0.elapsed();
    assert_eq!(ds.len(), 200_000);
    println!(
        "indexed {} files in {:.1} ms",
        ds.len(),
        dt.as_secs_f64() * 1e3
    );
}

/// A symbolic link from inside a class folder back to a folder above it is a loop: its images
/// are listed once (not once per turn until the OS stops the walk), and a link to a sibling
/// folder is still followed (torchvision's `followlinks=True`).
#[cfg(unix)]
#[test]
fn image_folder_walks_a_symlink_loop_once() {
    let t = TempDir::new("loop");
    let root = t.0.join("train");
    let red = jpeg(&solid(16, 8, &[250, 0, 0]), 16, 8, ColorType::Rgb, false);
    write(&root.join("k/one.jpg"), &red);
    write(&root.join("k/sub/two.jpg"), &red);
    write(&root.join("other/three.jpg"), &red);
    std::os::unix::fs::symlink(root.join("k"), root.join("k/sub/again")).unwrap();
    std::os::unix::fs::symlink(root.join("other"), root.join("k/side")).unwrap();
    let ds = ImageFolder::open(&root, OnError::Fail).unwrap();
    let files: Vec<String> = (0..ds.len()).filter(|&i| ds.label(i) == 0).map(|i| ds.relative_path(i).to_string_lossy().into_owned()).collect();
    assert_eq!(files, vec!["one.jpg", "side/three.jpg", "sub/two.jpg"]);
    // a link inside a class to the root above it (or higher) is a loop too: not followed (it
    // walked every class's images into this one, under its label)
    std::os::unix::fs::symlink(&root, root.join("other/up")).unwrap();
    std::os::unix::fs::symlink(&t.0, root.join("other/higher")).unwrap();
    let ds = ImageFolder::open(&root, OnError::Fail).unwrap();
    let other: Vec<String> = (0..ds.len()).filter(|&i| ds.label(i) == 1).map(|i| ds.relative_path(i).to_string_lossy().into_owned()).collect();
    assert_eq!(other, vec!["three.jpg"]);
    assert_eq!(ds.len(), 4);
}
