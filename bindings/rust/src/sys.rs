//! The raw C API of include/sembed.h, declaration for declaration.
//!
//! Names, field order and types follow the header exactly (the layout tests below pin sizes and
//! offsets to what a C compiler gives for x86-64 / aarch64 Linux). C enums are `c_int` here with
//! their values as constants, rather than Rust enums: a Rust enum receiving a value outside its
//! variants from C is undefined behaviour, a `c_int` is not. Comments are kept short; the header
//! is the specification.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int};
use std::marker::{PhantomData, PhantomPinned};

// ---- status and errors -------------------------------------------------------------------

pub type sembed_status = c_int;
pub const SEMBED_OK: sembed_status = 0;
pub const SEMBED_ERR_INVALID_ARG: sembed_status = -1;
pub const SEMBED_ERR_IO: sembed_status = -2;
pub const SEMBED_ERR_FORMAT: sembed_status = -3;
pub const SEMBED_ERR_UNSUPPORTED: sembed_status = -4;
pub const SEMBED_ERR_NOMEM: sembed_status = -5;
pub const SEMBED_ERR_INPUT: sembed_status = -6;
pub const SEMBED_ERR_TOO_SMALL: sembed_status = -7;
pub const SEMBED_ERR_TOO_LONG: sembed_status = -8;
pub const SEMBED_ERR_BACKEND: sembed_status = -9;

/// Filled by fallible calls; `msg` is a NUL-terminated sentence.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sembed_error {
    pub status: sembed_status,
    pub msg: [c_char; 512],
}

// ---- opaque handles ------------------------------------------------------------------------

// The pattern the Rustonomicon recommends for opaque C types: unsized-like, not constructible,
// and neither Send, Sync nor Unpin, so that the safe layer decides those properties itself.
macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(sembed_tokenizer, sembed_model, sembed_ctx, sembed_device_warm);

