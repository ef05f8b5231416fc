/* fuzz_tokenize.c — libFuzzer target: the fuzz bytes are one text (invalid UTF-8 included) for a
 * small fixed WordPiece tokenizer with a BertNormalizer and lstrip/rstrip/single_word/normalized
 * added tokens. Checks the output invariants. Not a tokenizer.json fuzzer (fuzz_tokenizer_json.c). */
#include "sembed.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char TOKENIZER_JSON[] =
    "{\"version\":\"1.0\",\"truncation\":{\"max_length\":48},\"padding\":null,\"added_tokens\":["
    "{\"id\":0,\"content\":\"[PAD]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":1,\"content\":\"[UNK]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":2,\"content\":\"[CLS]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":3,\"content\":\"[SEP]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":4,\"content\":\"<mask>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":5,\"content\":\"<r>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":true},"
    "{\"id\":6,\"content\":\"<w>\",\"single_word\":true,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":false},"
    "{\"id\":7,\"content\":\"Zed\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
    "{\"id\":8,\"content\":\"\\u00c9t\\u00e9\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":true,\"special\":false},"
    "{\"id\":9,\"content\":\"\\u4e2d\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
    "{\"id\":80,\"content\":\"<new>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
    "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
    "\"strip_accents\":null,\"lowercase\":true},"
    "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\","
    "\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
    "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}],"
    "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},"
    "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}},"
    "\"decoder\":null,"
    "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
    "\"max_input_chars_per_word\":20,\"vocab\":{"
    "\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"<mask>\":4,\"<r>\":5,\"<w>\":6,\"zed\":7,"
    "\"ete\":8,\"\\u4e2d\":9,\"a\":10,\"b\":11,\"c\":12,\"d\":13,\"e\":14,\"h\":15,\"i\":16,\"l\":17,"
    "\"o\":18,\"s\":19,\"t\":20,\"w\":21,\"##a\":22,\"##b\":23,\"##c\":24,\"##d\":25,\"##e\":26,\"##h\":27,"
    "\"##i\":28,\"##l\":29,\"##o\":30,\"##s\":31,\"##t\":32,\"##w\":33,\"##r\":34,\"##n\":35,\"the\":36,"
    "\"hello\":37,\"world\":38,\"##ing\":39,\"##ed\":40,\",\":41,\".\":42,\"!\":43,\"?\":44,\"-\":45,"
    "\"'\":46,\"(\":47,\")\":48,\"0\":49,\"1\":50,\"##0\":51,\"##1\":52,\"\\u56fd\":53,\"\\u0436\":54,"
    "\"##\\u0436\":55,\"\\u3042\":56,\"##\\u3042\":57,\"i\\u0307\":58,\"##\\u0307\":59,\"\\u03c3\":60,"
    "\"##\\u03c2\":61,\"cafe\":62,\"\\ud83d\\ude00\":63,\"##\\ud83d\\ude00\":64,\"[\":65,\"]\":66,\"<\":67,"
    "\">\":68,\"#\":69,\"##x\":70,\"x\":71}}}";

static sembed_tokenizer *g_tok;

static void check(int cond) {
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) {
        sembed_error err;
        if (sembed_tokenizer_load_json(TOKENIZER_JSON, sizeof TOKENIZER_JSON - 1, "fuzz.json", NULL,
                                       &g_tok, &err) != SEMBED_OK)
            abort();
    }
    const sembed_tokenizer *tok = g_tok;
    int32_t maxlen = sembed_tokenizer_max_length(tok), nv = sembed_tokenizer_vocab_size(tok);
    /* the text in a buffer of exactly its size, so that ASan sees any read past it */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    int32_t ids[64], offs[128], ids2[64], offs2[128];
    uint8_t special[64];
    sembed_tokens out = {.ids = ids, .offsets = offs, .special = special, .capacity = maxlen};
    sembed_error err;
    sembed_status st = sembed_tokenize(tok, text, size, &out, &err);
    check(st == SEMBED_OK || st == SEMBED_ERR_INPUT);
    if (st == SEMBED_OK) {
        check(out.n >= 2 && out.n <= out.capacity && out.n <= maxlen && out.n <= out.n_full);
        check(out.truncated == (out.n_full > out.n));
        check(ids[0] == 2 && ids[out.n - 1] == 3 && special[0] == 1 && special[out.n - 1] == 1);
        for (int32_t i = 0; i < out.n; i++) {
            check(ids[i] >= 0 && ids[i] < nv && sembed_tokenizer_id_to_token(tok, ids[i]));
            int32_t b = offs[2 * i], e = offs[2 * i + 1];
            check(b >= 0 && b <= e && (size_t)e <= size);
            /* offsets fall on character boundaries */
            check((size_t)b == size || ((uint8_t)text[b] & 0xC0) != 0x80);
            check((size_t)e == size || ((uint8_t)text[e] & 0xC0) != 0x80);
            check(special[i] <= 1);
        }
        /* deterministic, and a smaller capacity is refused whole */
        sembed_tokens again = {.ids = ids2, .offsets = offs2, .capacity = out.n};
        check(sembed_tokenize(tok, text, size, &again, &err) == SEMBED_OK && again.n == out.n);
        check(memcmp(ids, ids2, sizeof *ids * (size_t)out.n) == 0);
        check(memcmp(offs, offs2, sizeof *offs * 2 * (size_t)out.n) == 0);
        again.capacity = out.n - 1;
        check(sembed_tokenize(tok, text, size, &again, &err) == SEMBED_ERR_TOO_SMALL && again.n == 0);
    } else {
        check(out.n == 0 || out.n <= out.capacity);
    }
    free(text);
    return 0;
}
