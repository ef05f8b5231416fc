/* safetensors.c — the .safetensors reader: every check of the reference implementation
 * (huggingface/safetensors tensor.rs) plus stricter ones, then lookup and dtype conversion.
 * Not a writer; not a memory map.
 *
 * Why the file is read into memory rather than mmap'ed: a mapped file that is truncated or
 * rewritten while we hold it (a model cache being refreshed, a network file system) raises
 * SIGBUS on the next access, which a library cannot turn into an error; a read() failure is an
 * error we can return. The handle only lives while a model loads (its tensors are converted
 * into the backend's own buffers, F32 or F16, then the handle is closed), so the cost is a
 * transient copy of the file at load time, never a steady-state one. It also makes the buffer's
 * base address ours; tensor data inside it may still be unaligned (nothing in the format aligns
 * it), so every load goes through memcpy.
 *
 * Decisions where the format's README and the reference reader are silent or disagree
 * (reference/robustness.md §1.1): JSON whitespace before and after the header object is
 * accepted; duplicate keys anywhere in the header are rejected; a tensor entry has exactly the
 * fields dtype, shape and data_offsets; `__metadata__` is an object of strings; shape entries and
 * offsets are integers in [0, 2^48-1]; at most 8 dimensions; the tensors' byte ranges, sorted,
 * tile the data buffer exactly from 0 to the end of the file (no gap, no overlap, no trailing
 * byte). */
#include "model/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* safetensors data is little-endian; the F32 fast path below copies bytes as they are. */
#error "sembed's safetensors reader assumes a little-endian host"
#endif

struct sembed__st_file {
    char *name;                 /* for messages */
    uint8_t *owned;             /* the file's bytes when read by sembed__st_open, else NULL */
    sembed__st_tensor *tensors; /* (n_tensors) sorted by name */
    int32_t n_tensors;
    const char **meta; /* (2*n_meta) key, value, key, value, ... */
    int32_t n_meta;
    char *strings; /* arena for tensor names and metadata */
};

/* ---- dtypes ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int bits;
} k_dtypes[SEMBED__ST_N_DTYPES] = {
    [SEMBED__ST_BOOL] = {"BOOL", 8},
    [SEMBED__ST_F4] = {"F4", 4},
    [SEMBED__ST_F6_E2M3] = {"F6_E2M3", 6},
    [SEMBED__ST_F6_E3M2] = {"F6_E3M2", 6},
    [SEMBED__ST_U8] = {"U8", 8},
    [SEMBED__ST_I8] = {"I8", 8},
    [SEMBED__ST_F8_E5M2] = {"F8_E5M2", 8},
    [SEMBED__ST_F8_E4M3] = {"F8_E4M3", 8},
    [SEMBED__ST_F8_E8M0] = {"F8_E8M0", 8},
    [SEMBED__ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [SEMBED__ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [SEMBED__ST_I16] = {"I16", 16},
    [SEMBED__ST_U16] = {"U16", 16},
    [SEMBED__ST_F16] = {"F16", 16},
    [SEMBED__ST_BF16] = {"BF16", 16},
    [SEMBED__ST_I32] = {"I32", 32},
    [SEMBED__ST_U32] = {"U32", 32},
    [SEMBED__ST_F32] = {"F32", 32},
    [SEMBED__ST_C64] = {"C64", 64},
    [SEMBED__ST_F64] = {"F64", 64},
    [SEMBED__ST_I64] = {"I64", 64},
    [SEMBED__ST_U64] = {"U64", 64},
};

const char *sembed__st_dtype_name(sembed__st_dtype dtype) {
    return (unsigned)dtype < SEMBED__ST_N_DTYPES ? k_dtypes[dtype].name : "?";
}

int sembed__st_dtype_bits(sembed__st_dtype dtype) {
    SEMBED_ASSERT((unsigned)dtype < SEMBED__ST_N_DTYPES);
    return k_dtypes[dtype].bits;
}

bool sembed__st_dtype_readable(sembed__st_dtype dtype) {
    return dtype == SEMBED__ST_F32 || dtype == SEMBED__ST_F16 || dtype == SEMBED__ST_BF16;
}

static bool dtype_from_name(const char *s, sembed__st_dtype *out) {
    for (int i = 0; i < SEMBED__ST_N_DTYPES; i++) {
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *out = (sembed__st_dtype)i;
            return true;
        }
    }
    return false;
}

/* ---- header checks --------------------------------------------------------------------- */

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF). Returns the offset of the
 * first invalid byte, or n when all n bytes are valid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* An integer of a tensor entry: shape entries and offsets, in [0, 2^48-1]. */
