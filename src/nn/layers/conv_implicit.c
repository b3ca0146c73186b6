/* Convolutions as implicit GEMMs on the own GEMM implementation (CPU devices): the GEMM's
 * packed-panel kernels read the input tensor where im2col would have copied it. The kernels,
 * their tile and the packed-A scratch are the GEMM's (rc_gemm_conv_kit, ramp/gemm.h). */
#include "ramp/batchnorm.h"
#include "ramp/clock.h"
#include "ramp/conv.h"
#include "ramp/gemm.h"
#include "ramp/launch.h"

#include <limits.h>
#include <string.h>

/* Largest local memory of one conv_gemm_bwd_data work-group (its planes): L2-resident. */
static const size_t LOCAL_DATA_BYTES = (size_t)1 << 20;

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* RAMP_CL_PROFILE: wait for the launches since t0 and add their time under `name`. */
static int profiled(rc_ctx *ctx, const char *name, double t0, rc_err *e) {
    if (!ctx->profile) return 0;
    if (rc_ctx_finish(ctx, e)) return -1;
    rc_profile_add(ctx, name, rc_now_s() - t0);
    return 0;
}

/* conv_gemm_bwd_data's local floats per work-item: s * s phase sub-planes of (OH + 2 / s) x
 * (OW + 2 / s), the overhang of the last block of nr positions and of the epilogue's vector
 * reads, rounded up to whole vectors of 16. */
static size_t plane_floats(const rc_conv_shape *s, size_t nr) {
    const size_t wv = (size_t)s->ow + 2 / s->stride, rows = (size_t)s->oh + 2 / s->stride;
    return ((size_t)s->stride * s->stride * rows * wv + nr + wv + 16 + 15) / 16 * 16;
}

/* rc_conv_implicit_ok, with the kit filled when it says 1. */
static int implicit_ok(rc_ctx *ctx, const rc_conv_shape *s, int data, rc_gemm_conv_kit *k,
                       rc_err *e) {
    const int own = rc_gemm_conv_kit_get(ctx, k, e);
    if (own <= 0) return own;
    const double in = (double)s->n * s->c * s->h * s->w, out = (double)s->n * s->oc * s->oh * s->ow;
    if (in >= INT_MAX || out >= INT_MAX || s->stride < 1) return 0;
    if (!data) {
        const size_t panel = (size_t)s->c * s->kh * s->kw * k->nr * sizeof(float);
        return panel <= k->panel_bytes && panel <= k->local_bytes &&
               ceil_div((size_t)s->oc, k->mr) <= k->conv_items;
    }
    /* one work-item per input channel and image (even one channel, as for an image's gradient,
     * beats GEMM + col2im: small-cnn's first layer 0.9 vs 2.6 ms CPU) */
    const size_t local = (size_t)s->c * plane_floats(s, k->nr) * sizeof(float);
    return s->kh == 3 && s->kw == 3 && s->stride <= 2 && (size_t)s->c <= k->conv_items &&
           local <= k->local_bytes && local <= LOCAL_DATA_BYTES;
}

int rc_conv_implicit_ok(rc_ctx *ctx, const rc_conv_shape *s, int data, rc_err *e) {
    rc_gemm_conv_kit k;
    return implicit_ok(ctx, s, data, &k, e);
}

static int implicit_check(rc_ctx *ctx, const rc_conv_shape *s, int data, rc_gemm_conv_kit *k,
                          rc_err *e) {
    int ok = implicit_ok(ctx, s, data, k, e);
    if (ok < 0) return -1;
    if (!ok)
        return rc_err_set(e, "implicit-GEMM convolution %dx%dx%dx%d -> %d (k %d, stride %d) is "
                             "not supported on this device",
                          s->n, s->c, s->h, s->w, s->oc, s->kh, s->stride);
    return 0;
}

/* Column blocks per work-group: as many as keep the panel within panel_bytes (up to 8), fewer
 * while that leaves under 64 work-groups (both cores busy to the end). */
static int blocks_per_group(size_t k, size_t nr, size_t np, size_t panel_bytes) {
    size_t cb = panel_bytes / ((k ? k : 1) * nr * sizeof(float));
    if (cb > 8) cb = 8;
    while (cb > 1 && ceil_div(np, cb * nr) < 64) cb--;
    return cb < 1 ? 1 : (int)cb;
}

