/* serve_handle.c — the core of `sembed serve`: opening the model and the scheduler (CPU and GPU
 * workers), and turning one request body into a reply: limits, tokenizing for counts, the
 * scheduler, checks of every vector, JSON out; /info, /health, /metrics. No HTTP (serve.c has
 * libmicrohttpd); in-process tests drive srv_handle directly. */
#include "cli.h"
#include "serve.h"
#include "serve_sched.h"

#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- metrics ----------------------------------------------------------------------------- */

static const int k_codes[SRV_N_CODES] = {200, 400, 401, 404, 405, 408,
                                         413, 415, 422, 429, 500, 503};
static const char *const k_route_names[SRV_N_ROUTES] = {
    "/v1/embeddings", "/embed", "/tokenize", "/info", "/health", "/metrics", "other"};
static const char *const k_stage_names[SRV_N_STAGES] = {"tokenize", "queue", "inference",
                                                        "serialize", "total"};

void srv_observe(srv_server *S, int stage, double s) {
    int b = 0;
    double edge = 1e-4;
    while (b < SRV_N_TBUCKETS && s > edge) b++, edge *= 2;
    pthread_mutex_lock(&S->m.mu);
    S->m.stage_hist[stage][b]++;
    S->m.stage_sum[stage] += s;
    S->m.stage_count[stage]++;
    pthread_mutex_unlock(&S->m.mu);
}

void srv_count_request(srv_server *S, srv_route r, int code) {
    int k = SRV_N_CODES;
    for (int i = 0; i < SRV_N_CODES; i++)
        if (k_codes[i] == code) k = i;
    pthread_mutex_lock(&S->m.mu);
    S->m.requests[r][k]++;
    pthread_mutex_unlock(&S->m.mu);
}

static const char *worker_device(const srv_server *S, int32_t w) {
    const char *d = srv_sched_worker_device(S->sched, w, NULL);
    return d ? d : "?";
}

