/* serve_sched.h — the scheduler of `sembed serve`: the inputs of concurrent requests wait in two
 * queues (small requests, i.e. queries, ahead of bulk ones) and are packed into batches by a
 * token budget; each batch is one encode call on a worker's context (CPU or GPU), the worker
 * chosen from per-token costs. Not an HTTP layer and not an encoder; part of the tool, built on
 * the public API only. */
#ifndef SEMBED_SERVE_SCHED_H
#define SEMBED_SERVE_SCHED_H

#include "sembed.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct srv_sched srv_sched;

/* What a batch of T tokens is expected to cost on a worker: batch_s + T * token_s seconds. */
typedef struct srv_sched_cost {
    double batch_s; /* fixed cost of one encode call (launches, copies, thread wake-ups) */
    double token_s; /* cost per token */
} srv_sched_cost;

typedef struct srv_sched_worker_params {
    const char *device;        /* "cpu", "cuda", "cuda:N". NULL: "cpu" */
    sembed_precision precision; /* the context's (sembed_ctx_params.precision) */
    int32_t n_threads;         /* threads of the context. 0: online CPUs / CPU workers (CPU),
                                  online CPUs (GPU: they tokenize) */
    int32_t max_batch_tokens;  /* 0: the scheduler's */
    int32_t bulk_batch_tokens; /* 0: the scheduler's */
    bool small_only;           /* the query lane: takes only small requests */
    int32_t nice;              /* > 0: the worker's thread runs at this nice value, below the
                                  query lane and the connection threads (bulk workers) */
    srv_sched_cost cost;       /* {0, 0}: measured at start when the workers' devices differ
                                  (or with srv_sched_params.calibrate), else equal for all.
                                  Measured costs of mixed devices then follow a moving average
                                  of what batches take; given ones stay as given */
} srv_sched_worker_params;

typedef struct srv_sched_params {
    int32_t n_workers;                        /* contexts, one thread each; 1 to 64 */
    const srv_sched_worker_params *workers;   /* (n_workers); NULL: all CPU, defaults */
    int32_t max_batch_tokens;  /* token budget of a batch. 0: 2048; raised to the max length */
    int32_t max_batch_texts;   /* inputs in a batch. 0: 256 */
    int32_t bulk_batch_tokens; /* token budget of a batch that carries bulk inputs; smaller keeps
                                  a query's wait behind a bulk batch short. 0: max_batch_tokens */
    int32_t max_queue_texts;   /* inputs admitted and not yet finished, beyond which submit
                                  refuses a request. 0: 4096 */
    int32_t small_tokens;      /* a request of at most this many tokens in all is small and goes
                                  ahead of bulk ones. 0: 128 */
    bool calibrate;            /* measure every worker's cost at start even if devices agree */
} srv_sched_params;

/* One request: n inputs, each a text (texts[i]) or token ids (ids[i], when ids and ids[i] are
 * non-NULL), encoded into out with the request's options. The caller owns every pointer and
 * keeps them alive until srv_sched_wait returns. */
typedef struct srv_sched_job {
    /* in */
    int32_t n;
    const char *const *texts;    /* (n) */
    const size_t *lens;          /* (n) bytes */
    const int32_t *const *ids;   /* (n) or NULL; an input with ids[i] != NULL is token ids */
    const int32_t *n_ids;        /* (n) when ids is given */
    const int32_t *n_tokens;     /* (n) tokens each input gives the encoder (after truncation) */
    sembed_encode_opts opts;     /* prompt (texts only) and dimensions, for every input */
    float *out;                  /* (n, opts.dimensions or the model's dimension) */
    sembed_encode_info *info;    /* (n), or NULL */
    /* out, valid after srv_sched_wait */
    sembed_status status;
    sembed_error err;
    double queue_s;  /* seconds from submit to the first batch that carried one of its inputs */
    double encode_s; /* seconds in encode calls, summed over the batches that carried it */
    int32_t worker;  /* the worker of the last batch that carried one of its inputs */
    /* private */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bool small;
    int32_t next, n_done, total_tokens, stride;
    double t_submit;
    struct srv_sched_job *qnext;
} srv_sched_job;

/* Counters, for metrics. Histograms count batches by size in buckets of powers of two: bucket b
 * holds sizes in (2^(b-1), 2^b]. */
#define SRV_SCHED_HIST 17
#define SRV_SCHED_MAX_WORKERS 64
typedef struct srv_sched_stats {
    int64_t queued_texts; /* admitted, not finished */
    int64_t batches, batch_texts, batch_tokens;
    int64_t hist_texts[SRV_SCHED_HIST];
    int64_t hist_tokens[SRV_SCHED_HIST];
    double encode_s; /* seconds in encode calls, all workers */
    int64_t refused; /* requests refused for a full queue */
    int32_t n_workers;
    struct {
        int64_t batches, texts, tokens;
        double encode_s;
    } worker[SRV_SCHED_MAX_WORKERS];
} srv_sched_stats;

/* Creates the contexts, measures costs where needed, and starts the workers. */
sembed_status srv_sched_new(const sembed_model *model, const srv_sched_params *params,
                            srv_sched **out, sembed_error *err);
/* Finishes every admitted job, stops the workers, frees everything. NULL is a no-op. */
void srv_sched_free(srv_sched *s);

typedef enum srv_sched_admit {
    SRV_SCHED_ADMITTED = 0,
    SRV_SCHED_FULL = 1,    /* the queue has no room now: retry later */
    SRV_SCHED_INVALID = 2, /* n < 1, an input with no tokens or more than a budget, or more
                              inputs than the queue can ever hold */
} srv_sched_admit;

/* Queues a job (its inputs may ride in several batches, with other jobs' inputs). Never blocks
 * on encoding. */
srv_sched_admit srv_sched_submit(srv_sched *s, srv_sched_job *job);
/* Blocks until every input of an admitted job is encoded, then releases the job's sync state. */
void srv_sched_wait(srv_sched_job *job);
/* Waits up to timeout_s for the job; true when it is done (call srv_sched_wait after). */
bool srv_sched_wait_for(srv_sched_job *job, double timeout_s);
/* Drops the job's inputs that no batch has taken yet (its client went away); the job is done
 * once the batches already carrying its other inputs finish, with status SEMBED_ERR_INPUT. */
void srv_sched_cancel(srv_sched *s, srv_sched_job *job);

void srv_sched_get_stats(srv_sched *s, srv_sched_stats *out);
int32_t srv_sched_max_queue(const srv_sched *s);
int32_t srv_sched_n_workers(const srv_sched *s);
/* Worker i's device ("cpu", "cuda:0", ...) and the cost the router uses for it. */
const char *srv_sched_worker_device(const srv_sched *s, int32_t i, srv_sched_cost *cost);

/* The router, a pure function: the worker among the n (eligible[w]) that finishes a batch of
 * `tokens` first, each starting at max(now, busy_until[w]) (busy_until[w] < 0: idle) and taking
 * costs[w].batch_s + tokens * costs[w].token_s. Ties go to an idle worker, then the lower
 * index. -1 when none is eligible. */
int32_t srv_sched_route(int32_t n, const srv_sched_cost *costs, const double *busy_until,
                        const bool *eligible, double now, int32_t tokens);

#endif
