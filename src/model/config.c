/* config.c — parsing and validating a model folder's configuration files (see config.h), and
 * the table of architectures: which tensors each needs, with which shapes. Not the encoder.
 *
 * Policy: unknown extra fields are ignored (real configs carry dozens); a field of the wrong
 * JSON type, a value out of range, or a missing required field is SEMBED_ERR_FORMAT naming file
 * and field; something valid that sembed does not implement is SEMBED_ERR_UNSUPPORTED. JSON null
 * counts as absent. Duplicate keys are rejected. */
#include "model/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON helpers ------------------------------------------------------------------------ */

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* Parses `len` bytes into *out, which must be of `want` type (JSON_OBJECT or JSON_ARRAY). */
static sembed_status load_json(const char *json, size_t len, const char *name, json_type want,
                               json_t **out, sembed_error *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory parsing JSON", name);
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)",
                           name, je.text, je.line, je.column);
    }
    if (json_typeof(root) != want) {
        sembed_status s =
            sembed__err(err, SEMBED_ERR_FORMAT, "%s: the top level is %s, not %s", name,
                        type_name(root), want == JSON_OBJECT ? "an object" : "an array");
        json_decref(root);
        return s;
    }
    *out = root;
    return SEMBED_OK;
}

/* The field `key` of obj, or NULL when absent or null. */
static json_t *field(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* An integer field in [lo, hi]. Absent: an error when `required`, else *out is unchanged. */
static sembed_status get_int(const json_t *obj, const char *file, const char *key, bool required,
                             int64_t lo, int64_t hi, int32_t *out, sembed_error *err) {
    SEMBED_ASSERT(lo <= hi && lo >= INT32_MIN && hi <= INT32_MAX);
    const json_t *v = field(obj, key);
    if (!v) {
        if (required)
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing required field '%s'", file,
                               key);
        return SEMBED_OK;
    }
    if (!json_is_integer(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: field '%s' must be an integer, not %s",
                           file, key, type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: field '%s' is %lld, outside [%lld, %lld]",
                           file, key, (long long)x, (long long)lo, (long long)hi);
    *out = (int32_t)x;
    return SEMBED_OK;
}

static sembed_status get_bool(const json_t *obj, const char *file, const char *key, bool *out,
                              sembed_error *err) {
    const json_t *v = field(obj, key);
    if (!v) return SEMBED_OK;
    if (!json_is_boolean(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: field '%s' must be true or false, not %s",
                           file, key, type_name(v));
    *out = json_is_true(v);
    return SEMBED_OK;
}

/* A string field; *out NULL when absent (or an error when `required`). */
static sembed_status get_str(const json_t *obj, const char *file, const char *key, bool required,
                             const char **out, sembed_error *err) {
    *out = NULL;
    const json_t *v = field(obj, key);
    if (!v) {
        if (required)
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing required field '%s'", file,
                               key);
        return SEMBED_OK;
    }
    if (!json_is_string(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: field '%s' must be a string, not %s", file,
                           key, type_name(v));
    *out = json_string_value(v);
    return SEMBED_OK;
}

/* ---- config.json --------------------------------------------------------------------------- */

static const struct {
    const char *model_type;
    const char *arch_prefix; /* of `architectures` entries: "BertModel", "BertForMaskedLM" */
    sembed__arch arch;
} k_archs[] = {
    /* longer prefixes first: "XLMRoberta" before "Roberta" */
    {"xlm-roberta", "XLMRoberta", SEMBED__ARCH_XLM_ROBERTA},
    {"roberta", "Roberta", SEMBED__ARCH_ROBERTA},
    {"mpnet", "MPNet", SEMBED__ARCH_MPNET},
    {"bert", "Bert", SEMBED__ARCH_BERT},
};

const char *sembed__arch_name(sembed__arch arch) {
    for (size_t i = 0; i < sizeof k_archs / sizeof *k_archs; i++)
        if (k_archs[i].arch == arch) return k_archs[i].model_type;
    return "unset";
}

static sembed_status parse_arch(const json_t *root, const char *file, sembed__arch *out,
                                sembed_error *err) {
    const char *mt;
    sembed_status s = get_str(root, file, "model_type", false, &mt, err);
    if (s != SEMBED_OK) return s;
    if (mt) {
        for (size_t i = 0; i < sizeof k_archs / sizeof *k_archs; i++) {
            if (strcmp(mt, k_archs[i].model_type) == 0) {
                *out = k_archs[i].arch;
                return SEMBED_OK;
            }
        }
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: model_type '%.64s' is not supported (supported: bert, roberta, "
                           "xlm-roberta, mpnet)",
                           file, mt);
    }
    const json_t *archs = field(root, "architectures");
    if (!archs)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: missing required field 'model_type' (and no 'architectures')",
                           file);
    if (!json_is_array(archs))
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: field 'architectures' must be an array, not %s", file,
                           type_name(archs));
    size_t i;
    const json_t *a;
    json_array_foreach(archs, i, a) {
        if (!json_is_string(a))
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: field 'architectures' must hold strings, not %s", file,
                               type_name(a));
        const char *name = json_string_value(a);
        for (size_t k = 0; k < sizeof k_archs / sizeof *k_archs; k++) {
            size_t n = strlen(k_archs[k].arch_prefix);
            /* "BertModel", "BertForMaskedLM": the prefix, then an upper-case letter */
            if (strncmp(name, k_archs[k].arch_prefix, n) == 0 && name[n] >= 'A' && name[n] <= 'Z') {
                *out = k_archs[k].arch;
                return SEMBED_OK;
            }
        }
    }
    const char *first = json_array_size(archs) && json_is_string(json_array_get(archs, 0))
                            ? json_string_value(json_array_get(archs, 0))
                            : "";
    return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                       "%s: no model_type, and architectures ('%.64s') name none that is "
                       "supported (Bert*, Roberta*, XLMRoberta*, MPNet*)",
                       file, first);
}

