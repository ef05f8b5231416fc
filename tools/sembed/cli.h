/* cli.h — the subcommands of the sembed tool and the helpers they share. Not a library API. */
#ifndef SEMBED_CLI_H
#define SEMBED_CLI_H

#include "sembed.h"

#include <stdbool.h>
#include <stdio.h>

int cli_tokenize(int argc, char **argv);

/* Reads lines of a stream one at a time (without the '\n'; a trailing '\r' is kept). Returns
 * false at the end. *line stays valid until the next call. */
typedef struct cli_lines {
    FILE *f;
    char *buf;
    size_t cap;
} cli_lines;
bool cli_next_line(cli_lines *r, char **line, size_t *len);
void cli_lines_free(cli_lines *r);

/* Writes s (n bytes of valid UTF-8) as a JSON string. */
void cli_json_string(FILE *f, const char *s, size_t n);

#endif
