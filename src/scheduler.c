/* scheduler.c — queues of requests packed into batches by a token budget, small requests ahead
 * of bulk ones; each worker owns a sembed_ctx and runs one sembed_encode per batch.
 * Not an encoder: batch invariance of sembed_encode is what lets texts of different requests
 * share a batch and still get the vector they would get alone. */
#include "scheduler.h"

#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct queue {
    sembed__sched_job *head, *tail;
} queue;

typedef struct worker {
    sembed__sched *s;
    sembed_ctx *ctx;
    pthread_t thread;
    bool started;
    bool small_only; /* the query lane */
    /* the batch being built, (max_batch_texts) each */
    const char **texts;
    size_t *lens;
    sembed__sched_job **jobs;
    int32_t *index; /* text index inside its job */
    float *out;     /* (max_batch_texts, dim) */
    sembed_encode_info *info;
} worker;

struct sembed__sched {
    const sembed_model *model;
    sembed__sched_params p;
    int32_t dim;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    queue small, bulk;
    bool stop;
    int32_t n_workers;
    worker *workers;
    sembed__sched_stats st;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int hist_bucket(int64_t v) {
    int b = 0;
    while (b < SEMBED__SCHED_HIST - 1 && ((int64_t)1 << b) < v) b++;
    return b;
}

static void q_push(queue *q, sembed__sched_job *j) {
    j->qnext = NULL;
    if (q->tail) q->tail->qnext = j;
    else q->head = j;
    q->tail = j;
}

static void q_pop(queue *q) {
    sembed__sched_job *j = q->head;
    q->head = j->qnext;
    if (!q->head) q->tail = NULL;
    j->qnext = NULL;
}

/* Takes texts from the head of q, in order, while they fit the budget. Returns false when the
 * head's next text does not fit (the batch is full for this queue). */
static bool take(sembed__sched *s, worker *w, queue *q, int32_t *S, int32_t *T, int32_t budget,
                 double t) {
    while (q->head) {
        sembed__sched_job *j = q->head;
        while (j->next < j->n) {
            const int32_t nt = j->n_tokens[j->next];
            if (*S >= s->p.max_batch_texts || *T + nt > budget) return false;
            if (j->next == 0) j->queue_s = t - j->t_submit;
            w->texts[*S] = j->texts[j->next];
            w->lens[*S] = j->lens[j->next];
            w->jobs[*S] = j;
            w->index[*S] = j->next;
            *T += nt;
            (*S)++;
            j->next++;
        }
        q_pop(q);
    }
    return true;
}

static void finish_text(sembed__sched *s, sembed__sched_job *j, int32_t k, const float *vec,
                        const sembed_encode_info *info, sembed_status st, const sembed_error *e,
                        double encode_s) {
    if (st == SEMBED_OK) {
        memcpy(j->out + (int64_t)k * s->dim, vec, sizeof(float) * (size_t)s->dim);
        if (j->info) j->info[k] = *info;
    }
    pthread_mutex_lock(&j->mu);
    if (st != SEMBED_OK && j->status == SEMBED_OK) {
        j->status = st;
        j->err = *e;
    }
    j->encode_s += encode_s;
    if (++j->n_done == j->n) {
        j->done = true;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    sembed__sched *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->small.head && (w->small_only || !s->bulk.head) && !s->stop)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->small.head && (w->small_only || !s->bulk.head)) break; /* stopping, none left */
        /* Small requests first, then bulk texts while the (smaller) bulk budget allows. */
        int32_t S = 0, T = 0;
        const double t = now_s();
        if (take(s, w, &s->small, &S, &T, s->p.max_batch_tokens, t) && !w->small_only)
            take(s, w, &s->bulk, &S, &T, s->bulk.head ? s->p.bulk_batch_tokens : 0, t);
        if (S == 0) /* unreachable: a text always fits an empty batch */
            take(s, w, &s->bulk, &S, &T, s->p.max_batch_tokens, t);
        SEMBED_ASSERT(S > 0);
        pthread_mutex_unlock(&s->mu);

