/* Finite-difference gradient checks of every layer, for input and parameter gradients.
 *
 * For a layer y = f(x, θ) the test takes the scalar L = Σ y ⊙ r for a fixed random r, runs the
 * layer's backward with dy = r, and compares each analytic partial derivative with the central
 * difference (L(v + h) - L(v - h)) / 2h, computed on the device in float32 with L summed in
 * double. Every coordinate of every tensor is checked (the tensors are small), so a wrong index
 * anywhere shows up as an O(1) error. */
#include "testutil.h"
#include "ramp/batchnorm.h"
#include "ramp/conv.h"
#include "ramp/elementwise.h"
#include "ramp/gemm.h"
#include "ramp/linear.h"
#include "ramp/loss.h"

#include <math.h>

#define MAXT 6

typedef struct probe {
    const char *name;
    float *host;  /* current values, uploaded before each forward */
    size_t n;
    cl_mem dev;
    cl_mem grad;  /* analytic gradient written by backward (NULL: not checked) */
} probe;

typedef struct layer_case {
    rc_ctx *ctx;
    probe t[MAXT];
    int nt;
    cl_mem y, dy;
    size_t ny;
    float *r; /* dL/dy */
    int (*forward)(struct layer_case *, rc_err *);
    int (*backward)(struct layer_case *, rc_err *);
    /* layer-specific state */
    rc_conv_shape conv;
    rc_workspace ws;
    rc_bn_buffers bn;
    int n, c, hw, in, out, train;
    rc_activation act;
} layer_case;

static probe *add_probe(layer_case *lc, const char *name, size_t n, float lo, float hi,
                        unsigned seed, int with_grad) {
    probe *p = &lc->t[lc->nt++];
    p->name = name;
    p->n = n;
    p->host = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p->host[i] = urand(&seed, lo, hi);
    p->dev = dev_buf(lc->ctx, n);
    upload(lc->ctx, p->dev, p->host, n);
    p->grad = with_grad ? dev_buf(lc->ctx, n) : NULL;
    return p;
}

static void set_output(layer_case *lc, size_t ny) {
    lc->ny = ny;
    lc->y = dev_buf(lc->ctx, ny);
    lc->dy = dev_buf(lc->ctx, ny);
    lc->r = malloc(ny * sizeof(float));
    unsigned s = 777;
    for (size_t i = 0; i < ny; i++) lc->r[i] = urand(&s, -1.0f, 1.0f);
    upload(lc->ctx, lc->dy, lc->r, ny);
}

static double objective(layer_case *lc) {
    rc_err e;
    for (int i = 0; i < lc->nt; i++) upload(lc->ctx, lc->t[i].dev, lc->t[i].host, lc->t[i].n);
    ck_assert_msg(lc->forward(lc, &e) == 0, "forward: %s", e.msg);
    float *y = malloc(lc->ny * sizeof(float));
    download(lc->ctx, lc->y, y, lc->ny);
    double s = 0;
    for (size_t i = 0; i < lc->ny; i++) s += (double)y[i] * lc->r[i];
    free(y);
    return s;
}

/* With ny outputs, compare every analytic partial with its central difference (step h). */
static void check_gradients(layer_case *lc, size_t ny, double tol) {
    const float h = 1e-2f;
    rc_err e;
    set_output(lc, ny);
    objective(lc); /* forward at the base point, state for backward */
    ck_assert_msg(lc->backward(lc, &e) == 0, "backward: %s", e.msg);
    for (int ti = 0; ti < lc->nt; ti++) {
        probe *p = &lc->t[ti];
        if (!p->grad) continue;
        float *g = malloc(p->n * sizeof(float));
        download(lc->ctx, p->grad, g, p->n);
        double rms = 0;
        for (size_t i = 0; i < p->n; i++) rms += (double)g[i] * g[i];
        rms = sqrt(rms / (double)p->n);
        for (size_t i = 0; i < p->n; i++) {
            float v = p->host[i];
            p->host[i] = v + h;
            double fp = objective(lc);
            p->host[i] = v - h;
            double fm = objective(lc);
            p->host[i] = v;
            double fd = (fp - fm) / (2.0 * h);
            double err = fabs(fd - g[i]) / fmax(fabs(fd), fmax(0.1 * rms, 1e-3));
            ck_assert_msg(err < tol,
                          "%s[%zu]: analytic %.6g, finite difference %.6g (rel err %.3g)", p->name,
                          i, g[i], fd, err);
        }
        free(g);
    }
}

/* Frees the case and closes its context. */
static void close_case(layer_case *lc) {
    for (int i = 0; i < lc->nt; i++) {
        free(lc->t[i].host);
        clReleaseMemObject(lc->t[i].dev);
        if (lc->t[i].grad) clReleaseMemObject(lc->t[i].grad);
    }
    clReleaseMemObject(lc->y);
    clReleaseMemObject(lc->dy);
    free(lc->r);
    rc_workspace_free(&lc->ws);
    rc_ctx_close(lc->ctx);
}

/* ---- convolution ------------------------------------------------------------------------ */

static int conv_fwd(layer_case *lc, rc_err *e) {
    return rc_conv_forward(lc->ctx, &lc->conv, lc->t[0].dev, lc->t[1].dev,
                           lc->nt > 2 ? lc->t[2].dev : NULL, lc->y, &lc->ws, e);
}
static int conv_bwd(layer_case *lc, rc_err *e) {
    return rc_conv_backward(lc->ctx, &lc->conv, lc->t[0].dev, lc->t[1].dev, lc->dy, lc->t[0].grad,
                            0, lc->t[1].grad, lc->nt > 2 ? lc->t[2].grad : NULL, 0, &lc->ws, e);
}

