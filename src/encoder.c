/* encoder.c — a model folder loaded into fp32 weights, and the forward pass over packed batches
 * written once as calls of backend ops (backend.h): embeddings, encoder layers, pooling, Dense,
 * Normalize. Not the ops (src/ref/, src/cpu/) and not the file formats (src/model/).
 *
 * Dimension letters: T tokens of a packed batch, S texts in it, H hidden, I intermediate,
 * A heads, V vocabulary, P position table rows, Y token types, B relative buckets,
 * R max tokens per text, F pooled features, E output features. */
#include "backend.h"
#include "model/config.h"
#include "model/safetensors.h"

#include <jansson.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEMBED_HAVE_CUDA
#include "cuda/sembed_cuda.h"
#else
typedef struct sembed__cuda sembed__cuda;
#endif

typedef struct layer_w {
    const float *qkv_w, *qkv_b; /* (3H, H), (3H): query | key | value rows */
    const float *o_w, *o_b;     /* (H, H), (H) */
    const float *ln1_g, *ln1_b; /* (H) */
    const float *i_w, *i_b;     /* (I, H), (I) */
    const float *f_w, *f_b;     /* (H, I), (H) */
    const float *ln2_g, *ln2_b; /* (H) */
} layer_w;

typedef struct dense_w {
    const float *w, *b; /* (out, in), (out) or NULL */
    int32_t in, out;
    sembed__act_kind act;
} dense_w;

/* The layers' Linear weights prepared for each context precision (prepare_weights): made by
 * the first context that needs them, shared by every later context of the model. */
typedef struct prep_cache {
    pthread_mutex_t mu;
    sembed__wprep **set[SEMBED_PRECISION_FP32_STRICT + 1]; /* (n_layers, 4) each, or NULL */
} prep_cache;

struct sembed_model {
    sembed__model_config cfg;
    prep_cache *prep; /* its pointee changes under its mutex; the rest of a model never does */
    sembed_tokenizer *tok;
    int32_t H, A, I, n_layers, R; /* R: max tokens per text */
    float eps;
    sembed__act_kind act;
    float *arena; /* every weight below, fp32 */
    const float *word, *pos, *type; /* (V, H), (P, H), (Y, H) or NULL (MPNet) */
    const float *emb_g, *emb_b;     /* (H) */
    layer_w *layers;                /* (n_layers) */
    float *rel_bias;                /* (A, 2R-1) MPNet, else NULL */
    int32_t position_offset;
    bool pad_positions; /* position ids skip tokens equal to position_offset - 1 (padding_idx) */
    int32_t n_pool;
    sembed__pool_kind pool[SEMBED__MAX_POOL_KINDS];
    bool cls_only; /* every pool kind is CLS: forward() cuts the last layer to the CLS rows */
    bool include_prompt;
    int32_t n_dense;
    dense_w dense[SEMBED__CFG_MAX_DENSE];
    bool normalize;
    int32_t pooled_dim; /* F = n_pool * H */
    int32_t dim;        /* E */
    int32_t max_dim;    /* the widest row of any pooled/Dense output */
    sembed__st_dtype wdtype; /* of the word embeddings on disk (sembed_model_describe) */
    int64_t n_params;        /* floats in the encoder's and Dense modules' weights */
};

/* ---- loading ---------------------------------------------------------------------------------- */

sembed_model_params sembed_model_default_params(void) {
    return (sembed_model_params){.max_length = 0, .pooling = SEMBED_POOLING_DEFAULT, .normalize = 0};
}

/* Weights are converted into one arena; `take` hands out consecutive slices. */
typedef struct arena_cursor {
    float *next;
    float *end;
} arena_cursor;

static sembed_status take(arena_cursor *c, const sembed__st_tensor *t, const float **out,
                          sembed_error *err) {
    SEMBED_ASSERT(c->next + t->n_elems <= c->end);
    sembed_status s = sembed__st_read_f32(t, c->next, t->n_elems, err);
    if (s != SEMBED_OK) return s;
    *out = c->next;
    c->next += t->n_elems;
    return SEMBED_OK;
}

static sembed_status find(const sembed__st_file *st, const char *prefix, const char *fmt,
                          int layer, const sembed__st_tensor **out, sembed_error *err) {
    char name[256];
    snprintf(name, sizeof name, fmt, layer);
    *out = sembed__config_find_tensor(st, prefix, name);
    if (!*out) /* config_check_weights ran first: only optional tensors can be missing */
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing tensor '%s%s'",
                           sembed__st_name(st), prefix, name);
    return SEMBED_OK;
}

/* Loads the three of query/key/value (or q/k/v) into one (3H, H) matrix and (3H) bias. */
static sembed_status take_qkv(arena_cursor *c, const sembed__st_file *st, const char *prefix,
                              const char *const names[6], int layer, layer_w *lw,
                              sembed_error *err) {
    const float *p = NULL;
    sembed_status s = SEMBED_OK;
    const float *w0 = NULL, *b0 = NULL;
    /* weights first (contiguous 3H x H), then biases (contiguous 3H) */
    for (int k = 0; k < 3 && s == SEMBED_OK; k++) {
        const sembed__st_tensor *t;
        s = find(st, prefix, names[k], layer, &t, err);
        if (s == SEMBED_OK) s = take(c, t, &p, err);
        if (k == 0) w0 = p;
    }
    for (int k = 0; k < 3 && s == SEMBED_OK; k++) {
        const sembed__st_tensor *t;
        s = find(st, prefix, names[3 + k], layer, &t, err);
        if (s == SEMBED_OK) s = take(c, t, &p, err);
        if (k == 0) b0 = p;
    }
    lw->qkv_w = w0;
    lw->qkv_b = b0;
    return s;
}

static sembed__act_kind act_of(sembed__act a) {
    switch (a) {
    case SEMBED__ACT_GELU: return SEMBED__ACTK_GELU;
    case SEMBED__ACT_GELU_TANH: return SEMBED__ACTK_GELU_TANH;
    case SEMBED__ACT_RELU: return SEMBED__ACTK_RELU;
    }
    return SEMBED__ACTK_GELU;
}

static sembed__act_kind dense_act_of(sembed__dense_act a) {
    switch (a) {
    case SEMBED__DENSE_IDENTITY: return SEMBED__ACTK_IDENTITY;
    case SEMBED__DENSE_TANH: return SEMBED__ACTK_TANH;
    case SEMBED__DENSE_RELU: return SEMBED__ACTK_RELU;
    case SEMBED__DENSE_SIGMOID: return SEMBED__ACTK_SIGMOID;
    case SEMBED__DENSE_GELU: return SEMBED__ACTK_GELU;
    }
    return SEMBED__ACTK_IDENTITY;
}

static sembed__pool_kind pool_kind_of(sembed__pool_mode m) {
    switch (m) {
    case SEMBED__POOL_CLS: return SEMBED__POOLK_CLS;
    case SEMBED__POOL_MEAN: return SEMBED__POOLK_MEAN;
    case SEMBED__POOL_MAX: return SEMBED__POOLK_MAX;
    case SEMBED__POOL_MEAN_SQRT_LEN: return SEMBED__POOLK_MEAN_SQRT_LEN;
    case SEMBED__POOL_WEIGHTED_MEAN: return SEMBED__POOLK_WEIGHTED_MEAN;
    case SEMBED__POOL_LAST_TOKEN: return SEMBED__POOLK_LAST;
    }
    return SEMBED__POOLK_MEAN;
}

static const char *const k_bert_names[] = {
    "encoder.layer.%d.attention.self.query.weight",
    "encoder.layer.%d.attention.self.key.weight",
    "encoder.layer.%d.attention.self.value.weight",
    "encoder.layer.%d.attention.self.query.bias",
    "encoder.layer.%d.attention.self.key.bias",
    "encoder.layer.%d.attention.self.value.bias",
    "encoder.layer.%d.attention.output.dense.weight",
    "encoder.layer.%d.attention.output.dense.bias",
    "encoder.layer.%d.attention.output.LayerNorm.weight",
    "encoder.layer.%d.attention.output.LayerNorm.bias",
};
static const char *const k_mpnet_names[] = {
    "encoder.layer.%d.attention.attn.q.weight",
    "encoder.layer.%d.attention.attn.k.weight",
    "encoder.layer.%d.attention.attn.v.weight",
    "encoder.layer.%d.attention.attn.q.bias",
    "encoder.layer.%d.attention.attn.k.bias",
    "encoder.layer.%d.attention.attn.v.bias",
    "encoder.layer.%d.attention.attn.o.weight",
    "encoder.layer.%d.attention.attn.o.bias",
    "encoder.layer.%d.attention.LayerNorm.weight",
    "encoder.layer.%d.attention.LayerNorm.bias",
};
static const char *const k_ffn_names[] = {
    "encoder.layer.%d.intermediate.dense.weight", "encoder.layer.%d.intermediate.dense.bias",
    "encoder.layer.%d.output.dense.weight",       "encoder.layer.%d.output.dense.bias",
    "encoder.layer.%d.output.LayerNorm.weight",   "encoder.layer.%d.output.LayerNorm.bias",
};

