/* test_unigram.c — the SentencePiece-style pieces of the tokenizer against Hugging Face
 * `tokenizers`: the Precompiled normalizer, the Metaspace pre-tokenizer and the Unigram model,
 * alone and chained, on the fixtures of scripts/gen_unigram_fixtures.py (tests/data/unigram/).
 * Also hostile charsmaps and models, and allocation failures. Not the end-to-end golden test. */
#include "testlib.h"

#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#define DATA "tests/data/unigram/"

static json_t *parse_line(const char *line, size_t len) {
    json_error_t e;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &e);
    if (!j) fprintf(stderr, "bad fixture line: %s\n", e.text);
    return j;
}

/* Decodes a JSON string into t (offsets from 0). */
static bool decode_str(json_t *s, sembed__ntext *t) {
    return json_is_string(s) &&
           sembed__utf8_decode(json_string_value(s), json_string_length(s), 0, t) == -1;
}

static bool int_array_eq(json_t *a, const int32_t *v, int32_t n) {
    if (!json_is_array(a) || (int64_t)json_array_size(a) != n) return false;
    for (int32_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(a, (size_t)i)) != v[i]) return false;
    return true;
}

static bool cp_array_eq(json_t *a, const uint32_t *v, int32_t n) {
    if (!json_is_array(a) || (int64_t)json_array_size(a) != n) return false;
    for (int32_t i = 0; i < n; i++)
        if ((uint32_t)json_integer_value(json_array_get(a, (size_t)i)) != v[i]) return false;
    return true;
}

static void dump_nt(const char *what, const sembed__ntext *t) {
    fprintf(stderr, "  %s:", what);
    for (int32_t i = 0; i < t->n; i++) fprintf(stderr, " U+%04X[%d,%d)", t->cp[i], t->ob[i], t->oe[i]);
    fputc('\n', stderr);
}

static bool nt_matches(json_t *row, const sembed__ntext *t) {
    return cp_array_eq(json_object_get(row, "cp"), t->cp, t->n) &&
           int_array_eq(json_object_get(row, "ob"), t->ob, t->n) &&
           int_array_eq(json_object_get(row, "oe"), t->oe, t->n);
}

static char *read_all(const char *path) {
    char *data = NULL;
    size_t len = 0;
    sembed_error err = {0};
    if (sembed__read_file(path, 1 << 26, &data, &len, &err) != SEMBED_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return data;
}

/* ---- Precompiled -------------------------------------------------------------------------- */

static char *g_charsmap; /* base64, from the first fixture line */

static void test_precompiled(void) {
    t_lines *l = t_lines_open(DATA "precompiled.jsonl.gz");
    CHECK(l != NULL);
    if (!l) return;
    size_t len;
    const char *line = t_lines_next(l, &len);
    json_t *head = line ? parse_line(line, len) : NULL;
    CHECK(head && json_is_string(json_object_get(head, "charsmap")));
    if (!head) {
        t_lines_close(l);
        return;
    }
    g_charsmap = strdup(json_string_value(json_object_get(head, "charsmap")));
    json_decref(head);
    sembed_error err = {0};
    sembed__precompiled *p = NULL;
    sembed_status st = sembed__precompiled_load(g_charsmap, "charsmap", &p, &err);
    CHECKF(st == SEMBED_OK, "%s", err.msg);
    sembed__ntext in = {0}, out = {0};
    int rows = 0, bad = 0;
    while (p && (line = t_lines_next(l, &len))) {
        json_t *row = parse_line(line, len);
        CHECK(row && decode_str(json_object_get(row, "text"), &in));
        if (!row) continue;
        CHECK(sembed__precompiled_apply(p, &in, &out));
        bool ok = nt_matches(row, &out);
        CHECKF(ok, "precompiled row %d: %s", rows + 1, line);
        if (!ok && bad++ < 5) {
            dump_nt("in ", &in);
            dump_nt("got", &out);
        }
        rows++;
        json_decref(row);
    }
    CHECKF(rows > 600, "%d rows", rows);
    /* the output may share nothing with the input buffer, and an empty text stays empty */
    in.n = 0;
    CHECK(sembed__precompiled_apply(p, &in, &out) && out.n == 0);
    sembed__nt_free(&in);
    sembed__nt_free(&out);
    sembed__precompiled_free(p);
    sembed__precompiled_free(NULL);
    t_lines_close(l);
}

static char *b64_encode(const uint8_t *d, size_t n) {
    static const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        *o++ = A[w >> 18];
        *o++ = A[(w >> 12) & 63];
        *o++ = i + 1 < n ? A[(w >> 6) & 63] : '=';
        *o++ = i + 2 < n ? A[w & 63] : '=';
    }
    *o = 0;
    return s;
}

