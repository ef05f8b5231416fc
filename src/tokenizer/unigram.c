/* unigram.c — the Unigram model (tokenizers' models/unigram/model.rs, encode_optimized): Viterbi
 * over the code points of a word with the pieces found by a byte trie, unknown chars scored
 * min_score - 10 and fused into one <unk>, optional byte fallback. Not the trainer, and no
 * per-word cache (the trie walk is cheaper than tokenizers' cache lookup). */
#include "tokenizer_internal.h"

#include "json_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A double-array trie over token bytes: the child of node s by byte c is t = base[s] + c + 1
 * when check[t] == s. Labels are c + 1 so that a NUL byte is a label too. */
typedef struct da_unit {
    int32_t base;
    int32_t check; /* parent; -1 free, -2 the root */
    int32_t id;    /* token that ends here, -1: none */
} da_unit;

struct sembed__unigram {
    da_unit *da;
    int32_t n_da;
    double *score; /* (n) by id */
    int32_t n;
    int32_t unk_id;
    double unk_score; /* min_score - K_UNK_PENALTY */
    bool byte_fallback;
    int32_t byte_id[256]; /* "<0xAB>" ids, -1: missing */
};

static inline int32_t da_step(const da_unit *da, int32_t n_da, int32_t s, uint8_t c) {
    int32_t t = da[s].base + (int32_t)c + 1;
    return t < n_da && da[t].check == s ? t : -1;
}

/* The id of the exact string, or -1. */
static int32_t trie_find(const sembed__unigram *u, const char *s, size_t len) {
    int32_t node = 0;
    for (size_t i = 0; i < len && node >= 0; i++) node = da_step(u->da, u->n_da, node, (uint8_t)s[i]);
    return node >= 0 ? u->da[node].id : -1;
}

/* ---- building the trie -------------------------------------------------------------------- */

typedef struct key {
    const char *s;
    size_t len;
    int32_t id;
} key;

