/* Adversarial training methods: E-AT's sampling weights follow its error counters, MAX picks the
 * highest-loss example per sample with ties to the earlier threat model, the RAMP (max and
 * TRADES outer losses) and AVG losses and gradients match float64 host computations and, with CE
 * and its accumulation, do not change with the work-group size, MSD's candidates, selection and
 * result match the reference's rules, and every method trains end to end for two batches on a
 * tiny model and generated data. */
#include "ramp/eval.h"
#include "ramp/launch.h"
#include "ramp/loss.h"
#include "ramp/methods.h"
#include "ramp/msd.h"
#include "ramp/optim.h"
#include "ramp/pair.h"
#include "ramp/train.h"
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <unistd.h>

/* A config with the three threat models (linf, l2, l1) for trainer set-ups. */
static void three_threats(rc_config *cfg, rc_method method, double linf, double l2, double l1) {
    rc_config_defaults(cfg);
    cfg->method = method;
    const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    const double eps[3] = {linf, l2, l1};
    cfg->n_threats = 3;
    for (int i = 0; i < 3; i++)
        cfg->threats[i] = (rc_threat){.norm = norms[i], .eps = eps[i], .steps = 3};
}

START_TEST(eat_weights_follow_error_counters) {
    rc_adv_trainer t;
    memset(&t, 0, sizeof t);
    t.n_threats = 3; /* drawing from all three, as train_norms: [linf, l1, l2] makes it */
    t.n_draw = 3;
    for (int i = 0; i < 3; i++) t.draw[i] = i;
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

/* The trainer's draw after rc_config_finalize (threat models in attack order: linf, l1, l2). */
static void trainer_draw(rc_method method, const rc_norm *train_norms, int n_train_norms,
                         rc_adv_trainer *t, rc_ctx *ctx, rc_model *m) {
    rc_config cfg;
    three_threats(&cfg, method, 0.1, 1, 4);
    cfg.model.arch = RC_ARCH_LINEAR;
    cfg.data.dataset = RC_DATASET_MNIST;
    snprintf(cfg.data.path, sizeof cfg.data.path, "unread"); /* no data is loaded */
    for (int i = 0; i < n_train_norms; i++) cfg.train_norms[i] = train_norms[i];
    cfg.n_train_norms = n_train_norms;
    rc_err e;
    ck_assert_msg(rc_config_finalize(&cfg, &e) == 0, "%s", e.msg);
    rc_model_opts o = {.arch = RC_ARCH_LINEAR, .activation = RC_ACTIVATION_RELU, .width = 1,
                       .in_channels = 1, .num_classes = 3, .input_size = 4};
    ck_assert_msg(rc_model_create(ctx, m, &o, 2, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_adv_trainer_init(ctx, t, &cfg, m, 2, 16, &e) == 0, "%s", e.msg);
}

/* E-AT as published draws between l_inf and l_1 only: l_2 gets weight 0 whatever the counters;
 * a configured train_norms is followed; SAT draws from every threat model by default. */
START_TEST(eat_draws_linf_and_l1_unless_configured) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_adv_trainer t;
    double w[3];
    trainer_draw(RC_METHOD_EAT, NULL, 0, &t, &ctx, &m);
    ck_assert_int_eq(t.n_draw, 2);
    ck_assert(t.threats[t.draw[0]].norm == RC_NORM_LINF && t.threats[t.draw[1]].norm == RC_NORM_L1);
    rc_eat_weights(&t, w); /* unused yet: uniform over the two */
    ck_assert(w[0] == 0.5 && w[1] == 0.5 && w[2] == 0);
    t.attacked[0] = t.attacked[1] = t.attacked[2] = 100;
    t.robust[0] = 70, t.robust[1] = 20, t.robust[2] = 0; /* l_2 the weakest: still never drawn */
    rc_eat_weights(&t, w);
    ck_assert_double_eq_tol(w[0], 0.3 / 1.1, 1e-12);
    ck_assert_double_eq_tol(w[1], 0.8 / 1.1, 1e-12);
    ck_assert(w[2] == 0);
    rc_adv_trainer_free(&t);
    rc_model_free(&m);

    const rc_norm l2_l1[2] = {RC_NORM_L2, RC_NORM_L1};
    trainer_draw(RC_METHOD_EAT, l2_l1, 2, &t, &ctx, &m);
    ck_assert_int_eq(t.n_draw, 2);
    ck_assert(t.threats[t.draw[0]].norm == RC_NORM_L1 && t.threats[t.draw[1]].norm == RC_NORM_L2);
    rc_eat_weights(&t, w);
    ck_assert(w[0] == 0 && w[1] == 0.5 && w[2] == 0.5);
    rc_adv_trainer_free(&t);
    rc_model_free(&m);

    trainer_draw(RC_METHOD_SAT, NULL, 0, &t, &ctx, &m);
    ck_assert_int_eq(t.n_draw, 3);
    rc_adv_trainer_free(&t);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
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
    cl_mem adv[3], l[3], out = dev_buf(&ctx, B * D);
    for (int i = 0; i < 3; i++) {
        float v[B * D];
        for (int k = 0; k < B * D; k++) v[k] = (float)(10 * i + k);
        adv[i] = dev_from(&ctx, v, B * D);
        l[i] = dev_from(&ctx, loss[i], B);
    }
    rc_err e;
    ck_assert_msg(rc_select_max(&ctx, adv, l, 3, out, B, D, &e) == 0, "%s", e.msg);
    float got[B * D];
    download(&ctx, out, got, B * D);
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

/* A logit set: nt sets of RN x RK logits, U[-2, 2) (z[t] at z + t * RN * RK). */
static void random_logits(float *z, int nt, unsigned s) {
    for (int i = 0; i < nt * RN * RK; i++) z[i] = (float)(urand01(&s) * 4 - 2);
}

static int argmax(const float *row) {
    int arg = 0;
    for (int k = 1; k < RK; k++)
        if (row[k] > row[arg]) arg = k;
    return arg;
}

/* The device side of a logit set: nt logit sets z[t] and their gradients dz[t], the labels, and
 * the kernel's per-point loss and correctness. */
typedef struct logit_dev {
    int nt;
    cl_mem z[4], dz[4], labels, loss, correct;
} logit_dev;

static void logit_dev_open(rc_ctx *ctx, logit_dev *d, int nt, const float *z, const int *y) {
    d->nt = nt;
    for (int t = 0; t < nt; t++)
        d->z[t] = dev_from(ctx, z + t * RN * RK, RN * RK), d->dz[t] = dev_buf(ctx, RN * RK);
    d->labels = dev_from_bytes(ctx, y, RN * sizeof *y);
    d->loss = dev_buf(ctx, RN), d->correct = dev_buf(ctx, RN);
}

/* The loss, correctness and (at grad + t * RN * RK) logit gradients the kernel wrote. */
static void logit_dev_read(rc_ctx *ctx, const logit_dev *d, float *loss, float *correct,
                           float *grad) {
    download(ctx, d->loss, loss, RN);
    download(ctx, d->correct, correct, RN);
    for (int t = 0; t < d->nt; t++) download(ctx, d->dz[t], grad + t * RN * RK, RN * RK);
}

static void logit_dev_close(logit_dev *d) {
    for (int t = 0; t < d->nt; t++) clReleaseMemObject(d->z[t]), clReleaseMemObject(d->dz[t]);
    clReleaseMemObject(d->labels), clReleaseMemObject(d->loss), clReleaseMemObject(d->correct);
}

/* A float64 host loss of the logit sets zd[0..3]. */
typedef double (*host_loss)(double (*zd)[RN * RK], const int *y, double lambda, double beta);

/* The mean of the kernel's per-point losses against the host loss f, and its gradients grad[t]
 * for the nt logit sets z[t] against central differences of f. */
static void check_against_host(int nt, const float *z, const float *loss, const float *grad,
                               const int *y, host_loss f, double lambda, double beta) {
    static const char *const names[4] = {"q", "r", "best", "clean"};
    double zd[4][RN * RK];
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < RN * RK; i++) zd[t][i] = z[t * RN * RK + i];
    double want = f(zd, y, lambda, beta), mean = 0;
    for (int i = 0; i < RN; i++) mean += loss[i] / RN;
    ck_assert_msg(fabs(mean - want) < 1e-5 * fmax(1, fabs(want)), "loss %g, host %g", mean, want);
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < RN * RK; i++) {
            const double h = 1e-5, v = zd[t][i];
            zd[t][i] = v + h;
            double fp = f(zd, y, lambda, beta);
            zd[t][i] = v - h;
            double fm = f(zd, y, lambda, beta);
            zd[t][i] = v;
            double fd = (fp - fm) / (2 * h), g = grad[t * RN * RK + i];
            ck_assert_msg(fabs(fd - g) < 1e-5 + 1e-3 * fabs(fd),
                          "logits %s [%d]: kernel %g, finite difference %g", names[t], i, g, fd);
        }
}