int rc_conv_implicit_forward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w,
                             const rc_bn_buffers *bn, cl_mem y, rc_err *e) {
    rc_gemm_conv_kit kit;
    if (implicit_check(ctx, s, 0, &kit, e)) return -1;
    const double t0 = ctx->profile ? rc_now_s() : 0;
    const size_t mr = kit.mr, nr = kit.nr;
    const int K = s->c * s->kh * s->kw, M = s->oc, np = s->n * s->oh * s->ow;
    const int P = s->oh * s->ow, ys_n = s->oc * P, bn_relu = bn != NULL;
    const int cb = blocks_per_group((size_t)K, nr, (size_t)np, kit.panel_bytes);
    const size_t tm = ceil_div((size_t)M, mr), cols = (size_t)cb * nr;
    const size_t kb = ceil_div((size_t)K, 16), gp[2] = {kb, tm};
    const size_t g[2] = {tm, ceil_div((size_t)np, cols)}, l[2] = {tm, 1};
    const cl_ulong zero = 0;
    const float eps = RC_BN_EPS;
    cl_mem gamma = bn ? bn->gamma : w, beta = bn ? bn->beta : w; /* unused without bn */
    cl_mem mean = bn ? bn->running_mean : w, var = bn ? bn->running_var : w;
    cl_mem packed;
    if (rc_gemm_scratch_a(ctx, tm * mr * (size_t)K, &packed, e) ||
        RC_ENQUEUE(ctx, kit.pack_a_y, "gemm_pack_a_y", 2, gp, NULL, e, RC_ARG(w), RC_ARG(zero),
                   RC_ARG(K), RC_ARG(M), RC_ARG(K), RC_ARG(packed)))
        return -1;
    const rc_arg args[] = {RC_ARG(packed), RC_ARG(M), RC_ARG(x), RC_ARG(s->c), RC_ARG(s->h),
                           RC_ARG(s->w), RC_ARG(s->kh), RC_ARG(s->kw), RC_ARG(s->stride),
                           RC_ARG(s->pad), RC_ARG(s->oh), RC_ARG(s->ow), RC_ARG(np), RC_ARG(cb),
                           RC_ARG(y), RC_ARG(ys_n), RC_ARG(P), RC_ARG(bn_relu), RC_ARG(gamma),
                           RC_ARG(beta), RC_ARG(mean), RC_ARG(var), RC_ARG(eps),
                           {(size_t)K * cols * sizeof(float), NULL},
                           {((size_t)s->kh * s->kw + 1) * cols * sizeof(int), NULL}};
    return rc_enqueue(ctx, kit.conv_fwd, "conv_gemm_fwd", 2, g, l,
                      (int)(sizeof args / sizeof *args), args, e) ||
           profiled(ctx, "conv_gemm_fwd", t0, e);
}

static rc_grad_layout dz_layout(const rc_conv_shape *s, size_t nr_) {
    const int nr = (int)nr_, row = s->ow + 2 / s->stride;
    const int plane = (s->oh * row + nr - 1) / nr * nr;
    return (rc_grad_layout){s->oc * plane, plane, row, 1};
}

rc_grad_layout rc_conv_implicit_dz_layout(rc_ctx *ctx, const rc_conv_shape *s) {
    /* Callers asked rc_conv_implicit_ok first: the kit is built and this cannot fail. */
    rc_gemm_conv_kit kit = {.nr = 1};
    rc_err ignored;
    rc_gemm_conv_kit_get(ctx, &kit, &ignored);
    return dz_layout(s, kit.nr);
}

int rc_conv_implicit_backward_data(rc_ctx *ctx, const rc_conv_shape *s, cl_mem w, cl_mem dz,
                                   const rc_grad_layout *dzl, cl_mem dx,
                                   const rc_grad_layout *dxl, int acc, const rc_bn_buffers *bn,
                                   cl_mem x, rc_err *e) {
    rc_gemm_conv_kit kit;
    if (implicit_check(ctx, s, 1, &kit, e)) return -1;
    const rc_grad_layout want = dz_layout(s, kit.nr);
    if (memcmp(dzl, &want, sizeof want))
        return rc_err_set(e, "implicit-GEMM data gradient of %dx%dx%dx%d -> %d: dz is not in "
                             "the padded layout it reads",
                          s->n, s->c, s->h, s->w, s->oc);
    const double t0 = ctx->profile ? rc_now_s() : 0;
    const size_t planes = plane_floats(s, kit.nr);
    const int plane_stride = (int)planes, masked = bn != NULL;
    const float eps = RC_BN_EPS;
    cl_mem mask = bn ? x : w, gamma = bn ? bn->gamma : w, var = bn ? bn->running_var : w;
    const size_t gp[2] = {(size_t)s->c, (size_t)s->oc};
    const size_t g[2] = {(size_t)s->c, (size_t)s->n}, l[2] = {(size_t)s->c, 1};
    cl_mem packed;
    if (rc_gemm_scratch_a(ctx, (size_t)s->c * s->oc * 9, &packed, e) ||
        RC_ENQUEUE(ctx, kit.conv_wt, "conv_pack_wt", 2, gp, NULL, e, RC_ARG(w), RC_ARG(s->oc),
                   RC_ARG(s->c), RC_ARG(packed)))
        return -1;
    const rc_arg args[] = {RC_ARG(packed), RC_ARG(dz), RC_ARG(s->oc), RC_ARG(s->oh),
                           RC_ARG(s->ow), RC_ARG(dzl->n_stride), RC_ARG(dzl->c_stride),
                           RC_ARG(s->c), RC_ARG(s->h), RC_ARG(s->w), RC_ARG(s->stride),
                           RC_ARG(s->pad), RC_ARG(dx), RC_ARG(dxl->n_stride),
                           RC_ARG(dxl->c_stride), RC_ARG(dxl->row_stride), RC_ARG(dxl->padded),
                           RC_ARG(acc), RC_ARG(masked), RC_ARG(mask), RC_ARG(gamma), RC_ARG(var),
                           RC_ARG(eps), RC_ARG(plane_stride),
                           {(size_t)s->c * planes * sizeof(float), NULL}};
    return rc_enqueue(ctx, kit.conv_bwd, "conv_gemm_bwd_data", 2, g, l,
                      (int)(sizeof args / sizeof *args), args, e) ||
           profiled(ctx, "conv_gemm_bwd_data", t0, e);
}
