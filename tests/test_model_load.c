/* test_model_load.c — bad model folders through sembed_model_load: what only the whole load can
 * catch. The parsers alone are tested elsewhere (tests/test_safetensors.c: every rejection case
 * of the safetensors format; tests/test_config.c: every field of every configuration file);
 * here each case is a small valid random folder (built in a temp dir, no model cache needed)
 * with one thing broken, and the check is that the load fails with the right status and a
 * message naming the file (its full path) and the reason:
 *   - the safetensors rejections of ../shared/reference/robustness.md §1.1, reaching the caller
 *     through the load with the weights file's path (one case each, not the parser's variants);
 *   - tensors against config.json: missing, misshapen, unreadable dtype, layers beyond
 *     num_hidden_layers, two word-embedding sets; the Dense module's weights;
 *   - missing files, invalid or missing config.json fields, heads not dividing hidden,
 *     modules.json / 1_Pooling / Dense / sentence_bert_config errors, a tokenizer with more ids
 *     than vocab_size;
 *   - the valid folder loads and encodes; BF16 weights give the same vectors as the same
 *     values in F32; every allocation of a load failing in turn gives NOMEM (or a success),
 *     never a crash or a leak. */
#include "testlib.h"

#include "common.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The valid folder: BERT, V 16, H 8, 2 layers, 2 heads, I 16, P 16; mean pooling, a Dense
 * 8 -> 4 with Tanh, Normalize. */
enum { V = 16, H = 8, L = 2, A = 2, I = 16, P = 16, T = 2, E = 4 };

static const char VOCAB[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nthe\ncat\nsat\n"
                            "on\nmat\n##s\na\n.\n,\n";
static const char CONFIG[] = "{\"model_type\": \"bert\", \"vocab_size\": 16, \"hidden_size\": 8, "
                             "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
                             "\"intermediate_size\": 16, \"max_position_embeddings\": 16, "
                             "\"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, "
                             "\"hidden_act\": \"gelu\", \"pad_token_id\": 0}";
static const char MODULES[] =
    "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": "
    "\"sentence_transformers.models.Transformer\"},"
    " {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\": "
    "\"sentence_transformers.models.Pooling\"},"
    " {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Dense\", \"type\": "
    "\"sentence_transformers.models.Dense\"},"
    " {\"idx\": 3, \"name\": \"3\", \"path\": \"3_Normalize\", \"type\": "
    "\"sentence_transformers.models.Normalize\"}]";
static const char POOLING[] = "{\"word_embedding_dimension\": 8, \"pooling_mode_cls_token\": false, "
                              "\"pooling_mode_mean_tokens\": true}";
static const char DENSE[] = "{\"in_features\": 8, \"out_features\": 4, \"bias\": true, "
                            "\"activation_function\": \"torch.nn.modules.activation.Tanh\"}";
static const char SBERT[] = "{\"max_seq_length\": 12, \"do_lower_case\": false}";

/* ---- writing safetensors files ---------------------------------------------------------- */

#define MAX_TENSORS 64

typedef struct tdef {
    char name[200];
    const char *dtype; /* "F32", "BF16", "I32", ... */
    int n_dims;
    int64_t shape[2];
} tdef;

typedef struct tlist {
    tdef t[MAX_TENSORS];
    int n;
} tlist;

static void add(tlist *l, const char *name, const char *dtype, int n_dims, int64_t d0, int64_t d1) {
    if (l->n == MAX_TENSORS) abort();
    tdef *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype, t->n_dims = n_dims, t->shape[0] = d0, t->shape[1] = d1;
}

static tdef *find_t(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) return &l->t[i];
    return NULL;
}

static void drop_t(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->t[i].name, name) == 0) {
            memmove(&l->t[i], &l->t[i + 1], sizeof *l->t * (size_t)(l->n - i - 1));
            l->n--;
            return;
        }
    abort();
}

