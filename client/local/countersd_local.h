/* countersd_local.h: the C ABI of local attach (libcountersd_local.so),
 * so that any language can attach to a countersd on this host and use its
 * live table with no RPC. The C++ library is client/local/local_table.h,
 * whose comment states the semantics, who may attach and what happens when
 * the daemon restarts; every call here is one of its calls.
 *
 * Every int returned is a gRPC status code number: 0 OK, 3 INVALID_ARGUMENT,
 * 5 NOT_FOUND, 7 PERMISSION_DENIED, 8 RESOURCE_EXHAUSTED, 9
 * FAILED_PRECONDITION, 11 OUT_OF_RANGE, 14 UNAVAILABLE (the daemon restarted
 * or set the table aside: detach and attach again). On an error,
 * countersd_last_error() says why, for the calling thread. Keys are bytes
 * (key, key_len): UTF-8, 1 to 160 bytes, as the API's rules say.
 *
 * A handle is thread-safe. countersd_detach requires that no call on it is
 * in flight. A fork child cannot use its parent's handle (14).
 */
#ifndef COUNTERSD_LOCAL_H_
#define COUNTERSD_LOCAL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct countersd_local countersd_local;

/* Attaches to the daemon that owns data_dir. NULL on failure, with the
 * reason in err (NUL-terminated, truncated to err_len) and the status code
 * in *code when code is not NULL. */
countersd_local* countersd_attach(const char* data_dir, char* err, size_t err_len);
countersd_local* countersd_attach2(const char* data_dir, int* code, char* err, size_t err_len);
void countersd_detach(countersd_local* t);

/* Adds delta (creating the counter at 0); *value is the new value. */
int countersd_increment(countersd_local* t, const char* key, size_t key_len, int64_t delta,
                        int64_t* value);
int countersd_get(countersd_local* t, const char* key, size_t key_len, int64_t* value);
/* *had_previous is 0 when the counter did not exist (then *previous is 0). */
int countersd_set(countersd_local* t, const char* key, size_t key_len, int64_t value,
                  int64_t* previous, int* had_previous);
/* A missing counter counts as 0. *applied is 1 if it swapped; *current is
 * the value now stored. */
int countersd_compare_and_set(countersd_local* t, const char* key, size_t key_len,
                              int64_t expected, int64_t value, int* applied, int64_t* current);
int countersd_delete(countersd_local* t, const char* key, size_t key_len, int64_t* previous);

typedef struct countersd_key_delta {
  const char* key;
  size_t key_len;
  int64_t delta;
} countersd_key_delta;
/* Atomic: all or none. values[i] (n of them) is the value after ops[i]. */
int countersd_increment_batch(countersd_local* t, const countersd_key_delta* ops, size_t n,
                              int64_t* values);
/* values[i] and found[i] (n of each): found[i] is 0 for a missing counter. */
int countersd_batch_get(countersd_local* t, const char* const* keys, const size_t* key_lens,
                        size_t n, int64_t* values, int* found);

/* This handle's attach slot. */
uint32_t countersd_attach_slot(const countersd_local* t);

/* The message of the calling thread's last failed call; "" if none. */
const char* countersd_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* COUNTERSD_LOCAL_H_ */