/* Floats the encoder's own tensors take (those this file reads). */
static int64_t encoder_floats(const sembed__model_config *c) {
    int64_t H = c->hidden_size, I = c->intermediate_size;
    int64_t n = (int64_t)c->vocab_size * H + (int64_t)c->max_position_embeddings * H + 2 * H;
    if (c->arch != SEMBED__ARCH_MPNET) n += (int64_t)c->type_vocab_size * H;
    int64_t per_layer = 4 * H * H + 4 * H + 2 * H + I * H + I + H * I + H + 2 * H;
    return n + per_layer * c->num_hidden_layers;
}

static sembed_status load_encoder(sembed_model *m, const sembed__st_file *st, const char *prefix,
                                  arena_cursor *c, sembed_error *err) {
    const sembed__model_config *cfg = &m->cfg;
    const bool mpnet = cfg->arch == SEMBED__ARCH_MPNET;
    const sembed__st_tensor *t;
    sembed_status s;
#define TAKE(fmt, layer, dst)                                                                    \
    do {                                                                                       \
        s = find(st, prefix, fmt, layer, &t, err);                                             \
        if (s == SEMBED_OK) s = take(c, t, &(dst), err);                                       \
        if (s != SEMBED_OK) return s;                                                          \
    } while (0)
    TAKE("embeddings.word_embeddings.weight", 0, m->word);
    TAKE("embeddings.position_embeddings.weight", 0, m->pos);
    if (!mpnet) TAKE("embeddings.token_type_embeddings.weight", 0, m->type);
    TAKE("embeddings.LayerNorm.weight", 0, m->emb_g);
    TAKE("embeddings.LayerNorm.bias", 0, m->emb_b);
    const char *const *an = mpnet ? k_mpnet_names : k_bert_names;
    for (int32_t l = 0; l < cfg->num_hidden_layers; l++) {
        layer_w *lw = &m->layers[l];
        s = take_qkv(c, st, prefix, an, l, lw, err);
        if (s != SEMBED_OK) return s;
        TAKE(an[6], l, lw->o_w);
        TAKE(an[7], l, lw->o_b);
        TAKE(an[8], l, lw->ln1_g);
        TAKE(an[9], l, lw->ln1_b);
        TAKE(k_ffn_names[0], l, lw->i_w);
        TAKE(k_ffn_names[1], l, lw->i_b);
        TAKE(k_ffn_names[2], l, lw->f_w);
        TAKE(k_ffn_names[3], l, lw->f_b);
        TAKE(k_ffn_names[4], l, lw->ln2_g);
        TAKE(k_ffn_names[5], l, lw->ln2_b);
    }
#undef TAKE
    if (mpnet) {
        /* rel_bias[h][(j-i) + R-1] = relative_attention_bias[bucket(j-i)][h]; the same table
         * serves every layer (transformers computes position_bias once per forward). */
        s = find(st, prefix, "encoder.relative_attention_bias.weight", 0, &t, err);
        if (s != SEMBED_OK) return s;
        const int32_t B = cfg->relative_attention_num_buckets, A = m->A, R = m->R;
        float *w = sembed__malloc(sizeof(float) * (size_t)B * (size_t)A); /* (B, A) */
        m->rel_bias = sembed__malloc(sizeof(float) * (size_t)A * (size_t)(2 * R - 1));
        if (!w || !m->rel_bias) {
            sembed__free(w);
            return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", sembed__st_name(st));
        }
        s = sembed__st_read_f32(t, w, (int64_t)B * A, err);
        if (s == SEMBED_OK)
            for (int32_t rel = -(R - 1); rel <= R - 1; rel++) {
                int32_t b = sembed__mpnet_bucket(rel, B, 128);
                SEMBED_ASSERT(b >= 0 && b < B);
                for (int32_t h = 0; h < A; h++)
                    m->rel_bias[(int64_t)h * (2 * R - 1) + rel + R - 1] = w[(int64_t)b * A + h];
            }
        sembed__free(w);
        if (s != SEMBED_OK) return s;
    }
    return SEMBED_OK;
}

static sembed_status load_dense(sembed_model *m, arena_cursor *c, sembed_error *err) {
    for (int32_t i = 0; i < m->n_dense; i++) {
        const sembed__dense_config *d = &m->cfg.dense[i];
        if (!d->weights_safetensors)
            return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                               "%s: sembed reads safetensors only; convert this Dense module's "
                               "weights (scripts/fetch_models.py does)",
                               d->weights_path);
        sembed__st_file *st = NULL;
        sembed_status s = sembed__st_open(d->weights_path, &st, err);
        if (s == SEMBED_OK) s = sembed__config_check_dense(&m->cfg, i, st, err);
        if (s == SEMBED_OK) s = take(c, sembed__st_find(st, "linear.weight"), &m->dense[i].w, err);
        if (s == SEMBED_OK && d->bias)
            s = take(c, sembed__st_find(st, "linear.bias"), &m->dense[i].b, err);
        sembed__st_close(st);
        if (s != SEMBED_OK) return s;
        m->dense[i].in = d->in_features;
        m->dense[i].out = d->out_features;
        m->dense[i].act = dense_act_of(d->act);
    }
    return SEMBED_OK;
}

/* sentence_bert_config.json's do_lower_case, as sentence-transformers 6 applies it: the
 * tokenizer's normalizer gets a tokenizers Lowercase() in front (unless it is a Lowercase or a
 * Sequence holding one), so literal special tokens in the raw text still match and each code
 * point takes Rust's full lowercase mapping (U+0130 becomes "i" + U+0307; no final-sigma rule).
 * sentence-transformers 2-5 called Python's str.lower() on each text instead; the two differ on
 * texts with a capital sigma at a word's end and on upper-case special tokens typed in a text.
 * Writes the patched tokenizer.json to *out (jansson's allocation, freed with free()). */
static sembed_status lowercase_tokenizer_json(const char *json, size_t len, const char *path,
                                              char **out, sembed_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: invalid JSON at line %d: %s", path,
                           je.line, je.text);
    }
    json_t *norm = json_object_get(root, "normalizer");
    const char *type = json_string_value(json_object_get(norm, "type"));
    bool has_lower = type && strcmp(type, "Lowercase") == 0;
    json_t *items = type && strcmp(type, "Sequence") == 0 ? json_object_get(norm, "normalizers")
                                                           : NULL;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(items, i), "type"));
        if (t && strcmp(t, "Lowercase") == 0) has_lower = true;
    }
    sembed_status s = SEMBED_OK;
    if (!has_lower) {
        json_t *seq = json_array(), *lower = json_pack("{s:s}", "type", "Lowercase");
        if (seq && lower && json_array_append_new(seq, lower) == 0) {
            lower = NULL;
            if (items)
                json_array_extend(seq, items);
            else if (norm && !json_is_null(norm))
                json_array_append(seq, norm);
            json_object_set_new(root, "normalizer",
                                json_pack("{s:s,s:O}", "type", "Sequence", "normalizers", seq));
        } else {
            s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", path);
        }
        json_decref(lower);
        json_decref(seq);
    }
    if (s == SEMBED_OK && !(*out = json_dumps(root, JSON_COMPACT)))
        s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", path);
    json_decref(root);
    return s;
}

