/* cache_file.h — a small store of byte records by key, in a text file under the user's cache
 * directory, for results that are slow to work out and cheap to keep (the GPU's GEMM plans: see
 * src/cuda/gemm.cu). One record per line, "key hexbytes\n". The cache is an optimisation and
 * never an error: a missing, unreadable or damaged file reads as the lines of it that parse, and
 * a failed write leaves things as they were. A write goes to a temporary file renamed over the
 * old one, so that a reader in another process never sees half a file. */
#ifndef SEMBED_CACHE_FILE_H
#define SEMBED_CACHE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMBED__CACHE_KEY_MAX 512          /* key bytes, the NUL included */
#define SEMBED__CACHE_VAL_MAX 512          /* record bytes */
#define SEMBED__CACHE_FILE_MAX (256 * 1024) /* bytes read, and kept on a write */

/* The cache directory: $SEMBED_CACHE_DIR; else $XDG_CACHE_HOME/sembed; else $HOME/.cache/sembed.
 * NULL when SEMBED_CACHE_DIR is set to "" or "off" (no cache), when none of those variables is
 * set, or out of memory. The caller frees it with sembed__free. */
char *sembed__cache_dir(void);

/* One line of n bytes (no '\n'): a key of 1 to KEY_MAX-1 characters from '!' to '~', one space,
 * then 1 to VAL_MAX bytes as pairs of hex digits (either case). True with key (NUL-terminated),
 * val and *val_len filled; false, touching nothing the caller reads, otherwise. */
bool sembed__cache_parse_line(const char *line, size_t n, char *key, uint8_t *val,
                              size_t *val_len);

/* The record of key in the file at path (the last line with that key wins): true with val
 * filled when it holds exactly len bytes. */
bool sembed__cache_get(const char *path, const char *key, void *val, size_t len);

/* Sets key's record to len bytes of val: the lines of the file that parse, less any of that key,
 * then the new one; the oldest go where they would pass FILE_MAX. Makes the directories above
 * path as needed. False where it could not (a bad key or length, a directory or a file that
 * cannot be written). */
bool sembed__cache_put(const char *path, const char *key, const void *val, size_t len);

#ifdef __cplusplus
}
#endif

#endif