static void metrics_text(srv_server *S, srv_buf *b) {
    srv_sched_stats *st = srv_malloc(sizeof *st); /* large: per-worker counters */
    srv_metrics *m = srv_malloc(sizeof *m);
    if (!st || !m) {
        srv_free(st);
        srv_free(m);
        b->oom = true;
        return;
    }
    srv_sched_get_stats(S->sched, st);
    pthread_mutex_lock(&S->m.mu);
    memcpy(m->requests, S->m.requests, sizeof m->requests);
    memcpy(m->stage_hist, S->m.stage_hist, sizeof m->stage_hist);
    memcpy(m->stage_sum, S->m.stage_sum, sizeof m->stage_sum);
    memcpy(m->stage_count, S->m.stage_count, sizeof m->stage_count);
    m->texts = S->m.texts, m->tokens = S->m.tokens, m->disconnects = S->m.disconnects;
    pthread_mutex_unlock(&S->m.mu);

    srv_buf_puts(b, "# HELP sembed_requests_total HTTP requests by route and status code.\n"
                    "# TYPE sembed_requests_total counter\n");
    for (int r = 0; r < SRV_N_ROUTES; r++)
        for (int k = 0; k <= SRV_N_CODES; k++)
            if (m->requests[r][k])
                srv_buf_printf(b, "sembed_requests_total{route=\"%s\",code=\"%s%d\"} %lld\n",
                               k_route_names[r], k < SRV_N_CODES ? "" : "other",
                               k < SRV_N_CODES ? k_codes[k] : 0, (long long)m->requests[r][k]);
    srv_buf_printf(b,
                   "# HELP sembed_queue_texts Inputs admitted and not yet encoded.\n"
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
                   (long long)st->queued_texts, srv_sched_max_queue(S->sched),
                   atomic_load(&S->inflight), (long long)st->refused, (long long)m->texts,
                   (long long)m->tokens, (long long)m->disconnects, (long long)st->batches,
                   st->encode_s);
    srv_buf_puts(b, "# HELP sembed_worker_batches_total Batches per worker (device).\n"
                    "# TYPE sembed_worker_batches_total counter\n");
    for (int32_t w = 0; w < st->n_workers; w++)
        srv_buf_printf(b, "sembed_worker_batches_total{worker=\"%d\",device=\"%s\"} %lld\n", w,
                       worker_device(S, w), (long long)st->worker[w].batches);
    srv_buf_puts(b, "# TYPE sembed_worker_tokens_total counter\n");
    for (int32_t w = 0; w < st->n_workers; w++)
        srv_buf_printf(b, "sembed_worker_tokens_total{worker=\"%d\",device=\"%s\"} %lld\n", w,
                       worker_device(S, w), (long long)st->worker[w].tokens);
    const char *hn[2] = {"sembed_batch_size", "sembed_batch_tokens"};
    const int64_t *hv[2] = {st->hist_texts, st->hist_tokens};
    const int64_t hsum[2] = {st->batch_texts, st->batch_tokens};
    for (int h = 0; h < 2; h++) {
        srv_buf_printf(b, "# TYPE %s histogram\n", hn[h]);
        int64_t cum = 0;
        for (int k = 0; k < SRV_SCHED_HIST; k++) {
            cum += hv[h][k];
            if (k == SRV_SCHED_HIST - 1)
                srv_buf_printf(b, "%s_bucket{le=\"+Inf\"} %lld\n", hn[h], (long long)cum);
            else
                srv_buf_printf(b, "%s_bucket{le=\"%lld\"} %lld\n", hn[h], 1LL << k,
                               (long long)cum);
        }
        srv_buf_printf(b, "%s_sum %lld\n%s_count %lld\n", hn[h], (long long)hsum[h], hn[h],
                       (long long)st->batches);
    }
    srv_buf_puts(b, "# HELP sembed_stage_seconds Time per request in each stage.\n"
                    "# TYPE sembed_stage_seconds histogram\n");
    for (int s = 0; s < SRV_N_STAGES; s++) {
        int64_t cum = 0;
        double edge = 1e-4;
        for (int k = 0; k <= SRV_N_TBUCKETS; k++, edge *= 2) {
            cum += m->stage_hist[s][k];
            if (k == SRV_N_TBUCKETS)
                srv_buf_printf(b, "sembed_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %lld\n",
                               k_stage_names[s], (long long)cum);
            else
                srv_buf_printf(b, "sembed_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %lld\n",
                               k_stage_names[s], edge, (long long)cum);
        }
        srv_buf_printf(b,
                       "sembed_stage_seconds_sum{stage=\"%s\"} %.6f\n"
                       "sembed_stage_seconds_count{stage=\"%s\"} %lld\n",
                       k_stage_names[s], m->stage_sum[s], k_stage_names[s],
                       (long long)m->stage_count[s]);
    }
    srv_free(st);
    srv_free(m);
}

/* ---- replies ----------------------------------------------------------------------------- */