/* The BERT encoder's tensors for the config above (prefix: "" or "bert."). */
static void bert_tensors(tlist *l, const char *prefix, const char *dtype) {
    char n[200];
#define ADD(name, nd, d0, d1) (snprintf(n, sizeof n, "%s%s", prefix, name), add(l, n, dtype, nd, d0, d1))
    l->n = 0;
    ADD("embeddings.word_embeddings.weight", 2, V, H);
    ADD("embeddings.position_embeddings.weight", 2, P, H);
    ADD("embeddings.token_type_embeddings.weight", 2, T, H);
    ADD("embeddings.LayerNorm.weight", 1, H, 0);
    ADD("embeddings.LayerNorm.bias", 1, H, 0);
    static const struct {
        const char *s;
        int nd;
        int64_t d0, d1;
    } per[] = {
        {"attention.self.query.weight", 2, H, H},      {"attention.self.query.bias", 1, H, 0},
        {"attention.self.key.weight", 2, H, H},        {"attention.self.key.bias", 1, H, 0},
        {"attention.self.value.weight", 2, H, H},      {"attention.self.value.bias", 1, H, 0},
        {"attention.output.dense.weight", 2, H, H},    {"attention.output.dense.bias", 1, H, 0},
        {"attention.output.LayerNorm.weight", 1, H, 0}, {"attention.output.LayerNorm.bias", 1, H, 0},
        {"intermediate.dense.weight", 2, I, H},        {"intermediate.dense.bias", 1, I, 0},
        {"output.dense.weight", 2, H, I},              {"output.dense.bias", 1, H, 0},
        {"output.LayerNorm.weight", 1, H, 0},          {"output.LayerNorm.bias", 1, H, 0},
    };
    for (int layer = 0; layer < L; layer++)
        for (size_t k = 0; k < sizeof per / sizeof *per; k++) {
            char s[64];
            snprintf(s, sizeof s, "encoder.layer.%d.%s", layer, per[k].s);
            ADD(s, per[k].nd, per[k].d0, per[k].d1);
        }
    ADD("pooler.dense.weight", 2, H, H);
    ADD("pooler.dense.bias", 1, H, 0);
#undef ADD
}

static int dtype_bytes(const char *d) {
    if (!strcmp(d, "F32") || !strcmp(d, "I32") || !strcmp(d, "U32")) return 4;
    if (!strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "I16")) return 2;
    if (!strcmp(d, "F64") || !strcmp(d, "I64")) return 8;
    return 1;
}

/* Value k of a tensor: a fixed pseudo-random float in about [-0.5, 0.5] whose low 16 bits are
 * zero, so that F32 and BF16 files hold the same numbers; LayerNorm gains near 1. */
static float value(const char *name, int64_t k) {
    if (strncmp(name, "bert.", 5) == 0) name += 5; /* the same values under a prefix */
    uint64_t h = 1469598103934665603u;
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211u;
    uint64_t z = h + (uint64_t)(k + 1) * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    float f = (float)((double)(z >> 40) / 16777216.0 - 0.5);
    if (strstr(name, "LayerNorm.weight")) f = 1.0f + 0.2f * f;
    uint32_t u;
    memcpy(&u, &f, 4);
    u &= 0xFFFF0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* Writes dir/name as a safetensors file of the tensors in l. Header and data are built as
 * valid; `extra_header` (may be NULL) is appended inside the header object as raw JSON, and
 * `trail` bytes are appended after the data (negative: that many are cut off). */
static void write_st(const char *dir, const char *name, const tlist *l, const char *extra_header,
                     int64_t trail) {
    size_t cap = 1 << 16, len = 0, data_len = 0;
    char *hdr = malloc(cap);
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < l->n; i++) {
        const tdef *t = &l->t[i];
        size_t nb = (size_t)dtype_bytes(t->dtype);
        for (int d = 0; d < t->n_dims; d++) nb *= (size_t)t->shape[d];
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                                t->dtype);
        for (int d = 0; d < t->n_dims; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", data_len,
                                data_len + nb);
        data_len += nb;
    }
    if (extra_header) len += (size_t)snprintf(hdr + len, cap - len, ",%s", extra_header);
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    size_t total = 8 + len + data_len + (trail > 0 ? (size_t)trail : 0);
    uint8_t *buf = calloc(1, total);
    uint64_t n = len;
    for (int b = 0; b < 8; b++) buf[b] = (uint8_t)(n >> (8 * b));
    memcpy(buf + 8, hdr, len);
    uint8_t *p = buf + 8 + len;
    for (int i = 0; i < l->n; i++) {
        const tdef *t = &l->t[i];
        int64_t ne = 1;
        for (int d = 0; d < t->n_dims; d++) ne *= t->shape[d];
        int nb = dtype_bytes(t->dtype);
        for (int64_t k = 0; k < ne; k++, p += nb) {
            float f = value(t->name, k);
            uint32_t u;
            memcpy(&u, &f, 4);
            if (nb == 4) memcpy(p, &u, 4); /* F32 (or I32: the same bytes, reinterpreted) */
            else if (nb == 2) p[0] = (uint8_t)(u >> 16), p[1] = (uint8_t)(u >> 24); /* BF16 */
            else memset(p, 0x3c, (size_t)nb);
        }
    }
    size_t out = trail < 0 ? total - (size_t)(-trail) : total;
    if (!t_write_file(dir, name, buf, out)) abort();
    free(buf), free(hdr);
}

