/* testlib.h — the small harness every test uses: checks that count failures, model folder
 * lookup, gzip line reading. Not a framework: a test is a main() that returns 0, 1 or 77 (skip). */
#ifndef SEMBED_TESTLIB_H
#define SEMBED_TESTLIB_H

#include "sembed.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

extern int t_failures;
extern int t_checks;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        t_checks++;                                                                          \
        if (!(cond)) {                                                                       \
            t_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                    \
    } while (0)

#define CHECKF(cond, ...)                                                                    \
    do {                                                                                     \
        t_checks++;                                                                          \
        if (!(cond)) {                                                                       \
            t_failures++;                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
        }                                                                                    \
    } while (0)

/* Prints "name: N passed, M failed" and returns the exit code for main. */
int t_done(const char *name);

/* The folder of a cached model (scripts/fetch_models.py NAME puts it there), or NULL. When it
 * is missing: with SEMBED_REQUIRE_MODELS=1 in the environment that is a failure (exit 1),
 * else the test is skipped (exit 77). */
const char *t_model_dir(const char *name);
/* Like t_model_dir but returns NULL instead of exiting. */
const char *t_model_dir_opt(const char *name);

/* SEMBED_TEST_TEXT_STRIDE=k: the golden-corpus tests check every k-th text only (>= 1; 1 when
 * unset). `make test` sets it for the sanitizer run, where the fast ops run ~10x slower, and
 * runs the same tests over every text in a Release build. */
int32_t t_text_stride(void);

/* Reads a gzip (or plain) file line by line. Returns NULL at the end. The line excludes '\n'
 * and stays valid until the next call. */
typedef struct t_lines t_lines;
t_lines *t_lines_open(const char *path);
const char *t_lines_next(t_lines *l, size_t *len);
void t_lines_close(t_lines *l);

/* A text of the golden tokenizer corpus (its bytes may hold NULs; s is NUL-terminated too). */
typedef struct t_text {
    char *s;
    size_t len;
} t_text;
/* Reads a .jsonl(.gz) file of one JSON string per line into *out (*n texts); false on any bad
 * line. Free with t_corpus_free. */
bool t_corpus_load(const char *path, t_text **out, int32_t *n);
void t_corpus_free(t_text *texts, int32_t n);
/* Exactly n float32 from a gzip file (none more), or NULL. The caller frees. */
float *t_read_f32_gz(const char *path, int64_t n);
/* Cosine of two vectors in double. */
double t_cosine(const float *a, const float *b, int32_t dim);

/* Writes `size` bytes to a new temporary file under a fresh temporary folder; returns the
 * folder path (static storage per call slot; free with t_rmdir). */
char *t_tmpdir(void);
bool t_write_file(const char *dir, const char *name, const void *data, size_t size);
void t_rmdir(char *dir);

#endif
