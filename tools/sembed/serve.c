/* serve.c — `sembed serve`: the HTTP layer on libmicrohttpd (a thread per connection) and the
 * command. Each request is checked (method, auth, Content-Length, Content-Type) before its body
 * is read, then handed whole to the server core (serve_handle.c), whose reply is sent. Not
 * request parsing (serve_request.c) and not the scheduler (serve_sched.c). */
#include "cli.h"
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

typedef struct conn_req {
    srv_route route;
    srv_buf body;
    double t0;
    bool replied;
    bool body_oom; /* the body could not be stored: a 500 once it has been read */
    int code;
} conn_req;

static enum MHD_Result send_reply(srv_server *S, struct MHD_Connection *c, conn_req *q,
                                  srv_reply *rp) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        rp->n, rp->body, rp->owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        srv_reply_free(rp);
        return MHD_NO;
    }
    const int code = rp->code;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->ctype);
    *rp = (srv_reply){0}; /* the response owns the body now */
    if (code == 429) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (code == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (code == 405)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
                                q->route <= SRV_TOKENIZE ? "POST" : "GET");
    if (code == 415) MHD_add_response_header(r, "Accept", "application/json");
    if (atomic_load(&S->draining)) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    q->replied = true;
    q->code = code;
    srv_count_request(S, q->route, code);
    return ok;
}

static enum MHD_Result fail(srv_server *S, struct MHD_Connection *c, conn_req *q, int http,
                            const char *type, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(srv_server *S, struct MHD_Connection *c, conn_req *q, int http,
                            const char *type, const char *fmt, ...) {
    srv_error e = {.http = http, .type = type};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    srv_reply rp;
    srv_reply_error(&rp, q->route, &e);
    return send_reply(S, c, q, &rp);
}

/* ---- the access handler ------------------------------------------------------------------ */

static srv_route route_of(const char *url) {
    if (!strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings")) return SRV_OPENAI;
    if (!strcmp(url, "/embed")) return SRV_EMBED;
    if (!strcmp(url, "/tokenize")) return SRV_TOKENIZE;
    if (!strcmp(url, "/info")) return SRV_INFO;
    if (!strcmp(url, "/health")) return SRV_HEALTH;
    if (!strcmp(url, "/metrics")) return SRV_METRICS;
    return SRV_OTHER;
}

/* Constant time in the length of the expected key, whatever the candidate. */
static bool key_matches(const srv_server *S, const char *h) {
    if (!h || strncmp(h, "Bearer ", 7) != 0) return false;
    const char *k = h + 7;
    const size_t kl = strlen(k);
    volatile unsigned char acc = (unsigned char)(kl != S->api_key_len);
    for (size_t i = 0; i < S->api_key_len; i++)
        acc |= (unsigned char)(S->api_key[i] ^ (i < kl ? k[i] : 0));
    return acc == 0;
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind, (void)value;
    int *n = cls; /* [0]: Content-Length, [1]: Content-Type */
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) n[0]++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE)) n[1]++;
    return MHD_YES;
}

