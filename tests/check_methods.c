/* Adversarial training methods: E-AT's sampling weights follow its error counters, MAX picks the
 * highest-loss example per sample with ties to the earlier threat model, and every supported
 * method trains end to end for two batches on a tiny model and generated data. */
#include "testutil.h"
#include "ramp/launch.h"
#include "ramp/methods.h"
#include "ramp/pair.h"
#include "ramp/train.h"

#include <math.h>
#include <unistd.h>

START_TEST(eat_weights_follow_error_counters) {
    rc_adv_trainer t;
    memset(&t, 0, sizeof t);
    t.n_threats = 3;
    double w[3];
    rc_eat_weights(&t, w); /* nothing attacked yet: uniform */
    for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(w[i], 1.0 / 3, 1e-12);
    t.attacked[0] = 100, t.robust[0] = 40; /* one threat model still unused: uniform */
    rc_eat_weights(&t, w);
    ck_assert_double_eq_tol(w[0], 1.0 / 3, 1e-12);
    t.attacked[1] = 200, t.robust[1] = 180, t.attacked[2] = 50, t.robust[2] = 0;
    rc_eat_weights(&t, w); /* 1 - racc = 0.6, 0.1, 1.0 */
    ck_assert_double_eq_tol(w[0], 0.6 / 1.7, 1e-12);
    ck_assert_double_eq_tol(w[1], 0.1 / 1.7, 1e-12);
    ck_assert_double_eq_tol(w[2], 1.0 / 1.7, 1e-12);
    t.robust[0] = 100, t.robust[1] = 200, t.robust[2] = 50; /* all fully robust: uniform */
    rc_eat_weights(&t, w);
    ck_assert_double_eq_tol(w[1], 1.0 / 3, 1e-12);
}
END_TEST

/* The paper's heuristic: the two lowest own-norm robust accuracies; the lowest is q. */
START_TEST(pair_picks_the_two_least_robust_norms) {
    rc_norm q, r;
    double a[3] = {0.50, 0.70, 0.30}; /* linf, l2, l1 */
    ck_assert_int_eq(rc_pair_choose(a, &q, &r), 0);
    ck_assert(q == RC_NORM_L1 && r == RC_NORM_LINF);
    double b[3] = {0.20, 0.10, 0.60};
    ck_assert_int_eq(rc_pair_choose(b, &q, &r), 0);
    ck_assert(q == RC_NORM_L2 && r == RC_NORM_LINF);
    double ties[3] = {0.40, 0.40, 0.40}; /* ties: l_inf, then l_2 */
    ck_assert_int_eq(rc_pair_choose(ties, &q, &r), 0);
    ck_assert(q == RC_NORM_LINF && r == RC_NORM_L2);
    double two[3] = {-1, 0.50, 0.45}; /* no l_inf model */
    ck_assert_int_eq(rc_pair_choose(two, &q, &r), 0);
    ck_assert(q == RC_NORM_L1 && r == RC_NORM_L2);
    double one[3] = {-1, -1, 0.45};
    ck_assert_int_eq(rc_pair_choose(one, &q, &r), -1);
}
END_TEST

START_TEST(max_picks_highest_loss_ties_to_first) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    enum { B = 5, D = 3 };
    float loss[3][B] = {{1, 5, 2, 7, 3}, {1, 4, 9, 7, 3}, {0, 6, 9, 8, 3}};
    int want[B] = {0, 2, 1, 2, 0}; /* ties (1,1) -> 0, (9,9) -> 1, (3,3,3) -> 0 */
    cl_mem adv[3], l[3], out;
    rc_err e;
    for (int i = 0; i < 3; i++) {
        float v[B * D];
        for (int k = 0; k < B * D; k++) v[k] = (float)(10 * i + k);
        ck_assert(rc_buffer_create(&ctx, sizeof v, "adv", &adv[i], &e) == 0);
        ck_assert(rc_buffer_write(&ctx, adv[i], 0, sizeof v, v, "adv", &e) == 0);
        ck_assert(rc_buffer_create(&ctx, sizeof loss[i], "loss", &l[i], &e) == 0);
        ck_assert(rc_buffer_write(&ctx, l[i], 0, sizeof loss[i], loss[i], "loss", &e) == 0);
    }
    ck_assert(rc_buffer_create(&ctx, B * D * 4, "out", &out, &e) == 0);
    ck_assert_msg(rc_select_max(&ctx, adv, l, 3, out, B, D, &e) == 0, "%s", e.msg);
    float got[B * D];
    ck_assert(rc_buffer_read(&ctx, out, 0, sizeof got, got, "out", &e) == 0);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < D; j++)
            ck_assert_msg(got[b * D + j] == (float)(10 * want[b] + b * D + j),
                          "sample %d took threat %g, wanted %d", b, (got[b * D] - b * D) / 10,
                          want[b]);
    for (int i = 0; i < 3; i++) clReleaseMemObject(adv[i]), clReleaseMemObject(l[i]);
    clReleaseMemObject(out);
    rc_ctx_close(&ctx);
}
END_TEST

