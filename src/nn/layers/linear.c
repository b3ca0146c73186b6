#include "ramp/linear.h"
#include "ramp/gemm.h"
#include "ramp/launch.h"

int rc_linear_forward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem b, cl_mem y,
                      rc_err *e) {
    size_t g = (size_t)n * (size_t)out;
    if (RC_LAUNCH(ctx, "linear.cl", "linear_bias_broadcast", 1, &g, e, RC_ARG(y), RC_ARG(b),
                  RC_ARG(n), RC_ARG(out)))
        return -1;
    return rc_sgemm(ctx, 0, 1, (size_t)n, (size_t)out, (size_t)in, 1.0f,
                    (rc_matrix){x, 0, (size_t)in}, (rc_matrix){w, 0, (size_t)in}, 1.0f,
                    (rc_matrix){y, 0, (size_t)out}, "linear forward", e);
}

int rc_linear_backward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem dy,
                       cl_mem dx, int acc, cl_mem dw, cl_mem db, int param_acc, rc_err *e) {
    if (dw && rc_sgemm(ctx, 1, 0, (size_t)out, (size_t)in, (size_t)n, 1.0f,
                       (rc_matrix){dy, 0, (size_t)out}, (rc_matrix){x, 0, (size_t)in},
                       param_acc ? 1.0f : 0.0f,
                       (rc_matrix){dw, 0, (size_t)in}, "linear weight gradient", e))
        return -1;
    if (db) {
        size_t g = (size_t)out;
        if (RC_LAUNCH(ctx, "linear.cl", "linear_bias_grad", 1, &g, e, RC_ARG(dy), RC_ARG(db),
                      RC_ARG(n), RC_ARG(out), RC_ARG(param_acc)))
            return -1;
    }
    if (!dx) return 0;
    return rc_sgemm(ctx, 0, 0, (size_t)n, (size_t)in, (size_t)out, 1.0f,
                    (rc_matrix){dy, 0, (size_t)out}, (rc_matrix){w, 0, (size_t)in},
                    acc ? 1.0f : 0.0f, (rc_matrix){dx, 0, (size_t)in}, "linear input gradient", e);
}
