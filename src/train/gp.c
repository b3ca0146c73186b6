#include "ramp/gp.h"
#include "ramp/launch.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Floats per chunk (a contiguous range of one tensor): one work-item (CPU class) or work-group
 * (GPU class) sums or updates one chunk. */
#define GP_CHUNK 8192

int rc_gp_snapshot_alloc(rc_ctx *ctx, rc_gp_snapshot *s, size_t n_params, size_t n_state,
                         rc_err *e) {
    memset(s, 0, sizeof *s);
    if (n_params > (size_t)INT_MAX || n_state > (size_t)INT_MAX)
        return rc_err_set(e, "gradient projection: arenas of %zu and %zu floats are too large",
                          n_params, n_state);
    s->n_params = n_params;
    s->n_state = n_state;
    if (rc_buffer_create(ctx, n_params * sizeof(float), "GP snapshot of the parameters",
                         &s->params, e) ||
        (n_state && rc_buffer_create(ctx, n_state * sizeof(float), "GP snapshot of the BN state",
                                     &s->state, e))) {
        rc_gp_snapshot_free(s);
        return -1;
    }
    return 0;
}

void rc_gp_snapshot_free(rc_gp_snapshot *s) {
    if (s->params) clReleaseMemObject(s->params);
    if (s->state) clReleaseMemObject(s->state);
    memset(s, 0, sizeof *s);
}

static int copy(rc_ctx *ctx, cl_mem src, cl_mem dst, size_t n, const char *what, rc_err *e) {
    if (n == 0) return 0;
    if (!src || !dst) return rc_err_set(e, "gradient projection: %s: no buffer", what);
    cl_int st = clEnqueueCopyBuffer(ctx->queue, src, dst, 0, 0, n * sizeof(float), 0, NULL, NULL);
    if (st != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueCopyBuffer", st, "gradient projection: %s, %zu floats", what,
                         n);
    return 0;
}

int rc_gp_snapshot_take(rc_ctx *ctx, rc_gp_snapshot *s, cl_mem params, cl_mem state, rc_err *e) {
    return copy(ctx, params, s->params, s->n_params, "snapshot of the parameters", e) ||
                   copy(ctx, state, s->state, s->n_state, "snapshot of the BN state", e)
               ? -1
               : 0;
}

int rc_gp_snapshot_restore(rc_ctx *ctx, const rc_gp_snapshot *s, cl_mem params, cl_mem state,
                           rc_err *e) {
    return copy(ctx, s->params, params, s->n_params, "restoring the parameters", e) ||
                   copy(ctx, s->state, state, s->n_state, "restoring the BN state", e)
               ? -1
               : 0;
}

