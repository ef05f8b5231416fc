/* embed_in.h — the input side of `sembed embed`: a thread that reads and parses the next batch of
 * texts (lines, JSON lines, or the command line's arguments) while the caller encodes the one
 * before. On a GPU the encoder
 * takes a batch of 8192 texts in ~30 ms; reading and parsing its lines on the same thread left
 * the GPU idle for a part of that. */
#ifndef SEMBED_EMBED_IN_H
#define SEMBED_EMBED_IN_H

#include "cli.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* One batch of texts read. */
typedef struct embed_in_batch {
    char **texts;  /* (cap) malloc'ed texts */
    size_t *lens;  /* (cap) */
    int32_t n;     /* texts in it */
    int64_t bytes; /* their bytes */
    bool bad;      /* the input's next line (after these n) is not a text: a JSON line that is
                      not a string or an object with a "text" string */
    bool oom;      /* memory ran out for the next text */
    bool end;      /* nothing follows this batch */
    bool full;     /* read, not yet released */
} embed_in_batch;

typedef struct embed_in {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
    embed_in_batch b[2];
    int next_fill, next_take;
    cli_lines *r;        /* the lines, or */
    char **argv;         /* texts given as they are (argv[0 .. argc-1]) */
    int argc, argi;
    bool jsonl;
    bool no_ahead; /* SEMBED_READ_AHEAD=0 (for measurements): no reading while a batch encodes */
    int32_t cap;
} embed_in;

/* Reads r (JSON lines when jsonl), or when argv is not NULL takes the argc texts of argv, in
 * batches of up to cap texts on a thread of its own. False, with a message on stderr, when
 * memory or the thread cannot be had. */
bool embed_in_start(embed_in *in, cli_lines *r, char **argv, int argc, bool jsonl, int32_t cap);
/* The next batch, in input order (waits for it). After one with bad, oom or end set, there is
 * none. */
embed_in_batch *embed_in_take(embed_in *in);
/* Frees the batch's texts and hands it back to the reader. */
void embed_in_release(embed_in *in, embed_in_batch *b);
/* Stops the reader and frees everything. A read in progress is let finish: on a pipe that may
 * mean waiting for its next line. */
void embed_in_stop(embed_in *in);

#endif