static double ramp_of(double (*zd)[RN * RK], const int *y, double lambda, double beta) {
    (void)beta;
    return host_ramp_loss(zd[0], zd[1], zd[2], y, lambda);
}

/* RAMP's loss (nt = 3 logit sets: q, r, best) or RAMP-TRADES' (nt = 4: also clean) on the
 * first n samples of d, of a batch of nb whose other samples have m_other in the pairing set. */
static int launch_ramp(rc_ctx *ctx, const logit_dev *d, int n, int nb, int m_other, float lambda,
                       float beta, rc_err *e) {
    int k = RK;
    if (d->nt == 3)
        return RC_LAUNCH_EACH(ctx, "methods.cl", "ramp_loss", 1, (size_t[]){(size_t)n}, e,
                              RC_ARG(d->z[0]), RC_ARG(d->z[1]), RC_ARG(d->z[2]),
                              RC_ARG(d->labels), RC_ARG(lambda), RC_ARG(n), RC_ARG(nb),
                              RC_ARG(m_other), RC_ARG(k), RC_ARG(d->dz[0]), RC_ARG(d->dz[1]),
                              RC_ARG(d->dz[2]), RC_ARG(d->loss), RC_ARG(d->correct));
    return RC_LAUNCH_EACH(ctx, "methods.cl", "ramp_trades_loss", 1, (size_t[]){(size_t)n}, e,
                          RC_ARG(d->z[0]), RC_ARG(d->z[1]), RC_ARG(d->z[2]), RC_ARG(d->z[3]),
                          RC_ARG(d->labels), RC_ARG(lambda), RC_ARG(beta), RC_ARG(n), RC_ARG(nb),
                          RC_ARG(m_other), RC_ARG(k), RC_ARG(d->dz[0]), RC_ARG(d->dz[1]),
                          RC_ARG(d->dz[2]), RC_ARG(d->dz[3]), RC_ARG(d->loss),
                          RC_ARG(d->correct));
}

static void ramp_loss_case(int empty_mask) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    float z[3][RN * RK];
    int y[RN];
    random_logits(z[0], 3, 17);
    /* half the points classified correctly by z_q, or none */
    for (int i = 0; i < RN; i++) {
        int arg = argmax(z[0] + i * RK);
        y[i] = empty_mask || i % 2 ? (arg + 1) % RK : arg;
    }
    const float lambda = 1.5f;
    logit_dev d;
    logit_dev_open(&ctx, &d, 3, z[0], y);
    rc_err e;
    ck_assert_msg(launch_ramp(&ctx, &d, RN, RN, 0, lambda, 0, &e) == 0, "%s", e.msg);
    float got_loss[RN], corr[RN], grad[3][RN * RK];
    logit_dev_read(&ctx, &d, got_loss, corr, grad[0]);
    if (empty_mask) /* no KL term: z_q and z_r get no gradient */
        for (int i = 0; i < RN * RK; i++) ck_assert(grad[0][i] == 0.0f && grad[1][i] == 0.0f);
    check_against_host(3, z[0], got_loss, grad[0], y, ramp_of, lambda, 0);
    logit_dev_close(&d);
    rc_ctx_close(&ctx);
}

START_TEST(ramp_loss_matches_host) { ramp_loss_case(0); }
END_TEST
START_TEST(ramp_loss_with_empty_mask) { ramp_loss_case(1); }
END_TEST

/* RAMP's TRADES outer loss: L = CE(z_c) + beta mean KL(p_c || p_b) + the logit pairing, against
 * a float64 host computation, and its four logit gradients against central differences. */
static double host_trades_loss(const double *zq, const double *zr, const double *zb,
                               const double *zc, const int *y, double lambda, double beta) {
    /* the pairing is ramp's: host_ramp_loss with the CE part removed */
    double ce_b = 0;
    for (int i = 0; i < RN; i++) {
        double sb = 0;
        for (int k = 0; k < RK; k++) sb += exp(zb[i * RK + k]);
        ce_b += log(sb) - zb[i * RK + y[i]];
    }
    double l = host_ramp_loss(zq, zr, zb, y, lambda) - ce_b / RN;
    for (int i = 0; i < RN; i++) {
        const double *c = zc + i * RK, *b = zb + i * RK;
        double sc = 0, sb = 0, kl = 0;
        for (int k = 0; k < RK; k++) sc += exp(c[k]), sb += exp(b[k]);
        for (int k = 0; k < RK; k++) {
            double lpc = c[k] - log(sc), lpb = b[k] - log(sb);
            kl += exp(lpc) * (lpc - lpb);
        }
        l += (log(sc) - c[y[i]]) / RN + beta * kl / RN;
    }
    return l;
}

