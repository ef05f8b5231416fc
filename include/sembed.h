/* sembed.h — the public API of sembed, the only header users include; it is the specification.
 * Not a place for internals: those live under src/ with the sembed__ prefix.
 *
 * Usage (tokenize a text with a model folder's tokenizer):
 *
 *     #include <sembed.h>
 *     #include <stdio.h>
 *     #include <string.h>
 *
 *     int main(void) {
 *         sembed_error err = {0};
 *         sembed_tokenizer *tok = NULL;
 *         sembed_tokenizer_params tp = sembed_tokenizer_default_params();
 *         if (sembed_tokenizer_load("all-MiniLM-L6-v2/", &tp, &tok, &err) != SEMBED_OK) {
 *             fprintf(stderr, "%s\n", err.msg);
 *             return 1;
 *         }
 *         int32_t cap = sembed_tokenizer_max_length(tok);
 *         int32_t ids[512], offsets[2 * 512];
 *         sembed_tokens out = {.ids = ids, .offsets = offsets, .capacity = cap};
 *         const char *text = "Hello, world!";
 *         if (sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_OK)
 *             for (int32_t i = 0; i < out.n; i++)
 *                 printf("%d %s\n", ids[i], sembed_tokenizer_id_to_token(tok, ids[i]));
 *         sembed_tokenizer_free(tok);
 *         return 0;
 *     }
 *
 * Thread safety: a sembed_tokenizer is immutable after load; any number of threads may call
 * sembed_tokenize* on it at once. Errors are returned, never printed; the library never exits.
 */
#ifndef SEMBED_H
#define SEMBED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMBED_VERSION_MAJOR 0
#define SEMBED_VERSION_MINOR 1
#define SEMBED_VERSION_PATCH 0

/* ---- status and errors ------------------------------------------------------------------ */

typedef enum sembed_status {
    SEMBED_OK = 0,
    SEMBED_ERR_INVALID_ARG = -1, /* a NULL pointer, a negative count, an unknown option */
    SEMBED_ERR_IO = -2,          /* a file could not be opened or read */
    SEMBED_ERR_FORMAT = -3,      /* a file's content is invalid (the message names file and field) */
    SEMBED_ERR_UNSUPPORTED = -4, /* valid, but not something sembed implements (a component type) */
    SEMBED_ERR_NOMEM = -5,       /* an allocation failed */
    SEMBED_ERR_INPUT = -6,       /* an input text is invalid (not UTF-8); the message gives index and byte */
    SEMBED_ERR_TOO_SMALL = -7,   /* a caller buffer is too small; the message gives the size needed */
    SEMBED_ERR_TOO_LONG = -8,    /* strict length mode: an input exceeds the maximum length */
    SEMBED_ERR_BACKEND = -9,     /* a compute backend failed (CUDA error, ...) */
} sembed_status;

/* Filled by fallible calls when non-NULL. `status` repeats the return value; `msg` is a
 * NUL-terminated sentence naming the file, field or input index involved. */
typedef struct sembed_error {
    sembed_status status;
    char msg[512];
} sembed_error;

/* A static string describing a status ("ok", "invalid file format", ...). Never NULL. */
const char *sembed_status_str(sembed_status status);

/* "0.1.0". */
const char *sembed_version(void);

/* ---- tokenizer -------------------------------------------------------------------------- */

/* A tokenizer built from a model folder's tokenizer.json (or vocab.txt + tokenizer_config.json
 * for BERT folders without one). Immutable after load; shared by threads. */
typedef struct sembed_tokenizer sembed_tokenizer;

typedef struct sembed_tokenizer_params {
    /* Maximum tokens per text, special tokens included; longer texts are truncated (right).
     * 0: the folder's own limit: sentence-transformers' max_seq_length from
     * sentence_bert_config.json when present, else tokenizer.json's truncation.max_length,
     * else tokenizer_config.json's model_max_length, else 512. */
    int32_t max_length;
    /* Add the post-processor's special tokens ([CLS] ... [SEP], <s> ... </s>). 1 by default. */
    int32_t add_special_tokens;
} sembed_tokenizer_params;

