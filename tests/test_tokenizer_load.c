/* test_tokenizer_load.c — hostile tokenizer files: every prefix of a valid tokenizer.json, bad
 * JSON, wrong types and ranges for every field the loader reads, deep nesting, unknown component
 * types, broken vocab.txt folders, and allocation failures during load and tokenization. Each
 * case checks the status and that the message names the file and the field. Not a test of ids
 * (test_tokenizer_unit.c and test_tokenizer_golden.c are). */
#include "common.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a small valid tokenizer.json, assembled from components that cases replace ---------- */

#define ADDED_OK                                                                                \
    "[{\"id\":0,\"content\":\"[PAD]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false," \
    "\"normalized\":false,\"special\":true},"                                                   \
    "{\"id\":1,\"content\":\"[UNK]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"  \
    "\"normalized\":false,\"special\":true},"                                                   \
    "{\"id\":2,\"content\":\"[CLS]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"  \
    "\"normalized\":false,\"special\":true},"                                                   \
    "{\"id\":3,\"content\":\"[SEP]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"  \
    "\"normalized\":false,\"special\":true},"                                                   \
    "{\"id\":7,\"content\":\"<m>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,"      \
    "\"normalized\":false,\"special\":true},"                                                   \
    "{\"id\":4,\"content\":\"HELLO\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,"   \
    "\"normalized\":true,\"special\":false}]"
#define NORM_OK                                                                                 \
    "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"           \
    "\"strip_accents\":null,\"lowercase\":true}"
#define PRE_OK "{\"type\":\"BertPreTokenizer\"}"
#define SINGLE_OK                                                                               \
    "[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}," \
    "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}]"
#define SPECIALS_OK                                                                             \
    "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},"                         \
    "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}"
#define POST_OK                                                                                 \
    "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":" SPECIALS_OK "}"
#define VOCAB_OK                                                                                \
    "{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"hello\":4,\"##s\":5,\"world\":6,"       \
    "\"<m>\":7,\"\\u4e2d\":8,\"cafe\":9}"
#define WP(vocab)                                                                               \
    "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","     \
    "\"max_input_chars_per_word\":100,\"vocab\":" vocab "}"
#define MODEL_OK WP(VOCAB_OK)

/* The document with each component given (NULL: the valid default). */
static char *doc(const char *model, const char *added, const char *norm, const char *pre,
                 const char *post) {
    const char *fmt = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
                      "\"added_tokens\":%s,\"normalizer\":%s,\"pre_tokenizer\":%s,"
                      "\"post_processor\":%s,\"decoder\":null,\"model\":%s}";
    model = model ? model : MODEL_OK;
    added = added ? added : ADDED_OK;
    norm = norm ? norm : NORM_OK;
    pre = pre ? pre : PRE_OK;
    post = post ? post : POST_OK;
    size_t n = strlen(fmt) + strlen(model) + strlen(added) + strlen(norm) + strlen(pre) +
               strlen(post) + 1;
    char *s = malloc(n);
    snprintf(s, n, fmt, added, norm, pre, post, model);
    return s;
}

/* Loads `json` as "bad.json" and checks the status and that the message holds "bad.json" and
 * each of the `want` strings. Returns the tokenizer when it loaded (caller frees). */
static sembed_tokenizer *expect(const char *what, const char *json, size_t len,
                                sembed_status want, const char *field) {
    sembed_tokenizer *tok = (sembed_tokenizer *)(uintptr_t)1; /* must be reset */
    sembed_error err = {0};
    sembed_status st = sembed_tokenizer_load_json(json, len, "bad.json", NULL, &tok, &err);
    CHECKF(st == want, "%s: status %d (%s), want %d: %s", what, st, sembed_status_str(st), want,
           err.msg);
    if (want != SEMBED_OK) {
        CHECKF(tok == NULL, "%s: *out not NULL on failure", what);
        CHECKF(err.status == st, "%s: err.status %d", what, err.status);
        CHECKF(strstr(err.msg, "bad.json") != NULL, "%s: message does not name the file: %s",
               what, err.msg);
        CHECKF(!field || strstr(err.msg, field) != NULL,
               "%s: message does not name \"%s\": %s", what, field, err.msg);
    }
    if (st != SEMBED_OK) return NULL;
    return tok;
}