sembed_status sembed__config_parse_hf(sembed__model_config *cfg, const char *json, size_t len,
                                      const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_OBJECT, &root, err);
    if (s != SEMBED_OK) return s;
    const char *f = name;
    s = parse_arch(root, f, &cfg->arch, err);
    bool mpnet = cfg->arch == SEMBED__ARCH_MPNET, bert = cfg->arch == SEMBED__ARCH_BERT;

    /* Defaults as transformers' config classes, for fields a config may omit. */
    const char *act = "gelu";
    cfg->type_vocab_size = mpnet ? 0 : 2;
    cfg->layer_norm_eps = 1e-12;
    cfg->pad_token_id = bert ? 0 : 1;
    cfg->relative_attention_num_buckets = mpnet ? 32 : 0;

    if (s == SEMBED_OK)
        s = get_int(root, f, "vocab_size", true, 1, SEMBED__CFG_MAX_VOCAB, &cfg->vocab_size, err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "hidden_size", true, 1, SEMBED__CFG_MAX_HIDDEN, &cfg->hidden_size,
                    err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "num_hidden_layers", true, 1, SEMBED__CFG_MAX_LAYERS,
                    &cfg->num_hidden_layers, err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "num_attention_heads", true, 1, cfg->hidden_size,
                    &cfg->num_attention_heads, err);
    if (s == SEMBED_OK && cfg->hidden_size % cfg->num_attention_heads != 0)
        s = sembed__err(err, SEMBED_ERR_FORMAT,
                        "%s: num_attention_heads %d does not divide hidden_size %d", f,
                        cfg->num_attention_heads, cfg->hidden_size);
    if (s == SEMBED_OK)
        s = get_int(root, f, "intermediate_size", true, 1, SEMBED__CFG_MAX_INTERMEDIATE,
                    &cfg->intermediate_size, err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "max_position_embeddings", true, 1, SEMBED__CFG_MAX_POSITIONS,
                    &cfg->max_position_embeddings, err);
    if (s == SEMBED_OK && !mpnet)
        s = get_int(root, f, "type_vocab_size", false, 1, SEMBED__CFG_MAX_TYPE_VOCAB,
                    &cfg->type_vocab_size, err);
    if (s == SEMBED_OK && mpnet)
        /* MPNet computes buckets for num_buckets=32 whatever the config says (modeling_mpnet.py,
         * compute_position_bias), so the table needs at least 32 rows. */
        s = get_int(root, f, "relative_attention_num_buckets", false, 32, 1024,
                    &cfg->relative_attention_num_buckets, err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "pad_token_id", false, 0, cfg->vocab_size - 1, &cfg->pad_token_id,
                    err);
    if (s == SEMBED_OK && cfg->pad_token_id >= cfg->vocab_size) /* the default, with V == 1 */
        s = sembed__err(err, SEMBED_ERR_FORMAT,
                        "%s: pad_token_id %d (the default) is outside vocab_size %d", f,
                        cfg->pad_token_id, cfg->vocab_size);
    if (s == SEMBED_OK) {
        const json_t *v = field(root, "layer_norm_eps");
        if (v) {
            if (!json_is_number(v)) {
                s = sembed__err(err, SEMBED_ERR_FORMAT,
                                "%s: field 'layer_norm_eps' must be a number, not %s", f,
                                type_name(v));
            } else {
                double eps = json_number_value(v);
                if (!isfinite(eps) || !(eps > 0) || eps > 1)
                    s = sembed__err(err, SEMBED_ERR_FORMAT,
                                    "%s: field 'layer_norm_eps' is %g, outside (0, 1]", f, eps);
                cfg->layer_norm_eps = eps;
            }
        }
    }
    if (s == SEMBED_OK) s = get_str(root, f, "hidden_act", false, &act, err);
    if (s == SEMBED_OK) {
        if (!act) act = "gelu";
        if (strcmp(act, "gelu") == 0)
            cfg->hidden_act = SEMBED__ACT_GELU;
        else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0)
            cfg->hidden_act = SEMBED__ACT_GELU_TANH;
        else if (strcmp(act, "relu") == 0)
            cfg->hidden_act = SEMBED__ACT_RELU;
        else
            s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                            "%s: hidden_act '%.64s' is not supported (supported: gelu, gelu_new, "
                            "gelu_pytorch_tanh, relu)",
                            f, act);
    }
    if (s == SEMBED_OK && !mpnet) {
        const char *pet;
        s = get_str(root, f, "position_embedding_type", false, &pet, err);
        if (s == SEMBED_OK && pet && strcmp(pet, "absolute") != 0)
            s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                            "%s: position_embedding_type '%.64s' is not supported (only "
                            "'absolute')",
                            f, pet);
    }
    if (s == SEMBED_OK) {
        /* Where position ids start: RoBERTa counts from padding_idx+1 = pad_token_id+1; MPNet
         * from its fixed padding_idx 1, plus 1. */
        cfg->position_offset = bert ? 0 : mpnet ? 2 : cfg->pad_token_id + 1;
        cfg->max_positions = cfg->max_position_embeddings - cfg->position_offset;
        if (cfg->max_positions < 1)
            s = sembed__err(err, SEMBED_ERR_FORMAT,
                            "%s: max_position_embeddings %d leaves no position after the first "
                            "position id %d",
                            f, cfg->max_position_embeddings, cfg->position_offset);
    }
    json_decref(root);
    return s;
}

