/* serve.c — `sembed serve`: an OpenAI- and TEI-compatible embedding server on libmicrohttpd.
 * Each connection has a thread that parses, checks limits, tokenizes (for counts and strict
 * lengths) and waits on the scheduler, which packs the texts of concurrent requests into
 * batches. Not the scheduler (src/scheduler.c) and not request parsing (serve_request.c). */
#include "cli.h"
#include "serve.h"
/* The scheduler is a library internal whose API is not public yet. */
#include "../../src/scheduler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

/* ---- metrics ----------------------------------------------------------------------------- */

static const int k_codes[] = {200, 400, 401, 404, 405, 408, 413, 422, 429, 500, 503};
#define N_CODES ((int)(sizeof k_codes / sizeof k_codes[0]))
static const char *const k_route_names[SRV_N_ROUTES] = {
    "/v1/embeddings", "/embed", "/tokenize", "/info", "/health", "/metrics", "other"};

enum { ST_TOKENIZE, ST_QUEUE, ST_INFERENCE, ST_SERIALIZE, ST_TOTAL, N_STAGES };
static const char *const k_stage_names[N_STAGES] = {"tokenize", "queue", "inference",
                                                    "serialize", "total"};
#define N_TBUCKETS 18 /* 100 us * 2^k, k = 0..17 (up to ~13 s), then +Inf */

typedef struct metrics {
    pthread_mutex_t mu;
    int64_t requests[SRV_N_ROUTES][N_CODES + 1]; /* last column: any other code */
    int64_t stage_hist[N_STAGES][N_TBUCKETS + 1];
    double stage_sum[N_STAGES];
    int64_t stage_count[N_STAGES];
    int64_t texts, tokens, disconnects;
} metrics;

typedef struct server {
    sembed_model *model;
    const sembed_tokenizer *tok;
    sembed_tokenizer *tok_plain; /* the same, without special tokens (/tokenize) */
    sembed__sched *sched;
    srv_limits lim;
    int32_t R, dim;
    bool model_normalizes;
    const char *model_name;
    const char *api_key;
    size_t api_key_len;
    size_t max_body;
    double read_timeout_s;
    int32_t max_batch_tokens;
    atomic_bool draining;
    atomic_int inflight;
    metrics m;
} server;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void observe(server *S, int stage, double s) {
    int b = 0;
    double edge = 1e-4;
    while (b < N_TBUCKETS && s > edge) b++, edge *= 2;
    pthread_mutex_lock(&S->m.mu);
    S->m.stage_hist[stage][b]++;
    S->m.stage_sum[stage] += s;
    S->m.stage_count[stage]++;
    pthread_mutex_unlock(&S->m.mu);
}

static void count_request(server *S, srv_route r, int code) {
    int k = N_CODES;
    for (int i = 0; i < N_CODES; i++)
        if (k_codes[i] == code) k = i;
    pthread_mutex_lock(&S->m.mu);
    S->m.requests[r][k]++;
    pthread_mutex_unlock(&S->m.mu);
}