static sembed_status load_tokenizer(sembed_model *m, const char *dir, sembed_error *err) {
    sembed_tokenizer_params tp = sembed_tokenizer_default_params();
    tp.max_length = m->R;
    /* the tokenizer files sit beside the Transformer module's config (usually the folder) */
    const char *tdir = m->cfg.transformer_dir;
    char *probe = sembed__path_join(tdir, "tokenizer.json");
    char *probe2 = sembed__path_join(tdir, "vocab.txt");
    if (!probe || !probe2) {
        sembed__free(probe), sembed__free(probe2);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    }
    if (!sembed__file_exists(probe) && !sembed__file_exists(probe2)) tdir = dir;
    sembed__free(probe), sembed__free(probe2);
    if (!m->cfg.do_lower_case) return sembed_tokenizer_load(tdir, &tp, &m->tok, err);

    char *path = sembed__path_join(tdir, "tokenizer.json");
    if (!path) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    sembed_status s;
    if (!sembed__file_exists(path)) {
        s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                        "%s: sentence_bert_config.json sets do_lower_case, which sembed applies "
                        "to a tokenizer.json only (this folder has vocab.txt alone)",
                        dir);
    } else {
        char *data = NULL, *patched = NULL;
        size_t len = 0;
        s = sembed__read_file(path, (size_t)512 << 20, &data, &len, err);
        if (s == SEMBED_OK) s = lowercase_tokenizer_json(data, len, path, &patched, err);
        if (s == SEMBED_OK)
            s = sembed_tokenizer_load_json(patched, strlen(patched), path, &tp, &m->tok, err);
        sembed__free(data);
        free(patched);
    }
    sembed__free(path);
    return s;
}

sembed_status sembed_model_load(const char *dir, const sembed_model_params *params,
                                sembed_model **out, sembed_error *err) {
    if (!dir || !out)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed_model_load: NULL argument");
    *out = NULL;
    sembed_model_params p = params ? *params : sembed_model_default_params();
    if (p.max_length < 0 || p.pooling < SEMBED_POOLING_DEFAULT || p.pooling > SEMBED_POOLING_LAST)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "sembed_model_load: invalid params (max_length %d, pooling %d)",
                           p.max_length, (int)p.pooling);
    sembed_model *m = sembed__calloc(1, sizeof *m);
    if (!m) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    sembed__config_init(&m->cfg);
    m->prep = sembed__calloc(1, sizeof *m->prep);
    if (!m->prep) {
        sembed__free(m);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    }
    pthread_mutex_init(&m->prep->mu, NULL);
    sembed__st_file *st = NULL;
    sembed_status s = sembed__config_load(dir, &m->cfg, err);
    if (s != SEMBED_OK) goto fail;
    const sembed__model_config *cfg = &m->cfg;

    m->H = cfg->hidden_size;
    m->A = cfg->num_attention_heads;
    m->I = cfg->intermediate_size;
    m->n_layers = cfg->num_hidden_layers;
    m->eps = (float)cfg->layer_norm_eps;
    m->act = act_of(cfg->hidden_act);
    m->position_offset = cfg->position_offset;
    m->pad_positions = cfg->arch != SEMBED__ARCH_BERT;
    m->R = cfg->max_tokens;
    if (p.max_length > 0) {
        if (p.max_length > cfg->max_positions) {
            s = sembed__err(err, SEMBED_ERR_INVALID_ARG,
                            "%s: max_length %d exceeds the %d positions config.json allows", dir,
                            p.max_length, cfg->max_positions);
            goto fail;
        }
        m->R = p.max_length;
    }
    if (m->R < 2) {
        s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: max length %d is too small", dir, m->R);
        goto fail;
    }

    /* pooling, Dense, Normalize */
    if (p.pooling != SEMBED_POOLING_DEFAULT) {
        static const sembed__pool_kind map[] = {0, SEMBED__POOLK_CLS, SEMBED__POOLK_MEAN,
                                                SEMBED__POOLK_MAX, SEMBED__POOLK_LAST};
        m->n_pool = 1;
        m->pool[0] = map[p.pooling];
        m->include_prompt = true;
        m->n_dense = 0;
    } else if (cfg->n_pool_modes > 0) {
        m->n_pool = cfg->n_pool_modes;
        for (int32_t i = 0; i < m->n_pool; i++) m->pool[i] = pool_kind_of(cfg->pool_modes[i]);
        m->include_prompt = cfg->include_prompt;
        m->n_dense = cfg->n_dense;
    } else {
        s = sembed__err(err, SEMBED_ERR_INVALID_ARG,
                        "%s: no Pooling module (modules.json); pass a pooling in the params", dir);
        goto fail;
    }
    m->cls_only = m->n_pool > 0;
    for (int32_t i = 0; i < m->n_pool; i++)
        m->cls_only = m->cls_only && m->pool[i] == SEMBED__POOLK_CLS;
    m->normalize = cfg->normalize || p.normalize;
    m->pooled_dim = m->n_pool * m->H;
    m->dim = m->n_dense > 0 ? cfg->dense[m->n_dense - 1].out_features : m->pooled_dim;
    m->max_dim = m->pooled_dim;
    for (int32_t i = 0; i < m->n_dense; i++)
        if (cfg->dense[i].out_features > m->max_dim) m->max_dim = cfg->dense[i].out_features;

    /* weights */
    char *wpath = sembed__path_join(cfg->transformer_dir, "model.safetensors");
    if (!wpath) {
        s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
        goto fail;
    }
    s = sembed__st_open(wpath, &st, err);
    sembed__free(wpath);
    if (s != SEMBED_OK) goto fail;
    char prefix[256];
    s = sembed__config_check_weights(cfg, st, prefix, sizeof prefix, err);
    if (s != SEMBED_OK) goto fail;
    m->wdtype = sembed__config_find_tensor(st, prefix, "embeddings.word_embeddings.weight")->dtype;

    int64_t n_floats = encoder_floats(cfg);
    for (int32_t i = 0; i < m->n_dense; i++)
        n_floats += (int64_t)cfg->dense[i].out_features * (cfg->dense[i].in_features + 1);
    size_t bytes;
    m->layers = sembed__calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!sembed__mul_size((size_t)n_floats, sizeof(float), &bytes) || !m->layers ||
        !(m->arena = sembed__malloc(bytes))) {
        s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory for %lld weights", dir,
                        (long long)n_floats);
        goto fail;
    }
    m->n_params = n_floats;
    if (cfg->arch == SEMBED__ARCH_MPNET)
        m->n_params += (int64_t)cfg->relative_attention_num_buckets * cfg->num_attention_heads;
    arena_cursor c = {m->arena, m->arena + n_floats};
    s = load_encoder(m, st, prefix, &c, err);
    if (s == SEMBED_OK) s = load_dense(m, &c, err);
    if (s != SEMBED_OK) goto fail;
    sembed__st_close(st);
    st = NULL;

    s = load_tokenizer(m, dir, err);
    if (s != SEMBED_OK) goto fail;
    if (sembed_tokenizer_vocab_size(m->tok) > cfg->vocab_size) {
        s = sembed__err(err, SEMBED_ERR_FORMAT,
                        "%s: the tokenizer has %d ids but config.json's vocab_size is %d", dir,
                        sembed_tokenizer_vocab_size(m->tok), cfg->vocab_size);
        goto fail;
    }
    *out = m;
    return SEMBED_OK;
fail:
    sembed__st_close(st);
    sembed_model_free(m);
    return s;
}

static void free_prep_set(sembed__wprep **set, int32_t n) {
    for (int32_t i = 0; set && i < n; i++) sembed__wprep_free(set[i]);
    sembed__free(set);
}

void sembed_model_free(sembed_model *m) {
    if (!m) return;
    if (m->prep) {
        for (int i = 0; i <= SEMBED_PRECISION_FP32_STRICT; i++)
            free_prep_set(m->prep->set[i], 4 * m->n_layers);
        pthread_mutex_destroy(&m->prep->mu);
        sembed__free(m->prep);
    }
    sembed_tokenizer_free(m->tok);
    sembed__config_free(&m->cfg);
    sembed__free(m->arena);
    sembed__free(m->layers);
    sembed__free(m->rel_bias);
    sembed__free(m);
}

int32_t sembed_model_dim(const sembed_model *m) { return m ? m->dim : 0; }
int32_t sembed_model_max_length(const sembed_model *m) { return m ? m->R : 0; }
const sembed_tokenizer *sembed_model_tokenizer(const sembed_model *m) {
    return m ? m->tok : NULL;
}