/* RAMP's loss on a fixed batch against a float64 host computation, and its gradients against
 * central differences of that host loss; with a mask that is empty the KL term vanishes. */
enum { RN = 6, RK = 10 };

static double host_ramp_loss(const double *zq, const double *zr, const double *zb, const int *y,
                             double lambda) {
    int m = 0;
    for (int i = 0; i < RN; i++) {
        int arg = 0;
        for (int k = 1; k < RK; k++)
            if (zq[i * RK + k] > zq[i * RK + arg]) arg = k;
        m += arg == y[i];
    }
    double ce = 0, kl = 0;
    for (int i = 0; i < RN; i++) {
        const double *b = zb + i * RK, *q = zq + i * RK, *r = zr + i * RK;
        double sb = 0, sq = 0, sr = 0;
        for (int k = 0; k < RK; k++) sb += exp(b[k]), sq += exp(q[k]), sr += exp(r[k]);
        ce += log(sb) - b[y[i]];
        int arg = 0;
        for (int k = 1; k < RK; k++)
            if (q[k] > q[arg]) arg = k;
        if (arg != y[i]) continue;
        for (int k = 0; k < RK; k++) {
            double lpq = q[k] - log(sq), lpr = r[k] - log(sr);
            kl += exp(lpq) * (lpq - lpr);
        }
    }
    return ce / RN + (m ? lambda * kl / m : 0);
}

static void ramp_loss_case(int empty_mask) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    float z[3][RN * RK];
    int y[RN];
    unsigned s = 17;
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < RN * RK; i++) z[t][i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f * 4 - 2;
    for (int i = 0; i < RN; i++) {
        int arg = 0;
        for (int k = 1; k < RK; k++)
            if (z[0][i * RK + k] > z[0][i * RK + arg]) arg = k;
        /* half the points classified correctly by z_q, or none */
        y[i] = empty_mask || i % 2 ? (arg + 1) % RK : arg;
    }
    const float lambda = 1.5f;
    cl_mem dz[3], zz[3], labels, loss, correct;
    rc_err e;
    for (int t = 0; t < 3; t++) {
        ck_assert(rc_buffer_create(&ctx, sizeof z[t], "z", &zz[t], &e) == 0);
        ck_assert(rc_buffer_write(&ctx, zz[t], 0, sizeof z[t], z[t], "z", &e) == 0);
        ck_assert(rc_buffer_create(&ctx, sizeof z[t], "dz", &dz[t], &e) == 0);
    }
    ck_assert(rc_buffer_create(&ctx, sizeof y, "labels", &labels, &e) == 0);
    ck_assert(rc_buffer_write(&ctx, labels, 0, sizeof y, y, "labels", &e) == 0);
    ck_assert(rc_buffer_create(&ctx, RN * 4, "loss", &loss, &e) == 0);
    ck_assert(rc_buffer_create(&ctx, RN * 4, "correct", &correct, &e) == 0);
    size_t g = RN;
    int n = RN, k = RK;
    ck_assert_msg(RC_LAUNCH(&ctx, "methods.cl", "ramp_loss", 1, &g, &e, RC_ARG(zz[0]),
                            RC_ARG(zz[1]), RC_ARG(zz[2]), RC_ARG(labels), RC_ARG(lambda),
                            RC_ARG(n), RC_ARG(k), RC_ARG(dz[0]), RC_ARG(dz[1]), RC_ARG(dz[2]),
                            RC_ARG(loss), RC_ARG(correct)) == 0, "%s", e.msg);
    float got_loss[RN], grad[3][RN * RK];
    ck_assert(rc_buffer_read(&ctx, loss, 0, sizeof got_loss, got_loss, "loss", &e) == 0);
    for (int t = 0; t < 3; t++)
        ck_assert(rc_buffer_read(&ctx, dz[t], 0, sizeof grad[t], grad[t], "dz", &e) == 0);
    double zd[3][RN * RK];
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < RN * RK; i++) zd[t][i] = z[t][i];
    double want = host_ramp_loss(zd[0], zd[1], zd[2], y, lambda), mean = 0;
    for (int i = 0; i < RN; i++) mean += got_loss[i] / RN;
    ck_assert_msg(fabs(mean - want) < 1e-5 * fmax(1, fabs(want)), "loss %g, host %g", mean, want);
    if (empty_mask) /* no KL term: z_q and z_r get no gradient */
        for (int i = 0; i < RN * RK; i++) ck_assert(grad[0][i] == 0.0f && grad[1][i] == 0.0f);
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < RN * RK; i++) {
            const double h = 1e-5;
            double v = zd[t][i];
            zd[t][i] = v + h;
            double fp = host_ramp_loss(zd[0], zd[1], zd[2], y, lambda);
            zd[t][i] = v - h;
            double fm = host_ramp_loss(zd[0], zd[1], zd[2], y, lambda);
            zd[t][i] = v;
            double fd = (fp - fm) / (2 * h);
            ck_assert_msg(fabs(fd - grad[t][i]) < 1e-5 + 1e-3 * fabs(fd),
                          "%s logits [%d]: kernel %g, finite difference %g", t == 0 ? "q" : t == 1 ? "r" : "best",
                          i, grad[t][i], fd);
        }
    for (int t = 0; t < 3; t++) clReleaseMemObject(zz[t]), clReleaseMemObject(dz[t]);
    clReleaseMemObject(labels), clReleaseMemObject(loss), clReleaseMemObject(correct);
    rc_ctx_close(&ctx);
}

