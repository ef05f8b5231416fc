/* tokenizer.c — the tokenizer: loading tokenizer.json (or a BERT vocab.txt folder), added
 * tokens, the pipeline of one text, truncation, the post-processor, and batches on threads.
 * Not the components themselves (normalizer.c, pretok.c, wordpiece.c, unigram.c). */
#include "json_util.h"
#include "tokenizer_internal.h"
#include "wordpiece.h"

#include <pthread.h>
#include <stdlib.h>

#define SEMBED_TOKENIZER_JSON_MAX (512u << 20) /* bytes of tokenizer.json we accept */
#define SEMBED_MAX_LENGTH_LIMIT 1000000        /* tokens per text, whatever a config says */

typedef struct added_token {
    uint32_t *cp; /* content as code points (normalized content for normalized tokens) */
    int32_t n;
    int32_t id;
    bool special, normalized, lstrip, rstrip, single_word;
} added_token;

/* One item of the post-processor's template for a single sequence. */
typedef struct template_item {
    bool is_sequence;
    int32_t *ids; /* a special token's ids (usually one) */
    int32_t n_ids;
} template_item;

typedef enum { MODEL_WORDPIECE, MODEL_UNIGRAM } model_type;

struct sembed_tokenizer {
    sembed__vocab vocab;
    model_type model;
    sembed__wordpiece wp;
    sembed__unigram *ug;
    sembed__normalizer *norm;
    sembed__pretok *pre;
    added_token *added;
    int32_t n_added;
    uint8_t first_cp_raw[256]; /* first bytes... indexed by cp & 255: a quick reject filter */
    template_item *tmpl;
    int32_t n_tmpl;
    int32_t n_special; /* special tokens the template adds to a single sequence */
    int32_t max_length;
    bool add_special;
    bool trim_offsets; /* RobertaProcessing's trim_offsets: added tokens' offsets leave out the
                          whitespace that lstrip/rstrip took in */
};

sembed_tokenizer_params sembed_tokenizer_default_params(void) {
    return (sembed_tokenizer_params){.max_length = 0, .add_special_tokens = 1};
}

void sembed_tokenizer_free(sembed_tokenizer *tok) {
    if (!tok) return;
    sembed__vocab_free(&tok->vocab);
    sembed__unigram_free(tok->ug);
    sembed__normalizer_free(tok->norm);
    sembed__pretok_free(tok->pre);
    for (int32_t i = 0; i < tok->n_added; i++) sembed__free(tok->added[i].cp);
    sembed__free(tok->added);
    for (int32_t i = 0; i < tok->n_tmpl; i++) sembed__free(tok->tmpl[i].ids);
    sembed__free(tok->tmpl);
    sembed__free(tok);
}

int32_t sembed_tokenizer_max_length(const sembed_tokenizer *tok) { return tok->max_length; }
int32_t sembed_tokenizer_vocab_size(const sembed_tokenizer *tok) { return tok->vocab.n_ids; }

const char *sembed_tokenizer_id_to_token(const sembed_tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->vocab.n_ids) return NULL;
    return tok->vocab.tokens[id];
}

int32_t sembed_tokenizer_token_to_id(const sembed_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    return sembed__vocab_find(&tok->vocab, token, strlen(token));
}

/* ---- loading -------------------------------------------------------------------------------- */

static sembed_status load_added_tokens(sembed_tokenizer *tok, json_t *arr, const char *file,
                                       sembed_error *err) {
    if (!arr || json_is_null(arr)) return SEMBED_OK;
    if (!json_is_array(arr))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: added_tokens: expected an array", file);
    size_t n = json_array_size(arr);
    tok->added = sembed__calloc(n ? n : 1, sizeof *tok->added);
    if (!tok->added) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i);
        char where[128];
        snprintf(where, sizeof where, "%s: added_tokens[%zu]", file, i);
        if (!json_is_object(a))
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s: expected an object", where);
        const char *content = NULL;
        int64_t id = 0;
        bool special = false, normalized = true, lstrip = false, rstrip = false, single = false;
        sembed_status st;
        if ((st = sembed__json_str(a, "content", where, &content, err)) ||
            (st = sembed__json_int(a, "id", where, true, 0, 0, INT32_MAX - 1, &id, err)) ||
            (st = sembed__json_bool(a, "special", where, false, &special, err)) ||
            (st = sembed__json_bool(a, "normalized", where, !special, &normalized, err)) ||
            (st = sembed__json_bool(a, "lstrip", where, false, &lstrip, err)) ||
            (st = sembed__json_bool(a, "rstrip", where, false, &rstrip, err)) ||
            (st = sembed__json_bool(a, "single_word", where, false, &single, err)))
            return st;
        if (!content[0]) continue; /* tokenizers ignores empty added tokens */
        added_token *t = &tok->added[tok->n_added];
        *t = (added_token){.id = (int32_t)id, .special = special, .normalized = normalized,
                           .lstrip = lstrip, .rstrip = rstrip, .single_word = single};
        sembed__ntext nt = {0};
        int64_t bad = sembed__utf8_decode(content, strlen(content), 0, &nt);
        if (bad != -1) {
            sembed__nt_free(&nt);
            return bad == -2 ? sembed__err(err, SEMBED_ERR_NOMEM, "out of memory")
                             : sembed__err(err, SEMBED_ERR_FORMAT, "%s.content: invalid UTF-8", where);
        }
        sembed__free(nt.ob);
        sembed__free(nt.oe);
        t->cp = nt.cp;
        t->n = nt.n;
        tok->n_added++;
    }
    return SEMBED_OK;
}