        sembed_error e = {0};
        const double t0 = now_s();
        sembed_status st = sembed_encode(w->ctx, S, w->texts, w->lens, w->out,
                                         (int64_t)S * s->dim, w->info, &e);
        const double dt = now_s() - t0;
        if (st == SEMBED_OK) {
            for (int32_t i = 0; i < S; i++)
                finish_text(s, w->jobs[i], w->index[i], w->out + (int64_t)i * s->dim, &w->info[i],
                            SEMBED_OK, NULL, dt);
        } else {
            /* One bad text must not fail its neighbours: encode each alone. */
            for (int32_t i = 0; i < S; i++) {
                sembed_error e1 = {0};
                sembed_status s1 = sembed_encode(w->ctx, 1, &w->texts[i], &w->lens[i], w->out,
                                                 s->dim, w->info, &e1);
                if (s1 != SEMBED_OK)
                    sembed__err(&e1, s1, "input %d: %s", w->index[i],
                                e1.msg[0] ? e1.msg : sembed_status_str(s1));
                finish_text(s, w->jobs[i], w->index[i], w->out, w->info, s1, &e1, dt);
            }
        }

        pthread_mutex_lock(&s->mu);
        s->st.queued_texts -= S;
        s->st.batches++;
        s->st.batch_texts += S;
        s->st.batch_tokens += T;
        s->st.hist_texts[hist_bucket(S)]++;
        s->st.hist_tokens[hist_bucket(T)]++;
        s->st.encode_s += dt;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void worker_free_bufs(worker *w) {
    sembed_ctx_free(w->ctx);
    sembed__free(w->texts);
    sembed__free(w->lens);
    sembed__free(w->jobs);
    sembed__free(w->index);
    sembed__free(w->out);
    sembed__free(w->info);
}

void sembed__sched_free(sembed__sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int32_t i = 0; i < s->n_workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    for (int32_t i = 0; i < s->n_workers; i++) worker_free_bufs(&s->workers[i]);
    sembed__free(s->workers);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->mu);
    sembed__free(s);
}

sembed_status sembed__sched_new(const sembed_model *model, const sembed__sched_params *params,
                                sembed__sched **out, sembed_error *err) {
    if (!model || !params || !out)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed__sched_new: NULL argument");
    *out = NULL;
    sembed__sched_params p = *params;
    if (p.n_workers < 0 || p.n_workers > 64 || p.n_threads < 0 || p.max_batch_tokens < 0 ||
        p.max_batch_texts < 0 || p.bulk_batch_tokens < 0 || p.max_queue_texts < 0 ||
        p.small_tokens < 0 || p.max_batch_tokens > (1 << 24) || p.max_batch_texts > (1 << 20))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "scheduler: invalid params");
    const int32_t R = sembed_model_max_length(model);
    if (p.n_workers == 0) p.n_workers = 1;
    if (p.n_threads == 0) p.n_threads = sembed__n_cpus() / p.n_workers > 0 ? sembed__n_cpus() / p.n_workers : 1;
    if (p.max_batch_tokens == 0) p.max_batch_tokens = 2048;
    if (p.max_batch_tokens < R) p.max_batch_tokens = R;
    if (p.max_batch_texts == 0) p.max_batch_texts = 256;
    if (p.bulk_batch_tokens == 0 || p.bulk_batch_tokens > p.max_batch_tokens)
        p.bulk_batch_tokens = p.max_batch_tokens;
    if (p.bulk_batch_tokens < R) p.bulk_batch_tokens = R;
    if (p.max_queue_texts == 0) p.max_queue_texts = 4096;
    if (p.small_tokens == 0) p.small_tokens = 128;

    sembed__sched *s = sembed__calloc(1, sizeof *s);
    if (!s) return sembed__err(err, SEMBED_ERR_NOMEM, "scheduler: out of memory");
    s->model = model;
    s->p = p;
    s->dim = sembed_model_dim(model);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    s->workers = sembed__calloc((size_t)p.n_workers, sizeof(worker));
    if (!s->workers) {
        sembed__sched_free(s);
        return sembed__err(err, SEMBED_ERR_NOMEM, "scheduler: out of memory");
    }
    s->n_workers = p.n_workers;
    const size_t B = (size_t)p.max_batch_texts;
    for (int32_t i = 0; i < p.n_workers; i++) {
        worker *w = &s->workers[i];
        w->s = s;
        w->small_only = p.query_lane && p.n_workers >= 2 && i == 0;
        sembed_ctx_params cp = sembed_ctx_default_params();
        cp.n_threads = p.n_threads;
        cp.max_batch_tokens = p.max_batch_tokens;
        cp.max_batch_texts = p.max_batch_texts;
        sembed_status st = sembed_ctx_new(model, &cp, &w->ctx, err);
        if (st != SEMBED_OK) {
            sembed__sched_free(s);
            return st;
        }
        w->texts = sembed__calloc(B, sizeof(char *));
        w->lens = sembed__calloc(B, sizeof(size_t));
        w->jobs = sembed__calloc(B, sizeof(sembed__sched_job *));
        w->index = sembed__calloc(B, sizeof(int32_t));
        w->out = sembed__calloc(B * (size_t)s->dim, sizeof(float));
        w->info = sembed__calloc(B, sizeof(sembed_encode_info));
        if (!w->texts || !w->lens || !w->jobs || !w->index || !w->out || !w->info) {
            sembed__sched_free(s);
            return sembed__err(err, SEMBED_ERR_NOMEM, "scheduler: out of memory");
        }
    }
    for (int32_t i = 0; i < p.n_workers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            sembed__sched_free(s);
            return sembed__err(err, SEMBED_ERR_NOMEM, "scheduler: cannot start a worker thread");
        }
        s->workers[i].started = true;
    }
    *out = s;
    return SEMBED_OK;
}

