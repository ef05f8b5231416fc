/* embed.c — the smallest C program on libsembed: loads a model folder, embeds the texts of
 * its command line and prints each one's cosine to the first. Build against an installed
 * sembed (cmake --install BUILD --prefix P):
 *     cc embed.c $(PKG_CONFIG_PATH=P/lib/pkgconfig pkg-config --cflags --libs sembed) -o embed
 *     LD_LIBRARY_PATH=P/lib ./embed ~/.cache/sembed/models/all-MiniLM-L6-v2 "a cat" "a dog"
 * (add --static to pkg-config's flags to link libsembed.a instead). */
#include <sembed.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT [TEXT...]\n", argv[0]);
        return 2;
    }
    sembed_error err;
    sembed_model *model = NULL;
    sembed_ctx *ctx = NULL;
    if (sembed_model_load(argv[1], NULL, &model, &err) != SEMBED_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sembed_ctx_params p = sembed_ctx_default_params();
    p.device = "auto"; /* a GPU when there is one, else the CPU */
    if (sembed_ctx_new(model, &p, &ctx, &err) != SEMBED_OK) {
        fprintf(stderr, "%s\n", err.msg);
        sembed_model_free(model);
        return 1;
    }
    const int32_t n = argc - 2, dim = sembed_model_dim(model);
    float *v = malloc(sizeof(float) * (size_t)n * (size_t)dim);
    int rc = 1;
    if (v && sembed_encode(ctx, n, (const char *const *)argv + 2, NULL, v, (int64_t)n * dim, NULL,
                           &err) == SEMBED_OK) {
        printf("sembed %s, %d dimensions\n", sembed_version(), dim);
        for (int32_t i = 0; i < n; i++) {
            double dot = 0; /* the vectors are normalized when the model normalizes */
            for (int32_t k = 0; k < dim; k++) dot += (double)v[k] * v[(size_t)i * dim + k];
            printf("%8.4f  %s\n", dot, argv[i + 2]);
        }
        rc = 0;
    } else {
        fprintf(stderr, "%s\n", v ? err.msg : "out of memory");
    }
    free(v);
    sembed_ctx_free(ctx);
    sembed_model_free(model);
    return rc;
}
