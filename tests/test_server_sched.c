/* test_server_sched.c — `sembed serve`'s scheduler in process: the router's decisions from given
 * costs (a GPU beside a CPU, busy and idle), the same decisions taken by a running scheduler
 * with two CPU contexts standing in for the GPU and the CPU, cost calibration, and batches that
 * mix texts, token ids, prompts and dimensions giving the library's vectors bit for bit.
 * Not an HTTP test (test_server.c). */
#include "testlib.h"

#include "../tools/sembed/fmtf.c"
#include "../tools/sembed/serve_request.c"
#include "../tools/sembed/serve_sched.c"

static const srv_sched_cost k_gpu = {.batch_s = 0.002, .token_s = 1e-6};
static const srv_sched_cost k_cpu = {.batch_s = 0.0, .token_s = 1e-4};

/* The router on two workers (0: the GPU, 1: the CPU); busy < 0: idle, else seconds from now. */
static int32_t route2(srv_sched_cost a, srv_sched_cost b, double busy0, double busy1,
                      bool ok0, bool ok1, int32_t tokens) {
    const double now = 1000.0;
    srv_sched_cost c[2] = {a, b};
    double bu[2] = {busy0 < 0 ? -1 : now + busy0, busy1 < 0 ? -1 : now + busy1};
    bool ok[2] = {ok0, ok1};
    return srv_sched_route(2, c, bu, ok, now, tokens);
}

static void test_route(void) {
    /* both idle: a 16-token query costs 2.016 ms on the GPU and 1.6 ms on the CPU; 1000 tokens
     * 3 ms against 100 ms */
    CHECK(route2(k_gpu, k_cpu, -1, -1, true, true, 16) == 1);
    CHECK(route2(k_gpu, k_cpu, -1, -1, true, true, 1000) == 0);
    /* the GPU busy for 50 ms more: the query goes to the CPU, a big batch waits for the GPU
     * (53 ms against 100 ms), a mid-size one (400 tokens: 52.4 ms against 40 ms) to the CPU */
    CHECK(route2(k_gpu, k_cpu, 0.05, -1, true, true, 16) == 1);
    CHECK(route2(k_gpu, k_cpu, 0.05, -1, true, true, 1000) == 0);
    CHECK(route2(k_gpu, k_cpu, 0.05, -1, true, true, 400) == 1);
    /* a GPU past its estimate counts as free now */
    CHECK(route2(k_gpu, k_cpu, -0.5, -1, true, true, 1000) == 0);
    /* the CPU busy too, for longer than the GPU's batch: the GPU */
    CHECK(route2(k_gpu, k_cpu, 0.05, 0.2, true, true, 16) == 0);
    /* eligibility: a bulk batch never goes to a query lane, whatever it costs */
    CHECK(route2(k_gpu, k_cpu, 0.05, -1, true, false, 16) == 0);
    CHECK(route2(k_gpu, k_cpu, -1, -1, false, true, 1000) == 1);
    CHECK(route2(k_gpu, k_cpu, -1, -1, false, false, 10) == -1);
    /* equal costs: the idle worker; both idle: the lower index; both busy: the earlier end */
    CHECK(route2(k_cpu, k_cpu, 0.0, -1, true, true, 100) == 1);
    CHECK(route2(k_cpu, k_cpu, -1, 0.0, true, true, 100) == 0);
    CHECK(route2(k_cpu, k_cpu, -1, -1, true, true, 100) == 0);
    CHECK(route2(k_cpu, k_cpu, 0.3, 0.1, true, true, 100) == 1);
    /* three workers: a GPU busy, two CPUs of which one is busy */
    {
        const srv_sched_cost c[3] = {k_gpu, k_cpu, k_cpu};
        const double now = 5.0, bu[3] = {now + 0.05, now + 0.01, -1};
        const bool ok[3] = {true, true, true};
        CHECK(srv_sched_route(3, c, bu, ok, now, 16) == 2);
        CHECK(srv_sched_route(3, c, bu, ok, now, 5000) == 0);
        CHECK(srv_sched_route(0, c, bu, ok, now, 16) == -1);
    }
}

/* ---- a running scheduler ----------------------------------------------------------------- */

static sembed_model *g_model;
static sembed_ctx *g_ref; /* the reference context */
static int32_t g_dim;

