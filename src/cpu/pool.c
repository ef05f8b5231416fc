/* cpu/pool.c — a fixed pool of worker threads that run an op's tasks by index. A run is handed
 * out by bumping an atomic generation and collected by an atomic count of workers still busy;
 * both sides spin on these for a while (SPIN_US) before they sleep on the pool's condition
 * variables, because a forward pass is dozens of short runs back to back: waking a sleeping
 * thread through the kernel cost 20-50 µs a run on the 2-core dev VM, half of a query's time.
 * The ops themselves take no locks. Not a general task queue: one run at a time, from one
 * thread (the owning context's).
 *
 * No lost wake-up: a worker about to sleep counts itself in `sleepers` and re-reads the
 * generation under the mutex; the caller publishes the generation before it reads `sleepers`
 * (both sequentially consistent), so either the worker sees the new run or the caller sees the
 * sleeper and broadcasts under the mutex. The same pairing holds for the caller's sleep on
 * `pending` (caller_sleeping). */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long a thread spins for the next run (a worker) or for the run's end (the caller) before
 * it sleeps; SEMBED_POOL_SPIN_US overrides it (0: always sleep at once). On the dev VM a
 * MiniLM query took 1.37 ms p50 with 100 or 300 µs of spin and 4.3 ms with none; with a busy
 * process beside it on the same 2 cores, 4.1 ms with 100 µs and 2.4 ms with none: where the
 * cores are shared with other busy work, 0 is the better setting. */
#define SPIN_US_DEFAULT 100
#define YIELD_AFTER_NS 20000

struct sembed__pool {
    int32_t n_threads;
    int32_t n_started; /* workers actually running (threads 1..n_started) */
    int64_t spin_ns;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t go;
    pthread_cond_t done;
    _Atomic uint64_t generation; /* bumped per run */
    _Atomic int32_t pending;     /* workers that have not finished the current run */
    _Atomic int32_t sleepers;    /* workers waiting on `go` */
    _Atomic int32_t caller_sleeping;
    _Atomic bool stop;
    _Atomic int32_t next; /* the run's next unclaimed task */
    /* the run: written by the caller before the generation is bumped */
    sembed__pool_fn fn;
    void *arg;
    int32_t n_tasks;
};

typedef struct worker_arg {
    sembed__pool *p;
    int32_t id;
} worker_arg;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until pred(p, v) holds or the pool's spin time passes; true if it holds. */
static bool spin_until(sembed__pool *p, bool (*pred)(sembed__pool *, uint64_t), uint64_t v) {
    if (pred(p, v)) return true;
    if (p->spin_ns <= 0) return false;
    const int64_t start = now_ns(), end = start + p->spin_ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            CPU_RELAX();
            if (pred(p, v)) return true;
        }
        const int64_t t = now_ns();
        if (t >= end) return false;
        /* past the first stretch, give the CPU to any thread waiting for it (perhaps the one
         * this thread waits on: with more runnable threads than cores, pure spinning took a
         * query's p99 from 3 to 35 ms on the dev VM) */
        if (t - start > YIELD_AFTER_NS) sched_yield();
    }
}

static bool new_run(sembed__pool *p, uint64_t seen) {
    return atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->stop, memory_order_acquire);
}

static bool run_done(sembed__pool *p, uint64_t unused) {
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

/* Claims tasks until none is left: a thread that starts late (woken, or descheduled) takes
 * fewer, so a run ends when the work does. Which thread runs a task changes nothing but the
 * scratch it uses: tasks write disjoint outputs and reduce in a fixed order inside. */
static void run_share(sembed__pool *p, sembed__pool_fn fn, void *arg, int32_t n_tasks, int32_t id) {
    for (;;) {
        const int32_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n_tasks) return;
        fn(arg, t, n_tasks, id);
    }
}

static void *worker_main(void *v) {
    sembed__pool *p = ((worker_arg *)v)->p;
    int32_t id = ((worker_arg *)v)->id;
    sembed__free(v);
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(p, new_run, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->go, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_share(p, p->fn, p->arg, p->n_tasks, id);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

sembed_status sembed__pool_new(int32_t n_threads, sembed__pool **out, sembed_error *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "n_threads %d is outside 1..1024",
                           n_threads);
    int64_t spin_us = SPIN_US_DEFAULT;
    const char *env = getenv("SEMBED_POOL_SPIN_US");
    if (env && *env) {
        char *end;
        errno = 0;
        const long long v = strtoll(env, &end, 10);
        if (*end != '\0' || errno || v < 0 || v > 1000000)
            return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                               "SEMBED_POOL_SPIN_US is '%.40s': expected microseconds, an "
                               "integer in 0..1000000",
                               env);
        spin_us = v;
    }
    sembed__pool *p = sembed__calloc(1, sizeof *p);
    if (!p) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory creating a thread pool");
    p->n_threads = n_threads;
    p->spin_ns = spin_us * 1000;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->next, 0);
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
    atomic_store(&p->stop, true);
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
        for (int32_t t = 0; t < n_tasks; t++) fn(arg, t, n_tasks, 0);
        return;
    }
    SEMBED_ASSERT(p->n_started == p->n_threads - 1);
    SEMBED_ASSERT(atomic_load(&p->pending) == 0);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_store(&p->next, 0);
    atomic_fetch_add(&p->generation, 1); /* publishes fn, arg, n_tasks, next (seq_cst) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    run_share(p, fn, arg, n_tasks, 0);
    if (!spin_until(p, run_done, 0)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeping, 1);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_sleeping, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