/* Writes raw safetensors bytes: the 8-byte length `hlen`, then `header`, then `data_len` bytes. */
static void write_st_raw(const char *dir, const char *name, uint64_t hlen, const char *header,
                         size_t data_len) {
    size_t hl = strlen(header), total = 8 + hl + data_len;
    uint8_t *buf = calloc(1, total);
    for (int b = 0; b < 8; b++) buf[b] = (uint8_t)(hlen >> (8 * b));
    memcpy(buf + 8, header, hl);
    if (!t_write_file(dir, name, buf, total)) abort();
    free(buf);
}

/* ---- the folder -------------------------------------------------------------------------- */

static void put(const char *dir, const char *name, const char *text) {
    if (!t_write_file(dir, name, text, strlen(text))) {
        fprintf(stderr, "cannot write %s/%s\n", dir, name);
        abort();
    }
}

static void sub(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    mkdir(p, 0755);
}

static void del(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

static void dense_tensors(tlist *l, int64_t out, int64_t in, bool bias) {
    l->n = 0;
    add(l, "linear.weight", "F32", 2, out, in);
    if (bias) add(l, "linear.bias", "F32", 1, out, 0);
}

/* A fresh valid folder (free with t_rmdir). */
static char *valid_folder(void) {
    char *dir = t_tmpdir();
    if (!dir) abort();
    put(dir, "config.json", CONFIG);
    put(dir, "vocab.txt", VOCAB);
    put(dir, "tokenizer_config.json", "{\"do_lower_case\": true, \"model_max_length\": 512}");
    put(dir, "modules.json", MODULES);
    put(dir, "sentence_bert_config.json", SBERT);
    sub(dir, "1_Pooling"), sub(dir, "2_Dense"), sub(dir, "3_Normalize");
    put(dir, "1_Pooling/config.json", POOLING);
    put(dir, "2_Dense/config.json", DENSE);
    tlist l;
    dense_tensors(&l, E, H, true);
    write_st(dir, "2_Dense/model.safetensors", &l, NULL, 0);
    bert_tensors(&l, "", "F32");
    write_st(dir, "model.safetensors", &l, NULL, 0);
    return dir;
}

/* Loads dir and checks the failure: status `want`, a message that holds dir + "/" + file (the
 * file's full path; file NULL: dir alone) and `reason`. */
static void expect_fail(const char *what, const char *dir, sembed_status want, const char *file,
                        const char *reason) {
    sembed_error err = {0};
    sembed_model *m = (sembed_model *)&err; /* must be reset to NULL */
    sembed_status s = sembed_model_load(dir, NULL, &m, &err);
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, file ? "/" : "", file ? file : "");
    CHECKF(s == want, "%s: status %d, expected %d (%s)", what, (int)s, (int)want, err.msg);
    CHECKF(m == NULL, "%s: model not NULL after a failure", what);
    CHECKF(strstr(err.msg, path) != NULL, "%s: message does not name %s: %s", what, path, err.msg);
    CHECKF(strstr(err.msg, reason) != NULL, "%s: message lacks \"%s\": %s", what, reason, err.msg);
    if (s == SEMBED_OK) sembed_model_free(m);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_valid(void) {
    char *dir = valid_folder();
    sembed_error err = {0};
    sembed_model *m = NULL;
    sembed_status s = sembed_model_load(dir, NULL, &m, &err);
    CHECKF(s == SEMBED_OK, "valid folder: %s", err.msg);
    float v32[E] = {0}, v16[E] = {0};
    const char *text = "hello the cats sat on a mat, world.";
    if (s == SEMBED_OK) {
        CHECK(sembed_model_dim(m) == E);
        sembed_ctx *ctx = NULL;
        s = sembed_ctx_new(m, NULL, &ctx, &err);
        if (s == SEMBED_OK) s = sembed_encode(ctx, 1, &text, NULL, v32, E, NULL, &err);
        CHECKF(s == SEMBED_OK, "encode: %s", err.msg);
        double n2 = 0;
        for (int k = 0; k < E; k++) n2 += (double)v32[k] * v32[k];
        CHECKF(fabs(n2 - 1) < 1e-5, "normalized output has squared norm %g", n2);
        sembed_ctx_free(ctx);
        sembed_model_free(m);
    }
    /* the same values as BF16 (and under a "bert." prefix): the same vector, bit for bit */
    tlist l;
    bert_tensors(&l, "bert.", "BF16");
    write_st(dir, "model.safetensors", &l, NULL, 0);
    m = NULL;
    s = sembed_model_load(dir, NULL, &m, &err);
    CHECKF(s == SEMBED_OK, "BF16 folder: %s", err.msg);
    if (s == SEMBED_OK) {
        sembed_ctx *ctx = NULL;
        s = sembed_ctx_new(m, NULL, &ctx, &err);
        if (s == SEMBED_OK) s = sembed_encode(ctx, 1, &text, NULL, v16, E, NULL, &err);
        CHECKF(s == SEMBED_OK, "encode: %s", err.msg);
        CHECK(memcmp(v32, v16, sizeof v32) == 0);
        sembed_ctx_free(ctx);
        sembed_model_free(m);
    }
    /* max_length beyond the position table is the caller's error */
    sembed_model_params mp = sembed_model_default_params();
    mp.max_length = P + 1;
    m = NULL;
    s = sembed_model_load(dir, &mp, &m, &err);
    CHECKF(s == SEMBED_ERR_INVALID_ARG && strstr(err.msg, "max_length 17 exceeds"), "%s", err.msg);
    t_rmdir(dir);
}

/* The safetensors rejections of robustness.md §1.1, through the whole load (each has its
 * parser-level variants in tests/test_safetensors.c). */
static void test_safetensors_cases(void) {
    const char *F = "model.safetensors";
    char *dir = valid_folder();
    tlist l;
    bert_tensors(&l, "", "F32");
    char hdr[512];

    t_write_file(dir, F, "\x10\0\0", 3);
    expect_fail("file under 8 bytes", dir, SEMBED_ERR_FORMAT, F, "too small for the 8-byte header");
    write_st_raw(dir, F, (uint64_t)1 << 40, "{}", 0);
    expect_fail("header too large", dir, SEMBED_ERR_FORMAT, F, "more than the limit");
    write_st_raw(dir, F, 4096, "{}      ", 0);
    expect_fail("header past the end", dir, SEMBED_ERR_FORMAT, F, "runs past the end of the file");
    write_st_raw(dir, F, 8, "{\"\xff\":1}  ", 0);
    expect_fail("header not UTF-8", dir, SEMBED_ERR_FORMAT, F, "not valid UTF-8");
    write_st_raw(dir, F, 8, "{\"a\": ]}", 0);
    expect_fail("header not JSON", dir, SEMBED_ERR_FORMAT, F, "not valid JSON");
    write_st_raw(dir, F, 8, "[1,2,3] ", 0);
    expect_fail("header not an object", dir, SEMBED_ERR_FORMAT, F, "not a JSON object");
    snprintf(hdr, sizeof hdr, "{\"x\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 4);
    expect_fail("unknown dtype", dir, SEMBED_ERR_FORMAT, F, "unknown dtype 'F33'");
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 12);
    expect_fail("offsets with a gap", dir, SEMBED_ERR_FORMAT, F, "leave a gap");
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 8);
    expect_fail("overlapping offsets", dir, SEMBED_ERR_FORMAT, F, "overlap tensor");
    snprintf(hdr, sizeof hdr, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 8);
    expect_fail("offsets past the end", dir, SEMBED_ERR_FORMAT, F, "file is truncated");
    snprintf(hdr, sizeof hdr, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 4);
    expect_fail("end before begin", dir, SEMBED_ERR_FORMAT, F, "end before begin");
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[140737488355327,140737488355327],"
             "\"data_offsets\":[0,4]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 4);
    expect_fail("shape x dtype overflows", dir, SEMBED_ERR_FORMAT, F, "overflows");
    snprintf(hdr, sizeof hdr, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 8);
    expect_fail("size unlike shape x dtype", dir, SEMBED_ERR_FORMAT, F, "needs 12 bytes");
    snprintf(hdr, sizeof hdr,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 8);
    expect_fail("duplicate tensor names", dir, SEMBED_ERR_FORMAT, F, "duplicate");
    snprintf(hdr, sizeof hdr, "{\"__metadata__\":{\"format\":1}}");
    write_st_raw(dir, F, strlen(hdr), hdr, 0);
    expect_fail("metadata value not a string", dir, SEMBED_ERR_FORMAT, F, "not a string");
    /* the valid model's file, cut short or with bytes after its data */
    write_st(dir, F, &l, NULL, -100);
    expect_fail("truncated weights", dir, SEMBED_ERR_FORMAT, F, "100 missing");
    write_st(dir, F, &l, NULL, 7);
    expect_fail("trailing bytes", dir, SEMBED_ERR_FORMAT, F, "7 trailing bytes");
    write_st(dir, F, &l, "\"junk\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}", 0);
    expect_fail("unknown field in an entry", dir, SEMBED_ERR_FORMAT, F, "unknown field 'x'");
    del(dir, F);
    expect_fail("no weights file", dir, SEMBED_ERR_IO, F, "");
    t_rmdir(dir);
}

