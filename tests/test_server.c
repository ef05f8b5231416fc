/* test_server.c — black-box tests of `sembed serve` over real HTTP on loopback: every route,
 * every error case, protocol abuse, disconnects, the queue limit, auth, graceful shutdown; after
 * each bad request a probe must return the bit-identical vector, and every vector must equal
 * the library's sembed_encode vector bit for bit. Not a unit test of the scheduler. */
#include "testlib.h"

#include "server/http_client.c"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>

/* Appends formatted text at o; returns the new end. */
static char *put(char *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *put(char *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsprintf(o, fmt, ap);
    va_end(ap);
    return o + (n > 0 ? n : 0);
}

#define KEY "s3cret-key"
#define AUTH "Authorization: Bearer " KEY "\r\n"

static int g_port;
static pid_t g_pid;
static sembed_ctx *g_ctx;
static const sembed_tokenizer *g_tok;
static int32_t g_dim;
static float *g_probe_ref;
static const char *k_probe = "probe: what is the capital of France?";

/* The library's vector for text (the reference). */
static bool ref_vec(const char *text, size_t len, float *out) {
    sembed_error err = {0};
    sembed_status s = sembed_encode(g_ctx, 1, &text, &len, out, g_dim, NULL, &err);
    if (s != SEMBED_OK) fprintf(stderr, "reference encode: %s\n", err.msg);
    return s == SEMBED_OK;
}

static bool post(const char *path, const char *body, size_t n, hc_resp *r) {
    return hc_request(g_port, "POST", path, AUTH, body, n, r, 120);
}
static bool posts(const char *path, const char *body, hc_resp *r) {
    return post(path, body, strlen(body), r);
}

static const char *jstr(const json_t *v) {
    const char *s = json_string_value(v);
    return s ? s : "";
}

/* Parses a JSON array of numbers into out (n floats); false when shape or type differ. */
static bool json_floats(const json_t *a, float *out, int32_t n) {
    if (!json_is_array(a) || (int32_t)json_array_size(a) != n) return false;
    for (int32_t k = 0; k < n; k++) {
        const json_t *v = json_array_get(a, (size_t)k);
        if (!json_is_number(v)) return false;
        out[k] = (float)json_number_value(v);
    }
    return true;
}

static bool same_bits(const float *a, const float *b, int32_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* POST /embed {"inputs": [texts]} and compare each vector with the library's, bit for bit. */
static void check_embed_equals_library(const char *const *texts, int32_t n) {
    json_t *arr = json_array();
    for (int32_t i = 0; i < n; i++) json_array_append_new(arr, json_stringn(texts[i], strlen(texts[i])));
    json_t *req = json_pack("{s:o}", "inputs", arr);
    char *body = json_dumps(req, JSON_COMPACT);
    hc_resp r;
    CHECK(posts("/embed", body, &r));
    CHECKF(r.status == 200, "status %d body %.300s", r.status, r.body ? r.body : "");
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(json_is_array(j) && (int32_t)json_array_size(j) == n);
    float *got = malloc(sizeof(float) * (size_t)g_dim), *want = malloc(sizeof(float) * (size_t)g_dim);
    for (int32_t i = 0; json_is_array(j) && i < n && i < (int32_t)json_array_size(j); i++) {
        CHECK(json_floats(json_array_get(j, (size_t)i), got, g_dim));
        CHECK(ref_vec(texts[i], strlen(texts[i]), want));
        CHECKF(same_bits(got, want, g_dim), "text %d (%.40s): server vector differs from "
               "sembed_encode (first: %.9g vs %.9g)", i, texts[i], got[0], want[0]);
    }
    free(got);
    free(want);
    json_decref(j);
    json_decref(req);
    free(body);
    hc_resp_free(&r);
}

/* The probe returns the bit-identical vector (after every bad request). */
static void probe(const char *after) {
    hc_resp r = {0};
    char body[256];
    snprintf(body, sizeof body, "{\"inputs\":\"%s\"}", k_probe);
    bool ok = false;
    for (int attempt = 0; attempt < 50; attempt++) { /* a 429 says: retry later */
        hc_resp_free(&r);
        ok = posts("/embed", body, &r) && r.status == 200;
        if (r.status != 429) break;
        usleep(100000);
    }
    json_t *j = ok ? json_loads(r.body, 0, NULL) : NULL;
    float *got = malloc(sizeof(float) * (size_t)g_dim);
    ok = ok && json_is_array(j) && json_floats(json_array_get(j, 0), got, g_dim) &&
         same_bits(got, g_probe_ref, g_dim);
    CHECKF(ok, "the probe after %s gave status %d or a different vector", after, r.status);
    free(got);
    json_decref(j);
    hc_resp_free(&r);
}

/* Sends body to path and expects `status` with a JSON error body of the route's shape. */
static void expect_error_n(const char *path, const char *body, size_t n, int status,
                           const char *contains) {
    hc_resp r;
    bool got = post(path, body, n, &r);
    CHECKF(got && r.status == status, "%s %.80s: status %d, expected %d (%.200s)", path, body,
           r.status, status, r.body ? r.body : "");
    json_error_t je;
    json_t *j = got ? json_loads(r.body, 0, &je) : NULL;
    const json_t *e = json_object_get(j, "error");
    if (!strcmp(path, "/v1/embeddings"))
        CHECKF(json_is_string(json_object_get(e, "message")) &&
                   json_is_string(json_object_get(e, "type")),
               "%s: not an OpenAI error: %.200s", path, r.body ? r.body : "");
    else
        CHECKF(json_is_string(e) && json_is_string(json_object_get(j, "error_type")),
               "%s: not the native error shape: %.200s", path, r.body ? r.body : "");
    if (contains) CHECKF(r.body && strstr(r.body, contains), "%s: '%s' not in %.200s", path,
                         contains, r.body ? r.body : "");
    json_decref(j);
    hc_resp_free(&r);
    probe(body);
}
static void expect_error(const char *path, const char *body, int status, const char *contains) {
    expect_error_n(path, body, strlen(body), status, contains);
}

/* The server's open sockets (connections and the listener); other descriptors, which a
 * sanitizer's runtime may open lazily, are not what a connection leak would show. */
static int count_fds(pid_t pid) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[384], target[128];
        snprintf(link, sizeof link, "%s/%s", p, e->d_name);
        const ssize_t k = readlink(link, target, sizeof target - 1);
        if (k > 0 && !strncmp(target, "socket:", 7 < k ? 7 : (size_t)k)) n++;
    }
    closedir(d);
    return n;
}

