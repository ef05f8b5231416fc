/* info.c — `sembed info`: what a model folder is (sembed_model_describe and its prompts), as
 * text or one JSON object. Not a validator of folders beyond what loading checks. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <string.h>

static void help(FILE *f) {
    fprintf(f, "usage: sembed info -m DIR [--json]\n"
               "\n"
               "Loads the model folder DIR and describes it: architecture, sizes, maximum length,\n"
               "pooling, Dense modules, normalization, lowercasing, weights and the prompts of\n"
               "config_sentence_transformers.json (the default one marked).\n"
               "\n"
               "  -m, --model DIR   sentence-transformers (or Hugging Face) model folder\n"
               "      --json        one JSON object instead of text\n");
}

static const char *pooling_name(sembed_pooling p) {
    switch (p) {
    case SEMBED_POOLING_CLS: return "cls";
    case SEMBED_POOLING_MEAN: return "mean";
    case SEMBED_POOLING_MAX: return "max";
    case SEMBED_POOLING_LAST: return "lasttoken";
    case SEMBED_POOLING_DEFAULT: break;
    }
    return "other"; /* several modes, mean_sqrt_len_tokens or weightedmean */
}

static void print_json(const sembed_model *m, const sembed_model_info *d) {
    printf("{\"architecture\":\"%s\",\"dim\":%d,\"hidden_size\":%d,\"layers\":%d,\"heads\":%d,"
           "\"intermediate_size\":%d,\"vocab_size\":%d,\"max_position\":%d,\"max_length\":%d,"
           "\"pooling\":\"%s\",\"include_prompt\":%s,\"dense\":%d,\"normalize\":%s,"
           "\"do_lower_case\":%s,\"weights_dtype\":\"%s\",\"parameters\":%" PRId64 ","
           "\"default_prompt_name\":",
           d->architecture, d->dim, d->hidden_size, d->n_layers, d->n_heads,
           d->intermediate_size, d->vocab_size, d->max_position, d->max_length,
           pooling_name(d->pooling), d->include_prompt ? "true" : "false", d->n_dense,
           d->normalize ? "true" : "false", d->do_lower_case ? "true" : "false",
           d->weights_dtype, d->n_params);
    if (d->default_prompt_name)
        cli_json_string(stdout, d->default_prompt_name, strlen(d->default_prompt_name));
    else
        printf("null");
    printf(",\"prompts\":{");
    for (int32_t i = 0; i < d->n_prompts; i++) {
        const char *name = NULL, *text = sembed_model_prompt(m, i, &name);
        if (i) putchar(',');
        cli_json_string(stdout, name, strlen(name));
        putchar(':');
        cli_json_string(stdout, text, strlen(text));
    }
    printf("}}\n");
}

static void print_text(const char *dir, const sembed_model *m, const sembed_model_info *d) {
    printf("model            %s\n", dir);
    printf("architecture     %s\n", d->architecture);
    printf("dimensions       %d\n", d->dim);
    printf("hidden size      %d (intermediate %d)\n", d->hidden_size, d->intermediate_size);
    printf("layers, heads    %d, %d\n", d->n_layers, d->n_heads);
    printf("vocabulary       %d\n", d->vocab_size);
    printf("max length       %d tokens (position table %d)\n", d->max_length, d->max_position);
    printf("pooling          %s%s\n", pooling_name(d->pooling),
           d->include_prompt ? "" : " (prompt tokens left out)");
    printf("dense modules    %d\n", d->n_dense);
    printf("normalize        %s\n", d->normalize ? "yes" : "no");
    printf("do_lower_case    %s\n", d->do_lower_case ? "yes" : "no");
    printf("weights          %s on disk, %.1fM parameters (fp32 in memory)\n", d->weights_dtype,
           (double)d->n_params / 1e6);
    printf("prompts          %d\n", d->n_prompts);
    for (int32_t i = 0; i < d->n_prompts; i++) {
        const char *name = NULL, *text = sembed_model_prompt(m, i, &name);
        bool def = d->default_prompt_name && !strcmp(name, d->default_prompt_name);
        printf("  %c %-14s ", def ? '*' : ' ', name);
        cli_json_string(stdout, text, strlen(text));
        printf("%s\n", def ? "  (default)" : "");
    }
}

int cli_info(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'J': json = true; break;
        case 'h': help(stdout); return 0;
        default: help(stderr); return 2;
        }
    }
    if (!dir || optind < argc) {
        fprintf(stderr, dir ? "sembed info: unexpected argument '%s'\n"
                            : "sembed info: -m DIR is required\n",
                optind < argc ? argv[optind] : "");
        return 2;
    }
    sembed_error err = {0};
    sembed_model *m = NULL;
    if (sembed_model_load(dir, NULL, &m, &err) != SEMBED_OK) {
        fprintf(stderr, "sembed info: %s\n", err.msg);
        return 1;
    }
    sembed_model_info d;
    sembed_model_describe(m, &d);
    if (json)
        print_json(m, &d);
    else
        print_text(dir, m, &d);
    sembed_model_free(m);
    return 0;
}
