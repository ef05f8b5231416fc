/* test_tokenizer_unit.c — focused tokenizer behaviour on a tiny WordPiece tokenizer.json built
 * in the test (30-token vocabulary): normalization, pre-tokenization, the 100-char rule, added
 * tokens, truncation, invalid UTF-8, and where utf8proc's Unicode answer is overridden to follow
 * tokenizers. Needs no model files. Not a parity corpus (test_tokenizer_golden.c is). */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* The tiny tokenizer.json; the first %s is BertNormalizer's strip_accents (null or false), the
 * second the post-processor (TEMPLATE or ROBERTA). */
static const char TINY_FMT[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\n"
    " \"added_tokens\":[\n"
    "  {\"id\":0,\"content\":\"[PAD]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":1,\"content\":\"[UNK]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":2,\"content\":\"[CLS]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":3,\"content\":\"[SEP]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":4,\"content\":\"[MASK]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":21,\"content\":\"<m>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},\n"
    "  {\"id\":22,\"content\":\"<w>\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},\n"
    "  {\"id\":26,\"content\":\"zed\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},\n"
    "  {\"id\":30,\"content\":\"<new>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\n"
    " \"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,\n"
    "                \"strip_accents\":%s,\"lowercase\":true},\n"
    " \"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\n"
    " \"post_processor\":%s,\n"
    " \"decoder\":null,\n"
    " \"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\",\n"
    "  \"max_input_chars_per_word\":100,\"vocab\":{\n"
    "   \"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"[MASK]\":4,\"hello\":5,\"world\":6,\"##world\":7,\n"
    "   \"##s\":8,\"a\":9,\"##a\":10,\"cafe\":11,\",\":12,\".\":13,\"!\":14,\"i\":15,\"##\\u0307\":16,\n"
    "   \"\\u4e2d\":17,\"\\u56fd\":18,\"\\u0436\":19,\"##\\u0436\":20,\"<m>\":21,\"<w>\":22,\"\\u1c8a\":23,\n"
    "   \"x\":24,\"##b\":25,\"zed\":26,\"e\":27,\"##e\":28,\"-\":29}}}";

static const char TEMPLATE[] =
    "{\"type\":\"TemplateProcessing\",\n"
    "  \"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},\n"
    "            {\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}],\n"
    "  \"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},\n"
    "          {\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},\n"
    "          {\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],\n"
    "  \"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},\n"
    "                    \"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}";
static const char ROBERTA[] = "{\"type\":\"RobertaProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2],"
                              "\"trim_offsets\":%s,\"add_prefix_space\":false}";

enum { T_BERT, T_NOSTRIP, T_ROBERTA, T_ROBERTA_NOTRIM };

/* The tiny tokenizer.json of a variant: strip_accents null (it follows lowercase: on) or false;
 * TemplateProcessing, or RobertaProcessing with trim_offsets true or false. */
static char *tiny_json(int variant) {
    char post[sizeof TEMPLATE + sizeof ROBERTA];
    if (variant == T_ROBERTA || variant == T_ROBERTA_NOTRIM)
        snprintf(post, sizeof post, ROBERTA, variant == T_ROBERTA ? "true" : "false");
    else
        snprintf(post, sizeof post, "%s", TEMPLATE);
    size_t cap = sizeof TINY_FMT + sizeof post + 16;
    char *json = malloc(cap);
    snprintf(json, cap, TINY_FMT, variant == T_NOSTRIP ? "false" : "null", post);
    return json;
}

static sembed_tokenizer *tiny(int variant, int32_t max_length) {
    char *json = tiny_json(variant);
    sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.max_length = max_length;
    sembed_tokenizer *tok = NULL;
    sembed_error err = {0};
    sembed_status st = sembed_tokenizer_load_json(json, strlen(json), "tiny.json", &p, &tok, &err);
    CHECKF(st == SEMBED_OK, "tiny.json does not load: %s", err.msg);
    free(json);
    return st == SEMBED_OK ? tok : NULL;
}

/* One expected tokenization. `text` (len bytes) is repeated `reps` times (0: once). */
typedef struct ucase {
    int variant;
    const char *text;
    size_t len;
    int reps;
    int32_t max_length;
    int32_t n, n_full;
    int32_t ids[104];
    int32_t offsets[208]; /* byte offsets [begin, end) per token */
} ucase;

/* Expected values computed with Python tokenizers 0.23.3 from the same tokenizer.json:
 *     t = Tokenizer.from_str(json); t.enable_truncation(max_length); e = t.encode(text)
 * ids = e.ids; the character offsets of e.offsets converted to UTF-8 byte offsets; n_full =
 * len(ids) of the same text without truncation. Pasted as literals; do not edit by hand. */
static const ucase CASES[] = {
    /* plain */
    {T_BERT, "Hello, world!", 13, 0, 512, 6, 6,
     {2, 5, 12, 6, 14, 3},
     {0, 0, 0, 5, 5, 6, 7, 12, 12, 13, 0, 0}},
    /* clean_text: U+200B removed, joins */
    {T_BERT, "hello\xe2\x80\x8bworld", 13, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* clean_text: U+00AD removed */
    {T_BERT, "hello\xc2\xadworld", 12, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 7, 12, 0, 0}},
    /* clean_text: U+FEFF removed */
    {T_BERT, "\xef\xbb\xbfhello world", 14, 0, 512, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 3, 8, 9, 14, 0, 0}},
    /* clean_text: VT removed */
    {T_BERT, "hello\x0bworld", 11, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 6, 11, 0, 0}},
    /* clean_text: FF removed */
    {T_BERT, "hello\x0cworld", 11, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 6, 11, 0, 0}},
    /* clean_text: NEL (Cc) removed */
    {T_BERT, "hello\xc2\x85world", 12, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 7, 12, 0, 0}},
    /* clean_text: U+FFFD removed */
    {T_BERT, "hello\xef\xbf\xbdworld", 13, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* clean_text: private use removed */
    {T_BERT, "hello\xee\x80\x80world", 13, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* NBSP is a space */
    {T_BERT, "hello\xc2\xa0world", 12, 0, 512, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 7, 12, 0, 0}},
    /* U+3000 is a space */
    {T_BERT, "hello\xe3\x80\x80world", 13, 0, 512, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* U+2028 is a space */
    {T_BERT, "hello\xe2\x80\xa8world", 13, 0, 512, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* tab, newline, CR are spaces */
    {T_BERT, "hello\x09\x0d\x0aworld", 13, 0, 512, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 8, 13, 0, 0}},
    /* embedded NUL removed */
    {T_BERT, "hello\x00world", 11, 0, 512, 4, 4,
     {2, 5, 7, 3},
     {0, 0, 0, 5, 6, 11, 0, 0}},
    /* CJK padded */
    {T_BERT, "hello\xe4\xb8\xad\xe5\x9b\xbdworld", 16, 0, 512, 6, 6,
     {2, 5, 17, 18, 6, 3},
     {0, 0, 0, 5, 5, 8, 8, 11, 11, 16, 0, 0}},
    /* CJK between letters */
    {T_BERT, "a\xe4\xb8\xad\x61", 5, 0, 512, 5, 5,
     {2, 9, 17, 9, 3},
     {0, 0, 0, 1, 1, 4, 4, 5, 0, 0}},
    /* strip_accents precomposed */
    {T_BERT, "caf\xc3\xa9", 5, 0, 512, 3, 3,
     {2, 11, 3},
     {0, 0, 0, 5, 0, 0}},
    /* strip_accents uppercase precomposed */
    {T_BERT, "CAF\xc3\x89s", 6, 0, 512, 4, 4,
     {2, 11, 8, 3},
     {0, 0, 0, 5, 5, 6, 0, 0}},
    /* strip_accents decomposed */
    {T_BERT, "cafe\xcc\x81", 6, 0, 512, 3, 3,
     {2, 11, 3},
     {0, 0, 0, 4, 0, 0}},
    /* strip_accents mark alone */
    {T_BERT, "\xcc\x81\x61", 3, 0, 512, 3, 3,
     {2, 9, 3},
     {0, 0, 2, 3, 0, 0}},
    /* I with dot, strip_accents on */
    {T_BERT, "\xc4\xb0", 2, 0, 512, 3, 3,
     {2, 15, 3},
     {0, 0, 0, 2, 0, 0}},
    /* I with dot, strip_accents off */
    {T_NOSTRIP, "\xc4\xb0", 2, 0, 512, 4, 4,
     {2, 15, 16, 3},
     {0, 0, 0, 2, 0, 2, 0, 0}},
    /* I with dot inside word, strip_accents off */
    {T_NOSTRIP, "x\xc4\xb0 \xc4\xb0\x61", 7, 0, 512, 6, 6,
     {2, 1, 15, 16, 10, 3},
     {0, 0, 0, 3, 4, 6, 4, 6, 6, 7, 0, 0}},
    /* precomposed kept without strip_accents */
    {T_NOSTRIP, "caf\xc3\xa9", 5, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 5, 0, 0}},
    /* 99 chars */
    {T_BERT, "a", 1, 99, 512, 101, 101,
     {2, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3},
     {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
      13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23,
      24, 24, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 30, 30, 31, 31, 32, 32, 33, 33, 34, 34,
      35, 35, 36, 36, 37, 37, 38, 38, 39, 39, 40, 40, 41, 41, 42, 42, 43, 43, 44, 44, 45, 45,
      46, 46, 47, 47, 48, 48, 49, 49, 50, 50, 51, 51, 52, 52, 53, 53, 54, 54, 55, 55, 56, 56,
      57, 57, 58, 58, 59, 59, 60, 60, 61, 61, 62, 62, 63, 63, 64, 64, 65, 65, 66, 66, 67, 67,
      68, 68, 69, 69, 70, 70, 71, 71, 72, 72, 73, 73, 74, 74, 75, 75, 76, 76, 77, 77, 78, 78,
      79, 79, 80, 80, 81, 81, 82, 82, 83, 83, 84, 84, 85, 85, 86, 86, 87, 87, 88, 88, 89, 89,
      90, 90, 91, 91, 92, 92, 93, 93, 94, 94, 95, 95, 96, 96, 97, 97, 98, 98, 99, 0, 0}},
    /* 100 chars */
    {T_BERT, "a", 1, 100, 512, 102, 102,
     {2, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3},
     {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
      13, 13, 14, 14, 15, 15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23,
      24, 24, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 30, 30, 31, 31, 32, 32, 33, 33, 34, 34,
      35, 35, 36, 36, 37, 37, 38, 38, 39, 39, 40, 40, 41, 41, 42, 42, 43, 43, 44, 44, 45, 45,
      46, 46, 47, 47, 48, 48, 49, 49, 50, 50, 51, 51, 52, 52, 53, 53, 54, 54, 55, 55, 56, 56,
      57, 57, 58, 58, 59, 59, 60, 60, 61, 61, 62, 62, 63, 63, 64, 64, 65, 65, 66, 66, 67, 67,
      68, 68, 69, 69, 70, 70, 71, 71, 72, 72, 73, 73, 74, 74, 75, 75, 76, 76, 77, 77, 78, 78,
      79, 79, 80, 80, 81, 81, 82, 82, 83, 83, 84, 84, 85, 85, 86, 86, 87, 87, 88, 88, 89, 89,
      90, 90, 91, 91, 92, 92, 93, 93, 94, 94, 95, 95, 96, 96, 97, 97, 98, 98, 99, 99, 100, 0,
      0}},
    /* 101 chars */
    {T_BERT, "a", 1, 101, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 101, 0, 0}},
    /* 99 two-byte chars */
    {T_BERT, "\xd0\xb6", 2, 99, 512, 101, 101,
     {2, 19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 3},
     {0, 0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20, 20, 22, 22,
      24, 24, 26, 26, 28, 28, 30, 30, 32, 32, 34, 34, 36, 36, 38, 38, 40, 40, 42, 42, 44, 44,
      46, 46, 48, 48, 50, 50, 52, 52, 54, 54, 56, 56, 58, 58, 60, 60, 62, 62, 64, 64, 66, 66,
      68, 68, 70, 70, 72, 72, 74, 74, 76, 76, 78, 78, 80, 80, 82, 82, 84, 84, 86, 86, 88, 88,
      90, 90, 92, 92, 94, 94, 96, 96, 98, 98, 100, 100, 102, 102, 104, 104, 106, 106, 108,
      108, 110, 110, 112, 112, 114, 114, 116, 116, 118, 118, 120, 120, 122, 122, 124, 124,
      126, 126, 128, 128, 130, 130, 132, 132, 134, 134, 136, 136, 138, 138, 140, 140, 142,
      142, 144, 144, 146, 146, 148, 148, 150, 150, 152, 152, 154, 154, 156, 156, 158, 158,
      160, 160, 162, 162, 164, 164, 166, 166, 168, 168, 170, 170, 172, 172, 174, 174, 176,
      176, 178, 178, 180, 180, 182, 182, 184, 184, 186, 186, 188, 188, 190, 190, 192, 192,
      194, 194, 196, 196, 198, 0, 0}},
    /* 100 two-byte chars */
    {T_BERT, "\xd0\xb6", 2, 100, 512, 102, 102,
     {2, 19, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
      20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 3},
     {0, 0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20, 20, 22, 22,
      24, 24, 26, 26, 28, 28, 30, 30, 32, 32, 34, 34, 36, 36, 38, 38, 40, 40, 42, 42, 44, 44,
      46, 46, 48, 48, 50, 50, 52, 52, 54, 54, 56, 56, 58, 58, 60, 60, 62, 62, 64, 64, 66, 66,
      68, 68, 70, 70, 72, 72, 74, 74, 76, 76, 78, 78, 80, 80, 82, 82, 84, 84, 86, 86, 88, 88,
      90, 90, 92, 92, 94, 94, 96, 96, 98, 98, 100, 100, 102, 102, 104, 104, 106, 106, 108,
      108, 110, 110, 112, 112, 114, 114, 116, 116, 118, 118, 120, 120, 122, 122, 124, 124,
      126, 126, 128, 128, 130, 130, 132, 132, 134, 134, 136, 136, 138, 138, 140, 140, 142,
      142, 144, 144, 146, 146, 148, 148, 150, 150, 152, 152, 154, 154, 156, 156, 158, 158,
      160, 160, 162, 162, 164, 164, 166, 166, 168, 168, 170, 170, 172, 172, 174, 174, 176,
      176, 178, 178, 180, 180, 182, 182, 184, 184, 186, 186, 188, 188, 190, 190, 192, 192,
      194, 194, 196, 196, 198, 198, 200, 0, 0}},
    /* 101 two-byte chars */
    {T_BERT, "\xd0\xb6", 2, 101, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 202, 0, 0}},
    /* 101 chars between words */
    {T_BERT, "hello aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa world", 113, 0, 512, 5, 5,
     {2, 5, 1, 6, 3},
     {0, 0, 0, 5, 6, 107, 108, 113, 0, 0}},
    /* 100 chars counted after lowercase/accents */
    {T_BERT, "\xc3\x81", 2, 100, 512, 102, 102,
     {2, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
      10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3},
     {0, 0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14, 16, 16, 18, 18, 20, 20, 22, 22,
      24, 24, 26, 26, 28, 28, 30, 30, 32, 32, 34, 34, 36, 36, 38, 38, 40, 40, 42, 42, 44, 44,
      46, 46, 48, 48, 50, 50, 52, 52, 54, 54, 56, 56, 58, 58, 60, 60, 62, 62, 64, 64, 66, 66,
      68, 68, 70, 70, 72, 72, 74, 74, 76, 76, 78, 78, 80, 80, 82, 82, 84, 84, 86, 86, 88, 88,
      90, 90, 92, 92, 94, 94, 96, 96, 98, 98, 100, 100, 102, 102, 104, 104, 106, 106, 108,
      108, 110, 110, 112, 112, 114, 114, 116, 116, 118, 118, 120, 120, 122, 122, 124, 124,
      126, 126, 128, 128, 130, 130, 132, 132, 134, 134, 136, 136, 138, 138, 140, 140, 142,
      142, 144, 144, 146, 146, 148, 148, 150, 150, 152, 152, 154, 154, 156, 156, 158, 158,
      160, 160, 162, 162, 164, 164, 166, 166, 168, 168, 170, 170, 172, 172, 174, 174, 176,
      176, 178, 178, 180, 180, 182, 182, 184, 184, 186, 186, 188, 188, 190, 190, 192, 192,
      194, 194, 196, 196, 198, 198, 200, 0, 0}},
    /* whole word unk */
    {T_BERT, "hellox", 6, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 6, 0, 0}},
    /* whole word unk 2 */
    {T_BERT, "helloxworld world", 17, 0, 512, 4, 4,
     {2, 1, 6, 3},
     {0, 0, 0, 11, 12, 17, 0, 0}},
    /* emoji glued */
    {T_BERT, "hello\xf0\x9f\x98\x80", 9, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 9, 0, 0}},
    /* literal [SEP] */
    {T_BERT, "hello [SEP] world", 17, 0, 512, 5, 5,
     {2, 5, 3, 6, 3},
     {0, 0, 0, 5, 6, 11, 12, 17, 0, 0}},
    /* literal [CLS][SEP] glued */
    {T_BERT, "a[CLS][SEP]a", 12, 0, 512, 6, 6,
     {2, 9, 2, 3, 9, 3},
     {0, 0, 0, 1, 1, 6, 6, 11, 11, 12, 0, 0}},
    /* lowercase [sep] is not special */
    {T_BERT, "[sep]", 5, 0, 512, 5, 5,
     {2, 1, 1, 1, 3},
     {0, 0, 0, 1, 1, 4, 4, 5, 0, 0}},
    /* lstrip/rstrip <m> */
    {T_BERT, "hello   <m>   world", 19, 0, 512, 5, 5,
     {2, 5, 21, 6, 3},
     {0, 0, 0, 5, 5, 14, 14, 19, 0, 0}},
    /* <m> glued */
    {T_BERT, "hello<m>world", 13, 0, 512, 5, 5,
     {2, 5, 21, 6, 3},
     {0, 0, 0, 5, 5, 8, 8, 13, 0, 0}},
    /* <m> alone with spaces */
    {T_BERT, "  <m>  ", 7, 0, 512, 3, 3,
     {2, 21, 3},
     {0, 0, 0, 7, 0, 0}},
    /* RobertaProcessing trim_offsets: <m> without its spaces */
    {T_ROBERTA, "hello   <m>   world", 19, 0, 512, 5, 5,
     {2, 5, 21, 6, 3},
     {0, 0, 0, 5, 8, 11, 14, 19, 0, 0}},
    /* RobertaProcessing trim_offsets: <m> alone */
    {T_ROBERTA, "  <m>  ", 7, 0, 512, 3, 3,
     {2, 21, 3},
     {0, 0, 2, 5, 0, 0}},
    /* RobertaProcessing trim_offsets false */
    {T_ROBERTA_NOTRIM, "hello   <m>   world", 19, 0, 512, 5, 5,
     {2, 5, 21, 6, 3},
     {0, 0, 0, 5, 5, 14, 14, 19, 0, 0}},
    /* single_word <w> glued: not matched */
    {T_BERT, "a<w>a", 5, 0, 512, 7, 7,
     {2, 9, 1, 1, 1, 9, 3},
     {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 0, 0}},
    /* single_word <w> spaced */
    {T_BERT, "a <w> a", 7, 0, 512, 5, 5,
     {2, 9, 22, 9, 3},
     {0, 0, 0, 1, 2, 5, 6, 7, 0, 0}},
    /* single_word <w> alone */
    {T_BERT, "<w>", 3, 0, 512, 3, 3,
     {2, 22, 3},
     {0, 0, 0, 3, 0, 0}},
    /* single_word <w> next to punct */
    {T_BERT, "!<w>!", 5, 0, 512, 5, 5,
     {2, 14, 22, 14, 3},
     {0, 0, 0, 1, 1, 4, 4, 5, 0, 0}},
    /* normalized added ZED */
    {T_BERT, "hello ZED world", 15, 0, 512, 5, 5,
     {2, 5, 26, 6, 3},
     {0, 0, 0, 5, 6, 9, 10, 15, 0, 0}},
    /* normalized added zed inside word */
    {T_BERT, "hellozedworld", 13, 0, 512, 5, 5,
     {2, 5, 26, 6, 3},
     {0, 0, 0, 5, 5, 8, 8, 13, 0, 0}},
    /* normalized added Zed */
    {T_BERT, "Zeds", 4, 0, 512, 4, 4,
     {2, 26, 1, 3},
     {0, 0, 0, 3, 3, 4, 0, 0}},
    /* added token outside the model vocab */
    {T_BERT, "a<new>a", 7, 0, 512, 5, 5,
     {2, 9, 30, 9, 3},
     {0, 0, 0, 1, 1, 6, 6, 7, 0, 0}},
    /* empty */
    {T_BERT, "", 0, 0, 512, 2, 2,
     {2, 3},
     {0, 0, 0, 0}},
    /* one space */
    {T_BERT, " ", 1, 0, 512, 2, 2,
     {2, 3},
     {0, 0, 0, 0}},
    /* whitespace only */
    {T_BERT, " \x09\x0a\xe3\x80\x80\xc2\xa0 ", 9, 0, 512, 2, 2,
     {2, 3},
     {0, 0, 0, 0}},
    /* only removed chars */
    {T_BERT, "\xe2\x80\x8b\x00\xef\xbb\xbf", 7, 0, 512, 2, 2,
     {2, 3},
     {0, 0, 0, 0}},
    /* truncation 4 */
    {T_BERT, "hello world hello world hello", 29, 0, 4, 4, 7,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 6, 11, 0, 0}},
    /* truncation 3 */
    {T_BERT, "hello world hello world hello", 29, 0, 3, 3, 7,
     {2, 5, 3},
     {0, 0, 0, 5, 0, 0}},
    /* truncation exact fit */
    {T_BERT, "hello world", 11, 0, 4, 4, 4,
     {2, 5, 6, 3},
     {0, 0, 0, 5, 6, 11, 0, 0}},
    /* U+1C89 lowercases to U+1C8A */
    {T_BERT, "\xe1\xb2\x89", 3, 0, 512, 3, 3,
     {2, 23, 3},
     {0, 0, 0, 3, 0, 0}},
    /* U+2E43 not punctuation for tokenizers */
    {T_BERT, "hello\xe2\xb9\x83world", 13, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 13, 0, 0}},
    /* U+0890 (Cf for utf8proc) kept */
    {T_BERT, "hello\xe0\xa2\x90", 8, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 8, 0, 0}},
    /* U+0898 (Mn for utf8proc) kept */
    {T_BERT, "hello\xe0\xa2\x98", 8, 0, 512, 3, 3,
     {2, 1, 3},
     {0, 0, 0, 8, 0, 0}},
};