static size_t b64_decode_test(const char *s, uint8_t *out) {
    size_t n = strlen(s), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        acc = acc << 6 | (uint32_t)(strchr(A, s[i]) - A);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static sembed_status load_blob(const uint8_t *d, size_t n, sembed__precompiled **p,
                               sembed_error *err) {
    char *s = b64_encode(d, n);
    sembed_status st = sembed__precompiled_load(s, "blob", p, err);
    free(s);
    return st;
}

static void put_u32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static void test_precompiled_hostile(void) {
    sembed_error err = {0};
    sembed__precompiled *p = NULL;
    /* base64 */
    const char *bad64[] = {"", "A", "AAA", "AA=A", "AAAA====", "AB==", "AAA\n", "A AA", "AAE=", "*AAA"};
    for (size_t i = 0; i < sizeof bad64 / sizeof *bad64; i++) {
        err.msg[0] = 0;
        sembed_status st = sembed__precompiled_load(bad64[i], "tok.json: normalizer", &p, &err);
        CHECKF(st == SEMBED_ERR_FORMAT && p == NULL, "'%s'", bad64[i]);
        CHECKF(strstr(err.msg, "tok.json: normalizer") != NULL, "%s", err.msg);
    }
    /* sizes */
    uint8_t b[64] = {0};
    put_u32(b, 6); /* not whole units */
    CHECK(load_blob(b, 16, &p, &err) == SEMBED_ERR_FORMAT && strstr(err.msg, "trie size"));
    put_u32(b, 0); /* no units */
    CHECK(load_blob(b, 16, &p, &err) == SEMBED_ERR_FORMAT);
    put_u32(b, 16); /* more units than bytes */
    CHECK(load_blob(b, 12, &p, &err) == SEMBED_ERR_FORMAT);
    put_u32(b, 0xFFFFFFFCu);
    CHECK(load_blob(b, 12, &p, &err) == SEMBED_ERR_FORMAT);
    /* a pool that is not UTF-8 */
    put_u32(b, 4);
    put_u32(b + 4, 0);
    b[8] = 'a';
    b[9] = 0xC3;
    CHECK(load_blob(b, 10, &p, &err) == SEMBED_ERR_FORMAT && strstr(err.msg, "UTF-8"));
    /* a one-key trie by hand: root base 0 ... then a leaf for 'a' pointing at the pool. The
     * root unit's offset is 0, so child 'a' is unit 0x61 with label 'a' and has_leaf, its
     * offset (say 0) gives the value unit at 0x61 ^ 0 = itself: value = unit & 0x7FFFFFFF. */
    {
        enum { N = 256 };
        static uint8_t t[4 + 4 * N + 8];
        memset(t, 0, sizeof t);
        put_u32(t, 4 * N);
        /* unit 'a': label 'a', has_leaf (bit 8), offset 1 (bits 10+) → child base 0x61 ^ 1 */
        uint32_t ua = 'a' | (1u << 8) | (1u << 10);
        put_u32(t + 4 + 4 * 'a', ua);
        /* value unit at 0x60: pool index 0 ("X") */
        put_u32(t + 4 + 4 * 0x60, 0);
        memcpy(t + 4 + 4 * N, "X\0yz\0", 6);
        CHECKF(load_blob(t, 4 + 4 * N + 6, &p, &err) == SEMBED_OK, "%s", err.msg);
        if (p) {
            sembed__ntext in = {0}, out = {0};
            sembed__utf8_decode("bab", 3, 0, &in);
            CHECK(sembed__precompiled_apply(p, &in, &out));
            CHECK(out.n == 3 && out.cp[0] == 'b' && out.cp[1] == 'X' && out.cp[2] == 'b');
            CHECK(out.n == 3 && out.ob[1] == 1 && out.oe[1] == 2);
            sembed__nt_free(&in);
            sembed__nt_free(&out);
            sembed__precompiled_free(p);
            p = NULL;
        }
        /* value past the pool */
        put_u32(t + 4 + 4 * 0x60, 7);
        CHECK(load_blob(t, 4 + 4 * N + 6, &p, &err) == SEMBED_ERR_FORMAT && strstr(err.msg, "pool"));
        /* value at the pool's end: an empty replacement (a deletion) */
        put_u32(t + 4 + 4 * 0x60, 6);
        CHECKF(load_blob(t, 4 + 4 * N + 6, &p, &err) == SEMBED_OK, "%s", err.msg);
        if (p) {
            sembed__ntext in = {0}, out = {0};
            sembed__utf8_decode("bab", 3, 0, &in);
            CHECK(sembed__precompiled_apply(p, &in, &out) && out.n == 2);
            /* the removal folds into 'b' before it; the last 'b' is never consumed, so the
             * second 'b' takes the removed 'a''s place */
            CHECK(out.n == 2 && out.ob[0] == 0 && out.ob[1] == 2);
            sembed__nt_free(&in);
            sembed__nt_free(&out);
            sembed__precompiled_free(p);
            p = NULL;
        }
        /* value inside a multi-byte char of the pool */
        memcpy(t + 4 + 4 * N, "\xC3\xA9\0", 3);
        put_u32(t + 4 + 4 * 0x60, 1);
        CHECK(load_blob(t, 4 + 4 * N + 3, &p, &err) == SEMBED_ERR_FORMAT);
        /* a leaf whose value unit lies past the trie */
        put_u32(t + 4 + 4 * 'a', 'a' | (1u << 8) | (0x3FFu << 10));
        CHECK(load_blob(t, 4 + 4 * N + 3, &p, &err) == SEMBED_ERR_FORMAT);
        /* a root whose base is far outside: loads, matches nothing */
        put_u32(t + 4, 0x3FFFFFu << 10);
        CHECKF(load_blob(t, 4 + 4 * N + 3, &p, &err) == SEMBED_OK, "%s", err.msg);
        sembed__precompiled_free(p);
        p = NULL;
    }
    /* mutations of the real charsmap: load fails cleanly or applies without faults */
    if (g_charsmap) {
        size_t n64 = strlen(g_charsmap);
        uint8_t *blob = malloc(n64);
        size_t n = b64_decode_test(g_charsmap, blob);
        uint8_t *m = malloc(n);
        const char *texts[] = {"Hello ｶﾞ ①́ e\xcc\x81\xcc\x81 ¼ ﬁ ™\x1e 가 ﷺ", "\xef\xbc\xa1\xe2\x80\xa6x"};
        uint32_t rng = 12345;
        int loaded = 0;
        for (int it = 0; it < 300; it++) {
            memcpy(m, blob, n);
            for (int k = 0; k < 1 + it % 16; k++) {
                rng = rng * 1103515245u + 12345u;
                size_t at = (rng >> 8) % n;
                rng = rng * 1103515245u + 12345u;
                m[at] = (uint8_t)(rng >> 16);
            }
            if (it % 50 == 0) put_u32(m, (uint32_t)(n - 4 - (size_t)it)); /* odd sizes */
            if (load_blob(m, n - (size_t)(it % 7), &p, &err) == SEMBED_OK) {
                loaded++;
                sembed__ntext in = {0}, out = {0};
                for (size_t k = 0; k < 2; k++) {
                    sembed__utf8_decode(texts[k], strlen(texts[k]), 0, &in);
                    CHECK(sembed__precompiled_apply(p, &in, &out));
                }
                sembed__nt_free(&in);
                sembed__nt_free(&out);
                sembed__precompiled_free(p);
                p = NULL;
            }
        }
        CHECK(loaded > 0);
        free(m);
        free(blob);
    }
    /* allocation failures while loading */
    if (g_charsmap) {
        for (int64_t k = 1; k < 20; k++) {
            sembed__alloc_fail_at(k, false);
            sembed_status st = sembed__precompiled_load(g_charsmap, "charsmap", &p, &err);
            sembed__alloc_fail_at(0, false);
            CHECK(st == SEMBED_OK || st == SEMBED_ERR_NOMEM);
            CHECK((st == SEMBED_OK) == (p != NULL));
            sembed__precompiled_free(p);
            p = NULL;
        }
    }
}

/* ---- Metaspace ---------------------------------------------------------------------------- */

static bool words_match(json_t *words, const sembed__tok_scratch *s) {
    if (!json_is_array(words) || (int64_t)json_array_size(words) != s->words.n) return false;
    for (int32_t w = 0; w < s->words.n; w++) {
        sembed__ntext t = {0};
        bool ok = decode_str(json_array_get(words, (size_t)w), &t);
        sembed__span sp = s->words.v[w];
        ok = ok && t.n == sp.e - sp.b;
        for (int32_t i = 0; ok && i < t.n; i++) ok = t.cp[i] == s->text.cp[sp.b + i];
        sembed__nt_free(&t);
        if (!ok) return false;
    }
    return true;
}

static void test_metaspace(void) {
    t_lines *l = t_lines_open(DATA "metaspace.jsonl.gz");
    CHECK(l != NULL);
    if (!l) return;
    sembed__tok_scratch s = {0};
    size_t len;
    const char *line;
    int rows = 0, firsts = 0;
    while ((line = t_lines_next(l, &len))) {
        json_t *row = parse_line(line, len);
        if (!row) {
            CHECK(row != NULL);
            continue;
        }
        sembed__ntext rep = {0};
        CHECK(decode_str(json_object_get(row, "replacement"), &rep) && rep.n == 1);
        const char *scheme = json_string_value(json_object_get(row, "scheme"));
        sembed__metaspace m = {
            .replacement = rep.n ? rep.cp[0] : 0,
            .prepend_scheme = !strcmp(scheme, "always") ? 2 : !strcmp(scheme, "first") ? 1 : 0,
            .split = json_is_true(json_object_get(row, "split")),
        };
        sembed__nt_free(&rep);
        /* "first" with the piece at offset 0, and "first" on a later piece (= "never") */
        for (int pass = 0; pass < 2; pass++) {
            bool first = pass == 0;
            if (!first && m.prepend_scheme != 0) break;
            sembed__metaspace mm = m;
            if (!first) mm.prepend_scheme = 1;
            CHECK(decode_str(json_object_get(row, "text"), &s.text));
            s.words.n = 0;
            CHECK(sembed__spans_push(&s.words, 0, s.text.n));
            CHECK(sembed__metaspace_apply(&mm, first, &s));
            bool ok = nt_matches(row, &s.text) && words_match(json_object_get(row, "words"), &s);
            CHECKF(ok, "metaspace (first=%d): %s", first, line);
            if (!ok) dump_nt("got", &s.text);
            firsts += !first;
        }
        rows++;
        json_decref(row);
    }
    CHECKF(rows >= 3600 && firsts > 0, "%d rows", rows);

    /* words from an earlier pre-tokenizer: only those words are kept, each rewritten alone */
    sembed__metaspace m = {.replacement = 0x2581, .prepend_scheme = 1, .split = true};
    CHECK(sembed__utf8_decode("ab cd ef", 8, 0, &s.text) == -1);
    s.words.n = 0;
    sembed__spans_push(&s.words, 0, 2);
    sembed__spans_push(&s.words, 3, 5);
    sembed__spans_push(&s.words, 5, 8);
    CHECK(sembed__metaspace_apply(&m, true, &s));
    /* "▁ab" (prepended: starts at 0), "cd", "▁ef" (its space, at 5) */
    CHECK(s.words.n == 3 && s.text.n == 8);
    CHECK(s.text.n == 8 && s.text.cp[0] == 0x2581 && s.text.ob[0] == 0 && s.text.oe[0] == 1);
    CHECK(s.words.n == 3 && s.words.v[1].b == 3 && s.words.v[1].e == 5 && s.text.cp[3] == 'c');
    CHECK(s.text.n == 8 && s.text.cp[5] == 0x2581 && s.text.ob[5] == 5 && s.text.oe[5] == 6);
    sembed__scratch_free(&s);
    t_lines_close(l);
}

/* ---- Unigram ------------------------------------------------------------------------------ */

typedef struct loaded_model {
    const char *name;
    sembed__vocab vocab;
    sembed__unigram *u;
} loaded_model;

static bool load_model(const char *path, loaded_model *m) {
    char *data = read_all(path);
    if (!data) return false;
    json_error_t je;
    json_t *j = json_loads(data, JSON_ALLOW_NUL, &je);
    free(data);
    if (!j) return false;
    sembed_error err = {0};
    sembed_status st = sembed__unigram_load(j, path, &m->vocab, &m->u, &err);
    CHECKF(st == SEMBED_OK, "%s", err.msg);
    json_decref(j);
    return st == SEMBED_OK;
}

static bool toks_match(json_t *row, const sembed__toks *t) {
    json_t *ids = json_object_get(row, "ids"), *offs = json_object_get(row, "offsets");
    if (!int_array_eq(ids, t->id, t->n) || (int64_t)json_array_size(offs) != t->n) return false;
    for (int32_t i = 0; i < t->n; i++) {
        json_t *o = json_array_get(offs, (size_t)i);
        if (json_integer_value(json_array_get(o, 0)) != t->ob[i] ||
            json_integer_value(json_array_get(o, 1)) != t->oe[i])
            return false;
    }
    return true;
}

static void dump_toks(const sembed__toks *t) {
    fprintf(stderr, "  got:");
    for (int32_t i = 0; i < t->n; i++) fprintf(stderr, " %d[%d,%d)", t->id[i], t->ob[i], t->oe[i]);
    fputc('\n', stderr);
}

static void test_unigram(void) {
    loaded_model models[] = {{"trained", {0}, NULL}, {"ties", {0}, NULL}, {"repeat", {0}, NULL},
                             {"bytes", {0}, NULL}, {"unk_middle", {0}, NULL},
                             {"positive", {0}, NULL}};
    enum { NM = sizeof models / sizeof *models };
    for (int i = 0; i < NM; i++) {
        char path[256];
        if (!strcmp(models[i].name, "trained"))
            snprintf(path, sizeof path, DATA "model.json");
        else
            snprintf(path, sizeof path, DATA "model_%s.json", models[i].name);
        CHECKF(load_model(path, &models[i]), "%s", path);
    }
    t_lines *l = t_lines_open(DATA "unigram.jsonl.gz");
    CHECK(l != NULL);
    sembed__tok_scratch s = {0};
    size_t len;
    const char *line;
    int rows = 0, bad = 0;
    while (l && (line = t_lines_next(l, &len))) {
        json_t *row = parse_line(line, len);
        if (!row) {
            CHECK(row != NULL);
            continue;
        }
        const char *name = json_string_value(json_object_get(row, "model"));
        loaded_model *m = NULL;
        for (int i = 0; i < NM; i++)
            if (name && !strcmp(name, models[i].name)) m = &models[i];
        CHECK(m && m->u);
        if (m && m->u) {
            CHECK(decode_str(json_object_get(row, "word"), &s.text));
            s.toks.n = 0;
            CHECK(sembed__unigram_tokenize(m->u, &m->vocab, &s.text, (sembed__span){0, s.text.n}, &s));
            bool ok = toks_match(row, &s.toks);
            CHECKF(ok, "unigram %s", line);
            if (!ok && bad++ < 5) dump_toks(&s.toks);
            /* the same word in the middle of a longer text, shifted */
            int32_t n = s.text.n;
            if (n > 0) {
                sembed__ntext t2 = {0};
                sembed__nt_reserve(&t2, n + 3);
                sembed__nt_put(&t2, 'z', 0, 1);
                for (int32_t i = 0; i < n; i++)
                    sembed__nt_put(&t2, s.text.cp[i], s.text.ob[i] + 7, s.text.oe[i] + 7);
                sembed__nt_put(&t2, 'z', 99, 100);
                s.toks.n = 0;
                CHECK(sembed__unigram_tokenize(m->u, &m->vocab, &t2, (sembed__span){1, n + 1}, &s));
                for (int32_t i = 0; i < s.toks.n; i++) {
                    s.toks.ob[i] -= 7;
                    s.toks.oe[i] -= 7;
                }
                CHECKF(toks_match(row, &s.toks), "unigram (shifted) %s", line);
                sembed__nt_free(&t2);
            }
        }
        rows++;
        json_decref(row);
    }
    CHECKF(rows > 1000, "%d rows", rows);
    if (l) t_lines_close(l);
    /* the vocab knows every token, the repeated one under its first id */
    CHECK(models[1].u && sembed__vocab_find(&models[1].vocab, "ab", 2) == 3);
    for (int i = 0; i < NM; i++) {
        sembed__unigram_free(models[i].u);
        sembed__vocab_free(&models[i].vocab);
    }
    sembed__unigram_free(NULL);
    sembed__scratch_free(&s);
}

static void test_unigram_bad(void) {
    struct {
        const char *json;
        sembed_status st;
        const char *msg;
    } cases[] = {
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[]}", SEMBED_ERR_FORMAT, "empty"},
        {"{\"type\":\"Unigram\",\"unk_id\":0}", SEMBED_ERR_FORMAT, "vocab"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":{}}", SEMBED_ERR_FORMAT, "vocab"},
        {"{\"type\":\"Unigram\",\"unk_id\":1,\"vocab\":[[\"a\",0]]}", SEMBED_ERR_FORMAT, "unk_id"},
        {"{\"type\":\"Unigram\",\"unk_id\":-1,\"vocab\":[[\"a\",0]]}", SEMBED_ERR_FORMAT, "unk_id"},
        {"{\"type\":\"Unigram\",\"unk_id\":\"0\",\"vocab\":[[\"a\",0]]}", SEMBED_ERR_FORMAT, "unk_id"},
        {"{\"type\":\"Unigram\",\"unk_id\":null,\"vocab\":[[\"a\",0]]}", SEMBED_ERR_UNSUPPORTED, "unk_id"},
        {"{\"type\":\"Unigram\",\"vocab\":[[\"a\",0]]}", SEMBED_ERR_UNSUPPORTED, "unk_id"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\",\"x\"]]}", SEMBED_ERR_FORMAT, "vocab[0]"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\",0],[\"b\"]]}", SEMBED_ERR_FORMAT, "vocab[1]"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\",0],[1,0]]}", SEMBED_ERR_FORMAT, "vocab[1]"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\",0,1]]}", SEMBED_ERR_FORMAT, "vocab[0]"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[\"a\"]}", SEMBED_ERR_FORMAT, "vocab[0]"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"byte_fallback\":1,\"vocab\":[[\"a\",0]]}", SEMBED_ERR_FORMAT, "byte_fallback"},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"a\",1e308],[\"b\",-1e308]]}", SEMBED_OK, NULL},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"\",0],[\"b\",-1]]}", SEMBED_OK, NULL},
        {"{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0],[\"a\\u0000b\",-1]]}", SEMBED_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_error_t je;
        json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, &je);
        CHECKF(j != NULL, "%s", cases[i].json);
        if (!j) continue;
        sembed__vocab v = {0};
        sembed__unigram *u = NULL;
        sembed_error err = {0};
        sembed_status st = sembed__unigram_load(j, "tok.json: model", &v, &u, &err);
        CHECKF(st == cases[i].st, "%s: got %d (%s)", cases[i].json, st, err.msg);
        CHECK((st == SEMBED_OK) == (u != NULL));
        if (cases[i].msg)
            CHECKF(strstr(err.msg, "tok.json: model") && strstr(err.msg, cases[i].msg), "%s",
                   err.msg);
        if (u) { /* these still tokenize */
            sembed__tok_scratch s = {0};
            sembed__utf8_decode("a\0bb", 4, 0, &s.text);
            CHECK(sembed__unigram_tokenize(u, &v, &s.text, (sembed__span){0, 4}, &s));
            CHECK(s.toks.n >= 1);
            if (i == sizeof cases / sizeof *cases - 1) /* "a\0b" is a token, "b" is not */
                CHECK(s.toks.n == 2 && s.toks.id[0] == 1 && s.toks.id[1] == 0 && s.toks.ob[1] == 3);
            sembed__scratch_free(&s);
        }
        sembed__unigram_free(u);
        sembed__vocab_free(&v);
        json_decref(j);
    }
    /* allocation failures while loading and tokenizing */
    char *data = read_all(DATA "model.json");
    json_t *j = data ? json_loads(data, 0, NULL) : NULL;
    free(data);
    CHECK(j != NULL);
    for (int64_t k = 1; j && k < 40; k++) {
        sembed__vocab v = {0};
        sembed__unigram *u = NULL;
        sembed_error err = {0};
        sembed__alloc_fail_at(k * 37 % 700 + 1, k % 2);
        sembed_status st = sembed__unigram_load(j, "model", &v, &u, &err);
        sembed__alloc_fail_at(0, false);
        CHECK(st == SEMBED_OK || st == SEMBED_ERR_NOMEM);
        if (u) {
            sembed__tok_scratch s = {0};
            const char *w = "\xe2\x96\x81the\xe2\x96\x81qu\xc3\xa9" "bec";
            sembed__utf8_decode(w, strlen(w), 0, &s.text);
            sembed__alloc_fail_at(k % 5 + 1, false);
            bool ok = sembed__unigram_tokenize(u, &v, &s.text, (sembed__span){0, s.text.n}, &s);
            sembed__alloc_fail_at(0, false);
            (void)ok;
            sembed__scratch_free(&s);
        }
        sembed__unigram_free(u);
        sembed__vocab_free(&v);
    }
    json_decref(j);
}

