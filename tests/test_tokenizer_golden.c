/* test_tokenizer_golden.c — token ids, offsets and lengths against Hugging Face tokenizers on
 * the parity corpus (tests/golden/tokenizer/, written by scripts/gen_tokenizer_golden.py).
 * Every id, every offset and every untruncated length must be identical. */
#include "testlib.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "tests/golden/tokenizer/"

typedef struct text {
    char *s;
    size_t len;
} text;

static text *load_corpus(int32_t *n) {
    t_lines *l = t_lines_open(GOLDEN "corpus.jsonl.gz");
    if (!l) return NULL;
    int32_t cap = 1024;
    text *v = malloc(sizeof *v * (size_t)cap);
    *n = 0;
    const char *line;
    size_t len;
    while ((line = t_lines_next(l, &len))) {
        json_error_t e;
        json_t *j = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!json_is_string(j)) {
            fprintf(stderr, "corpus line %d is not a JSON string\n", *n + 1);
            exit(1);
        }
        if (*n == cap) v = realloc(v, sizeof *v * (size_t)(cap *= 2));
        v[*n].len = json_string_length(j);
        v[*n].s = malloc(v[*n].len + 1);
        memcpy(v[*n].s, json_string_value(j), v[*n].len + 1);
        (*n)++;
        json_decref(j);
    }
    t_lines_close(l);
    return v;
}

static void show(const char *what, const text *t, int32_t i, const int32_t *a, int32_t na,
                 json_t *b) {
    fprintf(stderr, "  text %d (%zu bytes) %s mismatch\n    text: ", i, t->len, what);
    for (size_t k = 0; k < t->len && k < 160; k++) {
        unsigned char c = (unsigned char)t->s[k];
        if (c < 0x20 || c == 0x7F) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fprintf(stderr, "\n    sembed:     ");
    for (int32_t k = 0; k < na && k < 40; k++) fprintf(stderr, "%d ", a[k]);
    fprintf(stderr, "\n    tokenizers: ");
    for (size_t k = 0; k < json_array_size(b) && k < 40; k++)
        fprintf(stderr, "%lld ", (long long)json_integer_value(json_array_get(b, k)));
    fputc('\n', stderr);
}

static void check_model(const char *name, const text *corpus, int32_t n) {
    const char *dir = t_model_dir_opt(name);
    char golden[512];
    snprintf(golden, sizeof golden, GOLDEN "%s.jsonl.gz", name);
    t_lines *g = t_lines_open(golden);
    if (!g) {
        fprintf(stderr, "%s: no golden file %s\n", name, golden);
        t_failures++;
        return;
    }
    if (!dir) dir = t_model_dir(name); /* skips or fails as the environment says */
    sembed_error err = {0};
    sembed_tokenizer *tok = NULL;
    sembed_status st = sembed_tokenizer_load(dir, NULL, &tok, &err);
    CHECKF(st == SEMBED_OK, "%s: %s", name, err.msg);
    if (st) {
        t_lines_close(g);
        return;
    }
    int32_t cap = sembed_tokenizer_max_length(tok);
    int32_t *ids = malloc(sizeof *ids * (size_t)cap * (size_t)n);
    int32_t *offs = malloc(sizeof *offs * 2 * (size_t)cap * (size_t)n);
    sembed_tokens *outs = calloc((size_t)n, sizeof *outs);
    const char **texts = malloc(sizeof *texts * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        outs[i] = (sembed_tokens){.ids = ids + (size_t)i * cap,
                                  .offsets = offs + (size_t)i * 2 * cap, .capacity = cap};
        texts[i] = corpus[i].s;
        lens[i] = corpus[i].len;
    }
    st = sembed_tokenize_batch(tok, n, texts, lens, outs, 0, &err);
    CHECKF(st == SEMBED_OK, "%s: %s", name, err.msg);
    int32_t bad_ids = 0, bad_offsets = 0, bad_len = 0, shown = 0;
    int64_t tokens = 0;
    for (int32_t i = 0; i < n && st == SEMBED_OK; i++) {
        size_t len;
        const char *line = t_lines_next(g, &len);
        if (!line) {
            fprintf(stderr, "%s: golden file ends at text %d\n", name, i);
            t_failures++;
            break;
        }
        json_error_t e;
        json_t *j = json_loadb(line, len, 0, &e);
        json_t *gid = json_object_get(j, "ids"), *goff = json_object_get(j, "offsets");
        const sembed_tokens *o = &outs[i];
        tokens += o->n;
        bool ids_ok = (int32_t)json_array_size(gid) == o->n;
        for (int32_t k = 0; ids_ok && k < o->n; k++)
            ids_ok = json_integer_value(json_array_get(gid, (size_t)k)) == o->ids[k];
        bool off_ok = ids_ok && (int32_t)json_array_size(goff) == 2 * o->n;
        for (int32_t k = 0; off_ok && k < 2 * o->n; k++)
            off_ok = json_integer_value(json_array_get(goff, (size_t)k)) == o->offsets[k];
        bool len_ok = json_integer_value(json_object_get(j, "n_full")) == o->n_full &&
                      o->truncated == (o->n_full > o->n);
        if (!ids_ok) {
            bad_ids++;
            if (shown++ < 8) show("ids", &corpus[i], i, o->ids, o->n, gid);
        } else if (!off_ok) {
            bad_offsets++;
            if (shown++ < 8) show("offsets", &corpus[i], i, o->offsets, 2 * o->n, goff);
        } else if (!len_ok) {
            bad_len++;
            if (shown++ < 8)
                fprintf(stderr, "  text %d: n_full %d, golden %lld\n", i, o->n_full,
                        (long long)json_integer_value(json_object_get(j, "n_full")));
        }
        json_decref(j);
    }
    printf("%s: %d texts, %lld tokens: %d id mismatches, %d offset mismatches, %d length "
           "mismatches\n",
           name, n, (long long)tokens, bad_ids, bad_offsets, bad_len);
    CHECKF(bad_ids == 0 && bad_offsets == 0 && bad_len == 0, "%s differs from tokenizers", name);
    t_lines_close(g);
    free(ids);
    free(offs);
    free(outs);
    free(texts);
    free(lens);
    sembed_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    int32_t n = 0;
    text *corpus = load_corpus(&n);
    if (!corpus) {
        fprintf(stderr, "cannot read " GOLDEN "corpus.jsonl.gz\n");
        return 1;
    }
    CHECKF(n >= 20000, "the parity corpus has %d texts, fewer than 20,000", n);
    static const char *models[] = {"all-MiniLM-L6-v2", "all-mpnet-base-v2", "bert-base-cased",
                                   "bert-base-multilingual-cased", "bert-base-cased-json",
                                   "xlm-roberta-tokenizer"};
    if (argc > 1) {
        for (int i = 1; i < argc; i++) check_model(argv[i], corpus, n);
    } else {
        for (size_t i = 0; i < sizeof models / sizeof *models; i++) check_model(models[i], corpus, n);
    }
    for (int32_t i = 0; i < n; i++) free(corpus[i].s);
    free(corpus);
    return t_done("tokenizer golden");
}
