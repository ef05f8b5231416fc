/* embed_in.c — the input side of `sembed embed` (embed_in.h): two batches, filled in turn by one
 * thread and taken in turn by the caller. */
#include "embed_in.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The input's next text into *text (malloc'ed) and *len. Returns false at the end; sets *bad
 * when a JSON line holds no text, *oom when memory ran out. */
static bool next_text(embed_in *in, char **text, size_t *len, bool *bad, bool *oom) {
    *bad = *oom = false;
    if (in->argv) {
        if (in->argi >= in->argc) return false;
        const char *a = in->argv[in->argi++];
        *len = strlen(a);
        *oom = !(*text = strdup(a));
        return true;
    }
    char *line;
    size_t n;
    if (!cli_next_line(in->r, &line, &n)) return false;
    if (n > 0 && line[n - 1] == '\r') line[--n] = 0;
    if (!in->jsonl) {
        *text = malloc(n + 1);
        *oom = !*text;
        if (*text) memcpy(*text, line, n + 1), *len = n;
        return true;
    }
    if (!cli_json_text(line, n, text, len)) *bad = true;
    return true;
}

/* Fills b from the input: up to cap texts, stopping at the end or at a line that is no text. */
static void fill(embed_in *in, embed_in_batch *b) {
    b->n = 0, b->bytes = 0, b->bad = b->oom = b->end = false;
    while (b->n < in->cap) {
        /* a stop waits for one line at the most (a pipe whose writer is slow) */
        if (__atomic_load_n(&in->stopping, __ATOMIC_RELAXED)) return;
        if (!next_text(in, &b->texts[b->n], &b->lens[b->n], &b->bad, &b->oom)) {
            b->end = true;
            return;
        }
        if (b->bad || b->oom) return;
        b->bytes += (int64_t)b->lens[b->n];
        b->n++;
    }
}

static void *reader_thread(void *v) {
    embed_in *in = v;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        embed_in_batch *b = &in->b[in->next_fill];
        /* read-ahead off: the next batch only once the caller is done with the last */
        while ((b->full || (in->no_ahead && in->b[in->next_fill ^ 1].full)) && !in->stopping)
            pthread_cond_wait(&in->cv, &in->mu);
        if (in->stopping) break;
        pthread_mutex_unlock(&in->mu);
        fill(in, b);
        pthread_mutex_lock(&in->mu);
        b->full = true;
        in->next_fill ^= 1;
        pthread_cond_broadcast(&in->cv);
        if (b->end || b->bad || b->oom) break; /* nothing more to read */
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

static void free_texts(embed_in_batch *b) {
    for (int32_t i = 0; i < b->n; i++) free(b->texts[i]);
    b->n = 0;
}

bool embed_in_start(embed_in *in, cli_lines *r, char **argv, int argc, bool jsonl, int32_t cap) {
    memset(in, 0, sizeof *in);
    in->r = r, in->argv = argv, in->argc = argc, in->jsonl = jsonl, in->cap = cap;
    const char *ra = getenv("SEMBED_READ_AHEAD");
    in->no_ahead = ra && strcmp(ra, "0") == 0;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        in->b[i].texts = calloc((size_t)cap, sizeof(char *));
        in->b[i].lens = calloc((size_t)cap, sizeof(size_t));
        ok = ok && in->b[i].texts && in->b[i].lens;
    }
    if (!ok) {
        fprintf(stderr, "sembed embed: out of memory\n");
        embed_in_stop(in);
        return false;
    }
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    if (pthread_create(&in->thread, NULL, reader_thread, in) != 0) {
        fprintf(stderr, "sembed embed: cannot start the input thread\n");
        pthread_cond_destroy(&in->cv);
        pthread_mutex_destroy(&in->mu);
        embed_in_stop(in);
        return false;
    }
    in->started = true;
    return true;
}

embed_in_batch *embed_in_take(embed_in *in) {
    pthread_mutex_lock(&in->mu);
    embed_in_batch *b = &in->b[in->next_take];
    while (!b->full) pthread_cond_wait(&in->cv, &in->mu);
    in->next_take ^= 1;
    pthread_mutex_unlock(&in->mu);
    return b;
}

void embed_in_release(embed_in *in, embed_in_batch *b) {
    free_texts(b);
    pthread_mutex_lock(&in->mu);
    b->full = false;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

void embed_in_stop(embed_in *in) {
    if (in->started) {
        pthread_mutex_lock(&in->mu);
        __atomic_store_n(&in->stopping, true, __ATOMIC_RELAXED);
        pthread_cond_broadcast(&in->cv);
        pthread_mutex_unlock(&in->mu);
        pthread_join(in->thread, NULL); /* a read in progress finishes first */
        pthread_cond_destroy(&in->cv);
        pthread_mutex_destroy(&in->mu);
        in->started = false;
    }
    for (int i = 0; i < 2; i++) {
        if (in->b[i].texts) free_texts(&in->b[i]);
        free(in->b[i].texts), free(in->b[i].lens);
        in->b[i].texts = NULL, in->b[i].lens = NULL;
    }
}