void sembed_model_describe(const sembed_model *m, sembed_model_info *out) {
    SEMBED_ASSERT(m && out);
    const sembed__model_config *cfg = &m->cfg;
    static const sembed_pooling public_pool[] = {
        [SEMBED__POOLK_CLS] = SEMBED_POOLING_CLS, [SEMBED__POOLK_MEAN] = SEMBED_POOLING_MEAN,
        [SEMBED__POOLK_MAX] = SEMBED_POOLING_MAX, [SEMBED__POOLK_LAST] = SEMBED_POOLING_LAST};
    *out = (sembed_model_info){
        .architecture = cfg->arch == SEMBED__ARCH_MPNET ? "mpnet"
                        : cfg->arch == SEMBED__ARCH_BERT ? "bert"
                                                         : "xlm-roberta",
        .weights_dtype = sembed__st_dtype_name(m->wdtype),
        .n_params = m->n_params,
        .vocab_size = cfg->vocab_size,
        .hidden_size = m->H,
        .n_layers = m->n_layers,
        .n_heads = m->A,
        .intermediate_size = m->I,
        .max_position = cfg->max_position_embeddings,
        .max_length = m->R,
        .dim = m->dim,
        /* several modes, mean_sqrt_len or weightedmean: SEMBED_POOLING_DEFAULT */
        .pooling = m->n_pool == 1 && (size_t)m->pool[0] < sizeof public_pool / sizeof *public_pool
                       ? public_pool[m->pool[0]]
                       : SEMBED_POOLING_DEFAULT,
        .include_prompt = m->include_prompt,
        .n_dense = m->n_dense,
        .normalize = m->normalize,
        .do_lower_case = cfg->do_lower_case,
        .n_prompts = cfg->n_prompts,
        .default_prompt_name = cfg->default_prompt >= 0 ? cfg->prompts[cfg->default_prompt].name
                                                        : NULL,
    };
}

const char *sembed_model_prompt(const sembed_model *m, int32_t i, const char **name) {
    if (name) *name = NULL;
    if (!m || i < 0 || i >= m->cfg.n_prompts) return NULL;
    if (name) *name = m->cfg.prompts[i].name;
    return m->cfg.prompts[i].text;
}

/* ---- contexts --------------------------------------------------------------------------------- */

struct sembed_ctx {
    const sembed_model *m;
    sembed_ctx_params p;
    char device[16]; /* "cpu" or "cuda:N": where it runs (what "auto" chose) */
    const sembed__backend *be;
    sembed__pool *pool;
    sembed__exec ex;
    sembed__wprep **prep; /* (n_layers, 4) qkv, o, i, f prepared (src/cpu/quant.c), the model's
                           * (prep_cache); NULL entries (or all) use gemm_bias */
    int32_t T_max, S_max;
    /* tokenization slots, one per text of a chunk */
    int32_t *slot_ids;   /* (S_max, R) */
    sembed_tokens *slots; /* (S_max) */
    /* A GPU context's pipeline (encode_run): batches left in flight while the host goes on
     * (the next batch packed, the next chunk tokenized); at 2 (the default) a batch may also
     * take texts of two chunks. SEMBED_CUDA_OVERLAP=1 keeps 1 and cuts batches at a chunk's
     * end, =0 keeps none (for measurements). A CPU context: 0. */
    int32_t gpu_keep;
    sembed_status *slot_status; /* (S_max) */
    /* the packed batch */
    int32_t *ids, *pos_ids; /* (T_max) */
    int32_t *seq_off;       /* (S_max + 1) */
    float *x;               /* (T_max, H) hidden states */
    float *big;             /* (T_max, max(3H, I)) qkv, then the FFN's intermediate */
    float *att;             /* (T_max, H) attention output */
    float *tmp;             /* (T_max, H) projections before add+LayerNorm */
    float *pa, *pb;         /* (S_max, max_dim) pooled features and Dense outputs */
    /* per call of sembed_encode_ex / sembed_encode_ids */
    const char **chunk_texts; /* (S_max) the texts tokenize_task reads (prompt included) */
    size_t *chunk_lens;       /* (S_max) */
    int32_t *skip;            /* (S_max) leading tokens left out of pooling (include_prompt) */
    uint8_t *prompt_special;  /* (R) the special flags of the prompt's own tokens */
    float *stage;             /* (S_max, E) full rows before Matryoshka truncation */
    char *cat;                /* prompt + text of each text of a chunk; grows, then is reused */
    size_t cat_cap;
    sembed__cuda *gpu; /* non-NULL: the forward pass runs there (src/cuda/) */
};

sembed_ctx_params sembed_ctx_default_params(void) {
    return (sembed_ctx_params){0};
}

void sembed_ctx_free(sembed_ctx *c) {
    if (!c) return;
#ifdef SEMBED_HAVE_CUDA
    sembed__cuda_free(c->gpu);
#endif
    sembed__pool_free(c->pool);
    sembed__free(c->ex.scratch);
    sembed__free(c->slot_ids);
    sembed__free(c->slots);
    sembed__free(c->slot_status);
    sembed__free(c->ids);
    sembed__free(c->pos_ids);
    sembed__free(c->seq_off);
    sembed__free(c->x);
    sembed__free(c->big);
    sembed__free(c->att);
    sembed__free(c->tmp);
    sembed__free(c->pa);
    sembed__free(c->pb);
    sembed__free(c->chunk_texts);
    sembed__free(c->chunk_lens);
    sembed__free(c->skip);
    sembed__free(c->prompt_special);
    sembed__free(c->stage);
    sembed__free(c->cat);
    sembed__free(c);
}

static void *alloc_n(size_t n, size_t size, bool *ok) {
    size_t bytes;
    void *p = NULL;
    if (!sembed__mul_size(n, size, &bytes) || !(p = sembed__malloc(bytes ? bytes : 1))) *ok = false;
    return p;
}

/* The CUDA device index of "cuda" (0) or "cuda:N"; -1 for any other text. */
static int32_t cuda_index(const char *s) {
    if (!s || strncmp(s, "cuda", 4) != 0) return -1;
    if (s[4] == '\0') return 0;
    if (s[4] != ':' || s[5] < '0' || s[5] > '9') return -1;
    char *end = NULL;
    long v = strtol(s + 5, &end, 10);
    return (*end == '\0' && v >= 0 && v < 1024) ? (int32_t)v : -1;
}

/* The CUDA device params ask for, from their text and precision alone: *idx (-1: the CPU) and
 * whether it was "auto". Errors: a malformed device, a precision that is CPU arithmetic (int8,
 * fp32-strict: "auto" keeps it on the CPU, an explicit CUDA device is an error rather than a
 * silent fp16). */
static sembed_status requested_device(const sembed_ctx_params *p, int32_t *idx, bool *auto_,
                                      sembed_error *err) {
    *idx = -1, *auto_ = false;
    const char *device = p->device;
    if (!device || strcmp(device, "cpu") == 0) return SEMBED_OK;
    *auto_ = strcmp(device, "auto") == 0;
    const int32_t i = *auto_ ? 0 : cuda_index(device);
    if (i < 0)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "device '%s': expected cpu, cuda, cuda:N or auto", device);
    if (p->precision == SEMBED_PRECISION_INT8 || p->precision == SEMBED_PRECISION_FP32_STRICT) {
        if (*auto_) return SEMBED_OK;
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "precision '%s' runs on the CPU only (device '%s' runs fp16 with "
                           "fp32 or bf16): use device cpu or auto",
                           sembed_precision_name(p->precision), device);
    }
    *idx = i;
    return SEMBED_OK;
}

/* Where a context with params p runs, decided before anything is planned for it: *dev is the
 * CUDA device index, or -1 for the CPU. Errors: requested_device's, CUDA asked of a build
 * without it. */
static sembed_status resolve_device(const sembed_ctx_params *p, int32_t *dev, sembed_error *err) {
    *dev = -1;
    int32_t idx;
    bool auto_;
    const sembed_status s = requested_device(p, &idx, &auto_, err);
    if (s != SEMBED_OK || idx < 0) return s;
#ifdef SEMBED_HAVE_CUDA
    if (auto_ && sembed__cuda_device_count() < 1) return SEMBED_OK;
    *dev = idx;
    return SEMBED_OK;
#else
    if (auto_) return SEMBED_OK;
    return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                       "device '%s': this build of sembed has no CUDA backend", p->device);
#endif
}

struct sembed_device_warm {
    pthread_t thread;
    int32_t device;
};

#ifdef SEMBED_HAVE_CUDA
static void *warm_main(void *arg) {
    sembed__cuda_warm(((sembed_device_warm *)arg)->device);
    return NULL;
}
#endif

sembed_device_warm *sembed_device_warm_start(const sembed_ctx_params *params) {
#ifdef SEMBED_HAVE_CUDA
    /* the device sembed_ctx_new(params) would try; its errors are left to sembed_ctx_new */
    int32_t idx;
    bool auto_;
    if (!params || requested_device(params, &idx, &auto_, NULL) != SEMBED_OK || idx < 0) return NULL;
    sembed_device_warm *w = sembed__calloc(1, sizeof *w);
    if (!w) return NULL;
    w->device = idx;
    if (pthread_create(&w->thread, NULL, warm_main, w) != 0) {
        sembed__free(w);
        return NULL;
    }
    return w;
#else
    (void)params;
    return NULL;
#endif
}

