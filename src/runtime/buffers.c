#include "ramp/buffers.h"

int rc_buffers_create(rc_ctx *ctx, const rc_buffer_spec *t, size_t n, rc_err *e) {
    for (size_t i = 0; i < n; i++)
        if (rc_buffer_create(ctx, t[i].bytes, t[i].name, t[i].buf, e)) {
            rc_buffers_release(t, i);
            return -1;
        }
    return 0;
}

void rc_buffers_release(const rc_buffer_spec *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (*t[i].buf) {
            clReleaseMemObject(*t[i].buf);
            *t[i].buf = NULL;
        }
}
