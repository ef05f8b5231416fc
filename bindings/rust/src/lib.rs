//! sembed from Rust: text embeddings with BERT-family encoders through libsembed.
//!
//! ```no_run
//! use sembed::{EncodeOptions, Model, Options};
//!
//! let mut m = Model::open("all-MiniLM-L6-v2", &Options::default())?;
//! let v = m.encode(&["Hello, world!", "Another text"])?; // 2 vectors of m.dim() floats
//! let query = EncodeOptions { prompt: Some("query: "), dimensions: 64, ..Default::default() };
//! let q = m.encode_with(&["what is sembed?"], &query)?; // 1 vector of 64 floats
//! println!("{} {} {:?}", m.dim(), m.max_length(), m.tokenize("Hello, world!")?);
//! # Ok::<(), sembed::Error>(())
//! ```
//!
//! [`Model`] owns a loaded model and one encoding context; every failing call returns an
//! [`Error`] carrying the library's status and message (which names the file, field or text
//! involved). The raw C API is in [`sys`].

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};

pub mod sys;

/// A failed sembed call: `status` is the library's code (one of the associated constants, e.g.
/// [`Error::IO`]), `message` its sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl Error {
    pub const INVALID_ARG: i32 = sys::SEMBED_ERR_INVALID_ARG;
    pub const IO: i32 = sys::SEMBED_ERR_IO;
    pub const FORMAT: i32 = sys::SEMBED_ERR_FORMAT;
    pub const UNSUPPORTED: i32 = sys::SEMBED_ERR_UNSUPPORTED;
    pub const NOMEM: i32 = sys::SEMBED_ERR_NOMEM;
    pub const INPUT: i32 = sys::SEMBED_ERR_INPUT;
    pub const TOO_SMALL: i32 = sys::SEMBED_ERR_TOO_SMALL;
    pub const TOO_LONG: i32 = sys::SEMBED_ERR_TOO_LONG;
    pub const BACKEND: i32 = sys::SEMBED_ERR_BACKEND;

    /// The status's name (`"IO"`, `"INVALID_ARG"`, ...), as the Python binding's
    /// `SembedError.name`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.status {
            Self::INVALID_ARG => "INVALID_ARG",
            Self::IO => "IO",
            Self::FORMAT => "FORMAT",
            Self::UNSUPPORTED => "UNSUPPORTED",
            Self::NOMEM => "NOMEM",
            Self::INPUT => "INPUT",
            Self::TOO_SMALL => "TOO_SMALL",
            Self::TOO_LONG => "TOO_LONG",
            Self::BACKEND => "BACKEND",
            _ => "UNKNOWN",
        }
    }

    /// An argument the binding rejects before calling the library (an interior NUL in a path,
    /// a count beyond `i32`), reported as the library would report it.
    fn invalid(message: String) -> Error {
        Error { status: Self::INVALID_ARG, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.name())
    }
}

impl std::error::Error for Error {}

/// The arithmetic of a context (`sembed_precision`; include/sembed.h tells what each does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// fp32 weights and activations (on AMX CPUs, bf16 + int8 parts of each weight).
    #[default]
    Fp32,
    /// int8 weights and activations: cosine >= 0.995 to fp32. CPU only.
    Int8,
    /// bf16 (AVX512_BF16 on the CPU; bf16 instead of fp16 on CUDA).
    Bf16,
    /// fp32 FMA in every GEMM. CPU only.
    Fp32Strict,
}

impl Precision {
    fn raw(self) -> sys::sembed_precision {
        match self {
            Precision::Fp32 => sys::SEMBED_PRECISION_FP32,
            Precision::Int8 => sys::SEMBED_PRECISION_INT8,
            Precision::Bf16 => sys::SEMBED_PRECISION_BF16,
            Precision::Fp32Strict => sys::SEMBED_PRECISION_FP32_STRICT,
        }
    }
}

/// A pooling that replaces the folder's ([`Options::pooling`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's hidden state.
    Cls,
    /// The mean of the tokens' hidden states.
    Mean,
    /// The elementwise max.
    Max,
    /// The last token's hidden state.
    Last,
}

impl Pooling {
    fn raw(self) -> sys::sembed_pooling {
        match self {
            Pooling::Cls => sys::SEMBED_POOLING_CLS,
            Pooling::Mean => sys::SEMBED_POOLING_MEAN,
            Pooling::Max => sys::SEMBED_POOLING_MAX,
            Pooling::Last => sys::SEMBED_POOLING_LAST,
        }
    }
}

/// What [`Model::encode_info`] reports per text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextInfo {
    /// Tokens the model saw, special tokens (and a prompt) included.
    pub n_tokens: usize,
    /// The text was longer than the max length and was cut.
    pub truncated: bool,
}