/* Sends raw bytes on a connection, then reads whatever comes back for up to timeout_s.
 * Returns the HTTP status of the first reply, 0 if the connection closed without one. */
static int raw_exchange(const char *bytes, size_t n, double timeout_s, bool close_early) {
    int fd = hc_connect(g_port);
    if (fd < 0) return -1;
    hc_send_all(fd, bytes, n);
    if (close_early) {
        close(fd);
        return 0;
    }
    hc_resp r;
    int st = hc_read_response(fd, &r, timeout_s, NULL, NULL) ? r.status : 0;
    hc_resp_free(&r);
    close(fd);
    return st;
}

static double metric(const char *name) {
    hc_resp r;
    double v = -1;
    if (hc_request(g_port, "GET", "/metrics", NULL, NULL, 0, &r, 10) && r.status == 200) {
        char pat[128];
        snprintf(pat, sizeof pat, "\n%s ", name);
        const char *p = strstr(r.body, pat);
        if (p) v = atof(p + strlen(pat));
    }
    hc_resp_free(&r);
    return v;
}

typedef struct bulk_arg {
    const char *body;
    int status;
    bool json_ok;
} bulk_arg;

static void *bulk_thread(void *v) {
    bulk_arg *a = v;
    hc_resp r;
    a->status = posts("/embed", a->body, &r) ? r.status : 0;
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    a->json_ok = json_is_array(j);
    json_decref(j);
    hc_resp_free(&r);
    return NULL;
}

/* A body of n long texts (each truncated to the max length). */
static char *bulk_body(int n) {
    size_t cap = (size_t)n * 3000 + 64;
    char *b = malloc(cap), *o = b;
    if (!b) abort();
    o = put(o, "{\"inputs\":[");
    for (int i = 0; i < n; i++) {
        o = put(o, "%s\"%d", i ? "," : "", i);
        for (int k = 0; k < 400; k++) o = put(o, " w%d", k % 50);
        *o++ = '"';
    }
    sprintf(o, "]}");
    return b;
}