/* Tokens the encoder sees for a text (no prompt). */
static int32_t n_tokens(const char *text) {
    int32_t ids[512];
    sembed_tokens t = {.ids = ids, .capacity = 512};
    return sembed_tokenize(sembed_model_tokenizer(g_model), text, strlen(text), &t, NULL) ==
                   SEMBED_OK
               ? t.n
               : -1;
}

static bool same_bits(const float *a, const float *b, int32_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* A text of about `words` words. */
static char *text_of(int words, int seed) {
    static const char *w[] = {"river", "mountain", "search", "the", "vector", "of", "Paris",
                              "index", "query", "batch", "language", "model"};
    char *t = malloc((size_t)words * 12 + 16), *o = t;
    o += sprintf(o, "%d", seed);
    for (int k = 0; k < words; k++) o += sprintf(o, " %s", w[(k * 5 + seed) % 12]);
    return t;
}

/* Submits one text and waits; returns the worker that took it. */
static int32_t run_one(srv_sched *s, const char *text, float *out) {
    const size_t len = strlen(text);
    const int32_t nt = n_tokens(text);
    srv_sched_job j = {.n = 1, .texts = &text, .lens = &len, .n_tokens = &nt, .out = out};
    if (srv_sched_submit(s, &j) != SRV_SCHED_ADMITTED) return -2;
    srv_sched_wait(&j);
    if (j.status != SEMBED_OK) return -3;
    return j.worker;
}

static void test_routing_live(void) {
    /* Two CPU contexts stand in: worker 0 "the GPU" with a large fixed cost per batch and none
     * per token, worker 1 "the CPU" with a cost per token only. Idle, a batch of T tokens goes
     * to worker 1 while T * 0.01 s < 1 s, i.e. T < 100. */
    const srv_sched_worker_params wp[2] = {
        {.device = "cpu", .n_threads = 1, .cost = {.batch_s = 1.0, .token_s = 0}},
        {.device = "cpu", .n_threads = 1, .cost = {.batch_s = 0, .token_s = 0.01}}};
    const srv_sched_params p = {.n_workers = 2, .workers = wp};
    srv_sched *s = NULL;
    sembed_error err = {0};
    CHECK(srv_sched_new(g_model, &p, &s, &err) == SEMBED_OK);
    if (!s) return;
    srv_sched_cost c = {0};
    CHECK(srv_sched_worker_device(s, 0, &c) && c.batch_s == 1.0 && c.token_s == 0);
    float *got = malloc(sizeof(float) * (size_t)g_dim), *want = malloc(sizeof(float) * (size_t)g_dim);
    char *small = text_of(10, 1), *big = text_of(200, 2);
    CHECKF(n_tokens(small) < 100 && n_tokens(big) > 100, "tokens %d %d", n_tokens(small),
           n_tokens(big));
    CHECK(run_one(s, small, got) == 1);
    CHECK(sembed_encode(g_ref, 1, (const char *const *)&small, NULL, want, g_dim, NULL, NULL) == SEMBED_OK);
    CHECK(same_bits(got, want, g_dim));
    CHECK(run_one(s, big, got) == 0);
    CHECK(sembed_encode(g_ref, 1, (const char *const *)&big, NULL, want, g_dim, NULL, NULL) == SEMBED_OK);
    CHECK(same_bits(got, want, g_dim));
    CHECK(run_one(s, small, got) == 1);
    { /* a query and bulk queued together: the query goes to worker 1 alone, without the bulk
         inputs its batch had room for (they cost 3 s there, 1 s on worker 0) */
        char *b3[3] = {text_of(90, 3), text_of(90, 4), text_of(90, 5)};
        size_t bl[3];
        int32_t bn[3], sn = n_tokens(small);
        for (int i = 0; i < 3; i++) bl[i] = strlen(b3[i]), bn[i] = n_tokens(b3[i]);
        CHECKF(bn[0] + bn[1] + bn[2] > 128 && bn[0] + bn[1] + bn[2] + sn <= 512, "%d tokens",
               bn[0] + bn[1] + bn[2]);
        float *bo = malloc(sizeof(float) * 3 * (size_t)g_dim);
        const size_t sl = strlen(small);
        srv_sched_job jb = {.n = 3, .texts = (const char *const *)b3, .lens = bl,
                            .n_tokens = bn, .out = bo};
        srv_sched_job jq = {.n = 1, .texts = (const char *const *)&small, .lens = &sl,
                            .n_tokens = &sn, .out = got};
        srv_sched_stats st0, st1;
        for (int i = 0; i < 400; i++) { /* the last batch's counters land after its job ends:
                                            wait for all three texts run above */
            srv_sched_get_stats(s, &st0);
            if (st0.queued_texts == 0 && st0.batch_texts == 3) break;
            usleep(5000);
        }
        CHECKF(st0.batch_texts == 3, "%lld texts counted before the pair", (long long)st0.batch_texts);
        CHECK(srv_sched_submit(s, &jb) == SRV_SCHED_ADMITTED);
        CHECK(srv_sched_submit(s, &jq) == SRV_SCHED_ADMITTED);
        srv_sched_wait(&jq);
        srv_sched_wait(&jb);
        CHECKF(jq.worker == 1 && jb.worker == 0, "query on %d, bulk on %d", jq.worker, jb.worker);
        /* the counters are updated just after the jobs are released */
        for (int i = 0; i < 400; i++) {
            srv_sched_get_stats(s, &st1);
            if (st1.batch_texts - st0.batch_texts == 4) break;
            usleep(5000);
        }
        CHECKF(st1.worker[1].texts - st0.worker[1].texts == 1, "worker 1 took %lld inputs",
               (long long)(st1.worker[1].texts - st0.worker[1].texts));
        for (int i = 0; i < 3; i++) free(b3[i]);
        free(bo);
    }
    srv_sched_free(s);

    /* The same with the costs reversed: the big batch goes to worker 1 now. */
    const srv_sched_worker_params wr[2] = {wp[1], wp[0]};
    const srv_sched_params pr = {.n_workers = 2, .workers = wr};
    CHECK(srv_sched_new(g_model, &pr, &s, &err) == SEMBED_OK);
    if (s) {
        CHECK(run_one(s, small, got) == 0);
        CHECK(run_one(s, big, got) == 1);
        srv_sched_free(s);
    }
    free(small);
    free(big);
    free(got);
    free(want);
}

static void test_calibration(void) {
    const srv_sched_worker_params wp[2] = {{.device = "cpu", .n_threads = 1},
                                           {.device = "cpu", .n_threads = 1, .small_only = true}};
    const srv_sched_params p = {.n_workers = 2, .workers = wp, .calibrate = true};
    srv_sched *s = NULL;
    sembed_error err = {0};
    CHECKF(srv_sched_new(g_model, &p, &s, &err) == SEMBED_OK, "%s", err.msg);
    if (!s) return;
    for (int32_t w = 0; w < 2; w++) {
        srv_sched_cost c = {0};
        CHECK(!strcmp(srv_sched_worker_device(s, w, &c), "cpu"));
        /* measured, finite and positive (their size depends on the machine and its load) */
        CHECKF(c.token_s > 0 && c.token_s < 1 && c.batch_s >= 0 && c.batch_s < 10,
               "worker %d: batch %g s, token %g s", w, c.batch_s, c.token_s);
    }
    /* equal devices without calibrate: equal costs, none measured */
    const srv_sched_params q = {.n_workers = 2, .workers = wp};
    srv_sched *s2 = NULL;
    CHECK(srv_sched_new(g_model, &q, &s2, &err) == SEMBED_OK);
    if (s2) {
        srv_sched_cost a = {0}, b = {0};
        srv_sched_worker_device(s2, 0, &a);
        srv_sched_worker_device(s2, 1, &b);
        CHECK(a.batch_s == b.batch_s && a.token_s == b.token_s);
    }
    srv_sched_free(s2);
    srv_sched_free(s);
    /* a device this build cannot open is an error naming it, not a crash */
    const srv_sched_worker_params bad[1] = {{.device = "cuda:7"}};
    const srv_sched_params pb = {.n_workers = 1, .workers = bad};
    s = NULL;
    CHECKF(srv_sched_new(g_model, &pb, &s, &err) != SEMBED_OK && !s && strcasestr(err.msg, "cuda"), "%s", err.msg);
}

/* Jobs of every kind submitted while the only worker is busy, so that they share batches:
 * each vector must be the library's for that input alone. */
static void test_mixed_batches(void) {
    const srv_sched_params p = {.n_workers = 1, .max_batch_tokens = 4096,
                                .bulk_batch_tokens = 4096};
    srv_sched *s = NULL;
    sembed_error err = {0};
    CHECK(srv_sched_new(g_model, &p, &s, &err) == SEMBED_OK);
    if (!s) return;
    enum { N = 6 };
    char *texts[N];
    size_t lens[N];
    int32_t ntok[N];
    for (int i = 0; i < N; i++) {
        texts[i] = text_of(5 + 9 * i, 10 + i);
        lens[i] = strlen(texts[i]);
        ntok[i] = n_tokens(texts[i]);
    }
    /* token ids of texts[3] and texts[4] */
    int32_t ids3[512], ids4[512];
    sembed_tokens t3 = {.ids = ids3, .capacity = 512}, t4 = {.ids = ids4, .capacity = 512};
    CHECK(sembed_tokenize(sembed_model_tokenizer(g_model), texts[3], lens[3], &t3, NULL) == SEMBED_OK);
    CHECK(sembed_tokenize(sembed_model_tokenizer(g_model), texts[4], lens[4], &t4, NULL) == SEMBED_OK);
    const int32_t *idp[N] = {NULL, NULL, NULL, ids3, ids4, NULL};
    const int32_t nid[N] = {0, 0, 0, t3.n, t4.n, 0};

    char *blocker = text_of(1500, 99); /* keeps the worker busy while the rest queue up */
    const char *bt[8];
    size_t bl[8];
    int32_t bn[8];
    for (int i = 0; i < 8; i++) bt[i] = blocker, bl[i] = strlen(blocker), bn[i] = n_tokens(blocker);
    float *bout = malloc(sizeof(float) * 8 * (size_t)g_dim);
    srv_sched_job jb = {.n = 8, .texts = bt, .lens = bl, .n_tokens = bn, .out = bout};
    CHECK(srv_sched_submit(s, &jb) == SRV_SCHED_ADMITTED);

    /* job A: texts 0..2 and the ids of 3 and 4, full dimension; job B: the same, 32 floats;
     * job C: text 5 alone with 16 floats */
    float *oa = malloc(sizeof(float) * N * (size_t)g_dim), *ob = malloc(sizeof(float) * N * 32),
          *oc = malloc(sizeof(float) * 16);
    srv_sched_job ja = {.n = 5, .texts = (const char *const *)texts, .lens = lens,
                        .ids = idp, .n_ids = nid, .n_tokens = ntok, .out = oa};
    srv_sched_job jbb = ja;
    jbb.out = ob;
    jbb.opts.dimensions = 32;
    srv_sched_job jc = {.n = 1, .texts = (const char *const *)&texts[5], .lens = &lens[5],
                        .n_tokens = &ntok[5], .out = oc, .opts = {.dimensions = 16}};
    CHECK(srv_sched_submit(s, &ja) == SRV_SCHED_ADMITTED);
    CHECK(srv_sched_submit(s, &jbb) == SRV_SCHED_ADMITTED);
    CHECK(srv_sched_submit(s, &jc) == SRV_SCHED_ADMITTED);
    srv_sched_stats st0;
    srv_sched_get_stats(s, &st0);
    srv_sched_wait(&jb);
    srv_sched_wait(&ja);
    srv_sched_wait(&jbb);
    srv_sched_wait(&jc);
    CHECK(jb.status == SEMBED_OK && ja.status == SEMBED_OK && jbb.status == SEMBED_OK &&
          jc.status == SEMBED_OK);
    srv_sched_stats st;
    srv_sched_get_stats(s, &st);
    /* the blocker's batches, then the 11 queued inputs together in one */
    CHECKF(st.batches - st0.batches <= 2, "%lld batches after the blocker's first",
           (long long)(st.batches - st0.batches));

    float *want = malloc(sizeof(float) * (size_t)g_dim);
    for (int i = 0; i < 5; i++) {
        sembed_encode_opts o = {.dimensions = 32};
        if (idp[i]) {
            CHECK(sembed_encode_ids(g_ref, 1, &idp[i], &nid[i], NULL, want, g_dim, NULL, NULL) == SEMBED_OK);
            CHECKF(same_bits(oa + (int64_t)i * g_dim, want, g_dim), "ids input %d", i);
            /* the ids of a text give the text's vector */
            CHECK(sembed_encode(g_ref, 1, (const char *const *)&texts[i], &lens[i], want, g_dim, NULL, NULL) == SEMBED_OK);
            CHECKF(same_bits(oa + (int64_t)i * g_dim, want, g_dim), "ids input %d vs its text", i);
            CHECK(sembed_encode_ids(g_ref, 1, &idp[i], &nid[i], &o, want, 32, NULL, NULL) == SEMBED_OK);
        } else {
            CHECK(sembed_encode(g_ref, 1, (const char *const *)&texts[i], &lens[i], want, g_dim, NULL, NULL) == SEMBED_OK);
            CHECKF(same_bits(oa + (int64_t)i * g_dim, want, g_dim), "text input %d", i);
            CHECK(sembed_encode_ex(g_ref, 1, (const char *const *)&texts[i], &lens[i], &o, want, 32, NULL, NULL) == SEMBED_OK);
        }
        CHECKF(same_bits(ob + (int64_t)i * 32, want, 32), "input %d at 32 dimensions", i);
    }
    sembed_encode_opts o16 = {.dimensions = 16};
    CHECK(sembed_encode_ex(g_ref, 1, (const char *const *)&texts[5], &lens[5], &o16, want, 16, NULL, NULL) == SEMBED_OK);
    CHECK(same_bits(oc, want, 16));
    CHECK(sembed_encode(g_ref, 1, (const char *const *)&blocker, NULL, want, g_dim, NULL, NULL) == SEMBED_OK);
    CHECK(same_bits(bout + 7 * (int64_t)g_dim, want, g_dim));

    /* an id out of range fails its own job only, with the input named */
    int32_t badids[3] = {101, 1 << 30, 102};
    const int32_t *bp[1] = {badids};
    const int32_t bnid[1] = {3}, bnt[1] = {3};
    const char *nt[1] = {NULL};
    const size_t nl[1] = {0};
    srv_sched_job jx = {.n = 1, .texts = nt, .lens = nl, .ids = bp, .n_ids = bnid,
                        .n_tokens = bnt, .out = want};
    CHECK(srv_sched_submit(s, &jx) == SRV_SCHED_ADMITTED);
    srv_sched_wait(&jx);
    CHECKF(jx.status == SEMBED_ERR_INPUT && strstr(jx.err.msg, "input 0"), "status %d: %s",
           jx.status, jx.err.msg);
    CHECK(run_one(s, texts[0], want) == 0);

    /* invalid jobs are refused at submit */
    const int32_t zero = 0;
    srv_sched_job jz = {.n = 1, .texts = (const char *const *)texts, .lens = lens,
                        .n_tokens = &zero, .out = want};
    CHECK(srv_sched_submit(s, &jz) == SRV_SCHED_INVALID);
    srv_sched_job jd = {.n = 1, .texts = (const char *const *)texts, .lens = lens,
                        .n_tokens = ntok, .out = want, .opts = {.dimensions = g_dim + 1}};
    CHECK(srv_sched_submit(s, &jd) == SRV_SCHED_INVALID);

    srv_sched_free(s);
    for (int i = 0; i < N; i++) free(texts[i]);
    free(blocker);
    free(bout);
    free(oa);
    free(ob);
    free(oc);
    free(want);
}

int main(void) {
    test_route();
    const char *dir = t_model_dir("all-MiniLM-L6-v2");
    sembed_error err = {0};
    if (sembed_model_load(dir, NULL, &g_model, &err) != SEMBED_OK) {
        fprintf(stderr, "test_server_sched: %s\n", err.msg);
        return 1;
    }
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = 1;
    if (sembed_ctx_new(g_model, &cp, &g_ref, &err) != SEMBED_OK) {
        fprintf(stderr, "test_server_sched: %s\n", err.msg);
        return 1;
    }
    g_dim = sembed_model_dim(g_model);
    test_routing_live();
    test_calibration();
    test_mixed_batches();
    sembed_ctx_free(g_ref);
    sembed_model_free(g_model);
    return t_done("test_server_sched");
}
