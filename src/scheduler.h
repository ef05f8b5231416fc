/* scheduler.h — the request scheduler: the texts of concurrent requests wait in two queues
 * (small requests, i.e. queries, ahead of bulk ones) and are packed into batches by a token
 * budget, each batch one sembed_encode call on a context the scheduler owns.
 * Not an HTTP layer and not an encoder; internal (sembed__), used by `sembed serve`. */
#ifndef SEMBED_SCHEDULER_H
#define SEMBED_SCHEDULER_H

#include "sembed.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct sembed__sched sembed__sched;

typedef struct sembed__sched_params {
    int32_t n_workers;         /* contexts, one thread each. 0: 1 */
    int32_t n_threads;         /* threads of each context. 0: online CPUs / n_workers */
    int32_t max_batch_tokens;  /* token budget of a batch. 0: 2048; raised to the max length */
    int32_t max_batch_texts;   /* texts in a batch. 0: 256 */
    int32_t bulk_batch_tokens; /* token budget of a batch that carries bulk texts; smaller keeps
                                  a query's wait behind a bulk batch short. 0: max_batch_tokens */
    int32_t max_queue_texts;   /* texts admitted and not yet finished, beyond which submit
                                  refuses a request. 0: 4096 */
    int32_t small_tokens;      /* a request of at most this many tokens in all is small and goes
                                  ahead of bulk ones. 0: 128 */
    int32_t query_lane;        /* 1 (with n_workers >= 2): worker 0 takes only small requests,
                                  so a query never waits behind a bulk batch. 0: off */
} sembed__sched_params;

/* One request: n texts, encoded into out. The caller owns every pointer and keeps them alive
 * until sembed__sched_wait returns. */
typedef struct sembed__sched_job {
    /* in */
    int32_t n;
    const char *const *texts; /* (n) */
    const size_t *lens;       /* (n) bytes */
    const int32_t *n_tokens;  /* (n) tokens each text gives the encoder (after truncation) */
    float *out;               /* (n, dim) */
    sembed_encode_info *info; /* (n), or NULL */
    /* out, valid after sembed__sched_wait */
    sembed_status status;
    sembed_error err;
    double queue_s;  /* seconds from submit to the first batch that carried one of its texts */
    double encode_s; /* seconds in sembed_encode, summed over the batches that carried it */
    /* private */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bool small;
    int32_t next, n_done, total_tokens;
    double t_submit;
    struct sembed__sched_job *qnext;
} sembed__sched_job;

/* Counters, for metrics. Histograms count batches by size in buckets of powers of two: bucket b
 * holds sizes in (2^(b-1), 2^b]. */
#define SEMBED__SCHED_HIST 17
typedef struct sembed__sched_stats {
    int64_t queued_texts;   /* admitted, not finished */
    int64_t batches, batch_texts, batch_tokens;
    int64_t hist_texts[SEMBED__SCHED_HIST];
    int64_t hist_tokens[SEMBED__SCHED_HIST];
    double encode_s; /* seconds in sembed_encode, all workers */
    int64_t refused; /* requests refused for a full queue */
} sembed__sched_stats;

/* Creates the contexts and starts the workers. */
sembed_status sembed__sched_new(const sembed_model *model, const sembed__sched_params *params,
                                sembed__sched **out, sembed_error *err);
/* Finishes every admitted job, stops the workers, frees everything. NULL is a no-op. */
void sembed__sched_free(sembed__sched *s);

typedef enum sembed__sched_admit {
    SEMBED__SCHED_ADMITTED = 0,
    SEMBED__SCHED_FULL = 1,    /* the queue has no room now: retry later */
    SEMBED__SCHED_INVALID = 2, /* n < 1, a text with no tokens or more than the budget, or more
                                  texts than the queue can ever hold */
} sembed__sched_admit;

/* Queues a job (its texts may ride in several batches, with other jobs' texts). Never blocks
 * on encoding. */
sembed__sched_admit sembed__sched_submit(sembed__sched *s, sembed__sched_job *job);
/* Blocks until every text of an admitted job is encoded, then releases the job's sync state. */
void sembed__sched_wait(sembed__sched_job *job);
/* Waits up to timeout_s for the job; true when it is done (call sembed__sched_wait after). */
bool sembed__sched_wait_for(sembed__sched_job *job, double timeout_s);
/* Drops the job's texts that no batch has taken yet (its client went away); the job is done
 * once the batches already carrying its other texts finish, with status SEMBED_ERR_INPUT. */
void sembed__sched_cancel(sembed__sched *s, sembed__sched_job *job);

void sembed__sched_get_stats(sembed__sched *s, sembed__sched_stats *out);
int32_t sembed__sched_max_queue(const sembed__sched *s);

#endif