void sembed_device_warm_wait(sembed_device_warm *w) {
    if (!w) return;
    pthread_join(w->thread, NULL);
    sembed__free(w);
}

/* The hook to the CUDA encoder (src/cuda/sembed_cuda.h): hands the model's fp32 weights to CUDA
 * device dev (resolve_device's) for upload. */
static sembed_status attach_device(sembed_ctx *c, int32_t dev, sembed_error *err) {
#ifdef SEMBED_HAVE_CUDA
    const sembed_model *m = c->m;
    sembed__cuda_layer *layers = sembed__calloc((size_t)m->n_layers, sizeof *layers);
    if (!layers) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    for (int32_t l = 0; l < m->n_layers; l++) {
        const layer_w *w = &m->layers[l];
        layers[l] = (sembed__cuda_layer){w->qkv_w, w->qkv_b, w->o_w,   w->o_b,   w->ln1_g, w->ln1_b,
                                         w->i_w,   w->i_b,   w->f_w,   w->f_b,   w->ln2_g, w->ln2_b};
    }
    sembed__cuda_model d = {
        .H = m->H, .A = m->A, .I = m->I, .n_layers = m->n_layers, .V = m->cfg.vocab_size,
        .P = m->cfg.max_position_embeddings, .R = m->R, .eps = m->eps, .act = m->act,
        .position_offset = m->position_offset, .word = m->word, .pos = m->pos, .type = m->type,
        .emb_g = m->emb_g, .emb_b = m->emb_b, .layers = layers, .rel_bias = m->rel_bias,
        .n_pool = m->n_pool, .n_dense = m->n_dense, .normalize = m->normalize, .dim = m->dim,
        .bf16 = c->p.precision == SEMBED_PRECISION_BF16};
    memcpy(d.pool, m->pool, sizeof d.pool);
    SEMBED_ASSERT(m->n_dense <= SEMBED__CUDA_MAX_DENSE);
    for (int32_t i = 0; i < m->n_dense; i++)
        d.dense[i] = (sembed__cuda_dense){m->dense[i].w, m->dense[i].b, m->dense[i].in,
                                          m->dense[i].out, m->dense[i].act};
    sembed_status s = sembed__cuda_new(&d, dev, c->T_max, c->S_max, &c->gpu, err);
    sembed__free(layers);
    if (s == SEMBED_OK) snprintf(c->device, sizeof c->device, "cuda:%d", (int)dev);
    return s;
#else
    (void)c, (void)dev; /* resolve_device never gives a device here */
    return sembed__err(err, SEMBED_ERR_UNSUPPORTED, "this build of sembed has no CUDA backend");
#endif
}

#ifndef SEMBED_HAVE_CUDA
sembed__cuda *sembed__ctx_cuda(sembed_ctx *c);
#endif
sembed__cuda *sembed__ctx_cuda(sembed_ctx *c) { return c ? c->gpu : NULL; }

const char *sembed_ctx_device(const sembed_ctx *ctx) { return ctx ? ctx->device : NULL; }

/* Each layer's four Linear weights in the precision sembed__wprep_choose gives for `precision`
 * (src/cpu/quant.c) in *out; a NULL entry stays fp32. */
static sembed_status build_prep_set(const sembed_model *m, int32_t precision, sembed__wprep ***out,
                                    sembed_error *err) {
    sembed__wprep **set = sembed__calloc((size_t)m->n_layers * 4, sizeof *set);
    if (!set) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory preparing weights");
    for (int32_t l = 0; l < m->n_layers; l++) {
        const layer_w *w = &m->layers[l];
        const float *ws[4] = {w->qkv_w, w->o_w, w->i_w, w->f_w};
        const float *bs[4] = {w->qkv_b, w->o_b, w->i_b, w->f_b};
        const int32_t ns[4] = {3 * m->H, m->H, m->I, m->H}, ks[4] = {m->H, m->H, m->H, m->I};
        for (int32_t j = 0; j < 4; j++) {
            const int32_t prec = sembed__wprep_choose(precision, j, l);
            if (prec < 0) continue; /* NULL: the backend's fp32 gemm_bias */
            sembed_status s = sembed__wprep_new(ws[j], bs[j], ns[j], ks[j], prec, &set[l * 4 + j],
                                                err);
            if (s != SEMBED_OK) {
                free_prep_set(set, 4 * m->n_layers);
                return s;
            }
        }
    }
    *out = set;
    return SEMBED_OK;
}

/* The context's prepared weights: the model's set for its precision, made now if it is the
 * first context to need it (a model's contexts share one copy; the lock covers the making). */
static sembed_status prepare_weights(sembed_ctx *c, sembed_error *err) {
    prep_cache *pc = c->m->prep;
    const int32_t prec = (int32_t)c->p.precision;
    sembed_status s = SEMBED_OK;
    pthread_mutex_lock(&pc->mu);
    if (!pc->set[prec]) s = build_prep_set(c->m, prec, &pc->set[prec], err);
    c->prep = pc->set[prec];
    pthread_mutex_unlock(&pc->mu);
    return s;
}

sembed_status sembed_ctx_new(const sembed_model *m, const sembed_ctx_params *params,
                             sembed_ctx **out, sembed_error *err) {
    if (!m || !out)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed_ctx_new: NULL argument");
    *out = NULL;
    sembed_ctx_params p = params ? *params : sembed_ctx_default_params();
    if (p.n_threads < 0 || p.max_batch_tokens < 0 || p.max_batch_texts < 0 || p.n_threads > 1024 ||
        p.max_batch_texts > (1 << 20) || p.max_batch_tokens > (1 << 24) ||
        !sembed_precision_name(p.precision))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "sembed_ctx_new: invalid params (n_threads %d, max_batch_tokens %d, "
                           "max_batch_texts %d, precision %d)",
                           p.n_threads, p.max_batch_tokens, p.max_batch_texts, (int)p.precision);
    if (p.n_threads == 0) p.n_threads = sembed__n_cpus();
    int32_t dev = -1;
    sembed_status s = resolve_device(&p, &dev, err);
    if (s != SEMBED_OK) return s;
    /* a GPU runs whole passes per launch sequence: larger ones by default (bench's GPU context) */
    const bool gpu = dev >= 0;
    if (p.max_batch_tokens == 0) p.max_batch_tokens = gpu ? 32768 : 4096;
    if (p.max_batch_tokens < m->R) p.max_batch_tokens = m->R;
    if (p.max_batch_texts == 0) p.max_batch_texts = gpu ? 1024 : 256;

    sembed_ctx *c = sembed__calloc(1, sizeof *c);
    if (!c) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory creating a context");
    c->m = m;
    c->p = p;
    c->be = p.reference_ops ? &sembed__backend_ref : &sembed__backend_cpu;
    c->T_max = p.max_batch_tokens;
    c->S_max = p.max_batch_texts;
    s = sembed__pool_new(p.reference_ops ? 1 : p.n_threads, &c->pool, err);
    if (s != SEMBED_OK) {
        sembed_ctx_free(c);
        return s;
    }
    if (!p.reference_ops) sembed__cpu_set_blas_threads(p.n_threads);

    const size_t T = (size_t)c->T_max, S = (size_t)c->S_max, H = (size_t)m->H;
    const size_t wide = (size_t)(3 * m->H > m->I ? 3 * m->H : m->I);
    int32_t min_dim = m->H < m->I ? m->H : m->I, max_dim = 3 * m->H > m->I ? 3 * m->H : m->I;
    for (int32_t i = 0; i < m->n_dense; i++) {
        int32_t lo = m->dense[i].in < m->dense[i].out ? m->dense[i].in : m->dense[i].out;
        int32_t hi = m->dense[i].in > m->dense[i].out ? m->dense[i].in : m->dense[i].out;
        min_dim = lo < min_dim ? lo : min_dim;
        max_dim = hi > max_dim ? hi : max_dim;
    }
    bool ok = true;
    c->ex.pool = c->pool;
    c->ex.scratch_floats = c->be->scratch_floats(m->R, m->H / m->A, min_dim, max_dim,
                                                 sembed__pool_threads(c->pool));
    c->ex.scratch = alloc_n((size_t)c->ex.scratch_floats, sizeof(float), &ok);
    c->slot_ids = alloc_n(S * (size_t)m->R, sizeof(int32_t), &ok);
    c->slots = alloc_n(S, sizeof(sembed_tokens), &ok);
    if (gpu) {
        const char *ov = getenv("SEMBED_CUDA_OVERLAP");
        const bool set = ov && (strcmp(ov, "0") == 0 || strcmp(ov, "1") == 0);
        c->gpu_keep = set ? ov[0] - '0' : 2;
    }
    c->slot_status = alloc_n(S, sizeof(sembed_status), &ok);
    c->ids = alloc_n(T, sizeof(int32_t), &ok);
    c->pos_ids = alloc_n(T, sizeof(int32_t), &ok);
    c->seq_off = alloc_n(S + 1, sizeof(int32_t), &ok);
    /* the CPU forward pass's activations; a GPU context keeps its own on the device (forward()
     * never runs for it: with 32768 tokens these were ~0.7 GB of BERT-base's address space) */
    const size_t Tc = gpu ? 0 : T;
    c->x = alloc_n(Tc * H, sizeof(float), &ok);
    c->big = alloc_n(Tc * wide, sizeof(float), &ok);
    c->att = alloc_n(Tc * H, sizeof(float), &ok);
    c->tmp = alloc_n(Tc * H, sizeof(float), &ok);
    c->pa = alloc_n(S * (size_t)m->max_dim, sizeof(float), &ok);
    c->pb = alloc_n(S * (size_t)m->max_dim, sizeof(float), &ok);
    c->chunk_texts = alloc_n(S, sizeof(const char *), &ok);
    c->chunk_lens = alloc_n(S, sizeof(size_t), &ok);
    c->skip = alloc_n(S, sizeof(int32_t), &ok);
    c->prompt_special = alloc_n((size_t)m->R, 1, &ok);
    c->stage = alloc_n(S * (size_t)m->dim, sizeof(float), &ok);
    if (!ok) {
        sembed_ctx_free(c);
        return sembed__err(err, SEMBED_ERR_NOMEM,
                           "out of memory planning a context for %d tokens, %d texts", c->T_max,
                           c->S_max);
    }
    snprintf(c->device, sizeof c->device, "cpu");
    s = gpu ? attach_device(c, dev, err) : prepare_weights(c, err);
    if (s != SEMBED_OK) {
        sembed_ctx_free(c);
        return s;
    }
    *out = c;
    return SEMBED_OK;
}