static void test_routes(void) {
    hc_resp r;
    /* public routes */
    CHECK(hc_request(g_port, "GET", "/health", NULL, NULL, 0, &r, 10) && r.status == 200);
    hc_resp_free(&r);
    CHECK(hc_request(g_port, "GET", "/metrics", NULL, NULL, 0, &r, 10) && r.status == 200 &&
          strstr(r.body, "sembed_requests_total") && strstr(r.body, "sembed_queue_texts") &&
          strstr(r.body, "sembed_batch_tokens_bucket") &&
          strstr(r.body, "sembed_stage_seconds_bucket{stage=\"queue\""));
    hc_resp_free(&r);
    /* /info */
    CHECK(hc_request(g_port, "GET", "/info", AUTH, NULL, 0, &r, 10) && r.status == 200);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(json_integer_value(json_object_get(j, "dimension")) == g_dim);
    CHECK(json_integer_value(json_object_get(j, "max_input_length")) == 256);
    /* fp32 on the CPU; a GPU (device auto) runs fp16 */
    const char *dev = jstr(json_object_get(j, "device")), *dt = jstr(json_object_get(j, "model_dtype"));
    CHECKF(dev && dt && !strcmp(dt, strcmp(dev, "cpu") ? "float16" : "float32"),
           "/info: device %s, model_dtype %s", dev ? dev : "?", dt ? dt : "?");
    json_decref(j);
    hc_resp_free(&r);

    /* /embed, bit for bit against the library */
    probe("nothing");
    const char *texts[] = {"Hello, world!", "   ", "Ünïcödé and 中文字符 and emoji 😀😀",
                           "tab\tand\nnewline", "a", k_probe};
    check_embed_equals_library(texts, 6);
    char *longt = bulk_body(1); /* {"inputs":["0 w0 w1 ..."]}: truncated to 256 tokens */
    longt[strlen(longt) - 2] = '\0';
    const char *lt = strchr(longt, '[') + 2;
    char *lcopy = strdup(lt);
    lcopy[strlen(lcopy) - 1] = '\0';
    const char *one[] = {lcopy};
    check_embed_equals_library(one, 1);
    free(lcopy);
    free(longt);

    /* NUL inside a string is a character */
    float *want = malloc(sizeof(float) * (size_t)g_dim), *got = malloc(sizeof(float) * (size_t)g_dim);
    CHECK(posts("/embed", "{\"inputs\":\"a\\u0000b\"}", &r) && r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(json_floats(json_array_get(j, 0), got, g_dim) && ref_vec("a\0b", 3, want) &&
          same_bits(got, want, g_dim));
    json_decref(j);
    hc_resp_free(&r);

    /* /v1/embeddings: a string, an array, base64, dimensions, usage */
    CHECK(posts("/v1/embeddings", "{\"input\":\"Hello, world!\",\"model\":\"x\"}", &r) &&
          r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(!strcmp(jstr(json_object_get(j, "object")), "list"));
    const json_t *d0 = json_array_get(json_object_get(j, "data"), 0);
    CHECK(json_integer_value(json_object_get(d0, "index")) == 0);
    CHECK(json_floats(json_object_get(d0, "embedding"), got, g_dim) &&
          ref_vec("Hello, world!", 13, want) && same_bits(got, want, g_dim));
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) == 6);
    json_decref(j);
    hc_resp_free(&r);

    CHECK(posts("/v1/embeddings", "{\"input\":[\"a\",\"Hello, world!\"],\"encoding_format\":\"base64\"}",
                &r) && r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    const char *b64 = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "data"), 1), "embedding"));
    CHECK(b64 && strlen(b64) == ((size_t)g_dim * 4 + 2) / 3 * 4);
    if (b64) { /* decode */
        static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned char *bytes = (unsigned char *)got;
        size_t o = 0;
        for (size_t i = 0; b64[i] && b64[i + 1] && b64[i + 2] && b64[i + 3]; i += 4) {
            uint32_t x = 0;
            for (int k = 0; k < 4; k++) {
                const char *p = strchr(A, b64[i + k]);
                x = x << 6 | (uint32_t)(p && b64[i + k] != '=' ? p - A : 0);
            }
            for (int k = 0; k < 3 && o < (size_t)g_dim * 4; k++) bytes[o++] = (unsigned char)(x >> (16 - 8 * k));
        }
        CHECK(o == (size_t)g_dim * 4 && same_bits(got, want, g_dim));
    }
    json_decref(j);
    hc_resp_free(&r);

    CHECK(posts("/v1/embeddings", "{\"input\":\"Hello, world!\",\"dimensions\":16}", &r) &&
          r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(json_floats(json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding"),
                      got, 16));
    double ss = 0, dot = 0, wss = 0;
    for (int k = 0; k < 16; k++) ss += got[k] * got[k], dot += got[k] * want[k], wss += want[k] * want[k];
    CHECKF(fabs(ss - 1) < 1e-5 && dot / sqrt(ss * wss) > 0.99999, "dimensions 16: norm^2 %g", ss);
    { /* the library's Matryoshka vector, bit for bit */
        const char *hw = "Hello, world!";
        const size_t hl = strlen(hw);
        sembed_encode_opts o = {.dimensions = 16};
        float w16[16];
        CHECK(sembed_encode_ex(g_ctx, 1, &hw, &hl, &o, w16, 16, NULL, NULL) == SEMBED_OK &&
              same_bits(got, w16, 16));
    }
    json_decref(j);
    hc_resp_free(&r);

    /* token ids: the ids of a text give the text's vector, alone, in a batch of ids and beside
     * texts, on both routes */
    {
        int32_t ids[512];
        sembed_tokens t = {.ids = ids, .capacity = 512};
        CHECK(sembed_tokenize(g_tok, k_probe, strlen(k_probe), &t, NULL) == SEMBED_OK);
        char *b = malloc(16384), *o = b;
        o = put(o, "{\"inputs\":[");
        for (int32_t k = 0; k < t.n; k++) o = put(o, "%s%d", k ? "," : "", ids[k]);
        strcpy(o, "]}");
        CHECK(posts("/embed", b, &r) && r.status == 200);
        j = json_loads(r.body ? r.body : "", 0, NULL);
        CHECKF(json_array_size(j) == 1 && json_floats(json_array_get(j, 0), got, g_dim) &&
                   same_bits(got, g_probe_ref, g_dim),
               "the probe's token ids: %.200s", r.body ? r.body : "");
        json_decref(j);
        hc_resp_free(&r);
        o = b;
        o = put(o, "{\"input\":[\"Hello, world!\",[");
        for (int32_t k = 0; k < t.n; k++) o = put(o, "%s%d", k ? "," : "", ids[k]);
        o = put(o, "],[101,7592,1010,2088,999,102]]}"); /* "Hello, world!" */
        CHECK(posts("/v1/embeddings", b, &r) && r.status == 200);
        j = json_loads(r.body ? r.body : "", 0, NULL);
        const json_t *data = json_object_get(j, "data");
        CHECK(json_array_size(data) == 3);
        CHECK(ref_vec("Hello, world!", 13, want));
        CHECK(json_floats(json_object_get(json_array_get(data, 0), "embedding"), got, g_dim) &&
              same_bits(got, want, g_dim));
        CHECK(json_floats(json_object_get(json_array_get(data, 1), "embedding"), got, g_dim) &&
              same_bits(got, g_probe_ref, g_dim));
        CHECK(json_floats(json_object_get(json_array_get(data, 2), "embedding"), got, g_dim) &&
              same_bits(got, want, g_dim));
        CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) ==
              6 + t.n + 6);
        json_decref(j);
        hc_resp_free(&r);
        free(b);
    }

    /* TEI options that are accepted */
    CHECK(posts("/embed", "{\"inputs\":\"x\",\"normalize\":true,\"truncate\":true,"
                          "\"truncation_direction\":\"Right\",\"prompt_name\":null,\"dimensions\":384}",
                &r) && r.status == 200);
    hc_resp_free(&r);

    /* /tokenize */
    CHECK(posts("/tokenize", "{\"inputs\":\"Hello, world!\"}", &r) && r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    const json_t *toks = json_array_get(j, 0);
    CHECK(json_array_size(toks) == 6);
    CHECK(json_integer_value(json_object_get(json_array_get(toks, 1), "id")) == 7592);
    CHECK(!strcmp(jstr(json_object_get(json_array_get(toks, 1), "text")), "Hello"));
    CHECK(json_is_true(json_object_get(json_array_get(toks, 0), "special")));
    json_decref(j);
    hc_resp_free(&r);
    CHECK(posts("/tokenize", "{\"inputs\":[\"Hello\",\"world\"],\"add_special_tokens\":false}", &r) &&
          r.status == 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(json_array_size(j) == 2 && json_array_size(json_array_get(j, 0)) == 1);
    json_decref(j);
    hc_resp_free(&r);
    free(want);
    free(got);
}

static void test_errors(void) {
    /* malformed JSON and wrong types */
    expect_error("/embed", "{", 400, NULL);
    expect_error("/embed", "", 400, NULL);
    expect_error("/embed", "[]", 400, NULL);
    expect_error("/embed", "{}", 400, "inputs");
    expect_error("/embed", "{\"inputs\":5}", 400, NULL);
    expect_error("/embed", "{\"inputs\":{}}", 400, NULL);
    expect_error("/embed", "{\"inputs\":null}", 400, NULL);
    expect_error("/embed", "{\"inputs\":true}", 400, NULL);
    expect_error("/embed", "{\"inputs\":[[\"a\"]]}", 400, NULL);
    expect_error("/embed", "{\"inputs\":[\"a\",3]}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"a\",\"inputs\":\"b\"}", 400, NULL);
    expect_error("/embed", "\xEF\xBB\xBF{\"inputs\":\"a\"}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"a\"} trailing", 400, NULL);
    expect_error("/v1/embeddings", "{\"input\":5}", 400, NULL);
    expect_error("/v1/embeddings", "not json", 400, NULL);
    expect_error("/tokenize", "{\"inputs\":7}", 400, NULL);
    /* empty inputs */
    expect_error("/embed", "{\"inputs\":\"\"}", 400, "empty");
    expect_error("/embed", "{\"inputs\":[]}", 400, "empty");
    expect_error("/embed", "{\"inputs\":[\"\"]}", 400, "empty");
    expect_error("/v1/embeddings", "{\"input\":\"\"}", 400, "empty");
    /* invalid UTF-8, raw and escaped */
    expect_error("/embed", "{\"inputs\":\"\xFF\"}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"\xC0\x80\"}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"\xED\xA0\x80\"}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"\xF4\x90\x80\x80\"}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"\\ud800\"}", 400, NULL);
    expect_error("/v1/embeddings", "{\"input\":[\"ok\",\"\\udc00x\"]}", 400, NULL);
    /* token ids: out of range (naming input and position), not integers, empty, too many */
    expect_error("/v1/embeddings", "{\"input\":[101,-5,9999999999]}", 422, "position 1");
    expect_error("/embed", "{\"inputs\":[[101,102],[101,30522,102]]}", 422,
                 "input 1: token id 30522 at position 1");
    expect_error("/embed", "{\"inputs\":[101,9999999999]}", 422, "position 1");
    expect_error("/embed", "{\"inputs\":[101,\"a\"]}", 400, "position 1");
    expect_error("/embed", "{\"inputs\":[101,1.5]}", 400, NULL);
    expect_error("/embed", "{\"inputs\":[[101,102],[]]}", 400, "empty");
    expect_error("/embed", "{\"inputs\":[[101,102],[[5]]]}", 400, NULL);
    expect_error("/tokenize", "{\"inputs\":[[101,102]]}", 422, "token ids");
    expect_error("/embed", "{\"inputs\":[101,102],\"prompt_name\":\"query\"}", 422,
                 "token ids");
    {
        char *b = malloc(8192), *o = b;
        o = put(o, "{\"truncate\":false,\"inputs\":[101");
        for (int k = 0; k < 299; k++) o = put(o, ",1037");
        strcpy(o, "]}");
        expect_error("/embed", b, 422, "Given: 300");
        free(b);
    }
    /* options */
    expect_error("/embed", "{\"inputs\":\"a\",\"dimensions\":0}", 422, "dimensions");
    expect_error("/embed", "{\"inputs\":\"a\",\"dimensions\":-1}", 422, "dimensions");
    expect_error("/embed", "{\"inputs\":\"a\",\"dimensions\":385}", 422, "dimensions");
    expect_error("/v1/embeddings", "{\"input\":\"a\",\"dimensions\":1.5}", 422, "dimensions");
    expect_error("/v1/embeddings", "{\"input\":\"a\",\"dimensions\":9223372036854775808}", 400, NULL);
    expect_error("/v1/embeddings", "{\"input\":\"a\",\"encoding_format\":\"hex\"}", 400, "encoding_format");
    expect_error("/embed", "{\"inputs\":\"a\",\"normalize\":\"yes\"}", 400, "normalize");
    expect_error("/embed", "{\"inputs\":\"a\",\"normalize\":false}", 422, "normalize");
    expect_error("/embed", "{\"inputs\":\"a\",\"truncation_direction\":\"left\"}", 422, NULL);
    expect_error("/embed", "{\"inputs\":\"a\",\"truncation_direction\":7}", 400, NULL);
    expect_error("/embed", "{\"inputs\":\"a\",\"prompt_name\":\"query\"}", 422, "query");
    expect_error("/embed", "{\"inputs\":\"a\",\"prompt_name\":5}", 400, "prompt_name");
    /* deep nesting */
    {
        size_t n = 20000;
        char *b = malloc(2 * n + 16), *o = b;
        o = put(o, "{\"inputs\":");
        memset(o, '[', n);
        o += n;
        memset(o, ']', n);
        o += n;
        *o++ = '}';
        expect_error_n("/embed", b, (size_t)(o - b), 400, NULL);
        free(b);
    }
    /* limits, at the limit and one past it */
    {
        char b[512];
        strcpy(b, "{\"inputs\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]}");
        hc_resp r;
        bool sent = posts("/embed", b, &r);
        CHECK(sent && r.status == 200);
        if (!sent || r.status != 200)
            fprintf(stderr, "  8 inputs at --max-inputs 8: sent %d, status %d, body %.300s\n", sent,
                    sent ? r.status : 0, sent && r.body ? r.body : "");
        hc_resp_free(&r);
        expect_error("/embed", "{\"inputs\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
                     422, "batch size 9");
        expect_error("/v1/embeddings", "{\"input\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
                     422, "batch size 9");
    }
    { /* tokens per input with truncate=false: 254 words + [CLS] [SEP] = 256 passes, 257 not */
        char *b = malloc(8192), *o = b;
        o = put(o, "{\"truncate\":false,\"inputs\":\"");
        for (int k = 0; k < 254; k++) o = put(o, "%sa", k ? " " : "");
        strcpy(o, "\"}");
        hc_resp r;
        CHECK(posts("/embed", b, &r) && r.status == 200);
        hc_resp_free(&r);
        strcpy(o, " a\"}");
        expect_error("/embed", b, 422, "Given: 257");
        free(b);
    }
    { /* body bytes: the limit is 65536 */
        size_t n = 65536;
        char *b = malloc(n + 1);
        memset(b, ' ', n);
        memcpy(b, "{\"inputs\":\"x\"}", 14);
        hc_resp r;
        CHECK(post("/embed", b, n, &r) && r.status == 200);
        hc_resp_free(&r);
        b[n] = ' ';
        expect_error_n("/embed", b, n + 1, 413, NULL);
        free(b);
    }
    { /* bytes per input before tokenizing: --max-input-bytes 4000 */
        char *b = malloc(8192);
        int o = sprintf(b, "{\"inputs\":\"");
        memset(b + o, 'x', 4001);
        strcpy(b + o + 4001, "\"}");
        expect_error("/embed", b, 422, "4001 bytes");
        free(b);
    }
    /* routes and methods */
    expect_error("/nope", "{}", 404, NULL);
    {
        hc_resp r;
        CHECK(hc_request(g_port, "GET", "/embed", AUTH, NULL, 0, &r, 10) && r.status == 405);
        hc_resp_free(&r);
        CHECK(hc_request(g_port, "POST", "/health", AUTH, "{}", 2, &r, 10) && r.status == 405);
        hc_resp_free(&r);
    }
}

/* POST /embed with a given Content-Type header line ("" for none); returns the status and the
 * body in *body (caller frees). */
static int post_ctype(const char *path, const char *ctype_line, const char *body, char **out) {
    char req[2048];
    int n = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: x\r\n" AUTH
                     "%sContent-Length: %zu\r\n\r\n%s", path, ctype_line, strlen(body), body);
    int fd = hc_connect(g_port);
    if (fd < 0) return -1;
    hc_send_all(fd, req, (size_t)n);
    hc_resp r;
    int st = hc_read_response(fd, &r, 60, NULL, NULL) ? r.status : 0;
    *out = r.body ? strdup(r.body) : NULL;
    hc_resp_free(&r);
    close(fd);
    return st;
}