static double trades_of(double (*zd)[RN * RK], const int *y, double lambda, double beta) {
    return host_trades_loss(zd[0], zd[1], zd[2], zd[3], y, lambda, beta);
}

START_TEST(ramp_trades_loss_matches_host) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    float z[4][RN * RK]; /* q, r, best, clean */
    int y[RN];
    random_logits(z[0], 4, 29);
    for (int i = 0; i < RN; i++) { /* two thirds in the pairing mask */
        int arg = argmax(z[0] + i * RK);
        y[i] = i % 3 ? arg : (arg + 1) % RK;
    }
    const float lambda = 2.0f, beta = 6.0f;
    logit_dev d;
    logit_dev_open(&ctx, &d, 4, z[0], y);
    rc_err e;
    ck_assert_msg(launch_ramp(&ctx, &d, RN, RN, 0, lambda, beta, &e) == 0, "%s", e.msg);
    float got[RN], grad[4][RN * RK], corr[RN];
    logit_dev_read(&ctx, &d, got, corr, grad[0]);
    /* correctness is that of the MAX-selected example */
    for (int i = 0; i < RN; i++)
        ck_assert(corr[i] == (argmax(z[2] + i * RK) == y[i] ? 1.0f : 0.0f));
    check_against_host(4, z[0], got, grad[0], y, trades_of, lambda, beta);
    logit_dev_close(&d);
    rc_ctx_close(&ctx);
}
END_TEST

/* A batch split across processes (ramp/dist.h): RAMP's and RAMP-TRADES' losses on each part,
 * given the batch's size and the pairing-set hits of the other part, are the whole batch's,
 * per sample and per logit gradient, bit for bit (parts of 2 and 4 samples). */
static void split_case(int nt) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    float z[4][RN * RK];
    int y[RN];
    random_logits(z[0], nt, 41);
    for (int i = 0; i < RN; i++) { /* half in the pairing set */
        int arg = argmax(z[0] + i * RK);
        y[i] = i % 2 ? arg : (arg + 1) % RK;
    }
    const float lambda = 1.5f, beta = 6.0f;
    float loss[RN], corr[RN], grad[4][RN * RK];
    logit_dev d;
    logit_dev_open(&ctx, &d, nt, z[0], y);
    rc_err e;
    ck_assert_msg(launch_ramp(&ctx, &d, RN, RN, 0, lambda, beta, &e) == 0, "%s", e.msg);
    logit_dev_read(&ctx, &d, loss, corr, grad[0]);
    logit_dev_close(&d);
    static const int lo[2] = {0, 2}, cnt[2] = {2, 4};
    for (int p = 0; p < 2; p++) {
        /* the part at the front of a batch of its own */
        float zp[4][RN * RK] = {{0}};
        int yp[RN] = {0}, others = 0;
        for (int t = 0; t < nt; t++)
            memcpy(zp[t], z[t] + lo[p] * RK, (size_t)cnt[p] * RK * sizeof(float));
        memcpy(yp, y + lo[p], (size_t)cnt[p] * sizeof *yp);
        for (int i = 0; i < RN; i++)
            if ((i < lo[p] || i >= lo[p] + cnt[p]) && argmax(z[0] + i * RK) == y[i]) others++;
        float pl[RN], pc[RN], pg[4][RN * RK];
        logit_dev_open(&ctx, &d, nt, zp[0], yp);
        ck_assert_msg(launch_ramp(&ctx, &d, cnt[p], RN, others, lambda, beta, &e) == 0, "%s",
                      e.msg);
        logit_dev_read(&ctx, &d, pl, pc, pg[0]);
        logit_dev_close(&d);
        for (int i = 0; i < cnt[p]; i++)
            ck_assert_msg(pl[i] == loss[lo[p] + i] && pc[i] == corr[lo[p] + i],
                          "part %d, sample %d: loss %.9g, whole batch %.9g", p, i, pl[i],
                          loss[lo[p] + i]);
        for (int t = 0; t < nt; t++)
            for (int j = 0; j < cnt[p] * RK; j++)
                ck_assert_msg(pg[t][j] == grad[t][lo[p] * RK + j],
                              "part %d, logit set %d [%d]: %.9g, whole batch %.9g", p, t, j,
                              pg[t][j], grad[t][lo[p] * RK + j]);
    }
    rc_ctx_close(&ctx);
}

START_TEST(ramp_loss_split_equals_whole) { split_case(3); }
END_TEST
START_TEST(ramp_trades_loss_split_equals_whole) { split_case(4); }
END_TEST

/* The loss kernels at ImageNet-like sizes, past RC_LANES = 256 both in a row (GK classes) and in
 * the batch (GN samples), with ties for the maximum: CE, its accumulation, RAMP, RAMP-TRADES and
 * AVG give bit-identical results with work-groups of 1, 16 and the default size (GPU class; the
 * CPU class runs a work-item per sample), each in a context of its own; CE, the first maximum
 * and the accumulated statistics match float64. */
enum { GN = 300, GK = 300 };
#define GZ ((size_t)GN * GK)

/* Appends loss, correct and the first nt logit gradients to out at *o. */
static void take_losses(rc_ctx *ctx, cl_mem loss, cl_mem correct, const cl_mem *dz, int nt,
                        float *out, size_t *o) {
    download(ctx, loss, out + *o, GN);
    download(ctx, correct, out + *o + GN, GN);
    *o += 2 * GN;
    for (int t = 0; t < nt; t++, *o += GZ) download(ctx, dz[t], out + *o, GZ);
}

/* Every kernel's outputs with work-groups of `group` (0: the default), appended to out; returns
 * their count. */
