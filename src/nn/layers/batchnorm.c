/* Per-(image, channel) partial sums, then per-channel totals: reductions (RC_LAUNCH_EACH) of a
 * plane or channel per work-item on the CPU class, per work-group on the GPU class. Element-wise
 * kernels over rc_plane_items work-items. */
#include "ramp/batchnorm.h"
#include "ramp/dist.h"
#include "ramp/launch.h"

#include <stdlib.h>

/* Synchronised batch norm (a batch split across processes, ramp/dist.h): the processes' image
 * counts, all NT of them and this slice's first image N0. */
typedef struct bn_split {
    int size, nt, n0;
    int *counts; /* per process: images, then (in gather_parts) floats */
} bn_split;

static int split_begin(rc_ctx *ctx, int n, bn_split *s, rc_err *e) {
    const rc_dist *d = ctx->dist;
    *s = (bn_split){.size = rc_dist_size(d), .nt = n, .n0 = 0};
    if (s->size == 1) return 0;
    if (!(s->counts = malloc((size_t)s->size * sizeof *s->counts)))
        return rc_err_set(e, "batch norm: out of host memory");
    if (rc_dist_allgather(d, &n, sizeof n, s->counts, e)) return -1;
    s->nt = 0;
    for (int r = 0; r < s->size; r++) {
        if (r == d->rank) s->n0 = s->nt;
        s->nt += s->counts[r];
    }
    return 0;
}

/* The per-(channel, image) partials part[c*n + i] of every process into part[c*NT + N0 + i]:
 * the layout, and so the sums, of one process with the whole batch. Staged through the host. */
static int gather_parts(rc_ctx *ctx, cl_mem part, int c, int n, const bn_split *s, rc_err *e) {
    if (s->size == 1) return 0;
    size_t mine = (size_t)c * n, all_n = (size_t)c * s->nt;
    float *buf = malloc((mine + 2 * all_n) * sizeof *buf);
    int *fl = malloc((size_t)s->size * sizeof *fl);
    int r = -1;
    if (!buf || !fl) {
        rc_err_set(e, "batch norm: out of host memory");
        goto out;
    }
    float *all = buf + mine, *out = all + all_n;
    for (int k = 0; k < s->size; k++) fl[k] = c * s->counts[k];
    if (rc_buffer_read(ctx, part, 0, mine * 4, buf, "BN partial sums", e) ||
        rc_dist_gather_f32(ctx->dist, buf, fl, all, e))
        goto out;
    for (int k = 0, at = 0, img = 0; k < s->size; at += fl[k], img += s->counts[k], k++)
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < s->counts[k]; i++)
                out[(size_t)ch * s->nt + img + i] = all[at + (size_t)ch * s->counts[k] + i];
    r = rc_buffer_write(ctx, part, 0, all_n * 4, out, "BN partial sums", e);
out:
    free(buf);
    free(fl);
    return r;
}

int rc_bn_forward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem y,
                  const rc_bn_buffers *b, rc_err *e) {
    int nc = n * c;
    size_t g = rc_plane_items(ctx, (size_t)nc, (size_t)hw);
    if (!train) {
        const float eps = RC_BN_EPS;
        return RC_LAUNCH(ctx, "batchnorm.cl", "bn_apply_eval", 1, &g, e, RC_ARG(x), RC_ARG(y),
                         RC_ARG(b->running_mean), RC_ARG(b->running_var), RC_ARG(b->gamma),
                         RC_ARG(b->beta), RC_ARG(eps), RC_ARG(c), RC_ARG(hw), RC_ARG(nc));
    }
    size_t g2[2] = {(size_t)n, (size_t)c}, gc = (size_t)c;
    const float momentum = RC_BN_MOMENTUM, eps = RC_BN_EPS;
    bn_split s;
    int bad = split_begin(ctx, n, &s, e) ||
              RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_partial_sum", 2, g2, e, RC_ARG(x),
                             RC_ARG(b->part_a), RC_ARG(n), RC_ARG(c), RC_ARG(hw)) ||
              gather_parts(ctx, b->part_a, c, n, &s, e) ||
              RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_partial_sq", 2, g2, e, RC_ARG(x),
                             RC_ARG(b->part_a), RC_ARG(b->part_b), RC_ARG(n), RC_ARG(c),
                             RC_ARG(hw), RC_ARG(s.nt)) ||
              gather_parts(ctx, b->part_b, c, n, &s, e) ||
              RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_finalize_stats", 1, &gc, e,
                             RC_ARG(b->part_a), RC_ARG(b->part_b), RC_ARG(b->mean),
                             RC_ARG(b->invstd), RC_ARG(b->running_mean), RC_ARG(b->running_var),
                             RC_ARG(s.nt), RC_ARG(c), RC_ARG(hw), RC_ARG(momentum), RC_ARG(eps));
    free(s.counts);
    if (bad) return -1;
    return RC_LAUNCH(ctx, "batchnorm.cl", "bn_apply", 1, &g, e, RC_ARG(x), RC_ARG(y),
                     RC_ARG(b->mean), RC_ARG(b->invstd), RC_ARG(b->gamma), RC_ARG(b->beta),
                     RC_ARG(c), RC_ARG(hw), RC_ARG(nc));
}

