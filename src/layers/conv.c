/* conv2d as im2col + one GEMM for the whole batch; backward as GEMMs + col2im (a gather). */
#include "ramp/gemm.h"
#include "ramp/launch.h"
#include "ramp/layers.h"

void rc_conv_shape_init(rc_conv_shape *s, int n, int c, int h, int w, int oc, int k, int stride,
                        int pad) {
    s->n = n, s->c = c, s->h = h, s->w = w;
    s->oc = oc, s->kh = k, s->kw = k, s->stride = stride, s->pad = pad;
    s->oh = (h + 2 * pad - k) / stride + 1;
    s->ow = (w + 2 * pad - k) / stride + 1;
}

void rc_conv_workspace_need(const rc_conv_shape *s, size_t *col, size_t *z) {
    size_t np = (size_t)s->n * s->oh * s->ow;
    *col = (size_t)s->c * s->kh * s->kw * np;
    *z = (size_t)s->oc * np;
}

int rc_workspace_alloc(rc_ctx *ctx, rc_workspace *ws, size_t col, size_t z, rc_err *e) {
    ws->col_floats = col;
    ws->z_floats = z;
    ws->col = ws->z = NULL;
    if (rc_buffer_create(ctx, col * sizeof(float), "convolution columns", &ws->col, e) ||
        rc_buffer_create(ctx, z * sizeof(float), "convolution GEMM output", &ws->z, e)) {
        rc_workspace_free(ws);
        return -1;
    }
    return 0;
}

void rc_workspace_free(rc_workspace *ws) {
    if (ws->col) clReleaseMemObject(ws->col);
    if (ws->z) clReleaseMemObject(ws->z);
    ws->col = ws->z = NULL;
}

static int im2col(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, rc_workspace *ws, rc_err *e) {
    size_t g = (size_t)s->n * s->c * s->kh * s->kw;
    return RC_LAUNCH(ctx, "conv.cl", "conv_im2col", 1, &g, e, RC_ARG(x), RC_ARG(ws->col),
                     RC_ARG(s->n), RC_ARG(s->c), RC_ARG(s->h), RC_ARG(s->w), RC_ARG(s->kh),
                     RC_ARG(s->kw), RC_ARG(s->stride), RC_ARG(s->pad), RC_ARG(s->oh),
                     RC_ARG(s->ow));
}

static int check_ws(const rc_conv_shape *s, const rc_workspace *ws, rc_err *e) {
    size_t col, z;
    rc_conv_workspace_need(s, &col, &z);
    if (col > ws->col_floats || z > ws->z_floats)
        return rc_err_set(e, "convolution %dx%dx%dx%d -> %d: workspace too small (%zu/%zu floats "
                             "needed, %zu/%zu allocated)",
                          s->n, s->c, s->h, s->w, s->oc, col, z, ws->col_floats, ws->z_floats);
    return 0;
}

int rc_conv_forward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem bias,
                    cl_mem y, rc_workspace *ws, rc_err *e) {
    if (check_ws(s, ws, e) || im2col(ctx, s, x, ws, e)) return -1;
    size_t np = (size_t)s->n * s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    if (rc_sgemm(ctx, 0, 0, (size_t)s->oc, np, k, 1.0f, (rc_matrix){w, 0, k},
                 (rc_matrix){ws->col, 0, np}, 0.0f, (rc_matrix){ws->z, 0, np}, "conv forward", e))
        return -1;
    int p = s->oh * s->ow, has_bias = bias != NULL;
    size_t g = (size_t)s->n * s->oc;
    cl_mem b = bias ? bias : w; /* any valid buffer; unused without bias */
    return RC_LAUNCH(ctx, "conv.cl", "conv_scatter", 1, &g, e, RC_ARG(ws->z), RC_ARG(y), RC_ARG(b),
                     RC_ARG(has_bias), RC_ARG(s->n), RC_ARG(s->oc), RC_ARG(p));
}

int rc_conv_backward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dy, cl_mem dx,
                     int acc, cl_mem dw, cl_mem db, int param_acc, rc_workspace *ws, rc_err *e) {
    if (check_ws(s, ws, e)) return -1;
    size_t np = (size_t)s->n * s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    int p = s->oh * s->ow;
    size_t g = (size_t)s->n * s->oc;
    if (RC_LAUNCH(ctx, "conv.cl", "conv_gather", 1, &g, e, RC_ARG(dy), RC_ARG(ws->z), RC_ARG(s->n),
                  RC_ARG(s->oc), RC_ARG(p)))
        return -1;
    if (db) {
        size_t go = (size_t)s->oc;
        if (RC_LAUNCH(ctx, "conv.cl", "conv_bias_grad", 1, &go, e, RC_ARG(dy), RC_ARG(db),
                      RC_ARG(s->n), RC_ARG(s->oc), RC_ARG(p), RC_ARG(param_acc)))
            return -1;
    }
    if (dw) {
        /* dW[OC][K] = dZ[OC][NP] col[K][NP]^T; columns recomputed rather than kept per layer. */
        if (im2col(ctx, s, x, ws, e) ||
            rc_sgemm(ctx, 0, 1, (size_t)s->oc, k, np, 1.0f, (rc_matrix){ws->z, 0, np},
                     (rc_matrix){ws->col, 0, np}, param_acc ? 1.0f : 0.0f,
                     (rc_matrix){dw, 0, k}, "conv weight gradient", e))
            return -1;
    }
    if (!dx) return 0;
    /* dcol[K][NP] = W[OC][K]^T dZ[OC][NP], then col2im gathers it into dx. */
    if (rc_sgemm(ctx, 1, 0, k, np, (size_t)s->oc, 1.0f, (rc_matrix){w, 0, k},
                 (rc_matrix){ws->z, 0, np}, 0.0f, (rc_matrix){ws->col, 0, np},
                 "conv input gradient", e))
        return -1;
    size_t gx = (size_t)s->n * s->c;
    return RC_LAUNCH(ctx, "conv.cl", "conv_col2im", 1, &gx, e, RC_ARG(ws->col), RC_ARG(dx),
                     RC_ARG(s->n), RC_ARG(s->c), RC_ARG(s->h), RC_ARG(s->w), RC_ARG(s->kh),
                     RC_ARG(s->kw), RC_ARG(s->stride), RC_ARG(s->pad), RC_ARG(s->oh),
                     RC_ARG(s->ow), RC_ARG(acc));
}