/* pad_after: rc_conv_shape_pad_after's extra zeros after the input */
static void conv_case(int n, int c, int hw, int oc, int k, int stride, int pad, int pad_after,
                      int bias) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {.ctx = &ctx, .forward = conv_fwd, .backward = conv_bwd};
    rc_conv_shape_init(&lc.conv, n, c, hw, hw, oc, k, stride, pad);
    rc_conv_shape_pad_after(&lc.conv, pad_after);
    size_t col, z;
    rc_err e;
    rc_conv_workspace_need(&lc.conv, &col, &z);
    ck_assert_msg(rc_workspace_alloc(&ctx, &lc.ws, col, z, &e) == 0, "%s", e.msg);
    add_probe(&lc, "x", (size_t)n * c * hw * hw, -1, 1, 1, 1);
    add_probe(&lc, "weight", (size_t)oc * c * k * k, -0.5f, 0.5f, 2, 1);
    if (bias) add_probe(&lc, "bias", (size_t)oc, -0.5f, 0.5f, 3, 1);
    check_gradients(&lc, (size_t)n * oc * lc.conv.oh * lc.conv.ow, 1e-2);
    close_case(&lc);
}

START_TEST(conv3x3_stride1_bias) { conv_case(2, 3, 5, 4, 3, 1, 1, 0, 1); }
END_TEST
START_TEST(conv3x3_stride2_odd) { conv_case(2, 2, 7, 3, 3, 2, 1, 0, 0); }
END_TEST
START_TEST(conv1x1_stride2_shortcut) { conv_case(2, 3, 6, 5, 1, 2, 0, 0, 0); }
END_TEST
START_TEST(conv5x5_nonsquare_channels) { conv_case(1, 2, 6, 3, 5, 1, 2, 0, 0); }
END_TEST
/* DeepMind's WideResNet: stride 2, padding (0, 1) (its output is 4x4, as with padding 1) */
START_TEST(conv3x3_stride2_pad_after) { conv_case(2, 3, 8, 4, 3, 2, 0, 1, 0); }
END_TEST

/* ---- batch norm ------------------------------------------------------------------------- */

static int bn_fwd(layer_case *lc, rc_err *e) {
    lc->bn.gamma = lc->t[1].dev;
    lc->bn.beta = lc->t[2].dev;
    return rc_bn_forward(lc->ctx, lc->train, lc->n, lc->c, lc->hw, lc->t[0].dev, lc->y, &lc->bn, e);
}
static int bn_bwd(layer_case *lc, rc_err *e) {
    return rc_bn_backward(lc->ctx, lc->train, lc->n, lc->c, lc->hw, lc->t[0].dev, lc->dy,
                          lc->t[0].grad, 0, lc->t[1].grad, lc->t[2].grad, &lc->bn, e);
}

static void bn_case(int train) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {.ctx = &ctx, .forward = bn_fwd, .backward = bn_bwd, .n = 3, .c = 4, .hw = 6,
                     .train = train};
    size_t nc = (size_t)lc.n * lc.c;
    add_probe(&lc, "x", nc * lc.hw, -2, 2, 11, 1);
    add_probe(&lc, "gamma", (size_t)lc.c, 0.5f, 1.5f, 12, train);
    add_probe(&lc, "beta", (size_t)lc.c, -0.5f, 0.5f, 13, train);
    lc.bn.running_mean = dev_buf(&ctx, (size_t)lc.c);
    lc.bn.running_var = dev_buf(&ctx, (size_t)lc.c);
    float rm[4] = {0.1f, -0.2f, 0.3f, 0.0f}, rv[4] = {0.5f, 1.0f, 1.5f, 2.0f};
    upload(&ctx, lc.bn.running_mean, rm, 4);
    upload(&ctx, lc.bn.running_var, rv, 4);
    lc.bn.mean = dev_buf(&ctx, (size_t)lc.c);
    lc.bn.invstd = dev_buf(&ctx, (size_t)lc.c);
    lc.bn.part_a = dev_buf(&ctx, nc);
    lc.bn.part_b = dev_buf(&ctx, nc);
    check_gradients(&lc, nc * lc.hw, 2e-2);
    clReleaseMemObject(lc.bn.running_mean);
    clReleaseMemObject(lc.bn.running_var);
    clReleaseMemObject(lc.bn.mean);
    clReleaseMemObject(lc.bn.invstd);
    clReleaseMemObject(lc.bn.part_a);
    clReleaseMemObject(lc.bn.part_b);
    close_case(&lc);
}

START_TEST(batchnorm_train) { bn_case(1); }
END_TEST
START_TEST(batchnorm_eval) { bn_case(0); }
END_TEST