/* ---- encoding --------------------------------------------------------------------------------- */

static void tokenize_task(void *v, int32_t task, int32_t n_tasks, int32_t thread) {
    (void)n_tasks, (void)thread;
    sembed_ctx *c = v;
    c->slot_status[task] = sembed_tokenize(c->m->tok, c->chunk_texts[task], c->chunk_lens[task],
                                           &c->slots[task], NULL);
}

/* y = act(x · wᵀ + b) for Linear j (0 qkv, 1 o, 2 i, 3 f) of layer l, in the context's
 * precision (prepared GEMMs apply act to each block as they write it). */
static void linear(sembed_ctx *c, int32_t l, int32_t j, float *y, const float *x, const float *w,
                   const float *b, int32_t T, int32_t N, int32_t K, sembed__act_kind act) {
    if (c->prep && c->prep[l * 4 + j]) {
        c->be->gemm_prep(y, x, c->prep[l * 4 + j], T, act, &c->ex);
    } else {
        c->be->gemm_bias(y, x, w, b, T, N, K, &c->ex);
        c->be->act(y, (int64_t)T * N, act, &c->ex);
    }
}

/* The forward pass over the packed batch of S texts, T tokens (c->ids, c->seq_off); writes the
 * S embeddings (E floats each) to out. skip (S) or NULL: leading tokens each text's pooling
 * leaves out. */

/* The row of text s that CLS pooling takes: its first token, or with skip (include_prompt
 * false) the first token after the prompt, as sentence-transformers 6 takes CLS at the first
 * position the mask keeps (argmax); the first token when the prompt fills the text. */
static int64_t cls_row(const sembed_ctx *c, const int32_t *skip, int32_t s) {
    const int32_t L = c->seq_off[s + 1] - c->seq_off[s];
    return c->seq_off[s] + (skip && skip[s] < L ? skip[s] : 0);
}

static void forward(sembed_ctx *c, int32_t S, int32_t T, const int32_t *skip, float *out) {
    const sembed_model *m = c->m;
    const sembed__backend *be = c->be;
    const sembed__exec *ex = &c->ex;
    const int32_t H = m->H, I = m->I;

    for (int32_t s = 0; s < S; s++) {
        if (m->pad_positions) {
            /* transformers' create_position_ids_from_input_ids (RoBERTa, XLM-R, MPNet): the
             * padding id's tokens sit at position padding_idx and are not counted, so a text
             * that contains "<pad>" shifts the positions after it */
            const int32_t pad = m->position_offset - 1;
            int32_t count = 0;
            for (int32_t j = c->seq_off[s]; j < c->seq_off[s + 1]; j++)
                c->pos_ids[j] = c->ids[j] == pad ? pad : pad + ++count;
        } else {
            for (int32_t j = c->seq_off[s]; j < c->seq_off[s + 1]; j++)
                c->pos_ids[j] = m->position_offset + (j - c->seq_off[s]);
        }
    }
    /* token type 0 for every token (sentence-transformers encodes single texts) */
    be->embed_ln(c->x, c->ids, c->pos_ids, NULL, m->word, m->pos, m->type, m->emb_g, m->emb_b, T,
                 H, m->eps, ex);
    /* CLS pooling alone (bge): after the last layer's attention only each text's CLS row is
     * pooled, so that layer's attention output, FFN and LayerNorms run on those S rows. Every
     * op is row by row (GEMM rows do not depend on M), so the vectors are the same bits */
    int32_t Tl = T;
    for (int32_t l = 0; l < m->n_layers; l++) {
        const layer_w *w = &m->layers[l];
        linear(c, l, 0, c->big, c->x, w->qkv_w, w->qkv_b, T, 3 * H, H, SEMBED__ACTK_IDENTITY);
        be->attention(c->att, c->big, c->seq_off, m->rel_bias, S, H, m->A, m->R, ex);
        if (m->cls_only && l == m->n_layers - 1) {
            /* row s <- the text's CLS row (rows only move down: cls_row(s) >= seq_off[s] >= s) */
            for (int32_t s = 0; s < S; s++) {
                const int64_t r = cls_row(c, skip, s);
                memmove(c->att + (int64_t)s * H, c->att + r * H, sizeof(float) * (size_t)H);
                memmove(c->x + (int64_t)s * H, c->x + r * H, sizeof(float) * (size_t)H);
            }
            Tl = S;
        }
        linear(c, l, 1, c->tmp, c->att, w->o_w, w->o_b, Tl, H, H, SEMBED__ACTK_IDENTITY);
        be->add_ln(c->x, c->tmp, c->x, w->ln1_g, w->ln1_b, Tl, H, m->eps, ex);
        linear(c, l, 2, c->big, c->x, w->i_w, w->i_b, Tl, I, H, m->act); /* (Tl, I) */
        linear(c, l, 3, c->tmp, c->big, w->f_w, w->f_b, Tl, H, I, SEMBED__ACTK_IDENTITY);
        be->add_ln(c->x, c->tmp, c->x, w->ln2_g, w->ln2_b, Tl, H, m->eps, ex);
    }
    if (!m->cls_only) be->pool(c->pa, c->x, c->seq_off, skip, m->pool, m->n_pool, S, H, ex);
    /* CLS features: row s after the cut; else be->pool took the first token, which a prompt
     * left out of pooling (skip) moves */
    for (int32_t k = 0; k < m->n_pool && (m->cls_only || skip); k++)
        for (int32_t s = 0; s < S && m->pool[k] == SEMBED__POOLK_CLS; s++)
            memcpy(c->pa + (int64_t)s * m->pooled_dim + (int64_t)k * H,
                   c->x + (m->cls_only ? s : cls_row(c, skip, s)) * H, sizeof(float) * (size_t)H);
    float *cur = c->pa, *nxt = c->pb;
    for (int32_t i = 0; i < m->n_dense; i++) {
        const dense_w *d = &m->dense[i];
        be->gemm_bias(nxt, cur, d->w, d->b, S, d->out, d->in, ex);
        be->act(nxt, (int64_t)S * d->out, d->act, ex);
        float *t = cur;
        cur = nxt, nxt = t;
    }
    if (m->normalize) be->normalize(cur, S, m->dim, ex);
    memcpy(out, cur, sizeof(float) * (size_t)S * (size_t)m->dim);
}