static void test_content_type(void) {
    static const struct {
        const char *line;
        int status;
    } cases[] = {
        {"", 200}, /* none: read as JSON */
        {"Content-Type: application/json\r\n", 200},
        {"Content-Type: application/json; charset=utf-8\r\n", 200},
        {"Content-Type: APPLICATION/JSON\r\n", 200},
        {"Content-Type: application/vnd.api+json\r\n", 200},
        {"Content-Type: text/plain\r\n", 415},
        {"Content-Type: application/x-www-form-urlencoded\r\n", 415},
        {"Content-Type: application/jsonx\r\n", 415},
        {"Content-Type: json\r\n", 415},
        {"Content-Type: \r\n", 415},
        {"Content-Type: application/json\r\nContent-Type: text/plain\r\n", 415},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int openai = 0; openai < 2; openai++) {
            char *body = NULL;
            const int st = post_ctype(openai ? "/v1/embeddings" : "/embed", cases[i].line,
                                      openai ? "{\"input\":\"a\"}" : "{\"inputs\":\"a\"}", &body);
            CHECKF(st == cases[i].status, "Content-Type case %zu (%s): status %d, expected %d",
                   i, cases[i].line, st, cases[i].status);
            if (cases[i].status == 415) {
                json_t *j = body ? json_loads(body, 0, NULL) : NULL;
                const json_t *e = json_object_get(j, "error");
                CHECKF(openai ? json_is_string(json_object_get(e, "message"))
                              : json_is_string(e) && strstr(body, "UnsupportedMediaType"),
                       "415 body: %.200s", body ? body : "");
                json_decref(j);
            }
            free(body);
        }
    /* GET routes ignore it; /tokenize checks it */
    char *body = NULL;
    CHECK(post_ctype("/tokenize", "Content-Type: text/plain\r\n", "{\"inputs\":\"a\"}", &body) == 415);
    free(body);
    probe("Content-Type checks");
}

