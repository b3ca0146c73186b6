/* APGD and the robust evaluation: feasibility (every adversarial example lies in its eps-ball and
 * in [0,1]), monotonicity (the best loss never falls below the clean loss; robust accuracy does
 * not increase with eps), optimality on a linear classifier where the best l_inf, l_2 and l_1
 * attacks have closed forms, and chance accuracy for an untrained model. */
#include "attackutil.h"
#include "ramp/apgd.h"
#include "ramp/eval.h"

#include <math.h>
#include <sys/stat.h>

START_TEST(adversarial_examples_stay_in_ball_and_box) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    float x[4 * 784];
    int32_t y[4];
    fixture_model(&ctx, &m, x, y);
    rc_apgd a;
    rc_err e;
    ck_assert_msg(rc_apgd_alloc(&ctx, &a, 4, 784, 20, &e) == 0, "%s", e.msg);
    upload_bytes(&ctx, a.x, x, sizeof x);
    upload_bytes(&ctx, a.labels, y, sizeof y);
    static const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    static const float eps[3] = {0.1f, 1.5f, 10.0f};
    float clean_loss[4], adv[4 * 784], loss_best[4];
    ck_assert(rc_apgd_loss_grad(&ctx, &a, &m, RC_LOSS_CE, a.x, 4, 0, a.g, &e) == 0);
    download_bytes(&ctx, a.loss, clean_loss, sizeof clean_loss);
    for (int t = 0; t < 3; t++)
        for (int mode = 0; mode < 3; mode++) { /* APGD eval, APGD training, plain PGD */
            rc_apgd_opts o = {.norm = norms[t], .eps = eps[t], .n_iter = 20, .loss = RC_LOSS_CE,
                              .train = mode == 1, .pgd = mode == 2};
            ck_assert_msg(rc_apgd_run(&ctx, &a, &m, &o, 4, 0, &e) == 0, "%s", e.msg);
            download_bytes(&ctx, a.x_best, adv, sizeof adv);
            check_feasible("x_best", norms[t], eps[t], x, adv, 4, 784);
            download_bytes(&ctx, a.x_best_adv, adv, sizeof adv);
            check_feasible("x_best_adv", norms[t], eps[t], x, adv, 4, 784);
            download_bytes(&ctx, a.loss_best, loss_best, sizeof loss_best);
            for (int i = 0; i < 4; i++)
                ck_assert_msg(loss_best[i] >= clean_loss[i], "%s sample %d: best loss %g below "
                              "clean loss %g", rc_norm_name(norms[t]), i, loss_best[i],
                              clean_loss[i]);
        }
    rc_apgd_free(&a);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- a linear two-class classifier: margins and their optimum ------------------------------ */

#define LD 16
#define LN 8

typedef struct linear_case {
    float w[2 * LD], b[2];
    float x[LN * LD];
    int32_t y[LN];
} linear_case;

static void make_linear(rc_ctx *ctx, rc_model *m, linear_case *c, unsigned seed) {
    rc_model_opts o = {.arch = RC_ARCH_LINEAR, .activation = RC_ACTIVATION_RELU, .width = 1,
                       .in_channels = 1, .num_classes = 2, .input_size = 4};
    rc_err e;
    ck_assert_msg(rc_model_create(ctx, m, &o, LN, &e) == 0, "%s", e.msg);
    for (int j = 0; j < 2 * LD; j++) c->w[j] = urand(&seed, -0.5f, 0.5f);
    c->b[0] = 0.1f, c->b[1] = -0.1f;
    ck_assert(rc_param_write(ctx, rc_model_param(m, "linear.weight"), c->w, &e) == 0);
    ck_assert(rc_param_write(ctx, rc_model_param(m, "linear.bias"), c->b, &e) == 0);
    for (int i = 0; i < LN * LD; i++) c->x[i] = urand(&seed, 0.2f, 0.8f);
    for (int i = 0; i < LN; i++) { /* label = the clean prediction, so every point starts correct */
        double z0 = c->b[0], z1 = c->b[1];
        for (int j = 0; j < LD; j++) {
            z0 += c->w[j] * c->x[i * LD + j];
            z1 += c->w[LD + j] * c->x[i * LD + j];
        }
        c->y[i] = z1 > z0;
    }
}

/* margin z_y - z_other of sample i at point p */
static double margin(const linear_case *c, int i, const float *p) {
    int y = c->y[i], o = 1 - y;
    double m = c->b[y] - c->b[o];
    for (int j = 0; j < LD; j++) m += (double)(c->w[y * LD + j] - c->w[o * LD + j]) * p[j];
    return m;
}

/* The smallest margin over the ball and the box: separable for l_inf, radial for l_2 (the
 * points stay well inside the box), a fractional knapsack (greedy by |u_j|) for l_1. */