static size_t loss_outputs(unsigned group, const float *z, const int *y, float *out) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    ctx.testing.group_size = group;
    rc_err e;
    cl_mem zd[4], dz[4];
    for (int t = 0; t < 4; t++) zd[t] = dev_from(&ctx, z + t * GZ, GZ), dz[t] = dev_buf(&ctx, GZ);
    cl_mem labels = dev_from_bytes(&ctx, y, GN * sizeof *y);
    rc_batch_io b = {.labels = labels,
                     .loss = dev_buf(&ctx, GN),
                     .correct = dev_buf(&ctx, GN),
                     .stats = dev_buf(&ctx, 3)};
    int n = GN, k = GK, first = 1, none = 0; /* none: the whole batch here */
    const float lambda = 1.5f, beta = 6.0f, inv_t = 0.5f, scale = 0.5f / GN;
    size_t o = 0;
    /* CE, accumulated twice */
    ck_assert_msg(
        rc_ce_forward_backward(&ctx, GN, GK, zd[0], labels, b.loss, b.correct, dz[0], &e) == 0 &&
            rc_fill(&ctx, b.stats, 0, 3, 0.0f, &e) == 0 &&
            rc_batch_io_accumulate(&ctx, &b, GN, &e) == 0 &&
            rc_batch_io_accumulate(&ctx, &b, GN, &e) == 0,
        "%s", e.msg);
    take_losses(&ctx, b.loss, b.correct, dz, 1, out, &o);
    download(&ctx, b.stats, out + o, 3);
    o += 3;
    ck_assert_msg(RC_LAUNCH_EACH(&ctx, "methods.cl", "ramp_loss", 1, (size_t[]){GN}, &e,
                                 RC_ARG(zd[0]),
                                 RC_ARG(zd[1]), RC_ARG(zd[2]), RC_ARG(labels), RC_ARG(lambda),
                                 RC_ARG(n), RC_ARG(n), RC_ARG(none), RC_ARG(k), RC_ARG(dz[0]),
                                 RC_ARG(dz[1]), RC_ARG(dz[2]),
                                 RC_ARG(b.loss), RC_ARG(b.correct)) == 0,
                  "%s", e.msg);
    take_losses(&ctx, b.loss, b.correct, dz, 3, out, &o);
    ck_assert_msg(RC_LAUNCH_EACH(&ctx, "methods.cl", "ramp_trades_loss", 1, (size_t[]){GN}, &e,
                                 RC_ARG(zd[0]),
                                 RC_ARG(zd[1]), RC_ARG(zd[2]), RC_ARG(zd[3]), RC_ARG(labels),
                                 RC_ARG(lambda), RC_ARG(beta), RC_ARG(n), RC_ARG(n), RC_ARG(none),
                                 RC_ARG(k), RC_ARG(dz[0]),
                                 RC_ARG(dz[1]), RC_ARG(dz[2]), RC_ARG(dz[3]), RC_ARG(b.loss),
                                 RC_ARG(b.correct)) == 0,
                  "%s", e.msg);
    take_losses(&ctx, b.loss, b.correct, dz, 4, out, &o);
    for (int t = 0; t < 2; t++, first = 0) /* two AVG passes */
        ck_assert_msg(RC_LAUNCH_EACH(&ctx, "methods.cl", "avg_loss", 1, (size_t[]){GN}, &e,
                                     RC_ARG(zd[t]),
                                     RC_ARG(labels), RC_ARG(inv_t), RC_ARG(scale), RC_ARG(first),
                                     RC_ARG(n), RC_ARG(k), RC_ARG(dz[t]), RC_ARG(b.loss),
                                     RC_ARG(b.correct)) == 0,
                      "%s", e.msg);
    take_losses(&ctx, b.loss, b.correct, dz, 2, out, &o);
    for (int t = 0; t < 4; t++) clReleaseMemObject(zd[t]), clReleaseMemObject(dz[t]);
    rc_batch_io_free(&b);
    rc_ctx_close(&ctx);
    return o;
}

START_TEST(loss_kernels_ignore_group_size) {
    float *z = malloc(4 * GZ * sizeof *z), *out[3];
    int y[GN], first_max[GN];
    unsigned s = 23;
    for (size_t i = 0; i < 4 * GZ; i++) z[i] = urand(&s, -4, 4);
    for (int n = 0; n < GN; n++) {
        float *row = z + (size_t)n * GK;
        if (n % 3 == 0) { /* tied maxima in every logit set, in lanes apart or in one lane */
            int a = (7 * n) % GK, c = (a + 1 + (n % 2 ? 255 : 37 * n)) % GK;
            for (int t = 0; t < 4; t++) row[t * GZ + a] = row[t * GZ + c] = 5.0f;
            first_max[n] = a < c ? a : c;
            y[n] = n % 2 ? a : c;
        } else {
            first_max[n] = 0;
            for (int j = 1; j < GK; j++)
                if (row[j] > row[first_max[n]]) first_max[n] = j;
            y[n] = n % 3 == 1 ? first_max[n] : (int)(urand01(&s) * GK); /* some in RAMP's mask */
        }
    }
    const unsigned sizes[3] = {1, 16, 0};
    size_t len[3];
    for (int r = 0; r < 3; r++) {
        out[r] = malloc((12 * GZ + 12 * GN + 3) * sizeof(float));
        len[r] = loss_outputs(sizes[r], z, y, out[r]);
    }
    for (int r = 1; r < 3; r++) {
        ck_assert(len[r] == len[0]);
        for (size_t i = 0; i < len[0]; i++)
            ck_assert_msg(memcmp(&out[0][i], &out[r][i], sizeof(float)) == 0,
                          "output %zu: %a with group size %u, %a with 1", i, out[r][i], sizes[r],
                          out[0][i]);
    }
    /* CE, correctness and the accumulated statistics against float64 */
    const float *ce = out[2], *corr = out[2] + GN, *stats = out[2] + 2 * GN + GZ;
    double sum = 0, hits = 0;
    for (int n = 0; n < GN; n++) {
        const float *row = z + (size_t)n * GK;
        double se = 0;
        for (int j = 0; j < GK; j++) se += exp((double)row[j] - row[first_max[n]]);
        double want = row[first_max[n]] + log(se) - row[y[n]];
        ck_assert_msg(fabs(ce[n] - want) < 1e-5 * fmax(1, fabs(want)), "CE %d: %g, host %g", n,
                      ce[n], want);
        ck_assert_msg(corr[n] == (first_max[n] == y[n]), "sample %d: correct %g", n, corr[n]);
        sum += want, hits += first_max[n] == y[n];
    }
    ck_assert(hits > 0 && hits < GN);
    ck_assert_msg(fabs(stats[0] - 2 * sum) < 1e-5 * 2 * sum, "loss sum %g, host %g", stats[0],
                  2 * sum);
    ck_assert(stats[1] == 2 * hits && stats[2] == 2 * GN);
    for (int r = 0; r < 3; r++) free(out[r]);
    free(z);
}
END_TEST

/* AVG on a linear model: L = (1/T) sum_p mean_n CE(W x_pn + b, y_n) and mean correctness against
 * float64, and the accumulated parameter gradients against central differences of that loss.
 * On small-cnn (BatchNorm), the gradient equals the mean of T separate single-pass gradients,
 * so each pass used its own batch statistics. */
enum { AN = 6, AT = 3, AD = 16, AK = 10 };

static double host_avg(const double *w, const double *bias, const float *adv, const int *y,
                       double *acc) {
    double l = 0;
    *acc = 0;
    for (int p = 0; p < AT; p++)
        for (int n = 0; n < AN; n++) {
            double z[AK], mx = -INFINITY, s = 0;
            int arg = 0;
            for (int k = 0; k < AK; k++) {
                z[k] = bias[k];
                for (int j = 0; j < AD; j++) z[k] += w[k * AD + j] * adv[(p * AN + n) * AD + j];
                if (z[k] > mx) mx = z[k], arg = k;
            }
            for (int k = 0; k < AK; k++) s += exp(z[k] - mx);
            l += (mx + log(s) - z[y[n]]) / (AT * AN);
            *acc += (arg == y[n]) / (double)(AT * AN);
        }
    return l;
}