/// How [`Model::open`] loads a model and sets up its context. `Options::default()` is the CPU,
/// one thread per core, fp32, the folder's max length, pooling and normalization, truncation,
/// the library's forward-pass sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// "cpu", "cuda" (device 0), "cuda:N" or "auto".
    pub device: String,
    /// Encoder and OpenBLAS threads; 0: one per online CPU.
    pub threads: usize,
    pub precision: Precision,
    /// Tokens per text, special tokens included; 0: the folder's max_seq_length.
    pub max_length: usize,
    /// A text longer than the max length is an error ([`Error::TOO_LONG`]) instead of being
    /// truncated.
    pub strict: bool,
    /// None: the folder's pooling. Another replaces it (and drops the folder's Dense modules,
    /// trained on its pooling); a plain Hugging Face folder without modules.json needs one.
    pub pooling: Option<Pooling>,
    /// L2-normalize the vectors even when the folder has no Normalize module.
    pub normalize: bool,
    /// Tokens and texts per forward pass, planned at open; 0: the library's (4096 tokens and
    /// 256 texts on the CPU, 32768 and 1024 on a GPU).
    pub max_batch_tokens: usize,
    pub max_batch_texts: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: "cpu".to_string(),
            threads: 0,
            precision: Precision::Fp32,
            max_length: 0,
            strict: false,
            pooling: None,
            normalize: false,
            max_batch_tokens: 0,
            max_batch_texts: 0,
        }
    }
}

/// Per-call options of [`Model::encode_with`]. The default is what [`Model::encode`] does: the
/// folder's default prompt, the model's full dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions<'a> {
    /// A prompt of config_sentence_transformers.json by name ("query", "passage", ...),
    /// prepended to every text. None: the folder's default_prompt_name, if any.
    pub prompt_name: Option<&'a str>,
    /// A literal prompt instead (overrides `prompt_name`); `Some("")` means no prompt at all.
    pub prompt: Option<&'a str>,
    /// Matryoshka: keep the first `dimensions` floats of each vector (renormalized when the
    /// model normalizes). 0: [`Model::dim`].
    pub dimensions: usize,
}

/// A model folder loaded with one encoding context.
///
/// Encoding takes `&mut self`: a context is one stream of calls, one thread at a time. A `Model`
/// may move to another thread (it is `Send`) but is not `Sync`; for parallel encoding open one
/// per thread.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<sembed::Model>();
/// ```
pub struct Model {
    model: NonNull<sys::sembed_model>,
    ctx: NonNull<sys::sembed_ctx>,
    // sembed_ctx_new copies its params (this pointer included) into the context, and the header
    // does not promise that the copy is never read again: the string lives as long as the context.
    _device: CString,
    dim: usize,
    max_length: usize,
}

// SAFETY: the model is immutable after load and may be used from any thread; the context may be
// used from any thread as long as it is one at a time, which `&mut self` on encode (and the
// absence of Sync) ensures. Nothing in either is tied to the thread that created it.
unsafe impl Send for Model {}