/* Tensors against config.json, and the Dense module's weights. */
static void test_tensor_cases(void) {
    const char *F = "model.safetensors";
    char *dir = valid_folder();
    tlist l;

    bert_tensors(&l, "", "F32");
    drop_t(&l, "encoder.layer.1.output.dense.bias");
    write_st(dir, F, &l, NULL, 0);
    expect_fail("missing tensor", dir, SEMBED_ERR_FORMAT, F,
                "missing tensor 'encoder.layer.1.output.dense.bias'");

    bert_tensors(&l, "", "F32");
    drop_t(&l, "embeddings.word_embeddings.weight");
    write_st(dir, F, &l, NULL, 0);
    expect_fail("no word embeddings", dir, SEMBED_ERR_FORMAT, F,
                "missing tensor 'embeddings.word_embeddings.weight'");

    bert_tensors(&l, "", "F32");
    find_t(&l, "embeddings.word_embeddings.weight")->shape[1] = H + 1;
    write_st(dir, F, &l, NULL, 0);
    expect_fail("misshapen word embeddings", dir, SEMBED_ERR_FORMAT, F,
                "has shape [16, 9], expected [16, 8] (vocab_size, hidden_size from config.json)");

    bert_tensors(&l, "", "F32");
    find_t(&l, "encoder.layer.0.intermediate.dense.weight")->shape[0] = H;
    write_st(dir, F, &l, NULL, 0);
    expect_fail("misshapen intermediate", dir, SEMBED_ERR_FORMAT, F,
                "'encoder.layer.0.intermediate.dense.weight' has shape [8, 8], expected [16, 8]");

    bert_tensors(&l, "", "F32");
    tdef *t = find_t(&l, "embeddings.LayerNorm.bias");
    t->n_dims = 2, t->shape[1] = 1;
    write_st(dir, F, &l, NULL, 0);
    expect_fail("a vector given as a matrix", dir, SEMBED_ERR_FORMAT, F,
                "'embeddings.LayerNorm.bias' has shape [8, 1], expected [8]");

    bert_tensors(&l, "", "F32");
    find_t(&l, "encoder.layer.1.attention.output.LayerNorm.weight")->dtype = "I32";
    write_st(dir, F, &l, NULL, 0);
    expect_fail("integer dtype", dir, SEMBED_ERR_UNSUPPORTED, F,
                "has dtype I32, expected F32, F16 or BF16");

    bert_tensors(&l, "", "F32");
    find_t(&l, "embeddings.position_embeddings.weight")->dtype = "F64";
    write_st(dir, F, &l, NULL, 0);
    expect_fail("F64 dtype", dir, SEMBED_ERR_UNSUPPORTED, F, "has dtype F64");

    bert_tensors(&l, "", "F32");
    add(&l, "encoder.layer.2.output.dense.bias", "F32", 1, H, 0);
    write_st(dir, F, &l, NULL, 0);
    expect_fail("a layer beyond num_hidden_layers", dir, SEMBED_ERR_FORMAT, F,
                "belongs to a layer beyond num_hidden_layers 2");

    bert_tensors(&l, "", "F32");
    add(&l, "roberta.embeddings.word_embeddings.weight", "F32", 2, V, H);
    write_st(dir, F, &l, NULL, 0);
    expect_fail("two word embeddings", dir, SEMBED_ERR_FORMAT, F, "two sets of word embeddings");

    /* the pooler is optional, but when present its shape must fit */
    bert_tensors(&l, "", "F32");
    drop_t(&l, "pooler.dense.weight"), drop_t(&l, "pooler.dense.bias");
    write_st(dir, F, &l, NULL, 0);
    sembed_error err = {0};
    sembed_model *m = NULL;
    CHECKF(sembed_model_load(dir, NULL, &m, &err) == SEMBED_OK, "no pooler: %s", err.msg);
    sembed_model_free(m);
    bert_tensors(&l, "", "F32");
    find_t(&l, "pooler.dense.bias")->shape[0] = 3;
    write_st(dir, F, &l, NULL, 0);
    expect_fail("misshapen pooler", dir, SEMBED_ERR_FORMAT, F, "'pooler.dense.bias' has shape [3]");

    /* the Dense module's weights */
    bert_tensors(&l, "", "F32");
    write_st(dir, F, &l, NULL, 0);
    const char *D = "2_Dense/model.safetensors";
    dense_tensors(&l, E, H, false);
    write_st(dir, D, &l, NULL, 0);
    expect_fail("Dense without its bias", dir, SEMBED_ERR_FORMAT, D, "missing tensor 'linear.bias'");
    dense_tensors(&l, E, H + 1, true);
    write_st(dir, D, &l, NULL, 0);
    expect_fail("misshapen Dense", dir, SEMBED_ERR_FORMAT, D,
                "'linear.weight' has shape [4, 9], expected [4, 8]");
    dense_tensors(&l, E, H, true);
    write_st(dir, D, &l, NULL, -3);
    expect_fail("truncated Dense weights", dir, SEMBED_ERR_FORMAT, D, "file is truncated");
    del(dir, D);
    expect_fail("Dense without weights", dir, SEMBED_ERR_IO, "2_Dense",
                "neither model.safetensors nor pytorch_model.bin");
    put(dir, "2_Dense/pytorch_model.bin", "PK");
    expect_fail("Dense with pytorch_model.bin", dir, SEMBED_ERR_UNSUPPORTED,
                "2_Dense/pytorch_model.bin", "safetensors only");

    /* a tokenizer with more ids than the embedding table */
    t_rmdir(dir);
    dir = valid_folder();
    put(dir, "config.json",
        "{\"model_type\": \"bert\", \"vocab_size\": 12, \"hidden_size\": 8, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 16, "
        "\"max_position_embeddings\": 16}");
    bert_tensors(&l, "", "F32");
    find_t(&l, "embeddings.word_embeddings.weight")->shape[0] = 12;
    write_st(dir, F, &l, NULL, 0);
    expect_fail("vocab size mismatch", dir, SEMBED_ERR_FORMAT, NULL,
                "the tokenizer has 16 ids but config.json's vocab_size is 12");
    t_rmdir(dir);
}

