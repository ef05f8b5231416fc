/* serve.h — the parts of `sembed serve` shared by its files, its in-process tests and the
 * request fuzzer: request body parsing and validation, error replies, an output buffer, the
 * allocator with its fault-injection hook, and the server core that turns a request body into
 * a reply (no HTTP). Not a library API. */
#ifndef SEMBED_SERVE_H
#define SEMBED_SERVE_H

#include "sembed.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---- allocation -------------------------------------------------------------------------- */

/* Every allocation of the server (and jansson's, once srv_server_open has run) goes through
 * these, so that a test can make the N-th fail. */
void *srv_malloc(size_t n);
void *srv_calloc(size_t n, size_t size);
void *srv_realloc(void *p, size_t n);
void srv_free(void *p);
/* Test hook: make allocation number n (1-based, counted from now, all threads) fail; with
 * `persistent`, every one from the n-th on. 0 disables. Returns the allocations made since the
 * last call. */
int64_t srv_alloc_fail_at(int64_t n, bool persistent);

/* ---- requests ---------------------------------------------------------------------------- */

typedef enum srv_route {
    SRV_OPENAI = 0, /* POST /v1/embeddings (and /embeddings) */
    SRV_EMBED,      /* POST /embed (TEI) */
    SRV_TOKENIZE,   /* POST /tokenize (TEI) */
    SRV_INFO,       /* GET /info */
    SRV_HEALTH,     /* GET /health */
    SRV_METRICS,    /* GET /metrics */
    SRV_OTHER,      /* anything else: 404 / 405 */
    SRV_N_ROUTES
} srv_route;

/* Limits a request body is checked against before any work. */
typedef struct srv_limits {
    int32_t max_inputs;     /* inputs per request */
    size_t max_input_bytes; /* bytes per input text, before tokenizing */
    int32_t dim;            /* the model's output size (for `dimensions`) */
    int32_t vocab_size;     /* token ids are in [0, vocab_size) */
    bool auto_truncate;     /* the default of `truncate` */
} srv_limits;

/* An error reply: HTTP status, TEI-style type ("Validation", "Empty", ...), message. */
typedef struct srv_error {
    int http;
    const char *type;
    char msg[400];
} srv_error;

/* A parsed embedding or tokenize request. Texts point into `root`, which the request owns.
 * Input i is token ids when ids[i] != NULL (n_ids[i] of them, each in [0, vocab_size)). */
typedef struct srv_request {
    json_t *root;
    int32_t n;
    const char **texts; /* (n) */
    size_t *lens;       /* (n) */
    int32_t **ids;      /* (n), NULL when no input is token ids */
    int32_t *n_ids;     /* (n), with ids */
    int32_t n_id_inputs;
    int32_t n_alloc;    /* entries allocated in texts, lens, ids, n_ids */
    bool single;             /* the input was one string (or one list of ids), not an array */
    bool normalize;          /* TEI `normalize` (default true) */
    bool truncate;           /* TEI `truncate` (default: srv_limits.auto_truncate) */
    bool add_special;        /* /tokenize `add_special_tokens` (default true) */
    bool base64;             /* OpenAI `encoding_format` "base64" */
    int32_t dimensions;      /* 0: the model's */
    const char *prompt_name; /* TEI `prompt_name`, or NULL */
} srv_request;

/* Parses and validates a body for SRV_OPENAI, SRV_EMBED or SRV_TOKENIZE. On failure fills e
 * and returns false (req is then empty). Free with srv_request_free either way. */
bool srv_parse_request(srv_route route, const char *body, size_t len, const srv_limits *lim,
                       srv_request *req, srv_error *e);
void srv_request_free(srv_request *req);