START_TEST(avg_loss_and_gradient_match_host) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    rc_model m;
    rc_model_opts o = {.arch = RC_ARCH_LINEAR, .activation = RC_ACTIVATION_RELU, .width = 1,
                       .in_channels = 1, .num_classes = AK, .input_size = 4};
    ck_assert_msg(rc_model_create(&ctx, &m, &o, AN, &e) == 0, "%s", e.msg);
    rc_config cfg;
    three_threats(&cfg, RC_METHOD_AVG, 0.1, 1, 4);
    rc_adv_trainer t;
    ck_assert_msg(rc_adv_trainer_init(&ctx, &t, &cfg, &m, AN, AD, &e) == 0, "%s", e.msg);
    unsigned s = 5;
    float w[AK * AD], b[AK], adv[AT * AN * AD];
    int y[AN];
    for (int i = 0; i < AK * AD; i++) w[i] = (float)(urand01(&s) * 2 - 1);
    for (int i = 0; i < AK; i++) b[i] = (float)(urand01(&s) - 0.5);
    for (int i = 0; i < AT * AN * AD; i++) adv[i] = (float)urand01(&s);
    for (int n = 0; n < AN; n++) y[n] = (int)(urand01(&s) * AK);
    rc_param *pw = rc_model_param(&m, "linear.weight"), *pb = rc_model_param(&m, "linear.bias");
    ck_assert(rc_param_write(&ctx, pw, w, &e) == 0 && rc_param_write(&ctx, pb, b, &e) == 0);
    for (int p = 0; p < AT; p++)
        upload(&ctx, t.adv[p], adv + p * AN * AD, AN * AD);
    cl_mem labels = dev_from_bytes(&ctx, y, sizeof y);
    cl_mem loss = dev_buf(&ctx, AN), correct = dev_buf(&ctx, AN);
    ck_assert_msg(rc_avg_loss(&ctx, &t, &m, AN, AN, labels, loss, correct, &e) == 0, "%s", e.msg);
    float got[AN], corr[AN], gw[AK * AD], gb[AK];
    download_bytes(&ctx, loss, got, sizeof got);
    download_bytes(&ctx, correct, corr, sizeof corr);
    download_bytes(&ctx, pw->grad, gw, sizeof gw);
    download_bytes(&ctx, pb->grad, gb, sizeof gb);
    double wd[AK * AD], bd[AK], acc;
    for (int i = 0; i < AK * AD; i++) wd[i] = w[i];
    for (int i = 0; i < AK; i++) bd[i] = b[i];
    double want = host_avg(wd, bd, adv, y, &acc), mean = 0, mc = 0;
    for (int n = 0; n < AN; n++) mean += got[n] / AN, mc += corr[n] / AN;
    ck_assert_msg(fabs(mean - want) < 1e-5 * fmax(1, want), "AVG loss %g, host %g", mean, want);
    ck_assert_msg(fabs(mc - acc) < 1e-6, "AVG accuracy %g, host %g", mc, acc);
    for (int i = 0; i < AK * AD + AK; i++) {
        double *v = i < AK * AD ? &wd[i] : &bd[i - AK * AD], keep = *v, h = 1e-5, a;
        *v = keep + h;
        double fp = host_avg(wd, bd, adv, y, &a);
        *v = keep - h;
        double fm = host_avg(wd, bd, adv, y, &a);
        *v = keep;
        double fd = (fp - fm) / (2 * h), dev = i < AK * AD ? gw[i] : gb[i - AK * AD];
        ck_assert_msg(fabs(fd - dev) < 1e-5 + 1e-3 * fabs(fd), "parameter %d: %g, fd %g", i, dev,
                      fd);
    }
    rc_adv_trainer_free(&t);
    rc_model_free(&m);

    /* BatchNorm: AVG's gradient = the mean of T separate single-pass gradients */
    enum { SD = 64 };
    rc_model_opts so = {.arch = RC_ARCH_SMALL_CNN, .activation = RC_ACTIVATION_RELU, .width = 2,
                        .in_channels = 1, .num_classes = AK, .input_size = 8};
    ck_assert_msg(rc_model_create(&ctx, &m, &so, AN, &e) == 0, "%s", e.msg);
    ck_assert(rc_model_init(&ctx, &m, 11, &e) == 0);
    ck_assert_msg(rc_adv_trainer_init(&ctx, &t, &cfg, &m, AN, SD, &e) == 0, "%s", e.msg);
    float sadv[AT][AN * SD];
    for (int p = 0; p < AT; p++) {
        for (int i = 0; i < AN * SD; i++) sadv[p][i] = (float)urand01(&s);
        upload(&ctx, t.adv[p], sadv[p], AN * SD);
    }
    size_t nt = m.n_train;
    float *avg = malloc(nt * 4), *one = malloc(nt * 4);
    double *sum = calloc(nt, sizeof *sum);
    ck_assert_msg(rc_avg_loss(&ctx, &t, &m, AN, AN, labels, loss, correct, &e) == 0, "%s", e.msg);
    download(&ctx, m.grads, avg, nt);
    for (int p = 0; p < AT; p++) {
        upload(&ctx, rc_model_input(&m), sadv[p], AN * SD);
        ck_assert(rc_model_forward(&ctx, &m, 1, AN, &e) == 0);
        ck_assert(rc_ce_forward_backward(&ctx, AN, AK, rc_model_logits(&m), labels, loss, correct,
                                         rc_model_logits_grad(&m), &e) == 0);
        ck_assert(rc_model_backward(&ctx, &m, 1, AN, RC_GRAD_WRITE, 0, &e) == 0);
        download(&ctx, m.grads, one, nt);
        for (size_t i = 0; i < nt; i++) sum[i] += one[i] / (double)AT;
    }
    double mx = 0;
    for (size_t i = 0; i < nt; i++) mx = fmax(mx, fabs(sum[i]));
    ck_assert(mx > 0);
    for (size_t i = 0; i < nt; i++)
        ck_assert_msg(fabs(avg[i] - sum[i]) < 1e-5 * mx, "gradient %zu: AVG %g, mean of passes %g",
                      i, avg[i], sum[i]);
    free(avg), free(one), free(sum);
    rc_adv_trainer_free(&t);
    rc_model_free(&m);
    clReleaseMemObject(labels), clReleaseMemObject(loss), clReleaseMemObject(correct);
    rc_ctx_close(&ctx);
}
END_TEST

/* ---- MSD ---------------------------------------------------------------------------------- */

