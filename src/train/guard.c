/* The divergence guard's host side (see ramp/guard.h; the kernel is cl/guard.cl). */
#include "ramp/guard.h"
#include "ramp/launch.h"

#include <limits.h>

static const int CLEAN[3] = {INT_MAX, INT_MAX, -1};

int rc_guard_init(rc_ctx *ctx, rc_guard *g, rc_err *e) {
    g->seq = 0;
    return rc_buffer_create(ctx, sizeof CLEAN, "divergence flag", &g->flag, e) ||
           rc_buffer_write(ctx, g->flag, 0, sizeof CLEAN, CLEAN, "divergence flag", e);
}

void rc_guard_free(rc_guard *g) {
    if (g->flag) clReleaseMemObject(g->flag);
    g->flag = NULL;
}

/* Floats per CPU-class work-item: one pass over a chunk is a loop PoCL vectorises. */
#define CHUNK 4096

int rc_guard_check(rc_ctx *ctx, rc_guard *g, cl_mem buf, size_t off, size_t n, int tag, rc_err *e) {
    int o = (int)off, count = (int)n, chunk = CHUNK, seq = g->seq++;
    size_t items = rc_plane_items(ctx, (n + CHUNK - 1) / CHUNK, CHUNK);
    return RC_LAUNCH(ctx, "guard.cl", "guard_finite", 1, &items, e, RC_ARG(buf), RC_ARG(o),
                     RC_ARG(count), RC_ARG(chunk), RC_ARG(seq), RC_ARG(tag), RC_ARG(g->flag));
}

int rc_guard_read(rc_ctx *ctx, rc_guard *g, int *tag, int *index, rc_err *e) {
    int f[3];
    if (rc_buffer_read(ctx, g->flag, 0, sizeof f, f, "divergence flag", e)) return -1;
    *tag = f[0] == INT_MAX ? -1 : f[2];
    *index = f[1];
    if (*tag < 0) g->seq = 0; /* every check so far is done and clean: numbering starts again */
    return 0;
}
