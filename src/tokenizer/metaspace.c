/* metaspace.c — the Metaspace pre-tokenizer (tokenizers' pre_tokenizers/metaspace.rs): ' ' → the
 * replacement char, an optional prepended one, and a split that opens a word at each
 * replacement char. Not the Metaspace decoder. */
#include "tokenizer_internal.h"

/* Per word, as tokenizers does per split:
 *  - NormalizedString::replace(' ', "▁"): the new char takes the alignment of the space;
 *  - prepend("▁") (scheme always, or first when the word starts at original byte 0), unless the
 *    word already starts with it: the new char takes the alignment of the word's first char; an
 *    empty word gets nothing;
 *  - split MergedWithNext: a word begins at every replacement char; empty words vanish.
 * The rewritten words go to s->tmp / s->words_tmp, then swap in. */
bool sembed__metaspace_apply(const sembed__metaspace *m, bool first, sembed__tok_scratch *s) {
    const sembed__ntext *in = &s->text;
    sembed__ntext *out = &s->tmp;
    sembed__spans *words = &s->words_tmp;
    const uint32_t rep = m->replacement;
    out->n = 0;
    words->n = 0;
    for (int32_t w = 0; w < s->words.n; w++) {
        sembed__span sp = s->words.v[w];
        if (sp.e <= sp.b) continue;
        if (!sembed__nt_reserve(out, (int64_t)out->n + (sp.e - sp.b) + 1)) return false;
        int32_t start = out->n;
        /* offsets_original().0 == 0: the piece starts the input and this word starts the piece
         * (or, split by an earlier pre-tokenizer, starts at original byte 0) */
        bool at_zero = first && (sp.b == 0 || in->ob[sp.b] == 0);
        bool prepend = m->prepend_scheme == 2 || (m->prepend_scheme == 1 && at_zero);
        if (prepend && in->cp[sp.b] != ' ' && in->cp[sp.b] != rep)
            sembed__nt_put(out, rep, in->ob[sp.b], in->oe[sp.b]);
        for (int32_t i = sp.b; i < sp.e; i++)
            sembed__nt_put(out, in->cp[i] == ' ' ? rep : in->cp[i], in->ob[i], in->oe[i]);
        if (!m->split) {
            if (!sembed__spans_push(words, start, out->n)) return false;
            continue;
        }
        int32_t b = start;
        for (int32_t i = start + 1; i < out->n; i++) {
            if (out->cp[i] != rep) continue;
            if (!sembed__spans_push(words, b, i)) return false;
            b = i;
        }
        if (!sembed__spans_push(words, b, out->n)) return false;
    }
    sembed__nt_swap(&s->text, &s->tmp);
    sembed__spans t = s->words;
    s->words = s->words_tmp;
    s->words_tmp = t;
    return true;
}