/* Running statistics after one train forward: momentum 0.1, unbiased variance. */
START_TEST(batchnorm_running_stats) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    const int n = 2, c = 2, hw = 5;
    float x[20], ones[2] = {1, 1}, zeros[2] = {0, 0}, rm[2] = {0.5f, -0.5f}, rv[2] = {2, 3};
    unsigned s = 5;
    for (int i = 0; i < 20; i++) x[i] = urand(&s, -1, 3);
    rc_bn_buffers b;
    b.gamma = dev_buf(&ctx, 2), b.beta = dev_buf(&ctx, 2);
    b.running_mean = dev_buf(&ctx, 2), b.running_var = dev_buf(&ctx, 2);
    b.mean = dev_buf(&ctx, 2), b.invstd = dev_buf(&ctx, 2);
    b.part_a = dev_buf(&ctx, 4), b.part_b = dev_buf(&ctx, 4);
    cl_mem dx = dev_buf(&ctx, 20), dy = dev_buf(&ctx, 20);
    upload(&ctx, dx, x, 20);
    upload(&ctx, b.gamma, ones, 2);
    upload(&ctx, b.beta, zeros, 2);
    upload(&ctx, b.running_mean, rm, 2);
    upload(&ctx, b.running_var, rv, 2);
    rc_err e;
    ck_assert_msg(rc_bn_forward(&ctx, 1, n, c, hw, dx, dy, &b, &e) == 0, "%s", e.msg);
    float got_m[2], got_v[2], y[20];
    download(&ctx, b.running_mean, got_m, 2);
    download(&ctx, b.running_var, got_v, 2);
    download(&ctx, dy, y, 20);
    for (int ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) sum += x[(i * c + ch) * hw + p];
        double mean = sum / (n * hw);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) sq += pow(x[(i * c + ch) * hw + p] - mean, 2);
        double var_b = sq / (n * hw), var_u = sq / (n * hw - 1);
        ck_assert_double_eq_tol(got_m[ch], 0.9 * rm[ch] + 0.1 * mean, 1e-6);
        ck_assert_double_eq_tol(got_v[ch], 0.9 * rv[ch] + 0.1 * var_u, 1e-5);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) {
                int k = (i * c + ch) * hw + p;
                ck_assert_double_eq_tol(y[k], (x[k] - mean) / sqrt(var_b + 1e-5), 1e-5);
            }
    }
    cl_mem all[] = {b.gamma, b.beta, b.running_mean, b.running_var, b.mean, b.invstd, b.part_a,
                    b.part_b, dx, dy};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) clReleaseMemObject(all[i]);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- activations, pooling, add ----------------------------------------------------------- */

static int act_fwd(layer_case *lc, rc_err *e) {
    return rc_act_forward(lc->ctx, lc->act, lc->ny, lc->t[0].dev, lc->y, e);
}
static int act_bwd(layer_case *lc, rc_err *e) {
    return rc_act_backward(lc->ctx, lc->act, lc->ny, lc->t[0].dev, lc->dy, lc->t[0].grad, 0, e);
}

static void act_case(rc_activation a, float lo, float hi) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {.ctx = &ctx, .forward = act_fwd, .backward = act_bwd, .act = a};
    probe *x = add_probe(&lc, "x", 64, lo, hi, 21, 1);
    /* keep ReLU inputs away from its kink, where the difference quotient is meaningless */
    for (size_t i = 0; i < x->n; i++)
        if (fabsf(x->host[i]) < 0.05f) x->host[i] = 0.1f;
    check_gradients(&lc, 64, 1e-2);
    close_case(&lc);
}

START_TEST(relu) { act_case(RC_ACTIVATION_RELU, -2, 2); }
END_TEST
START_TEST(softplus) { act_case(RC_ACTIVATION_SOFTPLUS, -5, 5); }
END_TEST
START_TEST(softplus_above_threshold) { act_case(RC_ACTIVATION_SOFTPLUS, 19, 23); }
END_TEST
START_TEST(silu) { act_case(RC_ACTIVATION_SILU, -6, 6); }
END_TEST
/* far out, where exp(-x) overflows (x < -88) or sigmoid rounds to 1 */
START_TEST(silu_tails) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    const float x[6] = {-200.0f, -90.0f, -30.0f, 30.0f, 90.0f, 200.0f};
    float y[6], g[6], dy[6] = {1, 1, 1, 1, 1, 1};
    cl_mem dx_ = dev_from(&ctx, x, 6), ddy = dev_from(&ctx, dy, 6), out = dev_buf(&ctx, 6);
    rc_err e;
    ck_assert_msg(rc_act_forward(&ctx, RC_ACTIVATION_SILU, 6, dx_, out, &e) == 0, "%s", e.msg);
    download(&ctx, out, y, 6);
    ck_assert_msg(rc_act_backward(&ctx, RC_ACTIVATION_SILU, 6, dx_, ddy, out, 0, &e) == 0, "%s",
                  e.msg);
    download(&ctx, out, g, 6);
    for (int i = 0; i < 6; i++) {
        double s = 1 / (1 + exp(-(double)x[i]));
        ck_assert_msg(isfinite(y[i]) && isfinite(g[i]), "silu(%g) = %g, gradient %g", x[i], y[i],
                      g[i]);
        ck_assert_double_eq_tol(y[i], x[i] * s, 1e-5 * fabs(x[i]));
        ck_assert_double_eq_tol(g[i], s * (1 + x[i] * (1 - s)), 1e-5);
    }
    clReleaseMemObject(dx_);
    clReleaseMemObject(ddy);
    clReleaseMemObject(out);
    rc_ctx_close(&ctx);
}
END_TEST

/* Input normalisation y = (x - mean[c]) / std[c]: the input gradient (mean and std are
 * constants, their probes unchecked). */
static int norm_fwd(layer_case *lc, rc_err *e) {
    return rc_normalize_forward(lc->ctx, lc->n, lc->c, lc->hw, lc->t[0].dev, lc->t[1].dev,
                                lc->t[2].dev, lc->y, e);
}
static int norm_bwd(layer_case *lc, rc_err *e) {
    return rc_normalize_backward(lc->ctx, lc->n, lc->c, lc->hw, lc->t[2].dev, lc->dy, lc->t[0].grad,
                                 0, e);
}

START_TEST(input_normalisation) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {
        .ctx = &ctx, .forward = norm_fwd, .backward = norm_bwd, .n = 2, .c = 3, .hw = 10};
    probe *x = add_probe(&lc, "x", 60, 0, 1, 51, 1);
    probe *mean = add_probe(&lc, "mean", 3, 0.4f, 0.5f, 52, 0);
    probe *std = add_probe(&lc, "std", 3, 0.2f, 0.3f, 53, 0);
    check_gradients(&lc, 60, 1e-2);
    float y[60];
    objective(&lc);
    download(&ctx, lc.y, y, 60);
    for (int i = 0; i < 60; i++) {
        int c = i / 10 % 3;
        ck_assert_double_eq_tol(y[i], (x->host[i] - mean->host[c]) / std->host[c], 1e-5);
    }
    close_case(&lc);
}
END_TEST