static void check_case(const ucase *c, size_t index) {
    sembed_tokenizer *tok = tiny(c->variant, c->max_length);
    if (!tok) return;
    int reps = c->reps ? c->reps : 1;
    size_t len = c->len * (size_t)reps;
    char *text = malloc(len + 1);
    for (int r = 0; r < reps; r++) memcpy(text + (size_t)r * c->len, c->text, c->len);
    text[len] = 0;
    /* exactly the room needed, with guard entries after it that must stay untouched */
    int32_t cap = c->n;
    int32_t ids[112], offs[224];
    uint8_t special[112];
    for (int i = 0; i < 112; i++) ids[i] = offs[2 * i] = offs[2 * i + 1] = -7, special[i] = 7;
    sembed_tokens out = {.ids = ids, .offsets = offs, .special = special, .capacity = cap};
    sembed_error err = {0};
    sembed_status st = sembed_tokenize(tok, text, len, &out, &err);
    CHECKF(st == SEMBED_OK, "case %zu: %s", index, err.msg);
    CHECKF(out.n == c->n && out.n_full == c->n_full && out.truncated == (c->n_full > c->n),
           "case %zu: n %d (want %d), n_full %d (want %d), truncated %d", index, out.n, c->n,
           out.n_full, c->n_full, out.truncated);
    bool same = out.n == c->n;
    for (int32_t i = 0; same && i < c->n; i++)
        same = ids[i] == c->ids[i] && offs[2 * i] == c->offsets[2 * i] &&
               offs[2 * i + 1] == c->offsets[2 * i + 1];
    CHECKF(same, "case %zu: ids or offsets differ from tokenizers", index);
    if (!same) {
        fprintf(stderr, "  sembed:     ");
        for (int32_t i = 0; i < out.n && i < 40; i++)
            fprintf(stderr, "%d(%d,%d) ", ids[i], offs[2 * i], offs[2 * i + 1]);
        fprintf(stderr, "\n  tokenizers: ");
        for (int32_t i = 0; i < c->n && i < 40; i++)
            fprintf(stderr, "%d(%d,%d) ", c->ids[i], c->offsets[2 * i], c->offsets[2 * i + 1]);
        fputc('\n', stderr);
    }
    /* the template's [CLS] ... [SEP] are special; nothing is written past the capacity */
    CHECKF(out.n < 2 || (special[0] == 1 && special[out.n - 1] == 1), "case %zu: special", index);
    CHECKF(ids[cap] == -7 && offs[2 * cap] == -7 && special[cap] == 7,
           "case %zu: wrote past capacity", index);
    /* one entry less is too small, and says how many are needed */
    if (cap > 0) {
        out.capacity = cap - 1;
        st = sembed_tokenize(tok, text, len, &out, &err);
        char need[32];
        snprintf(need, sizeof need, "%d tokens", c->n);
        CHECKF(st == SEMBED_ERR_TOO_SMALL && out.n == 0 && strstr(err.msg, need),
               "case %zu: capacity %d: status %d, %s", index, cap - 1, st, err.msg);
    }
    /* offsets may be NULL, special too */
    sembed_tokens bare = {.ids = ids, .capacity = cap};
    st = sembed_tokenize(tok, text, len, &bare, &err);
    CHECKF(st == SEMBED_OK && bare.n == c->n && (c->n == 0 || ids[c->n - 1] == c->ids[c->n - 1]),
           "case %zu: without offsets", index);
    free(text);
    sembed_tokenizer_free(tok);
}

