/* embed_out.h — the output side of `sembed embed`: a thread that formats and writes one batch of
 * vectors while the caller encodes the next, JSON lines formatted by several threads at once.
 * On a GPU the encoder outruns one core's formatting (cli_fmt_f32: ~54k vectors of 384 a second
 * here), so without this the tool ran at the formatter's speed with the GPU idle between batches. */
#ifndef SEMBED_EMBED_OUT_H
#define SEMBED_EMBED_OUT_H

#include "sembed.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One batch on its way out. */
typedef struct embed_out_slot {
    float *vec;                /* (cap, dim) */
    sembed_encode_info *info;  /* (cap) */
    int32_t n;                 /* vectors in it */
    int64_t first;             /* the index of its first text */
    bool full;                 /* handed to the writer, not yet written */
} embed_out_slot;

typedef struct embed_out {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, closing, failed;
    embed_out_slot slot[2];
    int next_fill, next_write;
    FILE *f;
    bool jsonl; /* else raw float32 (also the body of .npy) */
    int32_t dim, n_fmt;
    char *buf[8]; /* one per formatting thread: (cap / n_fmt + 1) lines */
} embed_out;

/* Up to 8 formatting threads (JSON lines only); cap vectors per batch. Returns false (with a
 * message on stderr) when memory or a thread cannot be had. */
bool embed_out_start(embed_out *w, FILE *f, bool jsonl, int32_t dim, int32_t cap, int n_fmt);
/* The next slot to fill (waits while both are being written); NULL once writing failed. */
embed_out_slot *embed_out_acquire(embed_out *w);
/* Hands a filled slot (n vectors from text index first) to the writer. */
void embed_out_submit(embed_out *w, embed_out_slot *s, int32_t n, int64_t first);
/* Writes what is left and stops the thread; false when a write failed (reported on stderr). */
bool embed_out_finish(embed_out *w);

#endif