/* Links every file of model folder `src` (and of its subfolders, made real) into `dst`,
 * except `skip`. Folders are never linked: t_rmdir must not follow a link into the cache. */
static void link_model(const char *src, const char *dst, const char *skip) {
    DIR *d = opendir(src);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, skip)) continue;
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        DIR *sub = opendir(a);
        if (sub) {
            closedir(sub);
            mkdir(b, 0755);
            link_model(a, b, skip);
        } else {
            CHECK(symlink(a, b) == 0);
        }
    }
    if (d) closedir(d);
}

/* Stops a server started beside the main one, whose port g_port held, and points g_port back */
static void side_server_stop(hc_server *srv, int main_port) {
    CHECK(hc_server_stop(srv, 60) == 0);
    g_port = main_port;
}

/* Prompts on a copy of the model whose config_sentence_transformers.json names two prompts and
 * a default one: vectors equal the library's sembed_encode_ex on the same folder. */
static void test_prompts(const char *model_dir) {
    char *dir = t_tmpdir();
    link_model(model_dir, dir, "config_sentence_transformers.json");
    const char *cfg = "{\"prompts\": {\"query\": \"query: \", \"passage\": \"passage: \"},"
                      " \"default_prompt_name\": \"passage\"}";
    CHECK(t_write_file(dir, "config_sentence_transformers.json", cfg, strlen(cfg)));
    sembed_model *m = NULL;
    sembed_ctx *ctx = NULL;
    sembed_error err = {0};
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = 1;
    if (sembed_model_load(dir, NULL, &m, &err) != SEMBED_OK ||
        sembed_ctx_new(m, &cp, &ctx, &err) != SEMBED_OK) {
        CHECKF(false, "the prompt model: %s", err.msg);
        sembed_model_free(m);
        t_rmdir(dir);
        return;
    }
    const char *args[] = {"-m", dir, "-t", "1", "--workers", "1", NULL};
    hc_server srv;
    CHECK(hc_server_start(&srv, args, 120));
    const int port = g_port;
    g_port = srv.port;
    const char *text = "what is the capital of France?";
    const size_t tl = strlen(text);
    float *got = malloc(sizeof(float) * (size_t)g_dim), *want = malloc(sizeof(float) * (size_t)g_dim);
    hc_resp r;
    const char *names[] = {"query", "passage", NULL}; /* NULL: no prompt_name, the default */
    for (int i = 0; i < 3; i++) {
        char body[256];
        if (names[i]) snprintf(body, sizeof body, "{\"inputs\":\"%s\",\"prompt_name\":\"%s\"}", text, names[i]);
        else snprintf(body, sizeof body, "{\"inputs\":\"%s\"}", text);
        CHECK(posts("/embed", body, &r) && r.status == 200);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        sembed_encode_opts o = {.prompt_name = names[i]};
        CHECK(sembed_encode_ex(ctx, 1, &text, &tl, &o, want, g_dim, NULL, NULL) == SEMBED_OK);
        CHECKF(json_floats(json_array_get(j, 0), got, g_dim) && same_bits(got, want, g_dim),
               "prompt %s: the server's vector differs from sembed_encode_ex", names[i] ? names[i] : "(default)");
        json_decref(j);
        hc_resp_free(&r);
    }
    /* the query prompt changes the vector; the default is "passage" */
    {
        sembed_encode_opts q = {.prompt_name = "query"}, none = {.prompt = ""};
        float *v2 = malloc(sizeof(float) * (size_t)g_dim);
        CHECK(sembed_encode_ex(ctx, 1, &text, &tl, &q, want, g_dim, NULL, NULL) == SEMBED_OK);
        CHECK(sembed_encode_ex(ctx, 1, &text, &tl, &none, v2, g_dim, NULL, NULL) == SEMBED_OK);
        CHECK(!same_bits(want, v2, g_dim));
        free(v2);
    }
    /* usage counts the prompt's tokens: "passage: " + text on the OpenAI route */
    {
        int32_t ids[512];
        sembed_tokens t = {.ids = ids, .capacity = 512};
        char both[256];
        snprintf(both, sizeof both, "passage: %s", text);
        CHECK(sembed_tokenize(sembed_model_tokenizer(m), both, strlen(both), &t, NULL) == SEMBED_OK);
        char body[256];
        snprintf(body, sizeof body, "{\"input\":\"%s\"}", text);
        CHECK(posts("/v1/embeddings", body, &r) && r.status == 200);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        CHECKF(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) == t.n,
               "usage with the default prompt: %.200s", r.body ? r.body : "");
        json_decref(j);
        hc_resp_free(&r);
    }
    /* unknown names list the model's prompts; /tokenize applies a prompt; /info lists them */
    CHECK(posts("/embed", "{\"inputs\":\"a\",\"prompt_name\":\"nope\"}", &r) && r.status == 422 &&
          strstr(r.body, "nope") && strstr(r.body, "query") && strstr(r.body, "passage"));
    hc_resp_free(&r);
    CHECK(posts("/tokenize", "{\"inputs\":\"Paris\",\"prompt_name\":\"query\"}", &r) && r.status == 200 &&
          strstr(r.body, "\"text\":\"query\""));
    hc_resp_free(&r);
    CHECK(hc_request(g_port, "GET", "/info", NULL, NULL, 0, &r, 10) && r.status == 200 &&
          strstr(r.body, "\"prompts\":[\"query\",\"passage\"]"));
    hc_resp_free(&r);
    side_server_stop(&srv, port);
    free(got);
    free(want);
    sembed_ctx_free(ctx);
    sembed_model_free(m);
    t_rmdir(dir);
}

