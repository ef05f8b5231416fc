/* cpu/pool.c — a fixed pool of worker threads that run an op's tasks by index. The pool's own
 * mutex and condition variables hand work out and collect it; the ops themselves take no locks.
 * Not a general task queue: one run at a time, from one thread (the owning context's). */
#include "backend.h"

#include <pthread.h>
#include <stdbool.h>

struct sembed__pool {
    int32_t n_threads;
    int32_t n_started; /* workers actually running (threads 1..n_started) */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t go;
    pthread_cond_t done;
    uint64_t generation; /* bumped per run */
    int32_t pending;     /* workers that have not finished the current run */
    bool stop;
    sembed__pool_fn fn;
    void *arg;
    int32_t n_tasks;
};

typedef struct worker_arg {
    sembed__pool *p;
    int32_t id;
} worker_arg;

static void run_share(sembed__pool_fn fn, void *arg, int32_t n_tasks, int32_t id, int32_t n) {
    for (int32_t t = id; t < n_tasks; t += n) fn(arg, t, n_tasks, id);
}

static void *worker_main(void *v) {
    sembed__pool *p = ((worker_arg *)v)->p;
    int32_t id = ((worker_arg *)v)->id;
    sembed__free(v);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        sembed__pool_fn fn = p->fn;
        void *arg = p->arg;
        int32_t n_tasks = p->n_tasks, n = p->n_threads;
        pthread_mutex_unlock(&p->mu);
        run_share(fn, arg, n_tasks, id, n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

sembed_status sembed__pool_new(int32_t n_threads, sembed__pool **out, sembed_error *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "n_threads %d is outside 1..1024",
                           n_threads);
    sembed__pool *p = sembed__calloc(1, sizeof *p);
    if (!p) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory creating a thread pool");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = sembed__calloc((size_t)n_threads, sizeof *p->threads);
        if (!p->threads) {
            sembed__pool_free(p);
            return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory creating a thread pool");
        }
        for (int32_t i = 1; i < n_threads; i++) {
            worker_arg *wa = sembed__malloc(sizeof *wa);
            if (!wa) {
                sembed__pool_free(p);
                return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory creating a thread pool");
            }
            wa->p = p;
            wa->id = i;
            if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
                sembed__free(wa);
                sembed__pool_free(p);
                return sembed__err(err, SEMBED_ERR_BACKEND, "cannot start thread %d of %d", i,
                                   n_threads);
            }
            p->n_started = i;
        }
    }
    *out = p;
    return SEMBED_OK;
}

void sembed__pool_free(sembed__pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int32_t i = 1; i <= p->n_started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    sembed__free(p->threads);
    sembed__free(p);
}

int32_t sembed__pool_threads(const sembed__pool *p) { return p ? p->n_threads : 1; }

void sembed__pool_run(sembed__pool *p, sembed__pool_fn fn, void *arg, int32_t n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        run_share(fn, arg, n_tasks, 0, 1);
        return;
    }
    SEMBED_ASSERT(p->n_started == p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_share(fn, arg, n_tasks, 0, p->n_threads);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