int rc_gp_merge(rc_ctx *ctx, const rc_gp_snapshot *old, cl_mem adv_params, cl_mem adv_state,
                cl_mem nat_params, cl_mem nat_state, const rc_gp_tensor *tensors, int n_tensors,
                float beta, double *cos_out, rc_err *e) {
    if (n_tensors <= 0) return 0;
    if (n_tensors > INT_MAX / 2) return rc_err_set(e, "gradient projection: too many tensors");
    if (!adv_params || !nat_params || !old->params)
        return rc_err_set(e, "gradient projection: missing parameter arena");
    /* the table: tensor t owns chunks tab_t[2t] .. tab_t[2t] + tab_t[2t+1] - 1 */
    size_t n_chunks = 0;
    for (int t = 0; t < n_tensors; t++) {
        const rc_gp_tensor *g = &tensors[t];
        if (g->arena != 0 && g->arena != 1)
            return rc_err_set(e, "gradient projection: tensor %d: arena %d (0 or 1)", t, g->arena);
        size_t cap = g->arena ? old->n_state : old->n_params;
        if (g->offset > cap || g->numel > cap - g->offset)
            return rc_err_set(e, "gradient projection: tensor %d (%zu floats at %zu) lies outside "
                                 "its %s arena of %zu floats",
                              t, g->numel, g->offset, g->arena ? "state" : "parameter", cap);
        if (g->numel && g->arena && (!adv_state || !nat_state || !old->state))
            return rc_err_set(e, "gradient projection: tensor %d is in the state arena, which "
                                 "is missing", t);
        n_chunks += (g->numel + GP_CHUNK - 1) / GP_CHUNK;
    }
    if (n_chunks > (size_t)INT_MAX / 6)
        return rc_err_set(e, "gradient projection: %zu chunks are too many", n_chunks);
    int *tab_t = malloc((size_t)n_tensors * 2 * sizeof(int));
    int *tab_c = malloc((n_chunks ? n_chunks : 1) * 4 * sizeof(int));
    float *sums = malloc((size_t)n_tensors * 6 * sizeof(float));
    float *weight = malloc((size_t)n_tensors * sizeof(float));
    cl_mem b_t = NULL, b_c = NULL, b_part = NULL, b_sums = NULL, b_w = NULL;
    int rc = -1;
    if (!tab_t || !tab_c || !sums || !weight) {
        rc_err_set(e, "out of host memory for %zu chunks", n_chunks);
        goto done;
    }
    int k = 0;
    for (int t = 0; t < n_tensors; t++) {
        const rc_gp_tensor *g = &tensors[t];
        tab_t[2 * t] = k;
        for (size_t i = 0; i < g->numel; i += GP_CHUNK, k++) {
            size_t len = g->numel - i < GP_CHUNK ? g->numel - i : GP_CHUNK;
            tab_c[4 * k] = (int)(g->offset + i);
            tab_c[4 * k + 1] = (int)len;
            tab_c[4 * k + 2] = g->arena;
            tab_c[4 * k + 3] = t;
        }
        tab_t[2 * t + 1] = k - tab_t[2 * t];
    }
    if (rc_buffer_create(ctx, (size_t)n_tensors * 2 * sizeof(int), "GP tensor table", &b_t, e) ||
        rc_buffer_create(ctx, n_chunks * 4 * sizeof(int), "GP chunk table", &b_c, e) ||
        rc_buffer_create(ctx, n_chunks * 6 * sizeof(float), "GP partial sums", &b_part, e) ||
        rc_buffer_create(ctx, (size_t)n_tensors * 6 * sizeof(float), "GP sums", &b_sums, e) ||
        rc_buffer_create(ctx, (size_t)n_tensors * sizeof(float), "GP weights", &b_w, e) ||
        rc_buffer_write(ctx, b_t, 0, (size_t)n_tensors * 2 * sizeof(int), tab_t,
                        "GP tensor table", e) ||
        (n_chunks && rc_buffer_write(ctx, b_c, 0, n_chunks * 4 * sizeof(int), tab_c,
                                     "GP chunk table", e)))
        goto done;
    /* never dereferenced when no tensor lives in the state arena; avoids NULL kernel arguments */
    cl_mem old_s = old->state ? old->state : old->params;
    cl_mem adv_s = adv_state ? adv_state : adv_params;
    cl_mem nat_s = nat_state ? nat_state : nat_params;
    const int nc = (int)n_chunks, nt = n_tensors;
    /* the per-chunk and per-tensor sums; the one read-back */
    if (RC_LAUNCH_EACH(ctx, "gp.cl", "gp_partial", 1, (size_t[]){n_chunks}, e,
                       RC_ARG(b_c), RC_ARG(nc),
                       RC_ARG(old->params), RC_ARG(old_s), RC_ARG(adv_params), RC_ARG(adv_s),
                       RC_ARG(nat_params), RC_ARG(nat_s), RC_ARG(b_part)) ||
        RC_LAUNCH_EACH(ctx, "gp.cl", "gp_sums", 1, (size_t[]){(size_t)n_tensors}, e,
                       RC_ARG(b_t), RC_ARG(nt),
                       RC_ARG(b_part), RC_ARG(b_sums)) ||
        rc_buffer_read(ctx, b_sums, 0, (size_t)n_tensors * 6 * sizeof(float), sums, "GP sums", e))
        goto done;
    /* PyTorch >= 1.12 cosine_similarity: each norm clamped at eps = 1e-8 separately */
    for (int t = 0; t < n_tensors; t++) {
        const float *q = sums + 6 * t;
        double dot = (double)q[0] + q[1], aa = (double)q[2] + q[3], nn = (double)q[4] + q[5];
        double na = sqrt(aa > 0 ? aa : 0), nb = sqrt(nn > 0 ? nn : 0);
        double cs = dot / (fmax(na, 1e-8) * fmax(nb, 1e-8));
        weight[t] = cs > 0 ? (float)((1.0 - (double)beta) * cs) : 0.0f;
        if (cos_out) cos_out[t] = cs;
    }
    /* the write is blocking; the apply is queued and not waited for (the tables are released
     * here, which OpenCL defers until the kernels that use them have run) */
    if (rc_buffer_write(ctx, b_w, 0, (size_t)n_tensors * sizeof(float), weight, "GP weights", e) ||
        RC_LAUNCH_EACH(ctx, "gp.cl", "gp_apply", 1, (size_t[]){n_chunks}, e,
                       RC_ARG(b_c), RC_ARG(nc),
                       RC_ARG(old->params), RC_ARG(old_s), RC_ARG(adv_params), RC_ARG(adv_s),
                       RC_ARG(nat_params), RC_ARG(nat_s), RC_ARG(b_w), RC_ARG(beta)))
        goto done;
    rc = 0;
done:
    if (rc) rc_err_prefix(e, "gradient projection: ");
    if (b_t) clReleaseMemObject(b_t);
    if (b_c) clReleaseMemObject(b_c);
    if (b_part) clReleaseMemObject(b_part);
    if (b_sums) clReleaseMemObject(b_sums);
    if (b_w) clReleaseMemObject(b_w);
    free(tab_t);
    free(tab_c);
    free(sums);
    free(weight);
    return rc;
}
