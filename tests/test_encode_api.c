/* test_encode_api.c — the encode options and model description of sembed.h against
 * sentence-transformers: prompts (default, by name, literal, empty), Pooling include_prompt
 * false, do_lower_case and Matryoshka dimensions, on variants of all-MiniLM-L6-v2 built here in a
 * temporary folder as scripts/gen_api_golden.py builds them (tests/golden/api/). Also:
 * sembed_encode_ids bit-identical to sembed_encode, the documented errors, and
 * sembed_model_describe against the folder's own config files. A missing model is skipped. */
#include "testlib.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "tests/golden/api/minilm_variants.json"
#define MODEL "all-MiniLM-L6-v2"

static const char *g_src; /* the cached model folder */

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *load_json_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    return json_load_file(path, 0, &je);
}

/* The variant folder: every file of the model linked (sub-folders made, their files linked:
 * never a link to a folder, which t_rmdir would follow), then the variant's files written and
 * `normalizer`'s fields merged into tokenizer.json's normalizer. */
static char *build_variant(json_t *files, json_t *normalizer) {
    char *dst = t_tmpdir();
    if (!dst) return NULL;
    DIR *d = opendir(g_src);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", g_src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        struct stat st;
        if (stat(from, &st) == 0 && S_ISDIR(st.st_mode)) {
            mkdir(to, 0755);
            DIR *sd = opendir(from);
            struct dirent *se;
            while (sd && (se = readdir(sd))) {
                if (se->d_name[0] == '.') continue;
                char f2[8192], t2[8192];
                snprintf(f2, sizeof f2, "%s/%s", from, se->d_name);
                snprintf(t2, sizeof t2, "%s/%s", to, se->d_name);
                CHECK(symlink(f2, t2) == 0);
            }
            if (sd) closedir(sd);
        } else {
            CHECK(symlink(from, to) == 0);
        }
    }
    if (d) closedir(d);
    const char *rel;
    json_t *text;
    json_object_foreach(files, rel, text) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dst, rel);
        char *slash = strrchr(path, '/');
        *slash = 0;
        mkdir(path, 0755);
        *slash = '/';
        unlink(path);
        CHECK(t_write_file(dst, rel, json_string_value(text), json_string_length(text)));
    }
    if (json_object_size(normalizer)) {
        json_t *tj = load_json_file(g_src, "tokenizer.json");
        CHECK(tj && json_object_update(json_object_get(tj, "normalizer"), normalizer) == 0);
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer.json", dst);
        unlink(path);
        CHECK(json_dump_file(tj, path, JSON_COMPACT) == 0);
        json_decref(tj);
    }
    return dst;
}

static float *decode_b64(const char *s, int64_t n_floats) {
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s), bytes = 0;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *p = strchr(k, s[i]);
        if (!p) break;
        acc = (acc << 6) | (uint32_t)(p - k), bits += 6;
        if (bits >= 8) out[bytes++] = (unsigned char)(acc >> (bits -= 8));
    }
    if ((int64_t)bytes != n_floats * 4) {
        free(out);
        return NULL;
    }
    float *v = malloc(bytes);
    memcpy(v, out, bytes); /* little-endian float32, as on the machines sembed targets */
    free(out);
    return v;
}

typedef struct stats {
    double max_abs, min_cos;
    int32_t bad;
} stats;

static void compare(stats *st, const float *a, const float *g, int32_t dim) {
    double dot = 0, na = 0, ng = 0, mx = 0;
    for (int32_t k = 0; k < dim; k++) {
        dot += (double)a[k] * g[k], na += (double)a[k] * a[k], ng += (double)g[k] * g[k];
        double d = fabs((double)a[k] - g[k]);
        if (d > mx || d != d) mx = d != d ? INFINITY : d;
    }
    double cos = dot / (sqrt(na) * sqrt(ng) + 1e-30);
    if (mx > st->max_abs) st->max_abs = mx;
    if (cos < st->min_cos || cos != cos) st->min_cos = cos;
    if (!(cos >= 0.99999 && mx <= 1e-4)) st->bad++;
}

/* ---- sembed_model_describe against the folder's files ------------------------------------------ */

static int64_t json_int(json_t *o, const char *key) {
    return json_integer_value(json_object_get(o, key));
}

/* Floats sembed reads from model.safetensors: every tensor but the pooler and position_ids
 * buffers, from the file's own header. The dtype of the word embeddings in *dtype. */
