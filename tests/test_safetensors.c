/* test_safetensors.c — the safetensors reader against every case of reference/robustness.md
 * §1.1 (files built in memory here), dtype conversion, truncation and allocation failures.
 * Not a test of model shapes: test_config.c does that. */
#include "model/safetensors.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME "t.safetensors"

/* ---- a tiny writer ----------------------------------------------------------------------- */

typedef struct blob {
    uint8_t *buf;
    size_t size;
} blob;

/* 8-byte little-endian `n`, then `hlen` header bytes, then `dlen` data bytes. */
static blob make_raw(uint64_t n, const char *hdr, size_t hlen, const void *data, size_t dlen) {
    blob b = {malloc(8 + hlen + dlen + 1), 8 + hlen + dlen};
    for (int i = 0; i < 8; i++) b.buf[i] = (uint8_t)(n >> (8 * i));
    if (hlen) memcpy(b.buf + 8, hdr, hlen);
    if (dlen) memcpy(b.buf + 8 + hlen, data, dlen);
    return b;
}

static blob make(const char *hdr, const void *data, size_t dlen) {
    return make_raw(strlen(hdr), hdr, strlen(hdr), data, dlen);
}

/* `dlen` zero bytes of data. */
static blob make_z(const char *hdr, size_t dlen) {
    void *z = calloc(1, dlen + 1);
    blob b = make(hdr, z, dlen);
    free(z);
    return b;
}

static sembed_status parse_blob(blob b, sembed__st_file **st, sembed_error *err) {
    return sembed__st_parse(b.buf, b.size, NAME, st, err);
}

/* Parses b expecting SEMBED_ERR_FORMAT with a message naming the file and containing `why`;
 * frees b. */
#define EXPECT_FAIL(b, why) expect_fail((b), (why), __LINE__)
static void expect_fail(blob b, const char *why, int line) {
    sembed_error err = {0};
    sembed__st_file *st = (sembed__st_file *)1;
    sembed_status s = parse_blob(b, &st, &err);
    CHECKF(s == SEMBED_ERR_FORMAT, "line %d: status %d (%s)", line, s, err.msg);
    CHECKF(st == NULL, "line %d: handle not NULL on failure", line);
    CHECKF(err.status == s, "line %d: err.status %d", line, err.status);
    CHECKF(strncmp(err.msg, NAME ": ", strlen(NAME) + 2) == 0, "line %d: message '%s'", line,
           err.msg);
    CHECKF(strstr(err.msg, why) != NULL, "line %d: message '%s' lacks '%s'", line, err.msg, why);
    if (getenv("T_VERBOSE")) printf("line %d: %s\n", line, err.msg);
    if (s == SEMBED_OK) sembed__st_close(st);
    free(b.buf);
}

/* Parses b expecting success; the caller closes *st and frees b. */
#define EXPECT_OK(b, st) expect_ok((b), (st), __LINE__)
static bool expect_ok(blob b, sembed__st_file **st, int line) {
    sembed_error err = {0};
    sembed_status s = parse_blob(b, st, &err);
    CHECKF(s == SEMBED_OK, "line %d: status %d: %s", line, s, err.msg);
    return s == SEMBED_OK;
}

static void accept_and_free(blob b, int line) {
    sembed__st_file *st = NULL;
    if (expect_ok(b, &st, line)) sembed__st_close(st);
    free(b.buf);
}
#define EXPECT_ACCEPT(b) accept_and_free((b), __LINE__)

/* ---- rejections: the reference's cases and our stricter ones -------------------------------- */

