/* tokenizer_internal.h — the pieces of the tokenizer pipeline and the data they pass along.
 * Not public: include/sembed.h is the API. The pipeline follows Hugging Face `tokenizers`:
 * added tokens → normalizer → pre-tokenizer → model → truncation → post-processor.
 *
 * Dimension letters: C code points of a (normalized) text, W words (spans), T tokens.
 *
 * Offsets follow tokenizers' NormalizedString: every normalized code point remembers the byte
 * range [ob, oe) of the original text that it came from. A replaced code point keeps the range
 * of the one it replaces; an inserted one takes the range of the code point before it; a
 * token's offsets are the first code point's ob and the last one's oe. */
#ifndef SEMBED_TOKENIZER_INTERNAL_H
#define SEMBED_TOKENIZER_INTERNAL_H

#include "../common.h"

#include <jansson.h>

/* ---- a normalized text with its alignment to the original bytes ------------------------ */

typedef struct sembed__ntext {
    uint32_t *cp; /* (cap) code points */
    int32_t *ob;  /* (cap) original byte begin of each code point */
    int32_t *oe;  /* (cap) original byte end */
    int32_t n, cap;
} sembed__ntext;

bool sembed__nt_reserve(sembed__ntext *t, int64_t cap);
static inline void sembed__nt_put(sembed__ntext *t, uint32_t cp, int32_t ob, int32_t oe) {
    /* callers reserve first */
    t->cp[t->n] = cp;
    t->ob[t->n] = ob;
    t->oe[t->n] = oe;
    t->n++;
}
void sembed__nt_free(sembed__ntext *t);
static inline void sembed__nt_swap(sembed__ntext *a, sembed__ntext *b) {
    sembed__ntext t = *a;
    *a = *b;
    *b = t;
}

/* A word: code points [b, e) of an ntext. */
typedef struct sembed__span {
    int32_t b, e;
} sembed__span;

typedef struct sembed__spans {
    sembed__span *v;
    int32_t n, cap;
} sembed__spans;

bool sembed__spans_push(sembed__spans *s, int32_t b, int32_t e);
void sembed__spans_free(sembed__spans *s);

/* Tokens with their original byte offsets. */
typedef struct sembed__toks {
    int32_t *id;      /* (cap) */
    int32_t *ob, *oe; /* (cap) */
    uint8_t *special; /* (cap) */
    int32_t n, cap;
} sembed__toks;

bool sembed__toks_reserve(sembed__toks *t, int64_t extra);
static inline void sembed__toks_put(sembed__toks *t, int32_t id, int32_t ob, int32_t oe,
                                    uint8_t special) {
    t->id[t->n] = id;
    t->ob[t->n] = ob;
    t->oe[t->n] = oe;
    t->special[t->n] = special;
    t->n++;
}
void sembed__toks_free(sembed__toks *t);

/* Scratch space of one tokenizing thread; grows, never shrinks; freed with the thread. */
typedef struct sembed__tok_scratch {
    sembed__ntext text, tmp;
    sembed__spans words, words_tmp;
    sembed__toks toks;
    sembed__ntext raw;     /* the decoded input */
    sembed__ntext seg;     /* a normalized piece being split at normalized added tokens */
    bool first_segment;    /* the piece being pre-tokenized starts at byte 0 of the input */
    /* for the models */
    char *str;
    size_t str_cap;
    double *score; /* unigram Viterbi: (C+1) best scores */
    int32_t *prev; /* (C+1) best previous position */
    int32_t *piece; /* (C+1) piece id ending at each position (-1: unknown) */
    int32_t *bytepos; /* (C+1) byte offset of each code point in the UTF-8 word */
    int64_t model_cap;
} sembed__tok_scratch;

void sembed__scratch_free(sembed__tok_scratch *s);
/* Grows score, prev, piece and bytepos to at least n entries (model_cap). */
bool sembed__scratch_model_reserve(sembed__tok_scratch *s, int64_t n);

/* ---- vocabulary: token string ↔ id ------------------------------------------------------ */

typedef struct sembed__vocab {
    char **tokens;      /* (n_ids) NUL-terminated UTF-8, NULL for ids that have no token */
    int32_t n_ids;      /* largest id + 1 */
    uint32_t *slots;    /* (n_slots) open addressing: id + 1, 0 = empty */
    uint32_t n_slots;   /* power of two */
} sembed__vocab;

/* Adds token → id. Returns SEMBED_ERR_FORMAT (message names `file`) on a duplicate token or
 * a duplicate id, and SEMBED_ERR_NOMEM. */
sembed_status sembed__vocab_init(sembed__vocab *v, int32_t n_ids, sembed_error *err);
sembed_status sembed__vocab_add(sembed__vocab *v, const char *tok, size_t len, int32_t id,
                                const char *file, sembed_error *err);