/* ---- the three together ------------------------------------------------------------------- */

static void test_pipeline(void) {
    if (!g_charsmap) return;
    sembed_error err = {0};
    sembed__precompiled *p = NULL;
    CHECK(sembed__precompiled_load(g_charsmap, "charsmap", &p, &err) == SEMBED_OK);
    loaded_model m = {"trained", {0}, NULL};
    CHECK(load_model(DATA "model.json", &m));
    t_lines *l = t_lines_open(DATA "pipeline.jsonl.gz");
    CHECK(l != NULL);
    sembed__tok_scratch s = {0};
    sembed__metaspace ms = {.replacement = 0x2581, .prepend_scheme = 2, .split = true};
    size_t len;
    const char *line;
    int rows = 0, bad = 0;
    while (p && m.u && l && (line = t_lines_next(l, &len))) {
        json_t *row = parse_line(line, len);
        if (!row) {
            CHECK(row != NULL);
            continue;
        }
        CHECK(decode_str(json_object_get(row, "text"), &s.text));
        CHECK(sembed__precompiled_apply(p, &s.text, &s.tmp));
        sembed__nt_swap(&s.text, &s.tmp);
        s.words.n = 0;
        sembed__spans_push(&s.words, 0, s.text.n);
        CHECK(sembed__metaspace_apply(&ms, true, &s));
        s.toks.n = 0;
        for (int32_t w = 0; w < s.words.n; w++)
            CHECK(sembed__unigram_tokenize(m.u, &m.vocab, &s.text, s.words.v[w], &s));
        bool ok = toks_match(row, &s.toks);
        CHECKF(ok, "pipeline %s", line);
        if (!ok && bad++ < 5) dump_toks(&s.toks);
        rows++;
        json_decref(row);
    }
    CHECKF(rows > 900, "%d rows", rows);
    if (l) t_lines_close(l);
    sembed__scratch_free(&s);
    sembed__unigram_free(m.u);
    sembed__vocab_free(&m.vocab);
    sembed__precompiled_free(p);
}

int main(void) {
    test_precompiled();
    test_precompiled_hostile();
    test_metaspace();
    test_unigram();
    test_unigram_bad();
    test_pipeline();
    free(g_charsmap);
    return t_done("test_unigram");
}