static void test_header_length(void) {
    /* 0 to 7 bytes: HeaderTooSmall */
    uint8_t small[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    for (size_t n = 0; n < 8; n++) {
        blob b = {malloc(8), n};
        memcpy(b.buf, small, 8);
        EXPECT_FAIL(b, "too small");
    }
    /* N > 100,000,000: HeaderTooLarge; N = 2^64-1 too */
    EXPECT_FAIL(make_raw(100000001, "{}", 2, NULL, 0), "more than the limit of 100000000");
    EXPECT_FAIL(make_raw(UINT64_MAX, "{}", 2, NULL, 0), "more than the limit");
    EXPECT_FAIL(make_raw(UINT64_MAX - 7, "{}", 2, NULL, 0), "more than the limit");
    /* N = 100,000,000 exactly is allowed by the limit but runs past this small file */
    EXPECT_FAIL(make_raw(100000000, "{}", 2, NULL, 0), "runs past the end");
    /* 8+N past EOF: InvalidHeaderLength */
    EXPECT_FAIL(make_raw(3, "{}", 2, NULL, 0), "runs past the end");
    /* N = 0: an empty header is not JSON */
    EXPECT_FAIL(make_raw(0, "", 0, NULL, 0), "not valid JSON");
    /* N shorter than the JSON: the header is cut, the rest would be data */
    EXPECT_FAIL(make_raw(1, "{}", 2, NULL, 0), "not valid JSON");
}

static void test_header_content(void) {
    /* not UTF-8: InvalidHeader (a lone FF, an overlong NUL, a surrogate, past U+10FFFF, cut) */
    const char *bad_utf8[] = {"{\"a\xff\":{}}",        "{\"a\xc0\x80\":{}}",
                              "{\"\xed\xa0\x80\":{}}", "{\"\xf4\x90\x80\x80\":{}}",
                              "{\"\xe2\x82\":{}}",     "\x80{}"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++)
        EXPECT_FAIL(make(bad_utf8[i], NULL, 0), "not valid UTF-8");
    /* not JSON: InvalidHeaderDeserialization */
    EXPECT_FAIL(make("{", NULL, 0), "not valid JSON");
    EXPECT_FAIL(make("{}x", NULL, 0), "not valid JSON");
    EXPECT_FAIL(make("{}{}", NULL, 0), "not valid JSON");
    EXPECT_FAIL(make("\xef\xbb\xbf{}", NULL, 0), "not valid JSON"); /* a BOM */
    EXPECT_FAIL(make_raw(3, "{}\0", 3, NULL, 0), "not valid JSON"); /* a raw NUL after it */
    EXPECT_FAIL(make_raw(4, "{\0}", 4, NULL, 0), "not valid JSON");
    EXPECT_FAIL(make("{\"a\\u0000b\":{}}", NULL, 0), "not valid JSON"); /* NUL in a name */
    EXPECT_FAIL(make("[]", NULL, 0), "not a JSON object");
    EXPECT_FAIL(make("\"x\"", NULL, 0), "not valid JSON"); /* jansson: no bare scalars */
    /* a deeply nested metadata value: rejected (jansson's depth limit, else not a string) */
    char deep[5000];
    size_t k = 0;
    k += (size_t)sprintf(deep, "{\"__metadata__\":{\"a\":");
    for (int i = 0; i < 2100; i++) deep[k++] = '[';
    for (int i = 0; i < 2100; i++) deep[k++] = ']';
    deep[k++] = '}';
    deep[k++] = '}';
    deep[k] = 0;
    EXPECT_FAIL(make(deep, NULL, 0), "not valid JSON");
}

static void test_offsets(void) {
    /* gap: InvalidOffset */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                       12),
                "leave a gap");
    /* the first tensor not at 0 */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                "tensor 'a': data_offsets [4, 8) leave a gap: bytes [0, 4)");
    /* overlap */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8),
                "overlap tensor 'a'");
    /* the same range twice (test_json_attack) */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                       16),
                "overlap");
    /* a tensor inside another */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       16),
                "overlap");
    /* end before begin */
    EXPECT_FAIL(
        make_z("{\"encoder.layer.0.attention.self.query.weight\":{\"dtype\":\"F32\",\"shape\":[0],"
               "\"data_offsets\":[100,90]}}",
               100),
        "tensor 'encoder.layer.0.attention.self.query.weight': data_offsets [100, 90) end "
        "before begin");
    /* byte size != offsets: TensorInvalidInfo */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12),
                "hold 12 bytes, but shape [2, 2] of dtype F32 needs 16 bytes");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
                "needs 6 bytes");
    /* trailing bytes after the buffer (polyglot): MetadataIncompleteBuffer */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5),
                "1 trailing bytes");
    EXPECT_FAIL(make_z("{}", 3), "3 trailing bytes");
    /* buffer 2 bytes short */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 6),
                "truncated");
    /* offsets beyond the cap, negative, not integers, wrong count */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
                       "\"data_offsets\":[281474976710656,281474976710656]}}",
                       0),
                "data_offsets[0] is 281474976710656, more than the limit of 2^48-1");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1),
                "data_offsets[0] is negative");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}", 1),
                "data_offsets[1] is not an integer");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,\"1\"]}}", 1),
                "data_offsets[1] is not an integer");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1),
                "not an array of two integers");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1),
                "not an array of two integers");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{}}}", 1),
                "not an array of two integers");
}

