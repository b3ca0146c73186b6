/* Per-(image, channel) partial sums, then per-channel totals: reductions (RC_LAUNCH_EACH) of a
 * plane or channel per work-item on the CPU class, per work-group on the GPU class. Element-wise
 * kernels over rc_plane_items work-items. */
#include "ramp/batchnorm.h"
#include "ramp/launch.h"

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
    if (RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_partial_sum", 2, g2, e, RC_ARG(x),
                         RC_ARG(b->part_a), RC_ARG(n), RC_ARG(c), RC_ARG(hw)) ||
        RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_partial_sq", 2, g2, e, RC_ARG(x),
                         RC_ARG(b->part_a), RC_ARG(b->part_b), RC_ARG(n), RC_ARG(c), RC_ARG(hw)) ||
        RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_finalize_stats", 1, &gc, e, RC_ARG(b->part_a),
                         RC_ARG(b->part_b), RC_ARG(b->mean), RC_ARG(b->invstd),
                         RC_ARG(b->running_mean), RC_ARG(b->running_var), RC_ARG(n), RC_ARG(c),
                         RC_ARG(hw), RC_ARG(momentum), RC_ARG(eps)))
        return -1;
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
    const float inv_m = 1.0f / (float)(n * hw);
    if (RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_backward_partial", 2, g2, e, RC_ARG(dy),
                         RC_ARG(x), RC_ARG(b->mean), RC_ARG(b->invstd), RC_ARG(b->part_a),
                         RC_ARG(b->part_b), RC_ARG(n), RC_ARG(c), RC_ARG(hw)) ||
        RC_LAUNCH_EACH(ctx, "batchnorm.cl", "bn_backward_params", 1, &gc, e, RC_ARG(b->part_a),
                         RC_ARG(b->part_b), RC_ARG(dgamma), RC_ARG(dbeta), RC_ARG(n), RC_ARG(c)))
        return -1;
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
