/* test_cli.c — the `sembed` command line as a user runs it (the binary CMake built, path in
 * SEMBED_CLI): `embed` gives the library's vectors bit for bit in each output format (raw, npy,
 * JSON lines from arguments and from stdin), `similarity` runs, and bad options, devices,
 * precisions and model folders end with a non-zero exit and a message naming what was wrong. */
#include "fmtf.h"
#include "testlib.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef SEMBED_CLI
#error "SEMBED_CLI (the sembed binary's path) must be defined by the build"
#endif

#define MODEL "all-MiniLM-L6-v2"

static char *g_tmp;        /* a fresh folder for outputs */
static const char *g_dir;  /* the model folder */

/* Reads a whole file; NULL when it cannot. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        const size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    *n = len;
    return buf;
}

/* Runs `sembed ARGS` through the shell (stdin from printf's format `in` when not NULL), stdout and stderr to
 * files of g_tmp; returns the exit status (-1 when it did not exit normally). *err (may be
 * NULL) gets stderr's text, to free. */
static int run(const char *args, const char *in, char **err) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s%s%s'%s' %s >%s/out 2>%s/err", in ? "printf '" : "", in ? in : "",
             in ? "' | " : "", SEMBED_CLI, args, g_tmp, g_tmp);
    const int st = system(cmd);
    if (err) {
        char path[1024];
        size_t n;
        snprintf(path, sizeof path, "%s/err", g_tmp);
        *err = slurp(path, &n);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The library's vectors for texts on the CPU (2 threads, as the CLI is run below). */
static float *lib_vectors(sembed_model *m, int32_t n, const char *const *texts) {
    sembed_ctx_params p = sembed_ctx_default_params();
    p.n_threads = 2;
    sembed_ctx *ctx = NULL;
    sembed_error err = {0};
    const int32_t dim = sembed_model_dim(m);
    float *v = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    CHECKF(sembed_ctx_new(m, &p, &ctx, &err) == SEMBED_OK, "%s", err.msg);
    if (ctx) CHECKF(sembed_encode(ctx, n, texts, NULL, v, (int64_t)n * dim, NULL, &err) == SEMBED_OK, "%s", err.msg);
    sembed_ctx_free(ctx);
    return v;
}

/* Runs `sembed ARGS` (stdin from printf's format `in` when not NULL) and returns the bytes of
 * g_tmp/name (NULL when missing; *len their count). */
static char *run_and_read(const char *args, const char *in, const char *name, size_t *len) {
    char path[1024];
    CHECK(run(args, in, NULL) == 0);
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    *len = 0;
    return slurp(path, len);
}

/* `sembed embed` of the two texts on the CPU with `opts`, written to g_tmp/name */
static char *embed_file(const char *opts, const char *name, size_t *len) {
    char args[2048];
    snprintf(args, sizeof args,
             "embed -m '%s' -t 2 %s -o %s/%s 'the first text' 'Zürich, a second one'", g_dir,
             opts, g_tmp, name);
    return run_and_read(args, NULL, name, len);
}

/* raw float32 output (freed here) against the library's n vectors */
static void check_raw_bytes(char *got, size_t len, const float *want, int32_t n, int32_t dim) {
    CHECKF(got && len == sizeof(float) * (size_t)n * (size_t)dim, "raw output of %zu bytes", len);
    if (got && len == sizeof(float) * (size_t)n * (size_t)dim) CHECK(memcmp(got, want, len) == 0);
    free(got);
}

static void check_raw(const float *want, int32_t n, int32_t dim) {
    size_t len = 0;
    char *got = embed_file("-d cpu -f raw", "v.raw", &len);
    check_raw_bytes(got, len, want, n, dim);
}

static void check_npy(const float *want, int32_t n, int32_t dim) {
    size_t len = 0;
    char *got = embed_file("--device cpu --format npy", "v.npy", &len);
    CHECK(got && len > 10 && memcmp(got, "\x93NUMPY", 6) == 0);
    if (!got || len <= 10) {
        free(got);
        return;
    }
    const size_t hdr = 10 + (size_t)(uint8_t)got[8] + 256 * (size_t)(uint8_t)got[9];
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%d, %d)", n, dim);
    CHECKF(hdr % 64 == 0 && strstr(got + 10, shape) && strstr(got + 10, "'<f4'"),
           "npy header of %zu bytes", hdr);
    CHECK(len == hdr + sizeof(float) * (size_t)n * (size_t)dim);
    if (len == hdr + sizeof(float) * (size_t)n * (size_t)dim)
        CHECK(memcmp(got + hdr, want, len - hdr) == 0);
    free(got);
}

/* `sembed embed -m DIR -t 2 -d cpu OPTS` on stdin from printf's format `in`, JSON lines out: each
 * line's index, n_tokens and embedding, which %.9g prints exactly */
