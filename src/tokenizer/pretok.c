/* pretok.c — tokenizer.json pre-tokenizers: BertPreTokenizer, Whitespace, WhitespaceSplit,
 * Punctuation, Metaspace and Sequence. They split the normalized text into words (spans);
 * only Metaspace rewrites the text (metaspace.c). Not the models that cut words into tokens. */
#include "json_util.h"
#include "tokenizer_internal.h"

typedef enum { PT_BERT, PT_WHITESPACE, PT_WHITESPACE_SPLIT, PT_PUNCT, PT_METASPACE, PT_SEQUENCE } pt_type;
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } split_behavior;

struct sembed__pretok {
    pt_type type;
    split_behavior behavior; /* Punctuation */
    sembed__metaspace meta;
    sembed__pretok **children;
    int32_t n_children;
};

void sembed__pretok_free(sembed__pretok *p) {
    if (!p) return;
    for (int32_t i = 0; i < p->n_children; i++) sembed__pretok_free(p->children[i]);
    sembed__free(p->children);
    sembed__free(p);
}

static sembed_status parse_behavior(json_t *j, const char *where, split_behavior dflt,
                                    split_behavior *out, sembed_error *err) {
    json_t *b = json_object_get(j, "behavior");
    if (!b) {
        *out = dflt;
        return SEMBED_OK;
    }
    const char *s = json_string_value(b);
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (split_behavior)i;
            return SEMBED_OK;
        }
    return sembed__err(err, SEMBED_ERR_FORMAT, "%s.behavior: unknown split behavior %s%s%s", where,
                       s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
}

sembed_status sembed__pretok_load(json_t *j, const char *where, sembed__pretok **out,
                                  sembed_error *err) {
    *out = NULL;
    const char *type = NULL;
    sembed_status st = sembed__json_type(j, where, &type, err);
    if (st) return st;
    sembed__pretok *p = sembed__calloc(1, sizeof *p);
    if (!p) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    if (!strcmp(type, "BertPreTokenizer")) {
        p->type = PT_BERT;
    } else if (!strcmp(type, "Whitespace")) {
        p->type = PT_WHITESPACE;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->type = PT_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Punctuation")) {
        p->type = PT_PUNCT;
        if ((st = parse_behavior(j, where, SPLIT_ISOLATED, &p->behavior, err))) goto fail;
    } else if (!strcmp(type, "Metaspace")) {
        p->type = PT_METASPACE;
        const char *rep = NULL;
        if ((st = sembed__json_str(j, "replacement", where, &rep, err))) goto fail;
        sembed__ntext t = {0};
        int64_t bad = sembed__utf8_decode(rep, strlen(rep), 0, &t);
        uint32_t c = t.n == 1 ? t.cp[0] : 0;
        sembed__nt_free(&t);
        if (bad != -1 || c == 0) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.replacement: expected one character", where);
            goto fail;
        }
        p->meta.replacement = c;
        bool split = true;
        if ((st = sembed__json_bool(j, "split", where, true, &split, err))) goto fail;
        p->meta.split = split;
        json_t *scheme = json_object_get(j, "prepend_scheme");
        json_t *legacy = json_object_get(j, "add_prefix_space");
        if (scheme) {
            const char *s = json_string_value(scheme);
            if (s && !strcmp(s, "always")) p->meta.prepend_scheme = 2;
            else if (s && !strcmp(s, "first")) p->meta.prepend_scheme = 1;
            else if (s && !strcmp(s, "never")) p->meta.prepend_scheme = 0;
            else {
                st = sembed__err(err, SEMBED_ERR_FORMAT,
                                 "%s.prepend_scheme: expected \"always\", \"first\" or \"never\"", where);
                goto fail;
            }
        } else if (legacy) {
            if (!json_is_boolean(legacy)) {
                st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.add_prefix_space: expected a boolean", where);
                goto fail;
            }
            p->meta.prepend_scheme = json_is_true(legacy) ? 2 : 0;
        } else {
            p->meta.prepend_scheme = 2;
        }
    } else if (!strcmp(type, "Sequence")) {
        p->type = PT_SEQUENCE;
        json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr)) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.pretokenizers: expected an array", where);
            goto fail;
        }
        size_t cnt = json_array_size(arr);
        p->children = sembed__calloc(cnt, sizeof *p->children);
        if (!p->children) {
            st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < cnt; i++) {
            char w[256];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            if ((st = sembed__pretok_load(json_array_get(arr, i), w, &p->children[i], err))) goto fail;
            p->n_children++;
        }
    } else {
        st = sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                         "%s: pre-tokenizer type \"%s\" is not supported", where, type);
        goto fail;
    }
    *out = p;
    return SEMBED_OK;