/* One configuration file replaced (content NULL: deleted). */
typedef struct file_case {
    const char *what;
    const char *file;
    const char *content;
    sembed_status want;
    const char *named; /* the file the message must name (NULL: `file`) */
    const char *reason;
} file_case;

#define CFG_BASE                                                                                 \
    "\"model_type\": \"bert\", \"vocab_size\": 16, \"num_hidden_layers\": 2, "                 \
    "\"intermediate_size\": 16, \"max_position_embeddings\": 16"

static const file_case k_file_cases[] = {
    /* config.json */
    {"no config.json", "config.json", NULL, SEMBED_ERR_IO, NULL, ""},
    {"config.json not JSON", "config.json", "{\"model_type\": \"bert\",", SEMBED_ERR_FORMAT, NULL,
     "not valid JSON"},
    {"config.json an array", "config.json", "[]", SEMBED_ERR_FORMAT, NULL, "the top level is"},
    {"no hidden_size", "config.json", "{" CFG_BASE ", \"num_attention_heads\": 2}",
     SEMBED_ERR_FORMAT, NULL, "missing required field 'hidden_size'"},
    {"hidden_size a string", "config.json",
     "{" CFG_BASE ", \"hidden_size\": \"8\", \"num_attention_heads\": 2}", SEMBED_ERR_FORMAT, NULL,
     "field 'hidden_size' must be an integer"},
    {"no num_attention_heads", "config.json", "{" CFG_BASE ", \"hidden_size\": 8}",
     SEMBED_ERR_FORMAT, NULL, "missing required field 'num_attention_heads'"},
    {"heads not dividing hidden", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 3}", SEMBED_ERR_FORMAT, NULL,
     "num_attention_heads 3 does not divide hidden_size 8"},
    {"more heads than hidden", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 16}", SEMBED_ERR_FORMAT, NULL,
     "field 'num_attention_heads' is 16, outside [1, 8]"},
    {"vocab_size 0", "config.json",
     "{\"model_type\": \"bert\", \"vocab_size\": 0, \"hidden_size\": 8, \"num_hidden_layers\": 2, "
     "\"num_attention_heads\": 2, \"intermediate_size\": 16, \"max_position_embeddings\": 16}",
     SEMBED_ERR_FORMAT, NULL, "field 'vocab_size' is 0, outside"},
    {"unknown model_type", "config.json",
     "{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"hidden_size\": 8}", SEMBED_ERR_UNSUPPORTED,
     NULL, "model_type 'gpt2' is not supported"},
    {"no model_type nor architectures", "config.json", "{\"vocab_size\": 16, \"hidden_size\": 8}",
     SEMBED_ERR_FORMAT, NULL, "missing required field 'model_type'"},
    {"unknown activation", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 2, \"hidden_act\": \"swish\"}",
     SEMBED_ERR_UNSUPPORTED, NULL, "hidden_act 'swish' is not supported"},
    {"negative layer_norm_eps", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 2, \"layer_norm_eps\": -1}",
     SEMBED_ERR_FORMAT, NULL, "'layer_norm_eps' is -1, outside (0, 1]"},
    {"relative positions", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 2, "
     "\"position_embedding_type\": \"relative_key\"}",
     SEMBED_ERR_UNSUPPORTED, NULL, "position_embedding_type 'relative_key' is not supported"},
    {"pad_token_id outside the vocabulary", "config.json",
     "{" CFG_BASE ", \"hidden_size\": 8, \"num_attention_heads\": 2, \"pad_token_id\": 16}",
     SEMBED_ERR_FORMAT, NULL, "field 'pad_token_id' is 16, outside [0, 15]"},
    {"XLM-R positions all before the first id", "config.json",
     "{\"model_type\": \"xlm-roberta\", \"vocab_size\": 16, \"hidden_size\": 8, "
     "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 16, "
     "\"max_position_embeddings\": 2, \"pad_token_id\": 1}",
     SEMBED_ERR_FORMAT, NULL, "max_position_embeddings 2 leaves no position after the first "
     "position id 2"},
    /* modules.json */
    {"modules.json not JSON", "modules.json", "[{", SEMBED_ERR_FORMAT, NULL, "not valid JSON"},
    {"modules.json an object", "modules.json", "{}", SEMBED_ERR_FORMAT, NULL, "the top level is"},
    {"no modules", "modules.json", "[]", SEMBED_ERR_FORMAT, NULL, "lists no modules"},
    {"module without path", "modules.json",
     "[{\"type\": \"sentence_transformers.models.Transformer\"}]", SEMBED_ERR_FORMAT, NULL,
     "missing required field 'path'"},
    {"unknown module", "modules.json",
     "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
     " {\"path\": \"1_Pooling\", \"type\": \"my_package.Pooling\"}]",
     SEMBED_ERR_UNSUPPORTED, NULL, "module 1 has type 'my_package.Pooling'"},
    {"module path escaping the folder", "modules.json",
     "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
     " {\"path\": \"../1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}]",
     SEMBED_ERR_FORMAT, NULL, "not a relative path inside the model folder"},
    {"modules out of order", "modules.json",
     "[{\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},"
     " {\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}]",
     SEMBED_ERR_UNSUPPORTED, NULL, "out of the supported order"},
    {"a module folder that does not exist", "modules.json",
     "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
     " {\"path\": \"9_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}]",
     SEMBED_ERR_IO, "9_Pooling/config.json", ""},
    /* 1_Pooling/config.json */
    {"no pooling config", "1_Pooling/config.json", NULL, SEMBED_ERR_IO, NULL, ""},
    {"pooling config not JSON", "1_Pooling/config.json", "{\"word_embedding_dimension\": 8",
     SEMBED_ERR_FORMAT, NULL, "not valid JSON"},
    {"pooling dimension unlike hidden_size", "1_Pooling/config.json",
     "{\"word_embedding_dimension\": 16, \"pooling_mode_mean_tokens\": true}", SEMBED_ERR_FORMAT,
     NULL, "embedding_dimension 16 differs from hidden_size 8"},
    {"no pooling dimension", "1_Pooling/config.json", "{\"pooling_mode_mean_tokens\": true}",
     SEMBED_ERR_FORMAT, NULL, "missing required field 'word_embedding_dimension'"},
    {"unknown pooling mode", "1_Pooling/config.json",
     "{\"embedding_dimension\": 8, \"pooling_mode\": \"median\"}", SEMBED_ERR_UNSUPPORTED, NULL,
     "pooling mode 'median' is not supported"},
    {"pooling flag not a boolean", "1_Pooling/config.json",
     "{\"word_embedding_dimension\": 8, \"pooling_mode_mean_tokens\": \"yes\"}", SEMBED_ERR_FORMAT,
     NULL, "field 'pooling_mode_mean_tokens' must be true or false"},
    /* 2_Dense/config.json */
    {"no Dense config", "2_Dense/config.json", NULL, SEMBED_ERR_IO, NULL, ""},
    {"Dense config not JSON", "2_Dense/config.json", "{\"in_features\": }", SEMBED_ERR_FORMAT, NULL,
     "not valid JSON"},
    {"Dense in_features unlike the pooled size", "2_Dense/config.json",
     "{\"in_features\": 7, \"out_features\": 4}", SEMBED_ERR_FORMAT, NULL,
     "in_features 7, but the module before it outputs 8"},
    {"Dense without out_features", "2_Dense/config.json", "{\"in_features\": 8}", SEMBED_ERR_FORMAT,
     NULL, "missing required field 'out_features'"},
    {"Dense activation unknown", "2_Dense/config.json",
     "{\"in_features\": 8, \"out_features\": 4, \"activation_function\": \"torch.nn.Softmax\"}",
     SEMBED_ERR_UNSUPPORTED, NULL, "activation_function 'torch.nn.Softmax' is not supported"},
    {"Dense with a residual", "2_Dense/config.json",
     "{\"in_features\": 8, \"out_features\": 4, \"use_residual\": true}", SEMBED_ERR_UNSUPPORTED,
     NULL, "use_residual is not supported"},
    /* sentence_bert_config.json */
    {"sbert config not JSON", "sentence_bert_config.json", "{\"max_seq_length\": 12,,}",
     SEMBED_ERR_FORMAT, NULL, "not valid JSON"},
    {"max_seq_length 0", "sentence_bert_config.json", "{\"max_seq_length\": 0}", SEMBED_ERR_FORMAT,
     NULL, "field 'max_seq_length' is 0, outside"},
    {"do_lower_case a string", "sentence_bert_config.json", "{\"do_lower_case\": \"true\"}",
     SEMBED_ERR_FORMAT, NULL, "field 'do_lower_case' must be true or false"},
    /* tokenizer files */
    {"no tokenizer", "vocab.txt", NULL, SEMBED_ERR_IO, "", "no tokenizer.json or vocab.txt"},
    {"tokenizer.json not JSON", "tokenizer.json", "{\"model\": ", SEMBED_ERR_FORMAT, NULL,
     "tokenizer.json"},
};