static void metrics_text(server *S, srv_buf *b) {
    sembed__sched_stats st;
    sembed__sched_get_stats(S->sched, &st);
    metrics m;
    pthread_mutex_lock(&S->m.mu);
    memcpy(m.requests, S->m.requests, sizeof m.requests);
    memcpy(m.stage_hist, S->m.stage_hist, sizeof m.stage_hist);
    memcpy(m.stage_sum, S->m.stage_sum, sizeof m.stage_sum);
    memcpy(m.stage_count, S->m.stage_count, sizeof m.stage_count);
    m.texts = S->m.texts, m.tokens = S->m.tokens, m.disconnects = S->m.disconnects;
    pthread_mutex_unlock(&S->m.mu);

    srv_buf_puts(b, "# HELP sembed_requests_total HTTP requests by route and status code.\n"
                    "# TYPE sembed_requests_total counter\n");
    for (int r = 0; r < SRV_N_ROUTES; r++)
        for (int k = 0; k <= N_CODES; k++)
            if (m.requests[r][k])
                srv_buf_printf(b, "sembed_requests_total{route=\"%s\",code=\"%s%d\"} %lld\n",
                               k_route_names[r], k < N_CODES ? "" : "other",
                               k < N_CODES ? k_codes[k] : 0, (long long)m.requests[r][k]);
    srv_buf_printf(b,
                   "# HELP sembed_queue_texts Texts admitted and not yet encoded.\n"
                   "# TYPE sembed_queue_texts gauge\nsembed_queue_texts %lld\n"
                   "# HELP sembed_queue_capacity_texts The queue limit (429 beyond it).\n"
                   "# TYPE sembed_queue_capacity_texts gauge\nsembed_queue_capacity_texts %d\n"
                   "# HELP sembed_inflight_requests Requests being read, queued, encoded or sent.\n"
                   "# TYPE sembed_inflight_requests gauge\nsembed_inflight_requests %d\n"
                   "# TYPE sembed_queue_refused_total counter\nsembed_queue_refused_total %lld\n"
                   "# TYPE sembed_embedded_texts_total counter\nsembed_embedded_texts_total %lld\n"
                   "# TYPE sembed_embedded_tokens_total counter\n"
                   "sembed_embedded_tokens_total %lld\n"
                   "# HELP sembed_client_disconnects_total Requests whose client went away.\n"
                   "# TYPE sembed_client_disconnects_total counter\n"
                   "sembed_client_disconnects_total %lld\n"
                   "# TYPE sembed_batches_total counter\nsembed_batches_total %lld\n"
                   "# TYPE sembed_encode_seconds_total counter\nsembed_encode_seconds_total %.6f\n",
                   (long long)st.queued_texts, sembed__sched_max_queue(S->sched),
                   atomic_load(&S->inflight), (long long)st.refused, (long long)m.texts,
                   (long long)m.tokens, (long long)m.disconnects, (long long)st.batches,
                   st.encode_s);
    const char *hn[2] = {"sembed_batch_size", "sembed_batch_tokens"};
    const int64_t *hv[2] = {st.hist_texts, st.hist_tokens};
    const int64_t hsum[2] = {st.batch_texts, st.batch_tokens};
    for (int h = 0; h < 2; h++) {
        srv_buf_printf(b, "# TYPE %s histogram\n", hn[h]);
        int64_t cum = 0;
        for (int k = 0; k < SEMBED__SCHED_HIST; k++) {
            cum += hv[h][k];
            if (k == SEMBED__SCHED_HIST - 1)
                srv_buf_printf(b, "%s_bucket{le=\"+Inf\"} %lld\n", hn[h], (long long)cum);
            else
                srv_buf_printf(b, "%s_bucket{le=\"%lld\"} %lld\n", hn[h], 1LL << k,
                               (long long)cum);
        }
        srv_buf_printf(b, "%s_sum %lld\n%s_count %lld\n", hn[h], (long long)hsum[h], hn[h],
                       (long long)st.batches);
    }
    srv_buf_puts(b, "# HELP sembed_stage_seconds Time per request in each stage.\n"
                    "# TYPE sembed_stage_seconds histogram\n");
    for (int s = 0; s < N_STAGES; s++) {
        int64_t cum = 0;
        double edge = 1e-4;
        for (int k = 0; k <= N_TBUCKETS; k++, edge *= 2) {
            cum += m.stage_hist[s][k];
            if (k == N_TBUCKETS)
                srv_buf_printf(b, "sembed_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %lld\n",
                               k_stage_names[s], (long long)cum);
            else
                srv_buf_printf(b, "sembed_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %lld\n",
                               k_stage_names[s], edge, (long long)cum);
        }
        srv_buf_printf(b,
                       "sembed_stage_seconds_sum{stage=\"%s\"} %.6f\n"
                       "sembed_stage_seconds_count{stage=\"%s\"} %lld\n",
                       k_stage_names[s], m.stage_sum[s], k_stage_names[s],
                       (long long)m.stage_count[s]);
    }
}

/* ---- replies ----------------------------------------------------------------------------- */

typedef struct conn_req {
    srv_route route;
    srv_buf body;
    double t0;
    bool replied;
    int code;
} conn_req;