static int gap_fwd(layer_case *lc, rc_err *e) {
    return rc_gap_forward(lc->ctx, lc->n, lc->c, lc->hw, lc->t[0].dev, lc->y, e);
}
static int gap_bwd(layer_case *lc, rc_err *e) {
    return rc_gap_backward(lc->ctx, lc->n, lc->c, lc->hw, lc->dy, lc->t[0].grad, 0, e);
}

START_TEST(global_avg_pool) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {.ctx = &ctx, .forward = gap_fwd, .backward = gap_bwd, .n = 2, .c = 3, .hw = 9};
    add_probe(&lc, "x", 54, -1, 1, 31, 1);
    check_gradients(&lc, 6, 1e-2);
    close_case(&lc);
}
END_TEST

/* The residual add: y = a + b; its backward is a pass-through into each input. */
static int add_fwd(layer_case *lc, rc_err *e) {
    return rc_add_forward(lc->ctx, lc->ny, lc->t[0].dev, lc->t[1].dev, lc->y, e);
}
static int add_bwd(layer_case *lc, rc_err *e) {
    return rc_grad_pass(lc->ctx, lc->ny, lc->dy, lc->t[0].grad, 0, e) ||
           rc_grad_pass(lc->ctx, lc->ny, lc->dy, lc->t[1].grad, 0, e);
}

START_TEST(residual_add) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {.ctx = &ctx, .forward = add_fwd, .backward = add_bwd};
    add_probe(&lc, "a", 30, -1, 1, 41, 1);
    add_probe(&lc, "b", 30, -1, 1, 42, 1);
    check_gradients(&lc, 30, 1e-2);
    close_case(&lc);
}
END_TEST

/* Every activation against its formula in double, forward and backward (written and added), on
 * 37 elements: whole vectors and a tail on the CPU class (16 per work-item there), and inputs
 * on both sides of softplus's threshold. */
START_TEST(activations_match_formulas) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    enum { N = 37 };
    float x[N], dy[N], base[N], y[N], g[N], ga[N];
    unsigned s = 5;
    for (int i = 0; i < N; i++)
        x[i] = i % 9 == 4 ? urand(&s, 19, 23) : urand(&s, -8, 8), dy[i] = urand(&s, -1, 1),
        base[i] = (float)i;
    cl_mem dx_ = dev_buf(&ctx, N), ddy = dev_buf(&ctx, N), dout = dev_buf(&ctx, N);
    upload(&ctx, dx_, x, N);
    upload(&ctx, ddy, dy, N);
    rc_err e;
    const rc_activation acts[3] = {RC_ACTIVATION_RELU, RC_ACTIVATION_SOFTPLUS, RC_ACTIVATION_SILU};
    for (int a = 0; a < 3; a++) {
        ck_assert_msg(rc_act_forward(&ctx, acts[a], N, dx_, dout, &e) == 0, "%s", e.msg);
        download(&ctx, dout, y, N);
        ck_assert_msg(rc_act_backward(&ctx, acts[a], N, dx_, ddy, dout, 0, &e) == 0, "%s", e.msg);
        download(&ctx, dout, g, N);
        upload(&ctx, dout, base, N);
        ck_assert_msg(rc_act_backward(&ctx, acts[a], N, dx_, ddy, dout, 1, &e) == 0, "%s", e.msg);
        download(&ctx, dout, ga, N);
        for (int i = 0; i < N; i++) {
            double v = x[i], sg = 1 / (1 + exp(-v)), want_y, want_g;
            if (a == 0) want_y = v > 0 ? v : 0, want_g = v > 0 ? dy[i] : 0;
            else if (a == 1) want_y = v > 20 ? v : log1p(exp(v)), want_g = v > 20 ? dy[i] : dy[i] * sg;
            else want_y = v * sg, want_g = dy[i] * sg * (1 + v * (1 - sg));
            ck_assert_msg(fabs(y[i] - want_y) <= 1e-6 * (1 + fabs(want_y)) &&
                              fabs(g[i] - want_g) <= 1e-6 * (1 + fabs(want_g)) &&
                              fabs(ga[i] - (base[i] + want_g)) <= 1e-5 * (1 + fabs(base[i])),
                          "activation %d, element %d (x %g): y %g (want %g), dx %g (want %g), "
                          "added %g (want %g)",
                          a, i, v, y[i], want_y, g[i], want_g, ga[i], base[i] + want_g);
        }
    }
    clReleaseMemObject(dx_);
    clReleaseMemObject(ddy);
    clReleaseMemObject(dout);
    rc_ctx_close(&ctx);
}
END_TEST