/* ---- modules.json -------------------------------------------------------------------------- */

/* A module's folder: relative, no "..", no drive or backslash (as sentence-transformers'
 * _validate_relative_path, which checks Windows syntax too). */
static bool safe_relative_path(const char *p) {
    if (p[0] == '/' || strchr(p, '\\') || strchr(p, ':') || strlen(p) > 255) return false;
    for (const char *c = p; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.') return false;
        c += n;
        if (*c == '/') c++;
    }
    return true;
}

typedef enum module_kind { MOD_TRANSFORMER, MOD_POOLING, MOD_DENSE, MOD_NORMALIZE } module_kind;

/* "sentence_transformers.models.Pooling" (v2-v5) or
 * "sentence_transformers.sentence_transformer.modules.pooling.Pooling" (v6): the package, then
 * the class name after the last dot. Remote code and other packages are not supported. */
static bool module_kind_of(const char *type, module_kind *out) {
    static const char *const names[] = {"Transformer", "Pooling", "Dense", "Normalize"};
    const char *pkg = "sentence_transformers.";
    if (strncmp(type, pkg, strlen(pkg)) != 0) return false;
    const char *cls = strrchr(type, '.') + 1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(cls, names[i]) == 0) {
            *out = (module_kind)i;
            return true;
        }
    }
    return false;
}

sembed_status sembed__config_parse_modules(sembed__model_config *cfg, const char *json, size_t len,
                                           const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_ARRAY, &root, err);
    if (s != SEMBED_OK) return s;
    const char *f = name;
    size_t n = json_array_size(root);
    if (n == 0) s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: lists no modules", f);
    /* The supported pipeline: Transformer, [Pooling, Dense*, [Normalize]]. */
    int stage = 0; /* 0 nothing yet, 1 transformer, 2 pooling, 3 dense, 4 normalize */
    for (size_t i = 0; i < n && s == SEMBED_OK; i++) {
        const json_t *m = json_array_get(root, i);
        if (!json_is_object(m)) {
            s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: module %zu is %s, not an object", f, i,
                            type_name(m));
            break;
        }
        const char *type, *path;
        s = get_str(m, f, "type", true, &type, err);
        if (s == SEMBED_OK) s = get_str(m, f, "path", true, &path, err);
        if (s != SEMBED_OK) break;
        module_kind kind;
        if (!module_kind_of(type, &kind)) {
            s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                            "%s: module %zu has type '%.100s', which sembed does not support "
                            "(supported: sentence_transformers Transformer, Pooling, Dense, "
                            "Normalize)",
                            f, i, type);
            break;
        }
        if (!safe_relative_path(path)) {
            s = sembed__err(err, SEMBED_ERR_FORMAT,
                            "%s: module %zu has path '%.100s', not a relative path inside the "
                            "model folder",
                            f, i, path);
            break;
        }
        int next = kind == MOD_TRANSFORMER ? 1
                   : kind == MOD_POOLING   ? 2
                   : kind == MOD_DENSE     ? 3
                                           : 4;
        bool ok = (next == 1 && stage == 0) || (next == 2 && stage == 1) ||
                  (next == 3 && (stage == 2 || stage == 3)) || (next == 4 && stage >= 2);
        if (!ok) {
            s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                            "%s: module %zu (%.100s) is out of the supported order: Transformer, "
                            "Pooling, Dense..., Normalize",
                            f, i, type);
            break;
        }
        stage = next;
        char **slot = NULL;
        if (kind == MOD_TRANSFORMER) {
            slot = &cfg->transformer_dir;
        } else if (kind == MOD_POOLING) {
            slot = &cfg->pooling_dir;
        } else if (kind == MOD_DENSE) {
            if (cfg->n_dense == SEMBED__CFG_MAX_DENSE) {
                s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                                "%s: more than %d Dense modules are not supported", f,
                                SEMBED__CFG_MAX_DENSE);
                break;
            }
            slot = &cfg->dense[cfg->n_dense++].dir;
        } else {
            cfg->normalize = true;
        }
        if (slot) {
            sembed__free(*slot);
            *slot = sembed__strdup(path);
            if (!*slot) s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", f);
        }
    }
    if (s == SEMBED_OK) cfg->has_modules = true;
    json_decref(root);
    return s;
}

/* ---- 1_Pooling/config.json ------------------------------------------------------------------ */

static const struct {
    const char *legacy_key; /* sentence-transformers < 6 */
    const char *mode;       /* >= 6: pooling_mode names */
    sembed__pool_mode pool;
} k_pool[] = {
    /* the order in which sentence-transformers concatenates legacy modes */
    {"pooling_mode_cls_token", "cls", SEMBED__POOL_CLS},
    {"pooling_mode_max_tokens", "max", SEMBED__POOL_MAX},
    {"pooling_mode_mean_tokens", "mean", SEMBED__POOL_MEAN},
    {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens", SEMBED__POOL_MEAN_SQRT_LEN},
    {"pooling_mode_weightedmean_tokens", "weightedmean", SEMBED__POOL_WEIGHTED_MEAN},
    {"pooling_mode_lasttoken", "lasttoken", SEMBED__POOL_LAST_TOKEN},
};
#define N_POOL ((int)(sizeof k_pool / sizeof *k_pool))

const char *sembed__pool_mode_name(sembed__pool_mode mode) {
    for (int i = 0; i < N_POOL; i++)
        if (k_pool[i].pool == mode) return k_pool[i].mode;
    return "unset";
}

static sembed_status pool_mode_of(const json_t *v, const char *f, sembed__pool_mode *out,
                                  sembed_error *err) {
    if (!json_is_string(v))
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: field 'pooling_mode' must hold strings, not %s", f, type_name(v));
    for (int i = 0; i < N_POOL; i++) {
        if (strcmp(json_string_value(v), k_pool[i].mode) == 0) {
            *out = k_pool[i].pool;
            return SEMBED_OK;
        }
    }
    return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                       "%s: pooling mode '%.64s' is not supported (cls, max, mean, "
                       "mean_sqrt_len_tokens, weightedmean, lasttoken)",
                       f, json_string_value(v));
}