static sembed_status tokenize_str(const sembed_tokenizer *tok, const char *text, size_t len,
                                  int32_t *ids, int32_t cap, int32_t *n, sembed_error *err) {
    sembed_tokens out = {.ids = ids, .capacity = cap};
    sembed_status st = sembed_tokenize(tok, text, len, &out, err);
    *n = out.n;
    return st;
}

static void test_invalid_utf8(void) {
    sembed_tokenizer *tok = tiny(T_BERT, 0);
    if (!tok) return;
    static const struct {
        const char *s;
        size_t len;
        int bad; /* byte offset of the first invalid sequence */
    } bad[] = {
        {"ab\xC0\x80", 4, 2},             /* overlong NUL */
        {"ab\xC1\xBF", 4, 2},             /* overlong 2-byte */
        {"ab\xE0\x80\x80", 5, 2},         /* overlong 3-byte */
        {"ab\xE0\x9F\xBF", 5, 2},         /* overlong 3-byte, largest */
        {"ab\xF0\x80\x80\x80", 6, 2},     /* overlong 4-byte */
        {"ab\xF0\x8F\xBF\xBF", 6, 2},     /* overlong 4-byte, largest */
        {"ab\xED\xA0\x80", 5, 2},         /* high surrogate U+D800 */
        {"ab\xED\xBF\xBF", 5, 2},         /* low surrogate U+DFFF */
        {"ab\xED\xA0\xBD\xED\xB8\x80", 8, 2}, /* CESU-8 pair */
        {"ab\xF4\x90\x80\x80", 6, 2},     /* U+110000 */
        {"ab\xF5\x80\x80\x80", 6, 2},     /* lead byte past U+10FFFF */
        {"ab\xF7\xBF\xBF\xBF", 6, 2},
        {"ab\xF8\x88\x80\x80\x80", 7, 2}, /* 5-byte form */
        {"ab\xFC\x84\x80\x80\x80\x80", 8, 2},
        {"ab\xFE", 3, 2},
        {"ab\xFF", 3, 2},
        {"ab\x80", 3, 2},                 /* lone continuation bytes */
        {"ab\xBF", 3, 2},
        {"\x80" "ab", 3, 0},
        {"hello\xE4\xB8", 7, 5},          /* truncated 3-byte at the end */
        {"hello\xE4\xB8 world", 13, 5},   /* truncated 3-byte in the middle */
        {"hello\xF0\x9F\x98", 8, 5},      /* truncated 4-byte */
        {"hello\xC3", 6, 5},              /* truncated 2-byte */
        {"\xC3\xA9\xC3", 3, 2},           /* after a valid 2-byte char */
        {"\xE4\xB8\xAD\xE4\xB8\x41", 6, 3}, /* continuation replaced by ASCII */
        {"a\x00\xFF", 3, 2},              /* after an embedded NUL */
        {"[SEP]\xFF[SEP]", 11, 5},        /* between added tokens */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t ids[64], n = -1;
        sembed_error err = {0};
        sembed_status st = tokenize_str(tok, bad[i].s, bad[i].len, ids, 64, &n, &err);
        char want[64];
        snprintf(want, sizeof want, "byte %d", bad[i].bad);
        CHECKF(st == SEMBED_ERR_INPUT && err.status == SEMBED_ERR_INPUT && strstr(err.msg, want) &&
                   strstr(err.msg, "UTF-8"),
               "invalid UTF-8 %zu: status %d, message \"%s\" (want %s)", i, st, err.msg, want);
    }
    /* the largest valid code points of each length are accepted */
    static const char *good[] = {"\x7F", "\xDF\xBF", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF",
                                 "\xED\x9F\xBF", "\xEE\x80\x80", "\xC2\x80", "\xF0\x90\x80\x80"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        int32_t ids[16], n = 0;
        sembed_error err = {0};
        CHECKF(tokenize_str(tok, good[i], strlen(good[i]), ids, 16, &n, &err) == SEMBED_OK,
               "valid UTF-8 %zu rejected: %s", i, err.msg);
    }
    /* in a batch, the error names the text's index and the byte */
    const char *texts[3] = {"hello", "ok \xC0\x80", "world"};
    size_t lens[3] = {5, 5, 5};
    int32_t ids[3][16];
    sembed_tokens outs[3];
    for (int i = 0; i < 3; i++) outs[i] = (sembed_tokens){.ids = ids[i], .capacity = 16};
    sembed_error err = {0};
    sembed_status st = sembed_tokenize_batch(tok, 3, texts, lens, outs, 2, &err);
    CHECKF(st == SEMBED_ERR_INPUT && strstr(err.msg, "text 1") && strstr(err.msg, "byte 3"),
           "batch: status %d, %s", st, err.msg);
    sembed_tokenizer_free(tok);
}

