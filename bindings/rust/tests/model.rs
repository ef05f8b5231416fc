//! The binding on all-MiniLM-L6-v2 against the sembed binary: the same vectors bit for bit,
//! prompts, Matryoshka dimensions, token ids, and every failure as an Error with the library's
//! status and message.
//!
//! The model folder is $SEMBED_MODELS/all-MiniLM-L6-v2 (default ~/.cache/sembed/models); each
//! test prints a skip message and passes when it is not there (tests/test_rust.sh decides
//! whether a missing model is a failure). $SEMBED_CLI is the sembed binary.

use sembed::{EncodeOptions, Error, Model, Options, Pooling, Precision, TextInfo};
use std::path::PathBuf;
use std::process::Command;

/// The model folder, or None (after a skip message) when it is not cached.
fn model_dir() -> Option<PathBuf> {
    let models = match std::env::var_os("SEMBED_MODELS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/sembed/models"),
    };
    let dir = models.join("all-MiniLM-L6-v2");
    if dir.join("config.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skip: {} is not cached (python3 scripts/fetch_models.py all-MiniLM-L6-v2)",
            dir.display()
        );
        None
    }
}

/// The options the CLI is run with below: the same device and thread count give the same bits.
fn cpu2() -> Options {
    Options { device: "cpu".into(), threads: 2, ..Options::default() }
}

fn bits(vectors: &[Vec<f32>]) -> Vec<u8> {
    vectors.iter().flatten().flat_map(|x| x.to_le_bytes()).collect()
}

/// Equal bits, or a failure naming the first float that differs (rather than two dumps of
/// thousands of bytes).
#[track_caller]
fn assert_same_bits(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {} bytes against {}", got.len(), want.len());
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: float {} differs", i / 4);
    }
}

fn open_err(dir: impl AsRef<std::path::Path>, options: &Options) -> Error {
    Model::open(dir, options).expect_err("open should fail")
}

