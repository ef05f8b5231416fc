/* test_embed_golden.c — sembed's vectors against sentence-transformers' fp32 CPU vectors
 * (tests/golden/embed/, written by scripts/gen_embedding_golden.py) for every golden text:
 * cosine >= 0.99999 and max abs difference <= 1e-4; token counts equal; and batch invariance:
 * each text's vector bit-identical alone and inside a batch of 64 mixed texts. Models come
 * from the cache (scripts/fetch_models.py); a missing one is skipped.
 *
 * Two stand-ins, built by scripts/fetch_models.py (sha256 pinned), since no PyPI package ships
 * the fp32 weights of bge-small-en-v1.5 or of any XLM-R model: bge-small-en-v1.5-dq (BERT, CLS
 * pooling, 12 layers, 512 tokens, do_lower_case; the real model's weights dequantized from an
 * int8 ONNX export, with its own tokenizer) and xlm-roberta-random (XLM-R Unigram tokenizer,
 * positions after padding_idx 1, mean pooling; RANDOM weights, so it checks the architecture's
 * forward pass and pooling, not embedding quality). CTest runs them as a separate entry
 * (test_embed_golden_standins, which names them); bge-small-en-v1.5-random's golden can be
 * checked by naming it. SEMBED_TEST_TEXT_STRIDE=k checks every k-th
 * text only: `make test` sets it for its sanitizer run and checks every text in Release. */
#include "testlib.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define GOLDEN "tests/golden/embed/"
#define CORPUS "tests/golden/tokenizer/corpus.jsonl.gz"
#define BATCH 64

static t_text *corpus;
static int32_t n_corpus;

typedef struct stats {
    double max_abs;
    double min_cos;
    int32_t worst;
    int32_t bad;
} stats;

static void compare(stats *st, const float *a, const float *g, int32_t dim, int32_t i) {
    double dot = 0, na = 0, ng = 0, mx = 0;
    for (int32_t k = 0; k < dim; k++) {
        dot += (double)a[k] * g[k], na += (double)a[k] * a[k], ng += (double)g[k] * g[k];
        double d = fabs((double)a[k] - g[k]);
        if (d > mx || d != d) mx = d != d ? INFINITY : d;
    }
    double cos = dot / (sqrt(na) * sqrt(ng) + 1e-30);
    if (mx > st->max_abs) st->max_abs = mx, st->worst = i;
    if (cos < st->min_cos || cos != cos) st->min_cos = cos;
    if (!(cos >= 0.99999 && mx <= 1e-4)) st->bad++;
}

