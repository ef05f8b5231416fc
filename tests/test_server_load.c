/* test_server_load.c — the load test of `sembed serve` on loopback: in-process throughput (the
 * baseline, same machine, same run), then over HTTP: many concurrent one-text requests (dynamic
 * batching ratio), one-text queries at a fixed rate (p50/p99, zero errors), the same while bulk
 * batches run (p99 ratio), and RSS after N and 10 N requests. Short by default (a ctest);
 * bench/load_test.sh runs the 60 s version. Not a benchmark of the encoder alone. */
#include "testlib.h"

#include "server/http_client.c"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

/* Appends formatted text at o; returns the new end. */
static char *put(char *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *put(char *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsprintf(o, fmt, ap);
    va_end(ap);
    return o + (n > 0 ? n : 0);
}

static int g_port;
static int g_ntexts;
static char **g_texts;
static int g_nbulk; /* > 0: bulk requests use these long texts (--bulk-words) */
static char **g_bulk;

typedef struct cfg {
    double duration;   /* seconds per timed phase */
    double rate;       /* one-text requests per second in the fixed-rate phases */
    int conns;         /* concurrent connections in the throughput phase */
    int rss_requests;  /* the RSS check compares after N and after 10 N requests */
    int threads;       /* in-process threads (and per server worker when given) */
    bool threads_given;
    int bulk_words;    /* > 0: bulk texts of this many words (long GPU batches), else mixed */
    int bulk_size;     /* texts per bulk request */
} cfg;

/* Texts of 8 to 40 words from a small vocabulary, deterministic. */
static void make_texts(int n) {
    static const char *w[] = {"the", "retrieval", "of", "passages", "embedding", "model", "query",
                              "vector", "search", "index", "server", "latency", "batch", "token",
                              "language", "document", "similar", "question", "answer", "fast",
                              "Paris", "France", "capital", "river", "mountain", "history"};
    uint32_t s = 12345;
    g_texts = malloc(sizeof(char *) * (size_t)n);
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        int words = 8 + (int)((s >> 16) % 33);
        char *t = malloc(16 * (size_t)words + 16), *o = t;
        if (!t) abort();
        o = put(o, "%d", i);
        for (int k = 0; k < words; k++) {
            s = s * 1103515245u + 12345u;
            o = put(o, " %s", w[(s >> 16) % (sizeof w / sizeof w[0])]);
        }
        g_texts[i] = t;
    }
    g_ntexts = n;
}

/* One request on a kept-alive connection (*fd, reconnecting when needed). */
static int ka_request(int *fd, const char *body, size_t n) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0) *fd = hc_connect(g_port);
        if (*fd < 0) return 0;
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n", n);
        hc_resp r;
        if (hc_send_all(*fd, head, (size_t)hn) && hc_send_all(*fd, body, n) &&
            hc_read_response(*fd, &r, 60, NULL, NULL)) {
            int st = r.status;
            bool close_it = hc_header(&r, "Connection") && strstr(hc_header(&r, "Connection"), "close");
            hc_resp_free(&r);
            if (close_it) {
                close(*fd);
                *fd = -1;
            }
            return st;
        }
        close(*fd);
        *fd = -1;
    }
    return 0;
}

static size_t one_body(char *b, size_t cap, int i) {
    return (size_t)snprintf(b, cap, "{\"inputs\":\"%s\"}", g_texts[i % g_ntexts]);
}

/* ---- phases ------------------------------------------------------------------------------ */

typedef struct load_thread {
    pthread_t th;
    int id, n_threads;
    double t0, duration, rate; /* rate 0: closed loop */
    int bulk;                  /* > 0: send batches of this many texts, closed loop */
    int max_requests;          /* > 0: stop after this many (closed loop) */
    atomic_bool *stop;
    /* out */
    int64_t ok, errors, texts;
    double *lat;
    int64_t n_lat, cap_lat;
} load_thread;

static void add_lat(load_thread *t, double s) {
    if (t->n_lat == t->cap_lat) {
        t->cap_lat = t->cap_lat ? 2 * t->cap_lat : 4096;
        t->lat = realloc(t->lat, sizeof(double) * (size_t)t->cap_lat);
    }
    t->lat[t->n_lat++] = s;
}

static void *load_main(void *v) {
    load_thread *t = v;
    int fd = -1;
    char *body = malloc(1 << 24);
    for (int64_t k = 0;; k++) {
        double sched = hc_now();
        if (t->rate > 0) { /* open loop: latency counts from the scheduled time */
            sched = t->t0 + ((double)k * t->n_threads + t->id) / t->rate;
            if (sched > t->t0 + t->duration) break;
            double wait = sched - hc_now();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        } else if (hc_now() > t->t0 + t->duration || (t->stop && atomic_load(t->stop)) ||
                   (t->max_requests && k >= t->max_requests)) {
            break;
        }
        size_t n;
        int ntexts = 1;
        if (t->bulk > 0) {
            char *o = body;
            o = put(o, "{\"inputs\":[");
            for (int i = 0; i < t->bulk; i++)
                o = put(o, "%s\"%s\"", i ? "," : "",
                        g_nbulk ? g_bulk[(k * t->bulk + i) % g_nbulk]
                                : g_texts[(k * t->bulk + i) % g_ntexts]);
            o = put(o, "]}");
            n = (size_t)(o - body);
            ntexts = t->bulk;
        } else {
            n = one_body(body, 1 << 24, (int)(k * t->n_threads + t->id));
        }
        int st = ka_request(&fd, body, n);
        const double lat = hc_now() - sched;
        if (st == 200) {
            t->ok++;
            t->texts += ntexts;
            add_lat(t, lat);
        } else {
            t->errors++;
        }
    }
    if (fd >= 0) close(fd);
    free(body);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    int64_t ok, errors, texts;
    double p50, p99, secs;
} result;