static enum MHD_Result reply(server *S, struct MHD_Connection *c, conn_req *q, int code,
                             srv_buf *b, const char *ctype) {
    if (b->oom) {
        free(b->p);
        *b = (srv_buf){0};
        code = 500;
        ctype = "application/json";
        srv_buf_puts(b, "{\"error\":\"out of memory\",\"error_type\":\"Backend\"}");
        if (b->oom) return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b->n, b->n ? b->p : (void *)"", b->n ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(b->p);
        return MHD_NO;
    }
    if (!b->n) free(b->p);
    *b = (srv_buf){0};
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (code == 429) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (code == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (code == 405)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                q->route <= SRV_TOKENIZE ? "POST" : "GET");
    if (atomic_load(&S->draining)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    q->replied = true;
    q->code = code;
    count_request(S, q->route, code);
    return ok;
}

static enum MHD_Result reply_error(server *S, struct MHD_Connection *c, conn_req *q,
                                   const srv_error *e) {
    srv_buf b = {0};
    srv_error_body(&b, q->route == SRV_OPENAI ? SRV_OPENAI : SRV_EMBED, e);
    return reply(S, c, q, e->http, &b, "application/json");
}

static enum MHD_Result fail(server *S, struct MHD_Connection *c, conn_req *q, int http,
                            const char *type, const char *msg) {
    srv_error e;
    srv_fail(&e, http, type, "%s", msg);
    return reply_error(S, c, q, &e);
}

/* ---- the embedding routes ---------------------------------------------------------------- */

/* Checks every vector (finite, norm > 0), then cuts to `dims` and normalizes when asked. */
static bool finish_vectors(float *v, int32_t n, int32_t dim, int32_t dims, bool normalize,
                           int32_t *bad) {
    for (int32_t i = 0; i < n; i++) {
        float *x = v + (int64_t)i * dim;
        double ss = 0;
        for (int32_t k = 0; k < dim; k++) {
            if (!isfinite(x[k])) {
                *bad = i;
                return false;
            }
            ss += (double)x[k] * x[k];
        }
        if (!(ss > 0)) {
            *bad = i;
            return false;
        }
        if (dims < dim) memmove(v + (int64_t)i * dims, x, sizeof(float) * (size_t)dims);
    }
    if (!normalize) return true;
    for (int32_t i = 0; i < n; i++) {
        float *x = v + (int64_t)i * dims;
        double ss = 0;
        for (int32_t k = 0; k < dims; k++) ss += (double)x[k] * x[k];
        if (!(ss > 0)) {
            *bad = i;
            return false;
        }
        const float inv = (float)(1.0 / sqrt(ss));
        for (int32_t k = 0; k < dims; k++) x[k] *= inv;
    }
    return true;
}

static enum MHD_Result handle_embed(server *S, struct MHD_Connection *c, conn_req *q) {
    srv_request r;
    srv_error e;
    const double t0 = now_s();
    if (!srv_parse_request(q->route, q->body.p ? q->body.p : "", q->body.n, &S->lim, &r, &e)) {
        srv_request_free(&r);
        return reply_error(S, c, q, &e);
    }
    if (q->route == SRV_EMBED && !r.normalize && S->model_normalizes) {
        srv_request_free(&r);
        return fail(S, c, q, 422, "Validation",
                    "`normalize` false is not available: this model's folder normalizes its "
                    "output (a Normalize module)");
    }
    const int32_t n = r.n, dim = S->dim;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)S->R);
    int32_t *ntok = malloc(sizeof(int32_t) * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    sembed_encode_info *info = malloc(sizeof(sembed_encode_info) * (size_t)n);
    enum MHD_Result res;
    int64_t usage = 0;
    if (!ids || !ntok || !out || !info) {
        res = fail(S, c, q, 500, "Backend", "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        sembed_tokens t = {.ids = ids, .capacity = S->R};
        sembed_error te = {0};
        if (sembed_tokenize(S->tok, r.texts[i], r.lens[i], &t, &te) != SEMBED_OK) {
            srv_fail(&e, 422, "Tokenizer", "input %d: %s", i, te.msg);
            res = reply_error(S, c, q, &e);
            goto done;
        }
        if (t.n < 1) {
            srv_fail(&e, 422, "Tokenizer", "input %d gives no tokens", i);
            res = reply_error(S, c, q, &e);
            goto done;
        }
        if (t.truncated && !r.truncate) {
            srv_fail(&e, 422, "Validation",
                     "Input validation error: `inputs` must have less than %d tokens. Given: %d "
                     "(input %d)",
                     S->R, t.n_full, i);
            res = reply_error(S, c, q, &e);
            goto done;
        }
        ntok[i] = t.n;
        usage += t.n;
    }
    const double t1 = now_s();
    observe(S, ST_TOKENIZE, t1 - t0);

    sembed__sched_job job = {.n = n, .texts = r.texts, .lens = r.lens, .n_tokens = ntok,
                             .out = out, .info = info};
    sembed__sched_admit a = sembed__sched_submit(S->sched, &job);
    if (a == SEMBED__SCHED_FULL) {
        res = fail(S, c, q, 429, "Overloaded", "Model is overloaded: the queue is full, retry");
        goto done;
    }
    if (a != SEMBED__SCHED_ADMITTED) {
        res = fail(S, c, q, 422, "Validation",
                   "the request has more inputs than the server's queue can ever hold");
        goto done;
    }
    /* While it waits, watch the socket: texts of a client that went away are dropped. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    while (!sembed__sched_wait_for(&job, 0.05)) {
        struct pollfd pf = {.fd = ci ? ci->connect_fd : -1, .events = POLLRDHUP};
        if (ci && poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            sembed__sched_cancel(S->sched, &job);
    }
    sembed__sched_wait(&job);
    observe(S, ST_QUEUE, job.queue_s);
    observe(S, ST_INFERENCE, job.encode_s);
    if (job.status != SEMBED_OK) {
        srv_fail(&e, 500, "Backend", "encoding failed: %s", job.err.msg);
        res = reply_error(S, c, q, &e);
        goto done;
    }
    const double t2 = now_s();
    const int32_t dims = r.dimensions ? r.dimensions : dim;
    const bool norm = r.normalize && (!S->model_normalizes || dims < dim);
    int32_t bad = -1;
    if (!finish_vectors(out, n, dim, dims, norm, &bad)) {
        srv_fail(&e, 500, "Backend", "the model gave a non-finite or zero vector for input %d",
                 bad);
        res = reply_error(S, c, q, &e);
        goto done;
    }
    srv_buf b = {0};
    if (q->route == SRV_EMBED) {
        srv_buf_put(&b, "[", 1);
        for (int32_t i = 0; i < n; i++) {
            srv_buf_puts(&b, i ? ",[" : "[");
            for (int32_t k = 0; k < dims; k++) {
                if (k) srv_buf_put(&b, ",", 1);
                srv_buf_float(&b, out[(int64_t)i * dims + k]);
            }
            srv_buf_put(&b, "]", 1);
        }
        srv_buf_put(&b, "]", 1);
    } else {
        srv_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
        for (int32_t i = 0; i < n; i++) {
            srv_buf_puts(&b, i ? ",{\"object\":\"embedding\",\"index\":"
                               : "{\"object\":\"embedding\",\"index\":");
            srv_buf_printf(&b, "%d,\"embedding\":", i);
            const float *x = out + (int64_t)i * dims;
            if (r.base64) {
                unsigned char *le = (unsigned char *)x; /* little-endian hosts only */
                srv_buf_put(&b, "\"", 1);
                srv_buf_base64(&b, le, sizeof(float) * (size_t)dims);
                srv_buf_put(&b, "\"", 1);
            } else {
                srv_buf_put(&b, "[", 1);
                for (int32_t k = 0; k < dims; k++) {
                    if (k) srv_buf_put(&b, ",", 1);
                    srv_buf_float(&b, x[k]);
                }
                srv_buf_put(&b, "]", 1);
            }
            srv_buf_put(&b, "}", 1);
        }
        srv_buf_puts(&b, "],\"model\":");
        srv_buf_json_string(&b, S->model_name, strlen(S->model_name));
        srv_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                       (long long)usage, (long long)usage);
    }
    observe(S, ST_SERIALIZE, now_s() - t2);
    pthread_mutex_lock(&S->m.mu);
    S->m.texts += n;
    S->m.tokens += usage;
    pthread_mutex_unlock(&S->m.mu);
    (void)t1;
    res = reply(S, c, q, 200, &b, "application/json");