/* Ids outside the model's vocabulary that added tokens introduce: the vocabulary grows to
 * hold them, so that id_to_token knows every id the tokenizer can emit. */
static sembed_status merge_added_into_vocab(sembed_tokenizer *tok, const char *file,
                                            sembed_error *err) {
    int32_t max_id = tok->vocab.n_ids - 1;
    for (int32_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id > max_id) max_id = tok->added[i].id;
    if (max_id >= tok->vocab.n_ids) {
        char **t = sembed__realloc(tok->vocab.tokens, ((size_t)max_id + 1) * sizeof *t);
        if (!t) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        for (int32_t i = tok->vocab.n_ids; i <= max_id; i++) t[i] = NULL;
        tok->vocab.tokens = t;
        tok->vocab.n_ids = max_id + 1;
    }
    bool changed = false;
    for (int32_t i = 0; i < tok->n_added; i++) {
        added_token *a = &tok->added[i];
        if (tok->vocab.tokens[a->id]) continue;
        char buf[4096];
        size_t len = 0;
        for (int32_t k = 0; k < a->n && len + 4 < sizeof buf; k++)
            len += (size_t)sembed__utf8_put(a->cp[k], buf + len);
        sembed_status st = sembed__vocab_add(&tok->vocab, buf, len, a->id, file, err);
        if (st) return st;
        changed = true;
    }
    if (changed) {
        sembed__free(tok->vocab.slots);
        tok->vocab.slots = NULL;
        return sembed__vocab_finish(&tok->vocab, err);
    }
    return SEMBED_OK;
}

/* Normalized added tokens are matched in normalized text: normalize their content once. */
static sembed_status normalize_added(sembed_tokenizer *tok, sembed_error *err) {
    if (!tok->norm) return SEMBED_OK;
    sembed__tok_scratch s = {0};
    sembed_status st = SEMBED_OK;
    for (int32_t i = 0; i < tok->n_added && !st; i++) {
        added_token *a = &tok->added[i];
        if (!a->normalized) continue;
        if (!sembed__nt_reserve(&s.text, a->n)) {
            st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
            break;
        }
        s.text.n = 0;
        for (int32_t k = 0; k < a->n; k++) sembed__nt_put(&s.text, a->cp[k], 0, 0);
        if (!sembed__normalize(tok->norm, &s)) {
            st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
            break;
        }
        uint32_t *cp = sembed__malloc(((size_t)s.text.n + 1) * sizeof *cp);
        if (!cp) {
            st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(cp, s.text.cp, (size_t)s.text.n * sizeof *cp);
        sembed__free(a->cp);
        a->cp = cp;
        a->n = s.text.n;
    }
    sembed__scratch_free(&s);
    return st;
}

static sembed_status special_ids(sembed_tokenizer *tok, json_t *specials, const char *name,
                                 const char *where, template_item *it, sembed_error *err) {
    json_t *sp = specials ? json_object_get(specials, name) : NULL;
    json_t *ids = sp ? json_object_get(sp, "ids") : NULL;
    if (ids) {
        if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 64)
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s.special_tokens[\"%s\"].ids: expected 1 to 64 ids",
                               where, name);
        it->n_ids = (int32_t)json_array_size(ids);
        it->ids = sembed__calloc((size_t)it->n_ids, sizeof *it->ids);
        if (!it->ids) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        for (int32_t k = 0; k < it->n_ids; k++) {
            json_t *v = json_array_get(ids, (size_t)k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) >= tok->vocab.n_ids)
                return sembed__err(err, SEMBED_ERR_FORMAT,
                                   "%s.special_tokens[\"%s\"].ids[%d]: expected an id in [0, %d)",
                                   where, name, k, tok->vocab.n_ids);
            it->ids[k] = (int32_t)json_integer_value(v);
        }
        return SEMBED_OK;
    }
    int32_t id = sembed__vocab_find(&tok->vocab, name, strlen(name));
    if (id < 0)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: special token \"%s\" is not in the vocabulary",
                           where, name);
    it->ids = sembed__malloc(sizeof *it->ids);
    if (!it->ids) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    it->ids[0] = id;
    it->n_ids = 1;
    return SEMBED_OK;
}