/* --precision int8: /info says so and the vectors are the library's int8 ones, bit for bit */
static void test_precision_int8(const sembed_model *m, const char *model_dir) {
    sembed_ctx *ctx = NULL;
    sembed_error err = {0};
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = 1;
    cp.precision = SEMBED_PRECISION_INT8;
    if (sembed_ctx_new(m, &cp, &ctx, &err) != SEMBED_OK) {
        CHECKF(false, "an int8 context: %s", err.msg);
        return;
    }
    const char *args[] = {"-m", model_dir, "-t", "1", "--workers", "1", "--device", "cpu",
                          "--precision", "int8", NULL};
    hc_server srv;
    CHECK(hc_server_start(&srv, args, 120));
    const int port = g_port;
    g_port = srv.port;
    hc_resp r;
    CHECK(hc_request(g_port, "GET", "/info", NULL, NULL, 0, &r, 10) && r.status == 200 &&
          r.body && strstr(r.body, "\"model_dtype\":\"int8\""));
    hc_resp_free(&r);
    const char *text = "what is the capital of France?";
    const size_t tl = strlen(text);
    float *got = malloc(sizeof(float) * (size_t)g_dim), *want = malloc(sizeof(float) * (size_t)g_dim);
    CHECK(posts("/embed", "{\"inputs\":\"what is the capital of France?\"}", &r) && r.status == 200);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    CHECK(sembed_encode(ctx, 1, &text, &tl, want, g_dim, NULL, NULL) == SEMBED_OK);
    CHECKF(json_floats(json_array_get(j, 0), got, g_dim) && same_bits(got, want, g_dim),
           "--precision int8: the server's vector differs from the library's int8 one");
    CHECK(ref_vec(text, tl, got) && !same_bits(got, want, g_dim)); /* not the fp32 vector */
    json_decref(j);
    hc_resp_free(&r);
    side_server_stop(&srv, port);
    free(got);
    free(want);
    sembed_ctx_free(ctx);
}