/* Checks made before any of the body is read. */
static enum MHD_Result on_headers(srv_server *S, struct MHD_Connection *c, conn_req *q,
                                  const char *method) {
    const bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (atomic_load(&S->draining))
        return fail(S, c, q, 503, "Unhealthy", "the server is shutting down");
    if (q->route == SRV_OTHER) return fail(S, c, q, 404, "NotFound", "no such route");
    if (q->route <= SRV_TOKENIZE ? !post : !get)
        return fail(S, c, q, 405, "MethodNotAllowed", "method not allowed on this route");
    if (S->api_key && q->route <= SRV_INFO &&
        !key_matches(S, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION)))
        return fail(S, c, q, 401, "Unauthorized", "missing or invalid API key");
    int n[2] = {0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, n);
    if (n[0] > 1) return fail(S, c, q, 400, "Validation", "more than one Content-Length header");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || v > S->max_body)
            return fail(S, c, q, 413, "PayloadTooLarge",
                        "the body has %.40s bytes; the limit is %zu bytes", cl, S->max_body);
    }
    /* A body that says it is something else than JSON (a form, text/plain) is refused, as TEI
     * does; one without a Content-Type is read as JSON. */
    if (q->route <= SRV_TOKENIZE) {
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (n[1] > 1 || (ct && !srv_content_type_is_json(ct)))
            return fail(S, c, q, 415, "UnsupportedMediaType",
                        "Expected request with `Content-Type: application/json`, got `%.100s`",
                        n[1] > 1 ? "(several Content-Type headers)" : ct);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ptr) {
    (void)version;
    srv_server *S = cls;
    conn_req *q = *ptr;
    if (!q) {
        q = srv_calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        *ptr = q;
        atomic_fetch_add(&S->inflight, 1);
        q->t0 = srv_now();
        q->route = route_of(url);
        return on_headers(S, c, q, method);
    }
    if (q->replied) { /* an early reply was queued: drop the rest of the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        /* MHD can't queue a reply mid-body: a chunked body over the limit, or one read past
         * the read timeout, closes the connection. */
        if (srv_now() - q->t0 > S->read_timeout_s) return MHD_NO;
        if (q->body.n + *upload_size > S->max_body) return MHD_NO;
        if (!q->body_oom) {
            srv_buf_put(&q->body, upload_data, *upload_size);
            if (q->body.oom) {
                q->body_oom = true;
                srv_free(q->body.p);
                q->body = (srv_buf){0};
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->body_oom)
        return fail(S, c, q, 500, "Backend", "out of memory while reading the request body");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    srv_reply rp;
    srv_handle(S, q->route, q->body.p, q->body.n, ci ? ci->connect_fd : -1, &rp);
    enum MHD_Result res = send_reply(S, c, q, &rp);
    if (q->route <= SRV_TOKENIZE) srv_observe(S, SRV_ST_TOTAL, srv_now() - q->t0);
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ptr,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    srv_server *S = cls;
    conn_req *q = *ptr;
    if (!q) return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        pthread_mutex_lock(&S->m.mu);
        S->m.disconnects++;
        pthread_mutex_unlock(&S->m.mu);
    }
    srv_free(q->body.p);
    srv_free(q);
    *ptr = NULL;
    atomic_fetch_sub(&S->inflight, 1);
}

/* ---- the command ------------------------------------------------------------------------- */

static void help(FILE *f) {
    fprintf(f,
            "usage: sembed serve -m DIR [options]\n"
            "\n"
            "Serves the model folder DIR over HTTP: POST /v1/embeddings (OpenAI), POST /embed and\n"
            "POST /tokenize (text-embeddings-inference), GET /info, /health, /metrics.\n"
            "Prints \"listening on http://HOST:PORT\" on stdout once ready. SIGTERM or SIGINT\n"
            "stops accepting and finishes the requests in flight (a second one exits at once).\n"
            "\n"
            "  -m, --model DIR            model folder\n"
            "      --host H               address to bind (default 127.0.0.1)\n"
            "  -p, --port N               port (default 8080; 0: any free port)\n"
            "      --device D             cpu, cuda, cuda:N or auto (default: a GPU when there is\n"
            "                             one, else the CPU). With a GPU, batches go to it and a\n"
            "                             CPU worker takes small ones while the GPU is busy, by\n"
            "                             the per-token costs measured at start-up\n"
            "      --precision P          fp32 (default), fp32-strict, int8 or bf16: the CPU\n"
            "                             workers' arithmetic (as sembed embed --precision); a\n"
            "                             GPU runs bf16 for bf16 and fp16 otherwise. /info's\n"
            "                             model_dtype says which\n"
            "      --served-model-name S  the model name in replies (default: DIR's base name)\n"
            "      --api-key K            require `Authorization: Bearer K` on the POST routes\n"
            "                             and /info (also from $SEMBED_API_KEY)\n"
            "  -t, --threads N            threads per CPU encoder context (default: CPUs / CPU\n"
            "                             workers)\n"
            "      --workers N            CPU encoder contexts (default 2 with 2+ CPUs, else 1;\n"
            "                             beside a GPU: 1, and 0 leaves the GPU alone)\n"
            "      --[no-]query-lane      on the CPU with 2+ workers, keep worker 0 for small\n"
            "                             requests so queries never wait behind bulk (default: on)\n"
            "      --max-batch-tokens N   token budget of a CPU batch (default 2048)\n"
            "      --bulk-batch-tokens N  token budget of a CPU batch carrying bulk texts (512)\n"
            "      --gpu-batch-tokens N   token budget of a GPU batch (default 16384)\n"
            "      --small-tokens N       requests of at most N tokens are queries (default 128)\n"
            "      --max-queue N          inputs admitted and not yet encoded; beyond: 429 (4096)\n"
            "      --max-inputs N         inputs per request; beyond: 422 (default 512)\n"
            "      --max-input-bytes N    bytes per input text; beyond: 422 (default 250 x the\n"
            "                             model's max tokens)\n"
            "      --max-body-bytes N     request body bytes; beyond: 413 (default 2000000)\n"
            "      --no-auto-truncate     default `truncate` to false (422 for long inputs)\n"
            "      --timeout S            idle connection timeout, seconds (default 30)\n"
            "      --read-timeout S       seconds to receive a whole request (default 30)\n"
            "      --max-connections N    open connections (default 512)\n"
            "      --max-connections-per-ip N  (default 256)\n"
            "      --drain-timeout S      seconds to finish requests at shutdown (default 30)\n");
}

static bool parse_int(const char *name, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "sembed serve: --%s expects an integer in [%ld, %ld], got '%s'\n", name,
                lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

static bool valid_device(const char *d) {
    if (!strcmp(d, "cpu") || !strcmp(d, "auto") || !strcmp(d, "cuda")) return true;
    if (strncmp(d, "cuda:", 5) != 0 || !d[5]) return false;
    for (const char *p = d + 5; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return strlen(d + 5) <= 3;
}

int cli_serve(int argc, char **argv) {
    enum { O_HOST = 256, O_DEVICE, O_NAME, O_KEY, O_WORKERS, O_MBT, O_BBT, O_GBT, O_SMALL,
           O_QUEUE, O_INPUTS, O_INBYTES, O_BODY, O_NOTRUNC, O_TIMEOUT, O_RTIMEOUT, O_CONNS,
           O_CONNS_IP, O_DRAIN, O_LANE, O_NOLANE, O_PREC };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, 'p'},
        {"device", required_argument, NULL, O_DEVICE},
        {"precision", required_argument, NULL, O_PREC},
        {"served-model-name", required_argument, NULL, O_NAME},
        {"api-key", required_argument, NULL, O_KEY},
        {"threads", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, O_WORKERS},
        {"max-batch-tokens", required_argument, NULL, O_MBT},
        {"bulk-batch-tokens", required_argument, NULL, O_BBT},
        {"gpu-batch-tokens", required_argument, NULL, O_GBT},
        {"small-tokens", required_argument, NULL, O_SMALL},
        {"max-queue", required_argument, NULL, O_QUEUE},
        {"max-inputs", required_argument, NULL, O_INPUTS},
        {"max-input-bytes", required_argument, NULL, O_INBYTES},
        {"max-body-bytes", required_argument, NULL, O_BODY},
        {"no-auto-truncate", no_argument, NULL, O_NOTRUNC},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"read-timeout", required_argument, NULL, O_RTIMEOUT},
        {"max-connections", required_argument, NULL, O_CONNS},
        {"max-connections-per-ip", required_argument, NULL, O_CONNS_IP},
        {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"query-lane", no_argument, NULL, O_LANE},
        {"no-query-lane", no_argument, NULL, O_NOLANE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *host = "127.0.0.1";
    long port = 8080, workers = -1, threads = 0, mbt = 2048, bbt = 512, gbt = 16384, small = 128,
         queue = 4096, inputs = 512, inbytes = 0, body = 2000000, timeout = 30, rtimeout = 30,
         conns = 512, conns_ip = 256, drain = 30;
    srv_options so = {.device = "auto", .query_lane = -1, .auto_truncate = true};
    const char *key = getenv("SEMBED_API_KEY");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:t:h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': so.model_dir = optarg; break;
        case O_HOST: host = optarg; break;
        case 'p': ok = parse_int("port", optarg, 0, 65535, &port); break;
        case O_DEVICE:
            if (!valid_device(optarg)) {
                fprintf(stderr, "sembed serve: --device %s: expected cpu, cuda, cuda:N or auto\n",
                        optarg);
                return 2;
            }
            so.device = optarg;
            break;
        case O_PREC:
            if (sembed_precision_parse(optarg, &so.precision) != SEMBED_OK) {
                fprintf(stderr, "sembed serve: --precision expects fp32, fp32-strict, int8 or "
                                "bf16, got '%s'\n", optarg);
                return 2;
            }
            break;
        case O_NAME: so.model_name = optarg; break;
        case O_KEY: key = optarg; break;
        case 't': ok = parse_int("threads", optarg, 0, 1024, &threads); break;
        case O_WORKERS: ok = parse_int("workers", optarg, 0, 63, &workers); break;
        case O_MBT: ok = parse_int("max-batch-tokens", optarg, 1, 1 << 20, &mbt); break;
        case O_BBT: ok = parse_int("bulk-batch-tokens", optarg, 1, 1 << 20, &bbt); break;
        case O_GBT: ok = parse_int("gpu-batch-tokens", optarg, 1, 1 << 22, &gbt); break;
        case O_SMALL: ok = parse_int("small-tokens", optarg, 1, 1 << 20, &small); break;
        case O_QUEUE: ok = parse_int("max-queue", optarg, 1, 1 << 20, &queue); break;
        case O_INPUTS: ok = parse_int("max-inputs", optarg, 1, 1 << 20, &inputs); break;
        case O_INBYTES: ok = parse_int("max-input-bytes", optarg, 1, 1L << 30, &inbytes); break;
        case O_BODY: ok = parse_int("max-body-bytes", optarg, 1, 1L << 31, &body); break;
        case O_NOTRUNC: so.auto_truncate = false; break;
        case O_LANE: so.query_lane = 1; break;
        case O_NOLANE: so.query_lane = 0; break;
        case O_TIMEOUT: ok = parse_int("timeout", optarg, 1, 86400, &timeout); break;
        case O_RTIMEOUT: ok = parse_int("read-timeout", optarg, 1, 86400, &rtimeout); break;
        case O_CONNS: ok = parse_int("max-connections", optarg, 1, 1 << 16, &conns); break;
        case O_CONNS_IP: ok = parse_int("max-connections-per-ip", optarg, 0, 1 << 16, &conns_ip); break;
        case O_DRAIN: ok = parse_int("drain-timeout", optarg, 0, 86400, &drain); break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
        if (!ok) return 2;
    }
    if (!so.model_dir || optind < argc) {
        fprintf(stderr, "sembed serve: %s\n",
                so.model_dir ? "unexpected argument" : "-m DIR is required");
        help(stderr);
        return 2;
    }
    if (inputs > queue) {
        fprintf(stderr, "sembed serve: --max-inputs (%ld) must not exceed --max-queue (%ld)\n",
                inputs, queue);
        return 2;
    }
    if (workers == 0 && !strcmp(so.device, "cpu")) {
        fprintf(stderr, "sembed serve: --workers 0 needs a GPU (--device cuda)\n");
        return 2;
    }
    if (key && !*key) key = NULL;
    so.workers = (int32_t)workers;
    so.threads = (int32_t)threads;
    so.max_batch_tokens = (int32_t)mbt;
    so.bulk_batch_tokens = (int32_t)bbt;
    so.gpu_batch_tokens = (int32_t)gbt;
    so.small_tokens = (int32_t)small;
    so.max_queue = (int32_t)queue;
    so.max_inputs = (int32_t)inputs;
    so.max_input_bytes = (size_t)inbytes;

    /* Signals are taken by sigwait in this thread; every thread started from here on
     * inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sembed_error err = {0};
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    srv_server *S = NULL;
    if (srv_server_open(&so, &S, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed serve: %s\n", err.msg);
        return 1;
    }
    S->api_key = key;
    S->api_key_len = key ? strlen(key) : 0;
    S->max_body = (size_t)body;
    S->read_timeout_s = (double)rtimeout;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%ld", port);
    if (getaddrinfo(host, ports, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "sembed serve: cannot resolve --host %s\n", host);
        goto out;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, S, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)timeout,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)conns,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)conns_ip,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, S,
                         MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) {
        fprintf(stderr, "sembed serve: cannot listen on %s:%ld: %s\n", host, port,
                strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("sembed serve: listening on http://%s:%u (model %s, dim %d, max length %d, device "
           "%s)\n",
           host, di ? di->port : (unsigned)port, S->model_name, S->dim, S->R, S->device);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    fprintf(stderr, "sembed serve: signal %d: finishing %d requests in flight\n", sig,
            atomic_load(&S->inflight));
    atomic_store(&S->draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(d);
    const struct timespec tick = {0, 20 * 1000 * 1000};
    const double deadline = srv_now() + (double)drain;
    while (atomic_load(&S->inflight) > 0) {
        const bool late = srv_now() > deadline;
        if (late || sigtimedwait(&sigs, NULL, &tick) > 0) {
            fprintf(stderr, "sembed serve: %s: exiting with %d requests unfinished\n",
                    late ? "the drain timeout passed" : "a second signal",
                    atomic_load(&S->inflight));
            fflush(stderr);
            _exit(1); /* connection threads still use S: no clean-up */
        }
    }
    MHD_stop_daemon(d);
    d = NULL;
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    rc = 0;
out:
    if (d) MHD_stop_daemon(d);
    srv_server_close(S);
    return rc;
}