static int64_t safetensors_floats(const char *dir, char *dtype, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    uint64_t n = 0;
    int64_t total = -1;
    if (f && fread(&n, 8, 1, f) == 1 && n < (1u << 26)) {
        char *h = malloc(n);
        json_error_t je;
        json_t *root = fread(h, 1, n, f) == n ? json_loadb(h, n, 0, &je) : NULL;
        const char *name;
        json_t *t;
        total = root ? 0 : -1;
        json_object_foreach(root, name, t) {
            if (!strcmp(name, "__metadata__") || strstr(name, "pooler.") ||
                strstr(name, "position_ids"))
                continue;
            int64_t e = 1;
            for (size_t i = 0; i < json_array_size(json_object_get(t, "shape")); i++)
                e *= json_integer_value(json_array_get(json_object_get(t, "shape"), i));
            total += e;
            if (strstr(name, "word_embeddings.weight"))
                snprintf(dtype, cap, "%s", json_string_value(json_object_get(t, "dtype")));
        }
        json_decref(root);
        free(h);
    }
    if (f) fclose(f);
    return total;
}

static void check_describe(const sembed_model *m, const char *dir, json_t *files) {
    json_t *cfg = load_json_file(dir, "config.json");
    json_t *sb = load_json_file(dir, "sentence_bert_config.json");
    json_t *pool = load_json_file(dir, "1_Pooling/config.json");
    json_t *st = load_json_file(dir, "config_sentence_transformers.json");
    CHECK(cfg && sb && pool && st);
    if (!cfg || !sb || !pool || !st) goto out;
    sembed_model_info d;
    memset(&d, 0x5a, sizeof d);
    sembed_model_describe(m, &d);
    CHECK(!strcmp(d.architecture, json_string_value(json_object_get(cfg, "model_type"))));
    CHECK(d.vocab_size == json_int(cfg, "vocab_size"));
    CHECK(d.hidden_size == json_int(cfg, "hidden_size"));
    CHECK(d.n_layers == json_int(cfg, "num_hidden_layers"));
    CHECK(d.n_heads == json_int(cfg, "num_attention_heads"));
    CHECK(d.intermediate_size == json_int(cfg, "intermediate_size"));
    CHECK(d.max_position == json_int(cfg, "max_position_embeddings"));
    CHECK(d.max_length == json_int(sb, "max_seq_length"));
    CHECK(d.max_length == sembed_model_max_length(m));
    CHECK(d.dim == json_int(pool, "word_embedding_dimension") && d.dim == sembed_model_dim(m));
    CHECK(d.pooling == (json_is_true(json_object_get(pool, "pooling_mode_max_tokens"))   ? SEMBED_POOLING_MAX
                        : json_is_true(json_object_get(pool, "pooling_mode_cls_token")) ? SEMBED_POOLING_CLS
                                                                                        : SEMBED_POOLING_MEAN));
    json_t *inc = json_object_get(pool, "include_prompt");
    CHECK(d.include_prompt == (inc ? json_is_true(inc) : 1));
    CHECK(d.n_dense == 0);
    CHECK(d.normalize == 1); /* modules.json lists Normalize */
    CHECK(d.do_lower_case == json_is_true(json_object_get(sb, "do_lower_case")));
    char dtype[16] = "";
    int64_t floats = safetensors_floats(dir, dtype, sizeof dtype);
    CHECKF(d.n_params == floats, "n_params %lld, the file has %lld", (long long)d.n_params,
           (long long)floats);
    CHECK(!strcmp(d.weights_dtype, dtype));
    json_t *prompts = json_object_get(st, "prompts");
    const char *def = json_string_value(json_object_get(st, "default_prompt_name"));
    CHECK(d.n_prompts == (int32_t)json_object_size(prompts));
    CHECK(def ? d.default_prompt_name && !strcmp(d.default_prompt_name, def)
              : d.default_prompt_name == NULL);
    for (int32_t i = 0; i < d.n_prompts; i++) {
        const char *name = NULL, *text = sembed_model_prompt(m, i, &name);
        CHECK(text && name && json_is_string(json_object_get(prompts, name)) &&
              !strcmp(text, json_string_value(json_object_get(prompts, name))));
    }
    const char *name = "x";
    CHECK(sembed_model_prompt(m, d.n_prompts, &name) == NULL && name == NULL);
    CHECK(sembed_model_prompt(m, -1, NULL) == NULL);
    (void)files;
out:
    json_decref(cfg), json_decref(sb), json_decref(pool), json_decref(st);
}

