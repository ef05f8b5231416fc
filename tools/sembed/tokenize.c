/* tokenize.c — `sembed tokenize`: token ids, tokens and offsets of texts as JSON lines. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f, "usage: sembed tokenize -m DIR [--max-length N] [--no-special] [TEXT...]\n"
               "\n"
               "Tokenizes each TEXT (or each line of stdin when no TEXT is given) with the\n"
               "tokenizer of the model folder DIR and prints one JSON object per text:\n"
               "  {\"ids\": [...], \"tokens\": [...], \"offsets\": [[begin, end], ...],\n"
               "   \"n_full\": N, \"truncated\": false}\n"
               "Offsets are byte ranges of the text. Texts longer than the model's maximum length\n"
               "are truncated, and \"truncated\" says so.\n"
               "\n"
               "  -m, --model DIR      model folder (tokenizer.json, or vocab.txt)\n"
               "  -n, --max-length N   maximum tokens per text, special tokens included\n"
               "                       (default: the model's max_seq_length)\n"
               "      --no-special     do not add [CLS]/[SEP] or <s>/</s>\n");
}

static int print_one(const sembed_tokenizer *tok, const char *text, size_t len, int32_t index,
                     sembed_tokens *out) {
    sembed_error err = {0};
    if (sembed_tokenize(tok, text, len, out, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed tokenize: input %d: %s\n", index, err.msg);
        return 1;
    }
    printf("{\"ids\":[");
    for (int32_t i = 0; i < out->n; i++) printf("%s%d", i ? "," : "", out->ids[i]);
    printf("],\"tokens\":[");
    for (int32_t i = 0; i < out->n; i++) {
        const char *t = sembed_tokenizer_id_to_token(tok, out->ids[i]);
        if (i) putchar(',');
        cli_json_string(stdout, t ? t : "", t ? strlen(t) : 0);
    }
    printf("],\"offsets\":[");
    for (int32_t i = 0; i < out->n; i++)
        printf("%s[%d,%d]", i ? "," : "", out->offsets[2 * i], out->offsets[2 * i + 1]);
    printf("],\"n_full\":%d,\"truncated\":%s}\n", out->n_full, out->truncated ? "true" : "false");
    return 0;
}

int cli_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"max-length", required_argument, NULL, 'n'},
                                         {"no-special", no_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *model = NULL;
    sembed_tokenizer_params tp = sembed_tokenizer_default_params();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'n': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1000000) {
                fprintf(stderr, "sembed tokenize: --max-length expects an integer in [1, 1000000], got '%s'\n", optarg);
                return 2;
            }
            tp.max_length = (int32_t)v;
            break;
        }
        case 'S': tp.add_special_tokens = 0; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "sembed tokenize: -m DIR is required\n");
        help(stderr);
        return 2;
    }
    sembed_error err = {0};
    sembed_tokenizer *tok = NULL;
    if (sembed_tokenizer_load(model, &tp, &tok, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed tokenize: %s\n", err.msg);
        return 1;
    }
    int32_t cap = sembed_tokenizer_max_length(tok) + 8;
    sembed_tokens out = {.ids = malloc(sizeof(int32_t) * (size_t)cap),
                         .offsets = malloc(sizeof(int32_t) * 2 * (size_t)cap),
                         .capacity = cap};
    int rc = 0;
    if (!out.ids || !out.offsets) {
        fprintf(stderr, "sembed tokenize: out of memory\n");
        rc = 1;
    } else if (optind < argc) {
        for (int i = optind; i < argc && !rc; i++)
            rc = print_one(tok, argv[i], strlen(argv[i]), i - optind, &out);
    } else {
        cli_lines r = {.f = stdin};
        char *line;
        size_t len;
        for (int32_t i = 0; !rc && cli_next_line(&r, &line, &len); i++)
            rc = print_one(tok, line, len, i, &out);
        cli_lines_free(&r);
    }
    free(out.ids);
    free(out.offsets);
    sembed_tokenizer_free(tok);
    return rc;
}
