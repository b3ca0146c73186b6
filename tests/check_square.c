/* Square Attack: every candidate and best point stays in the eps-ball and [0,1], the kept margin
 * never rises and is the model's margin at the kept point, the window schedule follows the
 * reference's p_selection, results do not depend on the work-group size, and a model whose
 * input gradient is exactly zero (gradient masking), which gives APGD nothing, is broken. */
#include "attackutil.h"
#include "ramp/apgd.h"
#include "ramp/eval.h"
#include "ramp/square.h"

#include <math.h>

static const rc_norm NORMS[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};

/* margin z_y - max_{j != y} z_j of the model at the n points p */
static void model_margins(rc_ctx *ctx, rc_model *m, const float *p, const int32_t *y, int n, int d,
                          float *out) {
    rc_err e;
    int k = m->opts.num_classes;
    float *z = malloc(sizeof(float) * n * k);
    upload(ctx, rc_model_input(m), p, (size_t)n * d);
    ck_assert_msg(rc_model_forward(ctx, m, 0, n, &e) == 0, "%s", e.msg);
    download(ctx, rc_model_logits(m), z, (size_t)n * k);
    for (int i = 0; i < n; i++) {
        float other = -INFINITY;
        for (int c = 0; c < k; c++)
            if (c != y[i]) other = fmaxf(other, z[i * k + c]);
        out[i] = z[i * k + y[i]] - other;
    }
    free(z);
}

START_TEST(window_schedule_follows_the_reference) {
    /* square.py's p_selection (resc_schedule=False) and s = max(round(sqrt(p h w)), 1), by hand
     * for 28 x 28: p_init 0.8 gives sqrt(0.8 * 784) = 25.04 -> 25; after query 10 p = 0.4:
     * 17.7 -> 18; after 4000, p = 0.8 / 128: 2.21 -> 2; l_2 keeps at least 3 and odd (18 -> 19) */
    rc_square_opts li = {.norm = RC_NORM_LINF, .p_init = 0.8f}, l2 = li;
    l2.norm = RC_NORM_L2;
    ck_assert_int_eq(rc_square_window(&li, 0, 28), 25);
    ck_assert_int_eq(rc_square_window(&li, 10, 28), 25);
    ck_assert_int_eq(rc_square_window(&li, 11, 28), 18);
    ck_assert_int_eq(rc_square_window(&l2, 11, 28), 19);
    ck_assert_int_eq(rc_square_window(&li, 4999, 28), 2);
    ck_assert_int_eq(rc_square_window(&l2, 4999, 28), 3);
    /* p h w = 12.8 -> sqrt = 3.58 -> 4; never above h */
    ck_assert_int_eq(rc_square_window(&li, 0, 4), 4);
    rc_square_opts big = li;
    big.p_init = 4.0f;
    ck_assert_int_eq(rc_square_window(&big, 0, 6), 6);
}
END_TEST

START_TEST(points_stay_in_ball_and_box_and_margins_never_rise) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    float x[4 * 784], p[4 * 784];
    int32_t y[4];
    fixture_model(&ctx, &m, x, y);
    rc_square sq;
    rc_err e;
    ck_assert_msg(rc_square_alloc(&ctx, &sq, 4, 1, 28, 28, &e) == 0, "%s", e.msg);
    upload(&ctx, sq.x, x, 4 * 784);
    upload_bytes(&ctx, sq.labels, y, sizeof y);
    static const float eps[3] = {0.1f, 1.5f, 10.0f};
    for (int t = 0; t < 3; t++) {
        rc_square_opts o = {
            .norm = NORMS[t], .eps = eps[t], .n_queries = 60, .p_init = 0.8f, .key = 11};
        float prev[4], mg[4], fresh[4];
        ck_assert_msg(rc_square_init(&ctx, &sq, &m, &o, 4, &e) == 0, "%s", e.msg);
        download(&ctx, sq.margin, prev, 4);
        /* 60 queries cross the schedule's changes at 10 and 50 */
        for (int it = 0; it < o.n_queries; it++) {
            ck_assert_msg(rc_square_step(&ctx, &sq, &m, &o, 4, it, &e) == 0, "%s", e.msg);
            download(&ctx, rc_model_input(&m), p, 4 * 784);
            check_feasible("candidate", NORMS[t], eps[t], x, p, 4, 784);
            download(&ctx, sq.x_best, p, 4 * 784);
            check_feasible("best point", NORMS[t], eps[t], x, p, 4, 784);
            download(&ctx, sq.margin, mg, 4);
            for (int i = 0; i < 4; i++)
                ck_assert_msg(mg[i] <= prev[i], "%s query %d sample %d: margin rose %g -> %g",
                              rc_norm_name(NORMS[t]), it, i, prev[i], mg[i]);
            memcpy(prev, mg, sizeof prev);
        }
        /* the kept margin is the model's at the kept point */
        model_margins(&ctx, &m, p, y, 4, 784, fresh);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(fabsf(fresh[i] - mg[i]) <= 1e-5f * (1 + fabsf(mg[i])),
                          "%s sample %d: kept margin %g, the model's at x_best %g",
                          rc_norm_name(NORMS[t]), i, mg[i], fresh[i]);
    }
    rc_square_free(&sq);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* The per-sample kernels (one work-group per sample on the GPU class) give bit-identical best
 * points and margins with the work-group size forced to 1, 16 and the default. */