static sembed_status get_uint48(const json_t *v, const char *file, const char *tensor,
                                const char *what, uint64_t *out, sembed_error *err) {
    if (!json_is_integer(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': %s is not an integer", file,
                           tensor, what);
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': %s is negative (%lld)", file,
                           tensor, what, (long long)x);
    if ((uint64_t)x > SEMBED__ST_MAX_INT)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': %s is %lld, more than the limit of 2^48-1", file,
                           tensor, what, (long long)x);
    *out = (uint64_t)x;
    return SEMBED_OK;
}

static void format_shape(char *buf, size_t cap, const int64_t *shape, int32_t n_dims) {
    size_t len = 0;
    buf[0] = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int32_t d = 0; d < n_dims && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Fills *t from one header entry (`key`: its name, already copied into the arena at t->name).
 * Checks the entry's form, and that its byte range is as long as its shape and dtype need. */
static sembed_status parse_entry(json_t *entry, const char *file, sembed__st_tensor *t,
                                 uint64_t *begin, uint64_t *end, sembed_error *err) {
    const char *name = t->name;
    if (!json_is_object(entry))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object",
                           file, name);
    const char *key;
    json_t *v;
    json_object_foreach(entry, key, v) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: tensor '%s': unknown field '%s' in tensor entry (only dtype, "
                               "shape and data_offsets are allowed)",
                               file, name, key);
    }
    const json_t *jdtype = json_object_get(entry, "dtype");
    const json_t *jshape = json_object_get(entry, "shape");
    const json_t *joffs = json_object_get(entry, "data_offsets");
    const char *missing = !jdtype ? "dtype" : !jshape ? "shape" : !joffs ? "data_offsets" : NULL;
    if (missing)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': missing field '%s'", file,
                           name, missing);

    if (!json_is_string(jdtype))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", file,
                           name);
    if (!dtype_from_name(json_string_value(jdtype), &t->dtype))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.40s'", file,
                           name, json_string_value(jdtype));

    if (!json_is_array(jshape))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: tensor '%s': shape is not an array", file,
                           name);
    size_t n_dims = json_array_size(jshape);
    if (n_dims > SEMBED__ST_MAX_DIMS)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': shape has %zu dimensions, more than the limit of %d",
                           file, name, n_dims, SEMBED__ST_MAX_DIMS);
    t->n_dims = (int32_t)n_dims;
    uint64_t n_elems = 1;
    bool overflow = false;
    for (size_t d = 0; d < n_dims; d++) {
        uint64_t dim;
        sembed_status s =
            get_uint48(json_array_get(jshape, d), file, name, "a shape entry", &dim, err);
        if (s != SEMBED_OK) return s;
        t->shape[d] = (int64_t)dim;
        /* Left to right, as the reference: an overflow before a zero dimension still counts. */
        if (!overflow && __builtin_mul_overflow(n_elems, dim, &n_elems)) overflow = true;
    }
    char shape_str[256];
    format_shape(shape_str, sizeof shape_str, t->shape, t->n_dims);
    uint64_t n_bits = 0;
    if (overflow ||
        __builtin_mul_overflow(n_elems, (uint64_t)sembed__st_dtype_bits(t->dtype), &n_bits))
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': size of shape %s of dtype %s overflows", file, name,
                           shape_str, sembed__st_dtype_name(t->dtype));
    if (n_bits % 8 != 0)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': shape %s of dtype %s is not a whole number of bytes "
                           "(%llu bits)",
                           file, name, shape_str, sembed__st_dtype_name(t->dtype),
                           (unsigned long long)n_bits);
    /* n_elems * bits fits in 64 bits and bits >= 4, so n_elems < 2^62 */
    SEMBED_ASSERT(n_elems <= (uint64_t)INT64_MAX);
    t->n_elems = (int64_t)n_elems;

    if (!json_is_array(joffs) || json_array_size(joffs) != 2)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets is not an array of two integers", file,
                           name);
    sembed_status s =
        get_uint48(json_array_get(joffs, 0), file, name, "data_offsets[0]", begin, err);
    if (s == SEMBED_OK)
        s = get_uint48(json_array_get(joffs, 1), file, name, "data_offsets[1]", end, err);
    if (s != SEMBED_OK) return s;
    if (*end < *begin)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu) end before begin", file,
                           name, (unsigned long long)*begin, (unsigned long long)*end);
    uint64_t n_bytes = n_bits / 8;
    if (*end - *begin != n_bytes)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu) hold %llu bytes, but shape "
                           "%s of dtype %s needs %llu bytes",
                           file, name, (unsigned long long)*begin, (unsigned long long)*end,
                           (unsigned long long)(*end - *begin), shape_str,
                           sembed__st_dtype_name(t->dtype), (unsigned long long)n_bytes);
    return SEMBED_OK;
}

