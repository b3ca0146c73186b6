/* Targeted FAB: the distance kept never rises and is the distance of the point kept, which is
 * misclassified and in [0,1]; a point counts as broken exactly when that distance is within eps;
 * on a linear classifier, where the projection is exact, FAB reaches the smallest l_p distance
 * to the boundary within the box; results do not depend on the work-group size. */
#include "attackutil.h"
#include "ramp/fab.h"

#include <math.h>

static const rc_norm NORMS[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};

/* targets: the class with the second largest logit at x (as the evaluation's APGD-T and FAB-T) */
static void second_classes(rc_ctx *ctx, rc_model *m, const float *x, int n, int d, int32_t *t) {
    rc_err e;
    int k = m->opts.num_classes;
    float *z = malloc(sizeof(float) * n * k);
    upload(ctx, rc_model_input(m), x, (size_t)n * d);
    ck_assert_msg(rc_model_forward(ctx, m, 0, n, &e) == 0, "%s", e.msg);
    download(ctx, rc_model_logits(m), z, (size_t)n * k);
    for (int i = 0; i < n; i++) {
        int a = 0, b = -1;
        for (int c = 1; c < k; c++)
            if (z[i * k + c] > z[i * k + a]) a = c;
        for (int c = 0; c < k; c++)
            if (c != a && (b < 0 || z[i * k + c] > z[i * k + b])) b = c;
        t[i] = b;
    }
    free(z);
}

/* the model's classes at the n points p */
static void classes_at(rc_ctx *ctx, rc_model *m, const float *p, int n, int d, int *out) {
    rc_err e;
    int k = m->opts.num_classes;
    float *z = malloc(sizeof(float) * n * k);
    upload(ctx, rc_model_input(m), p, (size_t)n * d);
    ck_assert_msg(rc_model_forward(ctx, m, 0, n, &e) == 0, "%s", e.msg);
    download(ctx, rc_model_logits(m), z, (size_t)n * k);
    for (int i = 0; i < n; i++) {
        out[i] = 0;
        for (int c = 1; c < k; c++)
            if (z[i * k + c] > z[i * k + out[i]]) out[i] = c;
    }
    free(z);
}

START_TEST(distance_never_rises_and_belongs_to_a_misclassified_point) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    float x[4 * 784], best[4 * 784];
    int32_t y[4], t[4];
    fixture_model(&ctx, &m, x, y);
    second_classes(&ctx, &m, x, 4, 784, t);
    rc_fab f;
    rc_err e;
    ck_assert_msg(rc_fab_alloc(&ctx, &f, 4, 784, &e) == 0, "%s", e.msg);
    upload(&ctx, f.x, x, 4 * 784);
    upload_bytes(&ctx, f.labels, y, sizeof y);
    upload_bytes(&ctx, f.targets, t, sizeof t);
    for (int n = 0; n < 3; n++) {
        float prev[4] = {1e10f, 1e10f, 1e10f, 1e10f}, res[4];
        int found = 0;
        ck_assert_msg(rc_fab_init(&ctx, &f, 4, &e) == 0, "%s", e.msg);
        for (int it = 0; it < 30; it++) {
            ck_assert_msg(rc_fab_step(&ctx, &f, &m, NORMS[n], 4, &e) == 0, "%s", e.msg);
            download(&ctx, f.res, res, 4);
            for (int i = 0; i < 4; i++)
                ck_assert_msg(res[i] <= prev[i],
                              "%s iteration %d sample %d: distance rose "
                              "%g -> %g",
                              rc_norm_name(NORMS[n]), it, i, prev[i], res[i]);
            memcpy(prev, res, sizeof prev);
        }
        download(&ctx, f.best, best, 4 * 784);
        int cls[4];
        classes_at(&ctx, &m, best, 4, 784, cls);
        for (int i = 0; i < 4; i++) {
            if (res[i] >= 1e10f) continue;
            found++;
            double dist = lp_dist(NORMS[n], best + i * 784, x + i * 784, 784);
            ck_assert_msg(fabs(dist - res[i]) <= 1e-4 * res[i] + 1e-6,
                          "%s sample %d: kept distance %g, the kept point's %g",
                          rc_norm_name(NORMS[n]), i, res[i], dist);
            /* the kept point is misclassified and in the box, so in the ball of radius res */
            check_feasible("FAB point", NORMS[n], res[i], x + i * 784, best + i * 784, 1, 784);
            ck_assert_msg(cls[i] != y[i], "%s sample %d: the kept point is classified correctly",
                          rc_norm_name(NORMS[n]), i);
        }
        ck_assert_msg(found > 0, "%s: no adversarial point in 30 iterations",
                      rc_norm_name(NORMS[n]));
        /* broken exactly when the distance is within eps */
        rc_fab_opts o = {.norm = NORMS[n], .eps = 0, .n_iter = 30};
        float sorted[4];
        memcpy(sorted, res, sizeof sorted);
        for (int i = 0; i < 4; i++)
            if (sorted[i] < 1e10f && sorted[i] > o.eps) o.eps = sorted[i];
        o.eps = nextafterf(o.eps, 0.0f); /* just below the largest: that one is not broken */
        unsigned char broken[4];
        ck_assert_msg(rc_fab_run(&ctx, &f, &m, &o, 4, broken, &e) == 0, "%s", e.msg);
        for (int i = 0; i < 4; i++) ck_assert_int_eq(broken[i], res[i] <= o.eps);
    }
    rc_fab_free(&f);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- a linear two-class classifier -------------------------------------------------------- */

