/* normalizer.c — tokenizer.json normalizers: BertNormalizer, Lowercase, Strip, StripAccents,
 * NFC/NFD/NFKC/NFKD, Replace, Prepend, Precompiled and Sequence, each keeping the alignment
 * to the original text as tokenizers' NormalizedString does. Not the Precompiled charsmap
 * itself (precompiled.c). */
#include "json_util.h"
#include "tokenizer_internal.h"

typedef enum {
    NZ_BERT,
    NZ_LOWERCASE,
    NZ_STRIP,
    NZ_STRIP_ACCENTS,
    NZ_NF,
    NZ_REPLACE,
    NZ_PREPEND,
    NZ_PRECOMPILED,
    NZ_SEQUENCE,
} nz_type;

struct sembed__normalizer {
    nz_type type;
    /* BertNormalizer */
    bool clean_text, handle_chinese, strip_accents, lowercase;
    /* Strip */
    bool strip_left, strip_right;
    /* NFx */
    sembed__nf form;
    /* Replace: a literal string, or a one-code-point regex repeated min..max times */
    uint32_t *pattern;
    int32_t pattern_n;
    bool repeat;
    int32_t rep_min, rep_max; /* rep_max < 0: unbounded */
    uint32_t *content;        /* Replace's content, Prepend's prefix */
    int32_t content_n;
    sembed__precompiled *precompiled;
    sembed__normalizer **children;
    int32_t n_children;
};

void sembed__normalizer_free(sembed__normalizer *n) {
    if (!n) return;
    for (int32_t i = 0; i < n->n_children; i++) sembed__normalizer_free(n->children[i]);
    sembed__free(n->children);
    sembed__free(n->pattern);
    sembed__free(n->content);
    sembed__precompiled_free(n->precompiled);
    sembed__free(n);
}

/* Decodes a JSON string into code points. */
static sembed_status to_cps(const char *s, const char *where, const char *field, uint32_t **out,
                            int32_t *n, sembed_error *err) {
    sembed__ntext t = {0};
    int64_t bad = sembed__utf8_decode(s, strlen(s), 0, &t);
    if (bad == -2) {
        sembed__nt_free(&t);
        return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    }
    if (bad >= 0) {
        sembed__nt_free(&t);
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: invalid UTF-8", where, field);
    }
    sembed__free(t.ob);
    sembed__free(t.oe);
    *out = t.cp;
    *n = t.n;
    return SEMBED_OK;
}

/* Parses the small regex subset that tokenizer.json files use for Replace (" {2,}", "\s+"
 * is not supported): one literal or escaped code point, optionally followed by a quantifier
 * {n}, {n,}, {n,m}, + or *. Anything else is reported as unsupported, never guessed. */
static sembed_status parse_regex(sembed__normalizer *n, const char *re, const char *where,
                                 sembed_error *err) {
    uint32_t *cps = NULL;
    int32_t len = 0;
    sembed_status st = to_cps(re, where, "pattern.Regex", &cps, &len, err);
    if (st) return st;
    int32_t i = 0;
    uint32_t c = 0;
    if (len > 0 && cps[0] == '\\' && len > 1 && strchr(".*+?()[]{}|\\^$", (int)(cps[1] < 128 ? cps[1] : 'a')) && cps[1] < 128) {
        c = cps[1];
        i = 2;
    } else if (len > 0 && (cps[0] >= 128 || !strchr(".*+?()[]{}|\\^$", (int)cps[0]))) {
        c = cps[0];
        i = 1;
    } else {
        sembed__free(cps);
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: regex pattern \"%s\" is not supported (only one character with "
                           "an optional quantifier)", where, re);
    }
    int32_t mn = 1, mx = 1;
    if (i < len) {
        if (cps[i] == '+' && i + 1 == len) {
            mx = -1;
        } else if (cps[i] == '*' && i + 1 == len) {
            mn = 0;
            mx = -1;
        } else if (cps[i] == '{') {
            char buf[64];
            int32_t k = 0;
            for (i++; i < len && cps[i] != '}' && k < 63; i++) buf[k++] = (char)cps[i];
            buf[k] = 0;
            int a = -1, b = -1, used = 0;
            bool ok = i == len - 1 && cps[i] == '}';
            if (ok && sscanf(buf, "%d,%d%n", &a, &b, &used) == 2 && used == k && a >= 0 && b >= a) {
                mn = a;
                mx = b;
            } else if (ok && sscanf(buf, "%d,%n", &a, &used) == 1 && used == k && a >= 0) {
                mn = a;
                mx = -1;
            } else if (ok && sscanf(buf, "%d%n", &a, &used) == 1 && used == k && a >= 0) {
                mn = mx = a;
            } else {
                ok = false;
            }
            if (!ok) {
                sembed__free(cps);
                return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                                   "%s: regex quantifier in \"%s\" is not supported", where, re);
            }
        } else {
            sembed__free(cps);
            return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                               "%s: regex pattern \"%s\" is not supported", where, re);
        }
    }
    if (mn == 0) {
        sembed__free(cps);
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: regex \"%s\" can match the empty string", where, re);
    }
    cps[0] = c;
    n->pattern = cps;
    n->pattern_n = 1;
    n->repeat = true;
    n->rep_min = mn;
    n->rep_max = mx;
    return SEMBED_OK;
}

