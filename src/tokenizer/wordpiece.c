/* wordpiece.c — the WordPiece model (tokenizers' models/wordpiece): greedy longest match with a
 * continuing-subword prefix; a word longer than max_input_chars_per_word, or with any part that
 * matches nothing, becomes one unknown token. Not the BERT normalizer or pre-tokenizer. */
#include "wordpiece.h"

#include "json_util.h"

sembed_status sembed__wordpiece_load(json_t *model, const char *where, sembed__vocab *vocab,
                                     sembed__wordpiece *wp, sembed_error *err) {
    *wp = (sembed__wordpiece){0};
    json_t *v = json_object_get(model, "vocab");
    if (!json_is_object(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab: expected an object of token: id",
                           where);
    size_t n = json_object_size(v);
    if (n == 0) return sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab: empty vocabulary", where);
    if (n > 10000000)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.vocab: %zu tokens is more than 10,000,000",
                           where, n);
    /* ids must be a permutation-free subset of [0, n): find the largest first */
    json_int_t max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= 10000000)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s.vocab[\"%.64s\"]: expected an id in [0, 10000000)", where, key);
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    sembed_status st = sembed__vocab_init(vocab, (int32_t)max_id + 1, err);
    if (st) return st;
    char file[300];
    snprintf(file, sizeof file, "%s.vocab", where);
    json_object_foreach(v, key, val) {
        st = sembed__vocab_add(vocab, key, strlen(key), (int32_t)json_integer_value(val), file, err);
        if (st) return st;
    }
    if ((st = sembed__vocab_finish(vocab, err))) return st;

    const char *unk = NULL, *prefix = "##";
    if ((st = sembed__json_str(model, "unk_token", where, &unk, err))) return st;
    json_t *p = json_object_get(model, "continuing_subword_prefix");
    if (p && !json_is_null(p)) {
        if ((st = sembed__json_str(model, "continuing_subword_prefix", where, &prefix, err)))
            return st;
    }
    int64_t maxc = 100;
    if ((st = sembed__json_int(model, "max_input_chars_per_word", where, false, 100, 0, INT32_MAX,
                               &maxc, err)))
        return st;
    wp->unk_id = sembed__vocab_find(vocab, unk, strlen(unk));
    if (wp->unk_id < 0)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s.unk_token: the unknown token \"%.64s\" is not in the vocabulary",
                           where, unk);
    wp->prefix_len = strlen(prefix);
    if (wp->prefix_len >= sizeof wp->prefix)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.continuing_subword_prefix: too long", where);
    memcpy(wp->prefix, prefix, wp->prefix_len + 1);
    wp->max_chars = (int32_t)maxc;
    return SEMBED_OK;
}

bool sembed__wordpiece_tokenize(const sembed__wordpiece *wp, const sembed__vocab *vocab,
                                const sembed__ntext *t, sembed__span w, sembed__tok_scratch *s) {
    int32_t nc = w.e - w.b;
    if (!sembed__toks_reserve(&s->toks, nc > 0 ? nc : 1)) return false;
    if (nc > wp->max_chars) {
        sembed__toks_put(&s->toks, wp->unk_id, t->ob[w.b], t->oe[w.e - 1], 0);
        return true;
    }
    /* the word as UTF-8, with the byte position of each code point; then room for the prefix
     * and the rest of the word from the current start */
    size_t need = (size_t)nc * 8 + wp->prefix_len + 1;
    if (need > s->str_cap) {
        char *p = sembed__realloc(s->str, need);
        if (!p) return false;
        s->str = p;
        s->str_cap = need;
    }
    if ((int64_t)nc + 1 > s->model_cap && !sembed__scratch_model_reserve(s, (int64_t)nc + 1))
        return false;
    char *word = s->str;
    int32_t *pos = s->bytepos;
    size_t len = 0;
    for (int32_t i = 0; i < nc; i++) {
        pos[i] = (int32_t)len;
        len += (size_t)sembed__utf8_put(t->cp[w.b + i], word + len);
    }
    pos[nc] = (int32_t)len;
    char *cont = word + len; /* prefix + word[pos[start]..] */
    memcpy(cont, wp->prefix, wp->prefix_len);
    int32_t n_before = s->toks.n;
    int32_t start = 0;
    while (start < nc) {
        int32_t end = nc, id = -1;
        const char *base = word + pos[start];
        size_t extra = 0;
        if (start > 0) {
            memcpy(cont + wp->prefix_len, word + pos[start], len - (size_t)pos[start]);
            base = cont;
            extra = wp->prefix_len;
        }
        while (end > start) {
            id = sembed__vocab_find(vocab, base, (size_t)(pos[end] - pos[start]) + extra);
            if (id >= 0) break;
            end--;
        }
        if (id < 0) {
            s->toks.n = n_before;
            sembed__toks_put(&s->toks, wp->unk_id, t->ob[w.b], t->oe[w.e - 1], 0);
            return true;
        }
        sembed__toks_put(&s->toks, id, t->ob[w.b + start], t->oe[w.b + end - 1], 0);
        start = end;
    }
    return true;
}