/* One call's inputs: texts (each after an optional prompt) or token ids. */
typedef struct enc_call {
    const char *fn;             /* the API function, for messages */
    const char *const *texts;   /* (n) texts, or NULL when ids are given */
    const size_t *lens;         /* (n) bytes, or NULL: NUL-terminated */
    const int32_t *const *ids;  /* (n) token ids */
    const int32_t *n_ids;       /* (n) */
    const char *prompt;         /* prepended to every text; NULL: none */
    size_t prompt_len;
    int32_t prompt_tokens;      /* leading tokens left out of pooling (include_prompt false) */
    int32_t dims;               /* floats per output row */
} enc_call;

/* The prompt of a call, as sentence-transformers' encode(prompt=, prompt_name=) picks it: a
 * literal prompt first, then a prompt by name, then the folder's default_prompt_name. */
static sembed_status pick_prompt(const sembed_model *m, const sembed_encode_opts *o,
                                 const char *fn, const char **out, sembed_error *err) {
    const sembed__model_config *cfg = &m->cfg;
    *out = NULL;
    if (o && o->prompt) {
        *out = o->prompt;
    } else if (o && o->prompt_name) {
        for (int32_t i = 0; i < cfg->n_prompts && !*out; i++)
            if (strcmp(cfg->prompts[i].name, o->prompt_name) == 0) *out = cfg->prompts[i].text;
        if (!*out)
            return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                               "%s: prompt_name '%.64s' is not one of the model's %d prompts "
                               "(config_sentence_transformers.json)",
                               fn, o->prompt_name, cfg->n_prompts);
    } else if (cfg->default_prompt >= 0) {
        *out = cfg->prompts[cfg->default_prompt].text;
    }
    return SEMBED_OK;
}

/* Sets call->prompt_tokens as sentence-transformers 6 computes prompt_length: the prompt
 * tokenized alone (special tokens added), less its last token when that is a special one (the
 * [SEP] or </s> after it). Pooling then masks the first prompt_length positions, [CLS] included.
 * The prompt is checked (UTF-8) here even when the model pools over it. */
static sembed_status measure_prompt(sembed_ctx *c, enc_call *call, sembed_error *err) {
    const sembed_model *m = c->m;
    sembed_tokens pt = {.ids = c->slot_ids, .special = c->prompt_special, .capacity = m->R};
    sembed_error e;
    sembed_status s = sembed_tokenize(m->tok, call->prompt, call->prompt_len, &pt, &e);
    if (s != SEMBED_OK) return sembed__err(err, s, "%s: the prompt: %s", call->fn, e.msg);
    int32_t n = pt.n;
    if (n > 0 && pt.special[n - 1]) n--;
    call->prompt_tokens = m->include_prompt ? 0 : n;
    return SEMBED_OK;
}

/* Tokenizes texts chunk0 .. chunk0+n-1 (prompt first) into the slots. */
static sembed_status tokenize_chunk(sembed_ctx *c, const enc_call *call, int32_t chunk0,
                                    int32_t n, sembed_error *err) {
    const sembed_model *m = c->m;
    size_t total = 0;
    for (int32_t k = 0; k < n; k++) {
        const int32_t i = chunk0 + k;
        c->chunk_texts[k] = call->texts[i];
        c->chunk_lens[k] = call->lens ? call->lens[i] : strlen(call->texts[i]);
        if (call->prompt_len &&
            (!sembed__add_size(total, call->prompt_len, &total) ||
             !sembed__add_size(total, c->chunk_lens[k], &total)))
            return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: texts too long", call->fn);
    }
    if (call->prompt_len) { /* prompt + text, end to end in one buffer kept by the context */
        if (total > c->cat_cap) {
            char *p = sembed__realloc(c->cat, total);
            if (!p)
                return sembed__err(err, SEMBED_ERR_NOMEM,
                                   "%s: out of memory for %zu bytes of prompted texts", call->fn,
                                   total);
            c->cat = p, c->cat_cap = total;
        }
        char *w = c->cat;
        for (int32_t k = 0; k < n; k++) {
            memcpy(w, call->prompt, call->prompt_len);
            if (c->chunk_lens[k]) memcpy(w + call->prompt_len, c->chunk_texts[k], c->chunk_lens[k]);
            c->chunk_texts[k] = w;
            c->chunk_lens[k] += call->prompt_len;
            w += c->chunk_lens[k];
        }
    }
    sembed__pool_run(c->pool, tokenize_task, c, n);
    for (int32_t k = 0; k < n; k++) {
        if (c->slot_status[k] == SEMBED_OK) continue;
        /* again, on this thread, without the prompt: the message's byte offsets are the text's */
        const int32_t i = chunk0 + k;
        sembed_error e = {0};
        size_t len = call->lens ? call->lens[i] : strlen(call->texts[i]);
        sembed_status s = sembed_tokenize(m->tok, call->texts[i], len, &c->slots[k], &e);
        if (s == SEMBED_OK) {
            s = c->slot_status[k];
            snprintf(e.msg, sizeof e.msg, "%s", sembed_status_str(s));
        }
        return sembed__err(err, s, "text %d: %s", i, e.msg);
    }
    return SEMBED_OK;
}

/* Copies inputs chunk0 .. chunk0+n-1 of token ids into the slots, checked and truncated. */
static sembed_status copy_ids_chunk(sembed_ctx *c, const enc_call *call, int32_t chunk0, int32_t n,
                                    sembed_error *err) {
    const sembed_model *m = c->m;
    const int32_t V = m->cfg.vocab_size;
    for (int32_t k = 0; k < n; k++) {
        const int32_t i = chunk0 + k, len = call->n_ids[i];
        const int32_t *ids = call->ids[i];
        if (len < 1)
            return sembed__err(err, SEMBED_ERR_INPUT, "%s: input %d is empty (%d ids)", call->fn,
                               i, len);
        if (!ids) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: input %d is NULL", call->fn, i);
        for (int32_t j = 0; j < len; j++)
            if (ids[j] < 0 || ids[j] >= V)
                return sembed__err(err, SEMBED_ERR_INPUT,
                                   "%s: input %d, position %d: token id %d is outside the "
                                   "vocabulary [0, %d)",
                                   call->fn, i, j, ids[j], V);
        sembed_tokens *t = &c->slots[k];
        t->n = len < m->R ? len : m->R;
        t->n_full = len;
        t->truncated = len > m->R;
        memcpy(t->ids, ids, sizeof(int32_t) * (size_t)t->n);
    }
    return SEMBED_OK;
}

/* The texts of the chunk from c0 of a call of n: S_max, or what is left. */
static int32_t chunk_len(const sembed_ctx *c, int32_t c0, int32_t n) {
    return n - c0 < c->S_max ? n - c0 : c->S_max;
}

/* The chunk of texts (or ids) c0 .. c0+cn-1 into the context's slots, checked, with their
 * info filled. */
static sembed_status prepare_chunk(sembed_ctx *c, const enc_call *call, int32_t c0, int32_t cn,
                                   sembed_encode_info *info, sembed_error *err) {
    const sembed_model *m = c->m;
    for (int32_t k = 0; k < cn; k++)
        c->slots[k] = (sembed_tokens){.ids = c->slot_ids + (int64_t)k * m->R, .capacity = m->R};
    sembed_status s = call->texts ? tokenize_chunk(c, call, c0, cn, err)
                                  : copy_ids_chunk(c, call, c0, cn, err);
    if (s != SEMBED_OK) return s;
    for (int32_t k = 0; k < cn; k++) {
        const int32_t i = c0 + k;
        if (c->slots[k].n < 1)
            return sembed__err(err, SEMBED_ERR_INPUT,
                               "text %d gives no tokens (the tokenizer adds no special "
                               "tokens), so it has no embedding",
                               i);
        if (c->p.strict_length && c->slots[k].truncated)
            return sembed__err(err, SEMBED_ERR_TOO_LONG,
                               "%s %d has %d tokens; the model's max length is %d",
                               call->texts ? "text" : "input", i, c->slots[k].n_full, m->R);
        if (info) {
            info[i].n_tokens = c->slots[k].n;
            info[i].truncated = c->slots[k].truncated;
        }
    }
    return SEMBED_OK;
}

/* Where a batch's full rows go: out at its first text b0, or the stage for Matryoshka
 * truncation (truncate_rows). */
static float *batch_dst(sembed_ctx *c, const enc_call *call, int32_t b0, float *out) {
    return call->dims == c->m->dim ? out + (int64_t)b0 * c->m->dim : c->stage;
}