done:
    free(ids);
    free(ntok);
    free(out);
    free(info);
    srv_request_free(&r);
    return res;
}

static enum MHD_Result handle_tokenize(server *S, struct MHD_Connection *c, conn_req *q) {
    srv_request r;
    srv_error e;
    if (!srv_parse_request(SRV_TOKENIZE, q->body.p ? q->body.p : "", q->body.n, &S->lim, &r,
                           &e)) {
        srv_request_free(&r);
        return reply_error(S, c, q, &e);
    }
    const sembed_tokenizer *tok = r.add_special ? S->tok : S->tok_plain;
    const int32_t cap = S->R;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    int32_t *off = malloc(sizeof(int32_t) * 2 * (size_t)cap);
    uint8_t *sp = malloc((size_t)cap);
    srv_buf b = {0};
    enum MHD_Result res;
    if (!ids || !off || !sp) {
        res = fail(S, c, q, 500, "Backend", "out of memory");
        goto done;
    }
    srv_buf_put(&b, "[", 1);
    for (int32_t i = 0; i < r.n; i++) {
        sembed_tokens t = {.ids = ids, .offsets = off, .special = sp, .capacity = cap};
        sembed_error te = {0};
        if (sembed_tokenize(tok, r.texts[i], r.lens[i], &t, &te) != SEMBED_OK) {
            srv_fail(&e, 422, "Tokenizer", "input %d: %s", i, te.msg);
            free(b.p);
            res = reply_error(S, c, q, &e);
            goto done;
        }
        if (t.truncated && !r.truncate) {
            srv_fail(&e, 422, "Validation",
                     "Input validation error: `inputs` must have less than %d tokens. Given: %d "
                     "(input %d)",
                     S->R, t.n_full, i);
            free(b.p);
            res = reply_error(S, c, q, &e);
            goto done;
        }
        srv_buf_puts(&b, i ? ",[" : "[");
        for (int32_t k = 0; k < t.n; k++) {
            const int32_t s0 = off[2 * k], s1 = off[2 * k + 1];
            const bool special = sp[k] && s0 == s1;
            srv_buf_printf(&b, "%s{\"id\":%d,\"text\":", k ? "," : "", ids[k]);
            if (special || s0 < 0 || s1 < s0 || (size_t)s1 > r.lens[i]) {
                const char *ts = sembed_tokenizer_id_to_token(tok, ids[k]);
                srv_buf_json_string(&b, ts ? ts : "", ts ? strlen(ts) : 0);
            } else {
                srv_buf_json_string(&b, r.texts[i] + s0, (size_t)(s1 - s0));
            }
            if (special)
                srv_buf_puts(&b, ",\"special\":true,\"start\":null,\"stop\":null}");
            else
                srv_buf_printf(&b, ",\"special\":%s,\"start\":%d,\"stop\":%d}",
                               sp[k] ? "true" : "false", s0, s1);
        }
        srv_buf_put(&b, "]", 1);
    }
    srv_buf_put(&b, "]", 1);
    res = reply(S, c, q, 200, &b, "application/json");
done:
    free(ids);
    free(off);
    free(sp);
    srv_request_free(&r);
    return res;
}