static void test_shapes_and_dtypes(void) {
    /* ValidationOverflow, with the reference's shapes: too big for jansson's integers, then over
     * the 2^48-1 cap */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,18446744073709551614],"
                       "\"data_offsets\":[0,4]}}",
                       4),
                "integer");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,9223372036854775807],"
                       "\"data_offsets\":[0,4]}}",
                       4),
                "a shape entry is 9223372036854775807, more than the limit of 2^48-1");
    /* a real overflow of the element count within the per-entry cap */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[281474976710655,281474976710655],"
                       "\"data_offsets\":[0,4]}}",
                       4),
                "overflows");
    /* ... even when a later dimension is zero (as the reference's left-to-right fold) */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[281474976710655,281474976710655,0],"
                       "\"data_offsets\":[0,0]}}",
                       0),
                "overflows");
    /* elements fit, bits do not: 2^61 elements x 64 bits */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F64\",\"shape\":[140737488355328,16384],"
                       "\"data_offsets\":[0,8]}}",
                       8),
                "overflows");
    /* sub-byte dtypes: MisalignedSlice when the bits are not whole bytes */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2),
                "not a whole number of bytes");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
                "not a whole number of bytes");
    EXPECT_ACCEPT(make_z("{\"a\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 2));
    EXPECT_ACCEPT(
        make_z("{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3));
    /* unknown dtype */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16),
                "unknown dtype 'F128'");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "unknown dtype 'f32'");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "dtype is not a string");
    /* shapes: too many dimensions, negative, not integers, not an array */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                       "\"data_offsets\":[0,1]}}",
                       1),
                "shape has 9 dimensions, more than the limit of 8");
    EXPECT_ACCEPT(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1],"
                         "\"data_offsets\":[0,1]}}",
                         1));
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1),
                "a shape entry is negative");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1),
                "a shape entry is not an integer");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":[null],\"data_offsets\":[0,1]}}", 1),
                "a shape entry is not an integer");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1),
                "shape is not an array");
}

