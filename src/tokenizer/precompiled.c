/* precompiled.c — SentencePiece's precompiled charsmap normalizer as tokenizers applies it
 * (normalizers/precompiled.rs over the spm_precompiled crate). Not SentencePiece's own
 * normalizer: tokenizers looks up whole grapheme clusters and keeps the shortest match.
 *
 * The charsmap blob: u32 LE trie size in bytes, then the trie (darts-clone double array of u32
 * units), then a pool of NUL-terminated UTF-8 replacement strings that trie values index. */
#include "tokenizer_internal.h"

#include <string.h>
#include <utf8proc.h>

struct sembed__precompiled {
    uint32_t *units; /* (n_units) the double array */
    uint32_t n_units;
    char *pool; /* (pool_len + 1) replacement strings; NUL-terminated as a whole too */
    uint32_t pool_len;
    int32_t ascii[128]; /* pool index of the replacement of each ASCII char, -1: none */
};

/* ---- darts-clone units: the same bit layout spm_precompiled reads --------------------- */

static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* The value of the shortest key that is a prefix of key[0, len) (spm's first_prefix_value);
 * the search stops at a NUL byte. Returns a pool index, or -1. Every array access is checked:
 * the blob is untrusted, and tokenizers would panic where this answers "no match". */
static int64_t first_prefix(const sembed__precompiled *p, const uint8_t *key, size_t len) {
    const uint32_t *a = p->units;
    uint32_t n = p->n_units;
    uint32_t pos = unit_offset(a[0]);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = key[i];
        if (c == 0) return -1;
        pos ^= c;
        if (pos >= n) return -1;
        uint32_t u = a[pos];
        if (unit_label(u) != c) return -1;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) return pos < n ? (int64_t)unit_value(a[pos]) : -1;
    }
    return -1;
}

/* ---- loading ------------------------------------------------------------------------------ */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict standard base64 with padding, as Rust's base64 STANDARD engine decodes it: no
 * whitespace, canonical padding, zero trailing bits. Returns the decoded length or -1 (with
 * the byte index of the problem in *bad). */
static int64_t b64_decode(const char *s, size_t n, uint8_t *out, size_t *bad) {
    if (n % 4 != 0) {
        *bad = n;
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = b64_value(c)) < 0) {
                *bad = i + (size_t)k;
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF))) {
            *bad = i + 3 - (size_t)pad;
            return -1;
        }
        out[o++] = (uint8_t)(w >> 16);
        if (pad < 2) out[o++] = (uint8_t)(w >> 8);
        if (pad < 1) out[o++] = (uint8_t)w;
    }
    return (int64_t)o;
}

/* Length of the valid UTF-8 prefix of s[0, n) (Rust String::from_utf8 rules). */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + k > n) return i;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += k;
    }
    return n;
}

/* Walks every node reachable from the root (each base once) and checks that every value a
 * lookup can return indexes the pool at a character boundary. */
static sembed_status check_trie(const sembed__precompiled *p, const char *where,
                                sembed_error *err) {
    const uint32_t *a = p->units;
    uint32_t n = p->n_units;
    /* child positions are base ^ c with c < 256, so bases past this bound reach nothing */
    uint32_t lim = (n + 255u) & ~255u;
    uint8_t *seen = sembed__calloc(lim, 1);
    uint32_t *stack = sembed__malloc((size_t)lim * sizeof *stack);
    if (!seen || !stack) {
        sembed__free(seen);
        sembed__free(stack);
        return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", where);
    }
    sembed_status st = SEMBED_OK;
    uint32_t sp = 0;
    uint32_t root = unit_offset(a[0]);
    if (root < lim) {
        seen[root] = 1;
        stack[sp++] = root;
    }
    while (sp > 0 && st == SEMBED_OK) {
        uint32_t base = stack[--sp];
        for (uint32_t c = 1; c < 256; c++) {
            uint32_t pos = base ^ c;
            if (pos >= n || unit_label(a[pos]) != c) continue;
            uint32_t child = pos ^ unit_offset(a[pos]);
            if (unit_has_leaf(a[pos])) {
                if (child >= n) {
                    st = sembed__err(err, SEMBED_ERR_FORMAT,
                                     "%s: trie unit %u points past the end of the trie (%u units)",
                                     where, pos, n);
                    break;
                }
                uint32_t v = unit_value(a[child]);
                if (v > p->pool_len || (v < p->pool_len && (p->pool[v] & 0xC0) == 0x80)) {
                    st = sembed__err(err, SEMBED_ERR_FORMAT,
                                     "%s: trie value %u is not a character boundary of the "
                                     "%u-byte string pool",
                                     where, v, p->pool_len);
                    break;
                }
            }
            if (child < lim && !seen[child]) {
                seen[child] = 1;
                stack[sp++] = child;
            }
        }
    }
    sembed__free(seen);
    sembed__free(stack);
    return st;
}