/* The template `cls $A sep` of BertProcessing and RobertaProcessing. */
static sembed_status cls_sep_template(sembed_tokenizer *tok, json_t *post, const char *where,
                                      sembed_error *err) {
    static const char *keys[2] = {"cls", "sep"};
    tok->tmpl = sembed__calloc(3, sizeof *tok->tmpl);
    if (!tok->tmpl) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    tok->n_tmpl = 3;
    tok->tmpl[1].is_sequence = true;
    for (int k = 0; k < 2; k++) {
        json_t *pair = json_object_get(post, keys[k]);
        json_t *id = json_is_array(pair) && json_array_size(pair) == 2 ? json_array_get(pair, 1) : NULL;
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= tok->vocab.n_ids)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s.%s: expected [token, id] with an id in [0, %d)", where, keys[k],
                               tok->vocab.n_ids);
        template_item *it = &tok->tmpl[k == 0 ? 0 : 2];
        it->ids = sembed__malloc(sizeof *it->ids);
        if (!it->ids) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        it->ids[0] = (int32_t)json_integer_value(id);
        it->n_ids = 1;
    }
    return SEMBED_OK;
}

static sembed_status load_post(sembed_tokenizer *tok, json_t *post, const char *file,
                               sembed_error *err) {
    char where[128];
    snprintf(where, sizeof where, "%s: post_processor", file);
    if (!post || json_is_null(post)) return SEMBED_OK;
    const char *type = NULL;
    sembed_status st = sembed__json_type(post, where, &type, err);
    if (st) return st;
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        /* RobertaProcessing's trim_offsets trims whitespace off offsets: of the tokens sembed
         * produces only lstrip/rstrip added tokens span any (tokenize_text) */
        st = cls_sep_template(tok, post, where, err);
        bool trim = true;
        if (!st && !strcmp(type, "RobertaProcessing"))
            st = sembed__json_bool(post, "trim_offsets", where, true, &trim, err);
        tok->trim_offsets = !strcmp(type, "RobertaProcessing") && trim;
    } else if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(post, "single");
        json_t *specials = json_object_get(post, "special_tokens");
        if (!json_is_array(single) || json_array_size(single) > 64)
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s.single: expected an array of pieces", where);
        size_t n = json_array_size(single);
        tok->tmpl = sembed__calloc(n ? n : 1, sizeof *tok->tmpl);
        if (!tok->tmpl) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        int n_seq = 0;
        for (size_t i = 0; i < n && !st; i++) {
            json_t *piece = json_array_get(single, i);
            json_t *sp = json_object_get(piece, "SpecialToken");
            json_t *seq = json_object_get(piece, "Sequence");
            template_item *it = &tok->tmpl[tok->n_tmpl++];
            if (json_is_object(sp) && json_is_string(json_object_get(sp, "id"))) {
                st = special_ids(tok, specials, json_string_value(json_object_get(sp, "id")), where,
                                 it, err);
            } else if (json_is_object(seq)) {
                it->is_sequence = true;
                n_seq++;
            } else {
                st = sembed__err(err, SEMBED_ERR_FORMAT,
                                 "%s.single[%zu]: expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}",
                                 where, i);
            }
        }
        if (!st && n_seq != 1)
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.single: expected exactly one $A sequence, found %d",
                             where, n_seq);
    } else {
        st = sembed__err(err, SEMBED_ERR_UNSUPPORTED, "%s: post-processor type \"%s\" is not supported",
                         where, type);
    }
    if (st) return st;
    for (int32_t i = 0; i < tok->n_tmpl; i++) tok->n_special += tok->tmpl[i].n_ids;
    return SEMBED_OK;
}

static sembed_status load_model(sembed_tokenizer *tok, json_t *model, const char *file,
                                sembed_error *err) {
    char where[128];
    snprintf(where, sizeof where, "%s: model", file);
    const char *type = NULL;
    if (json_is_object(model) && !json_object_get(model, "type")) {
        /* older files omit the type: infer it the way tokenizers does, from the fields */
        if (json_object_get(model, "continuing_subword_prefix") || json_object_get(model, "max_input_chars_per_word"))
            type = "WordPiece";
        else if (json_is_array(json_object_get(model, "vocab")))
            type = "Unigram";
    }
    if (!type) {
        sembed_status st = sembed__json_type(model, where, &type, err);
        if (st) return st;
    }
    if (!strcmp(type, "WordPiece")) {
        tok->model = MODEL_WORDPIECE;
        return sembed__wordpiece_load(model, where, &tok->vocab, &tok->wp, err);
    }
    if (!strcmp(type, "Unigram")) {
        tok->model = MODEL_UNIGRAM;
        return sembed__unigram_load(model, where, &tok->vocab, &tok->ug, err);
    }
    return sembed__err(err, SEMBED_ERR_UNSUPPORTED, "%s.type: model type \"%s\" is not supported",
                       where, type);
}

static sembed_status finish_load(sembed_tokenizer *tok, const char *file, sembed_error *err) {
    sembed_status st = merge_added_into_vocab(tok, file, err);
    if (!st) st = normalize_added(tok, err);
    if (st) return st;
    for (int32_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].n > 0) tok->first_cp_raw[tok->added[i].cp[0] & 255] = 1;
    if (tok->add_special && tok->n_special >= tok->max_length)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: max_length %d leaves no room for text after %d special tokens",
                           file, tok->max_length, tok->n_special);
    return SEMBED_OK;
}