static void test_entries_and_metadata(void) {
    /* metadata: strings only */
    EXPECT_FAIL(make("{\"__metadata__\":{\"format\":1}}", NULL, 0),
                "__metadata__ value of 'format' is a number, not a string");
    EXPECT_FAIL(make("{\"__metadata__\":{\"a\":\"b\",\"c\":{}}}", NULL, 0),
                "__metadata__ value of 'c' is an object");
    EXPECT_FAIL(make("{\"__metadata__\":{\"a\":null}}", NULL, 0), "is null, not a string");
    EXPECT_FAIL(make("{\"__metadata__\":{\"a\":true}}", NULL, 0), "is a boolean, not a string");
    EXPECT_FAIL(make("{\"__metadata__\":[\"a\"]}", NULL, 0), "__metadata__ is an array");
    EXPECT_FAIL(make("{\"__metadata__\":\"pt\"}", NULL, 0), "__metadata__ is a string");
    /* duplicate keys: tensor names, metadata keys, fields of an entry */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8),
                "duplicate");
    EXPECT_FAIL(make("{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{}}", NULL, 0), "duplicate");
    EXPECT_FAIL(make("{\"__metadata__\":{\"a\":\"b\",\"a\":\"c\"}}", NULL, 0), "duplicate");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                       "\"data_offsets\":[0,4]}}",
                       4),
                "duplicate");
    /* extra fields and missing fields in a tensor entry */
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                       "\"align\":8}}",
                       4),
                "tensor 'a': unknown field 'align'");
    EXPECT_FAIL(make_z("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "tensor 'a': missing field 'dtype'");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                "missing field 'shape'");
    EXPECT_FAIL(make_z("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
                "missing field 'data_offsets'");
    EXPECT_FAIL(make_z("{\"a\":[1,2]}", 0), "tensor 'a': entry is not a JSON object");
    EXPECT_FAIL(make_z("{\"a\":null}", 0), "entry is not a JSON object");
}

/* ---- accepted files ------------------------------------------------------------------------ */

static void test_accept(void) {
    sembed__st_file *st = NULL;
    sembed_error err = {0};

    /* zero-sized tensors (several at one offset) and a scalar */
    float one = 1.5f;
    blob b = make("{\"z\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
                  "\"z2\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                  "\"z3\":{\"dtype\":\"BF16\",\"shape\":[0,7],\"data_offsets\":[4,4]}}",
                  &one, 4);
    if (EXPECT_OK(b, &st)) {
        CHECK(sembed__st_n_tensors(st) == 4);
        const sembed__st_tensor *z = sembed__st_find(st, "z");
        CHECK(z && z->n_dims == 2 && z->shape[0] == 2 && z->shape[1] == 0 && z->n_elems == 0 &&
              z->nbytes == 0);
        float dummy = -7;
        CHECK(z && sembed__st_read_f32(z, &dummy, 0, &err) == SEMBED_OK && dummy == -7);
        const sembed__st_tensor *s = sembed__st_find(st, "s");
        float got = 0;
        CHECK(s && s->n_dims == 0 && s->n_elems == 1 && s->nbytes == 4);
        CHECK(s && sembed__st_read_f32(s, &got, 1, &err) == SEMBED_OK && got == 1.5f);
        CHECK(s && s->offset == b.size - 4 && s->data == b.buf + b.size - 4);
        CHECK(sembed__st_find(st, "nope") == NULL);
        CHECK(sembed__st_find(st, "") == NULL);
        sembed__st_close(st);
    }
    free(b.buf);

    /* whitespace padding, trailing (as the official writer) and leading (page alignment) */
    const char *pads[] = {"{}        ", "   {}", "\n\t{ }\r\n ",
                          "  {\"__metadata__\":{\"format\":\"pt\"}}  "};
    for (size_t i = 0; i < sizeof pads / sizeof *pads; i++) EXPECT_ACCEPT(make(pads[i], NULL, 0));

    /* an empty file header: no tensors */
    b = make("{}", NULL, 0);
    if (EXPECT_OK(b, &st)) {
        CHECK(sembed__st_n_tensors(st) == 0);
        CHECK(sembed__st_find(st, "a") == NULL);
        CHECK(sembed__st_n_metadata(st) == 0);
        CHECK(sembed__st_metadata(st, "format") == NULL);
        CHECK(strcmp(sembed__st_name(st), NAME) == 0);
        sembed__st_close(st);
    }
    free(b.buf);

    /* metadata; JSON order unlike offset order; names sorted for lookup; odd names */
    uint8_t data[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    b = make("{\"__metadata__\":{\"format\":\"pt\",\"\":\"empty key\",\"k\":\"\\u00e9\\n\"},"
             "\"zeta\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9,10]},"
             "\"alpha\":{\"dtype\":\"I16\",\"shape\":[2,2],\"data_offsets\":[1,9]},"
             "\"\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"caf\\u00e9 \\\"q\\\"\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[10,10]}}",
             data, sizeof data);
    if (EXPECT_OK(b, &st)) {
        CHECK(sembed__st_n_tensors(st) == 4);
        for (int32_t i = 1; i < sembed__st_n_tensors(st); i++)
            CHECK(strcmp(sembed__st_tensor_at(st, i - 1)->name, sembed__st_tensor_at(st, i)->name) <
                  0);
        for (int32_t i = 0; i < sembed__st_n_tensors(st); i++) {
            const sembed__st_tensor *t = sembed__st_tensor_at(st, i);
            CHECK(sembed__st_find(st, t->name) == t);
            CHECK(strcmp(t->file, NAME) == 0);
        }
        const sembed__st_tensor *z = sembed__st_find(st, "zeta");
        CHECK(z && z->dtype == SEMBED__ST_U8 && z->data[0] == 10 && z->nbytes == 1);
        const sembed__st_tensor *a = sembed__st_find(st, "alpha");
        CHECK(a && a->dtype == SEMBED__ST_I16 && a->data[0] == 2 && a->nbytes == 8);
        CHECK(a && a->data == b.buf + b.size - 9); /* borrowed, not copied */
        const sembed__st_tensor *e = sembed__st_find(st, "");
        CHECK(e && e->dtype == SEMBED__ST_BOOL && e->data[0] == 1);
        CHECK(sembed__st_find(st, "caf\xc3\xa9 \"q\"") != NULL);
        /* other dtypes are not readable as numbers */
        float f[4];
        uint16_t h[4];
        memset(&err, 0, sizeof err);
        CHECK(a && sembed__st_read_f32(a, f, 4, &err) == SEMBED_ERR_UNSUPPORTED);
        CHECK(strstr(err.msg, "tensor 'alpha' has dtype I16") != NULL);
        CHECK(a && sembed__st_read_f16(a, h, 4, &err) == SEMBED_ERR_UNSUPPORTED);
        CHECK(sembed__st_n_metadata(st) == 3);
        CHECK(sembed__st_metadata(st, "format") &&
              !strcmp(sembed__st_metadata(st, "format"), "pt"));
        CHECK(sembed__st_metadata(st, "") && !strcmp(sembed__st_metadata(st, ""), "empty key"));
        CHECK(sembed__st_metadata(st, "k") && !strcmp(sembed__st_metadata(st, "k"), "\xc3\xa9\n"));
        const char *k, *v;
        sembed__st_metadata_at(st, 0, &k, &v);
        CHECK(!strcmp(k, "format") && !strcmp(v, "pt"));
        sembed__st_close(st);
    }
    free(b.buf);

    /* every dtype name parses */
    for (int d = 0; d < SEMBED__ST_N_DTYPES; d++) {
        char hdr[200];
        int bits = sembed__st_dtype_bits((sembed__st_dtype)d);
        snprintf(hdr, sizeof hdr,
                 "{\"t\":{\"dtype\":\"%s\",\"shape\":[8],\"data_offsets\":[0,%d]}}",
                 sembed__st_dtype_name((sembed__st_dtype)d), bits);
        b = make_z(hdr, (size_t)bits);
        if (EXPECT_OK(b, &st)) {
            CHECK(sembed__st_tensor_at(st, 0)->dtype == (sembed__st_dtype)d);
            CHECK(sembed__st_dtype_readable((sembed__st_dtype)d) ==
                  (d == SEMBED__ST_F32 || d == SEMBED__ST_F16 || d == SEMBED__ST_BF16));
            sembed__st_close(st);
        }
        free(b.buf);
    }
}

/* Tensors at data offsets 1, 2 and 3 mod 4 after an unpadded header: read correctly, no
 * misaligned load (UBSan would report one). */
static void test_unaligned(void) {
    for (int pad = 0; pad < 4; pad++) {
        float vals[5] = {1.0f, -2.5f, 3.25e-3f, 65504.0f, -0.0f};
        uint16_t halves[5] = {0x3c00, 0xc100, 0x0001, 0x7bff, 0x8000};
        uint16_t bf[5] = {0x3f80, 0xc020, 0x0001, 0x4780, 0x8000};
        uint8_t data[64] = {0};
        size_t at = (size_t)pad;
        char hdr[512];
        /* U8 pad, then F32 at `pad`, then F16 (2 bytes after 20), then BF16 */
        snprintf(hdr, sizeof hdr,
                 "{\"p\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
                 "\"f\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[%zu,%zu]},"
                 "\"q\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},"
                 "\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[%zu,%zu]},"
                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[%zu,%zu]}}",
                 pad, pad, at, at + 20, at + 20, at + 21, at + 21, at + 31, at + 31, at + 41);
        memcpy(data + at, vals, 20);
        data[at + 20] = 0xAA;
        memcpy(data + at + 21, halves, 10);
        memcpy(data + at + 31, bf, 10);
        blob b = make(hdr, data, at + 41);
        sembed__st_file *st = NULL;
        sembed_error err = {0};
        if (EXPECT_OK(b, &st)) {
            const sembed__st_tensor *f = sembed__st_find(st, "f");
            const sembed__st_tensor *h = sembed__st_find(st, "h");
            const sembed__st_tensor *bt = sembed__st_find(st, "b");
            CHECK(f && h && bt);
            if (f && h && bt) {
                CHECK(f->offset == 8 + strlen(hdr) + at);
                CHECK(f->data == b.buf + 8 + strlen(hdr) + at);
                float out[5 + 2];
                out[0] = out[6] = 123.0f; /* guards */
                CHECK(sembed__st_read_f32(f, out + 1, 5, &err) == SEMBED_OK);
                CHECK(memcmp(out + 1, vals, sizeof vals) == 0 && out[0] == 123 && out[6] == 123);
                float want_h[5] = {1.0f, -2.5f, 0x1p-24f, 65504.0f, -0.0f};
                CHECK(sembed__st_read_f32(h, out + 1, 5, &err) == SEMBED_OK);
                CHECK(memcmp(out + 1, want_h, sizeof want_h) == 0 && out[6] == 123);
                float want_b[5] = {1.0f, -2.5f, 0x1p-133f, 65536.0f, -0.0f};
                CHECK(sembed__st_read_f32(bt, out + 1, 5, &err) == SEMBED_OK);
                CHECK(memcmp(out + 1, want_b, sizeof want_b) == 0 && out[6] == 123);
                uint16_t o16[5];
                CHECK(sembed__st_read_f16(h, o16, 5, &err) == SEMBED_OK);
                CHECK(memcmp(o16, halves, sizeof o16) == 0);
                uint16_t want16_f[5] = {0x3c00, 0xc100, 0x1aa8, 0x7bff, 0x8000};
                CHECK(sembed__st_read_f16(f, o16, 5, &err) == SEMBED_OK);
                CHECKF(memcmp(o16, want16_f, sizeof o16) == 0, "%04x %04x %04x %04x %04x", o16[0],
                       o16[1], o16[2], o16[3], o16[4]);
                /* BF16 -> F16: 2^-133 underflows to +0, 65536 overflows to inf */
                uint16_t want16_b[5] = {0x3c00, 0xc100, 0x0000, 0x7c00, 0x8000};
                CHECK(sembed__st_read_f16(bt, o16, 5, &err) == SEMBED_OK);
                CHECK(memcmp(o16, want16_b, sizeof o16) == 0);
                /* the caller's count must match */
                memset(&err, 0, sizeof err);
                CHECK(sembed__st_read_f32(f, out, 4, &err) == SEMBED_ERR_INVALID_ARG);
                CHECK(strstr(err.msg, "tensor 'f' has 5 elements, the caller expected 4") != NULL);
                CHECK(sembed__st_read_f16(f, o16, 6, &err) == SEMBED_ERR_INVALID_ARG);
            }
            sembed__st_close(st);
        }
        free(b.buf);
    }
}

/* ---- conversions --------------------------------------------------------------------------- */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_f16(void) {
    /* chosen values, exact */
    static const struct {
        uint16_t h;
        uint32_t f;
    } k[] = {
        {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x0001, 0x33800000}, /* 2^-24 */
        {0x8001, 0xb3800000}, {0x03ff, 0x387fc000},                       /* largest subnormal */
        {0x0200, 0x38000000},                                             /* 2^-15 */
        {0x0400, 0x38800000},                                             /* 2^-14 */
        {0x3c00, 0x3f800000}, {0x3c01, 0x3f802000}, {0xc000, 0xc0000000},
        {0x7bff, 0x477fe000}, /* 65504 */
        {0x7c00, 0x7f800000}, {0xfc00, 0xff800000}, {0x7e00, 0x7fc00000},
        {0x7c01, 0x7f802000}, /* a signalling NaN keeps its payload */
        {0xfe01, 0xffc02000},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        uint32_t got = bits_of(sembed__f16_to_f32(k[i].h));
        CHECKF(got == k[i].f, "f16 %04x -> %08x, want %08x", k[i].h, got, k[i].f);
    }
    /* BF16 */
    static const struct {
        uint16_t b;
        uint32_t f;
    } kb[] = {{0x0000, 0},          {0x8000, 0x80000000}, {0x0001, 0x00010000},
              {0x3f80, 0x3f800000}, {0x7f80, 0x7f800000}, {0xff80, 0xff800000},
              {0x7fc1, 0x7fc10000}, {0x7f7f, 0x7f7f0000}};
    for (size_t i = 0; i < sizeof kb / sizeof *kb; i++)
        CHECK(bits_of(sembed__bf16_to_f32(kb[i].b)) == kb[i].f);

    /* f32 -> f16: every half round-trips; NaNs stay NaN with the sign */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sembed__f16_to_f32((uint16_t)h);
        uint16_t back = sembed__f32_to_f16(f);
        bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            if ((back & 0x7c00) != 0x7c00 || !(back & 0x3ff) || (back & 0x8000) != (h & 0x8000))
                bad++;
        } else if (back != h) {
            bad++;
        }
    }
    CHECKF(bad == 0, "%d halves do not round-trip", bad);

    /* round to nearest, ties to even */
    static const struct {
        uint32_t f;
        uint16_t h;
    } r[] = {
        {0x3f801000, 0x3c00},                       /* 1 + 2^-11: tie, to even 1 */
        {0x3f801001, 0x3c01},                       /* just above the tie */
        {0x3f803000, 0x3c02},                       /* 1 + 3*2^-11: tie, to even 1 + 2^-9 */
        {0x3f802fff, 0x3c01}, {0x477fefff, 0x7bff}, /* just below 65520 */
        {0x477ff000, 0x7c00},                       /* 65520: tie, to even = inf */
        {0x7f7fffff, 0x7c00},                       /* FLT_MAX */
        {0xff7fffff, 0xfc00}, {0x33000000, 0x0000}, /* 2^-25: tie between 0 and 2^-24, to even 0 */
        {0x33000001, 0x0001},                       /* just above */
        {0xb3000001, 0x8001}, {0x33c00000, 0x0002}, /* 3*2^-25: tie between 1 and 2 units, to even 2
                                                     */
        {0x34200000, 0x0002}, /* 5*2^-25: tie between 2 and 3 units, to even 2 */
        {0x387fe000, 0x0400}, /* 2^-14 - 2^-25: tie between 0x3ff and 0x400, to even */
        {0x387fc000, 0x03ff}, {0x00000001, 0x0000}, /* float subnormal */
        {0x80000001, 0x8000}, {0x7f800000, 0x7c00}, {0xff800000, 0xfc00},
        {0x7fc00000, 0x7e00}, {0x7f800001, 0x7e00}, /* signalling NaN, payload below the half's
                                                       bits: quiet NaN */
        {0x477fe000, 0x7bff},                       /* 65504 */
        {0x38800000, 0x0400},
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        uint16_t got = sembed__f32_to_f16(float_of(r[i].f));
        CHECKF(got == r[i].h, "f32 %08x -> %04x, want %04x", r[i].f, got, r[i].h);
    }