static void check_model(const char *name) {
    const char *dir = t_model_dir_opt(name);
    if (!dir) {
        fprintf(stderr, "%s: not cached, skipped (python3 scripts/fetch_models.py %s)\n", name, name);
        if (getenv("SEMBED_REQUIRE_MODELS") && strcmp(getenv("SEMBED_REQUIRE_MODELS"), "1") == 0)
            CHECKF(false, "%s is required", name);
        return;
    }
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s.meta.json", name);
    json_error_t je;
    json_t *meta = json_load_file(path, 0, &je);
    CHECKF(meta != NULL, "%s: %s", path, je.text);
    if (!meta) return;
    const int32_t dim = (int32_t)json_integer_value(json_object_get(meta, "dim"));
    const int32_t n_all = (int32_t)json_integer_value(json_object_get(meta, "n_texts"));
    int32_t n = n_all;
    json_t *idx = json_object_get(meta, "corpus_indices"), *ntok = json_object_get(meta, "n_tokens");
    CHECK(n >= 500 && (int32_t)json_array_size(idx) == n && (int32_t)json_array_size(ntok) == n);
    snprintf(path, sizeof path, GOLDEN "%s.f32.gz", name);
    float *golden = t_read_f32_gz(path, (int64_t)n * dim);
    CHECKF(golden != NULL, "%s: cannot read %d x %d floats", path, n, dim);
    if (!golden || n < 500) goto out_meta;

    const char **texts = malloc(sizeof *texts * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        int32_t c = (int32_t)json_integer_value(json_array_get(idx, (size_t)i));
        if (c < 0 || c >= n_corpus) c = 0; /* a bad meta file fails the comparison */
        texts[i] = corpus[c].s, lens[i] = corpus[c].len;
    }
    /* token counts, then (SEMBED_TEST_TEXT_STRIDE) every k-th text kept, rows moved down */
    int32_t *ntk = malloc(sizeof *ntk * (size_t)n);
    for (int32_t i = 0; i < n; i++) ntk[i] = (int32_t)json_integer_value(json_array_get(ntok, (size_t)i));
    const int32_t stride = t_text_stride();
    if (stride > 1) {
        int32_t m = 0;
        for (int32_t i = 0; i < n; i += stride, m++) {
            texts[m] = texts[i], lens[m] = lens[i], ntk[m] = ntk[i];
            memmove(golden + (int64_t)m * dim, golden + (int64_t)i * dim, sizeof(float) * (size_t)dim);
        }
        printf("%s: every %dth golden text (SEMBED_TEST_TEXT_STRIDE): %d of %d\n", name, stride, m, n);
        n = m;
    }

    sembed_error err = {0};
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL;
    sembed_status s = sembed_model_load(dir, NULL, &model, &err);
    CHECKF(s == SEMBED_OK, "%s: %s", name, err.msg);
    if (s == SEMBED_OK) s = sembed_ctx_new(model, NULL, &ctx, &err);
    CHECKF(s == SEMBED_OK, "%s: %s", name, err.msg);
    if (s != SEMBED_OK) goto out;
    CHECK(sembed_model_dim(model) == dim);

    /* batches of 64 mixed texts: a fixed shuffle, so long and short ride together */
    int32_t *perm = malloc(sizeof *perm * (size_t)n);
    for (int32_t i = 0; i < n; i++) perm[i] = i;
    uint32_t r = 12345;
    for (int32_t i = n - 1; i > 0; i--) {
        r = r * 1103515245u + 12345u;
        int32_t j = (int32_t)((r >> 8) % (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    float *batched = malloc(sizeof(float) * (size_t)n * dim), *vb = malloc(sizeof(float) * BATCH * (size_t)dim);
    sembed_encode_info *info = malloc(sizeof *info * BATCH);
    const char *bt[BATCH];
    size_t bl[BATCH];
    int32_t tok_bad = 0;
    for (int32_t b0 = 0; b0 < n; b0 += BATCH) {
        int32_t m = n - b0 < BATCH ? n - b0 : BATCH;
        for (int32_t k = 0; k < m; k++) bt[k] = texts[perm[b0 + k]], bl[k] = lens[perm[b0 + k]];
        s = sembed_encode(ctx, m, bt, bl, vb, (int64_t)BATCH * dim, info, &err);
        CHECKF(s == SEMBED_OK, "%s: batch at %d: %s", name, b0, err.msg);
        if (s != SEMBED_OK) break;
        for (int32_t k = 0; k < m; k++) {
            int32_t i = perm[b0 + k];
            memcpy(batched + (int64_t)i * dim, vb + (int64_t)k * dim, sizeof(float) * (size_t)dim);
            if (info[k].n_tokens != ntk[i]) tok_bad++;
        }
    }
    CHECKF(tok_bad == 0, "%s: %d texts with a token count unlike sentence-transformers'", name, tok_bad);

    stats st = {0, 1, -1, 0};
    for (int32_t i = 0; i < n; i++)
        compare(&st, batched + (int64_t)i * dim, golden + (int64_t)i * dim, dim, i);
    printf("%s: %d texts: max abs diff %.3g (text %d), min cosine %.9f, %d out of tolerance\n",
           name, n, st.max_abs, st.worst, st.min_cos, st.bad);
    CHECKF(st.bad == 0, "%s: %d texts out of tolerance (cosine >= 0.99999, max abs <= 1e-4)", name,
           st.bad);

    /* the vectors differ between texts (a stand-in whose output ignored its input would pass
     * the comparison above): mean pairwise cosine over the first 100 texts */
    double sum_cos = 0;
    int32_t pairs = 0;
    for (int32_t i = 0; i < 100 && i < n; i++)
        for (int32_t j = i + 1; j < 100 && j < n; j++, pairs++) {
            const float *a = batched + (int64_t)i * dim, *b = batched + (int64_t)j * dim;
            double dot = 0, na = 0, nb = 0;
            for (int32_t k = 0; k < dim; k++)
                dot += (double)a[k] * b[k], na += (double)a[k] * a[k], nb += (double)b[k] * b[k];
            sum_cos += dot / (sqrt(na) * sqrt(nb) + 1e-30);
        }
    printf("%s: mean pairwise cosine of texts 0..99: %.3f\n", name, sum_cos / pairs);
    CHECKF(sum_cos / pairs < 0.9, "%s: texts get nearly the same vector (mean cosine %.3f)", name,
           sum_cos / pairs);

    /* batch invariance: each text alone vs inside the batch of 64 */
    int32_t differ = 0, alone = 0;
    for (int32_t i = 0; i < n; i++, alone++) {
        s = sembed_encode(ctx, 1, &texts[i], &lens[i], vb, dim, NULL, &err);
        if (s != SEMBED_OK || memcmp(vb, batched + (int64_t)i * dim, sizeof(float) * (size_t)dim)) {
            if (differ++ < 3) fprintf(stderr, "  %s: text %d differs alone vs in a batch\n", name, i);
        }
    }
    printf("%s: batch invariance: %d of %d texts differ (alone vs in a batch of %d)\n", name,
           differ, alone, BATCH);
    CHECKF(differ == 0, "%s: %d texts not batch-invariant", name, differ);

    /* the scalar reference ops reach the same parity (a few short texts: they are slow) */
    if (strcmp(name, "all-MiniLM-L6-v2") == 0) {
        sembed_ctx *rc = NULL;
        sembed_ctx_params rp = sembed_ctx_default_params();
        rp.reference_ops = 1;
        s = sembed_ctx_new(model, &rp, &rc, &err);
        CHECKF(s == SEMBED_OK, "%s", err.msg);
        stats rs = {0, 1, -1, 0};
        for (int32_t i = 0; i < 24 && s == SEMBED_OK; i++) {
            s = sembed_encode(rc, 1, &texts[i], &lens[i], vb, dim, NULL, &err);
            CHECKF(s == SEMBED_OK, "%s", err.msg);
            compare(&rs, vb, golden + (int64_t)i * dim, dim, i);
        }
        printf("%s (reference ops, 24 texts): max abs diff %.3g, min cosine %.9f\n", name,
               rs.max_abs, rs.min_cos);
        CHECKF(rs.bad == 0, "%s: reference ops: %d texts out of tolerance", name, rs.bad);
        sembed_ctx_free(rc);
    }

    /* output capacity: too small is an error that names the size needed */
    s = sembed_encode(ctx, 2, texts, lens, vb, 2 * dim - 1, NULL, &err);
    CHECK(s == SEMBED_ERR_TOO_SMALL && strstr(err.msg, "needs") != NULL);

    free(perm), free(batched), free(vb), free(info);
out:
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    free(texts), free(lens), free(golden), free(ntk);
out_meta:
    json_decref(meta);
}

int main(int argc, char **argv) {
    if (!t_corpus_load(CORPUS, &corpus, &n_corpus)) {
        fprintf(stderr, "cannot read %s\n", CORPUS);
        return 1;
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++) check_model(argv[i]);
    } else {
        check_model("all-MiniLM-L6-v2");
        check_model("all-mpnet-base-v2"); /* the stand-ins: CTest's test_embed_golden_standins */
    }
    t_corpus_free(corpus, n_corpus);
    if (t_checks == 0) return 77;
    return t_done("test_embed_golden");
}
