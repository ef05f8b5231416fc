/* serve_request.c — `sembed serve`: request bodies parsed and checked against the limits, error
 * bodies, the output buffer and the allocator. Pure functions of bytes (fuzzed by
 * fuzz/fuzz_request.c); no model, no HTTP. */
#include "serve.h"
#include "fmtf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- allocation with fault injection --------------------------------------------------- */

static atomic_llong g_alloc_count;
static atomic_llong g_alloc_fail_at;
static atomic_bool g_alloc_persistent;

static bool alloc_should_fail(void) {
    const long long at = atomic_load_explicit(&g_alloc_fail_at, memory_order_relaxed);
    if (at <= 0) return false;
    const long long k = atomic_fetch_add_explicit(&g_alloc_count, 1, memory_order_relaxed) + 1;
    return atomic_load_explicit(&g_alloc_persistent, memory_order_relaxed) ? k >= at : k == at;
}

int64_t srv_alloc_fail_at(int64_t n, bool persistent) {
    const int64_t made = atomic_exchange(&g_alloc_count, 0);
    atomic_store(&g_alloc_persistent, persistent);
    atomic_store(&g_alloc_fail_at, n);
    return made;
}

/* Set when an allocation of this thread failed: jansson does not always say that it ran out of
 * memory (it may drop a key, or report a syntax error), so the parser asks here. */
static _Thread_local bool t_alloc_failed;

static void *noted(void *p) {
    if (!p) t_alloc_failed = true;
    return p;
}
void *srv_malloc(size_t n) { return noted(alloc_should_fail() ? NULL : malloc(n ? n : 1)); }
void *srv_calloc(size_t n, size_t size) {
    return noted(alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1));
}
void *srv_realloc(void *p, size_t n) {
    return noted(alloc_should_fail() ? NULL : realloc(p, n ? n : 1));
}
void srv_free(void *p) { free(p); }

bool srv_fail(srv_error *e, int http, const char *type, const char *fmt, ...) {
    e->http = http;
    e->type = type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return false;
}

void srv_request_free(srv_request *r) {
    json_decref(r->root);
    if (r->ids)
        for (int32_t i = 0; i < r->n_alloc; i++) srv_free(r->ids[i]);
    srv_free(r->ids);
    srv_free(r->n_ids);
    srv_free(r->texts);
    srv_free(r->lens);
    memset(r, 0, sizeof *r);
}

bool srv_content_type_is_json(const char *ct) {
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) return true;
    /* application/<anything>+json, as axum (TEI) accepts */
    return n > 17 && !strncasecmp(ct, "application/", 12) && !strncasecmp(ct + n - 5, "+json", 5);
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* An optional boolean field: absent or null keeps *out. */
static bool opt_bool(const json_t *root, const char *key, bool *out, srv_error *e) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_boolean(v))
        return srv_fail(e, 400, "Validation", "`%s` must be a boolean, got %s", key, type_name(v));
    *out = json_is_true(v);
    return true;
}

/* A list of token ids: an array whose first element is an integer. */
static bool is_id_list(const json_t *v) {
    return json_is_array(v) && json_array_size(v) > 0 && json_is_integer(json_array_get(v, 0));
}

/* Input i as token ids: every element an integer in [0, vocab_size). */
static bool parse_ids(const json_t *a, const char *key, size_t i, bool single,
                      const srv_limits *lim, srv_request *r, srv_error *e) {
    const size_t n = json_array_size(a);
    char where[64];
    if (single) snprintf(where, sizeof where, "`%s`", key);
    else snprintf(where, sizeof where, "`%s[%zu]`", key, i);
    if (n == 0) return srv_fail(e, 400, "Empty", "%s cannot be empty (input %zu has no token ids)", where, i);
    if (!r->ids) {
        r->ids = srv_calloc((size_t)r->n_alloc, sizeof *r->ids);
        r->n_ids = srv_calloc((size_t)r->n_alloc, sizeof *r->n_ids);
        if (!r->ids || !r->n_ids) return srv_fail(e, 500, "Backend", "out of memory");
    }
    int32_t *ids = srv_malloc(sizeof(int32_t) * n);
    if (!ids) return srv_fail(e, 500, "Backend", "out of memory");
    r->ids[i] = ids;
    r->n_ids[i] = (int32_t)n;
    r->n_id_inputs++;
    for (size_t k = 0; k < n; k++) {
        const json_t *v = json_array_get(a, k);
        if (!json_is_integer(v))
            return srv_fail(e, 400, "Validation",
                            "%s must be a list of integer token ids: position %zu is %s", where,
                            k, type_name(v));
        const json_int_t id = json_integer_value(v);
        if (id < 0 || id >= lim->vocab_size)
            return srv_fail(e, 422, "Validation",
                            "input %zu: token id %lld at position %zu is out of range: the "
                            "model's ids are 0 to %d",
                            i, (long long)id, k, lim->vocab_size - 1);
        ids[k] = (int32_t)id;
    }
    return true;
}