#if defined(__FLT16_MAX__) && !defined(__clang__)
    /* against the compiler's _Float16 (IEEE round to nearest even) on a stride of all floats */
    int mismatch = 0;
    for (uint64_t u = 0; u <= UINT32_MAX; u += 65537 * 3) {
        float f = float_of((uint32_t)u);
        if (isnan(f)) continue;
        __extension__ _Float16 c = (_Float16)f;
        uint16_t want;
        memcpy(&want, &c, 2);
        if (sembed__f32_to_f16(f) != want) mismatch++;
    }
    CHECKF(mismatch == 0, "%d floats convert unlike _Float16", mismatch);
#endif
}

/* ---- truncation, corruption, files, allocation failures ----------------------------------- */

static blob small_valid(void) {
    float v[3] = {1, 2, 3};
    return make("{\"__metadata__\":{\"format\":\"pt\"},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                "\"b\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[12,12]}}   ",
                v, sizeof v);
}

static void test_truncated(void) {
    blob b = small_valid();
    sembed__st_file *st = NULL;
    sembed_error err = {0};
    CHECK(sembed__st_parse(b.buf, b.size, NAME, &st, &err) == SEMBED_OK);
    sembed__st_close(st);
    /* every proper prefix is rejected as a format error (copied, so ASan sees reads past it) */
    int bad = 0;
    for (size_t n = 0; n < b.size; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.buf, n);
        st = NULL;
        sembed_status s = sembed__st_parse(n ? cut : NULL, n, NAME, &st, &err);
        if (s != SEMBED_ERR_FORMAT || st != NULL) bad++;
        sembed__st_close(st);
        free(cut);
    }
    CHECKF(bad == 0, "%d truncations not rejected", bad);
    /* one extra byte, and each byte flipped: never a crash; a flip inside the data still loads */
    uint8_t *longer = malloc(b.size + 1);
    memcpy(longer, b.buf, b.size);
    longer[b.size] = 0;
    CHECK(sembed__st_parse(longer, b.size + 1, NAME, &st, &err) == SEMBED_ERR_FORMAT);
    free(longer);
    for (size_t i = 0; i < b.size; i++) {
        uint8_t *m = malloc(b.size);
        memcpy(m, b.buf, b.size);
        m[i] ^= 0xFF;
        st = NULL;
        sembed_status s = sembed__st_parse(m, b.size, NAME, &st, &err);
        if (i >= b.size - 12) CHECK(s == SEMBED_OK);
        sembed__st_close(st);
        free(m);
    }
    free(b.buf);
}

