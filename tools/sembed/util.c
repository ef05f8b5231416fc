/* util.c — helpers shared by the subcommands: line reading and JSON string output. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

bool cli_next_line(cli_lines *r, char **line, size_t *len) {
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0) return false;
    if (n > 0 && r->buf[n - 1] == '\n') r->buf[--n] = 0;
    *line = r->buf;
    *len = (size_t)n;
    return true;
}

void cli_lines_free(cli_lines *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

void cli_json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7F) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

bool cli_json_text(const char *line, size_t n, char **text, size_t *len) {
    json_error_t e;
    json_t *j = json_loadb(line, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    json_t *s = json_is_object(j) ? json_object_get(j, "text") : j;
    bool ok = json_is_string(s);
    if (ok) {
        *len = json_string_length(s);
        *text = malloc(*len + 1);
        ok = *text != NULL;
        if (ok) memcpy(*text, json_string_value(s), *len + 1);
    }
    json_decref(j);
    return ok;
}