/* ---- the golden cases ---------------------------------------------------------------------- */

static void opts_of(json_t *o, sembed_encode_opts *opts) {
    *opts = (sembed_encode_opts){0};
    opts->prompt_name = json_string_value(json_object_get(o, "prompt_name"));
    opts->prompt = json_string_value(json_object_get(o, "prompt"));
    opts->dimensions = (int32_t)json_integer_value(json_object_get(o, "dimensions"));
}

static void check_variant(json_t *v, const char **texts, const size_t *lens, int32_t n) {
    const char *vname = json_string_value(json_object_get(v, "name"));
    char *dir = build_variant(json_object_get(v, "files"), json_object_get(v, "tokenizer_normalizer"));
    CHECK(dir != NULL);
    if (!dir) return;
    sembed_error err = {0};
    sembed_model *m = NULL;
    sembed_ctx *ctx = NULL;
    sembed_status s = sembed_model_load(dir, NULL, &m, &err);
    CHECKF(s == SEMBED_OK, "%s: %s", vname, err.msg);
    if (s == SEMBED_OK) s = sembed_ctx_new(m, NULL, &ctx, &err);
    CHECKF(s == SEMBED_OK, "%s: %s", vname, err.msg);
    if (s != SEMBED_OK) goto out;
    check_describe(m, dir, json_object_get(v, "files"));

    const int32_t E = sembed_model_dim(m);
    float *vec = malloc(sizeof(float) * (size_t)n * E), *vec2 = malloc(sizeof(float) * (size_t)n * E);
    sembed_encode_info *info = malloc(sizeof *info * (size_t)n);
    size_t ci;
    json_t *c;
    json_array_foreach(json_object_get(v, "cases"), ci, c) {
        sembed_encode_opts o;
        opts_of(json_object_get(c, "opts"), &o);
        const int32_t dim = (int32_t)json_integer_value(json_object_get(c, "dim"));
        CHECK(dim == (o.dimensions ? o.dimensions : E));
        float *golden = decode_b64(json_string_value(json_object_get(c, "vectors")), (int64_t)n * dim);
        CHECKF(golden != NULL, "%s case %zu: vectors are not %d x %d floats", vname, ci, n, dim);
        if (!golden) continue;
        /* all texts in one call (mixed lengths in one batch), then each alone: bit-identical */
        s = sembed_encode_ex(ctx, n, texts, lens, &o, vec, (int64_t)n * dim, info, &err);
        CHECKF(s == SEMBED_OK, "%s case %zu: %s", vname, ci, err.msg);
        stats st = {0, 1, 0};
        int32_t tok_bad = 0, differ = 0;
        for (int32_t i = 0; i < n && s == SEMBED_OK; i++) {
            compare(&st, vec + (int64_t)i * dim, golden + (int64_t)i * dim, dim);
            json_t *nt = json_array_get(json_object_get(c, "n_tokens"), (size_t)i);
            if (info[i].n_tokens != json_integer_value(nt)) {
                tok_bad++;
                fprintf(stderr, "  %s case %zu text %d: %d tokens, sentence-transformers %lld\n",
                        vname, ci, i, info[i].n_tokens, (long long)json_integer_value(nt));
            }
            sembed_status s1 = sembed_encode_ex(ctx, 1, &texts[i], &lens[i], &o, vec2, dim, NULL, &err);
            if (s1 != SEMBED_OK || memcmp(vec2, vec + (int64_t)i * dim, sizeof(float) * (size_t)dim))
                differ++;
        }
        char *oj = json_dumps(json_object_get(c, "opts"), JSON_COMPACT);
        printf("%s %s: %d texts, dim %d: max abs diff %.3g, min cosine %.9f, %d out of tolerance\n",
               vname, oj, n, dim, st.max_abs, st.min_cos, st.bad);
        CHECKF(st.bad == 0, "%s %s: %d texts out of tolerance", vname, oj, st.bad);
        CHECKF(tok_bad == 0, "%s %s: %d token counts unlike sentence-transformers'", vname, oj, tok_bad);
        CHECKF(differ == 0, "%s %s: %d texts differ alone vs in the batch", vname, oj, differ);
        if (o.dimensions) { /* rows are dimensions floats apart: the capacity is checked so */
            s = sembed_encode_ex(ctx, n, texts, lens, &o, vec, (int64_t)n * dim - 1, NULL, &err);
            CHECK(s == SEMBED_ERR_TOO_SMALL && strstr(err.msg, "needs") != NULL);
        }
        free(oj);
        free(golden);
    }

    /* sembed_encode is sembed_encode_ex(opts = NULL): the folder's default prompt included */
    s = sembed_encode(ctx, n, texts, lens, vec, (int64_t)n * E, NULL, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    s = sembed_encode_ex(ctx, n, texts, lens, NULL, vec2, (int64_t)n * E, NULL, &err);
    CHECK(s == SEMBED_OK && !memcmp(vec, vec2, sizeof(float) * (size_t)n * E));
    sembed_model_info d;
    sembed_model_describe(m, &d);
    if (d.default_prompt_name) {
        sembed_encode_opts o = {.prompt_name = d.default_prompt_name};
        s = sembed_encode_ex(ctx, n, texts, lens, &o, vec2, (int64_t)n * E, NULL, &err);
        CHECK(s == SEMBED_OK && !memcmp(vec, vec2, sizeof(float) * (size_t)n * E));
        /* the ids of prompt + text give the prompted vectors, bit for bit (pooling over the
         * prompt only: with include_prompt false the ids carry no prompt length) */
        const char *ptext = NULL;
        for (int32_t i = 0; i < d.n_prompts; i++) {
            const char *pn = NULL, *pt = sembed_model_prompt(m, i, &pn);
            if (!strcmp(pn, d.default_prompt_name)) ptext = pt;
        }
        const int32_t R = sembed_model_max_length(m);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)R), differ = 0;
        for (int32_t i = 0; i < n && ptext && d.include_prompt; i++) {
            size_t pl = strlen(ptext);
            char *cat = malloc(pl + lens[i] + 1);
            memcpy(cat, ptext, pl);
            memcpy(cat + pl, texts[i], lens[i]);
            sembed_tokens t = {.ids = ids, .capacity = R};
            const int32_t *ip[1] = {ids};
            s = sembed_tokenize(sembed_model_tokenizer(m), cat, pl + lens[i], &t, &err);
            if (s == SEMBED_OK) s = sembed_encode_ids(ctx, 1, ip, &t.n, NULL, vec2, E, NULL, &err);
            if (s != SEMBED_OK || memcmp(vec2, vec + (int64_t)i * E, sizeof(float) * (size_t)E))
                differ++;
            free(cat);
        }
        CHECKF(differ == 0, "%s: %d texts: ids of prompt + text differ from the prompted text", vname,
               differ);
        free(ids);
        /* an unknown name is an error naming it */
        o.prompt_name = "no-such-prompt";
        s = sembed_encode_ex(ctx, n, texts, lens, &o, vec2, (int64_t)n * E, NULL, &err);
        CHECK(s == SEMBED_ERR_INVALID_ARG && strstr(err.msg, "no-such-prompt") != NULL);
    }
    free(vec), free(vec2), free(info);
