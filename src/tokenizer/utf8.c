/* utf8.c — strict UTF-8 decoding into an ntext, and the growable arrays of the pipeline.
 * Not a general string library. */
#include "tokenizer_internal.h"

#include <stdlib.h>

static bool grow(void **p, int64_t n, size_t elem) {
    size_t bytes;
    if (n < 0 || !sembed__mul_size((size_t)n, elem, &bytes)) return false;
    void *q = sembed__realloc(*p, bytes);
    if (!q) return false;
    *p = q;
    return true;
}

static int32_t next_cap(int32_t cap, int64_t need) {
    int64_t c = cap ? cap : 64;
    while (c < need) c *= 2;
    return c > INT32_MAX ? INT32_MAX : (int32_t)c;
}

bool sembed__nt_reserve(sembed__ntext *t, int64_t cap) {
    if (cap <= t->cap) return true;
    if (cap > INT32_MAX / 2) return false;
    int32_t c = next_cap(t->cap, cap);
    if (!grow((void **)&t->cp, c, sizeof *t->cp) || !grow((void **)&t->ob, c, sizeof *t->ob) ||
        !grow((void **)&t->oe, c, sizeof *t->oe))
        return false;
    t->cap = c;
    return true;
}

void sembed__nt_free(sembed__ntext *t) {
    sembed__free(t->cp);
    sembed__free(t->ob);
    sembed__free(t->oe);
    *t = (sembed__ntext){0};
}

bool sembed__spans_push(sembed__spans *s, int32_t b, int32_t e) {
    if (s->n == s->cap) {
        if (s->cap > INT32_MAX / 4) return false;
        int32_t c = next_cap(s->cap, (int64_t)s->n + 1);
        if (!grow((void **)&s->v, c, sizeof *s->v)) return false;
        s->cap = c;
    }
    s->v[s->n++] = (sembed__span){b, e};
    return true;
}

void sembed__spans_free(sembed__spans *s) {
    sembed__free(s->v);
    *s = (sembed__spans){0};
}

bool sembed__toks_reserve(sembed__toks *t, int64_t extra) {
    int64_t need = (int64_t)t->n + extra;
    if (need <= t->cap) return true;
    if (need > INT32_MAX / 4) return false;
    int32_t c = next_cap(t->cap, need);
    if (!grow((void **)&t->id, c, sizeof *t->id) || !grow((void **)&t->ob, c, sizeof *t->ob) ||
        !grow((void **)&t->oe, c, sizeof *t->oe) ||
        !grow((void **)&t->special, c, sizeof *t->special))
        return false;
    t->cap = c;
    return true;
}

void sembed__toks_free(sembed__toks *t) {
    sembed__free(t->id);
    sembed__free(t->ob);
    sembed__free(t->oe);
    sembed__free(t->special);
    *t = (sembed__toks){0};
}

void sembed__scratch_free(sembed__tok_scratch *s) {
    sembed__nt_free(&s->text);
    sembed__nt_free(&s->tmp);
    sembed__nt_free(&s->raw);
    sembed__nt_free(&s->seg);
    sembed__spans_free(&s->words);
    sembed__spans_free(&s->words_tmp);
    sembed__toks_free(&s->toks);
    sembed__free(s->str);
    sembed__free(s->score);
    sembed__free(s->prev);
    sembed__free(s->piece);
    sembed__free(s->bytepos);
    *s = (sembed__tok_scratch){0};
}

int64_t sembed__utf8_decode(const char *s, size_t len, int32_t base, sembed__ntext *t) {
    const uint8_t *p = (const uint8_t *)s;
    t->n = 0;
    if (!sembed__nt_reserve(t, (int64_t)len)) return -2;
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i];
        size_t k;
        if (c < 0x80) {
            k = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 2;
            c &= 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
            c &= 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
            c &= 0x07;
        } else {
            return (int64_t)i;
        }
        if (i + k > len) return (int64_t)i;
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return (int64_t)i;
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        /* overlongs, surrogates and values past U+10FFFF */
        if ((k == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
            (k == 4 && (c < 0x10000 || c > 0x10FFFF)))
            return (int64_t)i;
        sembed__nt_put(t, c, base + (int32_t)i, base + (int32_t)(i + k));
        i += k;
    }
    return -1;
}

int sembed__utf8_put(uint32_t c, char *b) {
    if (c < 0x80) {
        b[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        b[0] = (char)(0xC0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        b[0] = (char)(0xE0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (c >> 18));
    b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    b[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

bool sembed__scratch_model_reserve(sembed__tok_scratch *s, int64_t n) {
    if (n <= s->model_cap) return true;
    int64_t cap = n < 256 ? 256 : n;
    if (cap > INT32_MAX / 8) return false;
    double *sc = sembed__realloc(s->score, (size_t)cap * sizeof *sc);
    if (!sc) return false;
    s->score = sc;
    int32_t *pv = sembed__realloc(s->prev, (size_t)cap * sizeof *pv);
    if (!pv) return false;
    s->prev = pv;
    int32_t *pc = sembed__realloc(s->piece, (size_t)cap * sizeof *pc);
    if (!pc) return false;
    s->piece = pc;
    int32_t *bp = sembed__realloc(s->bytepos, (size_t)cap * sizeof *bp);
    if (!bp) return false;
    s->bytepos = bp;
    s->model_cap = cap;
    return true;
}