sembed_status sembed__precompiled_load(const char *b64, const char *where,
                                       sembed__precompiled **out, sembed_error *err) {
    *out = NULL;
    size_t n64 = strlen(b64);
    uint8_t *blob = sembed__malloc(n64 / 4 * 3 + 4);
    if (!blob) return sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", where);
    size_t bad = 0;
    int64_t len = b64_decode(b64, n64, blob, &bad);
    sembed_status st = SEMBED_OK;
    sembed__precompiled *p = NULL;
    if (len < 0) {
        st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: invalid base64 at character %zu of %zu",
                         where, bad, n64);
        goto done;
    }
    if (len < 4) {
        st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: %lld bytes, too short for a charsmap",
                         where, (long long)len);
        goto done;
    }
    uint32_t trie_bytes = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                          (uint32_t)blob[3] << 24;
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || (uint64_t)trie_bytes > (uint64_t)len - 4) {
        st = sembed__err(err, SEMBED_ERR_FORMAT,
                         "%s: trie size %u bytes does not fit the %lld-byte charsmap as whole "
                         "4-byte units",
                         where, trie_bytes, (long long)len);
        goto done;
    }
    size_t pool_len = (size_t)len - 4 - trie_bytes;
    if (pool_len > INT32_MAX) {
        st = sembed__err(err, SEMBED_ERR_FORMAT, "%s: string pool too large", where);
        goto done;
    }
    const uint8_t *pool = blob + 4 + trie_bytes;
    size_t valid = utf8_valid_prefix(pool, pool_len);
    if (valid != pool_len) {
        st = sembed__err(err, SEMBED_ERR_FORMAT,
                         "%s: the normalized string pool is not UTF-8 (byte %zu of %zu)", where,
                         valid, pool_len);
        goto done;
    }
    p = sembed__calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->n_units = trie_bytes / 4;
    p->units = sembed__malloc((size_t)p->n_units * sizeof *p->units);
    p->pool = sembed__malloc(pool_len + 1);
    if (!p->units || !p->pool) goto nomem;
    for (uint32_t i = 0; i < p->n_units; i++) {
        const uint8_t *b = blob + 4 + 4 * (size_t)i;
        p->units[i] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                      (uint32_t)b[3] << 24;
    }
    memcpy(p->pool, pool, pool_len);
    p->pool[pool_len] = 0;
    p->pool_len = (uint32_t)pool_len;
    if ((st = check_trie(p, where, err))) goto done;
    for (int c = 0; c < 128; c++) {
        uint8_t b = (uint8_t)c;
        p->ascii[c] = (int32_t)first_prefix(p, &b, 1);
    }
    *out = p;
    p = NULL;
    goto done;
nomem:
    st = sembed__err(err, SEMBED_ERR_NOMEM, "%s: out of memory", where);
done:
    sembed__free(blob);
    sembed__precompiled_free(p);
    return st;
}

void sembed__precompiled_free(sembed__precompiled *p) {
    if (!p) return;
    sembed__free(p->units);
    sembed__free(p->pool);
    sembed__free(p);
}

/* ---- applying ----------------------------------------------------------------------------- */

/* Appends the replacement at pool[idx] for `old_count` code points, with the change values of
 * precompiled.rs's replace(): 0 for each new char; when the replacement is longer, its last
 * `diff` chars are insertions (+1); when shorter, the last change so far (possibly an earlier
 * char's) absorbs the removal. The changes sit in out->ob until resolve_alignments. */
static bool put_replacement(const sembed__precompiled *p, int64_t idx, int32_t old_count,
                            sembed__ntext *out) {
    const uint8_t *s = (const uint8_t *)p->pool + idx;
    size_t len = strlen((const char *)s);
    if (!sembed__nt_reserve(out, (int64_t)out->n + (int64_t)len)) return false;
    int32_t start = out->n;
    size_t i = 0;
    while (i < len) { /* the pool was validated as UTF-8 */
        uint8_t c = s[i];
        uint32_t cp;
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        cp = k == 1 ? c : k == 2 ? (c & 0x1Fu) : k == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (size_t j = 1; j < k; j++) cp = (cp << 6) | (s[i + j] & 0x3Fu);
        sembed__nt_put(out, cp, 0, 0);
        i += k;
    }
    int32_t diff = (out->n - start) - old_count;
    if (diff > 0) {
        for (int32_t j = out->n - diff; j < out->n; j++) out->ob[j] = 1;
    } else if (diff < 0 && out->n > 0) {
        out->ob[out->n - 1] += diff;
    }
    return true;
}