/* sentence-transformers' truncate_dim for the batch of S texts from b0 in the stage, then
 * normalize_embeddings=True when the model normalizes (the truncated row is no longer unit
 * length); nothing when the call keeps the full rows. */
static void truncate_rows(sembed_ctx *c, const enc_call *call, int32_t b0, int32_t S, float *out) {
    const int32_t E = c->m->dim, D = call->dims;
    if (D == E) return;
    float *rows = out + (int64_t)b0 * D;
    for (int32_t r = 0; r < S; r++)
        memcpy(rows + (int64_t)r * D, c->stage + (int64_t)r * E, sizeof(float) * (size_t)D);
    if (c->m->normalize) c->be->normalize(rows, S, D, &c->ex);
}

/* A GPU context's batches submitted and not yet finished, oldest first: first text, texts. */
typedef struct flights {
    int32_t n, b0[2], S[2];
} flights;

#ifdef SEMBED_HAVE_CUDA
static sembed_status finish_oldest(sembed_ctx *c, const enc_call *call, flights *q, float *out,
                                   sembed_error *err) {
    const int32_t b0 = q->b0[0], S = q->S[0];
    q->b0[0] = q->b0[1], q->S[0] = q->S[1];
    q->n--;
    sembed_status s = sembed__cuda_finish(c->gpu, batch_dst(c, call, b0, out), err);
    if (s == SEMBED_OK) truncate_rows(c, call, b0, S, out);
    return s;
}
#endif

/* Runs the packed batch (c->ids, c->seq_off: S texts from b0, T tokens). On the CPU now. On a
 * GPU it is submitted, after the oldest batch in flight is finished when the GPU has no buffer
 * free; batches beyond c->gpu_keep are finished after it. */
static sembed_status run_batch(sembed_ctx *c, const enc_call *call, flights *q, int32_t b0,
                               int32_t S, int32_t T, float *out, sembed_error *err) {
#ifdef SEMBED_HAVE_CUDA
    if (c->gpu) {
        sembed_status s = SEMBED_OK;
        while (s == SEMBED_OK && q->n > 0 && q->n >= sembed__cuda_slots(c->gpu))
            s = finish_oldest(c, call, q, out, err);
        SEMBED_ASSERT(q->n < 2);
        if (s == SEMBED_OK) s = sembed__cuda_submit(c->gpu, c->ids, c->seq_off, S, T, err);
        if (s == SEMBED_OK) q->b0[q->n] = b0, q->S[q->n] = S, q->n++;
        while (s == SEMBED_OK && q->n > c->gpu_keep) s = finish_oldest(c, call, q, out, err);
        return s;
    }
#endif
    (void)q, (void)err;
    forward(c, S, T, call->prompt_tokens > 0 ? c->skip : NULL, batch_dst(c, call, b0, out));
    truncate_rows(c, call, b0, S, out);
    return SEMBED_OK;
}

static sembed_status encode_run(sembed_ctx *c, enc_call *call, int32_t n, float *out,
                                int64_t out_capacity_floats, sembed_encode_info *info,
                                sembed_error *err) {
    const int64_t need = (int64_t)n * call->dims;
    if (out_capacity_floats < need)
        return sembed__err(err, SEMBED_ERR_TOO_SMALL,
                           "%s: the output needs %lld floats (%d texts x %d), the buffer has %lld",
                           call->fn, (long long)need, n, call->dims,
                           (long long)out_capacity_floats);
    if (call->prompt_len) {
        sembed_status s = measure_prompt(c, call, err);
        if (s != SEMBED_OK) return s;
    }
    if (c->gpu && call->prompt_tokens > 0)
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: this model leaves prompt tokens out of pooling "
                           "(include_prompt false), which the CUDA backend does not do yet; "
                           "use the CPU",
                           call->fn);
    for (int32_t k = 0; k < c->S_max; k++) c->skip[k] = call->prompt_tokens;
    /* Texts are tokenized a chunk (S_max) at a time and packed, in order, into batches of up to
     * T_max tokens and S_max texts. On a GPU the batches submitted run while the host packs the
     * next one and tokenizes the next chunk (the packed batch holds copies of the ids, so one
     * set of slots serves), and a batch goes on into the next chunk. */
    flights q = {0};
    int32_t b0 = 0, S = 0, T = 0; /* the batch being packed: texts b0 .. b0+S-1, T tokens */
    c->seq_off[0] = 0;
    sembed_status s = SEMBED_OK;
    for (int32_t c0 = 0; c0 < n && s == SEMBED_OK; c0 += c->S_max) {
        const int32_t cn = chunk_len(c, c0, n);
        s = prepare_chunk(c, call, c0, cn, info, err);
        for (int32_t k = 0; k < cn && s == SEMBED_OK; k++) {
            const sembed_tokens *tk = &c->slots[k];
            SEMBED_ASSERT(tk->n >= 1 && tk->n <= c->T_max);
            if (S == c->S_max || T + tk->n > c->T_max) {
                s = run_batch(c, call, &q, b0, S, T, out, err);
                b0 += S, S = T = 0;
                if (s != SEMBED_OK) break;
            }
            memcpy(c->ids + T, tk->ids, sizeof(int32_t) * (size_t)tk->n);
            T += tk->n;
            c->seq_off[++S] = T;
        }
        if (s == SEMBED_OK && S > 0 && (c->gpu_keep < 2 || c0 + cn == n)) {
            s = run_batch(c, call, &q, b0, S, T, out, err);
            b0 += S, S = T = 0;
        }
    }
#ifdef SEMBED_HAVE_CUDA
    while (q.n > 0) { /* after an error too: nothing stays in flight past the call */
        sembed_error e;
        const sembed_status f = finish_oldest(c, call, &q, out, s == SEMBED_OK ? err : &e);
        if (s == SEMBED_OK) s = f;
    }
#endif
    return s;
}

static sembed_status check_dims(const sembed_model *m, const sembed_encode_opts *o,
                                const char *fn, int32_t *dims, sembed_error *err) {
    *dims = o && o->dimensions ? o->dimensions : m->dim;
    if (*dims < 1 || *dims > m->dim)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "%s: dimensions %d is outside [1, %d] (the model's dimension)", fn,
                           o ? o->dimensions : 0, m->dim);
    return SEMBED_OK;
}

sembed_status sembed_encode_ex(sembed_ctx *c, int32_t n_texts, const char *const *texts,
                               const size_t *lens, const sembed_encode_opts *opts, float *out,
                               int64_t out_capacity_floats, sembed_encode_info *info,
                               sembed_error *err) {
    const char *fn = "sembed_encode";
    if (!c || n_texts < 0 || (n_texts > 0 && (!texts || !out)))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: invalid argument", fn);
    for (int32_t i = 0; i < n_texts; i++)
        if (!texts[i])
            return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: text %d is NULL", fn, i);
    enc_call call = {.fn = fn, .texts = texts, .lens = lens};
    sembed_status s = check_dims(c->m, opts, fn, &call.dims, err);
    if (s == SEMBED_OK) s = pick_prompt(c->m, opts, fn, &call.prompt, err);
    if (s != SEMBED_OK) return s;
    call.prompt_len = call.prompt ? strlen(call.prompt) : 0;
    return encode_run(c, &call, n_texts, out, out_capacity_floats, info, err);
}

sembed_status sembed_encode(sembed_ctx *c, int32_t n_texts, const char *const *texts,
                            const size_t *lens, float *out, int64_t out_capacity_floats,
                            sembed_encode_info *info, sembed_error *err) {
    return sembed_encode_ex(c, n_texts, texts, lens, NULL, out, out_capacity_floats, info, err);
}

sembed_status sembed_encode_ids(sembed_ctx *c, int32_t n_inputs, const int32_t *const *ids,
                                const int32_t *n_ids, const sembed_encode_opts *opts, float *out,
                                int64_t out_capacity_floats, sembed_encode_info *info,
                                sembed_error *err) {
    const char *fn = "sembed_encode_ids";
    if (!c || n_inputs < 0 || (n_inputs > 0 && (!ids || !n_ids || !out)))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: invalid argument", fn);
    if (opts && (opts->prompt || opts->prompt_name))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "%s: prompts do not apply to token ids (put the prompt's tokens in "
                           "the ids)",
                           fn);
    enc_call call = {.fn = fn, .ids = ids, .n_ids = n_ids};
    sembed_status s = check_dims(c->m, opts, fn, &call.dims, err);
    if (s != SEMBED_OK) return s;
    return encode_run(c, &call, n_inputs, out, out_capacity_floats, info, err);
}