static int key_cmp(const void *a, const void *b) {
    const key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Free cells form a list in increasing order, so that a base search visits free cells only.
 * Like darts-clone, the search looks at a window of the last WINDOW cells: free cells that fall
 * behind it stay unused (a little space for a bounded build time). */
enum { WINDOW = 1024 };

typedef struct build {
    da_unit *da;
    int32_t *next, *prev; /* (cap) free list links, -1: none */
    int32_t cap;
    int32_t head, tail;   /* free list ends, -1: empty */
    int32_t used_end;     /* one past the highest used cell */
} build;

static bool build_grow(build *b, int64_t need) {
    if (need <= b->cap) return true;
    int64_t cap = b->cap ? b->cap : 1024;
    while (cap < need) cap *= 2;
    if (cap > INT32_MAX / 2) return false;
    da_unit *d = sembed__realloc(b->da, (size_t)cap * sizeof *d);
    if (!d) return false;
    b->da = d;
    int32_t *nx = sembed__realloc(b->next, (size_t)cap * sizeof *nx);
    if (!nx) return false;
    b->next = nx;
    int32_t *pv = sembed__realloc(b->prev, (size_t)cap * sizeof *pv);
    if (!pv) return false;
    b->prev = pv;
    for (int32_t i = b->cap; i < (int32_t)cap; i++) { /* append the new cells, free */
        d[i] = (da_unit){0, -1, -1};
        nx[i] = -1;
        pv[i] = b->tail;
        if (b->tail >= 0) nx[b->tail] = i;
        else b->head = i;
        b->tail = i;
    }
    b->cap = (int32_t)cap;
    return true;
}

static void build_take(build *b, int32_t i) {
    int32_t p = b->prev[i], n = b->next[i];
    if (p >= 0) b->next[p] = n;
    else b->head = n;
    if (n >= 0) b->prev[n] = p;
    else b->tail = p;
}

typedef struct range {
    int32_t node, lo, hi, depth;
} range;

/* Builds the trie of keys[0, n) (sorted, duplicates removed, none empty) breadth first: each
 * queue entry is a node and the keys that share its prefix. */
static bool build_trie(build *b, const key *keys, int32_t n) {
    range *queue = sembed__malloc(((size_t)n + 1) * sizeof *queue);
    b->head = b->tail = -1;
    if (!queue || !build_grow(b, 4096)) {
        sembed__free(queue);
        return false;
    }
    bool ok = true;
    b->da[0] = (da_unit){0, -2, -1};
    build_take(b, 0);
    b->used_end = 1;
    /* the queue holds disjoint non-empty key ranges: at most n at once; a ring */
    int64_t qh = 0, qt = 0, qcap = (int64_t)n + 1;
    queue[qt++ % qcap] = (range){0, 0, n, 0};
    while (qh < qt && ok) {
        range r = queue[qh++ % qcap];
        int32_t lo = r.lo;
        if (lo < r.hi && keys[lo].len == (size_t)r.depth) b->da[r.node].id = keys[lo++].id;
        if (lo >= r.hi) continue;
        /* distinct next bytes, ascending (keys are sorted) */
        int32_t labels[256], starts[257], nl = 0;
        for (int32_t i = lo; i < r.hi; i++) {
            int32_t c = (uint8_t)keys[i].s[r.depth] + 1;
            if (nl == 0 || labels[nl - 1] != c) {
                labels[nl] = c;
                starts[nl++] = i;
            }
        }
        starts[nl] = r.hi;
        /* forget free cells that fell behind the window */
        while (b->head >= 0 && b->head < b->used_end - WINDOW) build_take(b, b->head);
        /* the first free cell pos such that base = pos - labels[0] >= 1 fits every label;
         * the list always ends with cells past every used one, grown on demand */
        if (b->head < 0) ok = build_grow(b, (int64_t)b->cap + 512);
        int32_t base = -1;
        for (int32_t pos = b->head; ok && base < 0;) {
            int32_t cand = pos - labels[0];
            if ((int64_t)cand + 257 > b->cap) ok = build_grow(b, (int64_t)cand + 257);
            bool fits = ok && cand >= 1;
            for (int32_t k = 1; k < nl && fits; k++) fits = b->da[cand + labels[k]].check == -1;
            if (fits) {
                base = cand;
            } else if (ok) {
                if (b->next[pos] < 0) ok = build_grow(b, (int64_t)b->cap + 512);
                pos = ok ? b->next[pos] : -1;
            }
        }
        if (!ok) break;
        b->da[r.node].base = base;
        for (int32_t k = 0; k < nl; k++) {
            int32_t t = base + labels[k];
            b->da[t].check = r.node;
            build_take(b, t);
            if (t + 1 > b->used_end) b->used_end = t + 1;
            queue[qt++ % qcap] = (range){t, starts[k], starts[k + 1], r.depth + 1};
        }
    }
    sembed__free(queue);
    return ok;
}

/* ---- loading ------------------------------------------------------------------------------ */

void sembed__unigram_free(sembed__unigram *u) {
    if (!u) return;
    sembed__free(u->da);
    sembed__free(u->score);
    sembed__free(u);
}

sembed_status sembed__unigram_load(json_t *model, const char *where, sembed__vocab *vocab,
                                   sembed__unigram **out, sembed_error *err) {
    *out = NULL;
    json_t *v = json_object_get(model, "vocab");
    if (!json_is_array(v))
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s.vocab: expected an array of [token, score] pairs", where);
    size_t n = json_array_size(v);
    if (n == 0)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s.vocab: empty vocabulary (Unigram needs at least <unk>)", where);
    if (n > 10000000)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab: %zu tokens is more than 10,000,000",
                           where, n);
    json_t *unk = json_object_get(model, "unk_id");
    if (!unk || json_is_null(unk))
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s.unk_id: a Unigram model without an unknown token is not supported "
                           "(tokenizers fails on any character outside its vocabulary)",
                           where);
    if (!json_is_integer(unk) || json_integer_value(unk) < 0 ||
        json_integer_value(unk) >= (json_int_t)n)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.unk_id: expected an id in [0, %zu)", where,
                           n);
    bool byte_fallback = false;
    sembed_status st = sembed__json_bool(model, "byte_fallback", where, false, &byte_fallback, err);
    if (st) return st;

    sembed__unigram *u = sembed__calloc(1, sizeof *u);
    key *keys = NULL;
    char *arena = NULL;
    if (!u) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", where);
    u->n = (int32_t)n;
    u->unk_id = (int32_t)json_integer_value(unk);
    u->byte_fallback = byte_fallback;
    u->score = sembed__malloc(n * sizeof *u->score);
    keys = sembed__malloc(n * sizeof *keys);
    if (!u->score || !keys) goto nomem;
    if ((st = sembed__vocab_init(vocab, (int32_t)n, err))) goto fail;
    char file[300];
    snprintf(file, sizeof file, "%s.vocab", where);
    double min_score = INFINITY;
    int32_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        json_t *tok = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(tok) ||
            !json_is_number(sc)) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab[%zu]: expected [token, score]",
                             where, i);
            goto fail;
        }
        double x = json_number_value(sc);
        if (!isfinite(x)) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab[%zu]: score is not finite", where,
                             i);
            goto fail;
        }
        u->score[i] = x;
        if (x < min_score) min_score = x;
        const char *s = json_string_value(tok);
        size_t len = json_string_length(tok);
        if ((st = sembed__vocab_add(vocab, s, len, (int32_t)i, file, err))) goto fail;
        if (len > 0) keys[nk++] = (key){s, len, (int32_t)i};
    }
    if ((st = sembed__vocab_finish(vocab, err))) goto fail;
    u->unk_score = min_score - 10.0;

    /* tokenizers maps a repeated token string to its last id (a HashMap insert) */
    qsort(keys, (size_t)nk, sizeof *keys, key_cmp);
    int32_t m = 0;
    for (int32_t i = 0; i < nk; i++) {
        if (m > 0 && keys[m - 1].len == keys[i].len &&
            memcmp(keys[m - 1].s, keys[i].s, keys[i].len) == 0)
            keys[m - 1] = keys[i];
        else
            keys[m++] = keys[i];
    }
    /* the build reads the keys column by column: sorted and contiguous, that is sequential */
    size_t total = 0;
    for (int32_t i = 0; i < m; i++) total += keys[i].len;
    arena = sembed__malloc(total + 1);
    if (!arena) goto nomem;
    total = 0;
    for (int32_t i = 0; i < m; i++) {
        memcpy(arena + total, keys[i].s, keys[i].len);
        keys[i].s = arena + total;
        total += keys[i].len;
    }
    build b = {0};
    bool built = build_trie(&b, keys, m);
    sembed__free(b.next);
    sembed__free(b.prev);
    sembed__free(arena);
    arena = NULL;
    if (!built) {
        sembed__free(b.da);
        goto nomem;
    }
    /* cells past used_end are never reached: da_step bounds by n_da */
    u->da = b.da;
    u->n_da = b.used_end;
    for (int c = 0; c < 256; c++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", c);
        u->byte_id[c] = trie_find(u, name, 6);
    }
    sembed__free(keys);
    *out = u;
    return SEMBED_OK;
