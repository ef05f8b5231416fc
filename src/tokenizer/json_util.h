/* json_util.h — typed field access on jansson objects with errors that name the field.
 * Not a JSON parser: jansson parses. */
#ifndef SEMBED_JSON_UTIL_H
#define SEMBED_JSON_UTIL_H

#include "../common.h"

#include <jansson.h>

/* `where` names the object ("tokenizer.json: model"); errors read "<where>.<key>: ...". */
sembed_status sembed__json_type(json_t *obj, const char *where, const char **type,
                                sembed_error *err);
/* Missing key → `dflt`; present but not a bool → error. */
sembed_status sembed__json_bool(json_t *obj, const char *key, const char *where, bool dflt,
                                bool *out, sembed_error *err);
/* -1 when missing or null, else 0/1. */
sembed_status sembed__json_opt_bool(json_t *obj, const char *key, const char *where, int *out,
                                    sembed_error *err);
/* A required string. */
sembed_status sembed__json_str(json_t *obj, const char *key, const char *where, const char **out,
                               sembed_error *err);
/* An integer in [lo, hi]; missing → `dflt` when `required` is false. */
sembed_status sembed__json_int(json_t *obj, const char *key, const char *where, bool required,
                               int64_t dflt, int64_t lo, int64_t hi, int64_t *out,
                               sembed_error *err);

#endif