START_TEST(results_do_not_depend_on_the_group_size) {
    static const unsigned sizes[3] = {1, 16, 0};
    static const float eps[3] = {0.1f, 1.5f, 10.0f};
    enum { PER_NORM = 4 * 784 + 4 };
    static float r[3][3 * PER_NORM];
    for (int k = 0; k < 3; k++) {
        rc_ctx ctx;
        test_open_ctx(&ctx);
        ctx.testing.group_size = sizes[k]; /* before the first launch */
        rc_model m;
        float x[4 * 784];
        int32_t y[4];
        fixture_model(&ctx, &m, x, y);
        rc_square sq;
        rc_err e;
        ck_assert_msg(rc_square_alloc(&ctx, &sq, 4, 1, 28, 28, &e) == 0, "%s", e.msg);
        upload(&ctx, sq.x, x, 4 * 784);
        upload_bytes(&ctx, sq.labels, y, sizeof y);
        for (int t = 0; t < 3; t++) {
            rc_square_opts o = {
                .norm = NORMS[t], .eps = eps[t], .n_queries = 20, .p_init = 0.8f, .key = 5};
            ck_assert_msg(rc_square_init(&ctx, &sq, &m, &o, 4, &e) == 0, "%s", e.msg);
            for (int it = 0; it < o.n_queries; it++)
                ck_assert_msg(rc_square_step(&ctx, &sq, &m, &o, 4, it, &e) == 0, "%s", e.msg);
            download(&ctx, sq.x_best, r[k] + t * PER_NORM, 4 * 784);
            download(&ctx, sq.margin, r[k] + t * PER_NORM + 4 * 784, 4);
        }
        rc_square_free(&sq);
        rc_model_free(&m);
        rc_ctx_close(&ctx);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3 * PER_NORM; i++)
            ck_assert_msg(memcmp(&r[k][i], &r[2][i], sizeof(float)) == 0,
                          "%s [%d]: %.9g with work-groups of %u, %.9g by default",
                          rc_norm_name(NORMS[i / PER_NORM]), i % PER_NORM, (double)r[k][i],
                          sizes[k], (double)r[2][i]);
}
END_TEST

#define MN 8

