//! The faces chapter (issue 25): attribute tables in both layouts, the book's rule for attribute
//! vectors, the vectors file, morphing, the latent histograms and the commands' errors. On tiny
//! synthetic runs (CPU, seconds); tests/python/test_faces.py runs the chapter end to end on
//! synthetic faces.
mod common;

use std::path::{Path, PathBuf};

use image::GrayImage;
use tch::{Device, Kind, Tensor};

use vae_tch::analysis::attributes::{vectors, Ending, Rule, VectorError, Z};
use vae_tch::config::DatasetKind;
use vae_tch::data::labels::{self, Attributes, LabelError};
use vae_tch::data::SplitName;
use vae_tch::plot::run_faces::{self, Encoding};
use vae_tch::run::checkpoint::{self, Pick};
use vae_tch::run::data::RunData;
use vae_tch::train::inference::Inference;

use common::{text, vae_tch};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const CSV: &str = "image_id,Eyeglasses,Smiling,Male\n\
                   000001.jpg,1,-1,1\n\
                   000002.jpg,-1,1,-1\n\
                   000003.jpg,-1,-1,1\n";
const TXT: &str = "3\nEyeglasses Smiling Male \n\
                   000001.jpg  1 -1  1\n\
                   000002.jpg -1  1 -1\n\
                   000003.jpg -1 -1  1\n";

#[test]
fn both_table_layouts_read_the_same_and_bad_tables_name_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, txt) = (tmp.path().join("a.csv"), tmp.path().join("a.txt"));
    write(&csv, CSV);
    write(&txt, TXT);
    let (a, b) = (
        labels::read_table(&csv).unwrap(),
        labels::read_table(&txt).unwrap(),
    );
    assert_eq!(a.names, ["Eyeglasses", "Smiling", "Male"]);
    assert_eq!((&a.names, &a.rows, &a.order), (&b.names, &b.rows, &b.order));
    assert_eq!(a.rows["000002.jpg"], vec![-1, 1, -1]);
    for (body, want) in [
        ("image_id,A\n1.jpg,2\n", "line 2: \"2\" is not 1 or -1"),
        (
            "image_id,A,B\n1.jpg,1\n",
            "line 2: 1 values for 2 attributes",
        ),
        (
            "name,A\n1.jpg,1\n",
            "line 1: expected a header starting with image_id",
        ),
        ("three\nA B\n", "line 1: expected the image count"),
        ("", "the file is empty"),
    ] {
        let p = tmp.path().join("bad.csv");
        write(&p, body);
        let e = labels::read_table(&p).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains(want), "{e}");
    }
    let missing = labels::read_table(&tmp.path().join("none.csv")).unwrap_err();
    assert!(matches!(missing, LabelError::Io { .. }));
}

#[test]
fn a_join_gives_rows_in_the_splits_order_and_refuses_a_table_of_other_images() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("list_attr_celeba.csv");
    write(&csv, CSV);
    let table = labels::read_table(&csv).unwrap();
    // The split in its own order, in a sub-folder; one image the table has no row for.
    let split: Vec<String> = ["imgs/000003.jpg", "imgs/000009.jpg", "imgs/000001.jpg"]
        .map(String::from)
        .to_vec();
    let all: Vec<&str> = split.iter().map(String::as_str).collect();
    let a = labels::join(&table, &split, &all).unwrap();
    let got: Vec<i8> = Vec::try_from(&a.values.view(-1)).unwrap();
    assert_eq!(got, vec![-1, -1, 1, 0, 0, 0, 1, -1, 1]);
    assert_eq!(a.column("Male").unwrap(), 2);
    let e = a.column("Bald").unwrap_err().to_string();
    assert!(
        e.contains("Bald is not in") && e.contains("Eyeglasses, Smiling, Male"),
        "{e}"
    );
    let other = ["x/1.png".to_string()];
    let e = labels::join(&table, &other, &["x/1.png"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("names no image") && e.contains("000001.jpg"),
        "{e}"
    );
    // Found beside a Kaggle-style nested folder.
    let nested = tmp.path().join("img_align_celeba").join("img_align_celeba");
    std::fs::create_dir_all(&nested).unwrap();
    assert_eq!(labels::find_table(&nested), Some(csv));
}