fail:
    sembed__pretok_free(p);
    return st;
}

/* Splits each word at the code points where `is_delim` holds, with tokenizers' behaviours. */
static bool split_words(sembed__tok_scratch *s, bool (*is_delim)(uint32_t), split_behavior b) {
    const sembed__ntext *t = &s->text;
    sembed__spans *out = &s->words_tmp;
    out->n = 0;
    for (int32_t w = 0; w < s->words.n; w++) {
        sembed__span sp = s->words.v[w];
        int32_t start = sp.b; /* start of the pending piece */
        for (int32_t i = sp.b; i < sp.e; i++) {
            if (!is_delim(t->cp[i])) continue;
            switch (b) {
            case SPLIT_REMOVED:
                if (i > start && !sembed__spans_push(out, start, i)) return false;
                start = i + 1;
                break;
            case SPLIT_ISOLATED:
                if (i > start && !sembed__spans_push(out, start, i)) return false;
                if (!sembed__spans_push(out, i, i + 1)) return false;
                start = i + 1;
                break;
            case SPLIT_MERGED_PREV:
                if (!sembed__spans_push(out, start, i + 1)) return false;
                start = i + 1;
                break;
            case SPLIT_MERGED_NEXT:
                if (i > start && !sembed__spans_push(out, start, i)) return false;
                start = i;
                break;
            case SPLIT_CONTIGUOUS: {
                int32_t j = i;
                while (j < sp.e && is_delim(t->cp[j])) j++;
                if (i > start && !sembed__spans_push(out, start, i)) return false;
                if (!sembed__spans_push(out, i, j)) return false;
                start = j;
                i = j - 1;
                break;
            }
            }
        }
        if (sp.e > start && !sembed__spans_push(out, start, sp.e)) return false;
    }
    sembed__spans tmp = s->words;
    s->words = s->words_tmp;
    s->words_tmp = tmp;
    return true;
}

static bool is_ws(uint32_t c) { return sembed__u_is_whitespace(c); }
static bool is_punct(uint32_t c) { return sembed__u_is_punctuation(c); }

/* Whitespace: keeps the runs of \w and the runs of [^\w\s] (regex \w+|[^\w\s]+). */
static bool whitespace_words(sembed__tok_scratch *s) {
    const sembed__ntext *t = &s->text;
    sembed__spans *out = &s->words_tmp;
    out->n = 0;
    for (int32_t w = 0; w < s->words.n; w++) {
        sembed__span sp = s->words.v[w];
        int32_t i = sp.b;
        while (i < sp.e) {
            uint32_t c = t->cp[i];
            if (sembed__u_is_whitespace(c)) {
                i++;
                continue;
            }
            bool word = sembed__u_is_alnum_word(c);
            int32_t j = i + 1;
            while (j < sp.e && !sembed__u_is_whitespace(t->cp[j]) &&
                   sembed__u_is_alnum_word(t->cp[j]) == word)
                j++;
            if (!sembed__spans_push(out, i, j)) return false;
            i = j;
        }
    }
    sembed__spans tmp = s->words;
    s->words = s->words_tmp;
    s->words_tmp = tmp;
    return true;
}

static bool pretokenize(const sembed__pretok *p, bool first, sembed__tok_scratch *s) {
    switch (p->type) {
    case PT_BERT:
        return split_words(s, is_ws, SPLIT_REMOVED) && split_words(s, is_punct, SPLIT_ISOLATED);
    case PT_WHITESPACE_SPLIT: return split_words(s, is_ws, SPLIT_REMOVED);
    case PT_WHITESPACE: return whitespace_words(s);
    case PT_PUNCT: return split_words(s, is_punct, p->behavior);
    case PT_METASPACE: return sembed__metaspace_apply(&p->meta, first, s);
    case PT_SEQUENCE:
        for (int32_t i = 0; i < p->n_children; i++)
            if (!pretokenize(p->children[i], first, s)) return false;
        return true;
    }
    return true;
}

bool sembed__pretokenize(const sembed__pretok *p, sembed__tok_scratch *s) {
    /* "first" for Metaspace's prepend_scheme: the piece starts at the input's first byte */
    return pretokenize(p, s->first_segment, s);
}