enum { MB = 4, MD = 192 };

/* robust_union's proj_simplex on |delta| (all d coordinates, zeros included), float64. */
static void host_proj_simplex(const double *a, double s, double *w) {
    double u[MD], cssv[MD];
    memcpy(u, a, sizeof u);
    for (int i = 1; i < MD; i++) /* insertion sort, descending */
        for (int j = i; j > 0 && u[j] > u[j - 1]; j--) {
            double t = u[j];
            u[j] = u[j - 1], u[j - 1] = t;
        }
    double c = 0;
    for (int j = 0; j < MD; j++) cssv[j] = c += u[j];
    int rho = 0, cum = 0, best = INT_MIN;
    for (int j = 0; j < MD; j++) {
        int comp = u[j] * (j + 1) > cssv[j] - s;
        cum += comp ? 1 : -1; /* cumsum(comp) + cumsum(comp - 1) */
        if (cum > best) best = cum, rho = j;
    }
    double theta = (cssv[rho] - s) / (rho + 1);
    for (int j = 0; j < MD; j++) w[j] = fmax(a[j] - theta, 0);
}

/* The three candidates (l1, l2, linf) in float64 from the reference's formulas. */
static void host_msd_candidates(const float *x, const float *xa, const float *g,
                                const rc_msd_opts *o, int k, double out[3][MB * MD]) {
    const float alpha1 = o->alpha_l1 / (float)k * 20.0f; /* as the device rounds it */
    double delta[MB * MD], norm[MB];
    int any = 0;
    for (int b = 0; b < MB; b++) {
        const float *gb = g + b * MD, *xb = x + b * MD, *ab = xa + b * MD;
        double gm[MD], mags[MD], gn = 0;
        for (int j = 0; j < MD; j++) {
            double v = gb[j], xc = ab[j];
            int out_ =
                (v < 0 && xc <= alpha1) || (v > 0 && xc >= 1.0f - alpha1) || xc <= 0 || xc >= 1;
            gm[j] = out_ ? 0 : v;
            mags[j] = fabs(gm[j]);
            gn += v * v;
        }
        for (int i = 1; i < MD; i++)
            for (int j = i; j > 0 && mags[j] > mags[j - 1]; j--) {
                double t = mags[j];
                mags[j] = mags[j - 1], mags[j - 1] = t;
            }
        double kval = mags[k - 1], tn = 0;
        norm[b] = 0;
        gn = sqrt(gn);
        for (int j = 0; j < MD; j++) {
            double dir = fabs(gm[j]) >= kval ? (gm[j] > 0) - (gm[j] < 0) : 0;
            delta[b * MD + j] = ((double)ab[j] - xb[j]) + alpha1 * dir;
            norm[b] += fabs(delta[b * MD + j]);
            double u = ab[j] + o->alpha_l2 * gb[j] / gn - xb[j];
            tn += u * u;
            /* linf */
            double s = (gb[j] > 0) - (gb[j] < 0);
            double v =
                fmin(fmax(ab[j] + o->alpha_linf * s, xb[j] - o->eps_linf), xb[j] + o->eps_linf);
            out[RC_MSD_LINF][b * MD + j] = fmin(fmax(v, 0), 1);
        }
        tn = sqrt(tn);
        for (int j = 0; j < MD; j++) {
            double u = ab[j] + o->alpha_l2 * gb[j] / gn - xb[j];
            out[RC_MSD_L2][b * MD + j] = fmin(fmax(xb[j] + u * fmin(1, o->eps_l2 / tn), 0), 1);
        }
        any |= norm[b] > o->eps_l1;
    }
    for (int b = 0; b < MB; b++) {
        double a[MD], w[MD];
        for (int j = 0; j < MD; j++) a[j] = fabs(delta[b * MD + j]);
        if (any)
            host_proj_simplex(a, o->eps_l1, w);
        else
            memcpy(w, a, sizeof w);
        for (int j = 0; j < MD; j++) {
            double dj = delta[b * MD + j], sg = (dj > 0) - (dj < 0);
            out[RC_MSD_L1][b * MD + j] = fmin(fmax(x[b * MD + j] + sg * w[j], 0), 1);
        }
    }
}

/* x, an iterate and a gradient that exercise every rule: sample 0 at delta = 0, sample 1 far
 * outside the l1 ball, sample 2 slightly perturbed, sample 3 with the largest |g| on pixels the
 * gap rule masks (at 0 or 1, or within the gap and pushed outwards), one within the gap but
 * pushed inwards, and ties at the k-th largest |g|. */
static void msd_case(float *x, float *xa, float *g, float gap) {
    unsigned s = 77;
    for (int i = 0; i < MB * MD; i++) {
        x[i] = (float)(0.1 + 0.8 * urand01(&s));
        g[i] = (float)(urand01(&s) * 2 - 1);
        xa[i] = x[i];
    }
    for (int j = 0; j < MD; j++) {
        xa[1 * MD + j] = (float)fmin(fmax(x[MD + j] + 0.6 * urand01(&s) - 0.3, 0), 1);
        if (j % 3 == 0) xa[2 * MD + j] = x[2 * MD + j] + (float)(0.02 * urand01(&s) - 0.01);
    }
    float *x3 = x + 3 * MD, *a3 = xa + 3 * MD, *g3 = g + 3 * MD;
    const float pos[8] = {0.0f, 1.0f, 0.5f * gap, 1.0f - 0.5f * gap, 0.0f, 1.0f, 0.5f * gap, 0.9f};
    const float grd[8] = {-5, 5, -4.5f, 4.5f, 4.2f, -4.2f, 4.0f, -3.0f};
    for (int j = 0; j < 8; j++) x3[j] = a3[j] = pos[j], g3[j] = grd[j];
    /* x3[4] = 0 and x3[5] = 1 stay masked whatever the sign; x3[6] within the gap but pushed
     * inwards is kept; ties: */
    for (int j = 8; j < 14; j++) g3[j] = 2.5f, g[j] = -2.0f;
}

