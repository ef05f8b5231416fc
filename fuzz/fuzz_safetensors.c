/* fuzz_safetensors.c — libFuzzer target: arbitrary bytes as a whole .safetensors file through
 * sembed__st_parse, then every accessor and conversion on what it accepts. Not a test of
 * models (fuzz_config.c checks weights against configs). */
#include "model/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sembed__st_file *st = NULL;
    sembed_error err = {0};
    sembed_status s = sembed__st_parse(data, size, "fuzz.safetensors", &st, &err);
    if (s != SEMBED_OK) {
        SEMBED_ASSERT(st == NULL && err.status == s && err.msg[0] != 0);
        return 0;
    }
    int32_t n = sembed__st_n_tensors(st);
    for (int32_t i = 0; i < n; i++) {
        const sembed__st_tensor *t = sembed__st_tensor_at(st, i);
        SEMBED_ASSERT(sembed__st_find(st, t->name) == t);
        /* every tensor's bytes lie inside the input: touch the first and the last */
        if (t->nbytes) {
            SEMBED_ASSERT(t->data >= data && t->data + t->nbytes <= data + size);
            volatile uint8_t x = t->data[0];
            x ^= t->data[t->nbytes - 1];
            (void)x;
        }
        if (sembed__st_dtype_readable(t->dtype) && t->n_elems <= (1 << 16)) {
            size_t m = (size_t)t->n_elems;
            float *f = malloc((m ? m : 1) * sizeof *f);
            uint16_t *h = malloc((m ? m : 1) * sizeof *h);
            if (f && h) {
                SEMBED_ASSERT(sembed__st_read_f32(t, f, t->n_elems, &err) == SEMBED_OK);
                SEMBED_ASSERT(sembed__st_read_f16(t, h, t->n_elems, &err) == SEMBED_OK);
                /* half -> float -> half is the identity on non-NaN values */
                if (t->dtype == SEMBED__ST_F16)
                    for (size_t k = 0; k < m; k++)
                        if (f[k] == f[k]) SEMBED_ASSERT(sembed__f32_to_f16(f[k]) == h[k]);
            }
            free(f);
            free(h);
        } else if (!sembed__st_dtype_readable(t->dtype)) {
            float one;
            SEMBED_ASSERT(sembed__st_read_f32(t, &one, t->n_elems, &err) == SEMBED_ERR_UNSUPPORTED);
        }
    }
    for (int32_t i = 0; i < sembed__st_n_metadata(st); i++) {
        const char *k, *v;
        sembed__st_metadata_at(st, i, &k, &v);
        SEMBED_ASSERT(sembed__st_metadata(st, k) != NULL);
    }
    sembed__st_close(st);
    return 0;
}