static void test_auth(void) {
    const char *bad[] = {NULL, "Authorization: Bearer wrong\r\n", "Authorization: Bearer s3cret\r\n",
                         "Authorization: Basic " KEY "\r\n", "Authorization: Bearer " KEY "x\r\n",
                         "Authorization: Bearer\r\n", "Authorization: " KEY "\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *paths[] = {"/embed", "/v1/embeddings", "/tokenize"};
        for (int p = 0; p < 3; p++) {
            hc_resp r;
            const char *body = p == 1 ? "{\"input\":\"a\"}" : "{\"inputs\":\"a\"}";
            CHECK(hc_request(g_port, "POST", paths[p], bad[i], body, strlen(body), &r, 10));
            CHECKF(r.status == 401, "auth case %zu on %s: status %d", i, paths[p], r.status);
            CHECK(r.body && strstr(r.body, "\"error\"") && !strstr(r.body, KEY));
            hc_resp_free(&r);
        }
        hc_resp r;
        CHECK(hc_request(g_port, "GET", "/info", bad[i], NULL, 0, &r, 10) && r.status == 401);
        hc_resp_free(&r);
        CHECK(hc_request(g_port, "GET", "/health", bad[i], NULL, 0, &r, 10) && r.status == 200);
        hc_resp_free(&r);
    }
    probe("auth failures");
}