static double optimal_margin(const linear_case *c, int i, rc_norm norm, double eps) {
    int y = c->y[i], o = 1 - y;
    const float *x = c->x + i * LD;
    double u[LD], m = margin(c, i, x), s = 0;
    for (int j = 0; j < LD; j++) u[j] = c->w[y * LD + j] - c->w[o * LD + j];
    if (norm == RC_NORM_LINF) {
        for (int j = 0; j < LD; j++) {
            double room = u[j] > 0 ? x[j] : 1 - x[j];
            s += fabs(u[j]) * fmin(eps, room);
        }
        return m - s;
    }
    if (norm == RC_NORM_L2) {
        for (int j = 0; j < LD; j++) s += u[j] * u[j];
        return m - eps * sqrt(s);
    }
    int used[LD] = {0};
    double budget = eps;
    for (int step = 0; step < LD && budget > 0; step++) {
        int best = -1;
        for (int j = 0; j < LD; j++)
            if (!used[j] && (best < 0 || fabs(u[j]) > fabs(u[best]))) best = j;
        used[best] = 1;
        double room = u[best] > 0 ? x[best] : 1 - x[best], move = fmin(room, budget);
        m -= fabs(u[best]) * move;
        budget -= move;
    }
    return m;
}

START_TEST(linear_classifier_attacks_reach_the_optimum) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    linear_case c;
    make_linear(&ctx, &m, &c, 99);
    rc_apgd a;
    rc_err e;
    ck_assert_msg(rc_apgd_alloc(&ctx, &a, LN, LD, 100, &e) == 0, "%s", e.msg);
    upload_bytes(&ctx, a.x, c.x, sizeof c.x);
    upload_bytes(&ctx, a.labels, c.y, sizeof c.y);
    static const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    /* radii small enough that the optimum stays inside the box (points lie in [0.2, 0.8]) */
    static const float eps[3] = {0.1f, 0.15f, 0.15f};
    float best[LN * LD];
    for (int t = 0; t < 3; t++) {
        rc_apgd_opts o = {.norm = norms[t], .eps = eps[t], .n_iter = 100, .loss = RC_LOSS_CE};
        ck_assert_msg(rc_apgd_run(&ctx, &a, &m, &o, LN, 0, &e) == 0, "%s", e.msg);
        download_bytes(&ctx, a.x_best, best, sizeof best);
        check_feasible("linear x_best", norms[t], eps[t], c.x, best, LN, LD);
        for (int i = 0; i < LN; i++) {
            double m0 = margin(&c, i, c.x + i * LD), got = margin(&c, i, best + i * LD);
            double opt = optimal_margin(&c, i, norms[t], eps[t]);
            /* l_1: the reference's sparse step has a fixed point here. The optimum of a linear
             * model puts the whole budget on one coordinate, but once x_best has two nonzero
             * coordinates, topk = 2/d/1.5 selects the top two again (idx = floor(d - 4/3)), the
             * step moves both equally and the projection shrinks both equally. Measured: 90% of
             * the optimal margin reduction on this case, so l_1 is held to 85%, l_inf and l_2
             * to 99%. */
            const double need = norms[t] == RC_NORM_L1 ? 0.85 : 0.99;
            ck_assert_msg(m0 - got >= need * (m0 - opt) - 1e-6,
                          "%s sample %d: margin %.6f -> %.6f, optimum %.6f (reached %.2f%%)",
                          rc_norm_name(norms[t]), i, m0, got, opt,
                          100 * (m0 - got) / (m0 - opt));
        }
    }
    rc_apgd_free(&a);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* APGD's per-sample kernels (one work-group per sample on the GPU class) give bit-identical
 * results with the work-group size forced to 1, 16 and the default, each in its own context
 * (set before the first launch): l_inf with checkpoints, l_2, l_1 with the sparsity adaptation. */