/* Accumulating backward adds to what is there instead of overwriting it. */
START_TEST(accumulate_adds) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    float x[16], dy[16], base[16], got[16];
    unsigned s = 3;
    for (int i = 0; i < 16; i++) x[i] = urand(&s, -2, 2), dy[i] = urand(&s, -1, 1), base[i] = i;
    cl_mem dx_ = dev_buf(&ctx, 16), ddy = dev_buf(&ctx, 16), ddx = dev_buf(&ctx, 16);
    upload(&ctx, dx_, x, 16);
    upload(&ctx, ddy, dy, 16);
    rc_err e;
    const rc_activation acts[3] = {RC_ACTIVATION_RELU, RC_ACTIVATION_SOFTPLUS, RC_ACTIVATION_SILU};
    for (int a = 0; a < 3; a++) {
        upload(&ctx, ddx, base, 16);
        ck_assert(rc_act_backward(&ctx, acts[a], 16, dx_, ddy, ddx, 1, &e) == 0);
        download(&ctx, ddx, got, 16);
        for (int i = 0; i < 16; i++) {
            double s = 1 / (1 + exp(-x[i]));
            double g = a == 2 ? dy[i] * s * (1 + x[i] * (1 - s))
                       : a    ? dy[i] * s
                              : (x[i] > 0 ? dy[i] : 0);
            ck_assert_double_eq_tol(got[i], base[i] + g, 1e-5);
        }
    }
    /* input normalisation: 2 images of 2 channels of 4 */
    const float std[2] = {0.25f, 2.0f};
    cl_mem dstd = dev_from(&ctx, std, 2);
    upload(&ctx, ddx, base, 16);
    ck_assert(rc_normalize_backward(&ctx, 2, 2, 4, dstd, ddy, ddx, 1, &e) == 0);
    download(&ctx, ddx, got, 16);
    for (int i = 0; i < 16; i++)
        ck_assert_double_eq_tol(got[i], base[i] + dy[i] / std[i / 4 % 2], 1e-5);
    clReleaseMemObject(dstd);
    clReleaseMemObject(dx_);
    clReleaseMemObject(ddy);
    clReleaseMemObject(ddx);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- linear and loss ------------------------------------------------------------------------ */

static int lin_fwd(layer_case *lc, rc_err *e) {
    return rc_linear_forward(lc->ctx, lc->n, lc->in, lc->out, lc->t[0].dev, lc->t[1].dev,
                             lc->t[2].dev, lc->y, e);
}
static int lin_bwd(layer_case *lc, rc_err *e) {
    return rc_linear_backward(lc->ctx, lc->n, lc->in, lc->out, lc->t[0].dev, lc->t[1].dev, lc->dy,
                              lc->t[0].grad, 0, lc->t[1].grad, lc->t[2].grad, 0, e);
}

START_TEST(linear) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    layer_case lc = {
        .ctx = &ctx, .forward = lin_fwd, .backward = lin_bwd, .n = 3, .in = 7, .out = 5};
    add_probe(&lc, "x", 21, -1, 1, 51, 1);
    add_probe(&lc, "weight", 35, -0.5f, 0.5f, 52, 1);
    add_probe(&lc, "bias", 5, -0.5f, 0.5f, 53, 1);
    check_gradients(&lc, 15, 1e-2);
    close_case(&lc);
}
END_TEST

/* The loss is the layer's output: L = mean CE, so r = 1 on a single output. */

