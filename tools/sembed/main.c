/* main.c — the `sembed` command: one binary with subcommands, built on the public API only.
 * Not library code: this file may print and exit. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: sembed <command> [options]\n"
            "\n"
            "commands:\n"
            "  embed -m DIR [TEXT...]      embed texts (arguments, a file or stdin); JSON lines,\n"
            "                              .npy or raw float32; --prompt-name, --dimensions\n"
            "  similarity -m DIR TEXT...   cosine similarity matrix and nearest neighbours\n"
            "  bench -m DIR [--peer]       CPU throughput for batches of real texts\n"
            "  info -m DIR [--json]        describe a model: sizes, pooling, prompts, weights\n"
            "  tokenize -m DIR [TEXT...]   print token ids, tokens and offsets as JSON lines\n"
            "                              (texts from the arguments, else one per line on stdin)\n"
            "  serve -m DIR [--port N]     serve embeddings over HTTP (OpenAI and TEI routes)\n"
            "  version                     print the version\n"
            "\n"
            "Run `sembed <command> --help` for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "tokenize")) return cli_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "embed")) return cli_embed(argc - 1, argv + 1);
    if (!strcmp(cmd, "similarity")) return cli_similarity(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sembed %s\n", sembed_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sembed: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