static void check_jsonl(const char *opts, const char *in, const float *want, int32_t n, int32_t dim) {
    char args[2048];
    snprintf(args, sizeof args, "embed -m '%s' -t 2 -d cpu %s", g_dir, opts);
    size_t len = 0;
    char *got = run_and_read(args, in, "out", &len);
    CHECK(got != NULL);
    int32_t line = 0;
    for (char *s = got, *e; s && *s; s = e + 1, line++) {
        e = strchr(s, '\n');
        CHECK(e != NULL);
        if (!e) break;
        *e = 0;
        json_error_t je;
        json_t *o = json_loads(s, 0, &je);
        CHECKF(o && line < n, "line %d: %s", line, o ? "one too many" : je.text);
        if (o && line < n) {
            CHECK(json_integer_value(json_object_get(o, "index")) == line);
            CHECK(json_integer_value(json_object_get(o, "n_tokens")) >= 3);
            CHECK(json_is_false(json_object_get(o, "truncated")));
            json_t *emb = json_object_get(o, "embedding");
            CHECK((int32_t)json_array_size(emb) == dim);
            int32_t same = 0;
            for (int32_t k = 0; k < dim && k < (int32_t)json_array_size(emb); k++)
                same += (float)json_number_value(json_array_get(emb, (size_t)k)) == want[line * dim + k];
            CHECKF(same == dim, "line %d: %d of %d floats as the library's", line, same, dim);
        }
        json_decref(o);
    }
    CHECK(line == n);
    free(got);
}

/* More texts than --batch: the batches go out through embed_out's two slots in turn, in order,
 * raw and as JSON lines, the last batch partly full. */
static void check_batches(sembed_model *m, int32_t dim) {
    const char *texts[] = {"one", "two words", "a third, longer text than the others", "4",
                           "fünf", "six six six", "seven", "eight!", "the ninth"};
    const int32_t n = 9;
    float *want = lib_vectors(m, n, texts);
    char in[512] = "";
    for (int32_t i = 0; i < n; i++) snprintf(in + strlen(in), sizeof in - strlen(in), "%s\\n", texts[i]);
    check_jsonl("--batch 2", in, want, n, dim);
    setenv("SEMBED_READ_AHEAD", "0", 1); /* the input read only between batches */
    check_jsonl("--batch 2", in, want, n, dim);
    unsetenv("SEMBED_READ_AHEAD");
    setenv("SEMBED_FMT_THREADS", "3", 1); /* JSON lines formatted in three parts */
    check_jsonl("--batch 4", in, want, n, dim);
    check_jsonl("--batch 2", in, want, n, dim);
    /* more lines in a call than one round of formatting (256 lines a thread) */
    {
        enum { NB = 600 };
        char **bt = malloc(sizeof(char *) * NB);
        char *bin = malloc(NB * 16); /* the lines, as a file: too long for a command line */
        bin[0] = 0;
        for (int32_t i = 0; i < NB; i++) {
            bt[i] = malloc(16);
            snprintf(bt[i], 16, "t%d x", i);
            snprintf(bin + strlen(bin), 16, "%s\n", bt[i]);
        }
        float *bw = lib_vectors(m, NB, (const char *const *)bt);
        char path[1024], opts[1200];
        snprintf(path, sizeof path, "%s/many.txt", g_tmp);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs(bin, f) >= 0);
        if (f) fclose(f);
        snprintf(opts, sizeof opts, "--batch 600 -i %s", path);
        setenv("SEMBED_FMT_THREADS", "2", 1);
        check_jsonl(opts, NULL, bw, NB, dim);
        for (int32_t i = 0; i < NB; i++) free(bt[i]);
        free(bt), free(bin), free(bw);
    }
    unsetenv("SEMBED_FMT_THREADS");
    char args[2048];
    snprintf(args, sizeof args, "embed -m '%s' -t 2 -d cpu --batch 4 -f raw -o %s/b.raw", g_dir, g_tmp);
    size_t len = 0;
    char *got = run_and_read(args, in, "b.raw", &len);
    check_raw_bytes(got, len, want, n, dim);
    free(want);
}

/* cli_fmt_f32 (the JSON lines' and the server's numbers): the text of printf's %.9g, and strtof
 * gives the float back, on 4 million random bit patterns (every exponent) and the edge cases */