START_TEST(msd_candidates_match_host) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    rc_msd a;
    ck_assert_msg(rc_msd_alloc(&ctx, &a, MB, MD, &e) == 0, "%s", e.msg);
    /* eps_l1 3: samples 0, 2 and 3 inside the ball after the step, sample 1 outside (the
     * reference's inflation of the inside ones applies); eps_l1 400: all inside, no projection */
    const float eps1[2] = {3.0f, 400.0f};
    const int ks[2] = {7, 20};
    for (int r = 0; r < 2; r++) {
        rc_msd_opts o = {.eps_linf = 0.05f, .eps_l2 = 0.5f, .eps_l1 = eps1[r],
                         .alpha_linf = 0.02f, .alpha_l2 = 0.3f, .alpha_l1 = 0.05f, .n_iter = 1};
        int k = ks[r];
        float x[MB * MD], xa[MB * MD], g[MB * MD];
        msd_case(x, xa, g, o.alpha_l1 / (float)k * 20.0f);
        cl_mem xb = dev_from_bytes(&ctx, x, sizeof x), gb = dev_from_bytes(&ctx, g, sizeof g);
        upload_bytes(&ctx, a.x_adv, xa, sizeof xa);
        ck_assert_msg(rc_msd_candidates(&ctx, &a, xb, gb, &o, k, MB, &e) == 0, "%s", e.msg);
        static double want[3][MB * MD];
        host_msd_candidates(x, xa, g, &o, k, want);
        const char *names[3] = {"l1", "l2", "linf"};
        for (int c = 0; c < 3; c++) {
            float got[MB * MD];
            download_bytes(&ctx, a.cand[c], got, sizeof got);
            for (int b = 0; b < MB; b++) {
                double l1 = 0, l2 = 0, li = 0;
                for (int j = 0; j < MD; j++) {
                    int i = b * MD + j;
                    ck_assert_msg(fabs(got[i] - want[c][i]) < 2e-5,
                                  "%s candidate (eps_l1 %g, k %d), sample %d [%d]: %.7g, host %.7g",
                                  names[c], eps1[r], k, b, j, got[i], want[c][i]);
                    ck_assert(got[i] >= 0.0f && got[i] <= 1.0f);
                    double dj = (double)got[i] - x[i];
                    l1 += fabs(dj), l2 += dj * dj, li = fmax(li, fabs(dj));
                }
                if (c == RC_MSD_L1) ck_assert_msg(l1 <= o.eps_l1 * (1 + 1e-5), "l1 %g", l1);
                if (c == RC_MSD_L2)
                    ck_assert_msg(sqrt(l2) <= o.eps_l2 * (1 + 1e-5), "l2 %g", sqrt(l2));
                if (c == RC_MSD_LINF) ck_assert_msg(li <= o.eps_linf * (1 + 1e-5), "linf %g", li);
            }
        }
        if (r == 0) {
            /* the rules at work: the gap mask, and sample 0 grown to the radius by the quirk */
            float got[MB * MD];
            download_bytes(&ctx, a.cand[RC_MSD_L1], got, sizeof got);
            for (int j = 0; j < 6; j++) ck_assert(got[3 * MD + j] == x[3 * MD + j]);
            ck_assert(got[3 * MD + 6] != x[3 * MD + 6]);
            double l1 = 0;
            for (int j = 0; j < MD; j++) l1 += fabs((double)got[j] - x[j]);
            ck_assert_msg(l1 > 1.05 && l1 < 3.0, "sample 0 l1 %g", l1);
        }
        clReleaseMemObject(xb), clReleaseMemObject(gb);
    }
    rc_msd_free(&a);
    rc_ctx_close(&ctx);
}
END_TEST

/* Per sample: candidates in the order l1, l2, linf, the highest loss wins with ties to the later
 * one; the best point changes only on a strictly higher loss than the best so far (from 0). */
START_TEST(msd_selection_order_and_ties) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    enum { B = 5, D = 2 };
    rc_msd a;
    ck_assert_msg(rc_msd_alloc(&ctx, &a, B, D, &e) == 0, "%s", e.msg);
    float x[B * D];
    for (int i = 0; i < B * D; i++) x[i] = -1;
    cl_mem xb = dev_from_bytes(&ctx, x, sizeof x);
    ck_assert(rc_msd_start(&ctx, &a, xb, B, &e) == 0);
    /* iteration 1 losses per candidate (l1, l2, linf) and the winner */
    const float l_it1[B][3] = {{1, 2, 3}, {3, 2, 1}, {2, 2, 1}, {1, 2, 2}, {0, 0, 0}};
    const int win1[B] = {2, 0, 1, 2, 2};
    /* iteration 2: sample 0 lower than its best (3), sample 1 equal to it, 2 and 3 higher */
    const float l_it2[B][3] = {{0.5f, 0.5f, 0.5f}, {3, 1, 1}, {5, 1, 1}, {1, 9, 1}, {0, 0, 0.5f}};
    const int win2[B] = {2, 0, 0, 1, 2};
    for (int it = 0; it < 2; it++) {
        for (int c = 0; c < 3; c++) {
            float cand[B * D], loss[B];
            for (int b = 0; b < B; b++) {
                cand[b * D] = cand[b * D + 1] = (float)(100 * it + 10 * c + b);
                loss[b] = it ? l_it2[b][c] : l_it1[b][c];
            }
            upload_bytes(&ctx, a.cand[c], cand, sizeof cand);
            upload_bytes(&ctx, a.loss, loss, sizeof loss);
            ck_assert_msg(rc_msd_select(&ctx, &a, c, B, &e) == 0, "%s", e.msg);
        }
        float it_pt[B * D], best[B * D], best_loss[B];
        download_bytes(&ctx, a.x_adv, it_pt, sizeof it_pt);
        download_bytes(&ctx, a.x_best, best, sizeof best);
        download_bytes(&ctx, a.best_loss, best_loss, sizeof best_loss);
        for (int b = 0; b < B; b++) {
            int w = it ? win2[b] : win1[b];
            ck_assert_msg(it_pt[b * D] == (float)(100 * it + 10 * w + b),
                          "iteration %d, sample %d: took %g, wanted candidate %d", it, b,
                          it_pt[b * D], w);
        }
        /* best points: iteration 1 everywhere but sample 4 (loss 0 is not above 0); then
         * samples 2, 3 and 4 move to iteration 2, sample 1 (a tie with its best) does not */
        const float want1[B] = {20, 1, 12, 23, -1}, want2[B] = {20, 1, 102, 113, 124};
        const float bl1[B] = {3, 3, 2, 2, 0}, bl2[B] = {3, 3, 5, 9, 0.5f};
        for (int b = 0; b < B; b++) {
            ck_assert_msg(best[b * D] == (it ? want2[b] : want1[b]),
                          "iteration %d, sample %d: best point %g", it, b, best[b * D]);
            ck_assert(best_loss[b] == (it ? bl2[b] : bl1[b]));
        }
    }
    clReleaseMemObject(xb);
    rc_msd_free(&a);
    rc_ctx_close(&ctx);
}
END_TEST

/* A small-cnn fitted for a few steps to a batch of class-striped images: MSD's result raises the
 * cross-entropy well above the clean one, and every result lies in [0,1] and in one of the three
 * balls. */