out:
    sembed_ctx_free(ctx);
    sembed_model_free(m);
    t_rmdir(dir);
}

/* ---- sembed_encode_ids and the errors ------------------------------------------------------- */

static void check_ids(const char **texts, const size_t *lens, int32_t n) {
    sembed_error err = {0};
    sembed_model *m = NULL;
    sembed_ctx *ctx = NULL, *strict = NULL;
    sembed_status s = sembed_model_load(g_src, NULL, &m, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    if (s == SEMBED_OK) s = sembed_ctx_new(m, NULL, &ctx, &err);
    sembed_ctx_params sp = sembed_ctx_default_params();
    sp.strict_length = 1;
    if (s == SEMBED_OK) s = sembed_ctx_new(m, &sp, &strict, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    if (s != SEMBED_OK) goto out;
    const int32_t E = sembed_model_dim(m), R = sembed_model_max_length(m);
    const sembed_tokenizer *tok = sembed_model_tokenizer(m);
    int32_t **ids = malloc(sizeof *ids * (size_t)n), *n_ids = malloc(sizeof *n_ids * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        ids[i] = malloc(sizeof(int32_t) * (size_t)R);
        sembed_tokens t = {.ids = ids[i], .capacity = R};
        CHECK(sembed_tokenize(tok, texts[i], lens[i], &t, NULL) == SEMBED_OK);
        n_ids[i] = t.n;
    }
    float *a = malloc(sizeof(float) * (size_t)n * E), *b = malloc(sizeof(float) * (size_t)n * E);
    sembed_encode_info *ia = malloc(sizeof *ia * (size_t)n), *ib = malloc(sizeof *ib * (size_t)n);
    s = sembed_encode(ctx, n, texts, lens, a, (int64_t)n * E, ia, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    s = sembed_encode_ids(ctx, n, (const int32_t *const *)ids, n_ids, NULL, b, (int64_t)n * E, ib, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    int32_t differ = 0;
    for (int32_t i = 0; i < n; i++)
        if (memcmp(a + (int64_t)i * E, b + (int64_t)i * E, sizeof(float) * (size_t)E) ||
            ia[i].n_tokens != ib[i].n_tokens || ib[i].truncated != 0)
            differ++;
    printf("encode_ids vs encode: %d of %d inputs differ\n", differ, n);
    CHECK(differ == 0);
    /* with dimensions too */
    sembed_encode_opts o = {.dimensions = 100};
    s = sembed_encode_ex(ctx, n, texts, lens, &o, a, (int64_t)n * 100, NULL, &err);
    CHECK(s == SEMBED_OK);
    s = sembed_encode_ids(ctx, n, (const int32_t *const *)ids, n_ids, &o, b, (int64_t)n * 100, NULL, &err);
    CHECK(s == SEMBED_OK && !memcmp(a, b, sizeof(float) * (size_t)n * 100));
    for (int32_t i = 0; i < n; i++) { /* renormalized after truncation: unit rows */
        double nn = 0;
        for (int32_t k = 0; k < 100; k++) nn += (double)a[i * 100 + k] * a[i * 100 + k];
        CHECK(fabs(sqrt(nn) - 1) < 1e-5);
    }

    /* bad ids, empty inputs, prompts, dimensions: errors naming input and position */
    const int32_t V = sembed_tokenizer_vocab_size(tok);
    sembed_model_info d;
    sembed_model_describe(m, &d);
    int32_t bad[4] = {101, 7592, -1, 102};
    const int32_t *in[2] = {ids[0], bad};
    int32_t nn[2] = {n_ids[0], 4};
    s = sembed_encode_ids(ctx, 2, in, nn, NULL, b, 2 * E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INPUT && strstr(err.msg, "input 1, position 2") && strstr(err.msg, "-1"),
           "%s", err.msg);
    bad[2] = d.vocab_size;
    s = sembed_encode_ids(ctx, 2, in, nn, NULL, b, 2 * E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INPUT && strstr(err.msg, "input 1, position 2"), "%s", err.msg);
    bad[2] = d.vocab_size - 1; /* the last row of the table is a valid id */
    s = sembed_encode_ids(ctx, 2, in, nn, NULL, b, 2 * E, NULL, &err);
    CHECKF(s == SEMBED_OK, "%s", err.msg);
    CHECK(V <= d.vocab_size);
    nn[1] = 0;
    s = sembed_encode_ids(ctx, 2, in, nn, NULL, b, 2 * E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INPUT && strstr(err.msg, "input 1"), "%s", err.msg);
    nn[1] = 4;
    sembed_encode_opts po = {.prompt = "query: "};
    s = sembed_encode_ids(ctx, 2, in, nn, &po, b, 2 * E, NULL, &err);
    CHECK(s == SEMBED_ERR_INVALID_ARG);
    po = (sembed_encode_opts){.prompt_name = "query"};
    s = sembed_encode_ids(ctx, 2, in, nn, &po, b, 2 * E, NULL, &err);
    CHECK(s == SEMBED_ERR_INVALID_ARG);
    sembed_encode_opts big = {.dimensions = E + 1}, neg = {.dimensions = -3};
    s = sembed_encode_ex(ctx, 1, texts, lens, &big, b, (int64_t)2 * E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INVALID_ARG && strstr(err.msg, "dimensions"), "%s", err.msg);
    s = sembed_encode_ids(ctx, 1, in, nn, &neg, b, E, NULL, &err);
    CHECK(s == SEMBED_ERR_INVALID_ARG);
    sembed_encode_opts un = {.prompt_name = "query"}; /* this folder has no prompts */
    s = sembed_encode_ex(ctx, 1, texts, lens, &un, b, E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INVALID_ARG && strstr(err.msg, "'query'"), "%s", err.msg);

    /* too long: truncated to the max length (info says so), or an error in strict mode */
    int32_t *lng = malloc(sizeof(int32_t) * (size_t)(R + 9));
    for (int32_t j = 0; j < R + 9; j++) lng[j] = j == 0 ? 101 : 1000 + j % 50;
    const int32_t *lp[1] = {lng};
    int32_t ln[1] = {R + 9};
    sembed_encode_info li;
    s = sembed_encode_ids(ctx, 1, lp, ln, NULL, a, E, &li, &err);
    CHECK(s == SEMBED_OK && li.truncated == 1 && li.n_tokens == R);
    ln[0] = R; /* the same first R ids: the same vector */
    s = sembed_encode_ids(ctx, 1, lp, ln, NULL, b, E, &li, &err);
    CHECK(s == SEMBED_OK && li.truncated == 0 && !memcmp(a, b, sizeof(float) * (size_t)E));
    ln[0] = R + 9;
    s = sembed_encode_ids(strict, 1, lp, ln, NULL, a, E, NULL, &err);
    CHECKF(s == SEMBED_ERR_TOO_LONG && strstr(err.msg, "input 0"), "%s", err.msg);
    free(lng);

    /* a prompt with invalid UTF-8 is named as the prompt */
    sembed_encode_opts bp = {.prompt = "bad \xff prompt"};
    s = sembed_encode_ex(ctx, 1, texts, lens, &bp, a, E, NULL, &err);
    CHECKF(s == SEMBED_ERR_INPUT && strstr(err.msg, "prompt"), "%s", err.msg);

    for (int32_t i = 0; i < n; i++) free(ids[i]);
    free(ids), free(n_ids), free(a), free(b), free(ia), free(ib);
out:
    sembed_ctx_free(strict);
    sembed_ctx_free(ctx);
    sembed_model_free(m);
}

/* sembed_device_warm_start: nothing to start for a CPU or malformed device, CPU arithmetic or
 * NULL params; "auto" and "cuda" start a thread in a CUDA build (where a machine without a GPU
 * lets it end at once) and none otherwise; the wait joins and frees it (the sanitizer build
 * checks the thread and memory). */
static sembed_device_warm *warm_for(const char *device, sembed_precision precision) {
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.device = device, cp.precision = precision;
    return sembed_device_warm_start(&cp);
}

static void check_device_warm(void) {
    CHECK(warm_for("cpu", SEMBED_PRECISION_FP32) == NULL && warm_for("gpu", SEMBED_PRECISION_FP32) == NULL &&
          warm_for("cuda:x", SEMBED_PRECISION_FP32) == NULL && warm_for(NULL, SEMBED_PRECISION_FP32) == NULL);
    CHECK(sembed_device_warm_start(NULL) == NULL && warm_for("auto", SEMBED_PRECISION_INT8) == NULL &&
          warm_for("cuda", SEMBED_PRECISION_FP32_STRICT) == NULL);
    sembed_device_warm *a = warm_for("auto", SEMBED_PRECISION_FP32), *b = warm_for("cuda:0", SEMBED_PRECISION_BF16);
#ifdef SEMBED_HAVE_CUDA
    CHECK(a != NULL && b != NULL);
#else
    CHECK(a == NULL && b == NULL);
#endif
    sembed_device_warm_wait(a);
    sembed_device_warm_wait(b);
    sembed_device_warm_wait(NULL);
}

int main(void) {
    check_device_warm();
    g_src = t_model_dir_opt(MODEL);
    if (!g_src) {
        fprintf(stderr, "%s: not cached, skipped (python3 scripts/fetch_models.py %s)\n", MODEL,
                MODEL);
        const char *req = getenv("SEMBED_REQUIRE_MODELS");
        if (!req || strcmp(req, "1") != 0) return 77;
        CHECKF(false, "%s is required", MODEL);
        return t_done("test_encode_api");
    }
    json_error_t je;
    json_t *g = json_load_file(GOLDEN, 0, &je);
    CHECKF(g != NULL, "%s: %s", GOLDEN, je.text);
    if (!g) return t_done("test_encode_api");
    json_t *jt = json_object_get(g, "texts");
    const int32_t n = (int32_t)json_array_size(jt);
    CHECK(n >= 8);
    const char **texts = malloc(sizeof *texts * (size_t)n);
    size_t *lens = malloc(sizeof *lens * (size_t)n);
    for (int32_t i = 0; i < n; i++) {
        texts[i] = json_string_value(json_array_get(jt, (size_t)i));
        lens[i] = json_string_length(json_array_get(jt, (size_t)i));
    }
    size_t vi;
    json_t *v;
    json_array_foreach(json_object_get(g, "variants"), vi, v) check_variant(v, texts, lens, n);
    check_ids(texts, lens, n);
    free(texts), free(lens);
    json_decref(g);
    return t_done("test_encode_api");
}