impl Model {
    /// Loads the sentence-transformers (or Hugging Face BERT / MPNet / XLM-RoBERTa) folder at
    /// `path` and creates its context on `options.device`.
    ///
    /// # Errors
    ///
    /// [`Error::IO`] or [`Error::FORMAT`] for a missing or invalid folder (the message names the
    /// file and field), [`Error::INVALID_ARG`] for an unknown device or a max length beyond the
    /// model's positions, [`Error::UNSUPPORTED`] for a precision the device cannot run.
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Model, Error> {
        // Every argument is checked before anything is allocated, so that the only clean-up
        // path below is the context's failure.
        let dir = c_string("model path", path.as_ref().as_os_str().as_encoded_bytes())?;
        let device = c_string("device", options.device.as_bytes())?;
        let max_length = to_i32("max_length", options.max_length)?;
        let threads = to_i32("threads", options.threads)?;
        let max_batch_tokens = to_i32("max_batch_tokens", options.max_batch_tokens)?;
        let max_batch_texts = to_i32("max_batch_texts", options.max_batch_texts)?;

        let mut err = no_error();
        // SAFETY: a plain value-returning call; `device` is kept in the returned Model.
        let cp = unsafe {
            let mut cp = sys::sembed_ctx_default_params();
            cp.n_threads = threads;
            cp.device = device.as_ptr();
            cp.precision = options.precision.raw();
            cp.strict_length = i32::from(options.strict);
            cp.max_batch_tokens = max_batch_tokens;
            cp.max_batch_texts = max_batch_texts;
            cp
        };
        // A GPU's driver and device come up while the model loads.
        // SAFETY: `cp` and the strings it points to outlive the call, which reads them before
        // returning; the result (NULL: nothing started) is waited for once, below.
        let warm = unsafe { sys::sembed_device_warm_start(&cp) };
        let mut model = ptr::null_mut();
        // SAFETY: plain value-returning calls; `dir` and `mp` outlive the load call, which
        // writes a model pointer on success only; `warm` is waited for once, whatever the load
        // gave.
        let status = unsafe {
            let mut mp = sys::sembed_model_default_params();
            mp.max_length = max_length;
            mp.pooling = options.pooling.map_or(sys::SEMBED_POOLING_DEFAULT, Pooling::raw);
            mp.normalize = i32::from(options.normalize);
            let status = sys::sembed_model_load(dir.as_ptr(), &mp, &mut model, &mut err);
            sys::sembed_device_warm_wait(warm);
            status
        };
        check(status, &err)?;
        let model = NonNull::new(model)
            .ok_or_else(|| Error::invalid("sembed_model_load gave NULL".into()))?;

        // SAFETY: `model` is a loaded model; `device` is kept in the returned Model (see above).
        let ctx = unsafe {
            let mut ctx = ptr::null_mut();
            let status = sys::sembed_ctx_new(model.as_ptr(), &cp, &mut ctx, &mut err);
            match NonNull::new(ctx) {
                Some(ctx) if status == sys::SEMBED_OK => ctx,
                _ => {
                    sys::sembed_model_free(model.as_ptr());
                    check(status, &err)?;
                    return Err(Error::invalid("sembed_ctx_new gave NULL".into()));
                }
            }
        };

        // SAFETY: `model` is loaded; both are plain getters.
        let (dim, max_length) = unsafe {
            (sys::sembed_model_dim(model.as_ptr()), sys::sembed_model_max_length(model.as_ptr()))
        };
        Ok(Model {
            model,
            ctx,
            _device: device,
            dim: usize::try_from(dim).unwrap_or(0),
            max_length: usize::try_from(max_length).unwrap_or(0),
        })
    }

    /// Floats per embedding.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Where the model runs: `"cpu"` or `"cuda:N"` (what `"auto"` chose).
    #[must_use]
    pub fn device(&self) -> String {
        // SAFETY: `ctx` is a live context; the string it returns lives as long as the context.
        unsafe { CStr::from_ptr(sys::sembed_ctx_device(self.ctx.as_ptr())) }
            .to_string_lossy()
            .into_owned()
    }

    /// Tokens per text, special tokens included (longer texts are truncated, or rejected when
    /// [`Options::strict`]).
    #[must_use]
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// One vector of [`Model::dim`] floats per text, normalized when the model normalizes.
    /// A text's vector is the same bits whatever texts it is encoded with.
    ///
    /// # Errors
    ///
    /// [`Error::TOO_LONG`] for a text over the max length in strict mode (naming the text),
    /// [`Error::BACKEND`] when a GPU fails.
    pub fn encode<T: AsRef<str>>(&mut self, texts: &[T]) -> Result<Vec<Vec<f32>>, Error> {
        self.encode_with(texts, &EncodeOptions::default())
    }

    /// [`Model::encode`] with a prompt and/or fewer dimensions.
    ///
    /// # Errors
    ///
    /// As [`Model::encode`], and [`Error::INVALID_ARG`] for an unknown prompt name, a
    /// `dimensions` above [`Model::dim`], or a prompt with a NUL byte.
    pub fn encode_with<T: AsRef<str>>(
        &mut self,
        texts: &[T],
        options: &EncodeOptions<'_>,
    ) -> Result<Vec<Vec<f32>>, Error> {
        self.encode_inner(texts, options, None)
    }

    /// [`Model::encode_with`], and per text its token count and whether it was truncated.
    ///
    /// # Errors
    ///
    /// As [`Model::encode_with`].
    pub fn encode_info<T: AsRef<str>>(
        &mut self,
        texts: &[T],
        options: &EncodeOptions<'_>,
    ) -> Result<(Vec<Vec<f32>>, Vec<TextInfo>), Error> {
        let mut raw = vec![sys::sembed_encode_info { n_tokens: 0, truncated: 0 }; texts.len()];
        let vectors = self.encode_inner(texts, options, Some(&mut raw))?;
        let info = raw
            .iter()
            .map(|i| TextInfo {
                n_tokens: usize::try_from(i.n_tokens).unwrap_or(0),
                truncated: i.truncated != 0,
            })
            .collect();
        Ok((vectors, info))
    }