#[test]
fn bits_as_the_cli() {
    let Some(dir) = model_dir() else { return };
    let Some(cli) = std::env::var_os("SEMBED_CLI") else {
        eprintln!("skip: SEMBED_CLI (the sembed binary) is not set");
        return;
    };
    let texts = ["the first text", "Zürich, a second one"];
    let raw = std::env::temp_dir().join(format!("sembed-rust-{}.raw", std::process::id()));
    let status = Command::new(cli)
        .args(["embed", "-m"])
        .arg(&dir)
        .args(["-t", "2", "-d", "cpu", "-f", "raw", "-o"])
        .arg(&raw)
        .args(texts)
        .status()
        .expect("run SEMBED_CLI");
    let expected = std::fs::read(&raw);
    let _ = std::fs::remove_file(&raw);
    assert!(status.success(), "sembed embed: {status}");

    let mut m = Model::open(&dir, &cpu2()).unwrap();
    assert_eq!(m.dim(), 384);
    let v = m.encode(&texts).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|r| r.len() == 384));
    assert_same_bits(&bits(&v), &expected.unwrap(), "the binding against the CLI");
    // batch invariance through the binding, and owned Strings work as well as &str
    let one = m.encode(&[String::from(texts[1])]).unwrap();
    assert_same_bits(&bits(&one), &bits(&v[1..]), "one text against two");
    assert!(m.encode::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn dimensions_and_prompt() {
    let Some(dir) = model_dir() else { return };
    let mut m = Model::open(dir, &cpu2()).unwrap();
    let short = EncodeOptions { dimensions: 64, ..Default::default() };
    for v in m.encode_with(&["the first text", "Zürich, a second one"], &short).unwrap() {
        assert_eq!(v.len(), 64);
        let norm = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    // a literal prompt is prepended as text (MiniLM pools over the prompt's tokens too)
    let query = EncodeOptions { prompt: Some("query: "), ..Default::default() };
    let a = m.encode_with(&["what is sembed?"], &query).unwrap();
    let b = m.encode(&["query: what is sembed?"]).unwrap();
    assert_same_bits(&bits(&a), &bits(&b), "a prompt against its text");
    assert_ne!(bits(&a), bits(&m.encode(&["what is sembed?"]).unwrap()));
}

#[test]
fn info_pooling_and_batch_sizes() {
    let Some(dir) = model_dir() else { return };
    let mut m = Model::open(&dir, &cpu2()).unwrap();
    let long = "word ".repeat(400);
    let texts = ["the first text", long.as_str()];
    let (v, info) = m.encode_info(&texts, &EncodeOptions::default()).unwrap();
    assert_same_bits(&bits(&v), &bits(&m.encode(&texts).unwrap()), "encode_info against encode");
    // [CLS] the first text [SEP]; the long text cut at the max length
    assert_eq!(info[0], TextInfo { n_tokens: 5, truncated: false });
    assert_eq!(info[1], TextInfo { n_tokens: m.max_length(), truncated: true });

    // CLS pooling instead of the folder's mean: other vectors, still unit length
    let cls = Options { pooling: Some(Pooling::Cls), normalize: true, ..cpu2() };
    let c = Model::open(&dir, &cls).unwrap().encode(&texts[..1]).unwrap();
    assert_ne!(bits(&c), bits(&v[..1]));
    let norm = c[0].iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");

    // smaller forward passes (raised to the max length) give the same bits
    let small = Options { max_batch_tokens: 64, max_batch_texts: 2, ..cpu2() };
    let three = ["a", "b c", "d e f"];
    assert_same_bits(
        &bits(&Model::open(&dir, &small).unwrap().encode(&three).unwrap()),
        &bits(&m.encode(&three).unwrap()),
        "two texts per pass against the default",
    );
}

#[test]
fn tokens() {
    let Some(dir) = model_dir() else { return };
    let m = Model::open(dir, &cpu2()).unwrap();
    let ids = m.tokenize("the first text").unwrap();
    assert!(ids.len() > 2, "{ids:?}");
    assert_eq!((ids[0], ids[ids.len() - 1]), (101, 102), "[CLS] ... [SEP]: {ids:?}");
    assert_eq!(m.tokenize(&"word ".repeat(400)).unwrap().len(), m.max_length());
    assert_eq!(m.device(), "cpu");
}

#[test]
fn interior_nul_is_a_character() {
    let Some(dir) = model_dir() else { return };
    let mut m = Model::open(dir, &cpu2()).unwrap();
    // lengths are explicit: the text is not cut at its NUL
    let v = m.encode(&["before\0after", "before"]).unwrap();
    assert_eq!(v[0].len(), 384);
    assert_ne!(bits(&v[..1]), bits(&v[1..]));
}

#[test]
fn moves_to_another_thread() {
    let Some(dir) = model_dir() else { return };
    let mut m = Model::open(dir, &cpu2()).unwrap();
    let here = m.encode(&["x"]).unwrap();
    let there = std::thread::spawn(move || m.encode(&["x"]).unwrap()).join().unwrap();
    assert_same_bits(&bits(&here), &bits(&there), "another thread");
}

#[test]
fn errors() {
    let Some(dir) = model_dir() else { return };
    let nowhere = dir.join("nowhere");
    let e = open_err(&nowhere, &cpu2());
    assert_eq!(e.status, Error::IO, "{e}");
    assert!(e.message.contains(nowhere.to_str().unwrap()), "{e}");
    assert!(e.to_string().contains("(IO)"), "{e}");

    let e = open_err(&dir, &Options { device: "gpu".into(), ..cpu2() });
    assert_eq!(e.status, Error::INVALID_ARG, "{e}");
    assert!(e.message.contains("device 'gpu'"), "{e}");

    let e =
        open_err(&dir, &Options { device: "cuda".into(), precision: Precision::Int8, ..cpu2() });
    assert_eq!(e.status, Error::UNSUPPORTED, "{e}");
    assert!(e.message.contains("'int8'"), "{e}");

    let e = open_err(&dir, &Options { device: "c\0pu".into(), ..cpu2() });
    assert_eq!(e.status, Error::INVALID_ARG, "{e}");

    let mut m = Model::open(&dir, &cpu2()).unwrap();
    let wide = EncodeOptions { dimensions: 1000, ..Default::default() };
    let e = m.encode_with(&["x"], &wide).unwrap_err();
    assert_eq!(e.status, Error::INVALID_ARG, "{e}");
    let unknown = EncodeOptions { prompt_name: Some("nosuch"), ..Default::default() };
    let e = m.encode_with(&["x"], &unknown).unwrap_err();
    assert!(e.message.contains("nosuch"), "{e}");

    let mut strict =
        Model::open(&dir, &Options { threads: 1, strict: true, max_length: 8, ..cpu2() }).unwrap();
    assert_eq!(strict.max_length(), 8);
    let e = strict.encode(&["one two three four five six seven eight nine"]).unwrap_err();
    assert_eq!(e.status, Error::TOO_LONG, "{e}");
    // the context is still usable after a failed call
    assert_eq!(strict.encode(&["short"]).unwrap()[0].len(), 384);
}

#[test]
fn model_is_send() {
    fn send<T: Send>() {}
    send::<Model>();
    assert_eq!(sembed::version(), "0.1.0");
}