static void test_files(void) {
    char *dir = t_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    blob b = small_valid();
    CHECK(t_write_file(dir, "m.safetensors", b.buf, b.size));
    char path[4200];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    sembed__st_file *st = NULL;
    sembed_error err = {0};
    CHECK(sembed__st_open(path, &st, &err) == SEMBED_OK);
    if (st) {
        const sembed__st_tensor *w = sembed__st_find(st, "w");
        float v[3];
        CHECK(w && sembed__st_read_f32(w, v, 3, &err) == SEMBED_OK && v[0] == 1 && v[2] == 3);
        CHECK(strcmp(sembed__st_name(st), path) == 0);
        sembed__st_close(st);
    }
    /* a bad file names its path */
    CHECK(t_write_file(dir, "bad.safetensors", b.buf, b.size - 1));
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    CHECK(sembed__st_open(path, &st, &err) == SEMBED_ERR_FORMAT && st == NULL);
    CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, "truncated") != NULL);
    /* missing file, a folder */
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    CHECK(sembed__st_open(path, &st, &err) == SEMBED_ERR_IO && st == NULL);
    CHECK(strstr(err.msg, "none.safetensors") != NULL);
    CHECK(sembed__st_open(dir, &st, &err) == SEMBED_ERR_IO && st == NULL);
    /* NULL arguments */
    CHECK(sembed__st_open(NULL, &st, &err) == SEMBED_ERR_INVALID_ARG);
    CHECK(sembed__st_parse(NULL, 5, NAME, &st, &err) == SEMBED_ERR_INVALID_ARG);
    sembed__st_close(NULL);
    free(b.buf);
    t_rmdir(dir);
}