#[test]
fn class_labels_are_attributes_one_vs_rest() {
    let classes: Vec<String> = ["T-shirt/top", "Trouser", "Pullover"]
        .map(String::from)
        .to_vec();
    let a = labels::from_classes(&Tensor::from_slice(&[0i64, 1, 2, 1]), &classes);
    let col = a.values.select(1, a.column("Trouser").unwrap() as i64);
    assert_eq!(Vec::<i8>::try_from(&col).unwrap(), vec![-1, 1, -1, 1]);
}

/// A tiny trained MNIST-style run (latent 4) and its test images.
fn tiny(dir: &Path) -> PathBuf {
    common::train_tiny_run(dir, 96, 48, 2, 4)
}

fn attributes_of(values: &[i8]) -> Attributes {
    Attributes {
        source: "test".into(),
        names: vec!["A".into()],
        values: Tensor::from_slice(values).view([values.len() as i64, 1]),
    }
}

#[test]
fn the_books_rule_finds_the_normalised_difference_of_the_means_and_says_how_it_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny(tmp.path());
    // Taken after training (train_tiny_run takes it too): the seeded draws below are ours.
    let _g = common::rng_lock();
    let loaded = checkpoint::load_model(&run, Device::Cpu).unwrap();
    let images = vae_tch::data::load_split(
        DatasetKind::Mnist,
        &tmp.path().join("data"),
        SplitName::Test,
    )
    .unwrap()
    .images;
    let n = images.size()[0] as usize;
    // "A": the images of label 3 (every tenth, synthetic_images' labels are i % 10).
    let values: Vec<i8> = (0..n).map(|i| if i % 10 == 3 { 1 } else { -1 }).collect();
    let attrs = attributes_of(&values);
    let model = Inference::new(&loaded, Device::Cpu);
    let names = ["A".to_string()];
    let rule = |batch, tolerance, max_positives, z| Rule {
        batch,
        tolerance,
        max_positives,
        z,
        seed: 3,
    };
    // One batch of every image, latent means: the vector is the normalised difference of the
    // two means, computed here on the plain model (not the fast layout the rule encodes in).
    let all = vectors(
        &model,
        &images,
        &attrs,
        &names,
        &rule(n, 1e-12, n, Z::Mean),
        |_| (),
    )
    .unwrap();
    let v = all.into_iter().next().unwrap().unwrap();
    assert_eq!(
        (v.ending, v.steps.len(), v.positives, v.negatives),
        (Ending::Exhausted, 1, 5, n - 5)
    );
    let mu = tch::no_grad(|| {
        loaded
            .vae
            .encoder
            .forward(&vae_tch::data::to_unit_float(&images))
            .0
    })
    .to_kind(Kind::Double);
    let mask = Tensor::from_slice(&values).eq(1);
    let pos = mu
        .index_select(0, &mask.nonzero().squeeze_dim(1))
        .mean_dim(0, false, Kind::Double);
    let neg = mu
        .index_select(0, &mask.logical_not().nonzero().squeeze_dim(1))
        .mean_dim(0, false, Kind::Double);
    let want = &pos - &neg;
    let norm = want.norm().double_value(&[]);
    assert!((v.norm - norm).abs() < 1e-4 * norm, "{} vs {norm}", v.norm);
    let cos = (v.vector.to_kind(Kind::Double) * (&want / norm))
        .sum(Kind::Double)
        .double_value(&[]);
    assert!(cos > 0.9999, "cosine {cos}");
    assert!((v.vector.norm().double_value(&[]) - 1.0).abs() < 1e-6);
    // A huge tolerance stops after the first batch; a cap of one positive at the first batch
    // with one; a tiny tolerance runs out of images.
    let one = |r: Rule| {
        vectors(&model, &images, &attrs, &names, &r, |_| ())
            .unwrap()
            .remove(0)
            .unwrap()
    };
    let v = one(rule(10, 1e9, 10_000, Z::Sampled));
    assert_eq!(v.ending, Ending::Converged);
    let v = one(rule(10, 1e-12, 1, Z::Sampled));
    assert_eq!((v.ending, v.positives >= 1), (Ending::Capped, true));
    assert!(v.steps.len() == 1 || v.steps[v.steps.len() - 2].positives == 0);
    let v = one(rule(10, 1e-12, 10_000, Z::Sampled));
    assert_eq!(
        (v.ending, v.steps.len()),
        (Ending::Exhausted, n.div_ceil(10))
    );
    // The same seed draws the same z and order; another seed others.
    let again = one(rule(10, 1e-12, 10_000, Z::Sampled));
    assert!(again.vector.equal(&v.vector));
    let other = one(Rule {
        seed: 4,
        ..rule(10, 1e-12, 10_000, Z::Sampled)
    });
    assert!(!other.vector.equal(&v.vector));
    // One image with the attribute, batches of 2: most batches have none, and nothing breaks
    // (the notebook's first batch without one divides by zero).
    let mut lone = vec![-1i8; n];
    lone[n - 1] = 1;
    let v = vectors(
        &model,
        &images,
        &attributes_of(&lone),
        &names,
        &rule(2, 1e-12, 10_000, Z::Mean),
        |_| (),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    assert_eq!(v.positives, 1);
    assert!(v.vector.isfinite().all().int64_value(&[]) == 1);
    // None with it, or none without: an error naming the attribute.
    for (fill, want) in [
        (-1i8, "no image has the attribute A"),
        (1, "every image has the attribute A"),
    ] {
        let r = vectors(
            &model,
            &images,
            &attributes_of(&vec![fill; n]),
            &names,
            &rule(n, 0.08, 10_000, Z::Mean),
            |_| (),
        )
        .unwrap()
        .remove(0);
        let e = r.unwrap_err();
        assert!(matches!(
            e,
            VectorError::NoPositive(_) | VectorError::NoNegative(_)
        ));
        assert!(e.to_string().contains(want), "{e}");
    }
}