sembed_tokenizer_params sembed_tokenizer_default_params(void);

/* Loads the tokenizer of the model folder `dir` (a directory holding tokenizer.json, or
 * vocab.txt). `params` may be NULL for the defaults. On success *out owns a tokenizer that the
 * caller frees with sembed_tokenizer_free. */
sembed_status sembed_tokenizer_load(const char *dir, const sembed_tokenizer_params *params,
                                    sembed_tokenizer **out, sembed_error *err);

/* Loads a tokenizer from the bytes of a tokenizer.json (`name` is used in error messages).
 * `max_length` 0 means tokenizer.json's truncation.max_length, else 512. */
sembed_status sembed_tokenizer_load_json(const char *json, size_t len, const char *name,
                                         const sembed_tokenizer_params *params,
                                         sembed_tokenizer **out, sembed_error *err);

void sembed_tokenizer_free(sembed_tokenizer *tok); /* NULL is a no-op */

int32_t sembed_tokenizer_max_length(const sembed_tokenizer *tok);
int32_t sembed_tokenizer_vocab_size(const sembed_tokenizer *tok); /* largest id + 1 */
/* The token string of `id` (owned by the tokenizer, valid until it is freed), or NULL when the
 * id is out of range. */
const char *sembed_tokenizer_id_to_token(const sembed_tokenizer *tok, int32_t id);
/* The id of a token string, or -1. */
int32_t sembed_tokenizer_token_to_id(const sembed_tokenizer *tok, const char *token);

/* One text's tokens, in caller-owned buffers of `capacity` entries. A capacity of
 * sembed_tokenizer_max_length() always suffices. */
typedef struct sembed_tokens {
    int32_t *ids;     /* (capacity) token ids; required */
    int32_t *offsets; /* (2*capacity) [begin, end) byte offsets into the original text, per
                         token; special tokens added by the post-processor get [0, 0);
                         may be NULL */
    uint8_t *special; /* (capacity) 1 for tokens added by the post-processor or matched as
                         special added tokens; may be NULL */
    int32_t capacity; /* entries available in each buffer */
    int32_t n;        /* out: tokens written */
    int32_t n_full;   /* out: tokens the text has without truncation (specials included) */
    int32_t truncated; /* out: 1 when tokens were dropped to fit max_length */
} sembed_tokens;

/* Tokenizes `len` bytes of UTF-8 `text` (no NUL needed; embedded NULs are characters).
 * Invalid UTF-8 gives SEMBED_ERR_INPUT naming the byte offset. */
sembed_status sembed_tokenize(const sembed_tokenizer *tok, const char *text, size_t len,
                              sembed_tokens *out, sembed_error *err);

/* Tokenizes n texts with up to n_threads threads (0: one per online CPU). texts[i] has lens[i]
 * bytes. On failure the error names the first failing text's index; outputs of other texts
 * are then unspecified. */
sembed_status sembed_tokenize_batch(const sembed_tokenizer *tok, int32_t n,
                                    const char *const *texts, const size_t *lens,
                                    sembed_tokens *outs, int32_t n_threads, sembed_error *err);

/* ---- models and encoding ---------------------------------------------------------------- */

/* A loaded model: its tokenizer, configuration and fp32 weights. Immutable after load; any number
 * of contexts (on any threads) may use one model at once. */
typedef struct sembed_model sembed_model;

/* The scratch memory and threads of one stream of sembed_encode calls. One thread at a time. */
typedef struct sembed_ctx sembed_ctx;

typedef enum sembed_pooling {
    SEMBED_POOLING_DEFAULT = 0, /* the folder's 1_Pooling/config.json (required then) */
    SEMBED_POOLING_CLS = 1,     /* the first token's hidden state */
    SEMBED_POOLING_MEAN = 2,    /* mean of the tokens' hidden states */
    SEMBED_POOLING_MAX = 3,     /* elementwise max */
    SEMBED_POOLING_LAST = 4,    /* the last token's hidden state */
} sembed_pooling;