int rc_bn_backward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem dx,
                   int acc, cl_mem dgamma, cl_mem dbeta, const rc_bn_buffers *b, rc_err *e) {
    int nc = n * c;
    size_t g = rc_plane_items(ctx, (size_t)nc, (size_t)hw);
    if (!train) {
        const float eps = RC_BN_EPS;
        return RC_LAUNCH(ctx, "batchnorm.cl", "bn_backward_dx_eval", 1, &g, e, RC_ARG(dy),
                         RC_ARG(b->running_var), RC_ARG(b->gamma), RC_ARG(dx), RC_ARG(eps),
                         RC_ARG(c), RC_ARG(hw), RC_ARG(nc), RC_ARG(acc));
    }
    size_t g2[2] = {(size_t)n, (size_t)c}, gc = (size_t)c;
    /* dgamma and dbeta are sums over the whole batch (every process's slice) */
    bn_split s;
    int bad = split_begin(ctx, n, &s, e) ||
              RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_backward_partial", 2, g2, e, RC_ARG(dy),
                             RC_ARG(x), RC_ARG(b->mean), RC_ARG(b->invstd), RC_ARG(b->part_a),
                             RC_ARG(b->part_b), RC_ARG(n), RC_ARG(c), RC_ARG(hw)) ||
              gather_parts(ctx, b->part_a, c, n, &s, e) ||
              gather_parts(ctx, b->part_b, c, n, &s, e) ||
              RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_backward_params", 1, &gc, e,
                             RC_ARG(b->part_a), RC_ARG(b->part_b), RC_ARG(dgamma), RC_ARG(dbeta),
                             RC_ARG(s.nt), RC_ARG(c));
    free(s.counts);
    const float inv_m = 1.0f / (float)(s.nt * hw);
    if (bad) return -1;
    if (!dx) return 0;
    return RC_LAUNCH(ctx, "batchnorm.cl", "bn_backward_dx", 1, &g, e, RC_ARG(dy), RC_ARG(x),
                     RC_ARG(b->mean), RC_ARG(b->invstd), RC_ARG(b->gamma), RC_ARG(dgamma),
                     RC_ARG(dbeta), RC_ARG(dx), RC_ARG(c), RC_ARG(hw), RC_ARG(nc),
                     RC_ARG(inv_m), RC_ARG(acc));
}

int rc_bn_relu_backward_eval(rc_ctx *ctx, int n, int c, int h, int w, cl_mem y, cl_mem dy,
                             cl_mem dz, const rc_grad_layout *l, const rc_bn_buffers *b,
                             rc_err *e) {
    size_t g = (size_t)n * (size_t)c;
    const float eps = RC_BN_EPS;
    return RC_LAUNCH(ctx, "batchnorm.cl", "bn_relu_backward_eval", 1, &g, e, RC_ARG(dy), RC_ARG(y),
                     RC_ARG(b->running_var), RC_ARG(b->gamma), RC_ARG(dz), RC_ARG(eps), RC_ARG(n),
                     RC_ARG(c), RC_ARG(h), RC_ARG(w), RC_ARG(l->n_stride), RC_ARG(l->c_stride),
                     RC_ARG(l->row_stride), RC_ARG(l->padded));
}