static enum MHD_Result handle_info(server *S, struct MHD_Connection *c, conn_req *q) {
    srv_buf b = {0};
    srv_buf_puts(&b, "{\"model_id\":");
    srv_buf_json_string(&b, S->model_name, strlen(S->model_name));
    srv_buf_printf(&b,
                   ",\"model_dtype\":\"float32\",\"model_type\":{\"embedding\":{}},"
                   "\"dimension\":%d,\"normalized\":%s,\"max_input_length\":%d,"
                   "\"max_batch_tokens\":%d,\"max_client_batch_size\":%d,"
                   "\"max_concurrent_requests\":%d,\"max_input_bytes\":%zu,"
                   "\"payload_limit\":%zu,\"auto_truncate\":%s,\"device\":\"cpu\","
                   "\"version\":\"%s\"}",
                   S->dim, S->model_normalizes ? "true" : "false", S->R, S->max_batch_tokens,
                   S->lim.max_inputs, sembed__sched_max_queue(S->sched), S->lim.max_input_bytes,
                   S->max_body, S->lim.auto_truncate ? "true" : "false", sembed_version());
    return reply(S, c, q, 200, &b, "application/json");
}

/* ---- the access handler ------------------------------------------------------------------ */

static srv_route route_of(const char *url) {
    if (!strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings")) return SRV_OPENAI;
    if (!strcmp(url, "/embed")) return SRV_EMBED;
    if (!strcmp(url, "/tokenize")) return SRV_TOKENIZE;
    if (!strcmp(url, "/info")) return SRV_INFO;
    if (!strcmp(url, "/health")) return SRV_HEALTH;
    if (!strcmp(url, "/metrics")) return SRV_METRICS;
    return SRV_OTHER;
}

/* Constant time in the length of the expected key, whatever the candidate. */
static bool key_matches(const server *S, const char *h) {
    if (!h || strncmp(h, "Bearer ", 7) != 0) return false;
    const char *k = h + 7;
    const size_t kl = strlen(k);
    volatile unsigned char acc = (unsigned char)(kl != S->api_key_len);
    for (size_t i = 0; i < S->api_key_len; i++)
        acc |= (unsigned char)(S->api_key[i] ^ (i < kl ? k[i] : 0));
    return acc == 0;
}

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind,
                                           const char *key, const char *value) {
    (void)kind, (void)value;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) ++*(int *)cls;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ptr) {
    (void)version;
    server *S = cls;
    conn_req *q = *ptr;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *ptr = q;
        atomic_fetch_add(&S->inflight, 1);
        q->t0 = now_s();
        q->route = route_of(url);
        const bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
        if (atomic_load(&S->draining))
            return fail(S, c, q, 503, "Unhealthy", "the server is shutting down");
        if (q->route == SRV_OTHER) return fail(S, c, q, 404, "NotFound", "no such route");
        if (q->route <= SRV_TOKENIZE ? !post : !get)
            return fail(S, c, q, 405, "MethodNotAllowed", "method not allowed on this route");
        if (S->api_key && q->route <= SRV_INFO &&
            !key_matches(S, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION)))
            return fail(S, c, q, 401, "Unauthorized", "missing or invalid API key");
        int n_cl = 0;
        MHD_get_connection_values(c, MHD_HEADER_KIND, count_content_length, &n_cl);
        if (n_cl > 1)
            return fail(S, c, q, 400, "Validation", "more than one Content-Length header");
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || *end || v > S->max_body) {
                srv_error e;
                srv_fail(&e, 413, "PayloadTooLarge",
                         "the body has %s bytes; the limit is %zu bytes", cl, S->max_body);
                return reply_error(S, c, q, &e);
            }
        }
        return MHD_YES;
    }
    if (q->replied) { /* an early reply was queued: drop the rest of the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        /* MHD can't queue a reply mid-body: a chunked body over the limit, or one read past
         * the read timeout, closes the connection. */
        if (now_s() - q->t0 > S->read_timeout_s) return MHD_NO;
        if (q->body.n + *upload_size > S->max_body) return MHD_NO;
        srv_buf_put(&q->body, upload_data, *upload_size);
        if (q->body.oom) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    enum MHD_Result res;
    switch (q->route) {
    case SRV_OPENAI:
    case SRV_EMBED: res = handle_embed(S, c, q); break;
    case SRV_TOKENIZE: res = handle_tokenize(S, c, q); break;
    case SRV_INFO: res = handle_info(S, c, q); break;
    case SRV_HEALTH: {
        srv_buf b = {0};
        if (atomic_load(&S->draining))
            return fail(S, c, q, 503, "Unhealthy", "unhealthy: shutting down");
        srv_buf_puts(&b, "{\"status\":\"ok\"}");
        res = reply(S, c, q, 200, &b, "application/json");
        break;
    }
    case SRV_METRICS: {
        srv_buf b = {0};
        metrics_text(S, &b);
        res = reply(S, c, q, 200, &b, "text/plain; version=0.0.4");
        break;
    }
    default: res = fail(S, c, q, 404, "NotFound", "no such route"); break;
    }
    if (q->route <= SRV_TOKENIZE) observe(S, ST_TOTAL, now_s() - q->t0);
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ptr,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    server *S = cls;
    conn_req *q = *ptr;
    if (!q) return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        pthread_mutex_lock(&S->m.mu);
        S->m.disconnects++;
        pthread_mutex_unlock(&S->m.mu);
    }
    free(q->body.p);
    free(q);
    *ptr = NULL;
    atomic_fetch_sub(&S->inflight, 1);
}