typedef struct sembed_model_params {
    /* Maximum tokens per text, special tokens included; longer texts are truncated (or rejected
     * in strict mode). 0: the folder's max_seq_length (sentence_bert_config.json), capped by the
     * position table. A larger value than the position table allows is an error. */
    int32_t max_length;
    /* Pooling. SEMBED_POOLING_DEFAULT (0): the folder's; a plain Hugging Face folder (no
     * modules.json) needs one here. Another value replaces the folder's pooling (and then
     * drops its Dense modules, which were trained on the folder's pooling). */
    sembed_pooling pooling;
    /* 1: L2-normalize the output even when the folder has no Normalize module. 0: as the
     * folder says. */
    int32_t normalize;
} sembed_model_params;

sembed_model_params sembed_model_default_params(void);

/* Loads the sentence-transformers (or plain Hugging Face BERT / MPNet / XLM-RoBERTa) folder
 * `dir`: tokenizer, config.json and modules, model.safetensors (F32, F16 or BF16, converted to
 * fp32 once, here). `params` may be NULL. On success *out owns the model; free it with
 * sembed_model_free after every context using it. Errors name the file and field. */
sembed_status sembed_model_load(const char *dir, const sembed_model_params *params,
                                sembed_model **out, sembed_error *err);
void sembed_model_free(sembed_model *model); /* NULL is a no-op */

int32_t sembed_model_dim(const sembed_model *model);        /* floats per embedding */
int32_t sembed_model_max_length(const sembed_model *model); /* tokens per text */
/* The model's tokenizer (owned by the model, valid until it is freed). */
const sembed_tokenizer *sembed_model_tokenizer(const sembed_model *model);

/* What a loaded model is (`sembed info` prints it). Strings are owned by the model. */
typedef struct sembed_model_info {
    const char *architecture;  /* "bert", "mpnet" or "xlm-roberta" */
    const char *weights_dtype; /* dtype of model.safetensors on disk: "F32", "F16" or "BF16" */
    int64_t n_params;          /* floats in the encoder's and Dense modules' weights */
    int32_t vocab_size, hidden_size, n_layers, n_heads, intermediate_size, max_position;
    int32_t max_length;        /* tokens per text (after max_seq_length and the caller's cap) */
    int32_t dim;               /* floats per embedding (after Dense modules) */
    sembed_pooling pooling;
    int32_t include_prompt;    /* 0: prompt tokens are left out of the pooling */
    int32_t n_dense;           /* Dense modules after pooling */
    int32_t normalize;         /* 1: the output is L2-normalized */
    int32_t do_lower_case;     /* sentence_bert_config.json's do_lower_case */
    int32_t n_prompts;         /* prompts in config_sentence_transformers.json */
    const char *default_prompt_name; /* NULL when none */
} sembed_model_info;

/* Fills *out; never fails for a loaded model. */
void sembed_model_describe(const sembed_model *model, sembed_model_info *out);
/* Prompt i (0 <= i < n_prompts): its text, and its name in *name. NULL when i is out of range. */
const char *sembed_model_prompt(const sembed_model *model, int32_t i, const char **name);

typedef enum sembed_precision {
    SEMBED_PRECISION_FP32 = 0,
    SEMBED_PRECISION_INT8 = 1,
    SEMBED_PRECISION_BF16 = 2,
    SEMBED_PRECISION_FP32_STRICT = 3,
} sembed_precision;

/* "fp32", "int8", "bf16" or "fp32-strict"; NULL for a value outside the enum. */
const char *sembed_precision_name(sembed_precision precision);
/* The precision of one of those names in *out; SEMBED_ERR_INVALID_ARG for any other text. */
sembed_status sembed_precision_parse(const char *name, sembed_precision *out);

