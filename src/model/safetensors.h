/* safetensors.h — reading .safetensors files: strict validation of the header, lookup of
 * tensors by name, conversion of F32/F16/BF16 data to float or IEEE half. Not a writer, and it
 * knows nothing of models (src/model/config.h checks names and shapes against an architecture).
 *
 * Dimension letters: none; a tensor's shape is whatever its file says, up to 8 dimensions. */
#ifndef SEMBED_MODEL_SAFETENSORS_H
#define SEMBED_MODEL_SAFETENSORS_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEMBED__ST_MAX_DIMS 8                        /* more dimensions: a format error */
#define SEMBED__ST_MAX_HEADER 100000000u             /* as the reference's MAX_HEADER_SIZE */
#define SEMBED__ST_MAX_INT ((UINT64_C(1) << 48) - 1) /* the schema's cap on shape/offset */

/* Every dtype the format defines. Only F32, F16 and BF16 can be read as numbers; the others
 * are parsed and validated (their byte sizes take part in the offset checks) but reading them
 * gives SEMBED_ERR_UNSUPPORTED. */
typedef enum sembed__st_dtype {
    SEMBED__ST_BOOL,
    SEMBED__ST_F4,
    SEMBED__ST_F6_E2M3,
    SEMBED__ST_F6_E3M2,
    SEMBED__ST_U8,
    SEMBED__ST_I8,
    SEMBED__ST_F8_E5M2,
    SEMBED__ST_F8_E4M3,
    SEMBED__ST_F8_E8M0,
    SEMBED__ST_F8_E4M3FNUZ,
    SEMBED__ST_F8_E5M2FNUZ,
    SEMBED__ST_I16,
    SEMBED__ST_U16,
    SEMBED__ST_F16,
    SEMBED__ST_BF16,
    SEMBED__ST_I32,
    SEMBED__ST_U32,
    SEMBED__ST_F32,
    SEMBED__ST_C64,
    SEMBED__ST_F64,
    SEMBED__ST_I64,
    SEMBED__ST_U64,
    SEMBED__ST_N_DTYPES
} sembed__st_dtype;

const char *sembed__st_dtype_name(sembed__st_dtype dtype); /* "F32"; "?" when out of range */
int sembed__st_dtype_bits(sembed__st_dtype dtype);         /* 4, 6, 8, 16, 32 or 64 */
bool sembed__st_dtype_readable(sembed__st_dtype dtype);    /* F32, F16, BF16 */

/* One tensor of a file. Everything it points to is owned by the file and lives until
 * sembed__st_close. */
typedef struct sembed__st_tensor {
    const char *name; /* NUL-terminated, valid UTF-8 */
    const char *file; /* the file's name, for messages */
    sembed__st_dtype dtype;
    int32_t n_dims;                     /* 0 for a scalar */
    int64_t shape[SEMBED__ST_MAX_DIMS]; /* each <= 2^48-1; entries past n_dims are 0 */
    int64_t n_elems;     /* product of shape; 1 for a scalar, 0 when a dimension is 0 */
    const uint8_t *data; /* nbytes bytes, little-endian, row-major, ANY alignment: never cast */
    size_t nbytes;
    uint64_t offset; /* of data from the start of the file */
} sembed__st_tensor;

typedef struct sembed__st_file sembed__st_file;

/* Reads the file at `path` into memory and validates it (see safetensors.c for why it is read
 * rather than mapped). On success *out owns the file; free it with sembed__st_close. Errors:
 * SEMBED_ERR_IO (cannot open/read), SEMBED_ERR_FORMAT (invalid content; the message names the
 * path, the tensor or field, and the reason), SEMBED_ERR_NOMEM. */
sembed_status sembed__st_open(const char *path, sembed__st_file **out, sembed_error *err);

/* Validates `size` bytes of a safetensors file held by the caller. The handle BORROWS `buf`,
 * which must outlive it; `name` (copied) is used in messages. Same errors as sembed__st_open. */
sembed_status sembed__st_parse(const uint8_t *buf, size_t size, const char *name,
                               sembed__st_file **out, sembed_error *err);

void sembed__st_close(sembed__st_file *st); /* NULL is a no-op */

const char *sembed__st_name(const sembed__st_file *st);
int32_t sembed__st_n_tensors(const sembed__st_file *st);
/* Tensor i of 0..n_tensors-1, in byte order of names (strcmp). */
const sembed__st_tensor *sembed__st_tensor_at(const sembed__st_file *st, int32_t i);
/* The tensor called `name`, or NULL (binary search). */
const sembed__st_tensor *sembed__st_find(const sembed__st_file *st, const char *name);

/* The `__metadata__` entries (string -> string), in file order. */
int32_t sembed__st_n_metadata(const sembed__st_file *st);
void sembed__st_metadata_at(const sembed__st_file *st, int32_t i, const char **key,
                            const char **value);
const char *sembed__st_metadata(const sembed__st_file *st, const char *key); /* or NULL */

/* Converts a whole F32/F16/BF16 tensor to floats in dst (n_elems floats, any alignment that a
 * float* may have). `n_elems` must equal t->n_elems (else SEMBED_ERR_INVALID_ARG); another dtype
 * gives SEMBED_ERR_UNSUPPORTED. F16 and BF16 convert exactly. */
sembed_status sembed__st_read_f32(const sembed__st_tensor *t, float *dst, int64_t n_elems,
                                  sembed_error *err);
/* Like sembed__st_read_f32, but writes IEEE binary16 bits (for the GPU): F16 is copied, F32 and
 * BF16 are rounded to nearest, ties to even (overflow gives inf, NaN stays NaN). */
sembed_status sembed__st_read_f16(const sembed__st_tensor *t, uint16_t *dst, int64_t n_elems,
                                  sembed_error *err);

/* The scalar conversions used above. */
float sembed__f16_to_f32(uint16_t h);  /* exact */
float sembed__bf16_to_f32(uint16_t b); /* exact */
uint16_t sembed__f32_to_f16(float f);  /* round to nearest even */

#endif