static bool parse_inputs(srv_route route, const json_t *in, const char *key,
                         const srv_limits *lim, srv_request *r, srv_error *e) {
    size_t n;
    if (json_is_string(in) || is_id_list(in)) {
        n = 1;
        r->single = true;
    } else if (json_is_array(in)) {
        n = json_array_size(in);
        if (n == 0) return srv_fail(e, 400, "Empty", "`%s` cannot be empty", key);
    } else {
        return srv_fail(e, 400, "Validation",
                        "`%s` must be a string, an array of strings, an array of token ids or "
                        "an array of arrays of token ids, got %s",
                        key, type_name(in));
    }
    if (n > (size_t)lim->max_inputs)
        return srv_fail(e, 422, "Validation", "batch size %zu > maximum allowed batch size %d",
                        n, lim->max_inputs);
    r->n_alloc = (int32_t)n;
    r->texts = srv_calloc(n, sizeof *r->texts);
    r->lens = srv_calloc(n, sizeof *r->lens);
    if (!r->texts || !r->lens) return srv_fail(e, 500, "Backend", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *s = r->single ? in : json_array_get(in, i);
        if (json_is_array(s)) {
            if (route == SRV_TOKENIZE)
                return srv_fail(e, 422, "Validation",
                                "`%s` of /tokenize must be text, not token ids", key);
            if (!parse_ids(s, key, i, r->single, lim, r, e)) return false;
            continue;
        }
        if (!json_is_string(s)) {
            return srv_fail(e, 400, "Validation",
                            "`%s[%zu]` must be a string or an array of token ids, got %s", key,
                            i, type_name(s));
        }
        r->texts[i] = json_string_value(s);
        r->lens[i] = json_string_length(s);
        if (r->lens[i] == 0)
            return srv_fail(e, 400, "Empty", "`%s` cannot be empty (input %zu is \"\")", key, i);
        if (r->lens[i] > lim->max_input_bytes)
            return srv_fail(e, 422, "Validation",
                            "input %zu has %zu bytes; the maximum is %zu bytes per input", i,
                            r->lens[i], lim->max_input_bytes);
    }
    r->n = (int32_t)n;
    return true;
}

