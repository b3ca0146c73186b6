/* Tables of device buffers: a state struct lists its cl_mem fields once, with their sizes and
 * names, and creates and releases them all through the same table. */
#ifndef RAMP_BUFFERS_H
#define RAMP_BUFFERS_H

#include "ramp/device.h"

typedef struct rc_buffer_spec {
    cl_mem *buf;      /* the field to fill */
    size_t bytes;     /* its size (unused when releasing) */
    const char *name; /* for error messages */
} rc_buffer_spec;

/* Create every buffer of the table with rc_buffer_create. On failure the ones already created
 * are released (all fields NULL again) and -1 is returned with *e set. */
int rc_buffers_create(rc_ctx *ctx, const rc_buffer_spec *t, size_t n, rc_err *e);

/* Release every non-NULL buffer of the table and set its field to NULL. */
void rc_buffers_release(const rc_buffer_spec *t, size_t n);

#endif