#[test]
fn the_morphs_first_decode_is_the_starts_reconstruction_and_histograms_count_every_image() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny(tmp.path());
    // Taken after training (train_tiny_run takes it too): the seeded draws below are ours.
    let _g = common::rng_lock();
    let data = tmp.path().join("data");
    let src = RunData {
        run: &run,
        data_dir: Some(&data),
        device: Device::Cpu,
        checkpoint: Pick::Last,
    };
    let loaded = src.model().unwrap();
    let mean = Encoding {
        z: Z::Mean,
        seed: 0,
    };
    for slerp in [false, true] {
        let m = run_faces::morph_images(&src, &loaded, ("0", "1"), 10, slerp, mean).unwrap();
        assert_eq!(
            m.fractions,
            (0..10).map(|i| i as f64 / 10.0).collect::<Vec<_>>()
        );
        assert_eq!(m.decodes.size()[0], 10);
        let recon = tch::no_grad(|| loaded.vae.reconstruct_mean(&m.start));
        let d = (m.decodes.narrow(0, 0, 1) - recon)
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-5, "the first decode is {d} from the reconstruction");
        let end = tch::no_grad(|| loaded.vae.reconstruct_mean(&m.end));
        let d_end = (m.decodes.narrow(0, 9, 1) - end)
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            d_end > 1e-4,
            "f = 1 is never decoded (the book's 0.0 .. 0.9)"
        );
    }
    let (h, n) = run_faces::latent_histograms(
        &src,
        &loaded,
        None,
        200,
        20,
        Encoding {
            z: Z::Sampled,
            seed: 0,
        },
    )
    .unwrap();
    assert_eq!((h.len(), n), (4, 48));
    for hist in &h {
        assert_eq!(
            (hist.counts.len(), hist.counts.iter().sum::<usize>()),
            (20, 48)
        );
    }
    let e = run_faces::latent_histograms(&src, &loaded, Some(50), 200, 20, mean).unwrap_err();
    assert!(
        e.to_string().contains("--dims 50") && e.to_string().contains("4-D latent"),
        "{e}"
    );
}