typedef struct sembed_ctx_params {
    /* Threads for the encoder's ops and for OpenBLAS. 0: one per online CPU. Note: OpenBLAS
     * keeps one process-wide thread count; a context sets it to this when created. */
    int32_t n_threads;
    /* Tokens packed into one forward pass; memory is planned for it at sembed_ctx_new.
     * 0: 4096 on the CPU, 32768 on a GPU. Raised to the model's max length when smaller. */
    int32_t max_batch_tokens;
    /* Texts packed into one forward pass. 0: 256 on the CPU, 1024 on a GPU. */
    int32_t max_batch_texts;
    /* 1: a text longer than the model's max length fails with SEMBED_ERR_TOO_LONG (naming the
     * text and its token count) instead of being truncated. 0: truncate. */
    int32_t strict_length;
    /* 1: run the plain scalar reference ops (slow; for checking). 0: the fast CPU ops. */
    int32_t reference_ops;
    /* Where the encoder runs: "cpu", "cuda" (device 0), "cuda:N", or "auto" (CUDA device 0
     * when the library was built with CUDA and a device is usable, else the CPU). NULL: "cpu".
     * A CUDA context holds the model's weights on the device as fp16 (bf16 with
     * SEMBED_PRECISION_BF16); its vectors agree with the CPU's to a cosine of at least 0.9999
     * (bf16: 0.999) and are batch-invariant on that device. */
    const char *device;
    /* The arithmetic. On CUDA, BF16 selects bf16 weights and activations (fp32 accumulation and
     * statistics, as fp16's) instead of fp16, for models whose activations could overflow fp16's
     * range; FP32 (the default) runs fp16; INT8 and FP32_STRICT are CPU arithmetic: with
     * "cuda" or "cuda:N" they are SEMBED_ERR_UNSUPPORTED, and "auto" keeps them on the CPU. On
     * the CPU: SEMBED_PRECISION_FP32 (0, the default): fp32
     * weights and activations; on a CPU with AMX each GEMM weight is kept as a bf16 part wh and the
     * rest w - wh as int8 per output channel (3 bytes instead of 4, a step of about 2^-16 of the
     * channel's largest weight), and each product taken as xh·wh + xl·wh (bf16 parts of x, summed
     * in fp32) plus x·(w - wh) in exact int8 sums over two int8 digits of x: about 16 significant
     * bits where fp32 FMA keeps 24 (PyTorch's float32_matmul_precision "high" is of the same
     * order), 2x the speed of FMA and fewer bytes for a query to stream; vectors within 3e-5 of
     * sentence-transformers' fp32 on the golden texts (cosine 0.99999999). FP32_STRICT: fp32 FMA in
     * every GEMM (AVX-512 or OpenBLAS). INT8 quantizes weights per output channel at load and
     * activations per token at run time: with AMX, the activations of the qkv, FFN-in and FFN-out
     * GEMMs as two int8 digits; without AMX, each activation row as one uint8 digit with a zero
     * point, where for qkv, FFN in and the first layer's FFN out the row's outlier channels (over
     * 4x its rms) stay exact and a second digit is added where the first errs by over 1.5%
     * (src/backend.h, SEMBED__PRECISION_INT8A): cosine >= 0.995 against fp32,
     * the same bits on every CPU of one kind (with AMX or without); BF16 uses AVX512_BF16 where the
     * CPU has it and is SEMBED_ERR_UNSUPPORTED elsewhere. */
    sembed_precision precision;
} sembed_ctx_params;

sembed_ctx_params sembed_ctx_default_params(void);

/* Creates a context for `model` with all the memory its encode calls need. `params` may be
 * NULL. The model must outlive the context. */
sembed_status sembed_ctx_new(const sembed_model *model, const sembed_ctx_params *params,
                             sembed_ctx **out, sembed_error *err);
void sembed_ctx_free(sembed_ctx *ctx); /* NULL is a no-op */
/* Where the context runs: "cpu" or "cuda:N" (what "auto" chose). NULL for a NULL ctx. */
const char *sembed_ctx_device(const sembed_ctx *ctx);