START_TEST(msd_raises_the_loss) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    enum { B = 20, S = 28, D = S * S, K = 10 };
    rc_model m;
    rc_model_opts o = {.arch = RC_ARCH_SMALL_CNN, .activation = RC_ACTIVATION_RELU, .width = 4,
                       .in_channels = 1, .num_classes = K, .input_size = S};
    ck_assert_msg(rc_model_create(&ctx, &m, &o, B, &e) == 0, "%s", e.msg);
    ck_assert(rc_model_init(&ctx, &m, 2, &e) == 0);
    static float x[B * D];
    int y[B];
    unsigned s = 3;
    for (int b = 0; b < B; b++) {
        y[b] = b % K;
        for (int i = 0; i < D; i++) {
            int row = i / S;
            double v = 0.2 * urand01(&s) + (row / 2 == y[b] + 2 ? 0.7 : 0.1);
            x[b * D + i] = (float)v;
        }
    }
    cl_mem xb = dev_from_bytes(&ctx, x, sizeof x), labels = dev_from_bytes(&ctx, y, sizeof y);
    cl_mem loss = dev_buf(&ctx, B), correct = dev_buf(&ctx, B);
    rc_sgd opt;
    rc_sgd_init(&opt, 0.9f, 0.0f, 0, 0, 1);
    for (int step = 0; step < 30; step++)
        ck_assert_msg(rc_buffer_copy(&ctx, xb, rc_model_input(&m), sizeof x, "x", &e) == 0 &&
                          rc_model_forward(&ctx, &m, 1, B, &e) == 0 &&
                          rc_ce_forward_backward(&ctx, B, K, rc_model_logits(&m), labels, loss,
                                                 correct, rc_model_logits_grad(&m), &e) == 0 &&
                          rc_model_backward(&ctx, &m, 1, B, RC_GRAD_WRITE, 0, &e) == 0 &&
                          rc_sgd_step(&ctx, &opt, &m, 0.05f, &e) == 0,
                      "%s", e.msg);
    rc_msd a;
    ck_assert_msg(rc_msd_alloc(&ctx, &a, B, D, &e) == 0, "%s", e.msg);
    rc_msd_opts mo = {.eps_linf = 0.1f, .eps_l2 = 1.0f, .eps_l1 = 8.0f, .alpha_linf = 0.02f,
                      .alpha_l2 = 0.2f, .alpha_l1 = 0.5f, .n_iter = 8};
    rc_rng rng;
    rc_rng_seed(&rng, 1, 2);
    ck_assert_msg(rc_msd_run(&ctx, &a, &m, xb, labels, &mo, &rng, B, B, &e) == 0, "%s", e.msg);
    double mean[2];
    cl_mem pts[2] = {xb, a.x_best};
    for (int t = 0; t < 2; t++) {
        float l[B];
        ck_assert(rc_buffer_copy(&ctx, pts[t], rc_model_input(&m), sizeof x, "x", &e) == 0 &&
                  rc_model_forward(&ctx, &m, 1, B, &e) == 0 &&
                  rc_ce_forward_backward(&ctx, B, K, rc_model_logits(&m), labels, loss, correct,
                                         NULL, &e) == 0);
        download_bytes(&ctx, loss, l, sizeof l);
        mean[t] = 0;
        for (int b = 0; b < B; b++) mean[t] += l[b] / B;
    }
    ck_assert_msg(mean[1] > 2 * mean[0] + 0.1, "clean CE %g, after MSD %g", mean[0], mean[1]);
    static float best[B * D];
    download_bytes(&ctx, a.x_best, best, sizeof best);
    for (int b = 0; b < B; b++) {
        double l1 = 0, l2 = 0, li = 0;
        for (int i = 0; i < D; i++) {
            float v = best[b * D + i];
            ck_assert(v >= 0.0f && v <= 1.0f);
            double dj = (double)v - x[b * D + i];
            l1 += fabs(dj), l2 += dj * dj, li = fmax(li, fabs(dj));
        }
        ck_assert_msg(li <= mo.eps_linf * (1 + 1e-5) || sqrt(l2) <= mo.eps_l2 * (1 + 1e-5) ||
                          l1 <= mo.eps_l1 * (1 + 1e-5),
                      "sample %d outside every ball: linf %g, l2 %g, l1 %g", b, li, sqrt(l2), l1);
    }
    clReleaseMemObject(xb), clReleaseMemObject(labels);
    clReleaseMemObject(loss), clReleaseMemObject(correct);
    rc_msd_free(&a);
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}
END_TEST

/* Raw IDX files of n random 28x28 images in dir (as the MNIST loader reads them), the same files
 * as the train and the test split. */
static void write_idx(const char *dir, int n) {
    unsigned s = 12345;
    size_t len = 16 + (size_t)n * 784;
    unsigned char *img = malloc(len), *lab = malloc(8 + (size_t)n);
    ck_assert(img && lab);
    const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n >> 8), (unsigned char)n,
                                   0, 0, 0, 28, 0, 0, 0, 28};
    const unsigned char lh[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(img, hdr, 16);
    for (size_t i = 16; i < len; i++)
        img[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 24);
    memcpy(lab, lh, 8);
    for (int i = 0; i < n; i++) lab[8 + i] = (unsigned char)(i % 10);
    static const char *const split[2] = {"train", "t10k"};
    for (int k = 0; k < 2; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split[k]);
        write_bytes(path, img, len);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split[k]);
        write_bytes(path, lab, 8 + (size_t)n);
    }
    free(img);
    free(lab);
}

static void train_two_batches(rc_method method, rc_ramp_outer outer) {
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
    cfg.ramp.outer = outer;
    cfg.msd.steps = 2;
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
                                 RC_METHOD_AVG, RC_METHOD_MAX, RC_METHOD_MSD, RC_METHOD_RAMP};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        train_two_batches(methods[i], RC_OUTER_MAX);
    train_two_batches(RC_METHOD_RAMP, RC_OUTER_TRADES);
}
END_TEST

int main(void) {
    Suite *s = suite_create("methods");
    TCase *tc = tcase_create("methods");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, eat_weights_follow_error_counters);
    tcase_add_test(tc, eat_draws_linf_and_l1_unless_configured);
    tcase_add_test(tc, max_picks_highest_loss_ties_to_first);
    tcase_add_test(tc, pair_picks_the_two_least_robust_norms);
    tcase_add_test(tc, ramp_loss_matches_host);
    tcase_add_test(tc, ramp_loss_with_empty_mask);
    tcase_add_test(tc, ramp_trades_loss_matches_host);
    tcase_add_test(tc, ramp_loss_split_equals_whole);
    tcase_add_test(tc, ramp_trades_loss_split_equals_whole);
    tcase_add_test(tc, avg_loss_and_gradient_match_host);
    tcase_add_test(tc, loss_kernels_ignore_group_size);
    tcase_add_test(tc, msd_candidates_match_host);
    tcase_add_test(tc, msd_selection_order_and_ties);
    tcase_add_test(tc, msd_raises_the_loss);
    tcase_add_test(tc, every_method_trains_two_batches);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
