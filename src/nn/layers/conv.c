/* conv2d as im2col + one GEMM for the whole batch; backward as GEMMs + col2im (a gather). The
 * eval-mode fused path (src/nn/model.c) uses the implicit-GEMM convolutions of conv_implicit.c
 * instead. */
#include "ramp/conv.h"
#include "ramp/gemm.h"
#include "ramp/launch.h"

#include <string.h>

void rc_conv_shape_init(rc_conv_shape *s, int n, int c, int h, int w, int oc, int k, int stride,
                        int pad) {
    s->n = n, s->c = c, s->h = h, s->w = w;
    s->oc = oc, s->kh = k, s->kw = k, s->stride = stride, s->pad = pad;
    rc_conv_shape_pad_after(s, 0);
}

void rc_conv_shape_pad_after(rc_conv_shape *s, int extra) {
    s->oh = (s->h + 2 * s->pad + extra - s->kh) / s->stride + 1;
    s->ow = (s->w + 2 * s->pad + extra - s->kw) / s->stride + 1;
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

/* The CPU class writes a row of P column entries per work-item, the GPU class one entry. */
static int im2col(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, rc_workspace *ws, rc_err *e) {
    size_t g = rc_plane_items(ctx, (size_t)s->n * s->c * s->kh * s->kw, (size_t)s->oh * s->ow);
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
    if (check_ws(s, ws, e)) return -1;
    if (!bias) {
        const int implicit = rc_conv_implicit_ok(ctx, s, 0, e);
        if (implicit < 0) return -1;
        if (implicit) return rc_conv_implicit_forward(ctx, s, x, w, NULL, y, e);
    }
    if (im2col(ctx, s, x, ws, e)) return -1;
    size_t np = (size_t)s->n * s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    if (rc_sgemm(ctx, 0, 0, (size_t)s->oc, np, k, 1.0f, (rc_matrix){w, 0, k},
                 (rc_matrix){ws->col, 0, np}, 0.0f, (rc_matrix){ws->z, 0, np}, "conv forward", e))
        return -1;
    int p = s->oh * s->ow, has_bias = bias != NULL;
    size_t g = rc_plane_items(ctx, (size_t)s->n * s->oc, (size_t)p);
    cl_mem b = bias ? bias : w; /* any valid buffer; unused without bias */
    return RC_LAUNCH(ctx, "conv.cl", "conv_scatter", 1, &g, e, RC_ARG(ws->z), RC_ARG(y), RC_ARG(b),
                     RC_ARG(has_bias), RC_ARG(s->n), RC_ARG(s->oc), RC_ARG(p));
}

/* dW[OC][K] = dZ[OC][NP] col[K][NP]^T; columns recomputed rather than kept per layer. */
static int weight_grad(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem dz, cl_mem dw,
                       int param_acc, rc_workspace *ws, rc_err *e) {
    size_t np = (size_t)s->n * s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    return im2col(ctx, s, x, ws, e) ||
           rc_sgemm(ctx, 0, 1, (size_t)s->oc, k, np, 1.0f, (rc_matrix){dz, 0, np},
                    (rc_matrix){ws->col, 0, np}, param_acc ? 1.0f : 0.0f, (rc_matrix){dw, 0, k},
                    "conv weight gradient", e);
}

/* dcol[K][NP] = W[OC][K]^T dZ[OC][NP], then col2im gathers it into dx. */
static int data_grad(rc_ctx *ctx, const rc_conv_shape *s, cl_mem w, cl_mem dz, cl_mem dx, int acc,
                     rc_workspace *ws, rc_err *e) {
    size_t np = (size_t)s->n * s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    if (rc_sgemm(ctx, 1, 0, k, np, (size_t)s->oc, 1.0f, (rc_matrix){w, 0, k},
                 (rc_matrix){dz, 0, np}, 0.0f, (rc_matrix){ws->col, 0, np},
                 "conv input gradient", e))
        return -1;
    /* a plane of dx per work-item on the CPU class, an element on the GPU class */
    size_t gx = rc_plane_items(ctx, (size_t)s->n * s->c, (size_t)s->h * s->w);
    return RC_LAUNCH(ctx, "conv.cl", "conv_col2im", 1, &gx, e, RC_ARG(ws->col), RC_ARG(dx),
                     RC_ARG(s->n), RC_ARG(s->c), RC_ARG(s->h), RC_ARG(s->w), RC_ARG(s->kh),
                     RC_ARG(s->kw), RC_ARG(s->stride), RC_ARG(s->pad), RC_ARG(s->oh),
                     RC_ARG(s->ow), RC_ARG(acc));
}

/* dZ[oc][n*P + p] = dy[n][oc][p], into the workspace. */
static int gather(rc_ctx *ctx, const rc_conv_shape *s, cl_mem dy, rc_workspace *ws, rc_err *e) {
    int p = s->oh * s->ow;
    size_t g = rc_plane_items(ctx, (size_t)s->n * s->oc, (size_t)p);
    return RC_LAUNCH(ctx, "conv.cl", "conv_gather", 1, &g, e, RC_ARG(dy), RC_ARG(ws->z),
                     RC_ARG(s->n), RC_ARG(s->oc), RC_ARG(p));
}

int rc_conv_backward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dy, cl_mem dx,
                     int acc, cl_mem dw, cl_mem db, int param_acc, rc_workspace *ws, rc_err *e) {
    if (check_ws(s, ws, e) || gather(ctx, s, dy, ws, e)) return -1;
    if (db) {
        /* GPU class: the sums of the gathered (contiguous) rows of dZ; CPU class: of dy */
        int p = s->oh * s->ow;
        size_t go = (size_t)s->oc;
        cl_mem src = ctx->cls == RC_CLASS_GPU ? ws->z : dy;
        if (RC_LAUNCH_EACH(ctx, "conv.cl", "conv_bias_grad", 1, &go, e, RC_ARG(src), RC_ARG(db),
                             RC_ARG(s->n), RC_ARG(s->oc), RC_ARG(p), RC_ARG(param_acc)))
            return -1;
    }
    if (dw && weight_grad(ctx, s, x, ws->z, dw, param_acc, ws, e)) return -1;
    return dx ? data_grad(ctx, s, w, ws->z, dx, acc, ws, e) : 0;
}