/* For sorting the tensors by their byte ranges while checking that they tile the buffer. */
typedef struct range {
    uint64_t begin, end;
    const char *name;
    int32_t tensor; /* index into st->tensors */
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const sembed__st_tensor *)a)->name, ((const sembed__st_tensor *)b)->name);
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* The ranges, sorted by (begin, end), must tile [0, data_size) exactly: the first begins at 0,
 * each begins where the previous ended, the last ends at the end of the file. */
static sembed_status check_tiling(const char *file, const range *ranges, size_t n,
                                  uint64_t data_size, sembed_error *err) {
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const range *r = &ranges[i];
        if (r->begin > at)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu) leave a gap: bytes "
                               "[%llu, %llu) of the data buffer belong to no tensor",
                               file, r->name, (unsigned long long)r->begin,
                               (unsigned long long)r->end, (unsigned long long)at,
                               (unsigned long long)r->begin);
        if (r->begin < at)
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s', "
                               "which ends at %llu",
                               file, r->name, (unsigned long long)r->begin,
                               (unsigned long long)r->end, ranges[i - 1].name,
                               (unsigned long long)at);
        at = r->end;
    }
    if (at < data_size)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: %llu trailing bytes after the tensor data, which ends at byte "
                           "%llu of the data buffer (a polyglot or corrupt file)",
                           file, (unsigned long long)(data_size - at), (unsigned long long)at);
    if (at > data_size)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: file is truncated: the tensor data needs %llu bytes after the "
                           "header but the file has %llu (%llu missing)",
                           file, (unsigned long long)at, (unsigned long long)data_size,
                           (unsigned long long)(at - data_size));
    return SEMBED_OK;
}

/* Validates the parsed header against the buffer and fills st (whose name is set). `data` is
 * the start of the data buffer (file offset `data_start`), `data_size` its bytes up to the end
 * of the file. */
static sembed_status build(sembed__st_file *st, json_t *root, const uint8_t *data,
                           uint64_t data_start, uint64_t data_size, sembed_error *err) {
    const char *file = st->name;
    const char *key;
    json_t *v;

    /* Pass 1: check the metadata's form; count tensors, metadata and the arena bytes. */
    size_t n_tensors = 0, n_meta = 0, arena = 0;
    json_t *jmeta = json_object_get(root, "__metadata__");
    if (jmeta) {
        if (!json_is_object(jmeta))
            return sembed__err(err, SEMBED_ERR_FORMAT,
                               "%s: __metadata__ is %s, not an object of strings", file,
                               json_type_name(jmeta));
        json_object_foreach(jmeta, key, v) {
            if (!json_is_string(v))
                return sembed__err(err, SEMBED_ERR_FORMAT,
                                   "%s: __metadata__ value of '%s' is %s, not a string", file, key,
                                   json_type_name(v));
            n_meta++;
            arena += strlen(key) + 1 + json_string_length(v) + 1;
        }
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        n_tensors++;
        arena += strlen(key) + 1;
    }
    /* A header is at most 100 MB, so these counts and sizes cannot overflow. */
    SEMBED_ASSERT(n_tensors <= INT32_MAX && n_meta <= INT32_MAX);

    st->tensors = sembed__calloc(n_tensors, sizeof *st->tensors);
    range *ranges = sembed__calloc(n_tensors, sizeof *ranges);
    st->meta = sembed__calloc(2 * n_meta, sizeof *st->meta);
    st->strings = sembed__malloc(arena);
    if (!st->tensors || !ranges || !st->meta || !st->strings) {
        sembed__free(ranges);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory for %zu tensors", file,
                           n_tensors);
    }

    /* Pass 2: copy the metadata; validate each tensor entry. jansson rejects \u0000 (no
     * JSON_ALLOW_NUL), so keys and values are C strings. */
    char *p = st->strings;
    if (jmeta) {
        json_object_foreach(jmeta, key, v) {
            size_t kl = strlen(key) + 1, vl = json_string_length(v) + 1;
            memcpy(p, key, kl);
            st->meta[2 * st->n_meta] = p;
            p += kl;
            memcpy(p, json_string_value(v), vl);
            st->meta[2 * st->n_meta + 1] = p;
            p += vl;
            st->n_meta++;
        }
    }
    sembed_status s = SEMBED_OK;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        int32_t i = st->n_tensors++;
        sembed__st_tensor *t = &st->tensors[i];
        size_t kl = strlen(key) + 1;
        memcpy(p, key, kl);
        t->name = p;
        t->file = st->name;
        p += kl;
        range *r = &ranges[i];
        r->name = t->name;
        r->tensor = i;
        s = parse_entry(v, file, t, &r->begin, &r->end, err);
        if (s != SEMBED_OK) break;
    }
    if (s == SEMBED_OK) {
        if (n_tensors) qsort(ranges, n_tensors, sizeof *ranges, cmp_range);
        s = check_tiling(file, ranges, n_tensors, data_size, err);
    }
    if (s == SEMBED_OK) {
        /* Every range now lies inside the data buffer. */
        for (size_t i = 0; i < n_tensors; i++) {
            sembed__st_tensor *t = &st->tensors[ranges[i].tensor];
            t->data = data + ranges[i].begin;
            t->nbytes = (size_t)(ranges[i].end - ranges[i].begin);
            t->offset = data_start + ranges[i].begin;
        }
        if (n_tensors) qsort(st->tensors, n_tensors, sizeof *st->tensors, cmp_tensor_name);
    }
    sembed__free(ranges);
    return s;
}