static void test_truncation_and_api(void) {
    sembed_tokenizer *tok = tiny(T_BERT, 5);
    if (!tok) return;
    CHECK(sembed_tokenizer_max_length(tok) == 5);
    /* the vocabulary grows to hold the added token <new> (id 30) outside the model's vocab */
    CHECK(sembed_tokenizer_vocab_size(tok) == 31);
    CHECK(sembed_tokenizer_id_to_token(tok, 30) && !strcmp(sembed_tokenizer_id_to_token(tok, 30), "<new>"));
    CHECK(sembed_tokenizer_id_to_token(tok, 31) == NULL);
    CHECK(sembed_tokenizer_id_to_token(tok, -1) == NULL);
    CHECK(sembed_tokenizer_token_to_id(tok, "##world") == 7);
    CHECK(sembed_tokenizer_token_to_id(tok, "\xe4\xb8\xad") == 17);
    CHECK(sembed_tokenizer_token_to_id(tok, "nope") == -1);
    CHECK(sembed_tokenizer_token_to_id(tok, NULL) == -1);
    /* 9 tokens without truncation: [CLS] hello , world ! hello world . [SEP] */
    const char *text = "hello, world! hello world.";
    int32_t ids[16];
    sembed_tokens out = {.ids = ids, .capacity = 16};
    sembed_error err = {0};
    CHECK(sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_OK);
    CHECK(out.n == 5 && out.n_full == 9 && out.truncated == 1);
    CHECK(ids[0] == 2 && ids[1] == 5 && ids[2] == 12 && ids[3] == 6 && ids[4] == 3);
    /* the capacity check uses the truncated length: 5 fit, 4 do not */
    out.capacity = 5;
    CHECK(sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_OK && out.n == 5);
    out.capacity = 4;
    sembed_status st = sembed_tokenize(tok, text, strlen(text), &out, &err);
    CHECKF(st == SEMBED_ERR_TOO_SMALL && err.status == SEMBED_ERR_TOO_SMALL &&
               strstr(err.msg, "5 tokens") && strstr(err.msg, "capacity of 4"),
           "%s", err.msg);
    out.capacity = 0;
    CHECK(sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_ERR_TOO_SMALL);
    out.capacity = -1;
    CHECK(sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_ERR_INVALID_ARG);
    out.capacity = 16;
    CHECK(sembed_tokenize(tok, NULL, 3, &out, &err) == SEMBED_ERR_INVALID_ARG);
    CHECK(sembed_tokenize(tok, NULL, 0, &out, &err) == SEMBED_OK && out.n == 2);
    CHECK(sembed_tokenize(NULL, text, 3, &out, &err) == SEMBED_ERR_INVALID_ARG);
    sembed_tokens no_ids = {.capacity = 16};
    CHECK(sembed_tokenize(tok, text, 3, &no_ids, &err) == SEMBED_ERR_INVALID_ARG);
    CHECK(sembed_tokenize(tok, text, 3, NULL, &err) == SEMBED_ERR_INVALID_ARG);
    /* err may be NULL */
    CHECK(sembed_tokenize(tok, "\xFF", 1, &out, NULL) == SEMBED_ERR_INPUT);
    sembed_tokenizer_free(tok);
    sembed_tokenizer_free(NULL);

    /* without special tokens the whole max_length is text */
    sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.max_length = 3;
    p.add_special_tokens = 0;
    char *json = tiny_json(T_BERT);
    tok = NULL;
    CHECK(sembed_tokenizer_load_json(json, strlen(json), NULL, &p, &tok, &err) == SEMBED_OK);
    if (tok) {
        out.capacity = 16;
        CHECK(sembed_tokenize(tok, text, strlen(text), &out, &err) == SEMBED_OK);
        CHECK(out.n == 3 && out.n_full == 7 && out.truncated == 1);
        CHECK(ids[0] == 5 && ids[1] == 12 && ids[2] == 6);
        CHECK(sembed_tokenize(tok, "", 0, &out, &err) == SEMBED_OK && out.n == 0 && out.n_full == 0);
        sembed_tokenizer_free(tok);
    }
    /* max_length that leaves no room for text after [CLS] [SEP] is a load error */
    p.add_special_tokens = 1;
    p.max_length = 2;
    tok = NULL;
    st = sembed_tokenizer_load_json(json, strlen(json), "tiny.json", &p, &tok, &err);
    CHECKF(st == SEMBED_ERR_FORMAT && !tok && strstr(err.msg, "tiny.json") && strstr(err.msg, "max_length"),
           "%s", err.msg);
    p.max_length = -1;
    CHECK(sembed_tokenizer_load_json(json, strlen(json), "tiny.json", &p, &tok, &err) == SEMBED_ERR_INVALID_ARG);
    p.max_length = 3;
    CHECK(sembed_tokenizer_load_json(json, strlen(json), "tiny.json", &p, &tok, &err) == SEMBED_OK);
    sembed_tokenizer_free(tok);
    free(json);
}