#define LD 16
#define LN 8

/* The smallest l_p norm of delta with u . delta = -m (m > 0) and x + delta in [0,1]^d: the
 * absorption of coordinate j is |u_j| times its move, at most room_j; -1 if the box cannot. */
static double min_distance(const double *u, const float *x, double m, rc_norm norm) {
    double room[LD], total = 0;
    for (int j = 0; j < LD; j++) {
        room[j] = u[j] > 0 ? x[j] : 1 - x[j];
        total += fabs(u[j]) * room[j];
    }
    if (total <= m) return -1;
    if (norm == RC_NORM_L1) { /* largest |u| first */
        int used[LD] = {0};
        double left = m, dist = 0;
        while (left > 0) {
            int b = -1;
            for (int j = 0; j < LD; j++)
                if (!used[j] && (b < 0 || fabs(u[j]) > fabs(u[b]))) b = j;
            used[b] = 1;
            double move = fmin(room[b], left / fabs(u[b]));
            dist += move;
            left -= fabs(u[b]) * move;
        }
        return dist;
    }
    double lo = 0, hi = 1e6;
    for (int it = 0; it < 200; it++) {
        double mid = (lo + hi) / 2, a = 0;
        for (int j = 0; j < LD; j++)
            a += fabs(u[j]) * fmin(norm == RC_NORM_LINF ? mid : mid * fabs(u[j]), room[j]);
        if (a >= m)
            hi = mid;
        else
            lo = mid;
    }
    if (norm == RC_NORM_LINF) return hi;
    double s = 0;
    for (int j = 0; j < LD; j++) {
        double v = fmin(hi * fabs(u[j]), room[j]);
        s += v * v;
    }
    return sqrt(s);
}