static sembed_status parse_into(sembed__st_file *st, const uint8_t *buf, size_t size,
                                sembed_error *err) {
    const char *file = st->name;
    if (size < 8)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: file is %zu bytes, too small for the 8-byte header length", file,
                           size);
    uint64_t n = load_le64(buf);
    if (n > SEMBED__ST_MAX_HEADER)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: header length %llu is more than the limit of %u bytes", file,
                           (unsigned long long)n, SEMBED__ST_MAX_HEADER);
    if (n > (uint64_t)size - 8)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: header length %llu runs past the end of the file (%zu bytes)", file,
                           (unsigned long long)n, size);
    const uint8_t *hdr = buf + 8;
    size_t bad = utf8_invalid_at(hdr, (size_t)n);
    if (bad != (size_t)n)
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: header is not valid UTF-8 (byte 0x%02x at header offset %zu)", file,
                           hdr[bad], bad);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)hdr, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory parsing the header", file);
        return sembed__err(err, SEMBED_ERR_FORMAT,
                           "%s: header is not valid JSON: %s (header offset %d)", file, jerr.text,
                           jerr.position);
    }
    sembed_status s;
    if (!json_is_object(root))
        s = sembed__err(err, SEMBED_ERR_FORMAT, "%s: header is %s, not a JSON object", file,
                        json_type_name(root));
    else
        s = build(st, root, hdr + n, 8 + n, (uint64_t)size - 8 - n, err);
    json_decref(root);
    return s;
}

/* Takes ownership of `owned` (may be NULL), also on failure. */
static sembed_status parse_common(const uint8_t *buf, size_t size, const char *name, uint8_t *owned,
                                  sembed__st_file **out, sembed_error *err) {
    *out = NULL;
    sembed__st_file *st = sembed__calloc(1, sizeof *st);
    if (st) st->name = sembed__strdup(name);
    if (!st || !st->name) {
        sembed__free(st);
        sembed__free(owned);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", name);
    }
    st->owned = owned;
    sembed_status s = parse_into(st, buf, size, err);
    if (s != SEMBED_OK) {
        sembed__st_close(st);
        return s;
    }
    *out = st;
    return SEMBED_OK;
}

sembed_status sembed__st_parse(const uint8_t *buf, size_t size, const char *name,
                               sembed__st_file **out, sembed_error *err) {
    if (!out) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed__st_parse: out is NULL");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!buf && size) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "%s: buffer is NULL", name);
    static const uint8_t empty[1];
    return parse_common(buf ? buf : empty, size, name, NULL, out, err);
}

sembed_status sembed__st_open(const char *path, sembed__st_file **out, sembed_error *err) {
    if (!out) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed__st_open: out is NULL");
    *out = NULL;
    if (!path) return sembed__err(err, SEMBED_ERR_INVALID_ARG, "sembed__st_open: path is NULL");
    char *data;
    size_t len;
    /* SIZE_MAX - 1: sembed__read_file adds a NUL. An impossible size fails in malloc. */
    sembed_status s = sembed__read_file(path, SIZE_MAX - 1, &data, &len, err);
    if (s != SEMBED_OK) return s;
    return parse_common((const uint8_t *)data, len, path, (uint8_t *)data, out, err);
}