fn safetensor_names(path: &Path) -> Vec<String> {
    let (named, _) = vae_tch::util::safetensors_io::read(path).unwrap();
    let mut names: Vec<String> = named.into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

#[test]
fn class_attributes_on_idx_data_and_the_commands_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::train_tiny_run(dir, 96, 48, 1, 2);
    let file = dir.join("run").join("attributes.safetensors");
    let ok = |args: &[&str]| {
        let o = vae_tch(args, dir);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        text(&o)
    };
    let out = ok(&["attributes", "run", "--attribute", "3", "--z", "mean"]);
    assert!(
        out.contains("label: 3") && out.contains("1 vectors (3) in run/attributes.safetensors"),
        "{out}"
    );
    // A second search with the same settings adds to the file; other settings replace it.
    ok(&[
        "attributes",
        "run",
        "--attribute",
        "5",
        "--z",
        "mean",
        "--brief",
    ]);
    assert_eq!(safetensor_names(&file), ["3", "5"]);
    let out = ok(&[
        "attributes",
        "run",
        "--attribute",
        "7",
        "--z",
        "mean",
        "--seed",
        "1",
        "--brief",
    ]);
    assert!(
        out.contains("other settings") && out.contains("3, 5 dropped"),
        "{out}"
    );
    assert_eq!(safetensor_names(&file), ["7"]);
    for (args, want) in [
        (
            &["attributes", "run", "--attribute", "Trouser"][..],
            "the attribute Trouser is not in the class labels; it has 0, 1, 2",
        ),
        (
            &["attributes", "run", "--labels", "x.csv"],
            "--labels x.csv: a table names images by file",
        ),
        (
            &["arithmetic", "run", "--attribute", "4"],
            "has no vector 4 (it has 7): `vae-tch attributes run --attribute 4` finds it",
        ),
        (
            &["latent-hist", "run", "--dims", "50"],
            "--dims 50: the model of run run has a 2-D latent: ask for at most 2",
        ),
        (
            &["morph", "run", "--from", "0", "--to", "a.jpg"],
            "--to a.jpg: the images of run run have no file names (IDX files): give a test index",
        ),
        (
            &["morph", "run", "--from", "0", "--to", "480"],
            "--to 480: the test split has 48 images",
        ),
    ] {
        let o = vae_tch(args, dir);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    // The figures, as PNG and SVG.
    ok(&[
        "arithmetic",
        "run",
        "--attribute",
        "7",
        "--images",
        "2",
        "--factors",
        "-1:1",
    ]);
    ok(&[
        "morph", "run", "--from", "0", "--to", "1", "--steps", "3", "--slerp", "--format", "svg",
    ]);
    ok(&["latent-hist", "run"]);
    let svg = std::fs::read_to_string(dir.join("run/morph-0-1.svg")).unwrap();
    assert!(
        svg.contains("<image") && svg.contains("base64"),
        "the images embedded as one bitmap"
    );
    for f in ["arithmetic-7.png", "latent-hist.png"] {
        assert!(image::open(dir.join("run").join(f)).is_ok(), "{f}");
    }
    let bare = dir.join("bare.png");
    ok(&[
        "arithmetic",
        "run",
        "--attribute",
        "7",
        "--images",
        "2",
        "--factors",
        "0,1,2",
        "--bare",
        "--out",
        "bare.png",
    ]);
    // Two rows of the original and three decodes, 28 pixels and a 1-pixel gap each.
    assert_eq!(
        image::open(&bare).unwrap().into_rgb8().dimensions(),
        (4 * 29 + 1, 2 * 29 + 1)
    );
}

#[test]
fn fashion_mnist_classes_give_a_trouser_vector() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 96, 48);
    let mut config = common::tiny_config(&tmp.path().join("data"), 1, 8);
    config.data.dataset = DatasetKind::FashionMnist;
    common::train_quietly(&tmp.path().join("run"), config);
    let o = vae_tch(
        &[
            "attributes",
            "run",
            "--attribute",
            "Trouser,Ankle boot",
            "--brief",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        safetensor_names(&tmp.path().join("run/attributes.safetensors")),
        ["Ankle boot", "Trouser"]
    );
}