/* Where utf8proc's Unicode 15 data and tokenizers' Rust crates disagree, unicode_compat.inc
 * makes sembed follow tokenizers. Each check shows utf8proc's own answer first, then that the
 * tokenization is tokenizers' (the ids of these texts are in CASES too). */
static void test_unicode_compat(void) {
    sembed_tokenizer *tok = tiny(T_BERT, 0);
    if (!tok) return;
    int32_t ids[16], n = 0;
    sembed_error err = {0};

    /* U+1C89 CYRILLIC CAPITAL LETTER TJE (Unicode 16): utf8proc has no lowercase for it;
     * tokenizers lowercases it to U+1C8A, which is in the vocabulary (id 23) */
    CHECK(utf8proc_tolower(0x1C89) == 0x1C89);
    CHECK(tokenize_str(tok, "\xe1\xb2\x89", 3, ids, 16, &n, &err) == SEMBED_OK);
    CHECKF(n == 3 && ids[1] == 23, "U+1C89: n %d id %d", n, ids[1]);

    /* U+2E43 DASH WITH LEFT UPTURN: Po for utf8proc, so a punctuation split would give
     * hello / U+2E43 / world; tokenizers' crate does not see punctuation: one word, [UNK] */
    CHECK(utf8proc_category(0x2E43) == UTF8PROC_CATEGORY_PO);
    CHECK(tokenize_str(tok, "hello\xe2\xb9\x83world", 13, ids, 16, &n, &err) == SEMBED_OK);
    CHECKF(n == 3 && ids[1] == 1, "U+2E43: n %d", n);

    /* U+0890 ARABIC POUND MARK ABOVE: Cf for utf8proc, which clean_text would remove (leaving
     * "hello"); tokenizers keeps it, and the word becomes [UNK] */
    CHECK(utf8proc_category(0x0890) == UTF8PROC_CATEGORY_CF);
    CHECK(tokenize_str(tok, "hello\xe0\xa2\x90", 8, ids, 16, &n, &err) == SEMBED_OK);
    CHECKF(n == 3 && ids[1] == 1, "U+0890: n %d id %d", n, ids[1]);
    /* ... while an old Cf like U+200B is removed by both */
    CHECK(tokenize_str(tok, "hello\xe2\x80\x8b", 8, ids, 16, &n, &err) == SEMBED_OK);
    CHECK(n == 3 && ids[1] == 5);

    /* U+0898 ARABIC SMALL HIGH WORD AL-JUZ: Mn for utf8proc, which strip_accents would drop;
     * tokenizers keeps it: [UNK] */
    CHECK(utf8proc_category(0x0898) == UTF8PROC_CATEGORY_MN);
    CHECK(tokenize_str(tok, "hello\xe0\xa2\x98", 8, ids, 16, &n, &err) == SEMBED_OK);
    CHECKF(n == 3 && ids[1] == 1, "U+0898: n %d id %d", n, ids[1]);
    /* ... while U+0301 (Mn for both) goes */
    CHECK(tokenize_str(tok, "hello\xcc\x81", 7, ids, 16, &n, &err) == SEMBED_OK);
    CHECK(n == 3 && ids[1] == 5);
    sembed_tokenizer_free(tok);
}

