/* Activations, input normalisation, residual add, gradient pass-through and global average
 * pooling. */
#include "ramp/elementwise.h"
#include "ramp/launch.h"

/* The kernels of each activation, indexed by rc_activation: forward, backward. */
static const char *const ACT_KERNELS[RC_ACTIVATION_COUNT][2] = {
    [RC_ACTIVATION_SOFTPLUS] = {"softplus_forward", "softplus_backward"},
    [RC_ACTIVATION_RELU] = {"relu_forward", "relu_backward"},
    [RC_ACTIVATION_SILU] = {"silu_forward", "silu_backward"},
};

static int act_valid(rc_activation a, rc_err *e) {
    if (a >= 0 && a < RC_ACTIVATION_COUNT) return 0;
    return rc_err_set(e, "activation %d is not one ramp-cl has", (int)a);
}

/* Work-items of an activation kernel: ACT_W elements each (cl/activation.cl). */
static size_t act_items(const rc_ctx *ctx, size_t total) {
    return ctx->cls == RC_CLASS_GPU ? total : (total + 15) / 16;
}

int rc_act_forward(rc_ctx *ctx, rc_activation a, size_t total, cl_mem x, cl_mem y, rc_err *e) {
    int t = (int)total;
    size_t g = act_items(ctx, total);
    return act_valid(a, e) || RC_LAUNCH(ctx, "activation.cl", ACT_KERNELS[a][0], 1, &g, e,
                                        RC_ARG(x), RC_ARG(y), RC_ARG(t));
}

int rc_act_backward(rc_ctx *ctx, rc_activation a, size_t total, cl_mem x, cl_mem dy, cl_mem dx,
                    int acc, rc_err *e) {
    int t = (int)total;
    size_t g = act_items(ctx, total);
    return act_valid(a, e) || RC_LAUNCH(ctx, "activation.cl", ACT_KERNELS[a][1], 1, &g, e,
                                        RC_ARG(dy), RC_ARG(x), RC_ARG(dx), RC_ARG(t), RC_ARG(acc));
}

int rc_normalize_forward(rc_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem mean, cl_mem std,
                         cl_mem y, rc_err *e) {
    int nc = n * c;
    size_t g = rc_plane_items(ctx, (size_t)nc, (size_t)hw);
    return RC_LAUNCH(ctx, "activation.cl", "normalize_forward", 1, &g, e, RC_ARG(x), RC_ARG(y),
                     RC_ARG(mean), RC_ARG(std), RC_ARG(nc), RC_ARG(c), RC_ARG(hw));
}

int rc_normalize_backward(rc_ctx *ctx, int n, int c, int hw, cl_mem std, cl_mem dy, cl_mem dx,
                          int acc, rc_err *e) {
    int nc = n * c;
    size_t g = rc_plane_items(ctx, (size_t)nc, (size_t)hw);
    return RC_LAUNCH(ctx, "activation.cl", "normalize_backward", 1, &g, e, RC_ARG(dy), RC_ARG(dx),
                     RC_ARG(std), RC_ARG(nc), RC_ARG(c), RC_ARG(hw), RC_ARG(acc));
}

int rc_add_forward(rc_ctx *ctx, size_t total, cl_mem a, cl_mem b, cl_mem y, rc_err *e) {
    int t = (int)total;
    return RC_LAUNCH(ctx, "activation.cl", "add_forward", 1, &total, e, RC_ARG(a), RC_ARG(b),
                     RC_ARG(y), RC_ARG(t));
}

int rc_grad_pass(rc_ctx *ctx, size_t total, cl_mem dy, cl_mem dx, int acc, rc_err *e) {
    int t = (int)total;
    return RC_LAUNCH(ctx, "activation.cl", "grad_pass", 1, &total, e, RC_ARG(dy), RC_ARG(dx),
                     RC_ARG(t), RC_ARG(acc));
}

int rc_gap_forward(rc_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem y, rc_err *e) {
    int nc = n * c;
    size_t g = (size_t)nc;
    return RC_LAUNCH_EACH(ctx, "pool.cl", "gap_forward", 1, &g, e, RC_ARG(x), RC_ARG(y),
                            RC_ARG(nc), RC_ARG(hw));
}

int rc_gap_backward(rc_ctx *ctx, int n, int c, int hw, cl_mem dy, cl_mem dx, int acc, rc_err *e) {
    int nc = n * c;
    size_t g = (size_t)nc * (size_t)hw;
    return RC_LAUNCH(ctx, "pool.cl", "gap_backward", 1, &g, e, RC_ARG(dy), RC_ARG(dx), RC_ARG(nc),
                     RC_ARG(hw), RC_ARG(acc));
}