static const char k_oom_native[] = "{\"error\":\"out of memory\",\"error_type\":\"Backend\"}";
static const char k_oom_openai[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                   "\"server_error\",\"param\":null,\"code\":\"Backend\"}}";

static void reply_static_oom(srv_reply *out, srv_route route) {
    const char *s = route == SRV_OPENAI ? k_oom_openai : k_oom_native;
    *out = (srv_reply){.code = 500, .ctype = "application/json", .body = (char *)s,
                       .n = strlen(s), .owned = false};
}

/* Takes b's bytes into out (or the static out-of-memory error when b ran out). */
static void reply_buf(srv_reply *out, srv_route route, int code, srv_buf *b, const char *ctype) {
    if (b->oom) {
        srv_free(b->p);
        *b = (srv_buf){0};
        reply_static_oom(out, route);
        return;
    }
    *out = (srv_reply){.code = code, .ctype = ctype, .body = b->p, .n = b->n, .owned = b->p != NULL};
    if (!b->p) out->body = (char *)"";
    *b = (srv_buf){0};
}

void srv_reply_error(srv_reply *out, srv_route route, const srv_error *e) {
    srv_buf b = {0};
    const srv_route shape = route == SRV_OPENAI ? SRV_OPENAI : SRV_EMBED;
    srv_error_body(&b, shape, e);
    reply_buf(out, shape, e->http, &b, "application/json");
}

void srv_reply_free(srv_reply *r) {
    if (r->owned) srv_free(r->body);
    memset(r, 0, sizeof *r);
}

static void fail(srv_reply *out, srv_route route, int http, const char *type, const char *msg) {
    srv_error e;
    srv_fail(&e, http, type, "%s", msg);
    srv_reply_error(out, route, &e);
}

/* ---- the embedding routes ---------------------------------------------------------------- */

/* Checks every vector (finite, norm > 0), then normalizes when asked. */
static bool finish_vectors(float *v, int32_t n, int32_t dims, bool normalize, int32_t *bad) {
    for (int32_t i = 0; i < n; i++) {
        float *x = v + (int64_t)i * dims;
        double ss = 0;
        for (int32_t k = 0; k < dims; k++) {
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
        if (!normalize) continue;
        const float inv = (float)(1.0 / sqrt(ss));
        for (int32_t k = 0; k < dims; k++) x[k] *= inv;
    }
    return true;
}

/* The text of the model's prompt called name, or NULL. */
static const char *find_prompt(const srv_server *S, const char *name) {
    sembed_model_info mi;
    sembed_model_describe(S->model, &mi);
    for (int32_t i = 0; i < mi.n_prompts; i++) {
        const char *pn = NULL;
        const char *text = sembed_model_prompt(S->model, i, &pn);
        if (text && pn && !strcmp(pn, name)) return text;
    }
    return NULL;
}

/* The model's prompt names, comma-separated, into buf. */
static void prompt_names(const srv_server *S, char *buf, size_t cap) {
    sembed_model_info mi;
    sembed_model_describe(S->model, &mi);
    size_t o = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < mi.n_prompts && o < cap; i++) {
        const char *pn = NULL;
        sembed_model_prompt(S->model, i, &pn);
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", pn ? pn : "?");
    }
    if (!mi.n_prompts) snprintf(buf, cap, "none");
}

/* Tokenizes prompt + text for the counts; the vector comes from the worker's own encode. */
/* The TEI error for input i when truncation is off and it has more tokens than the model takes. */
static void too_long(srv_error *e, const srv_server *S, const sembed_tokens *t, int i) {
    srv_fail(e, 422, "Validation",
             "Input validation error: `inputs` must have less than %d tokens. Given: %d (input %d)",
             S->R, t->n_full, i);
}

static sembed_status count_tokens(const srv_server *S, const char *prompt, const char *text,
                                  size_t len, int32_t *ids, sembed_tokens *t, sembed_error *te) {
    *t = (sembed_tokens){.ids = ids, .capacity = S->R};
    if (!prompt || !*prompt) return sembed_tokenize(S->tok, text, len, t, te);
    const size_t pl = strlen(prompt);
    char *both = srv_malloc(pl + len + 1);
    if (!both) {
        snprintf(te->msg, sizeof te->msg, "out of memory");
        return te->status = SEMBED_ERR_NOMEM;
    }
    memcpy(both, prompt, pl);
    memcpy(both + pl, text, len);
    sembed_status st = sembed_tokenize(S->tok, both, pl + len, t, te);
    srv_free(both);
    return st;
}

static void handle_embed(srv_server *S, srv_route route, const char *body, size_t len,
                         int cancel_fd, srv_reply *res) {
    srv_request r;
    srv_error e;
    const double t0 = srv_now();
    int32_t *ids = NULL, *ntok = NULL;
    float *out = NULL;
    sembed_encode_info *info = NULL;
    srv_buf b = {0};
    if (!srv_parse_request(route, body, len, &S->lim, &r, &e)) {
        srv_reply_error(res, route, &e);
        goto done;
    }
    if (route == SRV_EMBED && !r.normalize && S->model_normalizes) {
        fail(res, route, 422, "Validation",
             "`normalize` false is not available: this model's folder normalizes its output "
             "(a Normalize module)");
        goto done;
    }
    const char *prompt = S->default_prompt;
    if (r.prompt_name) {
        prompt = find_prompt(S, r.prompt_name);
        if (!prompt) {
            char names[256];
            prompt_names(S, names, sizeof names);
            srv_fail(&e, 422, "Validation",
                     "`prompt_name` \"%.100s\" is not a prompt of this model (its prompts: %s)",
                     r.prompt_name, names);
            srv_reply_error(res, route, &e);
            goto done;
        }
    }
    const int32_t n = r.n, dims = r.dimensions ? r.dimensions : S->dim;
    ids = srv_malloc(sizeof(int32_t) * (size_t)S->R);
    ntok = srv_malloc(sizeof(int32_t) * (size_t)n);
    out = srv_malloc(sizeof(float) * (size_t)n * (size_t)dims);
    info = srv_malloc(sizeof(sembed_encode_info) * (size_t)n);
    int64_t usage = 0;
    if (!ids || !ntok || !out || !info) {
        fail(res, route, 500, "Backend", "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        if (r.ids && r.ids[i]) { /* token ids: the model's whole input, as given */
            if (r.n_ids[i] > S->R && !r.truncate) {
                srv_fail(&e, 422, "Validation",
                         "Input validation error: `inputs` must have less than %d tokens. "
                         "Given: %d (input %d)",
                         S->R, r.n_ids[i], i);
                srv_reply_error(res, route, &e);
                goto done;
            }
            ntok[i] = r.n_ids[i] < S->R ? r.n_ids[i] : S->R;
            usage += ntok[i];
            continue;
        }
        sembed_tokens t;
        sembed_error te = {0};
        sembed_status ts = count_tokens(S, prompt, r.texts[i], r.lens[i], ids, &t, &te);
        if (ts == SEMBED_ERR_NOMEM) {
            fail(res, route, 500, "Backend", "out of memory");
            goto done;
        }
        if (ts != SEMBED_OK) {
            srv_fail(&e, 422, "Tokenizer", "input %d: %s", i, te.msg);
            srv_reply_error(res, route, &e);
            goto done;
        }
        if (t.n < 1) {
            srv_fail(&e, 422, "Tokenizer", "input %d gives no tokens", i);
            srv_reply_error(res, route, &e);
            goto done;
        }
        if (t.truncated && !r.truncate) {
            too_long(&e, S, &t, i);
            srv_reply_error(res, route, &e);
            goto done;
        }
        ntok[i] = t.n;
        usage += t.n;
    }
    srv_observe(S, SRV_ST_TOKENIZE, srv_now() - t0);

    srv_sched_job job = {.n = n, .texts = r.texts, .lens = r.lens,
                         .ids = (const int32_t *const *)r.ids, .n_ids = r.n_ids,
                         .n_tokens = ntok, .out = out, .info = info,
                         .opts = {.prompt_name = r.prompt_name, .dimensions = r.dimensions}};
    srv_sched_admit a = srv_sched_submit(S->sched, &job);
    if (a == SRV_SCHED_FULL) {
        fail(res, route, 429, "Overloaded", "Model is overloaded: the queue is full, retry");
        goto done;
    }
    if (a != SRV_SCHED_ADMITTED) {
        fail(res, route, 422, "Validation",
             "the request has more inputs than the server's queue can ever hold");
        goto done;
    }
    /* While it waits, watch the socket: inputs of a client that went away are dropped. */
    while (!srv_sched_wait_for(&job, 0.05)) {
        struct pollfd pf = {.fd = cancel_fd, .events = POLLRDHUP};
        if (cancel_fd >= 0 && poll(&pf, 1, 0) > 0 &&
            (pf.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            srv_sched_cancel(S->sched, &job);
    }
    srv_sched_wait(&job);
    srv_observe(S, SRV_ST_QUEUE, job.queue_s);
    srv_observe(S, SRV_ST_INFERENCE, job.encode_s);
    if (job.status != SEMBED_OK) {
        srv_fail(&e, job.status == SEMBED_ERR_NOMEM ? 503 : 500, "Backend",
                 "encoding failed: %s", job.err.msg);
        srv_reply_error(res, route, &e);
        goto done;
    }
    const double t2 = srv_now();
    const bool norm = r.normalize && !S->model_normalizes;
    int32_t bad = -1;
    if (!finish_vectors(out, n, dims, norm, &bad)) {
        srv_fail(&e, 500, "Backend", "the model gave a non-finite or zero vector for input %d",
                 bad);
        srv_reply_error(res, route, &e);
        goto done;
    }
    if (route == SRV_EMBED) {
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
                const unsigned char *le = (const unsigned char *)x; /* little-endian hosts */
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
    srv_observe(S, SRV_ST_SERIALIZE, srv_now() - t2);
    pthread_mutex_lock(&S->m.mu);
    S->m.texts += n;
    S->m.tokens += usage;
    pthread_mutex_unlock(&S->m.mu);
    reply_buf(res, route, 200, &b, "application/json");
done:
    srv_free(b.p);
    srv_free(ids);
    srv_free(ntok);
    srv_free(out);
    srv_free(info);
    srv_request_free(&r);
}

static void handle_tokenize(srv_server *S, const char *body, size_t len, srv_reply *res) {
    const srv_route route = SRV_TOKENIZE;
    srv_request r;
    srv_error e;
    srv_buf b = {0};
    int32_t *ids = NULL, *off = NULL;
    uint8_t *sp = NULL;
    char *both = NULL;
    if (!srv_parse_request(SRV_TOKENIZE, body, len, &S->lim, &r, &e)) {
        srv_reply_error(res, route, &e);
        goto done;
    }
    const char *prompt = NULL;
    if (r.prompt_name && !(prompt = find_prompt(S, r.prompt_name))) {
        char names[256];
        prompt_names(S, names, sizeof names);
        srv_fail(&e, 422, "Validation",
                 "`prompt_name` \"%.100s\" is not a prompt of this model (its prompts: %s)",
                 r.prompt_name, names);
        srv_reply_error(res, route, &e);
        goto done;
    }
    const sembed_tokenizer *tok = r.add_special ? S->tok : S->tok_plain;
    const int32_t cap = S->R;
    ids = srv_malloc(sizeof(int32_t) * (size_t)cap);
    off = srv_malloc(sizeof(int32_t) * 2 * (size_t)cap);
    sp = srv_malloc((size_t)cap);
    if (!ids || !off || !sp) {
        fail(res, route, 500, "Backend", "out of memory");
        goto done;
    }
    srv_buf_put(&b, "[", 1);
    for (int32_t i = 0; i < r.n; i++) {
        /* with a prompt, offsets are into prompt + text, as TEI gives them */
        const char *text = r.texts[i];
        size_t tl = r.lens[i];
        if (prompt) {
            const size_t pl = strlen(prompt);
            srv_free(both);
            both = srv_malloc(pl + tl + 1);
            if (!both) {
                fail(res, route, 500, "Backend", "out of memory");
                goto done;
            }
            memcpy(both, prompt, pl);
            memcpy(both + pl, text, tl);
            text = both;
            tl += pl;
        }
        sembed_tokens t = {.ids = ids, .offsets = off, .special = sp, .capacity = cap};
        sembed_error te = {0};
        sembed_status ts = sembed_tokenize(tok, text, tl, &t, &te);
        if (ts == SEMBED_ERR_NOMEM) {
            fail(res, route, 500, "Backend", "out of memory");
            goto done;
        }
        if (ts != SEMBED_OK) {
            srv_fail(&e, 422, "Tokenizer", "input %d: %s", i, te.msg);
            srv_reply_error(res, route, &e);
            goto done;
        }
        if (t.truncated && !r.truncate) {
            too_long(&e, S, &t, i);
            srv_reply_error(res, route, &e);
            goto done;
        }
        srv_buf_puts(&b, i ? ",[" : "[");
        for (int32_t k = 0; k < t.n; k++) {
            const int32_t s0 = off[2 * k], s1 = off[2 * k + 1];
            const bool special = sp[k] && s0 == s1;
            srv_buf_printf(&b, "%s{\"id\":%d,\"text\":", k ? "," : "", ids[k]);
            if (special || s0 < 0 || s1 < s0 || (size_t)s1 > tl) {
                const char *ts2 = sembed_tokenizer_id_to_token(tok, ids[k]);
                srv_buf_json_string(&b, ts2 ? ts2 : "", ts2 ? strlen(ts2) : 0);
            } else {
                srv_buf_json_string(&b, text + s0, (size_t)(s1 - s0));
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
    reply_buf(res, route, 200, &b, "application/json");
done:
    srv_free(b.p);
    srv_free(both);
    srv_free(ids);
    srv_free(off);
    srv_free(sp);
    srv_request_free(&r);
}

static void handle_info(srv_server *S, srv_reply *res) {
    srv_buf b = {0};
    srv_buf_puts(&b, "{\"model_id\":");
    srv_buf_json_string(&b, S->model_name, strlen(S->model_name));
    srv_buf_printf(&b,
                   ",\"model_dtype\":\"%s\",\"model_type\":{\"embedding\":{}},"
                   "\"dimension\":%d,\"normalized\":%s,\"max_input_length\":%d,"
                   "\"max_batch_tokens\":%d,\"max_client_batch_size\":%d,"
                   "\"max_concurrent_requests\":%d,\"max_input_bytes\":%zu,"
                   "\"payload_limit\":%zu,\"auto_truncate\":%s,\"device\":\"%s\","
                   "\"workers\":[",
                   S->dtype, S->dim, S->model_normalizes ? "true" : "false", S->R, S->max_batch_tokens,
                   S->lim.max_inputs, srv_sched_max_queue(S->sched), S->lim.max_input_bytes,
                   S->max_body, S->lim.auto_truncate ? "true" : "false", S->device);
    for (int32_t w = 0; w < srv_sched_n_workers(S->sched); w++) {
        srv_sched_cost c = {0};
        srv_sched_worker_device(S->sched, w, &c);
        srv_buf_printf(&b, "%s{\"device\":\"%s\",\"batch_s\":%.3g,\"token_s\":%.3g}",
                       w ? "," : "", worker_device(S, w), c.batch_s, c.token_s);
    }
    srv_buf_printf(&b, "],\"prompts\":[");
    sembed_model_info mi;
    sembed_model_describe(S->model, &mi);
    for (int32_t i = 0; i < mi.n_prompts; i++) {
        const char *pn = NULL;
        sembed_model_prompt(S->model, i, &pn);
        if (i) srv_buf_put(&b, ",", 1);
        srv_buf_json_string(&b, pn ? pn : "", pn ? strlen(pn) : 0);
    }
    srv_buf_printf(&b, "],\"version\":\"%s\"}", sembed_version());
    reply_buf(res, SRV_INFO, 200, &b, "application/json");
}

void srv_handle(srv_server *S, srv_route route, const char *body, size_t n, int cancel_fd,
                srv_reply *out) {
    if (!body) body = "";
    switch (route) {
    case SRV_OPENAI:
    case SRV_EMBED: handle_embed(S, route, body, n, cancel_fd, out); break;
    case SRV_TOKENIZE: handle_tokenize(S, body, n, out); break;
    case SRV_INFO: handle_info(S, out); break;
    case SRV_HEALTH:
        if (atomic_load(&S->draining)) {
            fail(out, route, 503, "Unhealthy", "unhealthy: shutting down");
        } else {
            static const char ok[] = "{\"status\":\"ok\"}";
            *out = (srv_reply){.code = 200, .ctype = "application/json", .body = (char *)ok,
                               .n = sizeof ok - 1};
        }
        break;
    case SRV_METRICS: {
        srv_buf b = {0};
        metrics_text(S, &b);
        reply_buf(out, route, 200, &b, "text/plain; version=0.0.4");
        break;
    }
    default: fail(out, route, 404, "NotFound", "no such route"); break;
    }
}

/* ---- opening ----------------------------------------------------------------------------- */

/* Whether the model's outputs come L2-normalized: a probe through the scheduler, which also
 * warms it up and checks that the encoder gives finite vectors at all. */
static sembed_status probe_model(srv_server *S, sembed_error *err) {
    const char *texts[2] = {"hello", "The quick brown fox jumps over the lazy dog."};
    size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
    int32_t ntok[2];
    int32_t *ids = srv_malloc(sizeof(int32_t) * (size_t)S->R);
    float *out = srv_malloc(sizeof(float) * 2 * (size_t)S->dim);
    sembed_status st = ids && out ? SEMBED_OK : SEMBED_ERR_NOMEM;
    for (int i = 0; st == SEMBED_OK && i < 2; i++) {
        sembed_tokens t;
        st = count_tokens(S, S->default_prompt, texts[i], lens[i], ids, &t, err);
        ntok[i] = t.n;
    }
    srv_sched_job job = {.n = 2, .texts = texts, .lens = lens, .n_tokens = ntok, .out = out};
    if (st == SEMBED_OK && srv_sched_submit(S->sched, &job) != SRV_SCHED_ADMITTED)
        st = SEMBED_ERR_NOMEM;
    if (st == SEMBED_OK) {
        srv_sched_wait(&job);
        st = job.status;
        if (st != SEMBED_OK && err) *err = job.err;
    }
    int unit = 0;
    for (int i = 0; st == SEMBED_OK && i < 2; i++) {
        double ss = 0;
        for (int32_t k = 0; k < S->dim; k++) ss += (double)out[i * S->dim + k] * out[i * S->dim + k];
        if (!isfinite(ss) || !(ss > 0)) {
            st = SEMBED_ERR_BACKEND;
            if (err) snprintf(err->msg, sizeof err->msg, "the model gives no finite vector for a probe text");
        }
        unit += fabs(sqrt(ss) - 1.0) < 1e-4;
    }
    S->model_normalizes = unit == 2;
    srv_free(ids);
    srv_free(out);
    if (st == SEMBED_ERR_NOMEM && err && !err->msg[0]) snprintf(err->msg, sizeof err->msg, "out of memory");
    return st;
}

/* The scheduler's workers for a device: a GPU context (large batches) beside CPU contexts that
 * take what the router sends them, or CPU contexts only (worker 0 a query lane). */
static sembed_status open_sched(srv_server *S, const srv_options *o, const char *gpu,
                                sembed_error *err) {
    srv_sched_worker_params wp[SRV_SCHED_MAX_WORKERS];
    memset(wp, 0, sizeof wp);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int32_t n_cpu = o->workers >= 0 ? o->workers : gpu ? 1 : cpus >= 2 ? 2 : 1;
    const sembed_precision gpu_prec = cli_gpu_precision(o->precision);
    int32_t n = 0;
    if (gpu) {
        const int32_t gt = o->gpu_batch_tokens > 0 ? o->gpu_batch_tokens : 16384;
        wp[n++] = (srv_sched_worker_params){.device = gpu, .max_batch_tokens = gt,
                                            .bulk_batch_tokens = gt, .precision = gpu_prec};
    }
    if (n_cpu + n < 1 || n_cpu + n > SRV_SCHED_MAX_WORKERS) {
        if (err) snprintf(err->msg, sizeof err->msg, "--workers %d: expected 1 to %d CPU workers (0 only beside a GPU)", n_cpu, SRV_SCHED_MAX_WORKERS - n);
        return SEMBED_ERR_INVALID_ARG;
    }
    /* On the CPU, worker 0 is a query lane. Beside a GPU every CPU worker takes only small
     * requests (when the router finds the GPU busy long enough): bulk stays on the GPU even
     * when the measured costs are off. */
    const bool lane = !gpu && (o->query_lane < 0 ? n_cpu >= 2 : o->query_lane > 0);
    for (int32_t i = 0; i < n_cpu; i++)
        wp[n++] = (srv_sched_worker_params){.device = "cpu", .n_threads = o->threads,
                                            .precision = o->precision,
                                            .small_only = gpu || (lane && i == 0),
                                            .nice = lane && i > 0 ? 10 : 0};
    srv_sched_params sp = {.n_workers = n, .workers = wp,
                           .max_batch_tokens = o->max_batch_tokens,
                           .bulk_batch_tokens = o->bulk_batch_tokens,
                           .max_queue_texts = o->max_queue, .small_tokens = o->small_tokens};
    sembed_status st = srv_sched_new(S->model, &sp, &S->sched, err);
    if (st != SEMBED_OK) return st;
    if (gpu) snprintf(S->device, sizeof S->device, "%s%s", gpu, n_cpu ? "+cpu" : "");
    else snprintf(S->device, sizeof S->device, "cpu");
    const sembed_precision p0 = gpu ? gpu_prec : o->precision;
    snprintf(S->dtype, sizeof S->dtype, "%s",
             gpu ? (p0 == SEMBED_PRECISION_BF16 ? "bfloat16" : "float16")
                 : p0 == SEMBED_PRECISION_INT8 ? "int8"
                 : p0 == SEMBED_PRECISION_BF16 ? "bfloat16"
                                               : "float32");
    return SEMBED_OK;
}

void srv_server_close(srv_server *S) {
    if (!S) return;
    srv_sched_free(S->sched);
    sembed_tokenizer_free(S->tok_plain);
    sembed_model_free(S->model);
    pthread_mutex_destroy(&S->m.mu);
    srv_free(S);
}

static void *json_alloc(size_t n) { return srv_malloc(n); }

sembed_status srv_server_open(const srv_options *o, srv_server **out, sembed_error *err) {
    *out = NULL;
    json_set_alloc_funcs(json_alloc, srv_free);
    srv_server *S = srv_calloc(1, sizeof *S);
    if (!S) {
        if (err) snprintf(err->msg, sizeof err->msg, "out of memory");
        return SEMBED_ERR_NOMEM;
    }
    pthread_mutex_init(&S->m.mu, NULL);
    sembed_status st = sembed_model_load(o->model_dir, NULL, &S->model, err);
    if (st != SEMBED_OK) goto fail;
    S->tok = sembed_model_tokenizer(S->model);
    S->R = sembed_model_max_length(S->model);
    S->dim = sembed_model_dim(S->model);
    sembed_model_info mi;
    sembed_model_describe(S->model, &mi);
    if (mi.default_prompt_name) S->default_prompt = find_prompt(S, mi.default_prompt_name);
    sembed_tokenizer_params tp = sembed_tokenizer_default_params();
    tp.max_length = S->R;
    tp.add_special_tokens = 0;
    st = sembed_tokenizer_load(o->model_dir, &tp, &S->tok_plain, err);
    if (st != SEMBED_OK) goto fail;

    const char *dev = o->device ? o->device : "auto";
    if (strcmp(dev, "cpu") != 0) {
        const bool auto_ = !strcmp(dev, "auto");
        st = open_sched(S, o, auto_ ? "cuda" : dev, err);
        if (st != SEMBED_OK && !auto_) goto fail;
    }
    if (!S->sched) { /* the CPU, asked for or the fallback of auto */
        if (err) err->msg[0] = '\0';
        st = open_sched(S, o, NULL, err);
        if (st != SEMBED_OK) goto fail;
    }
    S->max_batch_tokens = o->max_batch_tokens > S->R ? o->max_batch_tokens : S->R;
    st = probe_model(S, err);
    if (st != SEMBED_OK) goto fail;
    if (o->model_name) {
        snprintf(S->model_name, sizeof S->model_name, "%s", o->model_name);
    } else {
        const char *dir = o->model_dir;
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && dir[b - 1] != '/') b--;
        snprintf(S->model_name, sizeof S->model_name, "%.*s", (int)(n - b), dir + b);
    }
    S->lim = (srv_limits){.max_inputs = o->max_inputs > 0 ? o->max_inputs : 512,
                          .max_input_bytes = o->max_input_bytes ? o->max_input_bytes
                                                                : (size_t)S->R * 250,
                          .dim = S->dim,
                          .vocab_size = mi.vocab_size,
                          .auto_truncate = o->auto_truncate};
    S->max_body = 2000000;
    *out = S;
    return SEMBED_OK;
fail:
    srv_server_close(S);
    return st;
}