/* ---- the command ------------------------------------------------------------------------- */

static void help(FILE *f) {
    fprintf(f,
            "usage: sembed serve -m DIR [options]\n"
            "\n"
            "Serves the model folder DIR over HTTP: POST /v1/embeddings (OpenAI), POST /embed and\n"
            "POST /tokenize (text-embeddings-inference), GET /info, /health, /metrics.\n"
            "Prints \"listening on http://HOST:PORT\" on stdout once ready. SIGTERM or SIGINT\n"
            "stops accepting and finishes the requests in flight (a second one exits at once).\n"
            "\n"
            "  -m, --model DIR            model folder\n"
            "      --host H               address to bind (default 127.0.0.1)\n"
            "  -p, --port N               port (default 8080; 0: any free port)\n"
            "      --device D             cpu or auto (default auto; the CPU for now)\n"
            "      --served-model-name S  the model name in replies (default: DIR's base name)\n"
            "      --api-key K            require `Authorization: Bearer K` on the POST routes\n"
            "                             and /info (also from $SEMBED_API_KEY)\n"
            "  -t, --threads N            threads per encoder context (default: CPUs / workers)\n"
            "      --workers N            encoder contexts (default 2 with 2+ CPUs, else 1)\n"
            "      --[no-]query-lane      with 2+ workers, keep worker 0 for small requests so\n"
            "                             queries never wait behind bulk (default: on)\n"
            "      --max-batch-tokens N   token budget of a batch (default 2048)\n"
            "      --bulk-batch-tokens N  token budget of a batch carrying bulk texts (512)\n"
            "      --small-tokens N       requests of at most N tokens are queries (default 128)\n"
            "      --max-queue N          texts admitted and not yet encoded; beyond: 429 (4096)\n"
            "      --max-inputs N         inputs per request; beyond: 422 (default 512)\n"
            "      --max-input-bytes N    bytes per input text; beyond: 422 (default 250 x the\n"
            "                             model's max tokens)\n"
            "      --max-body-bytes N     request body bytes; beyond: 413 (default 2000000)\n"
            "      --no-auto-truncate     default `truncate` to false (422 for long inputs)\n"
            "      --timeout S            idle connection timeout, seconds (default 30)\n"
            "      --read-timeout S       seconds to receive a whole request (default 30)\n"
            "      --max-connections N    open connections (default 512)\n"
            "      --max-connections-per-ip N  (default 256)\n"
            "      --drain-timeout S      seconds to finish requests at shutdown (default 30)\n");
}