static void test_alloc_failures(void) {
    blob b = small_valid();
    char *dir = t_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/m.safetensors", dir ? dir : "/nonexistent");
    CHECK(dir && t_write_file(dir, "m.safetensors", b.buf, b.size));
    for (int persistent = 0; persistent < 2; persistent++) {
        for (int use_file = 0; use_file < 2; use_file++) {
            bool done = false;
            for (int64_t n = 1; n < 100 && !done; n++) {
                sembed__alloc_fail_at(n, persistent);
                sembed__st_file *st = NULL;
                sembed_error err = {0};
                sembed_status s = use_file ? sembed__st_open(path, &st, &err)
                                           : sembed__st_parse(b.buf, b.size, NAME, &st, &err);
                sembed__alloc_fail_at(0, false);
                CHECKF(s == SEMBED_OK || s == SEMBED_ERR_NOMEM, "n=%lld: %d %s", (long long)n, s,
                       err.msg);
                CHECK((s == SEMBED_OK) == (st != NULL));
                if (s == SEMBED_OK) {
                    CHECK(sembed__st_find(st, "w") != NULL);
                    done = true;
                }
                sembed__st_close(st);
            }
            CHECK(done);
        }
    }
    free(b.buf);
    t_rmdir(dir);
}

/* A real model file when one is cached. */
static void test_real_file(void) {
    const char *dir = t_model_dir_opt("all-MiniLM-L6-v2");
    if (!dir) {
        printf("note: all-MiniLM-L6-v2 is not cached; real-file check skipped\n");
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    sembed__st_file *st = NULL;
    sembed_error err = {0};
    CHECKF(sembed__st_open(path, &st, &err) == SEMBED_OK, "%s", err.msg);
    if (!st) return;
    const sembed__st_tensor *t = sembed__st_find(st, "embeddings.word_embeddings.weight");
    CHECK(t && t->n_dims == 2 && t->shape[0] == 30522 && t->shape[1] == 384);
    if (t) {
        float *w = malloc((size_t)t->n_elems * sizeof *w);
        CHECK(sembed__st_read_f32(t, w, t->n_elems, &err) == SEMBED_OK);
        bool finite = true;
        for (int64_t i = 0; i < t->n_elems; i++) finite &= isfinite(w[i]) != 0;
        CHECK(finite);
        free(w);
    }
    sembed__st_close(st);
}

int main(void) {
    test_header_length();
    test_header_content();
    test_offsets();
    test_shapes_and_dtypes();
    test_entries_and_metadata();
    test_accept();
    test_unaligned();
    test_f16();
    test_truncated();
    test_files();
    test_alloc_failures();
    test_real_file();
    return t_done("test_safetensors");
}