bool srv_parse_request(srv_route route, const char *body, size_t len, const srv_limits *lim,
                       srv_request *r, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->normalize = true;
    r->truncate = lim->auto_truncate;
    r->add_special = true;
    json_error_t je;
    t_alloc_failed = false;
    r->root = json_loadb(body, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (t_alloc_failed || (!r->root && json_error_code(&je) == json_error_out_of_memory)) {
        json_decref(r->root);
        r->root = NULL;
        return srv_fail(e, 500, "Backend", "out of memory while parsing the body");
    }
    if (!r->root)
        return srv_fail(e, 400, "Validation", "the body is not valid JSON: %s (at byte %d)",
                        je.text, je.position);
    if (!json_is_object(r->root))
        return srv_fail(e, 400, "Validation", "the body must be a JSON object, got %s",
                        type_name(r->root));
    const char *key = route == SRV_OPENAI ? "input" : "inputs";
    const json_t *in = json_object_get(r->root, key);
    if (!in) return srv_fail(e, 400, "Validation", "missing field `%s`", key);
    if (!parse_inputs(route, in, key, lim, r, e)) return false;

    if (route == SRV_TOKENIZE) {
        if (!opt_bool(r->root, "add_special_tokens", &r->add_special, e)) return false;
    } else if (route == SRV_EMBED) {
        if (!opt_bool(r->root, "normalize", &r->normalize, e)) return false;
    }
    if (route != SRV_OPENAI && !opt_bool(r->root, "truncate", &r->truncate, e)) return false;

    const json_t *v = json_object_get(r->root, "truncation_direction");
    if (v && !json_is_null(v) && route != SRV_OPENAI) {
        const char *d = json_string_value(v);
        if (!d || (strcmp(d, "right") && strcmp(d, "Right") && strcmp(d, "left") && strcmp(d, "Left")))
            return srv_fail(e, 400, "Validation",
                            "`truncation_direction` must be \"right\" or \"left\"");
        if (d[0] == 'l' || d[0] == 'L')
            return srv_fail(e, 422, "Validation",
                            "`truncation_direction` \"left\" is not supported yet");
    }
    v = json_object_get(r->root, "prompt_name");
    if (v && !json_is_null(v) && route != SRV_OPENAI) {
        if (!json_is_string(v))
            return srv_fail(e, 400, "Validation", "`prompt_name` must be a string, got %s",
                            type_name(v));
        if (r->n_id_inputs)
            return srv_fail(e, 422, "Validation",
                            "`prompt_name` applies to text inputs, not to token ids");
        r->prompt_name = json_string_value(v);
    }
    v = json_object_get(r->root, "dimensions");
    if (v && !json_is_null(v) && route != SRV_TOKENIZE) {
        if (!json_is_integer(v))
            return srv_fail(e, 422, "Validation", "`dimensions` must be an integer, got %s",
                            type_name(v));
        json_int_t d = json_integer_value(v);
        if (d < 1) return srv_fail(e, 422, "Validation", "`dimensions` should be positive");
        if (d > lim->dim)
            return srv_fail(e, 422, "Validation",
                            "`dimensions` should be at most the model's dimension %d, got %lld",
                            lim->dim, (long long)d);
        r->dimensions = (int32_t)d;
    }
    if (route == SRV_OPENAI) {
        v = json_object_get(r->root, "encoding_format");
        if (v && !json_is_null(v)) {
            const char *f = json_string_value(v);
            if (!f || (strcmp(f, "float") && strcmp(f, "base64")))
                return srv_fail(e, 400, "Validation",
                                "`encoding_format` must be \"float\" or \"base64\"");
            r->base64 = !strcmp(f, "base64");
        }
        v = json_object_get(r->root, "model");
        if (v && !json_is_null(v) && !json_is_string(v))
            return srv_fail(e, 400, "Validation", "`model` must be a string");
    }
    return true;
}

/* ---- output ------------------------------------------------------------------------------ */

static bool buf_reserve(srv_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = srv_realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void srv_buf_put(srv_buf *b, const void *data, size_t n) {
    if (!buf_reserve(b, n)) return;
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void srv_buf_puts(srv_buf *b, const char *s) { srv_buf_put(b, s, strlen(s)); }

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), or 0 when it is invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) k = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (n < k || p[1] < lo || p[1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
        if (p[j] < 0x80 || p[j] > 0xBF) return 0;
    return k;
}

void srv_buf_json_string(srv_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, 2 + 6 * n)) return;
    char *o = b->p + b->n;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += sprintf(o, "\\u%04x", c);
        } else if (c < 0x80) {
            *o++ = (char)c;
        } else {
            /* copy a valid UTF-8 sequence; an invalid byte (an error message may quote the
             * client's bytes) becomes U+FFFD, so the output is always valid JSON */
            size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
            if (k == 0) {
                o += sprintf(o, "\\ufffd");
            } else {
                memcpy(o, s + i, k);
                o += k;
                i += k - 1;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    b->n = (size_t)(o - b->p);
}

void srv_buf_float(srv_buf *b, float v) {
    if (!buf_reserve(b, 32)) return;
    int n;
    if (v == 0.0f) n = sprintf(b->p + b->n, signbit(v) ? "-0.0" : "0.0");
    else n = cli_fmt_f32(b->p + b->n, v);
    b->n += (size_t)n;
}

void srv_buf_base64(srv_buf *b, const unsigned char *d, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!buf_reserve(b, (n + 2) / 3 * 4)) return;
    char *o = b->p + b->n;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = A[x >> 18], *o++ = A[(x >> 12) & 63], *o++ = A[(x >> 6) & 63], *o++ = A[x & 63];
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)d[i] << 16;
        *o++ = A[x >> 18], *o++ = A[(x >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        *o++ = A[x >> 18], *o++ = A[(x >> 12) & 63], *o++ = A[(x >> 6) & 63], *o++ = '=';
    }
    *o = '\0';
    b->n = (size_t)(o - b->p);
}

void srv_error_body(srv_buf *b, srv_route route, const srv_error *e) {
    const size_t n = strlen(e->msg);
    if (route == SRV_OPENAI) {
        const char *t = e->http == 401   ? "authentication_error"
                        : e->http == 429 ? "rate_limit_exceeded"
                        : e->http >= 500 ? "server_error"
                                         : "invalid_request_error";
        srv_buf_puts(b, "{\"error\":{\"message\":");
        srv_buf_json_string(b, e->msg, n);
        srv_buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", t, e->type);
    } else {
        srv_buf_puts(b, "{\"error\":");
        srv_buf_json_string(b, e->msg, n);
        srv_buf_printf(b, ",\"error_type\":\"%s\"}", e->type);
    }
}