static void expect_doc(const char *what, char *json, sembed_status want, const char *field) {
    sembed_tokenizer *tok = expect(what, json, strlen(json), want, field);
    if (tok) {
        /* a tokenizer that loads must also tokenize */
        int32_t ids[64];
        sembed_tokens out = {.ids = ids, .capacity = 64};
        sembed_error err = {0};
        const char *text = "Hello <m> world, cafe\xcc\x81 \xe4\xb8\xad HELLOs [SEP]";
        sembed_status st = sembed_tokenize(tok, text, strlen(text), &out, &err);
        CHECKF(st == SEMBED_OK, "%s: tokenize: %s", what, err.msg);
        sembed_tokenizer_free(tok);
    }
    free(json);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_valid_and_prefixes(void) {
    char *json = doc(NULL, NULL, NULL, NULL, NULL);
    size_t len = strlen(json);
    sembed_tokenizer *tok = expect("valid", json, len, SEMBED_OK, NULL);
    if (tok) {
        CHECK(sembed_tokenizer_vocab_size(tok) == 10);
        CHECK(sembed_tokenizer_max_length(tok) == 512);
        int32_t ids[16], offs[32];
        sembed_tokens out = {.ids = ids, .offsets = offs, .capacity = 16};
        sembed_error err = {0};
        /* [CLS] hello <m> world [SEP]; "HELLO" is a normalized added token: id 4 */
        CHECK(sembed_tokenize(tok, "Hello <m> world", 15, &out, &err) == SEMBED_OK);
        CHECK(out.n == 5 && ids[0] == 2 && ids[1] == 4 && ids[2] == 7 && ids[3] == 6 && ids[4] == 3);
        sembed_tokenizer_free(tok);
    }
    /* every proper prefix is invalid JSON: FORMAT, never a crash or a leak */
    for (size_t n = 0; n < len; n++) {
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu bytes", n);
        char *p = malloc(n ? n : 1); /* exactly n bytes: ASan sees any read past the end */
        memcpy(p, json, n);
        expect(what, p, n, SEMBED_ERR_FORMAT, "invalid JSON");
        free(p);
    }
    /* and every single-byte deletion fails cleanly or loads */
    for (size_t n = 0; n < len; n++) {
        char *p = malloc(len);
        memcpy(p, json, n);
        memcpy(p + n, json + n + 1, len - n - 1);
        sembed_tokenizer *t = NULL;
        sembed_error err = {0};
        sembed_status st = sembed_tokenizer_load_json(p, len - 1, "bad.json", NULL, &t, &err);
        CHECKF(st == SEMBED_OK || st == SEMBED_ERR_FORMAT || st == SEMBED_ERR_UNSUPPORTED,
               "deletion at %zu: status %d: %s", n, st, err.msg);
        CHECKF(st == SEMBED_OK || strstr(err.msg, "bad.json"), "deletion at %zu: %s", n, err.msg);
        sembed_tokenizer_free(t);
        free(p);
    }
    free(json);
}

static void test_invalid_json(void) {
    static const struct {
        const char *what, *json;
        size_t len; /* 0: strlen */
    } cases[] = {
        {"empty", "", 0},
        {"whitespace", "  \n ", 0},
        {"null", "null", 0},
        {"number", "42", 0},
        {"string", "\"tokenizer\"", 0},
        {"single brace", "{", 0},
        {"trailing garbage", "{\"model\":null}x", 0},
        {"two documents", "{}{}", 0},
        {"trailing comma", "{\"model\":{},}", 0},
        {"single quotes", "{'model':{}}", 0},
        {"comment", "{/* c */\"model\":{}}", 0},
        {"NaN", "{\"model\":NaN}", 0},
        {"unterminated string", "{\"model\":\"abc}", 0},
        {"bad escape", "{\"model\":\"\\q\"}", 0},
        {"lone surrogate escape", "{\"model\":{\"vocab\":{\"\\ud800\":0}}}", 0},
        {"NUL in a key", "{\"mo\\u0000del\":{}}", 0},
        {"raw NUL byte", "{\"model\":\0{}}", 13},
        {"invalid UTF-8 bytes", "{\"model\":{\"vocab\":{\"\xC0\x80\":0}}}", 0},
        {"UTF-8 BOM", "\xEF\xBB\xBF{\"model\":{}}", 0},
        {"integer too big", "{\"model\":{\"vocab\":{\"a\":99999999999999999999999}}}", 0},
        {"real overflow", "{\"model\":{\"vocab\":{\"a\":1e400}}}", 0},
        {"duplicate top-level key", "{\"model\":{},\"model\":{}}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].json);
        expect(cases[i].what, cases[i].json, len, SEMBED_ERR_FORMAT, NULL);
    }
    expect("top-level array", "[]", 2, SEMBED_ERR_FORMAT, "JSON object");
    expect("no model", "{}", 2, SEMBED_ERR_FORMAT, "model");
    /* duplicate keys inside the vocabulary and inside a component */
    expect_doc("duplicate vocab key", doc(WP("{\"[UNK]\":0,\"a\":1,\"a\":2}"), "[]", NULL, NULL, "null"),
               SEMBED_ERR_FORMAT, "duplicate");
    expect_doc("duplicate normalizer key",
               doc(NULL, NULL, "{\"type\":\"Lowercase\",\"type\":\"NFD\"}", NULL, NULL),
               SEMBED_ERR_FORMAT, "duplicate");
    /* API misuse */
    sembed_tokenizer *tok = NULL;
    sembed_error err = {0};
    CHECK(sembed_tokenizer_load_json(NULL, 5, "x", NULL, &tok, &err) == SEMBED_ERR_INVALID_ARG);
    CHECK(sembed_tokenizer_load_json("{}", 2, "x", NULL, NULL, &err) == SEMBED_ERR_INVALID_ARG);
    CHECK(sembed_tokenizer_load_json(NULL, 0, "x", NULL, &tok, &err) == SEMBED_ERR_FORMAT);
    CHECK(sembed_tokenizer_load_json("{", 1, NULL, NULL, &tok, NULL) == SEMBED_ERR_FORMAT);
    CHECK(sembed_tokenizer_load(NULL, NULL, &tok, &err) == SEMBED_ERR_INVALID_ARG);
}

/* Nesting far beyond any real file: jansson's depth limit turns it into invalid JSON. */
static char *nested(const char *open, const char *close, int depth, const char *inner) {
    size_t n = (strlen(open) + strlen(close)) * (size_t)depth + strlen(inner) + 1;
    char *s = malloc(n), *p = s;
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", open);
    p += sprintf(p, "%s", inner);
    for (int i = 0; i < depth; i++) p += sprintf(p, "%s", close);
    return s;
}

static void test_nesting(void) {
    char *arr = nested("[", "]", 10000, "0");
    char *obj = nested("{\"a\":", "}", 10000, "0");
    expect_doc("arrays 10000 deep as decoder", doc(NULL, arr, NULL, NULL, NULL), SEMBED_ERR_FORMAT,
               "invalid JSON");
    expect_doc("objects 10000 deep as post_processor", doc(NULL, NULL, NULL, NULL, obj),
               SEMBED_ERR_FORMAT, "invalid JSON");
    char *top = nested("[", "]", 10000, "");
    expect("top-level arrays 10000 deep", top, strlen(top), SEMBED_ERR_FORMAT, "invalid JSON");
    free(top);
    free(arr);
    free(obj);
    /* normalizer Sequences 10000 deep: beyond the parser's limit */
    char *seq = nested("{\"type\":\"Sequence\",\"normalizers\":[", "]}", 10000,
                       "{\"type\":\"Lowercase\"}");
    expect_doc("normalizer Sequence 10000 deep", doc(NULL, NULL, seq, NULL, NULL),
               SEMBED_ERR_FORMAT, "invalid JSON");
    free(seq);
    /* ... and 1000 deep, within it: loads (recursion of that depth is fine) and tokenizes */
    seq = nested("{\"type\":\"Sequence\",\"normalizers\":[", "]}", 1000, "{\"type\":\"Lowercase\"}");
    expect_doc("normalizer Sequence 1000 deep", doc(NULL, NULL, seq, NULL, NULL), SEMBED_OK, NULL);
    free(seq);
    seq = nested("{\"type\":\"Sequence\",\"pretokenizers\":[", "]}", 1000,
                 "{\"type\":\"BertPreTokenizer\"}");
    expect_doc("pre_tokenizer Sequence 1000 deep", doc(NULL, NULL, NULL, seq, NULL), SEMBED_OK, NULL);
    free(seq);
    /* a deep bad child is named with its path */
    seq = nested("{\"type\":\"Sequence\",\"normalizers\":[", "]}", 3, "{\"type\":\"Nope\"}");
    expect_doc("normalizer Sequence with unknown leaf", doc(NULL, NULL, seq, NULL, NULL),
               SEMBED_ERR_UNSUPPORTED, "normalizer.normalizers[0].normalizers[0].normalizers[0]");
    free(seq);
}

typedef struct field_case {
    const char *what;
    const char *model, *added, *norm, *pre, *post; /* NULL: the valid default */
    sembed_status want;
    const char *field; /* must appear in the message */
} field_case;

#define F SEMBED_ERR_FORMAT
#define U SEMBED_ERR_UNSUPPORTED
#define OK SEMBED_OK
#define ADD1(fields) "[{" fields "}]"
#define TOK_FIELDS "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true"

static const field_case FIELD_CASES[] = {
    /* model */
    {"model null", "null", 0, 0, 0, 0, F, "model"},
    {"model a string", "\"WordPiece\"", 0, 0, 0, 0, F, "model"},
    {"model an array", "[]", 0, 0, 0, 0, F, "model"},
    {"model type unknown", "{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}", 0, 0, 0, 0, U, "model.type"},
    {"model type a number", "{\"type\":3,\"vocab\":{}}", 0, 0, 0, 0, F, "model.type"},
    {"model type missing, not inferable", "{\"vocab\":{}}", 0, 0, 0, 0, F, "model.type"},
    {"model type inferred as WordPiece",
     "{\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":100,\"vocab\":" VOCAB_OK "}", 0, 0, 0,
     0, OK, NULL},
    {"vocab missing", "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\"}", 0, 0, 0, 0, F, "model.vocab"},
    {"vocab an array", WP("[[\"[UNK]\",0]]"), 0, 0, 0, 0, F, "model.vocab"},
    {"vocab a string", WP("\"[UNK]\""), 0, 0, 0, 0, F, "model.vocab"},
    {"vocab empty", WP("{}"), "[]", 0, 0, "null", F, "model.vocab"},
    {"vocab id a string", WP("{\"[UNK]\":\"1\"}"), "[]", 0, 0, "null", F, "model.vocab[\"[UNK]\"]"},
    {"vocab id null", WP("{\"[UNK]\":null}"), "[]", 0, 0, "null", F, "model.vocab[\"[UNK]\"]"},
    {"vocab id true", WP("{\"[UNK]\":true}"), "[]", 0, 0, "null", F, "model.vocab[\"[UNK]\"]"},
    {"vocab id -1", WP("{\"[UNK]\":0,\"a\":-1}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id 2^31", WP("{\"[UNK]\":0,\"a\":2147483648}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id 2^63-1", WP("{\"[UNK]\":0,\"a\":9223372036854775807}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id -2^63", WP("{\"[UNK]\":0,\"a\":-9223372036854775808}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id 1e300", WP("{\"[UNK]\":0,\"a\":1e300}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id 1.0", WP("{\"[UNK]\":0,\"a\":1.0}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab id 10^7", WP("{\"[UNK]\":0,\"a\":10000000}"), "[]", 0, 0, "null", F, "model.vocab[\"a\"]"},
    {"vocab two tokens one id", WP("{\"[UNK]\":0,\"a\":1,\"b\":1}"), "[]", 0, 0, "null", F, "model.vocab"},
    {"vocab with holes loads", WP("{\"[UNK]\":0,\"hello\":5}"), "[]", 0, 0, "null", OK, NULL},
    {"unk_token a number",
     "{\"type\":\"WordPiece\",\"unk_token\":1,\"vocab\":" VOCAB_OK "}", 0, 0, 0, 0, F, "model.unk_token"},
    {"unk_token missing", "{\"type\":\"WordPiece\",\"vocab\":" VOCAB_OK "}", 0, 0, 0, 0, F, "model.unk_token"},
    {"unk_token not in vocab",
     "{\"type\":\"WordPiece\",\"unk_token\":\"<unk>\",\"vocab\":" VOCAB_OK "}", 0, 0, 0, 0, F, "model.unk_token"},
    {"vocab without [UNK]", WP("{\"[CLS]\":0,\"[SEP]\":1,\"hello\":2}"), "[]", 0, 0, "null", F, "model.unk_token"},
    {"continuing_subword_prefix a number",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":5,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, F, "model.continuing_subword_prefix"},
    {"continuing_subword_prefix too long",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":"
     "\"################################################################################\","
     "\"vocab\":" VOCAB_OK "}", 0, 0, 0, 0, F, "model.continuing_subword_prefix"},
    {"max_input_chars_per_word -1",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":-1,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, F, "model.max_input_chars_per_word"},
    {"max_input_chars_per_word 2^31",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":2147483648,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, F, "model.max_input_chars_per_word"},
    {"max_input_chars_per_word 1e300",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":1e300,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, F, "model.max_input_chars_per_word"},
    {"max_input_chars_per_word a string",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":\"100\",\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, F, "model.max_input_chars_per_word"},
    {"max_input_chars_per_word 2^31-1 loads",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":2147483647,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, OK, NULL},
    {"max_input_chars_per_word 0 loads",
     "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"max_input_chars_per_word\":0,\"vocab\":" VOCAB_OK "}",
     0, 0, 0, 0, OK, NULL},
    {"Unigram vocab an object", "{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":{\"a\":0}}", "[]", 0, 0,
     "null", F, "model.vocab"},

    /* added_tokens */
    {"added_tokens an object", 0, "{}", 0, 0, 0, F, "added_tokens"},
    {"added_tokens a string", 0, "\"[CLS]\"", 0, 0, 0, F, "added_tokens"},
    {"added_tokens entry a number", 0, "[1]", 0, 0, 0, F, "added_tokens[0]"},
    {"added_tokens entry an array", 0, "[[]]", 0, 0, 0, F, "added_tokens[0]"},
    {"added_tokens content a number", 0, ADD1("\"id\":0,\"content\":5," TOK_FIELDS), 0, 0, 0, F,
     "added_tokens[0].content"},
    {"added_tokens content missing", 0, ADD1("\"id\":0," TOK_FIELDS), 0, 0, 0, F, "added_tokens[0].content"},
    {"added_tokens id a string", 0, ADD1("\"id\":\"0\",\"content\":\"[PAD]\"," TOK_FIELDS), 0, 0, 0,
     F, "added_tokens[0].id"},
    {"added_tokens id missing", 0, ADD1("\"content\":\"[PAD]\"," TOK_FIELDS), 0, 0, 0, F, "added_tokens[0].id"},
    {"added_tokens id -1", 0, ADD1("\"id\":-1,\"content\":\"[PAD]\"," TOK_FIELDS), 0, 0, 0, F,
     "added_tokens[0].id"},
    {"added_tokens id 2^31", 0, ADD1("\"id\":2147483648,\"content\":\"[PAD]\"," TOK_FIELDS), 0, 0, 0,
     F, "added_tokens[0].id"},
    {"added_tokens id 1e300", 0, ADD1("\"id\":1e300,\"content\":\"[PAD]\"," TOK_FIELDS), 0, 0, 0, F,
     "added_tokens[0].id"},
    {"added_tokens id 2^31-2", 0, ADD1("\"id\":2147483646,\"content\":\"<x>\"," TOK_FIELDS), 0, 0,
     0, F, "added_tokens"},
    {"added_tokens id 2*10^7", 0, ADD1("\"id\":20000000,\"content\":\"<x>\"," TOK_FIELDS), 0, 0, 0,
     F, "added_tokens"},
    {"added_tokens special a string", 0,
     ADD1("\"id\":0,\"content\":\"[PAD]\",\"special\":\"yes\""), 0, 0, 0, F, "added_tokens[0].special"},
    {"added_tokens lstrip a number", 0, ADD1("\"id\":0,\"content\":\"[PAD]\",\"lstrip\":1"), 0, 0,
     0, F, "added_tokens[0].lstrip"},
    {"added_tokens rstrip null", 0, ADD1("\"id\":0,\"content\":\"[PAD]\",\"rstrip\":null"), 0, 0,
     0, F, "added_tokens[0].rstrip"},
    {"added_tokens normalized an array", 0,
     ADD1("\"id\":0,\"content\":\"[PAD]\",\"normalized\":[]"), 0, 0, 0, F, "added_tokens[0].normalized"},
    {"added_tokens single_word a string", 0,
     ADD1("\"id\":0,\"content\":\"[PAD]\",\"single_word\":\"false\""), 0, 0, 0, F,
     "added_tokens[0].single_word"},
    {"added_tokens second entry bad", 0,
     "[{\"id\":0,\"content\":\"[PAD]\"},{\"id\":\"x\",\"content\":\"[UNK]\"}]", 0, 0, 0, F,
     "added_tokens[1].id"},
    {"added_tokens empty content skipped", 0, ADD1("\"id\":0,\"content\":\"\"," TOK_FIELDS), 0, 0,
     0, OK, NULL},
    {"added_tokens only defaults", 0, ADD1("\"id\":0,\"content\":\"[PAD]\""), 0, 0, 0, OK, NULL},
    {"added_tokens null", 0, "null", 0, 0, 0, OK, NULL},
    {"added_tokens id past the vocab", 0, ADD1("\"id\":12,\"content\":\"<x>\"," TOK_FIELDS), 0, 0,
     0, OK, NULL},

    /* normalizer */
    {"normalizer an array", 0, 0, "[]", 0, 0, F, "normalizer"},
    {"normalizer a string", 0, 0, "\"BertNormalizer\"", 0, 0, F, "normalizer"},
    {"normalizer type missing", 0, 0, "{\"lowercase\":true}", 0, 0, F, "normalizer.type"},
    {"normalizer type a number", 0, 0, "{\"type\":1}", 0, 0, F, "normalizer.type"},
    {"normalizer type unknown", 0, 0, "{\"type\":\"Fancy\"}", 0, 0, U, "normalizer"},
    {"normalizer lowercase a string", 0, 0,
     "{\"type\":\"BertNormalizer\",\"lowercase\":\"true\"}", 0, 0, F, "normalizer.lowercase"},
    {"normalizer clean_text a number", 0, 0, "{\"type\":\"BertNormalizer\",\"clean_text\":1}", 0,
     0, F, "normalizer.clean_text"},
    {"normalizer handle_chinese_chars null", 0, 0,
     "{\"type\":\"BertNormalizer\",\"handle_chinese_chars\":null}", 0, 0, F,
     "normalizer.handle_chinese_chars"},
    {"normalizer strip_accents a string", 0, 0,
     "{\"type\":\"BertNormalizer\",\"strip_accents\":\"no\"}", 0, 0, F, "normalizer.strip_accents"},
    {"normalizer Sequence without normalizers", 0, 0, "{\"type\":\"Sequence\"}", 0, 0, F,
     "normalizer.normalizers"},
    {"normalizer Sequence normalizers an object", 0, 0,
     "{\"type\":\"Sequence\",\"normalizers\":{}}", 0, 0, F, "normalizer.normalizers"},
    {"normalizer Sequence bad child", 0, 0,
     "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},{\"type\":\"BertNormalizer\","
     "\"lowercase\":0}]}", 0, 0, F, "normalizer.normalizers[1].lowercase"},
    {"normalizer Sequence child null", 0, 0, "{\"type\":\"Sequence\",\"normalizers\":[null]}", 0,
     0, F, "normalizer.normalizers[0]"},
    {"normalizer Sequence empty", 0, 0, "{\"type\":\"Sequence\",\"normalizers\":[]}", 0, 0, OK, NULL},
    {"normalizer Strip strip_left a string", 0, 0, "{\"type\":\"Strip\",\"strip_left\":\"y\"}", 0,
     0, F, "normalizer.strip_left"},
    {"normalizer Replace without pattern", 0, 0, "{\"type\":\"Replace\",\"content\":\"x\"}", 0, 0,
     F, "normalizer.pattern"},
    {"normalizer Replace content a number", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},\"content\":1}", 0, 0, F, "normalizer.content"},
    {"normalizer Replace empty pattern", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\"},\"content\":\"x\"}", 0, 0, F,
     "normalizer.pattern"},
    {"normalizer Replace unsupported regex", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"}", 0, 0, U, "normalizer"},
    {"normalizer Replace regex matching empty", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" *\"},\"content\":\" \"}", 0, 0, U, "normalizer"},
    {"normalizer Replace regex bad quantifier", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {99999999999999999999}\"},\"content\":\" \"}", 0,
     0, U, "normalizer"},
    {"normalizer Replace regex quantifier -1", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {-1,}\"},\"content\":\" \"}", 0, 0, U, "normalizer"},
    {"normalizer Replace regex {2,} loads", 0, 0,
     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}", 0, 0, OK, NULL},
    {"normalizer Prepend a number", 0, 0, "{\"type\":\"Prepend\",\"prepend\":1}", 0, 0, F,
     "normalizer.prepend"},
    {"normalizer Precompiled charsmap a number", 0, 0,
     "{\"type\":\"Precompiled\",\"precompiled_charsmap\":1}", 0, 0, F, "normalizer.precompiled_charsmap"},
    {"normalizer Precompiled charsmap not base64", 0, 0,
     "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"!!!!\"}", 0, 0, F,
     "normalizer.precompiled_charsmap"},

    /* pre_tokenizer */
    {"pre_tokenizer a number", 0, 0, 0, "7", 0, F, "pre_tokenizer"},
    {"pre_tokenizer type unknown", 0, 0, 0, "{\"type\":\"ByteLevel\"}", 0, U, "pre_tokenizer"},
    {"pre_tokenizer type missing", 0, 0, 0, "{}", 0, F, "pre_tokenizer.type"},
    {"pre_tokenizer Punctuation behavior unknown", 0, 0, 0,
     "{\"type\":\"Punctuation\",\"behavior\":\"Bogus\"}", 0, F, "pre_tokenizer.behavior"},
    {"pre_tokenizer Punctuation behavior a number", 0, 0, 0,
     "{\"type\":\"Punctuation\",\"behavior\":3}", 0, F, "pre_tokenizer.behavior"},
    {"pre_tokenizer Sequence pretokenizers an object", 0, 0, 0,
     "{\"type\":\"Sequence\",\"pretokenizers\":{}}", 0, F, "pre_tokenizer.pretokenizers"},
    {"pre_tokenizer Sequence bad child", 0, 0, 0,
     "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"},{\"type\":\"Split\"}]}", 0,
     U, "pre_tokenizer.pretokenizers[1]"},
    {"pre_tokenizer Metaspace replacement two chars", 0, 0, 0,
     "{\"type\":\"Metaspace\",\"replacement\":\"ab\"}", 0, F, "pre_tokenizer.replacement"},
    {"pre_tokenizer Metaspace replacement empty", 0, 0, 0,
     "{\"type\":\"Metaspace\",\"replacement\":\"\"}", 0, F, "pre_tokenizer.replacement"},
    {"pre_tokenizer Metaspace prepend_scheme unknown", 0, 0, 0,
     "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"prepend_scheme\":\"sometimes\"}", 0, F,
     "pre_tokenizer.prepend_scheme"},
    {"pre_tokenizer Metaspace add_prefix_space a string", 0, 0, 0,
     "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"add_prefix_space\":\"yes\"}", 0, F,
     "pre_tokenizer.add_prefix_space"},
    {"pre_tokenizer Metaspace split a number", 0, 0, 0,
     "{\"type\":\"Metaspace\",\"replacement\":\"_\",\"split\":1}", 0, F, "pre_tokenizer.split"},

    /* post_processor */
    {"post_processor a string", 0, 0, 0, 0, "\"TemplateProcessing\"", F, "post_processor"},
    {"post_processor type unknown", 0, 0, 0, 0, "{\"type\":\"ByteLevel\"}", U, "post_processor"},
    {"post_processor type a number", 0, 0, 0, 0, "{\"type\":0}", F, "post_processor.type"},
    {"post_processor single missing", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"special_tokens\":" SPECIALS_OK "}", F, "post_processor.single"},
    {"post_processor single an object", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":{},\"special_tokens\":" SPECIALS_OK "}", F,
     "post_processor.single"},
    {"post_processor single entry a string", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[\"$A\"],\"special_tokens\":" SPECIALS_OK "}", F,
     "post_processor.single[0]"},
    {"post_processor single entry unknown", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\"}},{\"Foo\":1}],"
     "\"special_tokens\":" SPECIALS_OK "}", F, "post_processor.single[1]"},
    {"post_processor SpecialToken id a number", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":2}},{\"Sequence\":{\"id\":\"A\"}}],"
     "\"special_tokens\":" SPECIALS_OK "}", F, "post_processor.single[0]"},
    {"post_processor no sequence", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\"}}],"
     "\"special_tokens\":" SPECIALS_OK "}", F, "post_processor.single"},
    {"post_processor two sequences", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\"}},{\"Sequence\":{\"id\":\"A\"}}],"
     "\"special_tokens\":" SPECIALS_OK "}", F, "post_processor.single"},
    {"post_processor special id out of range", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[99],\"tokens\":[\"[CLS]\"]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[CLS]\"].ids[0]"},
    {"post_processor special id -1", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[-1],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[SEP]\"].ids[0]"},
    {"post_processor special id 2^31", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2147483648],\"tokens\":[\"[CLS]\"]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[CLS]\"].ids[0]"},
    {"post_processor special id a string", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[\"2\"],\"tokens\":[\"[CLS]\"]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[CLS]\"].ids[0]"},
    {"post_processor special ids empty", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[],\"tokens\":[]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[CLS]\"].ids"},
    {"post_processor special ids an object", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK ",\"special_tokens\":"
     "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":{},\"tokens\":[]},"
     "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}", F,
     "post_processor.special_tokens[\"[CLS]\"].ids"},
    {"post_processor special token unknown", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<zz>\"}},"
     "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{}}", F, "post_processor"},
    {"post_processor special_tokens missing, ids from the vocab", 0, 0, 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":" SINGLE_OK "}", OK, NULL},
    {"post_processor an added token past the vocab", 0,
     ADD1("\"id\":10,\"content\":\"<x>\"," TOK_FIELDS), 0, 0,
     "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<x>\"}},"
     "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<x>\":{\"id\":\"<x>\",\"ids\":[10]}}}",
     OK, NULL},
    {"BertProcessing cls id out of range", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":[\"[CLS]\",99],\"sep\":[\"[SEP]\",3]}", F, "post_processor.cls"},
    {"BertProcessing cls id -1", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":[\"[CLS]\",-1],\"sep\":[\"[SEP]\",3]}", F, "post_processor.cls"},
    {"BertProcessing cls a string", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":\"[CLS]\",\"sep\":[\"[SEP]\",3]}", F, "post_processor.cls"},
    {"BertProcessing cls id a real", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":[\"[CLS]\",2.0],\"sep\":[\"[SEP]\",3]}", F, "post_processor.cls"},
    {"BertProcessing sep missing", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":[\"[CLS]\",2]}", F, "post_processor.sep"},
    {"BertProcessing loads", 0, 0, 0, 0,
     "{\"type\":\"BertProcessing\",\"cls\":[\"[CLS]\",2],\"sep\":[\"[SEP]\",3]}", OK, NULL},
    {"RobertaProcessing trim_offsets a string", 0, 0, 0, 0,
     "{\"type\":\"RobertaProcessing\",\"cls\":[\"[CLS]\",2],\"sep\":[\"[SEP]\",3],\"trim_offsets\":\"y\"}",
     F, "post_processor.trim_offsets"},
    {"post_processor null", 0, 0, 0, 0, "null", OK, NULL},
};

static void test_fields(void) {
    for (size_t i = 0; i < sizeof FIELD_CASES / sizeof *FIELD_CASES; i++) {
        const field_case *c = &FIELD_CASES[i];
        expect_doc(c->what, doc(c->model, c->added, c->norm, c->pre, c->post), c->want, c->field);
    }
    /* a template longer than 64 pieces */
    size_t cap = 64 * 48 + 256;
    char *post = malloc(cap), *p = post;
    p += sprintf(p, "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\"}}");
    for (int i = 0; i < 64; i++) p += sprintf(p, ",{\"SpecialToken\":{\"id\":\"[SEP]\"}}");
    sprintf(p, "]}");
    expect_doc("post_processor single of 65 pieces", doc(NULL, NULL, NULL, NULL, post),
               SEMBED_ERR_FORMAT, "post_processor.single");
    free(post);
}

/* truncation.max_length is read only when valid; anything else falls back to 512. */
static void test_truncation_field(void) {
    static const struct {
        const char *trunc;
        int32_t want;
    } cases[] = {
        {"{\"max_length\":128}", 128},  {"{\"max_length\":-1}", 512},
        {"{\"max_length\":0}", 512},    {"{\"max_length\":2147483648}", 512},
        {"{\"max_length\":1e300}", 512}, {"{\"max_length\":\"64\"}", 512},
        {"\"yes\"", 512},               {"[]", 512},
        {"{\"max_length\":1000001}", 512}, {"{\"max_length\":1000000}", 1000000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *json = doc(NULL, NULL, NULL, NULL, NULL);
        const char *key = "\"truncation\":null";
        char *at = strstr(json, key);
        size_t n = strlen(json) + strlen(cases[i].trunc) + 16;
        char *s = malloc(n);
        snprintf(s, n, "%.*s\"truncation\":%s%s", (int)(at - json), json, cases[i].trunc,
                 at + strlen(key));
        sembed_tokenizer *tok = expect(cases[i].trunc, s, strlen(s), SEMBED_OK, NULL);
        CHECKF(tok && sembed_tokenizer_max_length(tok) == cases[i].want, "truncation %s: %d",
               cases[i].trunc, tok ? sembed_tokenizer_max_length(tok) : -1);
        sembed_tokenizer_free(tok);
        free(s);
        free(json);
    }
}

/* ---- folders -------------------------------------------------------------------------------- */

static sembed_status load_dir(const char *dir, sembed_tokenizer **tok, sembed_error *err) {
    *tok = NULL;
    memset(err, 0, sizeof *err);
    return sembed_tokenizer_load(dir, NULL, tok, err);
}

static void expect_dir(const char *what, const char *dir, sembed_status want, const char *f1,
                       const char *f2) {
    sembed_tokenizer *tok = NULL;
    sembed_error err;
    sembed_status st = load_dir(dir, &tok, &err);
    CHECKF(st == want, "%s: status %d, want %d: %s", what, st, want, err.msg);
    if (want != SEMBED_OK) {
        CHECKF(tok == NULL && err.status == st, "%s: *out or err.status", what);
        CHECKF(!f1 || strstr(err.msg, f1), "%s: message does not name \"%s\": %s", what, f1, err.msg);
        CHECKF(!f2 || strstr(err.msg, f2), "%s: message does not name \"%s\": %s", what, f2, err.msg);
    }
    sembed_tokenizer_free(tok);
}

static void write_str(const char *dir, const char *name, const char *s) {
    CHECK(t_write_file(dir, name, s, strlen(s)));
}

static const char VOCAB_TXT[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n";

static char *folder(const char *name, const void *data, size_t size) {
    char *dir = t_tmpdir();
    CHECK(dir != NULL);
    if (dir && name) CHECK(t_write_file(dir, name, data, size));
    return dir;
}

static void test_folders(void) {
    char *dir = folder("vocab.txt", VOCAB_TXT, sizeof VOCAB_TXT - 1);
    expect_dir("vocab.txt folder", dir, SEMBED_OK, NULL, NULL);
    /* CRLF line ends are the same vocabulary */
    write_str(dir, "vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n");
    sembed_tokenizer *tok = NULL;
    sembed_error err;
    CHECK(load_dir(dir, &tok, &err) == SEMBED_OK);
    CHECK(tok && sembed_tokenizer_token_to_id(tok, "hello") == 4);
    sembed_tokenizer_free(tok);
    /* sentence_bert_config.json and tokenizer_config.json beside it */
    write_str(dir, "sentence_bert_config.json", "{\"max_seq_length\": 64}");
    CHECK(load_dir(dir, &tok, &err) == SEMBED_OK && tok && sembed_tokenizer_max_length(tok) == 64);
    sembed_tokenizer_free(tok);
    static const char *bad_st[] = {"{\"max_seq_length\": -1}", "{\"max_seq_length\": 1e300}",
                                   "{\"max_seq_length\": \"64\"}", "{\"max_seq_length\": 2147483648}",
                                   "{\"max_seq_length\": 0}"};
    for (size_t i = 0; i < sizeof bad_st / sizeof *bad_st; i++) {
        t_write_file(dir, "sentence_bert_config.json", bad_st[i], strlen(bad_st[i]));
        expect_dir(bad_st[i], dir, SEMBED_ERR_FORMAT, "sentence_bert_config.json", "max_seq_length");
    }
    write_str(dir, "sentence_bert_config.json", "{\"max_seq_length\": ");
    expect_dir("sentence_bert_config.json truncated", dir, SEMBED_ERR_FORMAT,
               "sentence_bert_config.json", "invalid JSON");
    write_str(dir, "sentence_bert_config.json", "[64]");
    expect_dir("sentence_bert_config.json an array", dir, SEMBED_ERR_FORMAT,
               "sentence_bert_config.json", NULL);
    write_str(dir, "sentence_bert_config.json", "{\"max_seq_length\": null}");
    write_str(dir, "tokenizer_config.json", "{\"model_max_length\": 1e30");
    expect_dir("tokenizer_config.json truncated", dir, SEMBED_ERR_FORMAT, "tokenizer_config.json",
               "invalid JSON");
    /* model_max_length of "no limit" (1e30 in transformers' files) is ignored */
    write_str(dir, "tokenizer_config.json",
              "{\"model_max_length\": 1000000000000000019884624838656, \"do_lower_case\": false}");
    CHECK(load_dir(dir, &tok, &err) == SEMBED_OK && tok && sembed_tokenizer_max_length(tok) == 512);
    sembed_tokenizer_free(tok);
    /* ... and a limit beside a number too big for an integer is still read */
    write_str(dir, "tokenizer_config.json",
              "{\"model_max_length\": 128, \"other\": 1000000000000000019884624838656}");
    CHECK(load_dir(dir, &tok, &err) == SEMBED_OK && tok && sembed_tokenizer_max_length(tok) == 128);
    sembed_tokenizer_free(tok);
    write_str(dir, "tokenizer_config.json", "{\"cls_token\": 5, \"unk_token\": {\"content\": 7}}");
    expect_dir("tokenizer_config.json with odd token types", dir, SEMBED_OK, NULL, NULL);
    write_str(dir, "tokenizer_config.json", "{\"cls_token\": \"<s>\"}");
    expect_dir("tokenizer_config.json names a cls_token not in vocab.txt", dir, SEMBED_ERR_FORMAT,
               "vocab.txt", "<s>");
    t_rmdir(dir);

    /* vocab.txt contents */
    static const struct {
        const char *what, *data;
        size_t size; /* 0: strlen */
        sembed_status want;
        const char *field;
    } vt[] = {
        {"empty vocab.txt", "", 0, SEMBED_ERR_FORMAT, "[CLS]"},
        {"vocab.txt of newlines", "\n\n\n", 0, SEMBED_ERR_FORMAT, NULL},
        {"vocab.txt invalid UTF-8", "[PAD]\n[UNK]\n\xC0\x80\n[CLS]\n[SEP]\n", 0, SEMBED_ERR_FORMAT,
         "line 3"},
        {"vocab.txt lone continuation byte", "[UNK]\n[CLS]\n[SEP]\nab\x80\n", 0, SEMBED_ERR_FORMAT,
         "line 4"},
        {"vocab.txt surrogate", "[UNK]\n\xED\xA0\x80\n[CLS]\n[SEP]\n", 0, SEMBED_ERR_FORMAT, "line 2"},
        {"vocab.txt without [CLS]", "[PAD]\n[UNK]\n[SEP]\nhello\n", 0, SEMBED_ERR_FORMAT, "[CLS]"},
        {"vocab.txt without [SEP]", "[PAD]\n[UNK]\n[CLS]\nhello\n", 0, SEMBED_ERR_FORMAT, "[SEP]"},
        {"vocab.txt without [UNK]", "[PAD]\n[CLS]\n[SEP]\nhello\n", 0, SEMBED_ERR_FORMAT, "unk_token"},
        {"vocab.txt duplicate tokens", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n", 0, SEMBED_OK, NULL},
        {"vocab.txt without a final newline", "[UNK]\n[CLS]\n[SEP]\nhello", 0, SEMBED_OK, NULL},
        {"vocab.txt with a NUL byte", "[UNK]\n[CLS]\n[SEP]\nhe\0llo\n", 24, SEMBED_OK, NULL},
        {"vocab.txt with empty lines", "[UNK]\n\n[CLS]\n\n[SEP]\n", 0, SEMBED_OK, NULL},
    };
    for (size_t i = 0; i < sizeof vt / sizeof *vt; i++) {
        size_t size = vt[i].size ? vt[i].size : strlen(vt[i].data);
        dir = folder("vocab.txt", vt[i].data, size);
        expect_dir(vt[i].what, dir, vt[i].want, vt[i].want ? "vocab.txt" : NULL, vt[i].field);
        t_rmdir(dir);
    }

    /* a duplicate line: the token takes its later id, as transformers' BertTokenizerFast gives
     * (transformers 5.24.0: [2, 6, 5, 3] for "hello world" with this vocab.txt) */
    static const char DUP[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n";
    dir = folder("vocab.txt", DUP, sizeof DUP - 1);
    sembed_tokenizer *dup = NULL;
    sembed_error derr;
    CHECKF(load_dir(dir, &dup, &derr) == SEMBED_OK, "%s", derr.msg);
    if (dup) {
        int32_t ids[8];
        sembed_tokens out = {.ids = ids, .capacity = 8};
        CHECK(sembed_tokenizer_token_to_id(dup, "hello") == 6);
        CHECK(sembed_tokenize(dup, "hello world", 11, &out, &derr) == SEMBED_OK && out.n == 4 &&
              ids[0] == 2 && ids[1] == 6 && ids[2] == 5 && ids[3] == 3);
        sembed_tokenizer_free(dup);
    }
    t_rmdir(dir);

    /* tokenizer.json in a folder: errors name its path */
    char *json = doc(WP("[]"), NULL, NULL, NULL, NULL);
    dir = folder("tokenizer.json", json, strlen(json));
    expect_dir("tokenizer.json with a bad vocab", dir, SEMBED_ERR_FORMAT, "tokenizer.json", "model.vocab");
    free(json);
    write_str(dir, "tokenizer.json", "");
    expect_dir("empty tokenizer.json", dir, SEMBED_ERR_FORMAT, "tokenizer.json", "invalid JSON");
    t_rmdir(dir);

    /* missing files */
    dir = folder(NULL, NULL, 0);
    expect_dir("empty folder", dir, SEMBED_ERR_IO, dir, "tokenizer.json");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/tokenizer.json", dir);
    CHECK(mkdir(sub, 0700) == 0); /* a folder named tokenizer.json is not the file */
    expect_dir("tokenizer.json a folder", dir, SEMBED_ERR_IO, dir, NULL);
    snprintf(sub, sizeof sub, "%s/vocab.txt", dir);
    CHECK(mkdir(sub, 0700) == 0);
    expect_dir("vocab.txt a folder", dir, SEMBED_ERR_IO, dir, NULL);
    snprintf(sub, sizeof sub, "%s/no-such-folder", dir);
    expect_dir("missing folder", sub, SEMBED_ERR_IO, "no-such-folder", NULL);
    t_rmdir(dir);
    expect_dir("a file as the folder", "/dev/null", SEMBED_ERR_IO, "/dev/null", NULL);
}

/* A vocab.txt of 10^6 lines loads, and its ids are the line numbers. */
static void test_big_vocab(void) {
    size_t n = 1000000, cap = n * 12 + 64;
    char *data = malloc(cap), *p = data;
    p += sprintf(p, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    for (size_t i = 4; i < n; i++) p += sprintf(p, "w%zu\n", i);
    char *dir = folder("vocab.txt", data, (size_t)(p - data));
    sembed_tokenizer *tok = NULL;
    sembed_error err;
    CHECKF(load_dir(dir, &tok, &err) == SEMBED_OK, "%s", err.msg);
    if (tok) {
        CHECK(sembed_tokenizer_vocab_size(tok) == (int32_t)n);
        CHECK(sembed_tokenizer_token_to_id(tok, "w999999") == 999999);
        int32_t ids[8];
        sembed_tokens out = {.ids = ids, .capacity = 8};
        CHECK(sembed_tokenize(tok, "w123456", 7, &out, &err) == SEMBED_OK && out.n == 3 && ids[1] == 123456);
        sembed_tokenizer_free(tok);
    }
    t_rmdir(dir);
    free(data);
}

/* ---- allocation failures ------------------------------------------------------------------- */

/* Runs `fn` with allocation N failing, for N = 1, 2, ... until a run makes fewer than N
 * allocations; each run must succeed or report NOMEM. Returns the number of runs. */
typedef sembed_status (*alloc_fn)(void *ctx, sembed_error *err);

static int64_t countdown(const char *what, alloc_fn fn, void *ctx, bool persistent) {
    int64_t n;
    for (n = 1;; n++) {
        sembed_error err = {0};
        sembed__alloc_fail_at(n, persistent);
        sembed_status st = fn(ctx, &err);
        int64_t made = sembed__alloc_fail_at(0, false);
        CHECKF(st == SEMBED_OK || st == SEMBED_ERR_NOMEM,
               "%s: allocation %lld failing (%s): status %d: %s", what, (long long)n,
               persistent ? "persistent" : "transient", st, err.msg);
        CHECKF(st == SEMBED_OK || err.msg[0], "%s: allocation %lld: no message", what, (long long)n);
        if (made < n) {
            CHECKF(st == SEMBED_OK, "%s: failed with no allocation failing", what);
            break;
        }
        if (n > 100000) {
            CHECKF(0, "%s: more than 100000 allocations", what);
            break;
        }
    }
    return n;
}

typedef struct load_ctx {
    const char *json;
    const char *dir;
} load_ctx;

static sembed_status load_json_fn(void *ctx, sembed_error *err) {
    load_ctx *c = ctx;
    sembed_tokenizer *tok = NULL;
    sembed_status st = sembed_tokenizer_load_json(c->json, strlen(c->json), "t.json", NULL, &tok, err);
    if (st == SEMBED_OK && !tok) st = SEMBED_ERR_INVALID_ARG;
    sembed_tokenizer_free(tok);
    return st;
}

static sembed_status load_dir_fn(void *ctx, sembed_error *err) {
    load_ctx *c = ctx;
    sembed_tokenizer *tok = NULL;
    sembed_status st = sembed_tokenizer_load(c->dir, NULL, &tok, err);
    sembed_tokenizer_free(tok);
    return st;
}

typedef struct tok_ctx {
    const sembed_tokenizer *tok;
    const char *text;
    int32_t want_n;
    const int32_t *want_ids;
} tok_ctx;

static sembed_status tokenize_fn(void *ctx, sembed_error *err) {
    tok_ctx *c = ctx;
    int32_t ids[128];
    sembed_tokens out = {.ids = ids, .capacity = 128};
    sembed_status st = sembed_tokenize(c->tok, c->text, strlen(c->text), &out, err);
    /* a success is the same success as without failures */
    if (st == SEMBED_OK && (out.n != c->want_n || memcmp(ids, c->want_ids, sizeof *ids * (size_t)out.n)))
        st = SEMBED_ERR_BACKEND;
    return st;
}

static sembed_status tokenize_batch_fn(void *ctx, sembed_error *err) {
    tok_ctx *c = ctx;
    int32_t ids[4][128];
    sembed_tokens outs[4];
    const char *texts[4] = {c->text, c->text, c->text, c->text};
    for (int i = 0; i < 4; i++) outs[i] = (sembed_tokens){.ids = ids[i], .capacity = 128};
    return sembed_tokenize_batch(c->tok, 4, texts, NULL, outs, 1, err);
}

static void test_alloc_failures(void) {
    char *json = doc(NULL, NULL,
                     "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
                     "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}," NORM_OK "]}",
                     "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"}," PRE_OK "]}",
                     NULL);
    load_ctx lc = {.json = json};
    int64_t runs = countdown("load_json", load_json_fn, &lc, false);
    CHECKF(runs > 10, "load_json: only %lld allocations", (long long)runs);
    countdown("load_json persistent", load_json_fn, &lc, true);

    char *dir = folder("vocab.txt", VOCAB_TXT, sizeof VOCAB_TXT - 1);
    write_str(dir, "tokenizer_config.json", "{\"do_lower_case\": true}");
    lc.dir = dir;
    countdown("load vocab.txt folder", load_dir_fn, &lc, false);
    countdown("load vocab.txt folder persistent", load_dir_fn, &lc, true);
    t_write_file(dir, "tokenizer.json", json, strlen(json));
    countdown("load tokenizer.json folder", load_dir_fn, &lc, false);
    t_rmdir(dir);

    sembed_tokenizer *tok = NULL;
    sembed_error err = {0};
    CHECK(sembed_tokenizer_load_json(json, strlen(json), "t.json", NULL, &tok, &err) == SEMBED_OK);
    if (tok) {
        static const char *texts[] = {
            "Hello <m> world, cafe\xcc\x81  HELLO \xe4\xb8\xad\xe5\x9b\xbd \xc4\xb0stanbul [SEP] hellos",
            "",
            "a very long wordthatismuchlongerthanahundredcharactersaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t ids[128];
            sembed_tokens out = {.ids = ids, .capacity = 128};
            CHECK(sembed_tokenize(tok, texts[i], strlen(texts[i]), &out, &err) == SEMBED_OK);
            tok_ctx tc = {.tok = tok, .text = texts[i], .want_n = out.n, .want_ids = ids};
            countdown("tokenize", tokenize_fn, &tc, false);
            countdown("tokenize persistent", tokenize_fn, &tc, true);
            countdown("tokenize_batch", tokenize_batch_fn, &tc, false);
        }
        sembed_tokenizer_free(tok);
    }
    free(json);
}

int main(void) {
    test_valid_and_prefixes();
    test_invalid_json();
    test_nesting();
    test_fields();
    test_truncation_field();
    test_folders();
    test_big_vocab();
    test_alloc_failures();
    return t_done("test_tokenizer_load");
}
