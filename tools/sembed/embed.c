/* embed.c — `sembed embed`: embeddings of texts as JSON lines, .npy or raw float32, and
 * `sembed similarity`: the cosine matrix and nearest neighbours of a few texts. */
#include "cli.h"
#include "embed_in.h"
#include "embed_out.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { FMT_JSONL, FMT_NPY, FMT_RAW } out_format;

typedef struct embed_opts {
    const char *model;
    const char *input;  /* NULL: arguments or stdin */
    const char *output; /* NULL: stdout */
    bool jsonl_in;
    out_format format;
    sembed_model_params mp;
    sembed_ctx_params cp;
    sembed_encode_opts eo; /* --prompt-name, --prompt, --dimensions */
    int32_t batch;
    bool progress;
} embed_opts;

static void help(FILE *f) {
    fprintf(f,
            "usage: sembed embed -m DIR [options] [TEXT...]\n"
            "\n"
            "Embeds each TEXT, or each line of --input FILE (or stdin), with the model folder DIR\n"
            "and writes one vector per text, in input order.\n"
            "\n"
            "  -m, --model DIR        sentence-transformers (or Hugging Face) model folder\n"
            "  -i, --input FILE       read texts from FILE ('-': stdin), one per line\n"
            "      --jsonl            input lines are JSON: a string, or an object with \"text\"\n"
            "  -o, --output FILE      write to FILE instead of stdout (required for npy)\n"
            "  -f, --format FMT       jsonl (default): {\"index\", \"embedding\", \"n_tokens\",\n"
            "                         \"truncated\"} per line; npy: a float32 (N, dim) array;\n"
            "                         raw: little-endian float32, N*dim values\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "  -d, --device D         cpu, cuda, cuda:N or auto (default: CUDA device 0 when\n"
            "                         this build has CUDA and a GPU is usable, else the CPU);\n"
            "                         on the GPU, fp16 (cosine >= 0.9999 to the CPU's fp32)\n"
            "      --precision P      CPU arithmetic: fp32 (default; on AMX CPUs bf16 and int8\n"
            "                         parts of each product, within 3e-5 of fp32), fp32-strict\n"
            "                         (fp32 FMA only), int8 (cosine >= 0.995 to fp32) or\n"
            "                         bf16 (needs AVX512_BF16); with --device cuda, bf16\n"
            "                         runs bf16 on the GPU instead of fp16 (cosine >= 0.999);\n"
            "                         int8 and fp32-strict are CPU-only (an error with\n"
            "                         --device cuda; --device auto keeps them on the CPU)\n"
            "  -n, --max-length N     tokens per text (default: the model's max_seq_length)\n"
            "      --strict           fail on texts longer than the max length instead of\n"
            "                         truncating them\n"
            "      --prompt-name NAME a prompt of config_sentence_transformers.json (\"query\",\n"
            "                         ...), prepended to each text (default: the folder's\n"
            "                         default_prompt_name, if any; `sembed info` lists them)\n"
            "      --prompt TEXT      a literal prompt instead (\"\": none at all)\n"
            "      --dimensions N     keep the first N floats of each vector (Matryoshka),\n"
            "                         normalized again when the model normalizes\n"
            "      --batch N          texts per call (default 256 on the CPU, 8192 on a GPU)\n"
            "      --no-progress      no progress bar (shown on a terminal for long inputs)\n");
}

static bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static void write_npy_header(FILE *f, int64_t n, int32_t dim) {
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
                       (long long)n, dim);
    /* pad with spaces to a multiple of 64 (magic 6 + version 2 + length 2 + header + '\n') */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    uint16_t hl = (uint16_t)(len + pad + 1);
    unsigned char hlb[2] = {(unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    fwrite(hlb, 1, 2, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
}

static void progress(int64_t done, int64_t bytes, double t0, bool final) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double dt = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - t0;
    fprintf(stderr, "\r%lld texts, %.1f MB, %.0f texts/s   %s", (long long)done, (double)bytes / 1e6,
            dt > 0 ? (double)done / dt : 0.0, final ? "\n" : "");
    fflush(stderr);
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_args(int argc, char **argv, embed_opts *o, bool similarity) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"input", required_argument, NULL, 'i'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"max-length", required_argument, NULL, 'n'},
                                         {"jsonl", no_argument, NULL, 'J'},
                                         {"strict", no_argument, NULL, 'S'},
                                         {"batch", required_argument, NULL, 'B'},
                                         {"no-progress", no_argument, NULL, 'P'},
                                         {"prompt-name", required_argument, NULL, 'R'},
                                         {"prompt", required_argument, NULL, 'Q'},
                                         {"dimensions", required_argument, NULL, 'D'},
                                         {"precision", required_argument, NULL, 'X'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:i:o:f:t:n:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'i': o->input = optarg; break;
        case 'o': o->output = optarg; break;
        case 'f':
            if (!strcmp(optarg, "jsonl")) o->format = FMT_JSONL;
            else if (!strcmp(optarg, "npy")) o->format = FMT_NPY;
            else if (!strcmp(optarg, "raw")) o->format = FMT_RAW;
            else {
                fprintf(stderr, "sembed: --format expects jsonl, npy or raw, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, 1024, &v)) {
                fprintf(stderr, "sembed: --threads expects an integer in [1, 1024], got '%s'\n", optarg);
                return 2;
            }
            o->cp.n_threads = (int32_t)v;
            break;
        case 'X':
            if (sembed_precision_parse(optarg, &o->cp.precision) != SEMBED_OK) {
                fprintf(stderr,
                        "sembed: --precision expects fp32, fp32-strict, int8 or bf16, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'n':
            if (!parse_int(optarg, 1, 1000000, &v)) {
                fprintf(stderr, "sembed: --max-length expects an integer in [1, 1000000], got '%s'\n", optarg);
                return 2;
            }
            o->mp.max_length = (int32_t)v;
            break;
        case 'B':
            if (!parse_int(optarg, 1, 1000000, &v)) {
                fprintf(stderr, "sembed: --batch expects an integer in [1, 1000000], got '%s'\n", optarg);
                return 2;
            }
            o->batch = (int32_t)v;
            break;
        case 'D':
            if (!parse_int(optarg, 1, 1000000, &v)) {
                fprintf(stderr, "sembed: --dimensions expects an integer in [1, 1000000], got '%s'\n", optarg);
                return 2;
            }
            o->eo.dimensions = (int32_t)v;
            break;
        case 'd': o->cp.device = optarg; break;
        case 'R': o->eo.prompt_name = optarg; break;
        case 'Q': o->eo.prompt = optarg; break;
        case 'J': o->jsonl_in = true; break;
        case 'S': o->cp.strict_length = 1; break;
        case 'P': o->progress = false; break;
        case 'h': help(stdout); return -1;
        default: help(stderr); return 2;
        }
    }
    if (!o->model) {
        fprintf(stderr, "sembed %s: -m DIR is required\n", similarity ? "similarity" : "embed");
        return 2;
    }
    if (o->format == FMT_NPY && !o->output) {
        fprintf(stderr, "sembed embed: --format npy needs --output FILE\n");
        return 2;
    }
    return 0;
}

static double ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int load(const embed_opts *o, sembed_model **model, sembed_ctx **ctx) {
    sembed_error err = {0};
    /* SEMBED_CUDA_VERBOSE: the start-up's two halves, beside the GPU context's own phases */
    const char *v = getenv("SEMBED_CUDA_VERBOSE");
    const bool verbose = v && *v && strcmp(v, "0") != 0;
    const double t0 = ms_now();
    /* the CUDA driver and device come up while the model loads (SEMBED_DEVICE_WARM=0: one
     * after the other, for measuring) */
    const char *wv = getenv("SEMBED_DEVICE_WARM");
    sembed_device_warm *warm = wv && strcmp(wv, "0") == 0 ? NULL : sembed_device_warm_start(&o->cp);
    const sembed_status ls = sembed_model_load(o->model, &o->mp, model, &err);
    const double tl = ms_now();
    sembed_device_warm_wait(warm);
    if (ls != SEMBED_OK) {
        fprintf(stderr, "sembed: %s\n", err.msg);
        return 1;
    }
    const double t1 = ms_now();
    /* the encode options, checked before any output is written */
    const char *bad = NULL;
    if (o->eo.dimensions > sembed_model_dim(*model)) {
        snprintf(err.msg, sizeof err.msg, "--dimensions %d is larger than the model's %d",
                 o->eo.dimensions, sembed_model_dim(*model));
        bad = err.msg;
    }
    if (!bad && o->eo.prompt_name && !o->eo.prompt) {
        const char *name = NULL;
        int32_t i = 0;
        while (sembed_model_prompt(*model, i, &name) && strcmp(name, o->eo.prompt_name)) i++;
        if (!name) {
            snprintf(err.msg, sizeof err.msg,
                     "--prompt-name '%.100s': the model has no such prompt (sembed info -m %.200s "
                     "lists them)",
                     o->eo.prompt_name, o->model);
            bad = err.msg;
        }
    }
    if (bad || sembed_ctx_new(*model, &o->cp, ctx, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed: %s\n", err.msg);
        sembed_model_free(*model);
        return 1;
    }
    if (verbose)
        fprintf(stderr,
                "sembed start-up: model loaded %8.1f ms (device ready %8.1f ms), context made "
                "%8.1f ms\n",
                tl - t0, t1 - t0, ms_now() - t1);
    return 0;
}

int cli_embed(int argc, char **argv) {
    embed_opts o = {.mp = sembed_model_default_params(), .cp = sembed_ctx_default_params(),
                    .batch = 0 /* by device, below */, .progress = true, .format = FMT_JSONL};
    o.cp.device = "auto";
    int rc = parse_args(argc, argv, &o, false);
    if (rc) return rc < 0 ? 0 : rc;
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL;
    if (load(&o, &model, &ctx)) return 1;
    int32_t dim = o.eo.dimensions ? o.eo.dimensions : sembed_model_dim(model);

    FILE *out = stdout;
    if (o.output && !(out = fopen(o.output, "wb"))) {
        fprintf(stderr, "sembed embed: cannot write %s: %s\n", o.output, strerror(errno));
        sembed_ctx_free(ctx);
        sembed_model_free(model);
        return 1;
    }
    if (o.format == FMT_NPY) write_npy_header(out, 0, dim); /* rewritten with the count at the end */

    bool from_args = optind < argc && !o.input;
    cli_lines r = {.f = stdin};
    if (o.input && strcmp(o.input, "-") && !(r.f = fopen(o.input, "rb"))) {
        fprintf(stderr, "sembed embed: cannot read %s: %s\n", o.input, strerror(errno));
        rc = 1;
    }
    /* a GPU context takes bigger calls (one chunk of the library's GPU default holds 1024
     * texts); the output is formatted and written by embed_out's threads meanwhile */
    const bool on_gpu = strncmp(sembed_ctx_device(ctx), "cuda", 4) == 0;
    if (o.batch == 0) o.batch = on_gpu ? 8192 : 256; /* on a GPU a call of 8 chunks: the library tokenizes one while the GPU runs another */
    int n_fmt = 1;
    if (on_gpu) {
        const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        n_fmt = ncpu >= 4 ? (int)(ncpu / 2 < 8 ? ncpu / 2 : 8) : 1;
    }
    const char *fe = getenv("SEMBED_FMT_THREADS"); /* 1..8, for tests and measurements */
    const int fe_n = fe ? atoi(fe) : 0;
    if (fe_n >= 1 && fe_n <= 8) n_fmt = fe_n;
    /* texts read (or taken from the arguments) by embed_in's thread while a batch encodes */
    embed_in in;
    bool in_on = false;
    embed_out w;
    bool w_on = false;
    if (!rc) {
        w_on = embed_out_start(&w, out, o.format == FMT_JSONL, dim, o.batch, n_fmt);
        in_on = w_on && embed_in_start(&in, &r, from_args ? argv + optind : NULL, argc - optind,
                                       o.jsonl_in, o.batch);
        if (!in_on) rc = 1;
    }
    bool show = o.progress && isatty(STDERR_FILENO) && !from_args;
    int64_t done = 0, bytes = 0;
    double t0 = mono(), last = t0;
    while (!rc) {
        embed_out_slot *slot = embed_out_acquire(&w);
        if (!slot) {
            rc = 1; /* the writer reported it */
            break;
        }
        embed_in_batch *b = embed_in_take(&in);
        const int32_t n = b->n;
        bool stop = b->end;
        if (b->bad) {
            fprintf(stderr, "sembed embed: input line %lld: expected a JSON string or an object with a \"text\" string\n",
                    (long long)(done + n + 1));
            rc = 1;
        } else if (b->oom) {
            fprintf(stderr, "sembed embed: out of memory reading text %lld\n", (long long)(done + n + 1));
            rc = 1;
        }
        sembed_status st = SEMBED_OK;
        sembed_error err = {0};
        if (!rc && n > 0) {
            st = sembed_encode_ex(ctx, n, (const char *const *)b->texts, b->lens, &o.eo, slot->vec,
                                  (int64_t)n * dim, slot->info, &err);
            bytes += b->bytes;
        }
        embed_in_release(&in, b);
        if (rc || n == 0) break;
        if (st != SEMBED_OK) {
            fprintf(stderr, "sembed embed: texts %lld..%lld: %s\n", (long long)done,
                    (long long)(done + n - 1), err.msg);
            rc = 1;
            break;
        }
        embed_out_submit(&w, slot, n, done);
        done += n;
        if (show && mono() - last > 0.2) {
            progress(done, bytes, t0, false);
            last = mono();
        }
        if (stop) break;
    }
    if (in_on) embed_in_stop(&in);
    if (w_on && !embed_out_finish(&w)) rc = 1;
    if (show && done) progress(done, bytes, t0, true);
    if (!rc && o.format == FMT_NPY) {
        if (fseek(out, 0, SEEK_SET) != 0) {
            fprintf(stderr, "sembed embed: cannot rewrite the .npy header of %s\n", o.output);
            rc = 1;
        } else {
            write_npy_header(out, done, dim);
        }
    }
    if (out != stdout && fclose(out) != 0 && !rc) {
        fprintf(stderr, "sembed embed: cannot write %s: %s\n", o.output, strerror(errno));
        rc = 1;
    }
    if (r.f && r.f != stdin) fclose(r.f);
    cli_lines_free(&r);
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    return rc;
}

int cli_similarity(int argc, char **argv) {
    embed_opts o = {.mp = sembed_model_default_params(), .cp = sembed_ctx_default_params(),
                    .batch = 256, .format = FMT_JSONL};
    o.cp.device = "auto";
    int rc = parse_args(argc, argv, &o, true);
    if (rc) return rc < 0 ? 0 : rc;
    int n = argc - optind;
    if (n < 2) {
        fprintf(stderr, "sembed similarity: give at least two texts\n");
        return 2;
    }
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL;
    if (load(&o, &model, &ctx)) return 1;
    int32_t dim = o.eo.dimensions ? o.eo.dimensions : sembed_model_dim(model);
    float *vec = malloc(sizeof *vec * (size_t)n * (size_t)dim);
    sembed_error err = {0};
    if (!vec || sembed_encode_ex(ctx, n, (const char *const *)(argv + optind), NULL, &o.eo, vec,
                                 (int64_t)n * dim, NULL, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed similarity: %s\n", vec ? err.msg : "out of memory");
        free(vec);
        sembed_ctx_free(ctx);
        sembed_model_free(model);
        return 1;
    }
    double *sim = malloc(sizeof *sim * (size_t)n * (size_t)n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double d = 0, a = 0, b = 0;
            for (int32_t k = 0; k < dim; k++) {
                d += (double)vec[(size_t)i * dim + k] * vec[(size_t)j * dim + k];
                a += (double)vec[(size_t)i * dim + k] * vec[(size_t)i * dim + k];
                b += (double)vec[(size_t)j * dim + k] * vec[(size_t)j * dim + k];
            }
            sim[i * n + j] = d / (sqrt(a) * sqrt(b) + 1e-30);
        }
    printf("cosine similarity (%d texts, %d dimensions)\n\n     ", n, dim);
    for (int j = 0; j < n; j++) printf(" %6d", j);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%4d ", i);
        for (int j = 0; j < n; j++) printf(" %6.3f", sim[i * n + j]);
        printf("   %.60s\n", argv[optind + i]);
    }
    printf("\nnearest neighbour of each text\n\n");
    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (j != i && (best < 0 || sim[i * n + j] > sim[i * n + best])) best = j;
        printf("  %.50s\n    -> %.50s  (%.3f)\n", argv[optind + i], argv[optind + best],
               sim[i * n + best]);
    }
    free(sim);
    free(vec);
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    return 0;
}