sembed_status sembed__config_parse_pooling(sembed__model_config *cfg, const char *json, size_t len,
                                           const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_OBJECT, &root, err);
    if (s != SEMBED_OK) return s;
    const char *f = name;
    const char *dim_key =
        field(root, "embedding_dimension") ? "embedding_dimension" : "word_embedding_dimension";
    s = get_int(root, f, dim_key, true, 1, SEMBED__CFG_MAX_HIDDEN, &cfg->pool_dim, err);
    cfg->include_prompt = true;
    if (s == SEMBED_OK) s = get_bool(root, f, "include_prompt", &cfg->include_prompt, err);
    cfg->n_pool_modes = 0;
    const json_t *pm = field(root, "pooling_mode");
    if (s == SEMBED_OK && pm) {
        /* sentence-transformers >= 6: a name or a list of names; it wins over legacy keys */
        if (json_is_array(pm)) {
            size_t n = json_array_size(pm);
            if (n == 0 || n > SEMBED__CFG_MAX_POOL_MODES)
                s = sembed__err(err, SEMBED_ERR_FORMAT,
                                "%s: field 'pooling_mode' lists %zu modes (1 to %d allowed)", f, n,
                                SEMBED__CFG_MAX_POOL_MODES);
            for (size_t i = 0; i < n && s == SEMBED_OK; i++)
                s = pool_mode_of(json_array_get(pm, i), f, &cfg->pool_modes[cfg->n_pool_modes++],
                                 err);
        } else {
            s = pool_mode_of(pm, f, &cfg->pool_modes[cfg->n_pool_modes++], err);
        }
    } else if (s == SEMBED_OK) {
        /* legacy booleans, concatenated in k_pool's order; none set means mean */
        for (int i = 0; i < N_POOL && s == SEMBED_OK; i++) {
            bool on = false;
            s = get_bool(root, f, k_pool[i].legacy_key, &on, err);
            if (on) cfg->pool_modes[cfg->n_pool_modes++] = k_pool[i].pool;
        }
        if (s == SEMBED_OK && cfg->n_pool_modes == 0)
            cfg->pool_modes[cfg->n_pool_modes++] = SEMBED__POOL_MEAN;
    }
    if (s != SEMBED_OK) cfg->n_pool_modes = 0;
    json_decref(root);
    return s;
}

/* ---- Dense folders' config.json ------------------------------------------------------------- */

static const struct {
    const char *cls;
    sembed__dense_act act;
} k_dense_acts[] = {
    {"Identity", SEMBED__DENSE_IDENTITY}, {"Tanh", SEMBED__DENSE_TANH},
    {"ReLU", SEMBED__DENSE_RELU},         {"Sigmoid", SEMBED__DENSE_SIGMOID},
    {"GELU", SEMBED__DENSE_GELU},
};

/* "torch.nn.modules.activation.Tanh", "torch.nn.modules.linear.Identity", or the short
 * "torch.nn.Tanh" that sentence-transformers' import_from_string also resolves. */
static bool dense_act_of(const char *s, sembed__dense_act *out) {
    for (size_t i = 0; i < sizeof k_dense_acts / sizeof *k_dense_acts; i++) {
        const char *mod = k_dense_acts[i].act == SEMBED__DENSE_IDENTITY ? "linear" : "activation";
        char full[96], short_[64];
        snprintf(full, sizeof full, "torch.nn.modules.%s.%s", mod, k_dense_acts[i].cls);
        snprintf(short_, sizeof short_, "torch.nn.%s", k_dense_acts[i].cls);
        if (strcmp(s, full) == 0 || strcmp(s, short_) == 0) {
            *out = k_dense_acts[i].act;
            return true;
        }
    }
    return false;
}

sembed_status sembed__config_parse_dense(sembed__dense_config *dense, const char *json, size_t len,
                                         const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_OBJECT, &root, err);
    if (s != SEMBED_OK) return s;
    const char *f = name;
    s = get_int(root, f, "in_features", true, 1, SEMBED__CFG_MAX_HIDDEN, &dense->in_features, err);
    if (s == SEMBED_OK)
        s = get_int(root, f, "out_features", true, 1, SEMBED__CFG_MAX_HIDDEN, &dense->out_features,
                    err);
    dense->bias = true; /* sentence-transformers' default */
    if (s == SEMBED_OK) s = get_bool(root, f, "bias", &dense->bias, err);
    bool residual = false;
    if (s == SEMBED_OK) s = get_bool(root, f, "use_residual", &residual, err);
    if (s == SEMBED_OK && residual)
        s = sembed__err(err, SEMBED_ERR_UNSUPPORTED, "%s: use_residual is not supported", f);
    const char *act = NULL;
    if (s == SEMBED_OK) s = get_str(root, f, "activation_function", false, &act, err);
    dense->act = SEMBED__DENSE_TANH; /* sentence-transformers' default */
    if (s == SEMBED_OK && act && !dense_act_of(act, &dense->act))
        s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                        "%s: activation_function '%.100s' is not supported (torch.nn Identity, "
                        "Tanh, ReLU, Sigmoid, GELU)",
                        f, act);
    json_decref(root);
    return s;
}