START_TEST(cross_entropy) {
    cl_mem ce_labels, ce_loss, ce_correct;
    rc_ctx ctx;
    test_open_ctx(&ctx);
    const int n = 4, k = 6;
    int labels[4] = {0, 5, 2, 2};
    float z[24];
    unsigned s = 61;
    for (int i = 0; i < 24; i++) z[i] = urand(&s, -3, 3);
    z[2 * 6 + 2] = 10; /* sample 2 is classified correctly */
    cl_mem dz = dev_buf(&ctx, 24), dgrad = dev_buf(&ctx, 24);
    rc_err e;
    ce_labels = dev_from_bytes(&ctx, labels, sizeof labels);
    ce_loss = dev_buf(&ctx, 4);
    ce_correct = dev_buf(&ctx, 4);
    double base = 0;
    float loss[4], correct[4], g[24];
    upload(&ctx, dz, z, 24);
    ck_assert(rc_ce_forward_backward(&ctx, n, k, dz, ce_labels, ce_loss, ce_correct, dgrad, &e) ==
              0);
    download(&ctx, ce_loss, loss, 4);
    download(&ctx, ce_correct, correct, 4);
    download(&ctx, dgrad, g, 24);
    for (int i = 0; i < n; i++) {
        double mx = -1e30, sum = 0;
        int arg = 0;
        for (int j = 0; j < k; j++)
            if (z[i * k + j] > mx) mx = z[i * k + j], arg = j;
        for (int j = 0; j < k; j++) sum += exp(z[i * k + j] - mx);
        double want = mx + log(sum) - z[i * k + labels[i]];
        ck_assert_double_eq_tol(loss[i], want, 1e-5);
        ck_assert_double_eq(correct[i], arg == labels[i] ? 1.0 : 0.0);
        base += want / n;
    }
    ck_assert_double_eq(correct[2], 1.0);
    (void)base;
    for (int idx = 0; idx < 24; idx++) {
        const float h = 1e-2f;
        double f[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            float zz[24];
            memcpy(zz, z, sizeof zz);
            zz[idx] += sgn ? -h : h;
            upload(&ctx, dz, zz, 24);
            ck_assert(rc_ce_forward_backward(&ctx, n, k, dz, ce_labels, ce_loss, ce_correct, NULL,
                                             &e) == 0);
            download(&ctx, ce_loss, loss, 4);
            f[sgn] = 0;
            for (int i = 0; i < n; i++) f[sgn] += loss[i] / n;
        }
        double fd = (f[0] - f[1]) / (2 * h);
        ck_assert_msg(fabs(fd - g[idx]) < 1e-3 + 1e-2 * fabs(fd), "dz[%d]: %g vs fd %g", idx,
                      g[idx], fd);
    }
    cl_mem all[] = {dz, dgrad, ce_labels, ce_loss, ce_correct};
    for (size_t i = 0; i < 5; i++) clReleaseMemObject(all[i]);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- fused eval-mode convolution block ------------------------------------------------------
 * The implicit-GEMM paths of the eval-mode fused model (CPU devices) against the layers they
 * replace, which the finite-difference tests above verify: x = relu(bn0(t)) feeds y =
 * relu(bn1(conv(x))); forward y, the gradient at conv's output in its padded or [C][N*P] layout,
 * the masked input gradient (at t, [C][N*P] and padded) and the plain one added to what dx
 * holds. Widths of 8 and more take the data gradient's vector epilogue. */

static float *rand_host(size_t n, float lo, float hi, unsigned seed) {
    float *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = urand(&seed, lo, hi);
    return h;
}

static cl_mem rand_dev(rc_ctx *ctx, size_t n, float lo, float hi, unsigned seed) {
    float *h = rand_host(n, lo, hi, seed);
    cl_mem b = dev_from(ctx, h, n);
    free(h);
    return b;
}

static rc_bn_buffers eval_bn(rc_ctx *ctx, int c, unsigned seed) {
    return (rc_bn_buffers){.gamma = rand_dev(ctx, (size_t)c, 0.5f, 1.5f, seed),
                           .beta = rand_dev(ctx, (size_t)c, -0.5f, 0.5f, seed + 1),
                           .running_mean = rand_dev(ctx, (size_t)c, -0.3f, 0.3f, seed + 2),
                           .running_var = rand_dev(ctx, (size_t)c, 0.5f, 2.0f, seed + 3)};
}

static void release_bn(rc_bn_buffers *b) {
    cl_mem all[] = {b->gamma, b->beta, b->running_mean, b->running_var};
    for (int i = 0; i < 4; i++) clReleaseMemObject(all[i]);
}

/* got (read through layout l) against want (NCHW [n][c][h][w]) */
static void compare_layout(rc_ctx *ctx, const char *what, cl_mem got, const rc_grad_layout *l,
                           cl_mem want, int n, int c, int h, int w) {
    size_t nw = (size_t)n * c * h * w, ng = (size_t)(n - 1) * l->n_stride +
                                              (size_t)(c - 1) * l->c_stride +
                                              (size_t)(h - 1) * l->row_stride + (size_t)w;
    if (l->padded) ng = (size_t)n * l->n_stride;
    float *g = malloc(ng * sizeof *g), *r = malloc(nw * sizeof *r);
    download(ctx, got, g, ng);
    download(ctx, want, r, nw);
    double maxref = 0;
    for (size_t i = 0; i < nw; i++) maxref = fmax(maxref, fabs(r[i]));
    for (int a = 0; a < n; a++)
        for (int b = 0; b < c; b++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    float v = g[(size_t)a * l->n_stride + (size_t)b * l->c_stride +
                                (size_t)y * l->row_stride + x];
                    float ref = r[(((size_t)a * c + b) * h + y) * w + x];
                    ck_assert_msg(fabs(v - ref) <= 1e-5 * fmax(maxref, 1.0), "%s[%d][%d][%d][%d]: "
                                  "%.8g, layers %.8g", what, a, b, y, x, v, ref);
                }
    if (l->padded) /* zeros where the data gradient reads whole vectors */
        for (int a = 0; a < n; a++)
            for (int b = 0; b < c; b++)
                for (int q = 0; q < l->c_stride; q++)
                    if (q >= h * l->row_stride || q % l->row_stride >= w)
                        ck_assert_msg(g[(size_t)a * l->n_stride + (size_t)b * l->c_stride + q] ==
                                          0.0f, "%s: padding [%d][%d] + %d is not zero", what, a,
                                      b, q);
    free(g);
    free(r);
}

/* same: padding (0, 1) as DeepMind's WideResNet, not 1 all round */
static void fused_case(int n, int c, int hw, int oc, int stride, int same) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    rc_conv_shape s;
    rc_conv_shape_init(&s, n, c, hw, hw, oc, 3, stride, same ? 0 : 1);
    rc_conv_shape_pad_after(&s, same);
    if (rc_conv_implicit_ok(&ctx, &s, 0, &e) != 1 || rc_conv_implicit_ok(&ctx, &s, 1, &e) != 1) {
        rc_ctx_close(&ctx); /* not the own GEMM (e.g. a GPU): the model never fuses there */
        return;
    }
    const size_t nx = (size_t)n * c * hw * hw, ny = (size_t)n * oc * s.oh * s.ow;
    rc_workspace ws;
    size_t col, z;
    rc_conv_workspace_need(&s, &col, &z);
    ck_assert_msg(rc_workspace_alloc(&ctx, &ws, col, z, &e) == 0, "%s", e.msg);
    rc_bn_buffers bn0 = eval_bn(&ctx, c, 40), bn1 = eval_bn(&ctx, oc, 50);
    cl_mem t = rand_dev(&ctx, nx, -1, 1, 31), w = rand_dev(&ctx, (size_t)oc * c * 9, -.3f, .3f, 32);
    cl_mem g = rand_dev(&ctx, ny, -1, 1, 33), u0 = dev_buf(&ctx, nx), x = dev_buf(&ctx, nx);
    cl_mem zz = dev_buf(&ctx, ny), u1 = dev_buf(&ctx, ny), y = dev_buf(&ctx, ny);
    cl_mem yf = dev_buf(&ctx, ny), du = dev_buf(&ctx, ny), dz = dev_buf(&ctx, ny);
    cl_mem dx = dev_buf(&ctx, nx), du0 = dev_buf(&ctx, nx), dt = dev_buf(&ctx, nx);
    rc_grad_layout l;
    ck_assert_msg(rc_conv_dz_layout(&ctx, &s, &l, &e) == 0, "%s", e.msg);
    /* the padded layout of a convolution that would have produced t */
    rc_conv_shape prev;
    rc_grad_layout lp;
    rc_conv_shape_init(&prev, n, 3, 2 * hw, 2 * hw, c, 3, 2, 1);
    ck_assert_msg(rc_conv_dz_layout(&ctx, &prev, &lp, &e) == 0 && lp.padded, "%s", e.msg);
    cl_mem dzf = dev_buf(&ctx, (size_t)n * l.n_stride), dtf = dev_buf(&ctx, nx);
    cl_mem dtp = dev_buf(&ctx, (size_t)n * lp.n_stride);
    float *pre = rand_host(nx, -1, 1, 34);
    cl_mem dxf = dev_buf(&ctx, nx);
    upload(&ctx, dxf, pre, nx);
    /* the layers */
    ck_assert_msg(rc_bn_forward(&ctx, 0, n, c, hw * hw, t, u0, &bn0, &e) == 0 &&
                      rc_act_forward(&ctx, RC_ACTIVATION_RELU, nx, u0, x, &e) == 0 &&
                      rc_conv_forward(&ctx, &s, x, w, NULL, zz, &ws, &e) == 0 &&
                      rc_bn_forward(&ctx, 0, n, oc, s.oh * s.ow, zz, u1, &bn1, &e) == 0 &&
                      rc_act_forward(&ctx, RC_ACTIVATION_RELU, ny, u1, y, &e) == 0 &&
                      rc_act_backward(&ctx, RC_ACTIVATION_RELU, ny, u1, g, du, 0, &e) == 0 &&
                      rc_bn_backward(&ctx, 0, n, oc, s.oh * s.ow, zz, du, dz, 0, NULL, NULL,
                                     &bn1, &e) == 0 &&
                      rc_conv_backward(&ctx, &s, x, w, dz, dx, 0, NULL, NULL, 0, &ws, &e) == 0 &&
                      rc_act_backward(&ctx, RC_ACTIVATION_RELU, nx, u0, dx, du0, 0, &e) == 0 &&
                      rc_bn_backward(&ctx, 0, n, c, hw * hw, t, du0, dt, 0, NULL, NULL, &bn0,
                                     &e) == 0,
                  "%s", e.msg);
    /* fused */
    rc_grad_layout cnp = rc_layout_cnp(n, hw, hw), nchw = rc_layout_nchw(c, hw, hw);
    rc_grad_layout ynchw = rc_layout_nchw(oc, s.oh, s.ow);
    ck_assert_msg(rc_conv_implicit_forward(&ctx, &s, x, w, &bn1, yf, &e) == 0 &&
                      rc_bn_relu_backward_eval(&ctx, n, oc, s.oh, s.ow, yf, g, dzf, &l, &bn1,
                                               &e) == 0 &&
                      rc_conv_backward_dz(&ctx, &s, x, w, dzf, dtf, &cnp, 0, &bn0, &ws, &e) == 0 &&
                      rc_conv_backward_dz(&ctx, &s, x, w, dzf, dtp, &lp, 0, &bn0, &ws, &e) == 0 &&
                      rc_conv_backward_dz(&ctx, &s, x, w, dzf, dxf, &nchw, 1, NULL, &ws, &e) == 0,
                  "%s", e.msg);
    compare_layout(&ctx, "forward", yf, &ynchw, y, n, oc, s.oh, s.ow);
    compare_layout(&ctx, "output gradient", dzf, &l, dz, n, oc, s.oh, s.ow);
    compare_layout(&ctx, "masked input gradient", dtf, &cnp, dt, n, c, hw, hw);
    compare_layout(&ctx, "masked input gradient, padded", dtp, &lp, dt, n, c, hw, hw);
    /* dx + pre */
    float *h = malloc(nx * sizeof *h);
    download(&ctx, dx, h, nx);
    for (size_t i = 0; i < nx; i++) h[i] += pre[i];
    upload(&ctx, dx, h, nx);
    compare_layout(&ctx, "accumulated input gradient", dxf, &nchw, dx, n, c, hw, hw);
    free(h);
    free(pre);
    cl_mem all[] = {t, w, g, u0, x, zz, u1, y, yf, du, dz, dx, du0, dt, dzf, dtf, dtp, dxf};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) clReleaseMemObject(all[i]);
    release_bn(&bn0);
    release_bn(&bn1);
    rc_workspace_free(&ws);
    rc_ctx_close(&ctx);
}