rc_grad_layout rc_layout_nchw(int c, int h, int w) {
    return (rc_grad_layout){c * h * w, h * w, w, 0};
}

rc_grad_layout rc_layout_cnp(int n, int h, int w) {
    return (rc_grad_layout){h * w, n * h * w, w, 0};
}

int rc_conv_dz_layout(rc_ctx *ctx, const rc_conv_shape *s, rc_grad_layout *l, rc_err *e) {
    int implicit = rc_conv_implicit_ok(ctx, s, 1, e);
    if (implicit < 0) return -1;
    *l = implicit ? rc_conv_implicit_dz_layout(ctx, s) : rc_layout_cnp(s->n, s->oh, s->ow);
    return 0;
}

int rc_conv_backward_dz(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dz,
                        cl_mem dx, const rc_grad_layout *dxl, int acc,
                        const rc_bn_buffers *mask_bn, rc_workspace *ws, rc_err *e) {
    if (check_ws(s, ws, e)) return -1;
    const int implicit = rc_conv_implicit_ok(ctx, s, 1, e);
    if (implicit < 0) return -1;
    if (implicit) {
        rc_grad_layout dzl = rc_conv_implicit_dz_layout(ctx, s);
        return rc_conv_implicit_backward_data(ctx, s, w, dz, &dzl, dx, dxl, acc, mask_bn, x, e);
    }
    rc_grad_layout nchw = rc_layout_nchw(s->c, s->h, s->w);
    if (mask_bn || memcmp(dxl, &nchw, sizeof nchw))
        return rc_err_set(e, "convolution %dx%dx%dx%d -> %d: its data gradient (GEMM + col2im) "
                             "writes NCHW only",
                          s->n, s->c, s->h, s->w, s->oc);
    return data_grad(ctx, s, w, dz, dx, acc, ws, e);
}
