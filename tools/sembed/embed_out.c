/* embed_out.c — the output side of `sembed embed` (embed_out.h): two slots, filled in turn by the
 * caller and written in turn by one thread; JSON lines formatted in parts by up to 8 threads,
 * written in order. */
#include "embed_out.h"

#include "fmtf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LINE_EXTRA 128  /* the fields around the numbers */
#define ROUND_LINES 256 /* lines a formatting thread formats before they are written */

typedef struct part {
    const embed_out *w;
    const embed_out_slot *s;
    int32_t lo, hi; /* vectors lo..hi-1 of the slot */
    char *buf;
    size_t len;
} part;

static void format_part(part *p) {
    const int32_t dim = p->w->dim;
    char *o = p->buf;
    for (int32_t i = p->lo; i < p->hi; i++) {
        const float *v = p->s->vec + (size_t)i * (size_t)dim;
        o += sprintf(o, "{\"index\":%lld,\"embedding\":[", (long long)(p->s->first + i));
        for (int32_t k = 0; k < dim; k++) {
            if (k) *o++ = ',';
            o += cli_fmt_f32(o, v[k]);
        }
        o += sprintf(o, "],\"n_tokens\":%d,\"truncated\":%s}\n", p->s->info[i].n_tokens,
                     p->s->info[i].truncated ? "true" : "false");
    }
    p->len = (size_t)(o - p->buf);
}

static void *format_thread(void *v) {
    format_part(v);
    return NULL;
}

/* Writes one slot; false on a write error. JSON lines go in rounds of up to ROUND_LINES lines a
 * formatting thread, so that the buffers stay small whatever the batch. */
static bool write_slot(embed_out *w, const embed_out_slot *s) {
    if (!w->jsonl) return fwrite(s->vec, sizeof *s->vec * (size_t)w->dim, (size_t)s->n, w->f) == (size_t)s->n;
    for (int32_t r0 = 0; r0 < s->n; r0 += w->n_fmt * ROUND_LINES) {
        const int32_t rn = s->n - r0 < w->n_fmt * ROUND_LINES ? s->n - r0 : w->n_fmt * ROUND_LINES;
        int n_parts = w->n_fmt < rn ? w->n_fmt : rn;
        if (n_parts < 1) n_parts = 1;
        part parts[8];
        pthread_t th[8];
        bool started[8] = {false};
        for (int j = 0; j < n_parts; j++) {
            parts[j] = (part){.w = w, .s = s, .lo = r0 + (int32_t)((int64_t)rn * j / n_parts),
                              .hi = r0 + (int32_t)((int64_t)rn * (j + 1) / n_parts), .buf = w->buf[j]};
            if (j > 0) started[j] = pthread_create(&th[j], NULL, format_thread, &parts[j]) == 0;
        }
        format_part(&parts[0]);
        for (int j = 1; j < n_parts; j++) {
            if (started[j]) pthread_join(th[j], NULL);
            else format_part(&parts[j]); /* no thread to be had: here */
        }
        for (int j = 0; j < n_parts; j++)
            if (fwrite(parts[j].buf, 1, parts[j].len, w->f) != parts[j].len) return false;
    }
    return true;
}

static void *writer_thread(void *v) {
    embed_out *w = v;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        embed_out_slot *s = &w->slot[w->next_write];
        while (!s->full && !w->closing) pthread_cond_wait(&w->cv, &w->mu);
        if (!s->full) break; /* closing, nothing left */
        pthread_mutex_unlock(&w->mu);
        const bool ok = !w->failed && write_slot(w, s);
        pthread_mutex_lock(&w->mu);
        if (!ok && !w->failed) {
            w->failed = true;
            fprintf(stderr, "sembed embed: write error: %s\n", strerror(errno));
        }
        s->full = false;
        w->next_write ^= 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

bool embed_out_start(embed_out *w, FILE *f, bool jsonl, int32_t dim, int32_t cap, int n_fmt) {
    memset(w, 0, sizeof *w);
    w->f = f, w->jsonl = jsonl, w->dim = dim;
    w->n_fmt = n_fmt < 1 ? 1 : n_fmt > 8 ? 8 : n_fmt;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        w->slot[i].vec = malloc(sizeof(float) * (size_t)cap * (size_t)dim);
        w->slot[i].info = calloc((size_t)cap, sizeof(sembed_encode_info));
        ok = ok && w->slot[i].vec && w->slot[i].info;
    }
    if (jsonl) {
        const size_t lines = (size_t)(cap < ROUND_LINES ? cap : ROUND_LINES);
        for (int j = 0; j < w->n_fmt && ok; j++)
            ok = (w->buf[j] = malloc(lines * ((size_t)dim * (CLI_FMT_F32_MAX + 1) + LINE_EXTRA))) != NULL;
    }
    if (!ok) {
        fprintf(stderr, "sembed embed: out of memory\n");
        embed_out_finish(w);
        return false;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_thread, w) != 0) {
        fprintf(stderr, "sembed embed: cannot start the output thread\n");
        embed_out_finish(w);
        return false;
    }
    w->started = true;
    return true;
}

embed_out_slot *embed_out_acquire(embed_out *w) {
    pthread_mutex_lock(&w->mu);
    embed_out_slot *s = &w->slot[w->next_fill];
    while (s->full && !w->failed) pthread_cond_wait(&w->cv, &w->mu);
    const bool failed = w->failed;
    pthread_mutex_unlock(&w->mu);
    return failed ? NULL : s;
}

void embed_out_submit(embed_out *w, embed_out_slot *s, int32_t n, int64_t first) {
    pthread_mutex_lock(&w->mu);
    s->n = n, s->first = first, s->full = true;
    w->next_fill ^= 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool embed_out_finish(embed_out *w) {
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->closing = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        w->started = false;
    }
    for (int i = 0; i < 2; i++) free(w->slot[i].vec), free(w->slot[i].info);
    for (int j = 0; j < 8; j++) free(w->buf[j]);
    memset(w->slot, 0, sizeof w->slot);
    memset(w->buf, 0, sizeof w->buf);
    return !w->failed;
}