/* Optional, for a fast start: where a context of `params` would run on CUDA (their device
 * "cuda", "cuda:N" or "auto", and a precision the GPU runs), starts the CUDA driver and that
 * device on a thread of its own and returns at once, so that they come up while the caller
 * loads the model (sembed_model_load); sembed_device_warm_wait then waits for that thread and
 * frees it, and sembed_ctx_new(params) finds the device ready. The `sembed embed -d cuda`
 * command line and the bindings do so (the driver and device take ~0.2 s, about the model
 * load's time). NULL when there is nothing to start: no CUDA in this build, a CPU device or CPU
 * arithmetic (int8, fp32-strict), NULL params. */
typedef struct sembed_device_warm sembed_device_warm;
sembed_device_warm *sembed_device_warm_start(const sembed_ctx_params *params);
void sembed_device_warm_wait(sembed_device_warm *w); /* NULL is a no-op */

/* Per text: what the encoder saw. */
typedef struct sembed_encode_info {
    int32_t n_tokens;  /* tokens encoded, special tokens included */
    int32_t truncated; /* 1 when tokens past the max length were dropped */
} sembed_encode_info;

/* Embeds n_texts texts (texts[i] has lens[i] bytes of UTF-8; lens may be NULL for
 * NUL-terminated texts) into out: n_texts * sembed_model_dim() floats, text i at
 * out[i * dim]. out_capacity_floats smaller than that gives SEMBED_ERR_TOO_SMALL and the size
 * needed in the message, and writes nothing. info (n_texts entries) may be NULL.
 * A text's vector is bit-identical whatever texts it is encoded with (batch invariance), for a
 * given model, backend and machine. On an error naming text i, outputs are unspecified. */
sembed_status sembed_encode(sembed_ctx *ctx, int32_t n_texts, const char *const *texts,
                            const size_t *lens, float *out, int64_t out_capacity_floats,
                            sembed_encode_info *info, sembed_error *err);

/* Per-call options of sembed_encode_ex / sembed_encode_ids. Zero-initialized means: the
 * folder's default prompt, the model's full dimension. */
typedef struct sembed_encode_opts {
    /* A prompt of config_sentence_transformers.json by name ("query", "passage", ...); prepended
     * to every text as sentence-transformers does. NULL: the folder's default_prompt_name, if
     * any. An unknown name is SEMBED_ERR_INVALID_ARG naming it. */
    const char *prompt_name;
    /* A literal prompt instead (overrides prompt_name); "" means no prompt at all. */
    const char *prompt;
    /* Matryoshka: keep the first `dimensions` floats of each vector, then L2-normalize them
     * again when the model normalizes. 0: sembed_model_dim(). Output rows are `dimensions`
     * floats apart. Larger than the model's dimension is SEMBED_ERR_INVALID_ARG. */
    int32_t dimensions;
} sembed_encode_opts;

/* sembed_encode with options (opts may be NULL: same as sembed_encode). */
sembed_status sembed_encode_ex(sembed_ctx *ctx, int32_t n_texts, const char *const *texts,
                               const size_t *lens, const sembed_encode_opts *opts, float *out,
                               int64_t out_capacity_floats, sembed_encode_info *info,
                               sembed_error *err);

/* Embeds already-tokenized inputs: ids[i] holds n_ids[i] token ids forming the model's whole
 * input, special tokens included (as sembed_tokenize writes them). Prompts do not apply (the
 * prompt fields of opts must be NULL). An id outside [0, vocab_size) or an empty input is
 * SEMBED_ERR_INPUT naming input and position; an input longer than the max length is truncated
 * to it (info[i].truncated = 1), or SEMBED_ERR_TOO_LONG in strict mode. Same vectors as
 * sembed_encode for the ids that sembed_tokenize gives. */
sembed_status sembed_encode_ids(sembed_ctx *ctx, int32_t n_inputs, const int32_t *const *ids,
                                const int32_t *n_ids, const sembed_encode_opts *opts, float *out,
                                int64_t out_capacity_floats, sembed_encode_info *info,
                                sembed_error *err);

#ifdef __cplusplus
}
#endif

#endif /* SEMBED_H */