START_TEST(fused_block_stride2_odd) { fused_case(2, 16, 19, 8, 2, 0); }
END_TEST
START_TEST(fused_block_stride1_ragged) { fused_case(3, 17, 6, 5, 1, 0); }
END_TEST
START_TEST(fused_block_wide) { fused_case(2, 24, 8, 40, 2, 0); }
END_TEST
START_TEST(fused_block_one_channel) { fused_case(2, 1, 18, 6, 1, 0); }
END_TEST
START_TEST(fused_block_stride2_pad_after) { fused_case(2, 16, 16, 24, 2, 1); }
END_TEST

/* ---- work-group size ---------------------------------------------------------------------
 * The reducing kernels (batch-norm statistics and backward partial sums, average pooling, the
 * convolution bias gradient) run one work-group per reduction on the GPU class. Their results
 * must not depend on the work-group size: sizes 1 and 16 (ctx.testing.group_size, each in a
 * fresh context) give the bits the default size gives. Planes of 289 and bias rows of 288 floats
 * take more than RC_LANES elements per lane pass. Trivially so on the CPU class. */

typedef struct out_buf {
    cl_mem buf;
    size_t n;
} out_buf;

/* What the train-mode batch norm, the pooling and a convolution with bias write, forward and
 * backward, with work-groups of group_size (0: the default); *n floats, malloc'ed. */