/* NormalizedString::transform over the whole text: change 0 takes the alignment of the next
 * unconsumed input char and consumes it, -N also drops the N chars after it, +1 is an
 * insertion that takes the alignment of the input char before the next unconsumed one. */
static void resolve_alignments(const sembed__ntext *in, sembed__ntext *out) {
    int32_t k = 0;
    for (int32_t j = 0; j < out->n; j++) {
        int32_t ch = out->ob[j];
        int32_t src;
        if (ch > 0) {
            src = k - 1;
        } else {
            src = k;
            k += 1 + (ch < 0 ? -ch : 0);
        }
        if (src < 0 || in->n == 0) { /* unreachable from replace(); tokenizers gives (0, 0) */
            out->ob[j] = out->oe[j] = in->n ? in->ob[0] : 0;
        } else {
            if (src >= in->n) src = in->n - 1; /* unreachable: tokenizers would panic */
            out->ob[j] = in->ob[src];
            out->oe[j] = in->oe[src];
        }
    }
}

/* utf8proc (Unicode 15 in Debian 12) does not know the combining marks added since, which the
 * unicode-segmentation crate of tokenizers 0.23 (Unicode 17) treats as Extend. Of those, only
 * the ones below can change a result: a cluster matters only when it is under 6 bytes and its
 * first char has a charsmap entry, which no 4-byte mark can complete (every 1-byte char with
 * an entry is a control, and GB4 breaks after controls). Found by probing tokenizers with
 * U+00B2 + every BMP char (scripts/gen_unigram_fixtures.py keeps cases of them). They map to
 * U+0300, an Extend char of every Unicode version. */
static inline utf8proc_int32_t gcb_char(uint32_t c) {
    if (c == 0x0897 || (c >= 0x1ACF && c <= 0x1AEB && c != 0x1ADE && c != 0x1ADF)) return 0x0300;
    return (utf8proc_int32_t)c;
}

static int64_t lookup_cp(const sembed__precompiled *p, uint32_t c) {
    if (c < 0x80) return p->ascii[c];
    char buf[4];
    int k = sembed__utf8_put(c, buf);
    return first_prefix(p, (const uint8_t *)buf, (size_t)k);
}

bool sembed__precompiled_apply(const sembed__precompiled *p, const sembed__ntext *in,
                               sembed__ntext *out) {
    out->n = 0;
    if (!sembed__nt_reserve(out, (int64_t)in->n + 16)) return false;
    const uint32_t *cp = in->cp;
    int32_t n = in->n;
    utf8proc_int32_t state = 0;
    bool modified = false;
    int32_t i = 0;
    while (i < n) {
        /* the extended grapheme cluster [i, j) (UAX #29, as unicode-segmentation) */
        int32_t j = i + 1;
        if (cp[i] < 0x80 && (j == n || (cp[j] < 0x80 && !(cp[i] == '\r' && cp[j] == '\n')))) {
            state = 0; /* ASCII next to ASCII always breaks (except CR LF); restart the state */
        } else {
            while (j < n && !utf8proc_grapheme_break_stateful(gcb_char(cp[j - 1]),
                                                              gcb_char(cp[j]), &state))
                j++;
        }
        if (j - i > 1) { /* a single char's cluster is looked up below, once */
            char buf[12];
            size_t len = 0;
            for (int32_t k = i; k < j && len < 6; k++)
                len += (size_t)sembed__utf8_put(cp[k], buf + len);
            if (len < 6) { /* whole clusters only when shorter than 6 bytes */
                int64_t idx = first_prefix(p, (const uint8_t *)buf, len);
                if (idx >= 0) {
                    if (!put_replacement(p, idx, j - i, out)) return false;
                    modified = true;
                    i = j;
                    continue;
                }
            }
        }
        for (; i < j; i++) {
            int64_t idx = lookup_cp(p, cp[i]);
            if (idx >= 0) {
                if (!put_replacement(p, idx, 1, out)) return false;
                modified = true;
            } else {
                if (!sembed__nt_reserve(out, (int64_t)out->n + 1)) return false;
                sembed__nt_put(out, cp[i], 0, 0);
            }
        }
    }
    if (!modified) { /* tokenizers leaves the text untouched */
        if (n == 0) return true;
        memcpy(out->ob, in->ob, (size_t)n * sizeof *out->ob);
        memcpy(out->oe, in->oe, (size_t)n * sizeof *out->oe);
        return true;
    }
    resolve_alignments(in, out);
    return true;
}
