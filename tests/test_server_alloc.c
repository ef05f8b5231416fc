/* test_server_alloc.c — allocation-failure countdown over `sembed serve`'s request handling, in
 * process (srv_handle, no HTTP): for every request kind and every N, the N-th allocation of the
 * server (jansson's included) fails, once or from then on; each reply must be the normal one or
 * a clean 500/503 JSON error of the route's shape, and nothing may crash or leak (ASan). The
 * library's own allocations on the request path get the same treatment. Not the HTTP layer. */
#include "testlib.h"

#include "common.h"

#include "../tools/sembed/serve_handle.c"
#include "../tools/sembed/fmtf.c"
#include "../tools/sembed/serve_request.c"
#include "../tools/sembed/serve_sched.c"

typedef struct req {
    srv_route route;
    const char *body;
} req;

static const req k_reqs[] = {
    {SRV_EMBED, "{\"inputs\":\"Hello, world!\"}"},
    {SRV_EMBED, "{\"inputs\":[\"a\",\"bb\",\"the quick brown fox\"],\"truncate\":true}"},
    {SRV_EMBED, "{\"inputs\":[[101,7592,102],\"text\"],\"dimensions\":8}"},
    {SRV_OPENAI, "{\"input\":[\"one\",\"two\"],\"encoding_format\":\"base64\",\"model\":\"m\"}"},
    {SRV_OPENAI, "{\"input\":[101,2023,102],\"dimensions\":4}"},
    {SRV_OPENAI, "{\"input\":\"x\",\"dimensions\":0}"},
    {SRV_EMBED, "{\"inputs\":[101,99999999]}"},
    {SRV_EMBED, "{\"inputs\":\"a\",\"prompt_name\":\"nope\"}"},
    {SRV_EMBED, "{\"inputs\":[\"a\",7]}"},
    {SRV_EMBED, "{\"inputs\":\"\\u00e9t\\u00e9 \\ud83d\\ude00\"} "},
    {SRV_EMBED, "{bad json"},
    {SRV_TOKENIZE, "{\"inputs\":[\"Hello, world!\",\"caf\\u00e9\"]}"},
    {SRV_TOKENIZE, "{\"inputs\":\"Hello\",\"add_special_tokens\":false}"},
    {SRV_INFO, ""},
    {SRV_METRICS, ""},
    {SRV_HEALTH, ""},
};
#define N_REQS (sizeof k_reqs / sizeof k_reqs[0])

/* A reply is the expected one, or an out-of-memory 500/503 in the route's JSON error shape. */
static bool acceptable(const req *q, const srv_reply *ref, const srv_reply *got, char *why,
                       size_t cap) {
    if (got->code == ref->code && got->n == ref->n && !memcmp(got->body, ref->body, ref->n))
        return true;
    if (got->code != 500 && got->code != 503) {
        snprintf(why, cap, "status %d (expected %d or 500/503): %.200s", got->code, ref->code,
                 got->body);
        return false;
    }
    json_t *j = json_loadb(got->body, got->n, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const bool shape = q->route == SRV_OPENAI ? json_is_string(json_object_get(e, "message"))
                                              : json_is_string(e);
    json_decref(j);
    if (!shape) snprintf(why, cap, "a %d that is not a JSON error: %.200s", got->code, got->body);
    return shape;
}

/* Runs request q with allocation `at` failing (once or from then on, in the server's or the
 * library's allocator). Returns how many allocations the request made. */
static int64_t run_failing(srv_server *S, const req *q, const srv_reply *ref, int64_t at,
                           bool persistent, bool library) {
    if (library) sembed__alloc_fail_at(at, persistent);
    else srv_alloc_fail_at(at, persistent);
    srv_reply got;
    srv_handle(S, q->route, q->body, strlen(q->body), -1, &got);
    const int64_t made = library ? sembed__alloc_fail_at(0, false) : srv_alloc_fail_at(0, false);
    char why[400] = "";
    CHECKF(acceptable(q, ref, &got, why, sizeof why), "%s allocation %lld%s failing, %.60s: %s",
           library ? "library" : "server", (long long)at, persistent ? " and after" : "",
           q->body, why);
    srv_reply_free(&got);
    return made;
}

int main(void) {
    const char *dir = t_model_dir("all-MiniLM-L6-v2");
    srv_options o = {.model_dir = dir, .device = "cpu", .workers = 1, .threads = 1,
                     .query_lane = -1, .max_inputs = 8, .auto_truncate = true};
    srv_server *S = NULL;
    sembed_error err = {0};
    if (srv_server_open(&o, &S, &err) != SEMBED_OK) {
        fprintf(stderr, "test_server_alloc: %s\n", err.msg);
        return 1;
    }
    /* /metrics counts the requests of this test: keep its reply fixed */
    int64_t total_server = 0, total_library = 0, failed_runs = 0;
    for (size_t i = 0; i < N_REQS; i++) {
        const req *q = &k_reqs[i];
        srv_reply ref;
        srv_handle(S, q->route, q->body, strlen(q->body), -1, &ref);
        CHECKF(ref.code != 500 && ref.code != 503, "%s: %d without failures", q->body, ref.code);
        const bool metrics = q->route == SRV_METRICS;
        for (int lib = 0; lib < 2; lib++)
            for (int persistent = 0; persistent < 2; persistent++)
                for (int64_t at = 1;; at++) {
                    if (metrics) { /* its reply holds timings; only the shape can be checked */
                        srv_reply_free(&ref);
                        srv_handle(S, q->route, q->body, strlen(q->body), -1, &ref);
                    }
                    const int64_t made = run_failing(S, q, &ref, at, persistent, lib);
                    if (made < at) break; /* the countdown went past the last allocation */
                    failed_runs++;
                    if (lib) total_library = at > total_library ? at : total_library;
                    else total_server = at > total_server ? at : total_server;
                }
        srv_reply_free(&ref);
    }
    printf("test_server_alloc: %lld runs with a failing allocation (up to %lld server and %lld "
           "library allocations per request)\n",
           (long long)failed_runs, (long long)total_server, (long long)total_library);
    CHECK(total_server > 10); /* the countdown did reach the request path */
    /* the server still answers normally afterwards */
    srv_reply r;
    srv_handle(S, SRV_EMBED, k_reqs[0].body, strlen(k_reqs[0].body), -1, &r);
    CHECK(r.code == 200);
    srv_reply_free(&r);
    srv_server_close(S);
    return t_done("test_server_alloc");
}