nomem:
    st = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", where);
fail:
    sembed__free(arena);
    sembed__free(keys);
    sembed__unigram_free(u);
    return st;
}

/* ---- tokenizing --------------------------------------------------------------------------- */

/* Emits the fused run of unknown pieces covering chars [b, e) of the word: the concatenated
 * string's own id when it is a token, else its bytes as <0xAB> tokens (byte_fallback, when all
 * exist), else <unk>; every token gets the whole run's offsets. */
static bool emit_unk_run(const sembed__unigram *u, const sembed__ntext *text, sembed__span w,
                         int32_t b, int32_t e, sembed__tok_scratch *s) {
    const char *str = s->str + s->bytepos[b];
    size_t len = (size_t)(s->bytepos[e] - s->bytepos[b]);
    int32_t ob = text->ob[w.b + b], oe = text->oe[w.b + e - 1];
    int32_t id = trie_find(u, str, len);
    if (id < 0 && u->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < len && all; i++) all = u->byte_id[(uint8_t)str[i]] >= 0;
        if (all) {
            if (!sembed__toks_reserve(&s->toks, (int64_t)len)) return false;
            for (size_t i = 0; i < len; i++)
                sembed__toks_put(&s->toks, u->byte_id[(uint8_t)str[i]], ob, oe, 0);
            return true;
        }
    }
    if (!sembed__toks_reserve(&s->toks, 1)) return false;
    sembed__toks_put(&s->toks, id >= 0 ? id : u->unk_id, ob, oe, 0);
    return true;
}