/* ---- sentence_bert_config.json, config_sentence_transformers.json ---------------------------- */

sembed_status sembed__config_parse_sbert(sembed__model_config *cfg, const char *json, size_t len,
                                         const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_OBJECT, &root, err);
    if (s != SEMBED_OK) return s;
    s = get_int(root, name, "max_seq_length", false, 1, SEMBED__CFG_MAX_POSITIONS,
                &cfg->max_seq_length, err);
    if (s == SEMBED_OK) s = get_bool(root, name, "do_lower_case", &cfg->do_lower_case, err);
    json_decref(root);
    return s;
}

static void free_prompts(sembed__model_config *cfg) {
    for (int32_t i = 0; i < cfg->n_prompts; i++) {
        sembed__free(cfg->prompts[i].name);
        sembed__free(cfg->prompts[i].text);
    }
    sembed__free(cfg->prompts);
    cfg->prompts = NULL;
    cfg->n_prompts = 0;
    cfg->default_prompt = -1;
}

sembed_status sembed__config_parse_st(sembed__model_config *cfg, const char *json, size_t len,
                                      const char *name, sembed_error *err) {
    json_t *root;
    sembed_status s = load_json(json, len, name, JSON_OBJECT, &root, err);
    if (s != SEMBED_OK) return s;
    const char *f = name;
    free_prompts(cfg);
    json_t *prompts = field(root, "prompts");
    if (prompts && !json_is_object(prompts))
        s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: field 'prompts' must be an object, not %s", f,
                        type_name(prompts));
    size_t n = prompts && s == SEMBED_OK ? json_object_size(prompts) : 0;
    if (n > SEMBED__CFG_MAX_PROMPTS)
        s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: %zu prompts, more than the limit of %d", f, n,
                        SEMBED__CFG_MAX_PROMPTS);
    if (s == SEMBED_OK && n) {
        cfg->prompts = sembed__calloc(n, sizeof *cfg->prompts);
        if (!cfg->prompts) s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", f);
        const char *key;
        json_t *v;
        json_object_foreach(prompts, key, v) {
            if (s != SEMBED_OK) break;
            if (!json_is_string(v) && !json_is_null(v)) {
                s = sembed__err(err, SEMBED_ERR_FORMAT,
                                "%s: prompt '%.64s' must be a string, not %s", f, key,
                                type_name(v));
                break;
            }
            sembed__prompt *p = &cfg->prompts[cfg->n_prompts++];
            p->name = sembed__strdup(key);
            /* null: sentence-transformers uses "" */
            p->text = sembed__strdup(json_is_string(v) ? json_string_value(v) : "");
            if (!p->name || !p->text)
                s = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", f);
        }
    }
    const char *def = NULL;
    if (s == SEMBED_OK) s = get_str(root, f, "default_prompt_name", false, &def, err);
    if (s == SEMBED_OK && def) {
        for (int32_t i = 0; i < cfg->n_prompts; i++)
            if (strcmp(cfg->prompts[i].name, def) == 0) cfg->default_prompt = i;
        if (cfg->default_prompt < 0)
            s = sembed__err(err, SEMBED_ERR_FORMAT,
                            "%s: default_prompt_name '%.64s' is not one of the prompts", f, def);
    }
    const char *sim = NULL;
    if (s == SEMBED_OK) s = get_str(root, f, "similarity_fn_name", false, &sim, err);
    if (s == SEMBED_OK && sim) {
        if (strcmp(sim, "cosine") == 0)
            cfg->similarity = SEMBED__SIM_COSINE;
        else if (strcmp(sim, "dot") == 0 || strcmp(sim, "dot_product") == 0)
            cfg->similarity = SEMBED__SIM_DOT;
        else if (strcmp(sim, "euclidean") == 0)
            cfg->similarity = SEMBED__SIM_EUCLIDEAN;
        else if (strcmp(sim, "manhattan") == 0)
            cfg->similarity = SEMBED__SIM_MANHATTAN;
        else
            s = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                            "%s: similarity_fn_name '%.64s' is not supported (cosine, dot, "
                            "euclidean, manhattan)",
                            f, sim);
    }
    json_decref(root);
    return s;
}

/* ---- the folder -------------------------------------------------------------------------------
 */

void sembed__config_init(sembed__model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->include_prompt = true;
    cfg->default_prompt = -1;
}

void sembed__config_free(sembed__model_config *cfg) {
    if (!cfg) return;
    sembed__free(cfg->transformer_dir);
    sembed__free(cfg->pooling_dir);
    for (int32_t i = 0; i < SEMBED__CFG_MAX_DENSE; i++) {
        sembed__free(cfg->dense[i].dir);
        sembed__free(cfg->dense[i].weights_path);
    }
    free_prompts(cfg);
    sembed__config_init(cfg);
}