static void test_protocol(void) {
    const int fd0 = count_fds(g_pid);
    /* a client that disconnects mid-body, and one that goes away while its request is encoded */
    const char *partial = "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH
                          "Content-Length: 100\r\n\r\n{\"inputs\":";
    CHECK(raw_exchange(partial, strlen(partial), 1, true) == 0);
    probe("a client gone mid-body");
    {
        char *bb = bulk_body(8);
        char head[256];
        int hn = snprintf(head, sizeof head, "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH
                          "Content-Length: %zu\r\n\r\n", strlen(bb));
        int fd = hc_connect(g_port);
        CHECK(fd >= 0 && hc_send_all(fd, head, (size_t)hn) && hc_send_all(fd, bb, strlen(bb)));
        usleep(100000);
        close(fd);
        free(bb);
        probe("a client gone mid-request");
    }
    /* idle and slow clients: --timeout 2 */
    {
        int fd = hc_connect(g_port);
        const double t0 = hc_now();
        char c;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, 8000);
        ssize_t k = pr > 0 ? recv(fd, &c, 1, 0) : -1;
        CHECKF(k == 0 && hc_now() - t0 < 6, "an idle connection stays open (%.1f s)", hc_now() - t0);
        close(fd);
        fd = hc_connect(g_port); /* a stalled body: Content-Length larger than what comes */
        hc_send_all(fd, partial, strlen(partial));
        pr = poll(&pf, 1, 0);
        pf.fd = fd;
        pr = poll(&pf, 1, 8000);
        hc_resp r;
        int st = hc_read_response(fd, &r, 1, NULL, NULL) ? r.status : 0;
        CHECKF(pr > 0 && (st == 0 || st == 408), "a stalled body: status %d", st);
        hc_resp_free(&r);
        close(fd);
        probe("a stalled body");
    }
    /* smuggling-shaped and broken requests: an error or a closed connection, never a 200 */
    const char *abuse[] = {
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: 14\r\nContent-Length: 15\r\n\r\n{\"inputs\":\"a\"} ",
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: 14\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: -5\r\n\r\n",
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: abc\r\n\r\n",
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
        "POST /embed HTTP/1.1\r\nHost: x\r\n" AUTH "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        "FOO /embed HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /health\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET /health HTTP/1.1\r\n\r\n", /* no Host */
    };
    for (size_t i = 0; i < sizeof abuse / sizeof abuse[0]; i++) {
        int st = raw_exchange(abuse[i], strlen(abuse[i]), 3, false);
        CHECKF(st == 0 || (st >= 400 && st < 600), "abuse case %zu: status %d", i, st);
        probe("protocol abuse");
    }
    { /* a 64 KB header line */
        size_t n = 70000;
        char *b = malloc(n + 128);
        int o = sprintf(b, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
        memset(b + o, 'a', n);
        strcpy(b + o + n, "\r\n\r\n");
        int st = raw_exchange(b, strlen(b), 3, false);
        CHECKF(st == 0 || st == 431 || st == 413 || st == 400, "a 64 KB header: status %d", st);
        free(b);
    }
    { /* pipelining: 20 requests on one connection, 20 replies */
        char req[128];
        int fd = hc_connect(g_port);
        int n = snprintf(req, sizeof req, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        for (int i = 0; i < 20; i++) hc_send_all(fd, req, (size_t)n);
        char *carry = NULL;
        size_t carry_n = 0;
        int ok = 0;
        for (int i = 0; i < 20; i++) {
            hc_resp r;
            if (hc_read_response(fd, &r, 5, &carry, &carry_n) && r.status == 200) ok++;
            hc_resp_free(&r);
        }
        CHECKF(ok == 20, "pipelining: %d of 20 replies", ok);
        free(carry);
        close(fd);
    }
    int fd1 = count_fds(g_pid); /* connections close asynchronously: give them time */
    for (int i = 0; i < 1200 && fd1 > fd0; i++) { /* a gone client's batch may still run */
        usleep(100000);
        fd1 = count_fds(g_pid);
    }
    CHECKF(fd1 <= fd0, "file descriptors: %d before the abuse, %d after", fd0, fd1);
    probe("protocol tests");
}

static void test_queue_full(void) {
    /* --max-queue 8: while 8 long texts are admitted, one more text gets a 429 */
    char *bb = bulk_body(8);
    bool saw429 = false;
    /* texts of earlier tests' clients may still be encoding (slow under sanitizers) */
    for (int i = 0; i < 1200 && metric("sembed_queue_texts") != 0; i++) usleep(50000);
    for (int attempt = 0; attempt < 5 && !saw429; attempt++) {
        bulk_arg a = {.body = bb};
        pthread_t th;
        pthread_create(&th, NULL, bulk_thread, &a);
        for (int i = 0; i < 400 && metric("sembed_queue_texts") < 1; i++) usleep(5000);
        hc_resp r;
        CHECK(posts("/embed", "{\"inputs\":\"one more\"}", &r));
        if (r.status == 429) {
            saw429 = true;
            const char *ra = hc_header(&r, "Retry-After");
            CHECK(ra && atoi(ra) >= 1);
            CHECK(r.body && strstr(r.body, "\"error_type\":\"Overloaded\""));
        } else {
            CHECK(r.status == 200);
        }
        hc_resp_free(&r);
        pthread_join(th, NULL);
        CHECKF(a.status == 200 && a.json_ok, "the bulk request: status %d", a.status);
    }
    CHECK(saw429);
    free(bb);
    probe("a full queue");
}

static void test_shutdown(hc_server *srv) {
    /* SIGTERM with a request in flight: it completes with a 200, the server exits 0 */
    char *bb = bulk_body(3);
    bulk_arg a = {.body = bb};
    pthread_t th;
    pthread_create(&th, NULL, bulk_thread, &a);
    for (int i = 0; i < 400 && metric("sembed_queue_texts") < 1; i++) usleep(5000);
    int rc = hc_server_stop(srv, 600);
    pthread_join(th, NULL);
    CHECKF(a.status == 200 && a.json_ok, "the request in flight at SIGTERM: status %d", a.status);
    CHECKF(rc == 0, "exit status %d after SIGTERM", rc);
    hc_resp r;
    CHECK(!hc_request(g_port, "GET", "/health", NULL, NULL, 0, &r, 2));
    hc_resp_free(&r);
    free(bb);
}

int main(void) {
    const char *dir = t_model_dir("all-MiniLM-L6-v2");
    sembed_error err = {0};
    sembed_model *model = NULL;
    if (sembed_model_load(dir, NULL, &model, &err) != SEMBED_OK) {
        fprintf(stderr, "test_server: %s\n", err.msg);
        return 1;
    }
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = 1;
    if (sembed_ctx_new(model, &cp, &g_ctx, &err) != SEMBED_OK) {
        fprintf(stderr, "test_server: %s\n", err.msg);
        return 1;
    }
    g_dim = sembed_model_dim(model);
    g_tok = sembed_model_tokenizer(model);
    g_probe_ref = malloc(sizeof(float) * (size_t)g_dim);
    CHECK(ref_vec(k_probe, strlen(k_probe), g_probe_ref));

    const char *args[] = {"-m", dir, "--api-key", KEY, "--max-inputs", "8", "--max-queue", "8",
                          "--max-body-bytes", "65536", "--max-input-bytes", "4000",
                          "--timeout", "2", "--read-timeout", "3", "-t", "2",
                          "--drain-timeout", "600", NULL};
    hc_server srv;
    if (!hc_server_start(&srv, args, 120)) {
        fprintf(stderr, "test_server: the server did not start (%s)\n", hc_sembed_bin());
        return 1;
    }
    g_port = srv.port;
    g_pid = srv.pid;
    test_routes();
    test_errors();
    test_content_type();
    test_auth();
    test_protocol();
    test_queue_full();
    test_shutdown(&srv);
    test_prompts(dir);
    test_precision_int8(model, dir);

    free(g_probe_ref);
    sembed_ctx_free(g_ctx);
    sembed_model_free(model);
    return t_done("test_server");
}