static void check_fmt_f32(void) {
    static const uint32_t edge[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x007fffffu,
                                    0x00800000u, 0x7f7fffffu, 0xff7fffffu, 0x3f800000u,
                                    0x3dcccccdu, 0x4e6e6b28u /* 1e9 */, 0x4e6e6b27u};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int64_t n = 0, not_back = 0, other_text = 0;
    char a[CLI_FMT_F32_MAX], b[64];
    for (int64_t i = 0; i < 4000000 + (int64_t)(sizeof edge / sizeof *edge); i++) {
        uint32_t u;
        if (i < (int64_t)(sizeof edge / sizeof *edge)) {
            u = edge[i];
        } else {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            u = (uint32_t)s;
        }
        float v, w;
        memcpy(&v, &u, 4);
        if (!isfinite(v)) continue;
        n++;
        const int len = cli_fmt_f32(a, v);
        w = strtof(a, NULL);
        not_back += memcmp(&v, &w, 4) != 0 || len != (int)strlen(a);
        snprintf(b, sizeof b, "%.9g", (double)v);
        other_text += strcmp(a, b) != 0;
    }
    CHECKF(not_back == 0 && other_text == 0, "cli_fmt_f32 over %lld floats: %lld not read back, "
           "%lld unlike %%.9g", (long long)n, (long long)not_back, (long long)other_text);
    CHECK(cli_fmt_f32(a, INFINITY) == 4 && !strcmp(a, "null"));
    CHECK(cli_fmt_f32(a, NAN) == 4 && !strcmp(a, "null"));
}

/* a bad command line or input: exit status `want_rc` (0: any non-zero) and stderr naming `what` */
static void check_refused(const char *args_fmt, int want_rc, const char *what) {
    char args[2048];
    snprintf(args, sizeof args, args_fmt, g_dir);
    char *err = NULL;
    const int rc = run(args, NULL, &err);
    CHECKF(want_rc ? rc == want_rc : rc != 0, "sembed %s: exit %d", args, rc);
    CHECKF(err && strstr(err, what), "sembed %s: stderr '%s' lacks '%s'", args, err ? err : "", what);
    free(err);
}

int main(void) {
    check_fmt_f32();
    g_dir = t_model_dir(MODEL);
    g_tmp = t_tmpdir();
    CHECK(g_tmp != NULL);
    if (!g_tmp) return t_done("test_cli");
    sembed_model *m = NULL;
    sembed_error err = {0};
    CHECKF(sembed_model_load(g_dir, NULL, &m, &err) == SEMBED_OK, "%s", err.msg);
    if (!m) return t_done("test_cli");
    const char *texts[] = {"the first text", "Zürich, a second one"};
    const int32_t dim = sembed_model_dim(m);
    float *want = lib_vectors(m, 2, texts);
    check_raw(want, 2, dim);
    check_npy(want, 2, dim);
    /* --jsonl: a string or an object with "text" */
    check_jsonl("--jsonl -i -", "\"the first text\"\\n{\"text\": \"Z\\\\u00fcrich, a second one\"}\\n", want, 2, dim);
    check_batches(m, dim);

    /* the default device (auto) runs, on the CPU or a GPU: vectors of the model's size */
    char args[2048];
    snprintf(args, sizeof args, "embed -m '%s' -t 2 -f raw -o %s/auto.raw 'the first text'",
             g_dir, g_tmp);
    CHECK(run(args, NULL, NULL) == 0);
    snprintf(args, sizeof args, "similarity -m '%s' -t 2 -d cpu 'a cat sat' 'a dog sat' 'tax law'",
             g_dir);
    char *serr = NULL;
    CHECK(run(args, NULL, &serr) == 0);
    free(serr);
    size_t n_out = 0;
    snprintf(args, sizeof args, "%s/out", g_tmp);
    char *sim = slurp(args, &n_out);
    CHECK(sim && strstr(sim, "cosine similarity (3 texts, 384 dimensions)"));
    free(sim);

    /* command lines refused: the exit status (0: any non-zero) and what stderr names */
    static const struct {
        const char *args;
        int rc;
        const char *what;
    } refused[] = {
        {"embed -m '%s' --device gpu x", 1, "device 'gpu'"},
        {"embed -m '%s' --device cuda --precision int8 x", 1, "'int8'"},
        {"embed -m '%s' -d cuda:0 --precision fp32-strict x", 1, "'fp32-strict'"},
        {"embed -m '%s' --precision fp16 x", 2, "--precision expects"},
        {"embed -m '%s' -f npy x", 2, "--format npy needs --output"},
        {"embed -m '%s' --dimensions 100000 x", 1, "larger than the model's 384"},
        {"embed -m '%s' --prompt-name nosuch x", 1, "'nosuch'"},
        {"embed -m '%s'/nowhere x", 1, "nowhere"},
        {"embed x", 2, "-m DIR is required"},
        {"embed -m '%s' --threads 0 x", 2, "--threads expects"},
        {"similarity -m '%s' -d cpu alone", 0, "at least two texts"},
        {"serve -m '%s' --precision fp16", 2, "--precision expects"},
        {"bench -m '%s' -d cuda --gpu-batch-tokens 100", 2, "--gpu-batch-tokens expects"},
        {"bench -m '%s' -d cuda --gpu-batch-tokens 4096x", 2, "'4096x'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        check_refused(refused[i].args, refused[i].rc, refused[i].what);

    free(want);
    sembed_model_free(m);
    t_rmdir(g_tmp);
    return t_done("test_cli");
}
