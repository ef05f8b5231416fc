/* cli.h — the subcommands of the sembed tool and the helpers they share. Not a library API. */
#ifndef SEMBED_CLI_H
#define SEMBED_CLI_H

#include "sembed.h"

#include <stdbool.h>
#include <stdio.h>

int cli_tokenize(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_embed(int argc, char **argv);
int cli_similarity(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_info(int argc, char **argv);

/* Reads lines of a stream one at a time (without the '\n'; a trailing '\r' is kept). Returns
 * false at the end. *line stays valid until the next call. */
typedef struct cli_lines {
    FILE *f;
    char *buf;
    size_t cap;
} cli_lines;
bool cli_next_line(cli_lines *r, char **line, size_t *len);
void cli_lines_free(cli_lines *r);

/* Reads a JSON line holding a string, or an object with a "text" string, into a malloc'ed
 * *text of *len bytes. False when the line is not such JSON. */
bool cli_json_text(const char *line, size_t n, char **text, size_t *len);

/* The precision of a GPU context beside CPU ones run at `cpu`: bf16 for bf16, else fp16
 * (SEMBED_PRECISION_FP32; int8 and fp32-strict are CPU arithmetic, refused on CUDA). */
static inline sembed_precision cli_gpu_precision(sembed_precision cpu) {
    return cpu == SEMBED_PRECISION_BF16 ? SEMBED_PRECISION_BF16 : SEMBED_PRECISION_FP32;
}

/* Writes s (n bytes of valid UTF-8) as a JSON string. */
void cli_json_string(FILE *f, const char *s, size_t n);

#endif
