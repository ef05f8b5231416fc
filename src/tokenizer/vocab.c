/* vocab.c — the token string ↔ id table: an array by id and an open-addressing hash by string.
 * Not a trie: WordPiece and Unigram look substrings up by hash. */
#include "tokenizer_internal.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

sembed_status sembed__vocab_init(sembed__vocab *v, int32_t n_ids, sembed_error *err) {
    *v = (sembed__vocab){0};
    if (n_ids < 0) return sembed__err(err, SEMBED_ERR_FORMAT, "vocabulary size %d", n_ids);
    v->tokens = sembed__calloc((size_t)n_ids + 1, sizeof *v->tokens);
    if (!v->tokens) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory for %d tokens", n_ids);
    v->n_ids = n_ids;
    return SEMBED_OK;
}

sembed_status sembed__vocab_add(sembed__vocab *v, const char *tok, size_t len, int32_t id,
                                const char *file, sembed_error *err) {
    if (id < 0 || id >= v->n_ids)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: token id %d out of range [0, %d)", file, id,
                           v->n_ids);
    if (v->tokens[id])
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: id %d is given to two tokens ('%s' and '%.*s')",
                           file, id, v->tokens[id], (int)(len > 64 ? 64 : len), tok);
    char *s = sembed__malloc(len + 1);
    if (!s) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory");
    memcpy(s, tok, len);
    s[len] = 0;
    v->tokens[id] = s;
    return SEMBED_OK;
}

sembed_status sembed__vocab_finish(sembed__vocab *v, sembed_error *err) {
    uint32_t n = 16;
    while (n < (uint64_t)v->n_ids * 2 + 16) n *= 2;
    v->slots = sembed__calloc(n, sizeof *v->slots);
    if (!v->slots) return sembed__err(err, SEMBED_ERR_NOMEM, "out of memory for the vocabulary");
    v->n_slots = n;
    for (int32_t id = 0; id < v->n_ids; id++) {
        const char *t = v->tokens[id];
        if (!t) continue;
        size_t len = strlen(t);
        uint32_t i = (uint32_t)hash_bytes(t, len) & (n - 1);
        while (v->slots[i]) {
            const char *o = v->tokens[v->slots[i] - 1];
            if (strlen(o) == len && memcmp(o, t, len) == 0)
                break; /* a repeated string maps to its last id, as tokenizers' maps do */
            i = (i + 1) & (n - 1);
        }
        v->slots[i] = (uint32_t)id + 1;
    }
    return SEMBED_OK;
}

int32_t sembed__vocab_find(const sembed__vocab *v, const char *s, size_t len) {
    if (!v->slots) return -1;
    uint32_t mask = v->n_slots - 1;
    uint32_t i = (uint32_t)hash_bytes(s, len) & mask;
    while (v->slots[i]) {
        const char *t = v->tokens[v->slots[i] - 1];
        if (strnlen(t, len + 1) == len && memcmp(t, s, len) == 0) return (int32_t)v->slots[i] - 1;
        i = (i + 1) & mask;
    }
    return -1;
}

void sembed__vocab_free(sembed__vocab *v) {
    if (v->tokens)
        for (int32_t i = 0; i < v->n_ids; i++) sembed__free(v->tokens[i]);
    sembed__free(v->tokens);
    sembed__free(v->slots);
    *v = (sembed__vocab){0};
}