sembed_status sembed_tokenizer_load_json(const char *json, size_t len, const char *name,
                                         const sembed_tokenizer_params *params,
                                         sembed_tokenizer **out, sembed_error *err) {
    if (!out || (!json && len)) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    if (!name) name = "tokenizer.json";
    sembed_tokenizer_params p = params ? *params : sembed_tokenizer_default_params();
    if (p.max_length < 0 || p.max_length > SEMBED_MAX_LENGTH_LIMIT)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "max_length %d is out of range [0, %d]",
                           p.max_length, SEMBED_MAX_LENGTH_LIMIT);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s",
                           name, jerr.line, jerr.column, jerr.text);
    sembed_status st = SEMBED_OK;
    sembed_tokenizer *tok = sembed__calloc(1, sizeof *tok);
    if (!tok) {
        json_decref(root);
        return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    }
    tok->add_special = p.add_special_tokens != 0;
    if (!json_is_object(root)) {
        st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: expected a JSON object at the top", name);
        goto done;
    }
    if ((st = load_model(tok, json_object_get(root, "model"), name, err))) goto done;
    if ((st = load_added_tokens(tok, json_object_get(root, "added_tokens"), name, err))) goto done;
    for (int32_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id >= SEMBED_MAX_LENGTH_LIMIT * 10) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: added_tokens: id %d is out of range", name,
                             tok->added[i].id);
            goto done;
        }
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        char where[128];
        snprintf(where, sizeof where, "%s: normalizer", name);
        if ((st = sembed__normalizer_load(norm, where, &tok->norm, err))) goto done;
    }
    json_t *pre = json_object_get(root, "pre_tokenizer");
    if (pre && !json_is_null(pre)) {
        char where[128];
        snprintf(where, sizeof where, "%s: pre_tokenizer", name);
        if ((st = sembed__pretok_load(pre, where, &tok->pre, err))) goto done;
    }
    /* ids of the post-processor may be added tokens outside the model's vocabulary */
    if ((st = merge_added_into_vocab(tok, name, err))) goto done;
    if ((st = load_post(tok, json_object_get(root, "post_processor"), name, err))) goto done;
    if (!tok->add_special) tok->n_special = 0;
    tok->max_length = p.max_length;
    if (tok->max_length == 0) {
        json_t *tr = json_object_get(root, "truncation");
        json_t *ml = json_is_object(tr) ? json_object_get(tr, "max_length") : NULL;
        if (json_is_integer(ml) && json_integer_value(ml) > 0 &&
            json_integer_value(ml) <= SEMBED_MAX_LENGTH_LIMIT)
            tok->max_length = (int32_t)json_integer_value(ml);
        else
            tok->max_length = 512;
    }
    st = finish_load(tok, name, err);
done:
    json_decref(root);
    if (st) {
        sembed_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return SEMBED_OK;
}

/* Reads an optional JSON file of the folder; *root is NULL when the file is absent. */
static sembed_status read_json_file(const char *dir, const char *name, json_t **root,
                                    sembed_error *err) {
    *root = NULL;
    char *path = sembed__path_join(dir, name);
    if (!path) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    if (!sembed__file_exists(path)) {
        sembed__free(path);
        return SEMBED_OK;
    }
    char *data = NULL;
    size_t len = 0;
    sembed_status st = sembed__read_file(path, 16u << 20, &data, &len, err);
    if (!st) {
        json_error_t jerr;
        *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!*root && json_error_code(&jerr) == json_error_numeric_overflow)
            /* transformers writes "no limit" as model_max_length 1000000000000000019884624838656,
             * past jansson's integers: read the file's numbers as reals instead */
            *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
        if (!*root)
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s",
                             path, jerr.line, jerr.column, jerr.text);
        else if (!json_is_object(*root)) {
            json_decref(*root);
            *root = NULL;
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: expected a JSON object", path);
        }
    }
    sembed__free(data);
    sembed__free(path);
    return st;
}

/* A length field of a config: an integer in [1, SEMBED_MAX_LENGTH_LIMIT], or a real with such a
 * value (read_json_file reads every number as a real when one is too big for an integer). */
static bool length_value(const json_t *m, int32_t *out) {
    double v = json_is_integer(m) ? (double)json_integer_value(m) : json_is_real(m) ? json_real_value(m) : 0;
    if (!(v >= 1 && v <= SEMBED_MAX_LENGTH_LIMIT) || v != (double)(int32_t)v) return false;
    *out = (int32_t)v;
    return true;
}

/* The folder's length limit: sentence-transformers' max_seq_length, else
 * tokenizer_config.json's model_max_length (when it is a real limit). 0 when neither says. */
