/* serve.h — the parts of `sembed serve` shared by its files and the request fuzzer: request
 * body parsing and validation (no tokenizing, no model), error replies, an output buffer.
 * Not a library API. */
#ifndef SEMBED_SERVE_H
#define SEMBED_SERVE_H

#include "sembed.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

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
    int32_t max_inputs;       /* inputs per request */
    size_t max_input_bytes;   /* bytes per input text, before tokenizing */
    int32_t dim;              /* the model's output size (for `dimensions`) */
    bool auto_truncate;       /* the default of `truncate` */
} srv_limits;

/* An error reply: HTTP status, TEI-style type ("Validation", "Empty", ...), message. */
typedef struct srv_error {
    int http;
    const char *type;
    char msg[400];
} srv_error;

/* A parsed embedding or tokenize request. Texts point into `root`, which the request owns. */
typedef struct srv_request {
    json_t *root;
    int32_t n;
    const char **texts; /* (n) */
    size_t *lens;       /* (n) */
    bool single;        /* the input was one string, not an array */
    bool normalize;     /* TEI `normalize` (default true) */
    bool truncate;      /* TEI `truncate` (default: srv_limits.auto_truncate) */
    bool add_special;   /* /tokenize `add_special_tokens` (default true) */
    bool base64;        /* OpenAI `encoding_format` "base64" */
    int32_t dimensions; /* 0: the model's */
} srv_request;

/* Parses and validates a body for SRV_OPENAI, SRV_EMBED or SRV_TOKENIZE. On failure fills e
 * and returns false (req is then empty). Free with srv_request_free either way. */
bool srv_parse_request(srv_route route, const char *body, size_t len, const srv_limits *lim,
                       srv_request *req, srv_error *e);
void srv_request_free(srv_request *req);

/* Fills e and returns false. */
bool srv_fail(srv_error *e, int http, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

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

#endif
