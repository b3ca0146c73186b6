/* Deterministic random numbers (xoshiro128+-style generator seeded by splitmix64). Every consumer
 * owns its own rc_rng, so streams are reproducible from the config's seed and can be saved in a
 * checkpoint to resume a run bit-exactly. */
#ifndef RAMP_RNG_H
#define RAMP_RNG_H

#include <stdint.h>

typedef struct rc_rng {
    uint64_t s[2];
} rc_rng;

/* Seed from a 64-bit seed and a stream number (different streams are independent). */
void rc_rng_seed(rc_rng *r, uint64_t seed, uint64_t stream);
uint64_t rc_rng_u64(rc_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float rc_rng_uniform(rc_rng *r);
/* Standard normal (Box-Muller on two 53-bit uniforms, the cosine branch). */
double rc_rng_normal(rc_rng *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint32_t rc_rng_below(rc_rng *r, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void rc_rng_shuffle(rc_rng *r, uint32_t *idx, uint32_t n);

#endif