sembed_status sembed__normalizer_load(json_t *j, const char *where, sembed__normalizer **out,
                                      sembed_error *err) {
    *out = NULL;
    const char *type = NULL;
    sembed_status st = sembed__json_type(j, where, &type, err);
    if (st) return st;
    sembed__normalizer *n = sembed__calloc(1, sizeof *n);
    if (!n) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    if (!strcmp(type, "BertNormalizer")) {
        n->type = NZ_BERT;
        int strip = -1;
        bool t = true;
        if ((st = sembed__json_bool(j, "clean_text", where, true, &t, err))) goto fail;
        n->clean_text = t;
        if ((st = sembed__json_bool(j, "handle_chinese_chars", where, true, &t, err))) goto fail;
        n->handle_chinese = t;
        if ((st = sembed__json_bool(j, "lowercase", where, true, &t, err))) goto fail;
        n->lowercase = t;
        if ((st = sembed__json_opt_bool(j, "strip_accents", where, &strip, err))) goto fail;
        n->strip_accents = strip < 0 ? n->lowercase : strip == 1;
    } else if (!strcmp(type, "Lowercase")) {
        n->type = NZ_LOWERCASE;
    } else if (!strcmp(type, "StripAccents")) {
        n->type = NZ_STRIP_ACCENTS;
    } else if (!strcmp(type, "Strip")) {
        n->type = NZ_STRIP;
        bool l = true, r = true;
        if ((st = sembed__json_bool(j, "strip_left", where, true, &l, err))) goto fail;
        if ((st = sembed__json_bool(j, "strip_right", where, true, &r, err))) goto fail;
        n->strip_left = l;
        n->strip_right = r;
    } else if (!strcmp(type, "NFD") || !strcmp(type, "NFKD") || !strcmp(type, "NFC") ||
               !strcmp(type, "NFKC")) {
        n->type = NZ_NF;
        n->form = !strcmp(type, "NFD")    ? SEMBED__NFD
                  : !strcmp(type, "NFKD") ? SEMBED__NFKD
                  : !strcmp(type, "NFC")  ? SEMBED__NFC
                                          : SEMBED__NFKC;
    } else if (!strcmp(type, "Replace")) {
        n->type = NZ_REPLACE;
        json_t *pat = json_object_get(j, "pattern");
        const char *content = NULL;
        if ((st = sembed__json_str(j, "content", where, &content, err))) goto fail;
        if ((st = to_cps(content, where, "content", &n->content, &n->content_n, err))) goto fail;
        json_t *lit = pat ? json_object_get(pat, "String") : NULL;
        json_t *re = pat ? json_object_get(pat, "Regex") : NULL;
        if (lit && json_is_string(lit)) {
            if ((st = to_cps(json_string_value(lit), where, "pattern.String", &n->pattern,
                             &n->pattern_n, err)))
                goto fail;
            if (n->pattern_n == 0) {
                st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.pattern.String: empty pattern", where);
                goto fail;
            }
        } else if (re && json_is_string(re)) {
            if ((st = parse_regex(n, json_string_value(re), where, err))) goto fail;
        } else {
            st = sembed__err(err, SEMBED_ERR_FORMAT,
                             "%s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", where);
            goto fail;
        }
    } else if (!strcmp(type, "Prepend")) {
        n->type = NZ_PREPEND;
        const char *p = NULL;
        if ((st = sembed__json_str(j, "prepend", where, &p, err))) goto fail;
        if ((st = to_cps(p, where, "prepend", &n->content, &n->content_n, err))) goto fail;
    } else if (!strcmp(type, "Precompiled")) {
        n->type = NZ_PRECOMPILED;
        json_t *map = json_object_get(j, "precompiled_charsmap");
        if (json_is_null(map) || (json_is_string(map) && json_string_length(map) == 0)) {
            n->type = NZ_SEQUENCE; /* an empty charsmap normalizes nothing */
        } else {
            const char *b64 = NULL;
            if ((st = sembed__json_str(j, "precompiled_charsmap", where, &b64, err))) goto fail;
            char w[256];
            snprintf(w, sizeof w, "%s.precompiled_charsmap", where);
            if ((st = sembed__precompiled_load(b64, w, &n->precompiled, err))) goto fail;
        }
    } else if (!strcmp(type, "Sequence")) {
        n->type = NZ_SEQUENCE;
        json_t *arr = json_object_get(j, "normalizers");
        if (!json_is_array(arr)) {
            st = sembed__err(err, SEMBED_ERR_FORMAT, "%s.normalizers: expected an array", where);
            goto fail;
        }
        size_t cnt = json_array_size(arr);
        n->children = sembed__calloc(cnt, sizeof *n->children);
        if (!n->children) {
            st = sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < cnt; i++) {
            char w[256];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            if ((st = sembed__normalizer_load(json_array_get(arr, i), w, &n->children[i], err)))
                goto fail;
            n->n_children++;
        }
    } else {
        st = sembed__err(err, SEMBED_ERR_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported",
                         where, type);
        goto fail;
    }
    *out = n;
    return SEMBED_OK;
fail:
    sembed__normalizer_free(n);
    return st;
}

