/* `ramp-cl bench --layers`: the device's FMA peak (cl/peak.cl) and, for every distinct
 * convolution of a model, the time and GFLOP/s of the forward, data-gradient and weight-gradient
 * calls a training step makes and of the eval-mode data gradient an attack step makes, with
 * their share of the peak. tools/bench_pytorch.py --layers times the same shapes in PyTorch. */
#include "ramp/bench.h"
#include "ramp/buffers.h"
#include "ramp/clock.h"
#include "ramp/conv.h"
#include "ramp/launch.h"
#include "ramp/model.h"
#include "ramp/program.h"

#include <stdio.h>
#include <string.h>

enum { PEAK_CHAINS = 10 }; /* CHAINS in cl/peak.cl */

int rc_bench_peak(rc_ctx *ctx, double *gflops, rc_err *e) {
    cl_uint w = 1;
    cl_int s = clGetDeviceInfo(ctx->dev.device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof w, &w,
                               NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clGetDeviceInfo", s, "native float vector width of %s",
                         ctx->dev.name);
    cl_uint vw = 1;
    while (vw * 2 <= w && vw < 16) vw *= 2;
    char opt[32], type[16] = "float";
    if (vw > 1) snprintf(type, sizeof type, "float%u", vw);
    snprintf(opt, sizeof opt, "-DPEAK_T=%s", type);
    /* enough work-items to fill every compute unit (GPUs: many per unit to hide latency); on
     * the CPU class a work-group per compute unit, which PoCL would otherwise make one group
     * running on one core */
    const int gpu = ctx->cls == RC_CLASS_GPU;
    size_t items = (size_t)ctx->dev.compute_units * (gpu ? 2048 : 16), group = 16;
    cl_kernel k = NULL;
    cl_mem out = NULL;
    int r = -1, iters = 64;
    const float h = 0.5f;
    if (rc_kernel_create(ctx, "peak.cl", "peak_fma", opt, &k, e) ||
        rc_buffer_create(ctx, items * vw * sizeof(float), "FMA peak output", &out, e))
        goto out;
    /* grow the loop until one launch takes 0.1 s, then keep the best of three launches */
    double best = 0;
    for (int round = 0; round < 3;) {
        double t0 = rc_now_s();
        if (RC_ENQUEUE(ctx, k, "peak_fma", 1, &items, gpu ? NULL : &group, e, RC_ARG(out), RC_ARG(iters),
                       RC_ARG(h)) ||
            rc_ctx_finish(ctx, e))
            goto out;
        double t = rc_now_s() - t0;
        if (t < 0.1 && iters < (1 << 24)) {
            iters *= t > 0.01 ? 2 : 8;
            continue;
        }
        double g = 2.0 * PEAK_CHAINS * vw * (double)items * iters / t / 1e9;
        if (g > best) best = g;
        round++;
    }
    *gflops = best;
    printf("FMA peak: %.1f GFLOP/s (%s, %d chains, %zu work-items)\n", best, type, PEAK_CHAINS,
           items);
    r = 0;
out:
    if (k) clReleaseKernel(k);
    if (out) clReleaseMemObject(out);
    return r;
}

typedef enum { L_FWD, L_DGRAD, L_WGRAD, L_DGRAD_EVAL, L_OPS } layer_op;
static const char *const layer_op_names[] = {"fwd", "dgrad", "wgrad", "dgrad-eval"};

typedef struct layer_bufs {
    cl_mem x, y, dy, dx, w, dw;
} layer_bufs;

static int layer_call(rc_ctx *ctx, const rc_conv_shape *s, const layer_bufs *b, layer_op op,
                      rc_workspace *ws, rc_err *e) {
    switch (op) {
    case L_FWD:
        return rc_conv_forward(ctx, s, b->x, b->w, NULL, b->y, ws, e);
    case L_DGRAD:
        return rc_conv_backward(ctx, s, b->x, b->w, b->dy, b->dx, 0, NULL, NULL, 0, ws, e);
    case L_WGRAD:
        return rc_conv_backward(ctx, s, b->x, b->w, b->dy, NULL, 0, b->dw, NULL, 0, ws, e);
    default: {
        rc_grad_layout dzl, dxl = rc_layout_nchw(s->c, s->h, s->w);
        return rc_conv_dz_layout(ctx, s, &dzl, e) ||
               rc_conv_backward_dz(ctx, s, b->x, b->w, b->dy, b->dx, &dxl, 0, NULL, ws, e);
    }
    }
}