sembed_status sembed__config_finish(sembed__model_config *cfg, const char *dir, sembed_error *err) {
    if (!dir) dir = ".";
    int32_t dim = cfg->hidden_size;
    if (cfg->n_pool_modes > 0) {
        if (cfg->hidden_size > 0 && cfg->pool_dim != cfg->hidden_size)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s/config.json: embedding_dimension %d differs from hidden_size "
                               "%d in config.json",
                               cfg->pooling_dir ? cfg->pooling_dir : dir, cfg->pool_dim,
                               cfg->hidden_size);
        dim = cfg->n_pool_modes * cfg->pool_dim; /* <= 6 * 65536 */
    } else if (cfg->n_dense > 0 || cfg->normalize || cfg->pooling_dir) {
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: the Pooling module has no configuration",
                           dir);
    }
    for (int32_t i = 0; i < cfg->n_dense; i++) {
        const sembed__dense_config *d = &cfg->dense[i];
        if (d->in_features != dim)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s/config.json: in_features %d, but the module before it outputs "
                               "%d",
                               d->dir ? d->dir : dir, d->in_features, dim);
        dim = d->out_features;
    }
    cfg->output_dim = dim;
    cfg->max_tokens = cfg->max_positions;
    if (cfg->max_seq_length > 0 && cfg->max_seq_length < cfg->max_tokens)
        cfg->max_tokens = cfg->max_seq_length;
    return SEMBED_OK;
}

/* Reads dir/name and parses it with `parse`, or, when `dense` is set, as that Dense module's
 * config.json. `required` false: an absent file is fine. */
static sembed_status parse_file(const char *dir, const char *name, bool required,
                                sembed_status (*parse)(sembed__model_config *, const char *, size_t,
                                                       const char *, sembed_error *),
                                sembed__model_config *cfg, sembed__dense_config *dense,
                                sembed_error *err) {
    char *path = sembed__path_join(dir, name);
    if (!path) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    if (!required && !sembed__file_exists(path)) {
        sembed__free(path);
        return SEMBED_OK;
    }
    char *data;
    size_t len;
    sembed_status s = sembed__read_file(path, SEMBED__CFG_MAX_FILE, &data, &len, err);
    if (s == SEMBED_OK) {
        s = dense ? sembed__config_parse_dense(dense, data, len, path, err)
                  : parse(cfg, data, len, path, err);
        sembed__free(data);
    }
    sembed__free(path);
    return s;
}

/* Replaces the relative folder *rel with dir/rel. */
static sembed_status join_in_place(const char *dir, char **rel, sembed_error *err) {
    char *full = sembed__path_join(dir, *rel ? *rel : "");
    if (!full) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", dir);
    sembed__free(*rel);
    *rel = full;
    return SEMBED_OK;
}

static sembed_status find_dense_weights(sembed__dense_config *d, sembed_error *err) {
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = sembed__path_join(d->dir, names[i]);
        if (!p) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", d->dir);
        if (sembed__file_exists(p)) {
            d->weights_path = p;
            d->weights_safetensors = i == 0;
            return SEMBED_OK;
        }
        sembed__free(p);
    }
    return sembed__err(err, SEMBED_ERR_IO,
                       "%s: the Dense module has neither model.safetensors nor pytorch_model.bin",
                       d->dir);
}

sembed_status sembed__config_load(const char *dir, sembed__model_config *cfg, sembed_error *err) {
    if (!dir || !cfg)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed__config_load: NULL argument");
    sembed__config_init(cfg);
    sembed_status s =
        parse_file(dir, "modules.json", false, sembed__config_parse_modules, cfg, NULL, err);
    /* The encoder's folder: the Transformer module's, or the folder itself. */
    if (s == SEMBED_OK) s = join_in_place(dir, &cfg->transformer_dir, err);
    if (s == SEMBED_OK)
        s = parse_file(cfg->transformer_dir, "config.json", true, sembed__config_parse_hf, cfg,
                       NULL, err);
    if (s == SEMBED_OK)
        s = parse_file(cfg->transformer_dir, "sentence_bert_config.json", false,
                       sembed__config_parse_sbert, cfg, NULL, err);
    if (s == SEMBED_OK && cfg->pooling_dir) {
        s = join_in_place(dir, &cfg->pooling_dir, err);
        if (s == SEMBED_OK)
            s = parse_file(cfg->pooling_dir, "config.json", true, sembed__config_parse_pooling, cfg,
                           NULL, err);
    }
    for (int32_t i = 0; i < cfg->n_dense && s == SEMBED_OK; i++) {
        sembed__dense_config *d = &cfg->dense[i];
        s = join_in_place(dir, &d->dir, err);
        if (s == SEMBED_OK) s = parse_file(d->dir, "config.json", true, NULL, cfg, d, err);
        if (s == SEMBED_OK) s = find_dense_weights(d, err);
    }
    if (s == SEMBED_OK)
        s = parse_file(dir, "config_sentence_transformers.json", false, sembed__config_parse_st,
                       cfg, NULL, err);
    if (s == SEMBED_OK) s = sembed__config_finish(cfg, dir, err);
    if (s != SEMBED_OK) sembed__config_free(cfg);
    return s;
}

/* ---- the architectures' tensors -------------------------------------------------------------- */

/* One expected tensor. `dims` spells its shape in the letters of config.h. */
typedef struct wspec {
    const char *name; /* with %d for the layer index when per_layer */
    const char *dims;
    bool per_layer;
    bool optional;
} wspec;

