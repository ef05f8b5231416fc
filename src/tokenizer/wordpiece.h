/* wordpiece.h — the WordPiece model. Not the vocabulary (vocab.c). */
#ifndef SEMBED_WORDPIECE_H
#define SEMBED_WORDPIECE_H

#include "tokenizer_internal.h"

typedef struct sembed__wordpiece {
    int32_t unk_id;
    int32_t max_chars; /* max_input_chars_per_word, in code points */
    char prefix[32];   /* continuing_subword_prefix, "##" */
    size_t prefix_len;
} sembed__wordpiece;

/* Reads tokenizer.json's WordPiece model object into wp, filling vocab. */
sembed_status sembed__wordpiece_load(json_t *model, const char *where, sembed__vocab *vocab,
                                     sembed__wordpiece *wp, sembed_error *err);
/* Tokenizes word w of t, appending to s->toks. */
bool sembed__wordpiece_tokenize(const sembed__wordpiece *wp, const sembed__vocab *vocab,
                                const sembed__ntext *t, sembed__span w, sembed__tok_scratch *s);

#endif