void sembed__st_close(sembed__st_file *st) {
    if (!st) return;
    sembed__free(st->tensors);
    sembed__free(st->meta);
    sembed__free(st->strings);
    sembed__free(st->owned);
    sembed__free(st->name);
    sembed__free(st);
}

/* ---- lookup ---------------------------------------------------------------------------- */

const char *sembed__st_name(const sembed__st_file *st) {
    return st->name;
}

int32_t sembed__st_n_tensors(const sembed__st_file *st) {
    return st->n_tensors;
}

const sembed__st_tensor *sembed__st_tensor_at(const sembed__st_file *st, int32_t i) {
    SEMBED_ASSERT(i >= 0 && i < st->n_tensors);
    return &st->tensors[i];
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const sembed__st_tensor *)elem)->name);
}

const sembed__st_tensor *sembed__st_find(const sembed__st_file *st, const char *name) {
    if (st->n_tensors == 0) return NULL;
    return bsearch(name, st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_key_tensor);
}

int32_t sembed__st_n_metadata(const sembed__st_file *st) {
    return st->n_meta;
}

void sembed__st_metadata_at(const sembed__st_file *st, int32_t i, const char **key,
                            const char **value) {
    SEMBED_ASSERT(i >= 0 && i < st->n_meta);
    *key = st->meta[2 * i];
    *value = st->meta[2 * i + 1];
}

const char *sembed__st_metadata(const sembed__st_file *st, const char *key) {
    for (int32_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

/* ---- conversion ------------------------------------------------------------------------ */

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float sembed__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13)); /* inf, NaN payload */
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

float sembed__bf16_to_f32(uint16_t b) {
    return f32_from_bits((uint32_t)b << 16);
}

uint16_t sembed__f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet so it stays a NaN */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) /* >= 65520 rounds (ties to even) past 65504: inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) {                 /* below 2^-14: a half subnormal or zero */
        if (ax <= 0x33000000u) return sign; /* <= 2^-25: rounds to 0 (the tie goes to even) */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value / 2^-24 = m >> shift; 14 <= shift <= 24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal, correctly encoded */
    }
    uint32_t r = (ax >> 13) - (112u << 10); /* rebias the exponent 127 -> 15 */
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++; /* a carry moves into the exponent */
    return (uint16_t)(sign | r);
}

static sembed_status check_read(const sembed__st_tensor *t, int64_t n_elems, const char *as,
                                sembed_error *err) {
    if (n_elems != t->n_elems)
        return sembed__err(err, SEMBED_ERR_INVALID_ARG,
                           "%s: tensor '%s' has %lld elements, the caller expected %lld", t->file,
                           t->name, (long long)t->n_elems, (long long)n_elems);
    if (!sembed__st_dtype_readable(t->dtype))
        return sembed__err(err, SEMBED_ERR_UNSUPPORTED,
                           "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be read as %s",
                           t->file, t->name, sembed__st_dtype_name(t->dtype), as);
    return SEMBED_OK;
}

sembed_status sembed__st_read_f32(const sembed__st_tensor *t, float *dst, int64_t n_elems,
                                  sembed_error *err) {
    sembed_status s = check_read(t, n_elems, "float32", err);
    if (s != SEMBED_OK) return s;
    size_t n = (size_t)n_elems;
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case SEMBED__ST_F32:
        if (n) memcpy(dst, src, n * sizeof(float));
        break;
    case SEMBED__ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = sembed__f16_to_f32(h);
        }
        break;
    case SEMBED__ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, src + 2 * i, 2);
            dst[i] = sembed__bf16_to_f32(b);
        }
        break;
    default: SEMBED_ASSERT(0);
    }
    return SEMBED_OK;
}

sembed_status sembed__st_read_f16(const sembed__st_tensor *t, uint16_t *dst, int64_t n_elems,
                                  sembed_error *err) {
    sembed_status s = check_read(t, n_elems, "float16", err);
    if (s != SEMBED_OK) return s;
    size_t n = (size_t)n_elems;
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case SEMBED__ST_F16:
        if (n) memcpy(dst, src, n * sizeof(uint16_t));
        break;
    case SEMBED__ST_F32:
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, src + 4 * i, 4);
            dst[i] = sembed__f32_to_f16(f);
        }
        break;
    case SEMBED__ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, src + 2 * i, 2);
            dst[i] = sembed__f32_to_f16(sembed__bf16_to_f32(b)); /* exact, then one rounding */
        }
        break;
    default: SEMBED_ASSERT(0);
    }
    return SEMBED_OK;
}