static const wspec k_bert[] = {
    {"embeddings.word_embeddings.weight", "VH", false, false},
    {"embeddings.position_embeddings.weight", "PH", false, false},
    {"embeddings.token_type_embeddings.weight", "TH", false, false},
    {"embeddings.LayerNorm.weight", "H", false, false},
    {"embeddings.LayerNorm.bias", "H", false, false},
    {"encoder.layer.%d.attention.self.query.weight", "HH", true, false},
    {"encoder.layer.%d.attention.self.query.bias", "H", true, false},
    {"encoder.layer.%d.attention.self.key.weight", "HH", true, false},
    {"encoder.layer.%d.attention.self.key.bias", "H", true, false},
    {"encoder.layer.%d.attention.self.value.weight", "HH", true, false},
    {"encoder.layer.%d.attention.self.value.bias", "H", true, false},
    {"encoder.layer.%d.attention.output.dense.weight", "HH", true, false},
    {"encoder.layer.%d.attention.output.dense.bias", "H", true, false},
    {"encoder.layer.%d.attention.output.LayerNorm.weight", "H", true, false},
    {"encoder.layer.%d.attention.output.LayerNorm.bias", "H", true, false},
    {"encoder.layer.%d.intermediate.dense.weight", "IH", true, false},
    {"encoder.layer.%d.intermediate.dense.bias", "I", true, false},
    {"encoder.layer.%d.output.dense.weight", "HI", true, false},
    {"encoder.layer.%d.output.dense.bias", "H", true, false},
    {"encoder.layer.%d.output.LayerNorm.weight", "H", true, false},
    {"encoder.layer.%d.output.LayerNorm.bias", "H", true, false},
    {"pooler.dense.weight", "HH", false, true},
    {"pooler.dense.bias", "H", false, true},
};

/* transformers' modeling_mpnet.py: MPNetEmbeddings (no token types), MPNetAttention (attn.q/k/v/o
 * then LayerNorm), MPNetEncoder.relative_attention_bias. */
static const wspec k_mpnet[] = {
    {"embeddings.word_embeddings.weight", "VH", false, false},
    {"embeddings.position_embeddings.weight", "PH", false, false},
    {"embeddings.LayerNorm.weight", "H", false, false},
    {"embeddings.LayerNorm.bias", "H", false, false},
    {"encoder.relative_attention_bias.weight", "BA", false, false},
    {"encoder.layer.%d.attention.attn.q.weight", "HH", true, false},
    {"encoder.layer.%d.attention.attn.q.bias", "H", true, false},
    {"encoder.layer.%d.attention.attn.k.weight", "HH", true, false},
    {"encoder.layer.%d.attention.attn.k.bias", "H", true, false},
    {"encoder.layer.%d.attention.attn.v.weight", "HH", true, false},
    {"encoder.layer.%d.attention.attn.v.bias", "H", true, false},
    {"encoder.layer.%d.attention.attn.o.weight", "HH", true, false},
    {"encoder.layer.%d.attention.attn.o.bias", "H", true, false},
    {"encoder.layer.%d.attention.LayerNorm.weight", "H", true, false},
    {"encoder.layer.%d.attention.LayerNorm.bias", "H", true, false},
    {"encoder.layer.%d.intermediate.dense.weight", "IH", true, false},
    {"encoder.layer.%d.intermediate.dense.bias", "I", true, false},
    {"encoder.layer.%d.output.dense.weight", "HI", true, false},
    {"encoder.layer.%d.output.dense.bias", "H", true, false},
    {"encoder.layer.%d.output.LayerNorm.weight", "H", true, false},
    {"encoder.layer.%d.output.LayerNorm.bias", "H", true, false},
    {"pooler.dense.weight", "HH", false, true},
    {"pooler.dense.bias", "H", false, true},
};

static bool dim_of(const sembed__model_config *cfg, char letter, int64_t *value,
                   const char **field_name) {
    switch (letter) {
    case 'V': *value = cfg->vocab_size, *field_name = "vocab_size"; return true;
    case 'H': *value = cfg->hidden_size, *field_name = "hidden_size"; return true;
    case 'P':
        *value = cfg->max_position_embeddings, *field_name = "max_position_embeddings";
        return true;
    case 'T': *value = cfg->type_vocab_size, *field_name = "type_vocab_size"; return true;
    case 'I': *value = cfg->intermediate_size, *field_name = "intermediate_size"; return true;
    case 'A': *value = cfg->num_attention_heads, *field_name = "num_attention_heads"; return true;
    case 'B':
        *value = cfg->relative_attention_num_buckets,
        *field_name = "relative_attention_num_buckets";
        return true;
    }
    return false;
}

static void format_dims(char *buf, size_t cap, const int64_t *dims, int n) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Checks tensor t (named `full` for messages) against shape `want` (n dims); `why` names where
 * the dimensions come from. */
static sembed_status check_shape(const sembed__st_tensor *t, const char *file, const char *full,
                                 const int64_t *want, int n, const char *why, sembed_error *err) {
    if (!sembed__st_dtype_readable(t->dtype))
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", file, full,
                           sembed__st_dtype_name(t->dtype));
    bool same = t->n_dims == n;
    for (int i = 0; same && i < n; i++) same = t->shape[i] == want[i];
    if (same) return SEMBED_OK;
    char got_s[160], want_s[160];
    format_dims(got_s, sizeof got_s, t->shape, t->n_dims);
    format_dims(want_s, sizeof want_s, want, n);
    return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s (%s)",
                       file, full, got_s, want_s, why);
}

const sembed__st_tensor *sembed__config_find_tensor(const sembed__st_file *st, const char *prefix,
                                                    const char *name) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL;
    const sembed__st_tensor *t = sembed__st_find(st, buf);
    if (t) return t;
    /* transformers renames these legacy names on load */
    static const char *const legacy[][2] = {{"LayerNorm.weight", "LayerNorm.gamma"},
                                            {"LayerNorm.bias", "LayerNorm.beta"}};
    for (int i = 0; i < 2; i++) {
        size_t sl = strlen(legacy[i][0]);
        if ((size_t)n >= sl && strcmp(buf + n - sl, legacy[i][0]) == 0) {
            snprintf(buf + n - sl, sizeof buf - ((size_t)n - sl), "%s", legacy[i][1]);
            return sembed__st_find(st, buf);
        }
    }
    return NULL;
}

