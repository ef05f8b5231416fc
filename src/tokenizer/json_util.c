/* json_util.c — typed field access on jansson objects (see json_util.h). */
#include "json_util.h"

static const char *kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

sembed_status sembed__json_type(json_t *obj, const char *where, const char **type,
                                sembed_error *err) {
    if (!json_is_object(obj))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s: expected an object, found %s", where,
                           obj ? kind(obj) : "nothing");
    json_t *t = json_object_get(obj, "type");
    if (!json_is_string(t))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.type: expected a string, found %s", where,
                           t ? kind(t) : "nothing");
    *type = json_string_value(t);
    return SEMBED_OK;
}

sembed_status sembed__json_bool(json_t *obj, const char *key, const char *where, bool dflt,
                                bool *out, sembed_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return SEMBED_OK;
    }
    if (!json_is_boolean(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: expected a boolean, found %s", where,
                           key, kind(v));
    *out = json_is_true(v);
    return SEMBED_OK;
}

sembed_status sembed__json_opt_bool(json_t *obj, const char *key, const char *where, int *out,
                                    sembed_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = -1;
        return SEMBED_OK;
    }
    if (!json_is_boolean(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: expected a boolean or null, found %s",
                           where, key, kind(v));
    *out = json_is_true(v);
    return SEMBED_OK;
}

sembed_status sembed__json_str(json_t *obj, const char *key, const char *where, const char **out,
                               sembed_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: expected a string, found %s", where,
                           key, v ? kind(v) : "nothing");
    *out = json_string_value(v);
    return SEMBED_OK;
}

sembed_status sembed__json_int(json_t *obj, const char *key, const char *where, bool required,
                               int64_t dflt, int64_t lo, int64_t hi, int64_t *out,
                               sembed_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || (json_is_null(v) && !required)) {
        if (required)
            return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: missing", where, key);
        *out = dflt;
        return SEMBED_OK;
    }
    if (!json_is_integer(v))
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: expected an integer, found %s", where,
                           key, kind(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return sembed__err(err, SEMBED_ERR_FORMAT, "%s.%s: %lld is out of range [%lld, %lld]",
                           where, key, (long long)x, (long long)lo, (long long)hi);
    *out = (int64_t)x;
    return SEMBED_OK;
}