/// A flat folder of 60 grey 28x28 PNGs, a bright square on the images with "Square", and the
/// table in `layout` beside them (with a row for an image that is not there, and none for the
/// last image).
fn folder_with_table(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("image_id,Square,Never\n");
    let mut txt = String::from("60\nSquare Never\n");
    for i in 1..=60usize {
        let on = i % 3 == 0;
        let img = GrayImage::from_fn(28, 28, |x, y| {
            let inside = on && (8..20).contains(&x) && (8..20).contains(&y);
            image::Luma([if inside {
                250
            } else {
                ((x * 7 + y * 3 + i as u32) % 40) as u8
            }])
        });
        img.save(dir.join(format!("{i:06}.png"))).unwrap();
        if i < 60 {
            let v = if on { 1 } else { -1 };
            csv += &format!("{i:06}.png,{v},-1\n");
            txt += &format!("{i:06}.png {v:2} -1\n");
        }
    }
    csv += "999999.png,1,-1\n";
    txt += "999999.png  1 -1\n";
    write(&dir.join("list_attr_celeba.csv"), &csv);
    write(&dir.parent().unwrap().join("table.txt"), &txt);
}

#[test]
fn an_image_folder_joins_its_table_in_either_layout_and_says_what_did_not_match() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("faces");
    folder_with_table(&dir);
    let mut config = common::tiny_config(&dir, 1, 8);
    config.data.dataset = DatasetKind::Folder;
    common::train_quietly(&tmp.path().join("run"), config);
    let args = [
        "attributes",
        "run",
        "--attribute",
        "Square",
        "--z",
        "mean",
        "--brief",
    ];
    let csv = vae_tch(&args, tmp.path());
    assert!(csv.status.success(), "{}", text(&csv));
    let warning = String::from_utf8_lossy(&csv.stderr).to_string();
    assert!(
        warning.contains("1 of the folder's 60 images have no row")
            && warning.contains("000060.png")
            && warning.contains("1 of its 60 rows name no image")
            && warning.contains("999999.png"),
        "{warning}"
    );
    let file = tmp.path().join("run/attributes.safetensors");
    let (a, _) = vae_tch::util::safetensors_io::read(&file).unwrap();
    let txt = vae_tch(
        &[&args[..], &["--labels", "table.txt"]].concat(),
        tmp.path(),
    );
    assert!(txt.status.success(), "{}", text(&txt));
    let (b, _) = vae_tch::util::safetensors_io::read(&file).unwrap();
    assert!(a[0].1.equal(&b[0].1), "both layouts give the same vector");
    // An attribute no image has; a table of other images.
    let o = vae_tch(&["attributes", "run", "--attribute", "Never"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("no image has the attribute Never"),
        "{}",
        text(&o)
    );
    write(
        &tmp.path().join("other.csv"),
        "image_id,Square\nabc.jpg,1\n",
    );
    let o = vae_tch(&["attributes", "run", "--labels", "other.csv"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(
            "other.csv names no image of the data set (60 images; its first rows name abc.jpg)"
        ),
        "{}",
        text(&o)
    );
    // Morph by file name.
    let o = vae_tch(
        &[
            "morph",
            "run",
            "--from",
            "000003.png",
            "--to",
            "000004.png",
            "--steps",
            "2",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("run/morph-000003-000004.png").is_file());
}