static sembed_status folder_max_length(const char *dir, int32_t *out, sembed_error *err) {
    *out = 0;
    json_t *st_cfg = NULL, *tk_cfg = NULL;
    sembed_status st = read_json_file(dir, "sentence_bert_config.json", &st_cfg, err);
    if (st) return st;
    if (st_cfg) {
        json_t *m = json_object_get(st_cfg, "max_seq_length");
        if (m && !json_is_null(m)) {
            if (!length_value(m, out))
                st = sembed__err(err, SEMBED_ERR_FORMAT,
                                 "%s/sentence_bert_config.json: max_seq_length: expected an integer in [1, %d]",
                                 dir, SEMBED_MAX_LENGTH_LIMIT);
        }
        json_decref(st_cfg);
        if (st || *out) return st;
    }
    st = read_json_file(dir, "tokenizer_config.json", &tk_cfg, err);
    if (st) return st;
    if (tk_cfg) {
        json_t *m = json_object_get(tk_cfg, "model_max_length");
        length_value(m, out); /* anything else (1e30: no limit) leaves the default */
        json_decref(tk_cfg);
    }
    return SEMBED_OK;
}

/* The BERT pipeline of a folder with vocab.txt and no tokenizer.json, as transformers'
 * BertConverter builds it from tokenizer_config.json. */