START_TEST(results_do_not_depend_on_the_group_size) {
    static const unsigned sizes[3] = {1, 16, 0};
    static const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    static const float eps[3] = {0.1f, 0.15f, 0.15f};
    enum { PER_NORM = 2 * LN * LD + 2 * LN };
    static float r[3][3 * PER_NORM];
    for (int k = 0; k < 3; k++) {
        rc_ctx ctx;
        test_open_ctx(&ctx);
        ctx.testing.group_size = sizes[k]; /* before the first launch */
        rc_model m;
        linear_case c;
        make_linear(&ctx, &m, &c, 7);
        rc_apgd a;
        rc_err e;
        ck_assert_msg(rc_apgd_alloc(&ctx, &a, LN, LD, 30, &e) == 0, "%s", e.msg);
        upload_bytes(&ctx, a.x, c.x, sizeof c.x);
        upload_bytes(&ctx, a.labels, c.y, sizeof c.y);
        for (int t = 0; t < 3; t++) {
            rc_apgd_opts o = {.norm = norms[t], .eps = eps[t], .n_iter = 30, .loss = RC_LOSS_CE};
            ck_assert_msg(rc_apgd_run(&ctx, &a, &m, &o, LN, 0, &e) == 0, "%s", e.msg);
            float *out = r[k] + t * PER_NORM;
            download_bytes(&ctx, a.x_best, out, LN * LD * sizeof(float));
            download_bytes(&ctx, a.x_best_adv, out + LN * LD, LN * LD * sizeof(float));
            download_bytes(&ctx, a.loss_best, out + 2 * LN * LD, LN * sizeof(float));
            download_bytes(&ctx, a.acc, out + 2 * LN * LD + LN, LN * sizeof(float));
        }
        rc_apgd_free(&a);
        rc_model_free(&m);
        rc_ctx_close(&ctx);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3 * PER_NORM; i++)
            ck_assert_msg(memcmp(&r[k][i], &r[2][i], sizeof(float)) == 0,
                          "%s [%d]: %.9g with work-groups of %u, %.9g by default",
                          rc_norm_name(norms[i / PER_NORM]), i % PER_NORM, (double)r[k][i],
                          sizes[k], (double)r[2][i]);
}
END_TEST

START_TEST(robust_accuracy_does_not_increase_with_eps) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    linear_case c;
    make_linear(&ctx, &m, &c, 7);
    /* labels from the quantised pixels the evaluation will see */
    rc_dataset d;
    make_dataset(&d, LN, 1, 4, 2, c.x, c.y);
    for (int i = 0; i < LN * LD; i++) c.x[i] = d.pixels[i] / 255.0f;
    for (int i = 0; i < LN; i++)
        d.labels[i] = (uint8_t)(margin(&c, i, c.x + i * LD) >= 0 ? c.y[i] : 1 - c.y[i]);
    static const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    static const double scale[3] = {0.05, 0.1, 0.5};
    for (int t = 0; t < 3; t++) {
        double prev = 2;
        for (int k = 1; k <= 6; k++) {
            rc_threat th = {.norm = norms[t], .eps = scale[t] * k, .steps = 10,
                            .eval_eps = scale[t] * k};
            rc_eval_report r;
            rc_err e;
            ck_assert_msg(rc_eval_robust(&ctx, &m, &d, LN, &th, 1, RC_PROTOCOL_FAST, 0, LN,
                                         RC_PROGRESS_QUIET,
                                         &r, &e) == 0, "%s", e.msg);
            ck_assert_double_eq(r.clean_acc, 1.0);
            ck_assert_msg(r.acc[0] <= prev, "%s: robust accuracy %g at eps %g above %g at a "
                          "smaller eps", rc_norm_name(norms[t]), r.acc[0], th.eps, prev);
            ck_assert(r.union_acc <= r.acc[0] && r.acc[0] <= r.clean_acc);
            prev = r.acc[0];
            rc_eval_report_free(&r);
        }
        ck_assert_msg(prev < 1.0, "%s: no point broken even at the largest eps",
                      rc_norm_name(norms[t]));
    }
    rc_dataset_free(&d);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(untrained_model_is_at_chance) {
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
        fprintf(stderr, "note: Fashion-MNIST not installed; chance-accuracy test not run\n");
        return;
    }
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_dataset test;
    rc_err e;
    ck_assert_msg(rc_dataset_load_mnist_dir(&test, "/usr/share/datasets/fashion-mnist", 0, 1000,
                                            &e) == 0, "%s", e.msg);
    rc_model m;
    rc_model_opts o;
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, 28);
    ck_assert(rc_model_create(&ctx, &m, &o, 250, &e) == 0);
    ck_assert(rc_model_init(&ctx, &m, 3, &e) == 0);
    rc_threat th = {.norm = RC_NORM_LINF, .eps = 0.1, .steps = 10, .eval_eps = 0.1};
    rc_eval_report r;
    ck_assert_msg(rc_eval_robust(&ctx, &m, &test, 1000, &th, 1, RC_PROTOCOL_FAST, 0, 250,
                                 RC_PROGRESS_QUIET,
                                 &r, &e) == 0, "%s", e.msg);
    ck_assert_msg(r.clean_acc > 0.03 && r.clean_acc < 0.2, "untrained clean accuracy %g",
                  r.clean_acc);
    ck_assert(r.acc[0] <= r.clean_acc);
    rc_eval_report_free(&r);
    rc_model_free(&m);
    rc_dataset_free(&test);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("apgd");
    TCase *tc = tcase_create("apgd");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, adversarial_examples_stay_in_ball_and_box);
    tcase_add_test(tc, linear_classifier_attacks_reach_the_optimum);
    tcase_add_test(tc, results_do_not_depend_on_the_group_size);
    tcase_add_test(tc, robust_accuracy_does_not_increase_with_eps);
    tcase_add_test(tc, untrained_model_is_at_chance);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