/* Fills e and returns false. */
bool srv_fail(srv_error *e, int http, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whether a Content-Type header names JSON: application/json or application/...+json, with any
 * parameters (charset=utf-8). */
bool srv_content_type_is_json(const char *ct);

/* ---- output ------------------------------------------------------------------------------ */

/* A growable byte buffer; on allocation failure `oom` is set and appends do nothing. */
typedef struct srv_buf {
    char *p;
    size_t n, cap;
    bool oom;
} srv_buf;
void srv_buf_put(srv_buf *b, const void *data, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_json_string(srv_buf *b, const char *s, size_t n);
/* Writes a float so that strtod then (float) gives the same bits. */
void srv_buf_float(srv_buf *b, float v);
void srv_buf_base64(srv_buf *b, const unsigned char *data, size_t n);

/* The JSON body of an error: {"error": msg, "error_type": type} on native routes, OpenAI's
 * {"error": {"message", "type", "param", "code"}} on SRV_OPENAI. */
void srv_error_body(srv_buf *b, srv_route route, const srv_error *e);

/* ---- the server core --------------------------------------------------------------------- */

typedef struct srv_options {
    const char *model_dir;
    const char *model_name; /* in replies; NULL: the folder's base name */
    const char *device;     /* "cpu", "cuda", "cuda:N" or "auto"; NULL: "auto" */
    int32_t workers;        /* CPU encoder contexts; -1: 2 with 2+ CPUs (else 1) on the CPU,
                               1 beside a GPU */
    int32_t threads;        /* threads per CPU context; 0: CPUs / CPU workers */
    int32_t query_lane;     /* -1: on with 2+ CPU workers and no GPU */
    int32_t max_batch_tokens, bulk_batch_tokens, gpu_batch_tokens, small_tokens, max_queue;
    int32_t max_inputs;
    size_t max_input_bytes; /* 0: 250 x the model's max tokens */
    bool auto_truncate;
    sembed_precision precision; /* the CPU workers'; a GPU worker runs bf16 for BF16, else fp16 */
} srv_options;

#define SRV_N_CODES 12
#define SRV_N_TBUCKETS 18 /* 100 us * 2^k, k = 0..17 (up to ~13 s), then +Inf */
enum { SRV_ST_TOKENIZE, SRV_ST_QUEUE, SRV_ST_INFERENCE, SRV_ST_SERIALIZE, SRV_ST_TOTAL,
       SRV_N_STAGES };

typedef struct srv_metrics {
    pthread_mutex_t mu;
    int64_t requests[SRV_N_ROUTES][SRV_N_CODES + 1]; /* last column: any other code */
    int64_t stage_hist[SRV_N_STAGES][SRV_N_TBUCKETS + 1];
    double stage_sum[SRV_N_STAGES];
    int64_t stage_count[SRV_N_STAGES];
    int64_t texts, tokens, disconnects;
} srv_metrics;

struct srv_sched;

typedef struct srv_server {
    sembed_model *model;
    const sembed_tokenizer *tok;
    sembed_tokenizer *tok_plain; /* the same, without special tokens (/tokenize) */
    struct srv_sched *sched;
    srv_limits lim;
    int32_t R, dim;
    bool model_normalizes;
    const char *default_prompt; /* the folder's default prompt text, or NULL */
    char model_name[256];
    char device[64]; /* what the workers run on: "cpu", "cuda:0+cpu", ... */
    char dtype[16];  /* /info's model_dtype: the arithmetic of worker 0 ("float16", "int8", ...) */
    int32_t max_batch_tokens;
    /* set by the HTTP layer */
    const char *api_key;
    size_t api_key_len;
    size_t max_body;
    double read_timeout_s;
    atomic_bool draining;
    atomic_int inflight;
    srv_metrics m;
} srv_server;

/* Loads the model, starts the scheduler (calibrating devices when they differ) and probes the
 * model with two texts. Errors name what failed. */
sembed_status srv_server_open(const srv_options *o, srv_server **out, sembed_error *err);
void srv_server_close(srv_server *S); /* NULL is a no-op */

/* A reply: status, content type and body. The body is srv_malloc'ed when `owned`, else static. */
typedef struct srv_reply {
    int code;
    const char *ctype;
    char *body;
    size_t n;
    bool owned;
} srv_reply;

/* Handles one request of a POST or GET route with its whole body. While it waits on the
 * scheduler it polls cancel_fd (the client's socket; -1: none) and drops the request's queued
 * inputs when the client went away. Never fails: out of memory gives a 500 JSON error. */
void srv_handle(srv_server *S, srv_route route, const char *body, size_t n, int cancel_fd,
                srv_reply *out);
/* An error reply in the route's shape (a static body if even that cannot be allocated). */
void srv_reply_error(srv_reply *out, srv_route route, const srv_error *e);
void srv_reply_free(srv_reply *r);

/* Request counts by route and status, for /metrics (the HTTP layer counts every reply). */
void srv_count_request(srv_server *S, srv_route r, int code);
void srv_observe(srv_server *S, int stage, double seconds);
double srv_now(void);

#endif