    fn encode_inner<T: AsRef<str>>(
        &mut self,
        texts: &[T],
        options: &EncodeOptions<'_>,
        info: Option<&mut [sys::sembed_encode_info]>,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let n = to_i32("number of texts", texts.len())?;
        let dimensions = to_i32("dimensions", options.dimensions)?;
        let prompt_name =
            options.prompt_name.map(|s| c_string("prompt_name", s.as_bytes())).transpose()?;
        let prompt = options.prompt.map(|s| c_string("prompt", s.as_bytes())).transpose()?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Texts go with explicit lengths: no copies, and a NUL inside a text is a character.
        let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ref().as_ptr().cast()).collect();
        let lens: Vec<usize> = texts.iter().map(|t| t.as_ref().len()).collect();
        let opts = sys::sembed_encode_opts {
            prompt_name: prompt_name.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            prompt: prompt.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
            dimensions,
        };
        // A `dimensions` beyond the model's is the library's error to report (it writes nothing
        // then), so the buffer is sized as asked.
        let row = if options.dimensions == 0 { self.dim } else { options.dimensions };
        let (floats, capacity) = texts
            .len()
            .checked_mul(row)
            .and_then(|f| Some((f, i64::try_from(f).ok()?)))
            .ok_or_else(|| Error::invalid(format!("{n} texts of {row} floats: too many")))?;
        let mut out = vec![0f32; floats];
        let mut err = no_error();
        let info_ptr = info.map_or(ptr::null_mut(), <[sys::sembed_encode_info]>::as_mut_ptr);
        // SAFETY: `ptrs`/`lens` hold n texts that outlive the call; the prompt strings behind
        // `opts` live until the end of this function; `out` holds `floats` floats; `info_ptr`
        // is NULL or n entries (encode_info sizes it to the texts).
        let status = unsafe {
            sys::sembed_encode_ex(
                self.ctx.as_ptr(),
                n,
                ptrs.as_ptr(),
                lens.as_ptr(),
                &opts,
                out.as_mut_ptr(),
                capacity,
                info_ptr,
                &mut err,
            )
        };
        check(status, &err)?;
        Ok(out.chunks_exact(row).map(<[f32]>::to_vec).collect())
    }

    /// The token ids the model sees for `text`: special tokens included, truncated to the
    /// tokenizer's max length.
    ///
    /// # Errors
    ///
    /// None expected for a `&str` (always UTF-8); the library's status is passed on regardless.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i32>, Error> {
        let mut err = no_error();
        // SAFETY: the tokenizer is owned by the model, immutable and valid while it is; `ids`
        // has the `capacity` entries the header says always suffice.
        unsafe {
            let tok = sys::sembed_model_tokenizer(self.model.as_ptr());
            let capacity = sys::sembed_tokenizer_max_length(tok);
            let mut ids = vec![0i32; usize::try_from(capacity).unwrap_or(0)];
            let mut out = sys::sembed_tokens {
                ids: ids.as_mut_ptr(),
                offsets: ptr::null_mut(),
                special: ptr::null_mut(),
                capacity,
                n: 0,
                n_full: 0,
                truncated: 0,
            };
            check(
                sys::sembed_tokenize(tok, text.as_ptr().cast(), text.len(), &mut out, &mut err),
                &err,
            )?;
            ids.truncate(usize::try_from(out.n).unwrap_or(0));
            Ok(ids)
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: both were created in `open` and are freed once; the context before the model
        // it uses, as the header requires.
        unsafe {
            sys::sembed_ctx_free(self.ctx.as_ptr());
            sys::sembed_model_free(self.model.as_ptr());
        }
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("dim", &self.dim)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

/// The library's version, "0.1.0".
#[must_use]
pub fn version() -> &'static str {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::sembed_version()) }.to_str().unwrap_or("")
}

fn no_error() -> sys::sembed_error {
    sys::sembed_error { status: sys::SEMBED_OK, msg: [0; 512] }
}

/// `Ok` for SEMBED_OK, else the error with the message the library wrote into `err`.
fn check(status: sys::sembed_status, err: &sys::sembed_error) -> Result<(), Error> {
    if status == sys::SEMBED_OK {
        return Ok(());
    }
    // The buffer is read as bytes up to its NUL (or its end, should a message ever fill it).
    let bytes: Vec<u8> = err
        .msg
        .iter()
        .map(|c| u8::from_ne_bytes(c.to_ne_bytes()))
        .take_while(|&b| b != 0)
        .collect();
    let mut message = String::from_utf8_lossy(&bytes).into_owned();
    if message.is_empty() {
        // SAFETY: sembed_status_str never returns NULL and its strings are static.
        message = unsafe { CStr::from_ptr(sys::sembed_status_str(status)) }
            .to_string_lossy()
            .into_owned();
    }
    Err(Error { status, message })
}

fn c_string(what: &str, bytes: &[u8]) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::invalid(format!("{what} contains a NUL byte")))
}

fn to_i32(what: &str, value: usize) -> Result<i32, Error> {
    i32::try_from(value)
        .map_err(|_| Error::invalid(format!("{what} {value}: more than {}", i32::MAX)))
}