static int same_shape(const rc_conv_shape *a, const rc_conv_shape *b) {
    return a->c == b->c && a->h == b->h && a->w == b->w && a->oc == b->oc && a->kh == b->kh &&
           a->kw == b->kw && a->stride == b->stride && a->pad == b->pad && a->oh == b->oh &&
           a->ow == b->ow;
}

/* One shape: every op timed for at least min_seconds (two calls at least) after an untimed
 * call; adds count x its ms per op to total_ms. */
static int bench_shape(rc_ctx *ctx, const rc_conv_shape *s, int count, rc_workspace *ws,
                       double min_seconds, double peak, double *total_ms, rc_err *e) {
    const size_t in = (size_t)s->n * s->c * s->h * s->w, out = (size_t)s->n * s->oc * s->oh * s->ow;
    const size_t wn = (size_t)s->oc * s->c * s->kh * s->kw;
    rc_grad_layout dzl;
    if (rc_conv_dz_layout(ctx, s, &dzl, e)) return -1;
    size_t dz = (size_t)s->n * dzl.n_stride > out ? (size_t)s->n * dzl.n_stride : out;
    layer_bufs b = {0};
    int r = -1;
    if (rc_buffer_create(ctx, in * 4, "layer input", &b.x, e) ||
        rc_buffer_create(ctx, out * 4, "layer output", &b.y, e) ||
        rc_buffer_create(ctx, dz * 4, "layer output gradient", &b.dy, e) ||
        rc_buffer_create(ctx, in * 4, "layer input gradient", &b.dx, e) ||
        rc_buffer_create(ctx, wn * 4, "layer weights", &b.w, e) ||
        rc_buffer_create(ctx, wn * 4, "layer weight gradient", &b.dw, e) ||
        rc_fill(ctx, b.x, 0, in, 0.5f, e) || rc_fill(ctx, b.dy, 0, dz, 0.01f, e) ||
        rc_fill(ctx, b.w, 0, wn, 0.02f, e))
        goto out;
    const double flops = 2.0 * out * s->c * s->kh * s->kw;
    char name[64];
    snprintf(name, sizeof name, "%dx%dx%d->%d k%d s%d (x%d)", s->c, s->h, s->w, s->oc, s->kh,
             s->stride, count);
    for (layer_op op = L_FWD; op < L_OPS; op++) {
        if (layer_call(ctx, s, &b, op, ws, e) || rc_ctx_finish(ctx, e)) goto out;
        int runs = 0;
        double t0 = rc_now_s(), el;
        do {
            if (layer_call(ctx, s, &b, op, ws, e) || rc_ctx_finish(ctx, e)) goto out;
            runs++;
            el = rc_now_s() - t0;
        } while (el < min_seconds || runs < 2);
        const double ms = 1e3 * el / runs, g = flops / (ms * 1e6);
        total_ms[op] += count * ms;
        printf("  %-26s %-10s %9.2f %9.1f %7.1f\n", op == L_FWD ? name : "", layer_op_names[op],
               ms, g, 100 * g / peak);
        fflush(stdout);
    }
    r = 0;
out:;
    cl_mem all[] = {b.x, b.y, b.dy, b.dx, b.w, b.dw};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) clReleaseMemObject(all[i]);
    return r;
}

int rc_bench_layers(rc_ctx *ctx, rc_model *m, int n, double min_seconds, double peak,
                    rc_err *e) {
    printf("  %-26s %-10s %9s %9s %7s   (batch %d; %% of the FMA peak)\n", "convolution", "call",
           "ms", "GFLOP/s", "% peak", n);
    double total[L_OPS] = {0};
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].op != RC_OP_CONV) continue;
        int seen = 0, count = 0;
        for (int j = 0; j < m->n_nodes; j++)
            if (m->nodes[j].op == RC_OP_CONV && same_shape(&m->nodes[j].conv, &m->nodes[i].conv)) {
                seen |= j < i;
                count++;
            }
        if (seen) continue;
        rc_conv_shape s = m->nodes[i].conv;
        s.n = n;
        if (bench_shape(ctx, &s, count, &m->ws, min_seconds, peak, total, e)) return -1;
    }
    printf("  %-26s", "all convolutions, ms");
    for (layer_op op = L_FWD; op < L_OPS; op++)
        printf(" %s %.1f%s", layer_op_names[op], total[op], op + 1 < L_OPS ? "," : "\n");
    return 0;
}