START_TEST(ramp_loss_matches_host) { ramp_loss_case(0); }
END_TEST
START_TEST(ramp_loss_with_empty_mask) { ramp_loss_case(1); }
END_TEST

/* Raw IDX files of n random 28x28 images in dir (as the MNIST loader reads them). */
static void write_idx(const char *dir, int n) {
    char path[1200];
    unsigned s = 12345;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    FILE *f = fopen(path, "wb");
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n >> 8), (unsigned char)n,
                             0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(hdr, 1, 16, f);
    for (int i = 0; i < n * 784; i++) fputc((int)((s = s * 1103515245u + 12345u) >> 24), f);
    fclose(f);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    f = fopen(path, "wb");
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n >> 8), (unsigned char)n};
    fwrite(lh, 1, 8, f);
    for (int i = 0; i < n; i++) fputc(i % 10, f);
    fclose(f);
    /* the same files serve as the test split */
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "cp %s/train-images-idx3-ubyte %s/t10k-images-idx3-ubyte && "
                              "cp %s/train-labels-idx1-ubyte %s/t10k-labels-idx1-ubyte",
             dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void train_two_batches(rc_method method) {
    char dir[512];
    test_tmpdir(dir, sizeof dir, "methods");
    write_idx(dir, 64);
    rc_config cfg;
    rc_config_defaults(&cfg);
    cfg.model.arch = RC_ARCH_SMALL_CNN;
    cfg.model.width = 4;
    cfg.data.dataset = RC_DATASET_MNIST;
    snprintf(cfg.data.path, sizeof cfg.data.path, "%s", dir);
    cfg.data.batch_size = 32;
    cfg.data.eval_batch_size = 64;
    cfg.method = method;
    const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    const double eps[3] = {0.1, 1.0, 8.0};
    cfg.n_threats = 3;
    for (int i = 0; i < 3; i++)
        cfg.threats[i] = (rc_threat){.norm = norms[i], .eps = eps[i], .steps = 3};
    if (method == RC_METHOD_AT) cfg.attack_norm = RC_NORM_L1;
    cfg.ramp.gp = true; /* RAMP with gradient projection */
    cfg.schedule.name = RC_SCHEDULE_CONSTANT;
    /* E-AT runs two epochs so that the first ends with the in-training robust evaluation */
    cfg.schedule.epochs = method == RC_METHOD_EAT ? 2 : 1;
    cfg.eval.n = 16;
    cfg.eval.final_protocol = RC_FINAL_FAST;
    cfg.eval.final_n = 16;
    snprintf(cfg.output.dir, sizeof cfg.output.dir, "%s/run", dir);
    rc_err e;
    ck_assert_msg(rc_config_finalize(&cfg, &e) == 0, "%s", e.msg);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    ck_assert_msg(rc_train_run(&ctx, &cfg, NULL, &e) == 0, "%s: %s", rc_method_name(method), e.msg);
    rc_ctx_close(&ctx);
    char path[1200], line[512];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    double loss = -1;
    ck_assert_int_eq(sscanf(strstr(line, "\"train_loss\": "), "\"train_loss\": %lf", &loss), 1);
    if (method == RC_METHOD_EAT)
        ck_assert_msg(strstr(line, "\"l1_acc\": ") && strstr(line, "\"union_acc\": "),
                      "no in-training robust evaluation in %s", line);
    ck_assert_msg(isfinite(loss) && loss > 0, "%s: train loss %g", rc_method_name(method), loss);
    snprintf(path, sizeof path, "%s/run/eval-fast.json", dir);
    ck_assert_msg(access(path, R_OK) == 0, "no %s", path);
}

START_TEST(every_method_trains_two_batches) {
    const rc_method methods[] = {RC_METHOD_NATURAL, RC_METHOD_AT, RC_METHOD_SAT, RC_METHOD_EAT,
                                 RC_METHOD_MAX, RC_METHOD_RAMP};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) train_two_batches(methods[i]);
}
END_TEST

START_TEST(unsupported_methods_are_refused) {
    rc_config cfg;
    rc_config_defaults(&cfg);
    cfg.method = RC_METHOD_MSD;
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    ck_assert_int_eq(rc_train_run(&ctx, &cfg, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "method msd is not implemented yet") != NULL, "%s", e.msg);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("methods");
    TCase *tc = tcase_create("methods");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, eat_weights_follow_error_counters);
    tcase_add_test(tc, max_picks_highest_loss_ties_to_first);
    tcase_add_test(tc, pair_picks_the_two_least_robust_norms);
    tcase_add_test(tc, ramp_loss_matches_host);
    tcase_add_test(tc, ramp_loss_with_empty_mask);
    tcase_add_test(tc, every_method_trains_two_batches);
    tcase_add_test(tc, unsupported_methods_are_refused);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