static result run_phase(int n_threads, double duration, double rate, int bulk, int max_requests,
                        atomic_bool *stop) {
    load_thread *t = calloc((size_t)n_threads, sizeof *t);
    const double t0 = hc_now() + 0.01;
    for (int i = 0; i < n_threads; i++) {
        t[i] = (load_thread){.id = i, .n_threads = n_threads, .t0 = t0, .duration = duration,
                             .rate = rate, .bulk = bulk, .max_requests = max_requests,
                             .stop = stop};
        pthread_create(&t[i].th, NULL, load_main, &t[i]);
    }
    result r = {0};
    int64_t n = 0;
    for (int i = 0; i < n_threads; i++) {
        pthread_join(t[i].th, NULL);
        n += t[i].n_lat;
    }
    r.secs = hc_now() - t0;
    double *all = malloc(sizeof(double) * (size_t)(n ? n : 1));
    n = 0;
    for (int i = 0; i < n_threads; i++) {
        r.ok += t[i].ok, r.errors += t[i].errors, r.texts += t[i].texts;
        memcpy(all + n, t[i].lat, sizeof(double) * (size_t)t[i].n_lat);
        n += t[i].n_lat;
        free(t[i].lat);
    }
    qsort(all, (size_t)n, sizeof(double), cmp_d);
    r.p50 = n ? all[(size_t)(0.50 * (double)(n - 1))] : NAN;
    r.p99 = n ? all[(size_t)(0.99 * (double)(n - 1))] : NAN;
    free(all);
    free(t);
    return r;
}

static long rss_kb(pid_t pid) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

/* In-process texts per second for batches of 64 one-text inputs, the baseline. */
static double inprocess_rate(const char *dir, int threads, double seconds) {
    sembed_error err = {0};
    sembed_model *m = NULL;
    sembed_ctx *ctx = NULL;
    sembed_ctx_params cp = sembed_ctx_default_params();
    cp.n_threads = threads;
    if (sembed_model_load(dir, NULL, &m, &err) != SEMBED_OK ||
        sembed_ctx_new(m, &cp, &ctx, &err) != SEMBED_OK) {
        fprintf(stderr, "in-process: %s\n", err.msg);
        sembed_model_free(m);
        return 0;
    }
    const int B = 64, dim = sembed_model_dim(m);
    float *out = malloc(sizeof(float) * (size_t)(B * dim));
    sembed_encode(ctx, B, (const char *const *)g_texts, NULL, out, (int64_t)B * dim, NULL, &err);
    int64_t texts = 0;
    const double t0 = hc_now();
    for (int k = 0; hc_now() - t0 < seconds; k++) {
        const int first = (k * B) % (g_ntexts - B);
        sembed_encode(ctx, B, (const char *const *)g_texts + first, NULL, out, (int64_t)B * dim,
                      NULL, &err);
        texts += B;
    }
    const double rate = (double)texts / (hc_now() - t0);
    free(out);
    sembed_ctx_free(ctx);
    sembed_model_free(m);
    return rate;
}