static sembed_status load_vocab_txt(const char *dir, const sembed_tokenizer_params *p,
                                    sembed_tokenizer **out, sembed_error *err) {
    json_t *cfg = NULL;
    sembed_status st = read_json_file(dir, "tokenizer_config.json", &cfg, err);
    if (st) return st;
    char *path = sembed__path_join(dir, "vocab.txt");
    char *data = NULL;
    size_t len = 0;
    if (!path) st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    else st = sembed__read_file(path, 256u << 20, &data, &len, err);
    json_t *root = NULL;
    if (!st) {
        /* assemble the equivalent tokenizer.json and load it: one code path for both */
        json_t *vocab = json_object();
        int32_t id = 0;
        for (size_t i = 0; i < len && !st;) {
            size_t e = i;
            while (e < len && data[e] != '\n') e++;
            size_t l = e - i;
            if (l > 0 && data[i + l - 1] == '\r') l--;
            json_t *s = json_stringn(data + i, l);
            if (!s) {
                st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: line %d is not valid UTF-8", path, id + 1);
                break;
            }
            json_decref(s);
            char *tokstr = sembed__malloc(l + 1);
            if (!tokstr) {
                st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(tokstr, data + i, l);
            tokstr[l] = 0;
            /* a duplicate line takes the token to its later id, as transformers' load_vocab
             * does; the earlier id is left without a token */
            json_object_set_new(vocab, tokstr, json_integer(id));
            sembed__free(tokstr);
            id++;
            i = e + 1;
        }
        json_t *lc = cfg ? json_object_get(cfg, "do_lower_case") : NULL;
        json_t *sa = cfg ? json_object_get(cfg, "strip_accents") : NULL;
        json_t *cj = cfg ? json_object_get(cfg, "tokenize_chinese_chars") : NULL;
        bool lower = !json_is_false(lc);
        const char *names[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        static const char *keys[5] = {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token"};
        for (int k = 0; k < 5 && cfg; k++) {
            json_t *v = json_object_get(cfg, keys[k]);
            if (json_is_string(v)) names[k] = json_string_value(v);
            else if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
                names[k] = json_string_value(json_object_get(v, "content"));
        }
        json_t *added = json_array();
        for (int k = 0; k < 5; k++) {
            json_t *vid = json_object_get(vocab, names[k]);
            if (!vid) continue;
            json_array_append_new(
                added, json_pack("{s:O,s:s,s:b,s:b,s:b,s:b,s:b}", "id", vid, "content", names[k],
                                 "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                 "special", 1));
        }
        root = json_pack(
            "{s:o,s:{s:s,s:b,s:b,s:O,s:b},s:{s:s},s:{s:s,s:[{s:{s:s,s:i}},{s:{s:s,s:i}},{s:{s:s,s:i}}],s:{s:{s:s,s:[s]},s:{s:s,s:[s]}}},s:{s:s,s:s,s:s,s:i,s:o}}",
            "added_tokens", added,
            "normalizer", "type", "BertNormalizer", "clean_text", 1, "handle_chinese_chars",
            !json_is_false(cj), "strip_accents", sa ? sa : json_null(), "lowercase", lower,
            "pre_tokenizer", "type", "BertPreTokenizer",
            "post_processor", "type", "TemplateProcessing", "single",
            "SpecialToken", "id", names[2], "type_id", 0, "Sequence", "id", "A", "type_id", 0,
            "SpecialToken", "id", names[3], "type_id", 0,
            "special_tokens", names[2], "id", names[2], "tokens", names[2], names[3], "id",
            names[3], "tokens", names[3],
            "model", "type", "WordPiece", "unk_token", names[1], "continuing_subword_prefix", "##",
            "max_input_chars_per_word", 100, "vocab", vocab);
        if (!root && !st) st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        if (!root) json_decref(vocab);
        /* the special tokens' ids come from the vocabulary */
        json_t *sp = root ? json_object_get(json_object_get(root, "post_processor"), "special_tokens") : NULL;
        for (int k = 2; k <= 3 && sp && !st; k++) {
            json_t *vid = json_object_get(vocab, names[k]);
            if (!vid) {
                st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: the special token %s is not in the vocabulary",
                                 path, names[k]);
                break;
            }
            json_object_set_new(json_object_get(sp, names[k]), "ids", json_pack("[O]", vid));
        }
    }
    char *text = NULL;
    if (!st && root) {
        text = json_dumps(root, JSON_COMPACT);
        if (!text) st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    }
    if (!st) st = sembed_tokenizer_load_json(text, strlen(text), path, p, out, err);
    free(text);
    json_decref(root);
    json_decref(cfg);
    sembed__free(data);
    sembed__free(path);
    return st;
}

sembed_status sembed_tokenizer_load(const char *dir, const sembed_tokenizer_params *params,
                                    sembed_tokenizer **out, sembed_error *err) {
    if (!dir || !out) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    sembed_tokenizer_params p = params ? *params : sembed_tokenizer_default_params();
    if (p.max_length == 0) {
        sembed_status st = folder_max_length(dir, &p.max_length, err);
        if (st) return st;
    }
    char *path = sembed__path_join(dir, "tokenizer.json");
    if (!path) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    sembed_status st;
    if (sembed__file_exists(path)) {
        char *data = NULL;
        size_t len = 0;
        st = sembed__read_file(path, SEMBED_TOKENIZER_JSON_MAX, &data, &len, err);
        if (!st) st = sembed_tokenizer_load_json(data, len, path, &p, out, err);
        sembed__free(data);
    } else {
        char *vocab = sembed__path_join(dir, "vocab.txt");
        if (!vocab) {
            sembed__free(path);
            return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
        }
        bool has_vocab = sembed__file_exists(vocab);
        sembed__free(vocab);
        if (has_vocab)
            st = load_vocab_txt(dir, &p, out, err);
        else
            st = sembed__err(err, SEMBED_ERR_IO, "%s: no tokenizer.json or vocab.txt in this folder", dir);
    }
    sembed__free(path);
    return st;
}

/* ---- tokenizing one text -------------------------------------------------------------------- */

/* Leftmost-longest match of an added token in t at or after `from`, restricted to tokens whose
 * `normalized` flag equals `normalized`. Returns the token index or -1; *at is the start. */
static int32_t find_added(const sembed_tokenizer *tok, const sembed__ntext *t, int32_t from,
                          bool normalized, int32_t *at) {
    for (int32_t i = from; i < t->n; i++) {
        if (!tok->first_cp_raw[t->cp[i] & 255]) continue;
        int32_t best = -1, best_n = 0;
        for (int32_t k = 0; k < tok->n_added; k++) {
            const added_token *a = &tok->added[k];
            if (a->normalized != normalized || a->n <= best_n || a->n > t->n - i) continue;
            if (memcmp(a->cp, t->cp + i, (size_t)a->n * sizeof *a->cp) == 0) {
                best = k;
                best_n = a->n;
            }
        }
        if (best >= 0) {
            *at = i;
            return best;
        }
    }
    return -1;
}

static bool is_alnum_char(uint32_t c) {
    /* Rust char::is_alphanumeric: Alphabetic or Numeric */
    return sembed__u_is_alnum_word(c) && c != '_';
}

/* Tokenizes normalized code points [b, e) of s->text (no added tokens inside) into s->toks. */
static bool model_piece(const sembed_tokenizer *tok, sembed__tok_scratch *s) {
    s->words.n = 0;
    if (s->text.n == 0) return true;
    if (!sembed__spans_push(&s->words, 0, s->text.n)) return false;
    if (tok->pre && !sembed__pretokenize(tok->pre, s)) return false;
    for (int32_t w = 0; w < s->words.n; w++) {
        sembed__span sp = s->words.v[w];
        if (sp.e <= sp.b) continue;
        bool ok = tok->model == MODEL_WORDPIECE
                      ? sembed__wordpiece_tokenize(&tok->wp, &tok->vocab, &s->text, sp, s)
                      : sembed__unigram_tokenize(tok->ug, &tok->vocab, &s->text, sp, s);
        if (!ok) return false;
    }
    return true;
}

typedef struct match {
    int32_t token; /* added token index, -1 for none */
    int32_t b, e;  /* code points of the text, including stripped whitespace */
    int32_t at;    /* the token's own code points [at, next): its offsets under trim_offsets
                      ([b, e) otherwise); the search goes on from next */
    int32_t next;
} match;

/* Finds the next usable added-token match in t from `from` (tokenizers' find_matches rules:
 * single_word, lstrip, rstrip). `floor` is where the previous match ended. */
static match next_match(const sembed_tokenizer *tok, const sembed__ntext *t, int32_t from,
                        int32_t floor, bool normalized) {
    for (;;) {
        int32_t at = 0;
        int32_t k = find_added(tok, t, from, normalized, &at);
        if (k < 0) return (match){-1, 0, 0, 0, 0};
        const added_token *a = &tok->added[k];
        int32_t b = at, e = at + a->n;
        if (a->single_word) {
            bool start_ok = b == 0 || !is_alnum_char(t->cp[b - 1]);
            bool stop_ok = e == t->n || !is_alnum_char(t->cp[e]);
            if (!start_ok || !stop_ok) {
                from = e;
                continue;
            }
        }
        if (a->lstrip) {
            int32_t nb = b;
            while (nb > 0 && sembed__u_is_whitespace(t->cp[nb - 1])) nb--;
            b = nb > floor ? nb : floor;
        }
        if (a->rstrip)
            while (e < t->n && sembed__u_is_whitespace(t->cp[e])) e++;
        if (b < floor) b = floor; /* a token that itself starts inside stripped whitespace */
        return (match){k, b, e, at, at + a->n};
    }
}

static bool emit_added(sembed__tok_scratch *s, const added_token *a, const sembed__ntext *t,
                       int32_t b, int32_t e) {
    if (!sembed__toks_reserve(&s->toks, 1)) return false;
    sembed__toks_put(&s->toks, a->id, t->ob[b], t->oe[e - 1], a->special);
    return true;
}

/* Normalizes raw code points [b, e), then splits out normalized added tokens, then runs the
 * pre-tokenizer and the model on what remains. */
static bool raw_piece(const sembed_tokenizer *tok, sembed__tok_scratch *s, int32_t b, int32_t e) {
    sembed__ntext *t = &s->text;
    t->n = 0;
    if (!sembed__nt_reserve(t, e - b)) return false;
    memcpy(t->cp, s->raw.cp + b, (size_t)(e - b) * sizeof *t->cp);
    memcpy(t->ob, s->raw.ob + b, (size_t)(e - b) * sizeof *t->ob);
    memcpy(t->oe, s->raw.oe + b, (size_t)(e - b) * sizeof *t->oe);
    t->n = e - b;
    s->first_segment = b == 0;
    if (tok->norm && !sembed__normalize(tok->norm, s)) return false;
    bool any_normalized = false;
    for (int32_t k = 0; k < tok->n_added; k++) any_normalized |= tok->added[k].normalized;
    if (!any_normalized) return model_piece(tok, s);
    /* split the normalized text at normalized added tokens; each remaining piece goes through
     * the pre-tokenizer and the model on its own */
    sembed__nt_swap(&s->text, &s->seg);
    const sembed__ntext *src = &s->seg;
    int32_t pos = 0, floor = 0;
    bool first = s->first_segment;
    for (;;) {
        match m = next_match(tok, src, pos, floor, true);
        int32_t stop = m.token >= 0 ? m.b : src->n;
        if (stop > floor) {
            sembed__ntext *dst = &s->text;
            dst->n = 0;
            if (!sembed__nt_reserve(dst, stop - floor)) return false;
            for (int32_t i = floor; i < stop; i++) sembed__nt_put(dst, src->cp[i], src->ob[i], src->oe[i]);
            s->first_segment = first && floor == 0;
            if (!model_piece(tok, s)) return false;
        }
        if (m.token < 0) break;
        if (!emit_added(s, &tok->added[m.token], src, tok->trim_offsets ? m.at : m.b,
                        tok->trim_offsets ? m.next : m.e))
            return false;
        pos = m.next;
        floor = m.e;
    }
    return true;
}

/* Tokenizes one text into s->toks (without special tokens or truncation). Returns 0, or the
 * byte offset + 1 of invalid UTF-8 as a negative number, or INT64_MIN when out of memory. */
static int64_t tokenize_text(const sembed_tokenizer *tok, sembed__tok_scratch *s, const char *text,
                             size_t len) {
    s->toks.n = 0;
    int64_t bad = sembed__utf8_decode(text, len, 0, &s->raw);
    if (bad == -2) return INT64_MIN;
    if (bad >= 0) return -(bad + 1);
    const sembed__ntext *r = &s->raw;
    int32_t pos = 0, floor = 0;
    for (;;) {
        match m = tok->n_added ? next_match(tok, r, pos, floor, false) : (match){-1, 0, 0, 0, 0};
        int32_t stop = m.token >= 0 ? m.b : r->n;
        if (stop > floor && !raw_piece(tok, s, floor, stop)) return INT64_MIN;
        if (m.token < 0) break;
        if (!emit_added(s, &tok->added[m.token], r, tok->trim_offsets ? m.at : m.b,
                        tok->trim_offsets ? m.next : m.e))
            return INT64_MIN;
        pos = m.next;
        floor = m.e;
    }
    return 0;
}

static sembed_status finish_tokens(const sembed_tokenizer *tok, const sembed__toks *tk,
                                   sembed_tokens *out, int32_t index, sembed_error *err) {
    int32_t n_special = tok->add_special ? tok->n_special : 0;
    int32_t keep = tok->max_length - n_special;
    if (keep < 0) keep = 0;
    if (keep > tk->n) keep = tk->n;
    int32_t total = keep + n_special;
    out->n_full = tk->n + n_special;
    out->truncated = keep < tk->n;
    out->n = 0;
    if (total > out->capacity) {
        return sembed__err(err, SEMBED_ERR_TOO_SMALL,
                           "text %d: %d tokens do not fit the output capacity of %d", index, total,
                           out->capacity);
    }
    int32_t w = 0;
    bool templ = tok->add_special && tok->n_tmpl > 0;
    for (int32_t i = 0; i < (templ ? tok->n_tmpl : 1); i++) {
        const template_item *it = templ ? &tok->tmpl[i] : NULL;
        if (!it || it->is_sequence) {
            for (int32_t k = 0; k < keep; k++, w++) {
                out->ids[w] = tk->id[k];
                if (out->offsets) {
                    out->offsets[2 * w] = tk->ob[k];
                    out->offsets[2 * w + 1] = tk->oe[k];
                }
                if (out->special) out->special[w] = tk->special[k];
            }
        } else {
            for (int32_t k = 0; k < it->n_ids; k++, w++) {
                out->ids[w] = it->ids[k];
                if (out->offsets) out->offsets[2 * w] = out->offsets[2 * w + 1] = 0;
                if (out->special) out->special[w] = 1;
            }
        }
    }
    out->n = w;
    return SEMBED_OK;
}

static sembed_status tokenize_one(const sembed_tokenizer *tok, sembed__tok_scratch *s,
                                  const char *text, size_t len, sembed_tokens *out, int32_t index,
                                  sembed_error *err) {
    if (!out || !out->ids || out->capacity < 0 || (!text && len))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "text %d: NULL text or output buffers", index);
    if (len > (size_t)INT32_MAX / 4)
        return sembed__err(err, SEMBED_ERR_INPUT, "text %d: %zu bytes is more than the limit of %d",
                           index, len, INT32_MAX / 4);
    int64_t r = tokenize_text(tok, s, text ? text : "", len);
    if (r == INT64_MIN) return sembed__err(err, SEMBED_ERR_NOMEM, "text %d: out of memory", index);
    if (r < 0)
        return sembed__err(err, SEMBED_ERR_INPUT, "text %d: invalid UTF-8 at byte %lld", index,
                           (long long)(-r - 1));
    return finish_tokens(tok, &s->toks, out, index, err);
}

sembed_status sembed_tokenize(const sembed_tokenizer *tok, const char *text, size_t len,
                              sembed_tokens *out, sembed_error *err) {
    if (!tok) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "NULL tokenizer");
    sembed__tok_scratch s = {0};
    sembed_status st = tokenize_one(tok, &s, text, len, out, 0, err);
    sembed__scratch_free(&s);
    return st;
}

/* ---- batches on threads ------------------------------------------------------------------- */

typedef struct batch_job {
    const sembed_tokenizer *tok;
    const char *const *texts;
    const size_t *lens;
    sembed_tokens *outs;
    int32_t n;
    int32_t next;          /* atomic: next text to take */
    int32_t failed_index;  /* atomic min: first failing text, n when none */
    pthread_mutex_t lock;  /* guards err */
    sembed_error err;
    sembed_status status;
} batch_job;

static void *batch_worker(void *arg) {
    batch_job *job = arg;
    sembed__tok_scratch s = {0};
    for (;;) {
        int32_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n) break;
        sembed_error e;
        sembed_status st = tokenize_one(job->tok, &s, job->texts[i], job->lens ? job->lens[i] : (job->texts[i] ? strlen(job->texts[i]) : 0),
                                        &job->outs[i], i, &e);
        if (st) {
            pthread_mutex_lock(&job->lock);
            if (i < job->failed_index) {
                job->failed_index = i;
                job->err = e;
                job->status = st;
            }
            pthread_mutex_unlock(&job->lock);
        }
    }
    sembed__scratch_free(&s);
    return NULL;
}

sembed_status sembed_tokenize_batch(const sembed_tokenizer *tok, int32_t n,
                                    const char *const *texts, const size_t *lens,
                                    sembed_tokens *outs, int32_t n_threads, sembed_error *err) {
    if (!tok || n < 0 || (n > 0 && (!texts || !outs)))
        return sembed__err(err, SEMBED_ERR_INVALID_ARG, "NULL tokenizer, texts or outputs");
    if (n == 0) return SEMBED_OK;
    if (n_threads <= 0) n_threads = sembed__n_cpus();
    if (n_threads > n) n_threads = n;
    if (n_threads > 256) n_threads = 256;
    batch_job job = {.tok = tok, .texts = texts, .lens = lens, .outs = outs, .n = n,
                     .failed_index = n, .status = SEMBED_OK};
    pthread_mutex_init(&job.lock, NULL);
    pthread_t th[256];
    int32_t started = 0;
    for (int32_t t = 1; t < n_threads; t++) {
        if (pthread_create(&th[started], NULL, batch_worker, &job) != 0) break;
        started++;
    }
    batch_worker(&job); /* the caller's thread works too */
    for (int32_t t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&job.lock);
    if (job.status) {
        if (err) *err = job.err;
        return job.status;
    }
    return SEMBED_OK;
}
