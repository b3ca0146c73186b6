/* FNV-1a, 64 bits: a fast hash for cache keys and change detection (not for security). */
#ifndef RAMP_HASH_H
#define RAMP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RC_FNV_SEED 0xcbf29ce484222325ULL

/* Continue the hash h (RC_FNV_SEED to start) over n bytes. */
uint64_t rc_fnv1a64(const void *data, size_t n, uint64_t h);
/* The hash of a NUL-terminated text from the seed, as 16 lower-case hex digits and a NUL. */
void rc_fnv1a64_hex(const char *text, char out[17]);

#endif