int main(int argc, char **argv) {
    cfg c = {.duration = 4, .rate = 20, .conns = 32, .rss_requests = 500, .threads = 0,
             .bulk_size = 32};
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    c.rss_requests = 100; /* sanitizer builds: a smoke test; RSS is not asserted there */
#endif
    bool full = false;
    char **extra = NULL; /* after "--": more `sembed serve` options */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) {
            full = true;
            c.duration = 60;
            c.rss_requests = 10000;
        } else if (!strcmp(argv[i], "--duration") && i + 1 < argc) c.duration = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc) c.rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc) c.conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rss-requests") && i + 1 < argc) c.rss_requests = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bulk-words") && i + 1 < argc) c.bulk_words = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bulk-size") && i + 1 < argc) c.bulk_size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            c.threads = atoi(argv[++i]), c.threads_given = true;
        else if (!strcmp(argv[i], "--")) {
            extra = argv + i + 1;
            break;
        } else {
            fprintf(stderr, "usage: test_server_load [--full] [--duration S] [--rate R] "
                            "[--conns C] [--rss-requests N] [--threads T] [--bulk-words W] "
                            "[--bulk-size N] [-- SERVE-OPTIONS]\n");
            return 2;
        }
    }
    const char *dir = t_model_dir("all-MiniLM-L6-v2");
    make_texts(2000);
    if (c.bulk_words > 0) { /* long bulk texts: whole-budget GPU batches */
        g_nbulk = 64;
        g_bulk = malloc(sizeof(char *) * (size_t)g_nbulk);
        for (int i = 0; i < g_nbulk; i++) {
            char *t = malloc(12 * (size_t)c.bulk_words + 16), *o = t;
            o = put(o, "%d", i);
            static const char *w[] = {"river", "index", "of", "the", "search", "passage", "model"};
            for (int k = 0; k < c.bulk_words; k++) o = put(o, " %s", w[(i + k * 3) % 7]);
            g_bulk[i] = t;
        }
    }
    if (c.threads == 0) c.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char th[16]; /* the server splits its CPUs between its workers unless --threads says */
    snprintf(th, sizeof th, "%d", c.threads_given ? c.threads : 0);

    const double base = inprocess_rate(dir, c.threads, full ? 20 : 3);
    printf("in-process: %.1f texts/s (batches of 64, %d threads)\n", base, c.threads);

    const char *args[48] = {"-m", dir, "-t", th, "--max-connections-per-ip", "1024", NULL};
    for (int i = 6; extra && *extra && i < 47; i++) args[i] = *extra++;
    hc_server srv;
    if (!hc_server_start(&srv, args, 120)) {
        fprintf(stderr, "test_server_load: the server did not start\n");
        return 1;
    }
    g_port = srv.port;
    run_phase(4, 1, 0, 0, 50, NULL); /* warm-up */

    result a = run_phase(c.conns, c.duration, 0, 0, 0, NULL);
    const double http_rate = (double)a.texts / a.secs;
    printf("HTTP, %d connections of one-text requests: %.1f texts/s, %lld errors -> %.0f%% of "
           "in-process (dynamic batching)\n",
           c.conns, http_rate, (long long)a.errors, 100 * http_rate / base);
    CHECK(a.errors == 0);

    result b = run_phase(4, c.duration, c.rate, 0, 0, NULL);
    printf("fixed rate %.0f/s for %.0f s: %lld ok, %lld errors, p50 %.2f ms, p99 %.2f ms\n",
           c.rate, c.duration, (long long)b.ok, (long long)b.errors, 1e3 * b.p50, 1e3 * b.p99);
    CHECK(b.errors == 0 && b.ok > 0);

    atomic_bool stop = false;
    /* bulk clients in the background: batches of 32 texts, closed loop */
    load_thread bt = {.id = 0, .n_threads = 1, .t0 = hc_now(), .duration = c.duration + 5,
                      .bulk = c.bulk_size, .stop = &stop};
    pthread_create(&bt.th, NULL, load_main, &bt);
    usleep(300000);
    result q = run_phase(4, c.duration, c.rate, 0, 0, NULL);
    atomic_store(&stop, true);
    pthread_join(bt.th, NULL);
    free(bt.lat);
    printf("fixed rate %.0f/s while bulk batches of %d run (%lld bulk texts, %lld bulk errors): "
           "p50 %.2f ms, p99 %.2f ms = %.2fx the idle p99\n",
           c.rate, c.bulk_size, (long long)bt.texts, (long long)bt.errors, 1e3 * q.p50, 1e3 * q.p99,
           q.p99 / b.p99);
    CHECK(q.errors == 0 && bt.errors == 0);

    run_phase(8, 1e9, 0, 0, c.rss_requests / 8, NULL);
    const long rss1 = rss_kb(srv.pid);
    run_phase(8, 1e9, 0, 0, 9 * c.rss_requests / 8, NULL);
    const long rss2 = rss_kb(srv.pid);
    printf("RSS: %ld kB after %d requests, %ld kB after %d (%+.1f%%)\n", rss1, c.rss_requests,
           rss2, 10 * c.rss_requests, 100.0 * (double)(rss2 - rss1) / (double)rss1);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    CHECKF(rss2 <= rss1 + rss1 / 10, "RSS grew by more than 10%%");
#endif
    if (full) {
        CHECKF(http_rate >= 0.8 * base, "dynamic batching reaches %.0f%% of in-process",
               100 * http_rate / base);
        CHECKF(q.p99 <= 3 * b.p99, "query p99 under bulk is %.2fx idle", q.p99 / b.p99);
    }
    { /* where the batches went (one line per worker and device) */
        hc_resp r;
        if (hc_request(g_port, "GET", "/metrics", NULL, NULL, 0, &r, 10) && r.status == 200)
            for (const char *l = r.body; l && *l;) {
                const char *e = strchr(l, '\n');
                const int n = e ? (int)(e - l) : (int)strlen(l);
                if (!strncmp(l, "sembed_worker_", 14)) printf("%.*s\n", n, l);
                l = e ? e + 1 : NULL;
            }
        hc_resp_free(&r);
    }
    CHECK(hc_server_stop(&srv, 60) == 0);
    for (int i = 0; i < g_ntexts; i++) free(g_texts[i]);
    free(g_texts);
    for (int i = 0; i < g_nbulk; i++) free(g_bulk[i]);
    free(g_bulk);
    return t_done("test_server_load");
}
