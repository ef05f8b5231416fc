/* serve_sched.c — `sembed serve`'s scheduler: queues of requests packed into batches by a token
 * budget, small requests ahead of bulk ones; each worker owns a sembed_ctx (CPU or GPU) and runs
 * one encode call per batch (one per options group), the worker chosen by srv_sched_route from
 * per-token costs. Not an encoder: batch invariance is what lets inputs of different requests
 * share a batch and still get the vector they would get alone. */
#include "serve_sched.h"

#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct queue {
    srv_sched_job *head, *tail;
} queue;

/* One input of the batch being built. */
typedef struct entry {
    srv_sched_job *job;
    int32_t index; /* inside its job */
} entry;

typedef struct worker {
    srv_sched *s;
    int32_t id;
    sembed_ctx *ctx;
    char device[32];
    pthread_t thread;
    bool started;
    bool small_only; /* the query lane */
    int32_t nice;
    int32_t max_tokens, bulk_tokens;
    srv_sched_cost cost;
    bool adapt; /* measured costs follow what batches really take (a CPU beside a GPU slows
                   down when the host's cores are busy tokenizing and parsing) */
    bool busy;
    double busy_until; /* estimated end of the batch it runs */
    /* the batch being built, (max_batch_texts) each */
    entry *batch;
    const char **texts;
    size_t *lens;
    const int32_t **ids;
    int32_t *n_ids;
    float *out; /* (max_batch_texts, dim) */
    sembed_encode_info *info;
} worker;