sembed__sched_admit sembed__sched_submit(sembed__sched *s, sembed__sched_job *j) {
    if (!s || !j || j->n < 1 || j->n > s->p.max_queue_texts || !j->texts || !j->lens ||
        !j->n_tokens || !j->out)
        return SEMBED__SCHED_INVALID;
    int64_t total = 0;
    for (int32_t i = 0; i < j->n; i++) {
        if (j->n_tokens[i] < 1 || j->n_tokens[i] > s->p.bulk_batch_tokens)
            return SEMBED__SCHED_INVALID;
        total += j->n_tokens[i];
    }
    j->status = SEMBED_OK;
    j->err.status = SEMBED_OK;
    j->err.msg[0] = '\0';
    j->queue_s = j->encode_s = 0;
    j->done = false;
    j->next = j->n_done = 0;
    j->total_tokens = total > INT32_MAX ? INT32_MAX : (int32_t)total;
    j->small = total <= s->p.small_tokens;
    j->t_submit = now_s();
    pthread_mutex_lock(&s->mu);
    if (s->stop || s->st.queued_texts + j->n > s->p.max_queue_texts) {
        s->st.refused++;
        pthread_mutex_unlock(&s->mu);
        return SEMBED__SCHED_FULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    s->st.queued_texts += j->n;
    q_push(j->small ? &s->small : &s->bulk, j);
    pthread_cond_broadcast(&s->work_cv); /* the query lane must not swallow a bulk wake-up */
    pthread_mutex_unlock(&s->mu);
    return SEMBED__SCHED_ADMITTED;
}

void sembed__sched_wait(sembed__sched_job *j) {
    pthread_mutex_lock(&j->mu);
    while (!j->done) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
}

bool sembed__sched_wait_for(sembed__sched_job *j, double timeout_s) {
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

void sembed__sched_cancel(sembed__sched *s, sembed__sched_job *j) {
    pthread_mutex_lock(&s->mu);
    const int32_t left = j->n - j->next;
    if (left > 0) { /* still queued: unlink it */
        queue *q = j->small ? &s->small : &s->bulk;
        sembed__sched_job *prev = NULL;
        for (sembed__sched_job *it = q->head; it && it != j; it = it->qnext) prev = it;
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

void sembed__sched_get_stats(sembed__sched *s, sembed__sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

int32_t sembed__sched_max_queue(const sembed__sched *s) { return s->p.max_queue_texts; }