START_TEST(breaks_a_masked_gradient_model) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    masked_model(&ctx, &m, MN);
    float x[MN * MASK_D], g[MN * MASK_D], loss[MN];
    int32_t y[MN], t[MN];
    masked_points(x, y, MN, 3);
    for (int i = 0; i < MN; i++) t[i] = 1;
    rc_apgd a;
    rc_err e;
    ck_assert_msg(rc_apgd_alloc(&ctx, &a, MN, MASK_D, 10, &e) == 0, "%s", e.msg);
    upload(&ctx, a.x, x, MN * MASK_D);
    upload_bytes(&ctx, a.labels, y, sizeof y);
    upload_bytes(&ctx, a.targets, t, sizeof t);
    /* the mask: every point is correct with margin 2.4, and no loss has a gradient */
    static const rc_attack_loss losses[3] = {RC_LOSS_CE, RC_LOSS_DLR_TARGETED, RC_LOSS_LOGIT_DIFF};
    for (int k = 0; k < 3; k++) {
        ck_assert(rc_apgd_loss_grad(&ctx, &a, &m, losses[k], a.x, MN, 1, a.g, &e) == 0);
        download(&ctx, a.g, g, MN * MASK_D);
        for (int j = 0; j < MN * MASK_D; j++)
            ck_assert_msg(g[j] == 0.0f, "loss %d: gradient %g at %d", k, g[j], j);
    }
    download(&ctx, a.correct, loss, MN);
    for (int i = 0; i < MN; i++) ck_assert_float_eq(loss[i], 1.0f);
    rc_apgd_free(&a);

    rc_square sq;
    ck_assert_msg(rc_square_alloc(&ctx, &sq, MN, 1, MASK_SIZE, MASK_SIZE, &e) == 0, "%s", e.msg);
    static const float eps[3] = {0.1f, 0.5f, 1.0f};
    for (int n = 0; n < 3; n++) {
        upload(&ctx, sq.x, x, MN * MASK_D);
        upload_bytes(&ctx, sq.labels, y, sizeof y);
        rc_square_opts o = {
            .norm = NORMS[n], .eps = eps[n], .n_queries = 1000, .p_init = 0.8f, .key = 7};
        unsigned char broken[MN];
        ck_assert_msg(rc_square_run(&ctx, &sq, &m, &o, MN, broken, &e) == 0, "%s", e.msg);
        for (int i = 0; i < MN; i++)
            ck_assert_msg(broken[i], "%s: point %d not broken", rc_norm_name(NORMS[n]), i);
        /* below the radius that reaches the class change (+0.088 on each of the four pixels:
         * l_inf 0.088, l_2 0.176, l_1 0.353) nothing is broken */
        o.eps = n == 0 ? 0.08f : n == 1 ? 0.17f : 0.34f;
        ck_assert_msg(rc_square_run(&ctx, &sq, &m, &o, MN, broken, &e) == 0, "%s", e.msg);
        for (int i = 0; i < MN; i++)
            ck_assert_msg(!broken[i], "%s eps %g: point %d broken", rc_norm_name(NORMS[n]), o.eps,
                          i);
    }
    rc_square_free(&sq);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* The protocols on the masked model: full (APGD-CE and APGD-T with random starts) leaves every
 * point robust, standard breaks all of them, and its table credits Square. */
START_TEST(standard_protocol_breaks_what_full_cannot) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    masked_model(&ctx, &m, MN);
    float x[MN * MASK_D];
    int32_t y[MN];
    masked_points(x, y, MN, 9);
    rc_dataset d;
    make_dataset(&d, MN, 1, MASK_SIZE, 10, x, y);
    rc_threat th[3] = {{.norm = RC_NORM_LINF, .eps = 0.1, .eval_eps = 0.1},
                       {.norm = RC_NORM_L2, .eps = 0.5, .eval_eps = 0.5},
                       {.norm = RC_NORM_L1, .eps = 1.0, .eval_eps = 1.0}};
    rc_eval_report r;
    rc_err e;
    ck_assert_msg(rc_eval_robust(&ctx, &m, &d, MN, th, 3, RC_PROTOCOL_FULL, 0, MN,
                                 RC_PROGRESS_QUIET, &r, &e) == 0, "%s", e.msg);
    ck_assert_double_eq(r.clean_acc, 1.0);
    for (int t = 0; t < 3; t++)
        ck_assert_msg(r.acc[t] == 1.0, "full, %s: robust accuracy %g", rc_norm_name(th[t].norm),
                      r.acc[t]);
    rc_eval_report_free(&r);
    ck_assert_msg(rc_eval_robust(&ctx, &m, &d, MN, th, 3, RC_PROTOCOL_STANDARD, 0, MN,
                                 RC_PROGRESS_QUIET, &r, &e) == 0, "%s", e.msg);
    for (int t = 0; t < 3; t++) {
        ck_assert_msg(r.acc[t] == 0.0, "standard, %s: robust accuracy %g",
                      rc_norm_name(th[t].norm), r.acc[t]);
        ck_assert_int_eq(r.broken_by[t][RC_ATTACK_SQUARE], MN);
        ck_assert_int_eq(r.broken_by[t][RC_ATTACK_APGD_CE] + r.broken_by[t][RC_ATTACK_APGD_T] +
                             r.broken_by[t][RC_ATTACK_FAB_T], 0);
    }
    ck_assert_double_eq(r.union_acc, 0.0);
    rc_eval_report_free(&r);
    rc_dataset_free(&d);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("square");
    TCase *tc = tcase_create("square");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, window_schedule_follows_the_reference);
    tcase_add_test(tc, points_stay_in_ball_and_box_and_margins_never_rise);
    tcase_add_test(tc, results_do_not_depend_on_the_group_size);
    tcase_add_test(tc, breaks_a_masked_gradient_model);
    tcase_add_test(tc, standard_protocol_breaks_what_full_cannot);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