// ---- tokenizer -----------------------------------------------------------------------------

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_tokenizer_params {
    pub max_length: i32,
    pub add_special_tokens: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_tokens {
    pub ids: *mut i32,
    pub offsets: *mut i32,
    pub special: *mut u8,
    pub capacity: i32,
    pub n: i32,
    pub n_full: i32,
    pub truncated: i32,
}

// ---- models and encoding -------------------------------------------------------------------

pub type sembed_pooling = c_int;
pub const SEMBED_POOLING_DEFAULT: sembed_pooling = 0;
pub const SEMBED_POOLING_CLS: sembed_pooling = 1;
pub const SEMBED_POOLING_MEAN: sembed_pooling = 2;
pub const SEMBED_POOLING_MAX: sembed_pooling = 3;
pub const SEMBED_POOLING_LAST: sembed_pooling = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_model_params {
    pub max_length: i32,
    pub pooling: sembed_pooling,
    pub normalize: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_model_info {
    pub architecture: *const c_char,
    pub weights_dtype: *const c_char,
    pub n_params: i64,
    pub vocab_size: i32,
    pub hidden_size: i32,
    pub n_layers: i32,
    pub n_heads: i32,
    pub intermediate_size: i32,
    pub max_position: i32,
    pub max_length: i32,
    pub dim: i32,
    pub pooling: sembed_pooling,
    pub include_prompt: i32,
    pub n_dense: i32,
    pub normalize: i32,
    pub do_lower_case: i32,
    pub n_prompts: i32,
    pub default_prompt_name: *const c_char,
}

pub type sembed_precision = c_int;
pub const SEMBED_PRECISION_FP32: sembed_precision = 0;
pub const SEMBED_PRECISION_INT8: sembed_precision = 1;
pub const SEMBED_PRECISION_BF16: sembed_precision = 2;
pub const SEMBED_PRECISION_FP32_STRICT: sembed_precision = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_ctx_params {
    pub n_threads: i32,
    pub max_batch_tokens: i32,
    pub max_batch_texts: i32,
    pub strict_length: i32,
    pub reference_ops: i32,
    pub device: *const c_char,
    pub precision: sembed_precision,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sembed_encode_info {
    pub n_tokens: i32,
    pub truncated: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sembed_encode_opts {
    pub prompt_name: *const c_char,
    pub prompt: *const c_char,
    pub dimensions: i32,
}

// Linked by build.rs (`cargo:rustc-link-lib=dylib=sembed`), not by a #[link] attribute, so that
// where the library comes from is decided in one place.
extern "C" {
    pub fn sembed_status_str(status: sembed_status) -> *const c_char;
    pub fn sembed_version() -> *const c_char;

    pub fn sembed_tokenizer_default_params() -> sembed_tokenizer_params;
    pub fn sembed_tokenizer_load(
        dir: *const c_char,
        params: *const sembed_tokenizer_params,
        out: *mut *mut sembed_tokenizer,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_tokenizer_load_json(
        json: *const c_char,
        len: usize,
        name: *const c_char,
        params: *const sembed_tokenizer_params,
        out: *mut *mut sembed_tokenizer,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_tokenizer_free(tok: *mut sembed_tokenizer);
    pub fn sembed_tokenizer_max_length(tok: *const sembed_tokenizer) -> i32;
    pub fn sembed_tokenizer_vocab_size(tok: *const sembed_tokenizer) -> i32;
    pub fn sembed_tokenizer_id_to_token(tok: *const sembed_tokenizer, id: i32) -> *const c_char;
    pub fn sembed_tokenizer_token_to_id(tok: *const sembed_tokenizer, token: *const c_char) -> i32;
    pub fn sembed_tokenize(
        tok: *const sembed_tokenizer,
        text: *const c_char,
        len: usize,
        out: *mut sembed_tokens,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_tokenize_batch(
        tok: *const sembed_tokenizer,
        n: i32,
        texts: *const *const c_char,
        lens: *const usize,
        outs: *mut sembed_tokens,
        n_threads: i32,
        err: *mut sembed_error,
    ) -> sembed_status;

    pub fn sembed_model_default_params() -> sembed_model_params;
    pub fn sembed_model_load(
        dir: *const c_char,
        params: *const sembed_model_params,
        out: *mut *mut sembed_model,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_model_free(model: *mut sembed_model);
    pub fn sembed_model_dim(model: *const sembed_model) -> i32;
    pub fn sembed_model_max_length(model: *const sembed_model) -> i32;
    pub fn sembed_model_tokenizer(model: *const sembed_model) -> *const sembed_tokenizer;
    pub fn sembed_model_describe(model: *const sembed_model, out: *mut sembed_model_info);
    pub fn sembed_model_prompt(
        model: *const sembed_model,
        i: i32,
        name: *mut *const c_char,
    ) -> *const c_char;

    pub fn sembed_precision_name(precision: sembed_precision) -> *const c_char;
    pub fn sembed_precision_parse(name: *const c_char, out: *mut sembed_precision)
        -> sembed_status;

    pub fn sembed_ctx_default_params() -> sembed_ctx_params;
    pub fn sembed_ctx_new(
        model: *const sembed_model,
        params: *const sembed_ctx_params,
        out: *mut *mut sembed_ctx,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_ctx_free(ctx: *mut sembed_ctx);
    pub fn sembed_ctx_device(ctx: *const sembed_ctx) -> *const c_char;
    pub fn sembed_device_warm_start(params: *const sembed_ctx_params) -> *mut sembed_device_warm;
    pub fn sembed_device_warm_wait(w: *mut sembed_device_warm);

    pub fn sembed_encode(
        ctx: *mut sembed_ctx,
        n_texts: i32,
        texts: *const *const c_char,
        lens: *const usize,
        out: *mut f32,
        out_capacity_floats: i64,
        info: *mut sembed_encode_info,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_encode_ex(
        ctx: *mut sembed_ctx,
        n_texts: i32,
        texts: *const *const c_char,
        lens: *const usize,
        opts: *const sembed_encode_opts,
        out: *mut f32,
        out_capacity_floats: i64,
        info: *mut sembed_encode_info,
        err: *mut sembed_error,
    ) -> sembed_status;
    pub fn sembed_encode_ids(
        ctx: *mut sembed_ctx,
        n_inputs: i32,
        ids: *const *const i32,
        n_ids: *const i32,
        opts: *const sembed_encode_opts,
        out: *mut f32,
        out_capacity_floats: i64,
        info: *mut sembed_encode_info,
        err: *mut sembed_error,
    ) -> sembed_status;
}

/// Sizes and offsets as a C compiler lays the header's structs out on LP64 targets (checked with
/// offsetof against include/sembed.h); a field added, dropped or moved on either side fails here.
#[cfg(all(test, target_pointer_width = "64"))]
mod layout {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn structs_match_the_header() {
        assert_eq!((size_of::<sembed_error>(), offset_of!(sembed_error, msg)), (516, 4));
        assert_eq!(size_of::<sembed_tokenizer_params>(), 8);
        assert_eq!((size_of::<sembed_tokens>(), align_of::<sembed_tokens>()), (40, 8));
        assert_eq!(offset_of!(sembed_tokens, capacity), 24);
        assert_eq!(offset_of!(sembed_tokens, truncated), 36);
        assert_eq!(size_of::<sembed_model_params>(), 12);
        assert_eq!(offset_of!(sembed_model_params, normalize), 8);
        assert_eq!(size_of::<sembed_model_info>(), 88);
        assert_eq!(offset_of!(sembed_model_info, n_params), 16);
        assert_eq!(offset_of!(sembed_model_info, vocab_size), 24);
        assert_eq!(offset_of!(sembed_model_info, max_length), 48);
        assert_eq!(offset_of!(sembed_model_info, pooling), 56);
        assert_eq!(offset_of!(sembed_model_info, n_prompts), 76);
        assert_eq!(offset_of!(sembed_model_info, default_prompt_name), 80);
        assert_eq!(size_of::<sembed_ctx_params>(), 40);
        assert_eq!(offset_of!(sembed_ctx_params, device), 24);
        assert_eq!(offset_of!(sembed_ctx_params, precision), 32);
        assert_eq!(size_of::<sembed_encode_info>(), 8);
        assert_eq!(size_of::<sembed_encode_opts>(), 24);
        assert_eq!(offset_of!(sembed_encode_opts, dimensions), 16);
    }

    /// Structs returned by value cross the ABI correctly: the defaults are the header's.
    #[test]
    fn default_params_by_value() {
        let cp = unsafe { sembed_ctx_default_params() };
        assert_eq!(cp.precision, SEMBED_PRECISION_FP32);
        assert_eq!((cp.strict_length, cp.reference_ops), (0, 0));
        let tp = unsafe { sembed_tokenizer_default_params() };
        assert_eq!((tp.max_length, tp.add_special_tokens), (0, 1));
        let mp = unsafe { sembed_model_default_params() };
        assert_eq!((mp.max_length, mp.pooling, mp.normalize), (0, SEMBED_POOLING_DEFAULT, 0));
    }
}
