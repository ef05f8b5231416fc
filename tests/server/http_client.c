/* http_client.c — a minimal HTTP/1.1 client over loopback TCP and a helper that starts
 * `sembed serve` as a child process, for the server's black-box tests and load test.
 * Included as source by tests/test_server.c and bench/load_test.c; not a general client. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct hc_resp {
    int status;    /* 0: no reply (connection closed or timed out) */
    char *head;    /* status line and headers, NUL-terminated */
    char *body;    /* NUL-terminated */
    size_t body_n;
} hc_resp;

static void hc_resp_free(hc_resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static double hc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int hc_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool hc_send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads until `want` bytes in total (0: until EOF) or the timeout. Returns bytes in *buf. */
static size_t hc_read(int fd, char **buf, size_t *cap, size_t have, size_t want, double timeout_s) {
    const double end = hc_now() + timeout_s;
    while (want == 0 || have < want) {
        if (have + 4096 + 1 > *cap) {
            size_t nc = *cap ? *cap * 2 : 65536;
            while (nc < have + 4096 + 1) nc *= 2;
            char *p = realloc(*buf, nc);
            if (!p) break;
            *buf = p;
            *cap = nc;
        }
        double left = end - hc_now();
        if (left <= 0) break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        ssize_t k = read(fd, *buf + have, *cap - have - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        have += (size_t)k;
    }
    if (*buf) (*buf)[have] = '\0';
    return have;
}

/* Reads one response (Content-Length framed) from fd. Returns false if none came. */
static bool hc_read_response(int fd, hc_resp *r, double timeout_s, char **carry, size_t *carry_n) {
    memset(r, 0, sizeof *r);
    char *buf = NULL;
    size_t cap = 0, have = 0;
    if (carry && *carry_n) {
        cap = *carry_n + 65536;
        buf = malloc(cap);
        memcpy(buf, *carry, *carry_n);
        have = *carry_n;
        *carry_n = 0;
    }
    char *eoh = NULL;
    const double end = hc_now() + timeout_s;
    for (;;) {
        if (buf) {
            buf[have] = '\0';
            eoh = strstr(buf, "\r\n\r\n");
        }
        if (eoh) break;
        size_t before = have;
        have = hc_read(fd, &buf, &cap, have, have + 1, end - hc_now());
        if (have == before) {
            free(buf);
            return false;
        }
    }
    const size_t hlen = (size_t)(eoh - buf) + 4;
    long long clen = -1;
    for (char *h = buf; h < eoh; h = strstr(h, "\r\n") + 2)
        if (!strncasecmp(h, "Content-Length:", 15)) clen = atoll(h + 15);
    if (clen >= 0) have = hc_read(fd, &buf, &cap, have, hlen + (size_t)clen, end - hc_now());
    else have = hc_read(fd, &buf, &cap, have, 0, end - hc_now());
    size_t blen = have - hlen;
    if (clen >= 0 && blen > (size_t)clen) {
        if (carry) { /* pipelined: keep the rest */
            size_t extra = blen - (size_t)clen;
            *carry = realloc(*carry, extra + 1);
            memcpy(*carry, buf + hlen + clen, extra);
            *carry_n = extra;
        }
        blen = (size_t)clen;
    }
    r->head = malloc(hlen + 1);
    r->body = malloc(blen + 1);
    memcpy(r->head, buf, hlen);
    r->head[hlen] = '\0';
    memcpy(r->body, buf + hlen, blen);
    r->body[blen] = '\0';
    r->body_n = blen;
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) r->status = 0;
    free(buf);
    return r->status != 0;
}

/* One request on a fresh connection ("Connection: close"). extra: more header lines, each
 * ending in "\r\n", or NULL. */
static bool hc_request(int port, const char *method, const char *path, const char *extra,
                       const void *body, size_t body_n, hc_resp *r, double timeout_s) {
    memset(r, 0, sizeof *r);
    int fd = hc_connect(port);
    if (fd < 0) return false;
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                      method, path, extra ? extra : "", body_n);
    bool ok = hc_send_all(fd, head, (size_t)hn) && (!body_n || hc_send_all(fd, body, body_n));
    ok = ok && hc_read_response(fd, r, timeout_s, NULL, NULL);
    close(fd);
    return ok;
}

static const char *hc_header(const hc_resp *r, const char *name) {
    size_t n = strlen(name);
    for (const char *h = r->head; h && *h; ) {
        const char *e = strstr(h, "\r\n");
        if (!e) break;
        if (!strncasecmp(h, name, n) && h[n] == ':') return h + n + 1;
        h = e + 2;
    }
    return NULL;
}

/* ---- the server as a child process ------------------------------------------------------- */

typedef struct hc_server {
    pid_t pid;
    int port;
    int out_fd;
} hc_server;

/* The sembed binary beside this test binary, or $SEMBED_BIN. */
static const char *hc_sembed_bin(void) {
    static char path[4096];
    const char *env = getenv("SEMBED_BIN");
    if (env && *env) return env;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0) return "sembed";
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    strcpy(slash ? slash + 1 : path, "sembed");
    return path;
}

/* Starts `sembed serve --port 0 ARGS...` and waits for its "listening on" line and /health. */
static bool hc_server_start(hc_server *s, const char *const *args, double timeout_s) {
    int p[2];
    if (pipe(p) != 0) return false;
    const char *argv[64];
    int n = 0;
    argv[n++] = hc_sembed_bin();
    argv[n++] = "serve";
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    s->pid = pid;
    s->out_fd = p[0];
    s->port = 0;
    char *buf = NULL;
    size_t cap = 0, have = 0;
    const double end = hc_now() + timeout_s;
    while (!s->port && hc_now() < end) {
        size_t before = have;
        have = hc_read(p[0], &buf, &cap, have, have + 1, end - hc_now());
        if (have == before) break;
        const char *l = strstr(buf, "listening on http://");
        if (l && strchr(l, '\n')) {
            const char *colon = strchr(l + 20, ':');
            if (colon) s->port = atoi(colon + 1);
        }
    }
    free(buf);
    if (!s->port) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    for (int i = 0; i < 100; i++) {
        hc_resp r;
        bool ok = hc_request(s->port, "GET", "/health", NULL, NULL, 0, &r, 5) && r.status == 200;
        hc_resp_free(&r);
        if (ok) return true;
        usleep(50000);
    }
    return false;
}

/* Sends SIGTERM and waits up to timeout_s; returns the exit status (-1: killed after it). */
static int hc_server_stop(hc_server *s, double timeout_s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    const double end = hc_now() + timeout_s;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(s->pid, &st, WNOHANG);
        if (w == s->pid) break;
        if (hc_now() > end) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            s->pid = 0;
            close(s->out_fd);
            return -1;
        }
        usleep(20000);
    }
    s->pid = 0;
    close(s->out_fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
