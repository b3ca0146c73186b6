/* Divergence guard: checks on the device that the numbers of a training run stay finite, without
 * a host round trip per step. Each check is one launch over a buffer (a loss, the gradients, the
 * weights, the BN statistics) that records in a small device flag the first check, in launch
 * order, that met a NaN or an infinity, the lowest index it met one at, and the caller's tag for
 * the check. The host reads the flag where it waits for the device anyway (a progress line, the
 * end of an epoch, before a checkpoint), so a check costs one pass over its buffer and nothing
 * else. */
#ifndef RAMP_GUARD_H
#define RAMP_GUARD_H

#include "ramp/device.h"

typedef struct rc_guard {
    cl_mem flag; /* int[3]: see cl/guard.cl */
    int seq;     /* checks launched since the flag was last read clean */
} rc_guard;

int rc_guard_init(rc_ctx *ctx, rc_guard *g, rc_err *e);
void rc_guard_free(rc_guard *g);

/* Check the n floats of buf from float offset off; `tag` (>= 0) says what they are. */
int rc_guard_check(rc_ctx *ctx, rc_guard *g, cl_mem buf, size_t off, size_t n, int tag, rc_err *e);

/* Wait for the checks launched so far. *tag = -1 when all found finite values; else the tag of
 * the first that did not, and *index the lowest index in its range holding a non-finite value. */
int rc_guard_read(rc_ctx *ctx, rc_guard *g, int *tag, int *index, rc_err *e);

#endif