START_TEST(linear_classifier_reaches_the_smallest_distance) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_model_opts mo = {.arch = RC_ARCH_LINEAR,
                        .activation = RC_ACTIVATION_RELU,
                        .width = 1,
                        .in_channels = 1,
                        .num_classes = 2,
                        .input_size = 4};
    rc_err e;
    ck_assert_msg(rc_model_create(&ctx, &m, &mo, LN, &e) == 0, "%s", e.msg);
    unsigned seed = 42;
    float w[2 * LD], b[2] = {0.05f, -0.05f}, x[LN * LD];
    int32_t y[LN], t[LN];
    for (int j = 0; j < 2 * LD; j++) w[j] = urand(&seed, -0.5f, 0.5f);
    for (int i = 0; i < LN * LD; i++) x[i] = urand(&seed, 0.2f, 0.8f);
    ck_assert(rc_param_write(&ctx, rc_model_param(&m, "linear.weight"), w, &e) == 0);
    ck_assert(rc_param_write(&ctx, rc_model_param(&m, "linear.bias"), b, &e) == 0);
    double u[LN][LD], marg[LN];
    for (int i = 0; i < LN; i++) {
        double z0 = b[0], z1 = b[1];
        for (int j = 0; j < LD; j++) {
            z0 += w[j] * x[i * LD + j];
            z1 += w[LD + j] * x[i * LD + j];
        }
        y[i] = z1 > z0, t[i] = 1 - y[i];
        marg[i] = fabs(z1 - z0);
        for (int j = 0; j < LD; j++) u[i][j] = w[y[i] * LD + j] - w[t[i] * LD + j];
    }
    rc_fab f;
    ck_assert_msg(rc_fab_alloc(&ctx, &f, LN, LD, &e) == 0, "%s", e.msg);
    upload(&ctx, f.x, x, LN * LD);
    upload_bytes(&ctx, f.labels, y, sizeof y);
    upload_bytes(&ctx, f.targets, t, sizeof t);
    for (int n = 0; n < 3; n++) {
        rc_fab_opts o = {.norm = NORMS[n], .eps = 1, .n_iter = 100};
        ck_assert_msg(rc_fab_run(&ctx, &f, &m, &o, LN, NULL, &e) == 0, "%s", e.msg);
        float res[LN];
        download(&ctx, f.res, res, LN);
        int feasible = 0;
        for (int i = 0; i < LN; i++) {
            double opt = min_distance(u[i], x + i * LD, marg[i], NORMS[n]);
            if (opt < 0) {
                ck_assert_msg(res[i] >= 1e10f, "%s sample %d: found %g, the box has none",
                              rc_norm_name(NORMS[n]), i, res[i]);
                continue;
            }
            feasible++;
            ck_assert_msg(res[i] >= opt * (1 - 1e-4) && res[i] <= opt * 1.01,
                          "%s sample %d: distance %g, the smallest %g (%.3f times)",
                          rc_norm_name(NORMS[n]), i, res[i], opt, res[i] / opt);
        }
        ck_assert_msg(feasible >= LN / 2, "%s: only %d feasible cases", rc_norm_name(NORMS[n]),
                      feasible);
    }
    rc_fab_free(&f);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* The per-sample kernels (one work-group per sample on the GPU class) give bit-identical
 * distances and points with the work-group size forced to 1, 16 and the default. */
START_TEST(results_do_not_depend_on_the_group_size) {
    static const unsigned sizes[3] = {1, 16, 0};
    enum { PER_NORM = 4 * 784 + 4 };
    static float r[3][3 * PER_NORM];
    for (int k = 0; k < 3; k++) {
        rc_ctx ctx;
        test_open_ctx(&ctx);
        ctx.testing.group_size = sizes[k]; /* before the first launch */
        rc_model m;
        float x[4 * 784];
        int32_t y[4], t[4];
        fixture_model(&ctx, &m, x, y);
        second_classes(&ctx, &m, x, 4, 784, t);
        rc_fab f;
        rc_err e;
        ck_assert_msg(rc_fab_alloc(&ctx, &f, 4, 784, &e) == 0, "%s", e.msg);
        upload(&ctx, f.x, x, 4 * 784);
        upload_bytes(&ctx, f.labels, y, sizeof y);
        upload_bytes(&ctx, f.targets, t, sizeof t);
        for (int n = 0; n < 3; n++) {
            rc_fab_opts o = {.norm = NORMS[n], .eps = 1, .n_iter = 10};
            ck_assert_msg(rc_fab_run(&ctx, &f, &m, &o, 4, NULL, &e) == 0, "%s", e.msg);
            download(&ctx, f.x1, r[k] + n * PER_NORM, 4 * 784);
            download(&ctx, f.res, r[k] + n * PER_NORM + 4 * 784, 4);
        }
        rc_fab_free(&f);
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

int main(void) {
    Suite *s = suite_create("fab");
    TCase *tc = tcase_create("fab");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, distance_never_rises_and_belongs_to_a_misclassified_point);
    tcase_add_test(tc, linear_classifier_reaches_the_smallest_distance);
    tcase_add_test(tc, results_do_not_depend_on_the_group_size);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