/* ---- application ------------------------------------------------------------------------- */

static bool bert(const sembed__normalizer *n, sembed__tok_scratch *s) {
    sembed__ntext *in = &s->text, *out = &s->tmp;
    if (n->clean_text) {
        int32_t w = 0;
        for (int32_t i = 0; i < in->n; i++) {
            uint32_t c = in->cp[i];
            if (c == 0 || c == 0xFFFD || sembed__u_is_control(c)) continue;
            in->cp[w] = sembed__u_is_whitespace(c) ? ' ' : c;
            in->ob[w] = in->ob[i];
            in->oe[w] = in->oe[i];
            w++;
        }
        in->n = w;
    }
    if (n->handle_chinese) {
        int32_t extra = 0;
        for (int32_t i = 0; i < in->n; i++) extra += sembed__u_is_chinese(in->cp[i]);
        if (extra) {
            out->n = 0;
            if (!sembed__nt_reserve(out, (int64_t)in->n + 2 * (int64_t)extra)) return false;
            for (int32_t i = 0; i < in->n; i++) {
                if (sembed__u_is_chinese(in->cp[i])) {
                    sembed__nt_put(out, ' ', in->ob[i], in->oe[i]);
                    sembed__nt_put(out, in->cp[i], in->ob[i], in->oe[i]);
                    sembed__nt_put(out, ' ', in->ob[i], in->oe[i]);
                } else {
                    sembed__nt_put(out, in->cp[i], in->ob[i], in->oe[i]);
                }
            }
            sembed__nt_swap(in, out);
        }
    }
    if (n->strip_accents) {
        bool ascii = true;
        for (int32_t i = 0; i < in->n && ascii; i++) ascii = in->cp[i] < 0xC0;
        if (!ascii) {
            if (!sembed__u_normalize(SEMBED__NFD, in, out)) return false;
            int32_t w = 0;
            for (int32_t i = 0; i < out->n; i++) {
                if (sembed__u_is_mn(out->cp[i])) continue;
                out->cp[w] = out->cp[i];
                out->ob[w] = out->ob[i];
                out->oe[w] = out->oe[i];
                w++;
            }
            out->n = w;
            sembed__nt_swap(in, out);
        }
    }
    return true;
}

static bool lowercase(sembed__tok_scratch *s) {
    sembed__ntext *in = &s->text, *out = &s->tmp;
    bool simple = true;
    for (int32_t i = 0; i < in->n; i++) {
        uint32_t l[3];
        int k = sembed__u_lower(in->cp[i], l);
        if (k != 1) {
            simple = false;
            break;
        }
        in->cp[i] = l[0];
    }
    if (simple) return true;
    /* a code point with a multi-code-point lowercase (U+0130): redo from there with copies;
     * the code points before it are already lowercased, and lowercase is idempotent */
    out->n = 0;
    if (!sembed__nt_reserve(out, (int64_t)in->n * 3)) return false;
    for (int32_t i = 0; i < in->n; i++) {
        uint32_t l[3];
        int k = sembed__u_lower(in->cp[i], l);
        for (int j = 0; j < k; j++) sembed__nt_put(out, l[j], in->ob[i], in->oe[i]);
    }
    sembed__nt_swap(in, out);
    return true;
}