/* The prefix before "embeddings.word_embeddings.weight" ("" or ending in '.'). */
static sembed_status detect_prefix(const sembed__st_file *st, char *prefix, size_t cap,
                                   sembed_error *err) {
    const char *file = sembed__st_name(st);
    const char *suffix = "embeddings.word_embeddings.weight";
    size_t sl = strlen(suffix);
    const char *found = NULL;
    size_t found_len = 0;
    for (int32_t i = 0; i < sembed__st_n_tensors(st); i++) {
        const char *name = sembed__st_tensor_at(st, i)->name;
        size_t nl = strlen(name);
        if (nl < sl || strcmp(name + nl - sl, suffix) != 0) continue;
        size_t pl = nl - sl;
        if (pl > 0 && name[pl - 1] != '.') continue;
        if (found)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: two sets of word embeddings, '%s' and '%s': cannot tell which "
                               "model to load",
                               file, found, name);
        found = name;
        found_len = pl;
    }
    if (!found) return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing tensor '%s'", file, suffix);
    if (found_len >= cap)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor name prefix of '%s' is too long",
                           file, found);
    memcpy(prefix, found, found_len);
    prefix[found_len] = 0;
    return SEMBED_OK;
}

sembed_status sembed__config_check_weights(const sembed__model_config *cfg,
                                           const sembed__st_file *st, char *prefix,
                                           size_t prefix_cap, sembed_error *err) {
    SEMBED_ASSERT(prefix && prefix_cap > 0);
    prefix[0] = 0;
    const char *file = sembed__st_name(st);
    const wspec *spec;
    size_t n_spec;
    switch (cfg->arch) {
    case SEMBED__ARCH_BERT:
    case SEMBED__ARCH_ROBERTA:
    case SEMBED__ARCH_XLM_ROBERTA:
        spec = k_bert;
        n_spec = sizeof k_bert / sizeof *k_bert;
        break;
    case SEMBED__ARCH_MPNET:
        spec = k_mpnet;
        n_spec = sizeof k_mpnet / sizeof *k_mpnet;
        break;
    default:
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: no architecture to check against",
                           file);
    }
    sembed_status s = detect_prefix(st, prefix, prefix_cap, err);
    if (s != SEMBED_OK) return s;

    for (size_t k = 0; k < n_spec; k++) {
        int n_layers = spec[k].per_layer ? cfg->num_hidden_layers : 1;
        /* Expected shape and where each dimension comes from. */
        int64_t want[2] = {0, 0};
        int nd = (int)strlen(spec[k].dims);
        SEMBED_ASSERT(nd <= 2);
        char why[160];
        size_t wl = 0;
        why[0] = 0;
        for (int d = 0; d < nd; d++) {
            const char *fname = "?";
            bool ok = dim_of(cfg, spec[k].dims[d], &want[d], &fname);
            SEMBED_ASSERT(ok);
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s", d ? ", " : "", fname);
        }
        snprintf(why + wl, sizeof why - wl, " from config.json");
        for (int layer = 0; layer < n_layers; layer++) {
            char name[160], full[700];
            if (spec[k].per_layer)
                snprintf(name, sizeof name, spec[k].name, layer);
            else
                snprintf(name, sizeof name, "%s", spec[k].name);
            snprintf(full, sizeof full, "%s%s", prefix, name);
            const sembed__st_tensor *t = sembed__config_find_tensor(st, prefix, name);
            if (!t) {
                if (spec[k].optional) continue;
                return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing tensor '%s'", file, full);
            }
            s = check_shape(t, file, t->name, want, nd, why, err);
            if (s != SEMBED_OK) return s;
        }
    }

    /* Layers past num_hidden_layers mean config.json and the weights disagree. */
    char layers[600];
    snprintf(layers, sizeof layers, "%sencoder.layer.", prefix);
    size_t ll = strlen(layers);
    for (int32_t i = 0; i < sembed__st_n_tensors(st); i++) {
        const char *name = sembed__st_tensor_at(st, i)->name;
        if (strncmp(name, layers, ll) != 0) continue;
        const char *p = name + ll;
        long long idx = 0;
        bool digits = false;
        while (*p >= '0' && *p <= '9' && idx < 1000000) {
            idx = idx * 10 + (*p++ - '0');
            digits = true;
        }
        if (digits && *p == '.' && idx >= cfg->num_hidden_layers)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: tensor '%s' belongs to a layer beyond num_hidden_layers %d "
                               "from config.json",
                               file, name, cfg->num_hidden_layers);
    }
    return SEMBED_OK;
}

sembed_status sembed__config_check_dense(const sembed__model_config *cfg, int32_t i,
                                         const sembed__st_file *st, sembed_error *err) {
    SEMBED_ASSERT(i >= 0 && i < cfg->n_dense);
    const sembed__dense_config *d = &cfg->dense[i];
    const char *file = sembed__st_name(st);
    const sembed__st_tensor *w = sembed__st_find(st, "linear.weight");
    if (!w) return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing tensor 'linear.weight'", file);
    int64_t ws[2] = {d->out_features, d->in_features};
    sembed_status s = check_shape(w, file, w->name, ws, 2,
                                  "out_features, in_features from the Dense config.json", err);
    if (s != SEMBED_OK || !d->bias) return s;
    const sembed__st_tensor *b = sembed__st_find(st, "linear.bias");
    if (!b) return sembed__err(err, SEMBED_ERR_FORMAT, "%s: missing tensor 'linear.bias'", file);
    int64_t bs[1] = {d->out_features};
    return check_shape(b, file, b->name, bs, 1, "out_features from the Dense config.json", err);
}