static bool parse_int(const char *name, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "sembed serve: --%s expects an integer in [%ld, %ld], got '%s'\n", name,
                lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

/* Whether the model's outputs come L2-normalized: a probe through the scheduler, which also
 * warms it up and checks that the encoder gives finite vectors at all. */
static bool probe_model(server *S) {
    const char *texts[2] = {"hello", "The quick brown fox jumps over the lazy dog."};
    size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
    int32_t ntok[2];
    int32_t ids[1024];
    for (int i = 0; i < 2; i++) {
        sembed_tokens t = {.ids = ids, .capacity = 1024};
        if (S->R > 1024 || sembed_tokenize(S->tok, texts[i], lens[i], &t, NULL) != SEMBED_OK)
            return false;
        ntok[i] = t.n;
    }
    float *out = malloc(sizeof(float) * 2 * (size_t)S->dim);
    if (!out) return false;
    sembed__sched_job job = {.n = 2, .texts = texts, .lens = lens, .n_tokens = ntok, .out = out};
    bool ok = sembed__sched_submit(S->sched, &job) == SEMBED__SCHED_ADMITTED;
    if (ok) {
        sembed__sched_wait(&job);
        ok = job.status == SEMBED_OK;
    }
    int unit = 0;
    for (int i = 0; ok && i < 2; i++) {
        double ss = 0;
        for (int32_t k = 0; k < S->dim; k++) ss += (double)out[i * S->dim + k] * out[i * S->dim + k];
        if (!isfinite(ss) || !(ss > 0)) ok = false;
        unit += fabs(sqrt(ss) - 1.0) < 1e-4;
    }
    S->model_normalizes = unit == 2;
    free(out);
    return ok;
}

int cli_serve(int argc, char **argv) {
    enum { O_HOST = 256, O_DEVICE, O_NAME, O_KEY, O_WORKERS, O_MBT, O_BBT, O_SMALL, O_QUEUE,
           O_INPUTS, O_INBYTES, O_BODY, O_NOTRUNC, O_TIMEOUT, O_RTIMEOUT, O_CONNS, O_CONNS_IP,
           O_DRAIN, O_LANE, O_NOLANE };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, 'p'},
        {"device", required_argument, NULL, O_DEVICE},
        {"served-model-name", required_argument, NULL, O_NAME},
        {"api-key", required_argument, NULL, O_KEY},
        {"threads", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, O_WORKERS},
        {"max-batch-tokens", required_argument, NULL, O_MBT},
        {"bulk-batch-tokens", required_argument, NULL, O_BBT},
        {"small-tokens", required_argument, NULL, O_SMALL},
        {"max-queue", required_argument, NULL, O_QUEUE},
        {"max-inputs", required_argument, NULL, O_INPUTS},
        {"max-input-bytes", required_argument, NULL, O_INBYTES},
        {"max-body-bytes", required_argument, NULL, O_BODY},
        {"no-auto-truncate", no_argument, NULL, O_NOTRUNC},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"read-timeout", required_argument, NULL, O_RTIMEOUT},
        {"max-connections", required_argument, NULL, O_CONNS},
        {"max-connections-per-ip", required_argument, NULL, O_CONNS_IP},
        {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"query-lane", no_argument, NULL, O_LANE},
        {"no-query-lane", no_argument, NULL, O_NOLANE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *dir = NULL, *host = "127.0.0.1", *name = NULL;
    long port = 8080, workers = 0, threads = 0, mbt = 2048, bbt = 512, small = 128, queue = 4096,
         inputs = 512, inbytes = 0, body = 2000000, timeout = 30, rtimeout = 30, conns = 512,
         conns_ip = 256, drain = 30;
    bool auto_truncate = true;
    int32_t query_lane = -1;
    const char *key = getenv("SEMBED_API_KEY");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:t:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': dir = optarg; break;
        case O_HOST: host = optarg; break;
        case 'p': ok = parse_int("port", optarg, 0, 65535, &port); break;
        case O_DEVICE:
            if (strcmp(optarg, "cpu") && strcmp(optarg, "auto")) {
                fprintf(stderr, "sembed serve: --device %s: only cpu (or auto) for now\n", optarg);
                return 2;
            }
            break;
        case O_NAME: name = optarg; break;
        case O_KEY: key = optarg; break;
        case 't': ok = parse_int("threads", optarg, 0, 1024, &threads); break;
        case O_WORKERS: ok = parse_int("workers", optarg, 1, 64, &workers); break;
        case O_MBT: ok = parse_int("max-batch-tokens", optarg, 1, 1 << 20, &mbt); break;
        case O_BBT: ok = parse_int("bulk-batch-tokens", optarg, 1, 1 << 20, &bbt); break;
        case O_SMALL: ok = parse_int("small-tokens", optarg, 1, 1 << 20, &small); break;
        case O_QUEUE: ok = parse_int("max-queue", optarg, 1, 1 << 20, &queue); break;
        case O_INPUTS: ok = parse_int("max-inputs", optarg, 1, 1 << 20, &inputs); break;
        case O_INBYTES: ok = parse_int("max-input-bytes", optarg, 1, 1L << 30, &inbytes); break;
        case O_BODY: ok = parse_int("max-body-bytes", optarg, 1, 1L << 31, &body); break;
        case O_NOTRUNC: auto_truncate = false; break;
        case O_LANE: query_lane = 1; break;
        case O_NOLANE: query_lane = 0; break;
        case O_TIMEOUT: ok = parse_int("timeout", optarg, 1, 86400, &timeout); break;
        case O_RTIMEOUT: ok = parse_int("read-timeout", optarg, 1, 86400, &rtimeout); break;
        case O_CONNS: ok = parse_int("max-connections", optarg, 1, 1 << 16, &conns); break;
        case O_CONNS_IP: ok = parse_int("max-connections-per-ip", optarg, 0, 1 << 16, &conns_ip); break;
        case O_DRAIN: ok = parse_int("drain-timeout", optarg, 0, 86400, &drain); break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
        if (!ok) return 2;
    }
    if (!dir || optind < argc) {
        fprintf(stderr, "sembed serve: %s\n", dir ? "unexpected argument" : "-m DIR is required");
        help(stderr);
        return 2;
    }
    if (inputs > queue) {
        fprintf(stderr, "sembed serve: --max-inputs (%ld) must not exceed --max-queue (%ld)\n",
                inputs, queue);
        return 2;
    }
    if (key && !*key) key = NULL;
    if (workers == 0) workers = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
    if (query_lane < 0) query_lane = workers >= 2;

    /* Signals are taken by sigwait in this thread; every thread started from here on
     * inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    static server S; /* static: the connection threads may outlive a fast exit */
    memset(&S, 0, sizeof S);
    pthread_mutex_init(&S.m.mu, NULL);
    sembed_error err = {0};
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    if (sembed_model_load(dir, NULL, &S.model, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed serve: %s\n", err.msg);
        goto out;
    }
    S.tok = sembed_model_tokenizer(S.model);
    S.R = sembed_model_max_length(S.model);
    S.dim = sembed_model_dim(S.model);
    sembed_tokenizer_params tp = sembed_tokenizer_default_params();
    tp.max_length = S.R;
    tp.add_special_tokens = 0;
    if (sembed_tokenizer_load(dir, &tp, &S.tok_plain, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed serve: %s\n", err.msg);
        goto out;
    }
    sembed__sched_params sp = {.n_workers = (int32_t)workers, .n_threads = (int32_t)threads,
                               .max_batch_tokens = (int32_t)mbt,
                               .bulk_batch_tokens = (int32_t)bbt,
                               .max_queue_texts = (int32_t)queue,
                               .small_tokens = (int32_t)small,
                               .query_lane = query_lane};
    if (sembed__sched_new(S.model, &sp, &S.sched, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed serve: %s\n", err.msg);
        goto out;
    }
    S.max_batch_tokens = mbt < S.R ? S.R : (int32_t)mbt;
    if (!probe_model(&S)) {
        fprintf(stderr, "sembed serve: the model gives no finite vector for a probe text\n");
        goto out;
    }
    if (!name) {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && dir[b - 1] != '/') b--;
        static char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(n - b), dir + b);
        name = base;
    }
    S.model_name = name;
    S.api_key = key;
    S.api_key_len = key ? strlen(key) : 0;
    S.max_body = (size_t)body;
    S.read_timeout_s = (double)rtimeout;
    S.lim = (srv_limits){.max_inputs = (int32_t)inputs,
                         .max_input_bytes = inbytes ? (size_t)inbytes : (size_t)S.R * 250,
                         .dim = S.dim,
                         .auto_truncate = auto_truncate};

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%ld", port);
    if (getaddrinfo(host, ports, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "sembed serve: cannot resolve --host %s\n", host);
        goto out;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &S, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)conns,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)conns_ip,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &S,
                         MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) {
        fprintf(stderr, "sembed serve: cannot listen on %s:%ld: %s\n", host, port,
                strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("sembed serve: listening on http://%s:%u (model %s, dim %d, max length %d)\n", host,
           di ? di->port : (unsigned)port, name, S.dim, S.R);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    fprintf(stderr, "sembed serve: signal %d: finishing %d requests in flight\n", sig,
            atomic_load(&S.inflight));
    atomic_store(&S.draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(d);
    const struct timespec tick = {0, 20 * 1000 * 1000};
    const double deadline = now_s() + (double)drain;
    while (atomic_load(&S.inflight) > 0) {
        const bool late = now_s() > deadline;
        if (late || sigtimedwait(&sigs, NULL, &tick) > 0) {
            fprintf(stderr, "sembed serve: %s: exiting with %d requests unfinished\n",
                    late ? "the drain timeout passed" : "a second signal",
                    atomic_load(&S.inflight));
            fflush(stderr);
            _exit(1);
        }
    }
    MHD_stop_daemon(d);
    d = NULL;
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    rc = 0;
out:
    if (d) MHD_stop_daemon(d);
    sembed__sched_free(S.sched);
    sembed_tokenizer_free(S.tok_plain);
    sembed_model_free(S.model);
    pthread_mutex_destroy(&S.m.mu);
    return rc;
}