static void test_file_cases(void) {
    for (size_t i = 0; i < sizeof k_file_cases / sizeof *k_file_cases; i++) {
        const file_case *c = &k_file_cases[i];
        char *dir = valid_folder();
        if (c->content)
            put(dir, c->file, c->content);
        else
            del(dir, c->file);
        const char *named = c->named ? c->named : c->file;
        expect_fail(c->what, dir, c->want, named[0] ? named : NULL, c->reason);
        t_rmdir(dir);
    }
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* Allocation n (1, 2, ...) of a load fails, until a load makes fewer than n: each run succeeds
 * or says NOMEM with a message; ASan's leak check covers the cleanup paths. */
static void test_alloc_failures(void) {
    char *dir = valid_folder();
    for (int persistent = 0; persistent < 2; persistent++) {
        int64_t n, nomem = 0;
        for (n = 1; n < 100000; n++) {
            sembed_error err = {0};
            sembed_model *m = NULL;
            sembed__alloc_fail_at(n, persistent);
            sembed_status s = sembed_model_load(dir, NULL, &m, &err);
            int64_t made = sembed__alloc_fail_at(0, false);
            CHECKF(s == SEMBED_OK || s == SEMBED_ERR_NOMEM, "allocation %lld failing: status %d: %s",
                   (long long)n, (int)s, err.msg);
            CHECKF(s == SEMBED_OK || (err.msg[0] && m == NULL), "allocation %lld: no message",
                   (long long)n);
            nomem += s == SEMBED_ERR_NOMEM;
            sembed_model_free(m);
            if (made < n) {
                CHECKF(s == SEMBED_OK, "failed with no allocation failing: %s", err.msg);
                break;
            }
        }
        printf("fault injection (%s): %lld loads, %lld NOMEM\n",
               persistent ? "persistent" : "transient", (long long)n, (long long)nomem);
        CHECKF(n > 20 && nomem > 10, "only %lld allocations, %lld NOMEM", (long long)n,
               (long long)nomem);
    }
    t_rmdir(dir);
}

int main(void) {
    test_valid();
    test_safetensors_cases();
    test_tensor_cases();
    test_file_cases();
    test_alloc_failures();
    return t_done("test_model_load");
}
