#include "ramp/loss.h"
#include "ramp/launch.h"

int rc_ce_forward_backward(rc_ctx *ctx, int n, int k, cl_mem logits, cl_mem labels, cl_mem loss,
                           cl_mem correct, cl_mem dz, rc_err *e) {
    return rc_ce_forward_backward_part(ctx, n, n, k, logits, labels, loss, correct, dz, e);
}

int rc_ce_forward_backward_part(rc_ctx *ctx, int n, int n_batch, int k, cl_mem logits,
                                cl_mem labels, cl_mem loss, cl_mem correct, cl_mem dz, rc_err *e) {
    const float scale = 1.0f / (float)n_batch;
    int want = dz != NULL;
    cl_mem d = dz ? dz : loss; /* any valid buffer; unused without a gradient */
    return RC_LAUNCH_EACH(ctx, "loss.cl", "ce_forward_backward", 1, (size_t[]){(size_t)n}, e,
                          RC_ARG(logits),
                          RC_ARG(labels), RC_ARG(loss), RC_ARG(correct), RC_ARG(d), RC_ARG(n),
                          RC_ARG(k), RC_ARG(scale), RC_ARG(want));
}