static float *reductions_at_group_size(unsigned group_size, size_t *n_out) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    ctx.testing.group_size = group_size;
    rc_err e;
    const int n = 3, c = 4, hw = 17 * 17;
    const size_t nx = (size_t)n * c * hw, nc = (size_t)n * c;
    rc_bn_buffers b = eval_bn(&ctx, c, 70);
    b.mean = dev_buf(&ctx, (size_t)c), b.invstd = dev_buf(&ctx, (size_t)c);
    b.part_a = dev_buf(&ctx, nc), b.part_b = dev_buf(&ctx, nc);
    cl_mem x = rand_dev(&ctx, nx, -2, 2, 71), dy = rand_dev(&ctx, nx, -1, 1, 72);
    rc_conv_shape s;
    rc_conv_shape_init(&s, 2, 3, 12, 12, 4, 3, 1, 1);
    const size_t ncx = (size_t)s.n * s.c * s.h * s.w, ncy = (size_t)s.n * s.oc * s.oh * s.ow;
    rc_workspace ws;
    size_t col, z;
    rc_conv_workspace_need(&s, &col, &z);
    ck_assert_msg(rc_workspace_alloc(&ctx, &ws, col, z, &e) == 0, "%s", e.msg);
    const size_t nw = (size_t)s.oc * s.c * 9, nb = (size_t)s.oc;
    cl_mem cx = rand_dev(&ctx, ncx, -1, 1, 73), w = rand_dev(&ctx, nw, -.5f, .5f, 74);
    cl_mem bias = rand_dev(&ctx, nb, -.5f, .5f, 75), cdy = rand_dev(&ctx, ncy, -1, 1, 76);
    cl_mem y = dev_buf(&ctx, nx), dx = dev_buf(&ctx, nx), dgamma = dev_buf(&ctx, (size_t)c);
    cl_mem dbeta = dev_buf(&ctx, (size_t)c), pooled = dev_buf(&ctx, nc);
    cl_mem cy = dev_buf(&ctx, ncy), cdx = dev_buf(&ctx, ncx), cdw = dev_buf(&ctx, nw);
    cl_mem cdb = dev_buf(&ctx, nb);
    ck_assert_msg(rc_bn_forward(&ctx, 1, n, c, hw, x, y, &b, &e) == 0 &&
                      rc_bn_backward(&ctx, 1, n, c, hw, x, dy, dx, 0, dgamma, dbeta, &b, &e) == 0 &&
                      rc_gap_forward(&ctx, n, c, hw, x, pooled, &e) == 0 &&
                      rc_conv_forward(&ctx, &s, cx, w, bias, cy, &ws, &e) == 0 &&
                      rc_conv_backward(&ctx, &s, cx, w, cdy, cdx, 0, cdw, cdb, 0, &ws, &e) == 0,
                  "group size %u: %s", group_size, e.msg);
    const size_t cc = (size_t)c;
    const out_buf out[] = {{y, nx},      {dx, nx},       {dgamma, cc},         {dbeta, cc},
                           {b.mean, cc}, {b.invstd, cc}, {b.running_mean, cc}, {b.running_var, cc},
                           {pooled, nc}, {cy, ncy},      {cdx, ncx},           {cdw, nw},
                           {cdb, nb}};
    const size_t nout = sizeof out / sizeof *out;
    size_t total = 0;
    for (size_t i = 0; i < nout; i++) total += out[i].n;
    float *h = malloc(total * sizeof *h), *p = h;
    for (size_t i = 0; i < nout; i++) {
        download(&ctx, out[i].buf, p, out[i].n);
        p += out[i].n;
        clReleaseMemObject(out[i].buf);
    }
    cl_mem all[] = {b.gamma, b.beta, b.part_a, b.part_b, x, dy, cx, w, bias, cdy};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) clReleaseMemObject(all[i]);
    rc_workspace_free(&ws);
    rc_ctx_close(&ctx);
    *n_out = total;
    return h;
}

START_TEST(reductions_independent_of_group_size) {
    size_t n_ref, n;
    float *ref = reductions_at_group_size(0, &n_ref);
    const unsigned sizes[] = {1, 16};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        float *got = reductions_at_group_size(sizes[k], &n);
        ck_assert_uint_eq(n, n_ref);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(memcmp(&got[i], &ref[i], sizeof *ref) == 0,
                          "group size %u: output float %zu is %.9g, default size %.9g", sizes[k], i,
                          got[i], ref[i]);
        free(got);
    }
    free(ref);
}
END_TEST

int main(void) {
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("layers");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, conv3x3_stride1_bias);
    tcase_add_test(tc, conv3x3_stride2_odd);
    tcase_add_test(tc, conv1x1_stride2_shortcut);
    tcase_add_test(tc, conv5x5_nonsquare_channels);
    tcase_add_test(tc, conv3x3_stride2_pad_after);
    tcase_add_test(tc, batchnorm_train);
    tcase_add_test(tc, batchnorm_eval);
    tcase_add_test(tc, batchnorm_running_stats);
    tcase_add_test(tc, relu);
    tcase_add_test(tc, softplus);
    tcase_add_test(tc, softplus_above_threshold);
    tcase_add_test(tc, silu);
    tcase_add_test(tc, silu_tails);
    tcase_add_test(tc, activations_match_formulas);
    tcase_add_test(tc, input_normalisation);
    tcase_add_test(tc, global_avg_pool);
    tcase_add_test(tc, residual_add);
    tcase_add_test(tc, accumulate_adds);
    tcase_add_test(tc, linear);
    tcase_add_test(tc, cross_entropy);
    tcase_add_test(tc, fused_block_stride2_odd);
    tcase_add_test(tc, fused_block_stride1_ragged);
    tcase_add_test(tc, fused_block_wide);
    tcase_add_test(tc, fused_block_one_channel);
    tcase_add_test(tc, fused_block_stride2_pad_after);
    tcase_add_test(tc, reductions_independent_of_group_size);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