/* A long text: many words, long words, and a word of 10^5 characters, within bounded time. */
static void test_long_inputs(void) {
    sembed_tokenizer *tok = tiny(T_BERT, 512);
    if (!tok) return;
    size_t len = 200000;
    char *text = malloc(len);
    memset(text, 'a', len);
    int32_t ids[512];
    sembed_tokens out = {.ids = ids, .capacity = 512};
    sembed_error err = {0};
    CHECK(sembed_tokenize(tok, text, len, &out, &err) == SEMBED_OK);
    CHECK(out.n == 3 && ids[1] == 1 && out.n_full == 3); /* one word > 100 chars: [UNK] */
    for (size_t i = 0; i < len; i += 2) text[i] = ' ';
    CHECK(sembed_tokenize(tok, text, len, &out, &err) == SEMBED_OK);
    CHECK(out.n == 512 && out.n_full == 100002 && out.truncated == 1 && ids[511] == 3);
    for (size_t i = 0; i + 3 <= len; i += 3) memcpy(text + i, "\xe4\xb8\xad", 3); /* CJK */
    CHECK(sembed_tokenize(tok, text, len / 3 * 3, &out, &err) == SEMBED_OK);
    CHECK(out.n == 512 && ids[1] == 17 && out.n_full == (int32_t)(len / 3) + 2);
    for (size_t i = 0; i + 2 <= len; i += 2) memcpy(text + i, "\xcc\x81", 2); /* marks */
    CHECK(sembed_tokenize(tok, text, len, &out, &err) == SEMBED_OK);
    CHECK(out.n == 2 && out.n_full == 2);
    free(text);
    sembed_tokenizer_free(tok);
}

int main(void) {
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) check_case(&CASES[i], i);
    test_invalid_utf8();
    test_truncation_and_api();
    test_unicode_compat();
    test_long_inputs();
    return t_done("test_tokenizer_unit");
}