/* Finalizes the hash table once all tokens are added. */
sembed_status sembed__vocab_finish(sembed__vocab *v, sembed_error *err);
int32_t sembed__vocab_find(const sembed__vocab *v, const char *s, size_t len);
void sembed__vocab_free(sembed__vocab *v);

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* Decodes `len` bytes of UTF-8 into t (replacing its content), with each code point's byte
 * range [ob, oe) shifted by `base`. Returns the byte offset of the first invalid sequence, or
 * -1 when the text is valid. */
int64_t sembed__utf8_decode(const char *s, size_t len, int32_t base, sembed__ntext *t);
/* Encodes one code point; returns its length (1-4). buf needs 4 bytes. */
int sembed__utf8_put(uint32_t cp, char *buf);

/* ---- Unicode properties as tokenizers sees them (unicode.c) --------------------------------
 * From utf8proc, corrected where tokenizers' own Unicode tables differ (see unicode.c). */
bool sembed__u_is_whitespace(uint32_t c); /* Rust char::is_whitespace (White_Space) */
bool sembed__u_is_control(uint32_t c);    /* tokenizers' BERT is_control: Cc Cf Co, not \t\n\r */
bool sembed__u_is_punctuation(uint32_t c); /* ASCII punctuation or Unicode P* */
bool sembed__u_is_mn(uint32_t c);          /* nonspacing mark */
bool sembed__u_is_chinese(uint32_t c);     /* BERT's CJK ideograph ranges */
bool sembed__u_is_alnum_word(uint32_t c);  /* regex \w: alphabetic, digit, mark, connector */
/* Full lowercase mapping (Rust char::to_lowercase); returns the number of code points (1-3). */
int sembed__u_lower(uint32_t c, uint32_t out[3]);
/* Unicode normalization of a whole ntext, alignments kept as tokenizers keeps them. */
typedef enum { SEMBED__NFD, SEMBED__NFKD, SEMBED__NFC, SEMBED__NFKC } sembed__nf;
bool sembed__u_normalize(sembed__nf form, const sembed__ntext *in, sembed__ntext *out);

/* ---- pipeline components ------------------------------------------------------------------ */

typedef struct sembed__normalizer sembed__normalizer;
typedef struct sembed__pretok sembed__pretok;
typedef struct sembed__unigram sembed__unigram;
typedef struct sembed__precompiled sembed__precompiled;

/* Each loader reads one JSON object of tokenizer.json; `where` names it in errors
 * ("tokenizer.json: normalizer.normalizers[1]"). */
sembed_status sembed__normalizer_load(json_t *j, const char *where, sembed__normalizer **out,
                                      sembed_error *err);
void sembed__normalizer_free(sembed__normalizer *n);
/* Normalizes s->text in place (s->tmp is scratch). */
bool sembed__normalize(const sembed__normalizer *n, sembed__tok_scratch *s);

sembed_status sembed__pretok_load(json_t *j, const char *where, sembed__pretok **out,
                                  sembed_error *err);
void sembed__pretok_free(sembed__pretok *p);
/* Splits s->text into s->words (which holds one span on entry: the whole text); may rewrite
 * s->text (Metaspace does). */
bool sembed__pretokenize(const sembed__pretok *p, sembed__tok_scratch *s);

/* SentencePiece's precompiled charsmap (normalizers/precompiled.rs). */
sembed_status sembed__precompiled_load(const char *b64, const char *where,
                                       sembed__precompiled **out, sembed_error *err);
void sembed__precompiled_free(sembed__precompiled *p);
/* Normalizes in into out (replacing out's content). */
bool sembed__precompiled_apply(const sembed__precompiled *p, const sembed__ntext *in,
                               sembed__ntext *out);

/* Metaspace pre-tokenizer (pre_tokenizers/metaspace.rs). prepend: 0 never, 1 first, 2 always. */
typedef struct sembed__metaspace {
    uint32_t replacement;
    int prepend_scheme;
    bool split;
} sembed__metaspace;
/* Applies Metaspace to every word of s->words (rewriting s->text and s->words). `first` is
 * true when the text is the first piece of the input (for prepend_scheme "first"). */
bool sembed__metaspace_apply(const sembed__metaspace *m, bool first, sembed__tok_scratch *s);

/* Unigram model (models/unigram/model.rs). */
sembed_status sembed__unigram_load(json_t *model, const char *where, sembed__vocab *vocab,
                                   sembed__unigram **out, sembed_error *err);
void sembed__unigram_free(sembed__unigram *u);
/* Tokenizes word w of text, appending tokens (with original offsets) to s->toks. */
bool sembed__unigram_tokenize(const sembed__unigram *u, const sembed__vocab *vocab,
                              const sembed__ntext *text, sembed__span w, sembed__tok_scratch *s);

#endif