bool sembed__unigram_tokenize(const sembed__unigram *u, const sembed__vocab *vocab,
                              const sembed__ntext *text, sembed__span w, sembed__tok_scratch *s) {
    (void)vocab; /* the trie has every token (and the last id of a repeated one) */
    int32_t C = w.e - w.b;
    if (C <= 0) return true;
    if (!sembed__scratch_model_reserve(s, (int64_t)C + 1)) return false;
    size_t need = (size_t)C * 4 + 1;
    if (need > s->str_cap) {
        char *p = sembed__realloc(s->str, need);
        if (!p) return false;
        s->str = p;
        s->str_cap = need;
    }
    char *str = s->str;
    int32_t *bytepos = s->bytepos, *prev = s->prev, *piece = s->piece;
    double *best = s->score;
    int32_t nb = 0;
    for (int32_t i = 0; i < C; i++) {
        bytepos[i] = nb;
        nb += sembed__utf8_put(text->cp[w.b + i], str + nb);
        prev[i + 1] = -1;
    }
    bytepos[C] = nb;
    best[0] = 0.0;

    /* best[k]: score of the best path over chars [0, k); ties keep the earliest start, as the
     * strict '>' of encode_optimized does when starts are visited in order */
    const da_unit *da = u->da;
    const int32_t n_da = u->n_da;
    for (int32_t i = 0; i < C; i++) {
        const double here = best[i];
        bool single = false;
        int32_t node = 0;
        int32_t p = bytepos[i];
        for (int32_t j = i; j < C; j++) {
            int32_t end = bytepos[j + 1];
            for (; p < end && node >= 0; p++) node = da_step(da, n_da, node, (uint8_t)str[p]);
            if (node < 0) break;
            int32_t id = da[node].id;
            if (id < 0) continue;
            double cand = here + u->score[id];
            if (prev[j + 1] < 0 || cand > best[j + 1]) {
                best[j + 1] = cand;
                prev[j + 1] = i;
                piece[j + 1] = id;
            }
            if (j == i) single = true;
        }
        if (!single) {
            double cand = here + u->unk_score;
            if (prev[i + 1] < 0 || cand > best[i + 1]) {
                best[i + 1] = cand;
                prev[i + 1] = i;
                piece[i + 1] = u->unk_id;
            }
        }
    }

    /* turn the back links into forward links: next[k] = the end of the piece starting at k */
    int32_t *next = prev;
    int32_t k = C, after = -1;
    while (k > 0) {
        int32_t b = prev[k];
        next[k] = after;
        after = k;
        k = b;
    }
    /* pieces in order; runs of <unk> pieces fuse */
    int32_t start = 0, run = -1;
    for (int32_t e = after; e > 0; e = next[e]) {
        int32_t id = piece[e];
        if (id == u->unk_id) {
            if (run < 0) run = start;
        } else {
            if (run >= 0) {
                if (!emit_unk_run(u, text, w, run, start, s)) return false;
                run = -1;
            }
            if (!sembed__toks_reserve(&s->toks, 1)) return false;
            sembed__toks_put(&s->toks, id, text->ob[w.b + start], text->oe[w.b + e - 1], 0);
        }
        start = e;
    }
    if (run >= 0 && !emit_unk_run(u, text, w, run, C, s)) return false;
    return true;
}