struct srv_sched {
    const sembed_model *model;
    srv_sched_params p;
    int32_t dim;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    queue small, bulk;
    bool stop;
    int32_t n_workers;
    worker *workers;
    srv_sched_stats st;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int hist_bucket(int64_t v) {
    int b = 0;
    while (b < SRV_SCHED_HIST - 1 && ((int64_t)1 << b) < v) b++;
    return b;
}

static void q_push(queue *q, srv_sched_job *j) {
    j->qnext = NULL;
    if (q->tail) q->tail->qnext = j;
    else q->head = j;
    q->tail = j;
}

static void q_pop(queue *q) {
    srv_sched_job *j = q->head;
    q->head = j->qnext;
    if (!q->head) q->tail = NULL;
    j->qnext = NULL;
}

/* ---- routing ----------------------------------------------------------------------------- */

int32_t srv_sched_route(int32_t n, const srv_sched_cost *costs, const double *busy_until,
                        const bool *eligible, double now, int32_t tokens) {
    int32_t best = -1;
    double best_end = 0;
    bool best_idle = false;
    for (int32_t w = 0; w < n; w++) {
        if (!eligible[w]) continue;
        const bool idle = busy_until[w] < 0;
        const double start = idle || busy_until[w] < now ? now : busy_until[w];
        const double end = start + costs[w].batch_s + (double)tokens * costs[w].token_s;
        if (best < 0 || end < best_end || (end == best_end && idle && !best_idle)) {
            best = w;
            best_end = end;
            best_idle = idle;
        }
    }
    return best;
}

/* The worker that should take the batch at the head of the small (or bulk) queue now (with
 * s->mu held). The batch is cut with the scheduler's own budgets, the same for every worker, so
 * that all of them route it to the same one; a bulk batch never goes to a query lane. */
static int32_t route_head(const srv_sched *s, bool small, double now) {
    if (s->n_workers == 1) return 0;
    const queue *q = small ? &s->small : &s->bulk;
    const int32_t budget = small ? s->p.max_batch_tokens : s->p.bulk_batch_tokens;
    int32_t S = 0, T = 0;
    for (const srv_sched_job *j = q->head; j && S < s->p.max_batch_texts; j = j->qnext)
        for (int32_t k = j->next; k < j->n; k++) {
            if (S >= s->p.max_batch_texts || T + j->n_tokens[k] > budget) break;
            T += j->n_tokens[k];
            S++;
        }
    srv_sched_cost costs[SRV_SCHED_MAX_WORKERS];
    double busy[SRV_SCHED_MAX_WORKERS];
    bool ok[SRV_SCHED_MAX_WORKERS];
    for (int32_t i = 0; i < s->n_workers; i++) {
        const worker *v = &s->workers[i];
        costs[i] = v->cost;
        busy[i] = v->busy ? v->busy_until : -1;
        ok[i] = small || !v->small_only;
    }
    return srv_sched_route(s->n_workers, costs, busy, ok, now, T);
}

/* ---- batches ----------------------------------------------------------------------------- */

/* Takes inputs from the head of q, in order, while they fit the budget. Returns false when the
 * head's next input does not fit (the batch is full for this queue). */
static bool take(srv_sched *s, worker *w, queue *q, int32_t *S, int32_t *T, int32_t budget,
                 double t) {
    while (q->head) {
        srv_sched_job *j = q->head;
        while (j->next < j->n) {
            const int32_t nt = j->n_tokens[j->next];
            if (*S >= s->p.max_batch_texts || *T + nt > budget) return false;
            if (j->next == 0) j->queue_s = t - j->t_submit;
            w->batch[*S] = (entry){j, j->next};
            *T += nt;
            (*S)++;
            j->next++;
        }
        q_pop(q);
    }
    return true;
}

static void finish_input(const worker *w, srv_sched_job *j, int32_t k, const float *vec,
                         const sembed_encode_info *info, sembed_status st, const sembed_error *e,
                         double encode_s) {
    if (st == SEMBED_OK) {
        memcpy(j->out + (int64_t)k * j->stride, vec, sizeof(float) * (size_t)j->stride);
        if (j->info) j->info[k] = *info;
    }
    pthread_mutex_lock(&j->mu);
    if (st != SEMBED_OK && j->status == SEMBED_OK) {
        j->status = st;
        j->err = *e;
    }
    j->encode_s += encode_s;
    j->worker = w->id;
    if (++j->n_done == j->n) {
        j->done = true;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

static bool is_ids(const entry *e) { return e->job->ids && e->job->ids[e->index]; }

static bool same_str(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Inputs that one encode call can carry together: same kind, prompt and dimensions. */
static bool same_group(const entry *a, const entry *b) {
    if (is_ids(a) != is_ids(b)) return false;
    const sembed_encode_opts *x = &a->job->opts, *y = &b->job->opts;
    return x->dimensions == y->dimensions && same_str(x->prompt_name, y->prompt_name) &&
           same_str(x->prompt, y->prompt);
}

/* One encode call over batch entries [first, first + n) of one group, into w->out (rows of
 * `stride` floats). */
static sembed_status encode_run(worker *w, int32_t first, int32_t n, int32_t stride,
                                sembed_error *e) {
    const entry *b = &w->batch[first];
    sembed_encode_opts o = b->job->opts;
    for (int32_t i = 0; i < n; i++) {
        const srv_sched_job *j = b[i].job;
        if (is_ids(&b[i])) {
            w->ids[i] = j->ids[b[i].index];
            w->n_ids[i] = j->n_ids[b[i].index];
        } else {
            w->texts[i] = j->texts[b[i].index];
            w->lens[i] = j->lens[b[i].index];
        }
    }
    const int64_t cap = (int64_t)n * stride;
    if (is_ids(b)) {
        o.prompt_name = o.prompt = NULL;
        return sembed_encode_ids(w->ctx, n, w->ids, w->n_ids, &o, w->out, cap, w->info, e);
    }
    return sembed_encode_ex(w->ctx, n, w->texts, w->lens, &o, w->out, cap, w->info, e);
}

/* n texts leave the queue's count before their requests are answered: a client that has its
 * reply and sends the next request at once must find them gone (the count is the admission
 * limit, --max-queue). */
static void release_queued(srv_sched *s, int32_t n) {
    pthread_mutex_lock(&s->mu);
    s->st.queued_texts -= n;
    pthread_mutex_unlock(&s->mu);
}

/* Encodes the batch: entries are grouped (stable) by options, one call per group. */
static void run_batch(srv_sched *s, worker *w, int32_t S) {
    /* group: move entries of the first entry's group to the front, repeat on the rest */
    for (int32_t g = 0; g < S;) {
        int32_t end = g + 1;
        for (int32_t k = g + 1; k < S; k++)
            if (same_group(&w->batch[g], &w->batch[k])) {
                const entry t = w->batch[k];
                memmove(&w->batch[end + 1], &w->batch[end], sizeof(entry) * (size_t)(k - end));
                w->batch[end++] = t;
            }
        const int32_t n = end - g;
        const int32_t stride = w->batch[g].job->stride;
        sembed_error e = {0};
        const double t0 = now_s();
        sembed_status st = encode_run(w, g, n, stride, &e);
        const double dt = now_s() - t0;
        if (st == SEMBED_OK) {
            release_queued(s, n);
            for (int32_t i = 0; i < n; i++)
                finish_input(w, w->batch[g + i].job, w->batch[g + i].index,
                             w->out + (int64_t)i * stride, &w->info[i], SEMBED_OK, NULL, dt);
        } else {
            /* One bad input must not fail its neighbours: encode each alone. */
            for (int32_t i = 0; i < n; i++) {
                sembed_error e1 = {0};
                sembed_status s1 = encode_run(w, g + i, 1, stride, &e1);
                if (s1 != SEMBED_OK) {
                    char m[sizeof e1.msg];
                    snprintf(m, sizeof m, "%s", e1.msg[0] ? e1.msg : sembed_status_str(s1));
                    snprintf(e1.msg, sizeof e1.msg, "input %d: %.480s", w->batch[g + i].index, m);
                    e1.status = s1;
                }
                release_queued(s, 1);
                finish_input(w, w->batch[g + i].job, w->batch[g + i].index, w->out, w->info, s1,
                             &e1, dt);
            }
        }
        g = end;
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    srv_sched *s = w->s;
    /* Linux threads have their own nice value: a bulk worker yields the cores to queries (and
     * to the connection threads that tokenize them) when both want them. Best effort. */
    if (w->nice > 0) (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        const bool work = s->small.head || (!w->small_only && s->bulk.head);
        if (!work) {
            if (s->stop) break;
            pthread_cond_wait(&s->work_cv, &s->mu);
            continue;
        }
        const double t = now_s();
        /* Each queue's head batch goes to the worker the router picks for it: a worker takes
         * bulk inputs along with queries only when bulk is routed to it too, so that a query
         * sent to a CPU beside a busy GPU does not carry bulk with it. */
        const bool take_small = s->small.head && route_head(s, true, t) == w->id;
        const bool take_bulk =
            !w->small_only && s->bulk.head && route_head(s, false, t) == w->id;
        if (!take_small && !take_bulk) {
            /* Another worker finishes it sooner. Look again on the next event, or soon: the
             * estimate that sent it elsewhere may turn out wrong. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 2000000;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
            continue;
        }
        /* Small requests first, then bulk inputs while the (smaller) bulk budget allows. */
        int32_t S = 0, T = 0;
        const bool room = !take_small || take(s, w, &s->small, &S, &T, w->max_tokens, t);
        if (take_bulk && room) take(s, w, &s->bulk, &S, &T, w->bulk_tokens, t);
        if (S == 0 && take_bulk) /* a bulk input always fits an empty batch */
            take(s, w, &s->bulk, &S, &T, w->max_tokens, t);
        if (S == 0) abort(); /* unreachable: n_tokens <= every budget (checked at submit) */
        w->busy = true;
        w->busy_until = t + w->cost.batch_s + (double)T * w->cost.token_s;
        if (s->n_workers > 1 && (s->small.head || s->bulk.head))
            pthread_cond_broadcast(&s->work_cv); /* the rest may be another worker's now */
        pthread_mutex_unlock(&s->mu);

        const double t0 = now_s();
        run_batch(s, w, S);
        const double dt = now_s() - t0;

        pthread_mutex_lock(&s->mu);
        w->busy = false;
        if (w->adapt && T > 0) { /* moving average of the per-token cost, fixed part kept */
            const double per = (dt - w->cost.batch_s) / (double)T;
            if (per > 0) w->cost.token_s = 0.7 * w->cost.token_s + 0.3 * per;
        }
        s->st.batches++;
        s->st.batch_texts += S;
        s->st.batch_tokens += T;
        s->st.hist_texts[hist_bucket(S)]++;
        s->st.hist_tokens[hist_bucket(T)]++;
        s->st.encode_s += dt;
        s->st.worker[w->id].batches++;
        s->st.worker[w->id].texts += S;
        s->st.worker[w->id].tokens += T;
        s->st.worker[w->id].encode_s += dt;
        if (s->n_workers > 1) pthread_cond_broadcast(&s->work_cv); /* routes may change */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static sembed_status sched_fail(sembed_error *err, sembed_status st, const char *msg) {
    if (err) {
        err->status = st;
        snprintf(err->msg, sizeof err->msg, "scheduler: %s", msg);
    }
    return st;
}

/* Measures a worker's cost: the fastest of a few encodes of one short text and of a batch as
 * large as the worker's bulk budget (on a GPU a small batch is all fixed cost, so the per-token
 * cost must come from a large one), fitted to batch_s + tokens * token_s. */
static sembed_status calibrate(srv_sched *s, worker *w, sembed_error *err) {
    static const char *words[] = {"the", "embedding", "of", "a", "passage", "about", "rivers",
                                  "and", "mountains", "in", "France", "query", "search"};
    enum { N_WORDS = sizeof words / sizeof words[0], LONG_WORDS = 120 };
    char shortt[128], *longt = srv_malloc(LONG_WORDS * 12 + 1);
    const char **texts = srv_malloc(sizeof(char *) * (size_t)s->p.max_batch_texts);
    if (!longt || !texts) {
        srv_free(longt);
        srv_free(texts);
        return sched_fail(err, SEMBED_ERR_NOMEM, "out of memory");
    }
    int o = 0;
    for (int k = 0; k < 12; k++)
        o += snprintf(shortt + o, sizeof shortt - (size_t)o, "%s%s", k ? " " : "", words[k % N_WORDS]);
    o = 0;
    for (int k = 0; k < LONG_WORDS; k++)
        o += sprintf(longt + o, "%s%s", k ? " " : "", words[(k * 7) % N_WORDS]);
    /* as many long texts as the bulk budget holds (a model's max length may cut them) */
    const int32_t R = sembed_model_max_length(s->model);
    const int32_t per = R < LONG_WORDS + 2 ? R : LONG_WORDS + 2;
    int32_t n_long = w->bulk_tokens / per;
    if (n_long > s->p.max_batch_texts) n_long = s->p.max_batch_texts;
    if (n_long < 1) n_long = 1;
    for (int32_t i = 0; i < n_long; i++) texts[i] = longt;
    const char *one = shortt;
    double best[2] = {1e30, 1e30};
    int64_t tokens[2] = {0, 0};
    sembed_status st = SEMBED_OK;
    for (int rep = 0; rep < 4 && st == SEMBED_OK; rep++)
        for (int k = 0; k < 2 && st == SEMBED_OK; k++) {
            const int32_t n = k == 0 ? 1 : n_long;
            const double t0 = now_s();
            st = sembed_encode(w->ctx, n, k == 0 ? &one : texts, NULL, w->out,
                               (int64_t)n * s->dim, w->info, err);
            const double dt = now_s() - t0;
            if (rep == 0) continue; /* warm-up */
            if (dt < best[k]) best[k] = dt;
            tokens[k] = 0;
            for (int32_t i = 0; i < n; i++) tokens[k] += w->info[i].n_tokens;
        }
    srv_free(longt);
    srv_free(texts);
    if (st != SEMBED_OK) return st;
    double per_token = tokens[1] > tokens[0] ? (best[1] - best[0]) / (double)(tokens[1] - tokens[0]) : 0;
    if (!(per_token > 0)) per_token = best[1] / (double)(tokens[1] > 0 ? tokens[1] : 1);
    double fixed = best[0] - (double)tokens[0] * per_token;
    w->cost = (srv_sched_cost){.batch_s = fixed > 0 ? fixed : 0, .token_s = per_token};
    return SEMBED_OK;
}

static void worker_free_bufs(worker *w) {
    sembed_ctx_free(w->ctx);
    srv_free(w->batch);
    srv_free(w->texts);
    srv_free(w->lens);
    srv_free(w->ids);
    srv_free(w->n_ids);
    srv_free(w->out);
    srv_free(w->info);
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int32_t i = 0; i < s->n_workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    for (int32_t i = 0; i < s->n_workers; i++) worker_free_bufs(&s->workers[i]);
    srv_free(s->workers);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->mu);
    srv_free(s);
}

static bool is_cpu(const char *device) { return !device || !strcmp(device, "cpu"); }

sembed_status srv_sched_new(const sembed_model *model, const srv_sched_params *params,
                            srv_sched **out, sembed_error *err) {
    if (!model || !params || !out) return sched_fail(err, SEMBED_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    srv_sched_params p = *params;
    if (p.n_workers < 1 || p.n_workers > SRV_SCHED_MAX_WORKERS || p.max_batch_tokens < 0 ||
        p.max_batch_texts < 0 || p.bulk_batch_tokens < 0 || p.max_queue_texts < 0 ||
        p.small_tokens < 0 || p.max_batch_tokens > (1 << 24) || p.max_batch_texts > (1 << 20))
        return sched_fail(err, SEMBED_ERR_INVALID_ARG, "invalid params");
    const int32_t R = sembed_model_max_length(model);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (p.max_batch_tokens == 0) p.max_batch_tokens = 2048;
    if (p.max_batch_tokens < R) p.max_batch_tokens = R;
    if (p.max_batch_texts == 0) p.max_batch_texts = 256;
    if (p.bulk_batch_tokens == 0 || p.bulk_batch_tokens > p.max_batch_tokens)
        p.bulk_batch_tokens = p.max_batch_tokens;
    if (p.bulk_batch_tokens < R) p.bulk_batch_tokens = R;
    if (p.max_queue_texts == 0) p.max_queue_texts = 4096;
    if (p.small_tokens == 0) p.small_tokens = 128;
    int32_t n_cpu = 0;
    bool mixed = false;
    for (int32_t i = 0; i < p.n_workers; i++) {
        const char *d = p.workers ? p.workers[i].device : NULL;
        n_cpu += is_cpu(d);
        mixed |= is_cpu(d) != is_cpu(p.workers ? p.workers[0].device : NULL);
    }

    srv_sched *s = srv_calloc(1, sizeof *s);
    if (!s) return sched_fail(err, SEMBED_ERR_NOMEM, "out of memory");
    s->model = model;
    s->p = p; /* final budgets below; calibration needs max_batch_texts */
    s->p.workers = NULL;
    s->dim = sembed_model_dim(model);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    s->workers = srv_calloc((size_t)p.n_workers, sizeof(worker));
    if (!s->workers) {
        srv_sched_free(s);
        return sched_fail(err, SEMBED_ERR_NOMEM, "out of memory");
    }
    s->n_workers = p.n_workers;
    s->st.n_workers = p.n_workers;
    const size_t B = (size_t)p.max_batch_texts;
    int32_t global_max = p.max_batch_tokens, global_bulk = p.bulk_batch_tokens;
    for (int32_t i = 0; i < p.n_workers; i++) {
        worker *w = &s->workers[i];
        const srv_sched_worker_params wp = p.workers ? p.workers[i] : (srv_sched_worker_params){0};
        w->s = s;
        w->id = i;
        w->small_only = wp.small_only && p.n_workers >= 2;
        w->nice = wp.nice > 19 ? 19 : wp.nice;
        snprintf(w->device, sizeof w->device, "%s", wp.device ? wp.device : "cpu");
        w->max_tokens = wp.max_batch_tokens > 0 ? wp.max_batch_tokens : p.max_batch_tokens;
        if (w->max_tokens < R) w->max_tokens = R;
        if (w->max_tokens > (1 << 24)) w->max_tokens = 1 << 24;
        w->bulk_tokens = wp.bulk_batch_tokens > 0 ? wp.bulk_batch_tokens : p.bulk_batch_tokens;
        if (w->bulk_tokens > w->max_tokens) w->bulk_tokens = w->max_tokens;
        if (w->bulk_tokens < R) w->bulk_tokens = R;
        if (w->max_tokens > global_max) global_max = w->max_tokens;
        if (w->bulk_tokens > global_bulk) global_bulk = w->bulk_tokens;
        w->cost = wp.cost;
        sembed_ctx_params cp = sembed_ctx_default_params();
        cp.n_threads = wp.n_threads > 0 ? wp.n_threads
                       : is_cpu(wp.device) ? (int32_t)(cpus / (n_cpu ? n_cpu : 1) > 0 ? cpus / n_cpu : 1)
                                           : (int32_t)cpus;
        cp.max_batch_tokens = w->max_tokens;
        cp.max_batch_texts = p.max_batch_texts;
        cp.device = wp.device;
        cp.precision = wp.precision;
        sembed_status st = sembed_ctx_new(model, &cp, &w->ctx, err);
        if (st != SEMBED_OK) {
            srv_sched_free(s);
            return st;
        }
        w->batch = srv_calloc(B, sizeof(entry));
        w->texts = srv_calloc(B, sizeof(char *));
        w->lens = srv_calloc(B, sizeof(size_t));
        w->ids = srv_calloc(B, sizeof(int32_t *));
        w->n_ids = srv_calloc(B, sizeof(int32_t));
        w->out = srv_calloc(B * (size_t)s->dim, sizeof(float));
        w->info = srv_calloc(B, sizeof(sembed_encode_info));
        if (!w->batch || !w->texts || !w->lens || !w->ids || !w->n_ids || !w->out || !w->info) {
            srv_sched_free(s);
            return sched_fail(err, SEMBED_ERR_NOMEM, "out of memory");
        }
    }
    /* Routing needs costs only to tell workers apart: measure them when devices differ. */
    for (int32_t i = 0; i < p.n_workers; i++) {
        worker *w = &s->workers[i];
        if (w->cost.batch_s > 0 || w->cost.token_s > 0) continue;
        if (mixed || p.calibrate) {
            sembed_status st = calibrate(s, w, err);
            if (st != SEMBED_OK) {
                srv_sched_free(s);
                return st;
            }
            w->adapt = mixed;
        } else {
            w->cost = (srv_sched_cost){.batch_s = 0, .token_s = 1e-6};
        }
    }
    /* Submit's limits hold for every worker: the smallest budgets. Routing cuts the head batch
     * with the scheduler's budgets. */
    int32_t min_bulk = global_bulk;
    for (int32_t i = 0; i < p.n_workers; i++)
        if (s->workers[i].bulk_tokens < min_bulk) min_bulk = s->workers[i].bulk_tokens;
    (void)global_max;
    p.bulk_batch_tokens = min_bulk;
    if (p.max_batch_tokens < min_bulk) p.max_batch_tokens = min_bulk;
    p.workers = NULL; /* the caller's array need not outlive this call */
    s->p = p;
    for (int32_t i = 0; i < p.n_workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            srv_sched_free(s);
            return sched_fail(err, SEMBED_ERR_NOMEM, "cannot start a worker thread");
        }
        s->workers[i].started = true;
    }
    *out = s;
    return SEMBED_OK;
}

srv_sched_admit srv_sched_submit(srv_sched *s, srv_sched_job *j) {
    if (!s || !j || j->n < 1 || j->n > s->p.max_queue_texts || !j->texts || !j->lens ||
        !j->n_tokens || !j->out || (j->ids && !j->n_ids) || j->opts.dimensions < 0 ||
        j->opts.dimensions > s->dim)
        return SRV_SCHED_INVALID;
    int64_t total = 0;
    for (int32_t i = 0; i < j->n; i++) {
        if (j->n_tokens[i] < 1 || j->n_tokens[i] > s->p.bulk_batch_tokens)
            return SRV_SCHED_INVALID;
        total += j->n_tokens[i];
    }
    j->stride = j->opts.dimensions ? j->opts.dimensions : s->dim;
    j->status = SEMBED_OK;
    j->err.status = SEMBED_OK;
    j->err.msg[0] = '\0';
    j->queue_s = j->encode_s = 0;
    j->worker = -1;
    j->done = false;
    j->next = j->n_done = 0;
    j->total_tokens = total > INT32_MAX ? INT32_MAX : (int32_t)total;
    j->small = total <= s->p.small_tokens;
    j->t_submit = now_s();
    pthread_mutex_lock(&s->mu);
    if (s->stop || s->st.queued_texts + j->n > s->p.max_queue_texts) {
        s->st.refused++;
        pthread_mutex_unlock(&s->mu);
        return SRV_SCHED_FULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    s->st.queued_texts += j->n;
    q_push(j->small ? &s->small : &s->bulk, j);
    pthread_cond_broadcast(&s->work_cv); /* the query lane must not swallow a bulk wake-up */
    pthread_mutex_unlock(&s->mu);
    return SRV_SCHED_ADMITTED;
}

void srv_sched_wait(srv_sched_job *j) {
    pthread_mutex_lock(&j->mu);
    while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
}

bool srv_sched_wait_for(srv_sched_job *j, double timeout_s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const long ns = ts.tv_nsec + (long)((timeout_s - (double)(long)timeout_s) * 1e9);
    ts.tv_sec += (time_t)timeout_s + ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&j->mu);
    while (!j->done)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) != 0) break;
    const bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    return done;
}

void srv_sched_cancel(srv_sched *s, srv_sched_job *j) {
    pthread_mutex_lock(&s->mu);
    const int32_t left = j->n - j->next;
    if (left > 0) { /* still queued: unlink it */
        queue *q = j->small ? &s->small : &s->bulk;
        srv_sched_job *prev = NULL;
        for (srv_sched_job *it = q->head; it && it != j; it = it->qnext) prev = it;
        if (prev) prev->qnext = j->qnext;
        else q->head = j->qnext;
        if (q->tail == j) q->tail = prev;
        j->qnext = NULL;
        j->next = j->n;
        s->st.queued_texts -= left;
    }
    pthread_mutex_unlock(&s->mu);
    if (left <= 0) return;
    pthread_mutex_lock(&j->mu);
    if (j->status == SEMBED_OK) {
        j->status = SEMBED_ERR_INPUT;
        j->err.status = SEMBED_ERR_INPUT;
        snprintf(j->err.msg, sizeof j->err.msg, "cancelled: the client went away");
    }
    j->n_done += left;
    if (j->n_done == j->n) {
        j->done = true;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

void srv_sched_get_stats(srv_sched *s, srv_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

int32_t srv_sched_max_queue(const srv_sched *s) { return s->p.max_queue_texts; }
int32_t srv_sched_n_workers(const srv_sched *s) { return s->n_workers; }

const char *srv_sched_worker_device(const srv_sched *s, int32_t i, srv_sched_cost *cost) {
    if (i < 0 || i >= s->n_workers) return NULL;
    if (cost) { /* workers update measured costs under the lock */
        pthread_mutex_t *mu = (pthread_mutex_t *)&s->mu;
        pthread_mutex_lock(mu);
        *cost = s->workers[i].cost;
        pthread_mutex_unlock(mu);
    }
    return s->workers[i].device;
}