static void filter_marks(sembed__ntext *t) {
    int32_t w = 0;
    for (int32_t i = 0; i < t->n; i++) {
        if (sembed__u_is_mn(t->cp[i])) continue;
        t->cp[w] = t->cp[i];
        t->ob[w] = t->ob[i];
        t->oe[w] = t->oe[i];
        w++;
    }
    t->n = w;
}

static void strip(const sembed__normalizer *n, sembed__ntext *t) {
    int32_t b = 0, e = t->n;
    if (n->strip_left)
        while (b < e && sembed__u_is_whitespace(t->cp[b])) b++;
    if (n->strip_right)
        while (e > b && sembed__u_is_whitespace(t->cp[e - 1])) e--;
    if (b > 0) {
        memmove(t->cp, t->cp + b, (size_t)(e - b) * sizeof *t->cp);
        memmove(t->ob, t->ob + b, (size_t)(e - b) * sizeof *t->ob);
        memmove(t->oe, t->oe + b, (size_t)(e - b) * sizeof *t->oe);
    }
    t->n = e - b;
}

/* Length of a match of n's pattern at position i of t, or 0. */
static int32_t match_at(const sembed__normalizer *n, const sembed__ntext *t, int32_t i) {
    if (n->repeat) {
        int32_t k = 0;
        while (i + k < t->n && t->cp[i + k] == n->pattern[0] && (n->rep_max < 0 || k < n->rep_max))
            k++;
        return k >= n->rep_min ? k : 0;
    }
    if (i + n->pattern_n > t->n) return 0;
    for (int32_t k = 0; k < n->pattern_n; k++)
        if (t->cp[i + k] != n->pattern[k]) return 0;
    return n->pattern_n;
}

static bool replace(const sembed__normalizer *n, sembed__tok_scratch *s) {
    sembed__ntext *in = &s->text, *out = &s->tmp;
    out->n = 0;
    for (int32_t i = 0; i < in->n;) {
        int32_t m = match_at(n, in, i);
        if (!m) {
            if (!sembed__nt_reserve(out, (int64_t)out->n + 1)) return false;
            sembed__nt_put(out, in->cp[i], in->ob[i], in->oe[i]);
            i++;
            continue;
        }
        /* tokenizers removes the match and inserts the content after it: every new code point
         * takes the alignment of the match's last code point */
        if (!sembed__nt_reserve(out, (int64_t)out->n + n->content_n)) return false;
        for (int32_t k = 0; k < n->content_n; k++)
            sembed__nt_put(out, n->content[k], in->ob[i + m - 1], in->oe[i + m - 1]);
        i += m;
    }
    sembed__nt_swap(in, out);
    return true;
}

static bool prepend(const sembed__normalizer *n, sembed__tok_scratch *s) {
    sembed__ntext *in = &s->text, *out = &s->tmp;
    if (in->n == 0) return true;
    out->n = 0;
    if (!sembed__nt_reserve(out, (int64_t)in->n + n->content_n)) return false;
    for (int32_t k = 0; k < n->content_n; k++) sembed__nt_put(out, n->content[k], in->ob[0], in->oe[0]);
    for (int32_t i = 0; i < in->n; i++) sembed__nt_put(out, in->cp[i], in->ob[i], in->oe[i]);
    sembed__nt_swap(in, out);
    return true;
}

bool sembed__normalize(const sembed__normalizer *n, sembed__tok_scratch *s) {
    switch (n->type) {
    case NZ_BERT:
        if (!bert(n, s)) return false;
        return n->lowercase ? lowercase(s) : true;
    case NZ_LOWERCASE: return lowercase(s);
    case NZ_STRIP: strip(n, &s->text); return true;
    case NZ_STRIP_ACCENTS: filter_marks(&s->text); return true;
    case NZ_NF:
        if (!sembed__u_normalize(n->form, &s->text, &s->tmp)) return false;
        sembed__nt_swap(&s->text, &s->tmp);
        return true;
    case NZ_REPLACE: return replace(n, s);
    case NZ_PREPEND: return prepend(n, s);
    case NZ_PRECOMPILED:
        if (!sembed__precompiled_apply(n->precompiled, &s->text, &s->tmp)) return false;
        sembed__nt_swap(&s->text, &s->tmp);
        return true;
    case NZ_SEQUENCE:
        for (int32_t i = 0; i < n->n_children; i++)
            if (!sembed__normalize(n->children[i], s)) return false;
        return true;
    }
    return true;
}
