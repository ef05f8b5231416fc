/* fuzz_tokenizer_json.c — libFuzzer target: the fuzz bytes are a tokenizer.json. A file that
 * loads must tokenize a few fixed texts within the output invariants. Not a text fuzzer
 * (fuzz_tokenize.c). */
#include "sembed.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond) {
    if (!cond) abort();
}

static const char *const TEXTS[] = {
    "Hello, world! [CLS] [SEP] <s> </s> <mask> [MASK] <unk>",
    ("  caf\xc3\xa9 cafe\xcc\x81 \xc4\xb0stanbul \xe4\xb8\xad\xe5\x9b\xbd \xe3\x81\x82\xe3\x81\x84 "
     "\xf0\x9f\x98\x80 \xe2\x80\x8b\xc2\xa0\xe3\x80\x80 x  y\t\n"),
    "",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "\xe2\x96\x81\xe2\x96\x81 hello\xef\xbd\xb6\xef\xbe\x9e \xe2\x84\xa2 \xef\xac\x81",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = malloc(size ? size : 1); /* exactly the input: ASan sees reads past it */
    if (!json) return 0;
    if (size) memcpy(json, data, size);
    sembed_tokenizer_params p = sembed_tokenizer_default_params();
    /* vary the parameters with the last byte, without changing how the JSON parses */
    if (size && (data[size - 1] & 3) == 1) p.add_special_tokens = 0;
    if (size && (data[size - 1] & 3) == 2) p.max_length = 7;
    sembed_tokenizer *tok = NULL;
    sembed_error err;
    sembed_status st = sembed_tokenizer_load_json(json, size, "fuzz.json", &p, &tok, &err);
    check(st == SEMBED_OK || st == SEMBED_ERR_FORMAT || st == SEMBED_ERR_UNSUPPORTED ||
          st == SEMBED_ERR_NOMEM);
    check((st == SEMBED_OK) == (tok != NULL));
    if (st != SEMBED_OK) check(err.status == st && memchr(err.msg, 0, sizeof err.msg) != NULL);
    if (tok) {
        int32_t maxlen = sembed_tokenizer_max_length(tok), nv = sembed_tokenizer_vocab_size(tok);
        check(maxlen > 0 && maxlen <= 1000000 && nv > 0);
        int32_t cap = maxlen < 256 ? maxlen : 256;
        int32_t *ids = malloc(sizeof *ids * (size_t)cap), *offs = malloc(sizeof *offs * 2 * (size_t)cap);
        uint8_t *special = malloc((size_t)cap);
        for (size_t t = 0; ids && offs && special && t < sizeof TEXTS / sizeof *TEXTS; t++) {
            size_t len = strlen(TEXTS[t]);
            sembed_tokens out = {.ids = ids, .offsets = offs, .special = special, .capacity = cap};
            st = sembed_tokenize(tok, TEXTS[t], len, &out, &err);
            check(st == SEMBED_OK || st == SEMBED_ERR_TOO_SMALL || st == SEMBED_ERR_NOMEM);
            if (st != SEMBED_OK) continue;
            check(out.n >= 0 && out.n <= cap && out.n <= maxlen && out.n <= out.n_full);
            check(out.truncated == (out.n_full > out.n));
            for (int32_t i = 0; i < out.n; i++) {
                check(ids[i] >= 0 && ids[i] < nv);
                check(offs[2 * i] >= 0 && offs[2 * i] <= offs[2 * i + 1] &&
                      (size_t)offs[2 * i + 1] <= len);
                check(special[i] <= 1);
                (void)sembed_tokenizer_id_to_token(tok, ids[i]);
            }
        }
        free(ids);
        free(offs);
        free(special);
        sembed_tokenizer_free(tok);
    }
    free(json);
    return 0;
}
