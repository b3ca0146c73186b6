#include "ramp/bench.h"
#include "ramp/apgd.h"
#include "ramp/clock.h"
#include "ramp/fab.h"
#include "ramp/square.h"
#include "ramp/methods.h"
#include "ramp/launch.h"
#include "ramp/loss.h"
#include "ramp/model.h"
#include "ramp/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef enum { W_TRAIN, W_FORWARD, W_ATTACK } workload;
static const char *const workload_names[] = {"train", "forward", "attack"};
/* FLOPs per image as multiples of the forward pass: backward costs two forwards (input and
 * weight gradients), an attack step one (input gradient only). */
static const double workload_flops[] = {3.0, 1.0, 2.0};

typedef struct bench_io {
    cl_mem labels, loss, correct;
} bench_io;

static int step(rc_ctx *ctx, rc_model *m, rc_sgd *opt, const bench_io *io, workload w, int n,
                rc_err *e) {
    int train = w == W_TRAIN;
    if (rc_model_forward(ctx, m, train, n, e)) return -1;
    if (w == W_FORWARD) return 0;
    return rc_ce_forward_backward(ctx, n, m->opts.num_classes, rc_model_logits(m), io->labels,
                                  io->loss, io->correct, rc_model_logits_grad(m), e) ||
           rc_model_backward(ctx, m, train, n, train, !train, e) ||
           (train && rc_sgd_step(ctx, opt, m, 0.01f, e));
}

/* A RAMP training batch as the reference's published setting runs it: APGD with 10 steps for
 * l_inf and l_1, MAX selection, three forward/backward passes, KL pairing, SGD; with GP also the
 * per-batch share of its natural epoch (one clean step on a second model). */
static int bench_ramp(rc_ctx *ctx, rc_model *m, const float *x, const int32_t *y, int n,
                      const bench_io *io, const rc_bench_opts *o, rc_err *e) {
    rc_config cfg;
    rc_config_defaults(&cfg);
    cfg.method = RC_METHOD_RAMP;
    int small = m->opts.arch == RC_ARCH_SMALL_CNN;
    cfg.n_threats = 2;
    cfg.threats[0] = (rc_threat){.norm = RC_NORM_LINF, .eps = small ? 0.1 : 8.0 / 255, .steps = 10};
    cfg.threats[1] = (rc_threat){.norm = RC_NORM_L1, .eps = small ? 10 : 12, .steps = 10};
    cfg.ramp.pair[0] = RC_NORM_LINF, cfg.ramp.pair[1] = RC_NORM_L1;
    cfg.ramp.lambda = 1.5;
    int d = m->opts.in_channels * m->opts.input_size * m->opts.input_size, r = -1;
    rc_adv_trainer t;
    rc_model nat;
    memset(&nat, 0, sizeof nat);
    rc_sgd opt, opt_nat;
    rc_sgd_init(&opt, 0.9f, 5e-4f, 0, 1, 1);
    rc_sgd_init(&opt_nat, 0.9f, 5e-4f, 0, 1, 1);
    if (rc_adv_trainer_init(ctx, &t, &cfg, m, n, d, e) ||
        rc_model_create(ctx, &nat, &m->opts, n, e) || rc_model_init(ctx, &nat, 1, e) ||
        rc_buffer_write(ctx, t.apgd.x, 0, (size_t)n * d * 4, x, "images", e) ||
        rc_buffer_write(ctx, t.apgd.labels, 0, (size_t)n * 4, y, "labels", e) ||
        rc_buffer_write(ctx, rc_model_input(&nat), 0, (size_t)n * d * 4, x, "images", e))
        goto out;
    printf("  %-9s %10s %12s   (RAMP batch: APGD 10 l_inf + 10 l_1 steps, lambda 1.5)\n",
           "ramp", "ms/batch", "images/s");
    for (int gp = 0; gp < 2; gp++) {
        int runs = 0;
        double t0 = 0, el = 0;
        for (int it = -1; it < 0 || el < o->min_seconds || runs < 2; it++) {
            if (it == 0) t0 = rc_now_s(); /* iteration -1 warms up */
            if (rc_adv_trainer_step(ctx, &t, m, n, n, io->labels, io->loss, io->correct, e) ||
                rc_sgd_step(ctx, &opt, m, 0.01f, e) ||
                (gp && step(ctx, &nat, &opt_nat, io, W_TRAIN, n, e)) || rc_ctx_finish(ctx, e))
                goto out;
            if (it >= 0) runs++, el = rc_now_s() - t0;
        }
        printf("  ramp%-5s %10.1f %12.1f\n", gp ? "+gp" : "", 1e3 * el / runs, n * runs / el);
        fflush(stdout);
    }
    r = 0;
out:
    rc_model_free(&nat);
    rc_adv_trainer_free(&t);
    return r;
}

/* The models benchmarked: the reference's and the WideResNets of the paper's Table 3 and 21
 * (RobustBench's Carmon et al. and Gowal et al. models), default activation and width. */
static const struct bench_model {
    const char *name;
    rc_arch arch;
    int depth, width, by_default;
} MODELS[] = {
    {"small-cnn", RC_ARCH_SMALL_CNN, 0, 32, 1},
    {"preact-resnet18", RC_ARCH_PREACT_RESNET18, 0, 64, 1},
    {"wrn-28-10", RC_ARCH_WRN, 28, 10, 0},
    {"wrn-34-10", RC_ARCH_WRN, 34, 10, 0},
    {"wrn-34-20", RC_ARCH_WRN, 34, 20, 0},
    {"wrn-70-16", RC_ARCH_WRN, 70, 16, 0},
    {"dm-wrn-28-10", RC_ARCH_DM_WRN, 28, 10, 0},
    {"dm-wrn-34-20", RC_ARCH_DM_WRN, 34, 20, 0},
    {"dm-wrn-70-16", RC_ARCH_DM_WRN, 70, 16, 0},
};
#define N_MODELS (sizeof MODELS / sizeof *MODELS)

int rc_bench_model_known(const char *name) {
    if (!strcmp(name, "all")) return 1;
    for (size_t i = 0; i < N_MODELS; i++)
        if (!strcmp(name, MODELS[i].name)) return 1;
    return 0;
}

const char *rc_bench_model_names(char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_MODELS && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s, ", MODELS[i].name);
    if (k < n) snprintf(buf + k, n - k, "all");
    return buf;
}

/* The attacks of the standard protocol in evaluation mode (ramp-cl eval): APGD-T (targeted DLR
 * from the clean point), FAB-T and Square, each over `iters` iterations (Square: queries after
 * its initial point) on n points; their speed per iteration is that of a whole run. */
typedef enum { E_APGD_T, E_FAB_T, E_SQUARE } eval_attack;
static const char *const eval_attack_names[] = {"apgd-t", "fab-t", "square"};

typedef struct eval_bench {
    rc_apgd a;
    rc_fab f;
    rc_square sq;
} eval_bench;

static int eval_attack_run(rc_ctx *ctx, eval_bench *b, rc_model *m, eval_attack w, rc_norm norm,
                           float eps, int n, int iters, rc_err *e) {
    if (w == E_APGD_T) {
        rc_apgd_opts ao = {.norm = norm, .eps = eps, .n_iter = iters,
                           .loss = RC_LOSS_DLR_TARGETED};
        return rc_apgd_run(ctx, &b->a, m, &ao, n, 0, e);
    }
    if (w == E_FAB_T) {
        rc_fab_opts fo = {.norm = norm, .eps = eps, .n_iter = iters};
        return rc_fab_run(ctx, &b->f, m, &fo, n, NULL, e);
    }
    rc_square_opts so = {.norm = norm, .eps = eps, .n_queries = iters, .p_init = 0.8f, .key = 1};
    if (rc_square_init(ctx, &b->sq, m, &so, n, e)) return -1;
    for (int it = 0; it < iters; it++)
        if (rc_square_step(ctx, &b->sq, m, &so, n, it, e)) return -1;
    return 0;
}

static int bench_eval_attacks(rc_ctx *ctx, rc_model *m, const float *x, const int32_t *y, int n,
                              const float *eps, const rc_bench_opts *o, rc_err *e) {
    const int iters = 10, c = m->opts.in_channels, h = m->opts.input_size, d = c * h * h;
    const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
    int32_t *t = malloc(sizeof(int32_t) * n);
    eval_bench b;
    memset(&b, 0, sizeof b);
    int r = -1;
    if (!t) {
        rc_err_set(e, "out of host memory for the benchmark targets");
        goto out;
    }
    for (int i = 0; i < n; i++) t[i] = (y[i] + 1) % m->opts.num_classes;
    if (rc_apgd_alloc(ctx, &b.a, n, d, iters, e) || rc_fab_alloc(ctx, &b.f, n, d, e) ||
        rc_square_alloc(ctx, &b.sq, n, c, h, h, e))
        goto out;
    const cl_mem xs[3] = {b.a.x, b.f.x, b.sq.x}, ys[3] = {b.a.labels, b.f.labels, b.sq.labels};
    for (int k = 0; k < 3; k++)
        if (rc_buffer_write(ctx, xs[k], 0, (size_t)n * d * 4, x, "images", e) ||
            rc_buffer_write(ctx, ys[k], 0, (size_t)n * 4, y, "labels", e))
            goto out;
    if (rc_buffer_write(ctx, b.a.targets, 0, (size_t)n * 4, t, "targets", e) ||
        rc_buffer_write(ctx, b.f.targets, 0, (size_t)n * 4, t, "targets", e))
        goto out;
    printf("  %-12s %10s %12s   (the standard protocol's attacks, evaluation mode)\n", "eval",
           "ms/iter", "pt*it/s");
    for (eval_attack w = E_APGD_T; w <= E_SQUARE; w++)
        for (int k = 0; k < 3; k++) {
            /* one untimed run compiles the kernels */
            if (eval_attack_run(ctx, &b, m, w, norms[k], eps[k], n, iters, e) ||
                rc_ctx_finish(ctx, e))
                goto out;
            int runs = 0;
            double t0 = rc_now_s(), el;
            do {
                if (eval_attack_run(ctx, &b, m, w, norms[k], eps[k], n, iters, e) ||
                    rc_ctx_finish(ctx, e))
                    goto out;
                runs++;
                el = rc_now_s() - t0;
            } while (el < o->min_seconds || runs < 2);
            char name[24];
            snprintf(name, sizeof name, "%s-%s", eval_attack_names[w], rc_norm_name(norms[k]));
            printf("  %-12s %10.2f %12.1f\n", name, 1e3 * el / (runs * iters),
                   (double)n * iters * runs / el);
            fflush(stdout);
        }
    r = 0;
out:
    rc_apgd_free(&b.a);
    rc_fab_free(&b.f);
    rc_square_free(&b.sq);
    free(t);
    return r;
}

static void model_opts(const struct bench_model *bm, rc_model_opts *mo) {
    if (bm->arch == RC_ARCH_SMALL_CNN)
        rc_model_opts_default(mo, bm->arch, 1, 28);
    else
        rc_model_opts_default(mo, bm->arch, 3, 32);
    mo->depth = bm->depth;
    mo->width = bm->width;
}

static int bench_model(rc_ctx *ctx, const struct bench_model *bm, const rc_bench_opts *o,
                       rc_err *e) {
    rc_model_opts mo;
    const rc_arch arch = bm->arch;
    model_opts(bm, &mo);
    rc_model m;
    bench_io io = {0};
    int n = o->batch, r = -1;
    size_t img = (size_t)mo.in_channels * mo.input_size * mo.input_size;
    float *x = malloc((size_t)n * img * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return rc_err_set(e, "out of host memory for the benchmark batch");
    }
    rc_rng rng;
    rc_rng_seed(&rng, 1, 2);
    for (size_t i = 0; i < (size_t)n * img; i++) x[i] = rc_rng_uniform(&rng);
    for (int i = 0; i < n; i++) y[i] = (int32_t)rc_rng_below(&rng, 10);
    if (rc_model_create(ctx, &m, &mo, n, e)) {
        free(x);
        free(y);
        return -1;
    }
    rc_sgd opt;
    rc_sgd_init(&opt, 0.9f, 5e-4f, 0, 1, 1);
    if (rc_model_init(ctx, &m, 0, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "labels", &io.labels, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "loss", &io.loss, e) ||
        rc_buffer_create(ctx, (size_t)n * 4, "correct", &io.correct, e) ||
        rc_buffer_write(ctx, io.labels, 0, (size_t)n * 4, y, "labels", e) ||
        rc_buffer_write(ctx, rc_model_input(&m), 0, (size_t)n * img * 4, x, "images", e))
        goto out;
    double f = rc_model_forward_flops(&m);
    printf("%s: %s, width %d, input %dx%dx%d, batch %d, %.1f MFLOP/image forward\n", bm->name,
           rc_activation_name(mo.activation), mo.width, mo.in_channels, mo.input_size,
           mo.input_size, n, f / 1e6);
    printf("  %-9s %10s %12s %10s\n", "workload", "ms/step", "images/s", "GFLOP/s");
    for (workload w = W_TRAIN; w <= W_ATTACK; w++) {
        /* one untimed step compiles and warms every kernel */
        if (step(ctx, &m, &opt, &io, w, n, e) || rc_ctx_finish(ctx, e)) goto out;
        rc_profile_reset(ctx);
        int iters = 0;
        double t0 = rc_now_s(), t;
        do {
            if (step(ctx, &m, &opt, &io, w, n, e) || rc_ctx_finish(ctx, e)) goto out;
            iters++;
            t = rc_now_s() - t0;
        } while (t < o->min_seconds || iters < 2);
        double ms = 1e3 * t / iters;
        printf("  %-9s %10.2f %12.1f %10.2f\n", workload_names[w], ms, n * 1e3 / ms,
               workload_flops[w] * f * n / (ms * 1e6));
        if (ctx->profile) rc_profile_print(ctx, stdout); /* this workload's kernels */
        fflush(stdout);
    }
    /* APGD in training mode (10 iterations, as RAMP trains) for each norm: images x iterations
     * per second; each iteration is one attack step plus the projection and bookkeeping. */
    {
        rc_apgd a;
        const int iters = 10;
        const rc_norm norms[3] = {RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1};
        const float eps_small[3] = {0.1f, 1.5f, 10.0f}, eps_cifar[3] = {8.0f / 255, 0.5f, 12.0f};
        if (rc_apgd_alloc(ctx, &a, n, (int)img, iters, e)) goto out;
        int ok = rc_buffer_write(ctx, a.x, 0, (size_t)n * img * 4, x, "images", e) == 0 &&
                 rc_buffer_write(ctx, a.labels, 0, (size_t)n * 4, y, "labels", e) == 0;
        printf("  %-9s %10s %12s   (APGD, %d iterations, training mode)\n", "attack",
               "ms/attack", "img*it/s", iters);
        for (int t = 0; ok && t < 3; t++) {
            rc_apgd_opts ao = {.norm = norms[t], .n_iter = iters, .loss = RC_LOSS_CE, .train = 1,
                               .eps = arch == RC_ARCH_SMALL_CNN ? eps_small[t] : eps_cifar[t]};
            ok = rc_apgd_run(ctx, &a, &m, &ao, n, 0, e) == 0 && rc_ctx_finish(ctx, e) == 0;
            rc_profile_reset(ctx);
            int runs = 0;
            double t0 = rc_now_s(), el;
            do {
                ok =
                    ok && rc_apgd_run(ctx, &a, &m, &ao, n, 0, e) == 0 && rc_ctx_finish(ctx, e) == 0;
                runs++;
                el = rc_now_s() - t0;
            } while (ok && (el < o->min_seconds || runs < 2));
            if (ok)
                printf("  apgd-%-4s %10.1f %12.1f\n", rc_norm_name(norms[t]), 1e3 * el / runs,
                       (double)n * iters * runs / el);
            fflush(stdout);
        }
        rc_apgd_free(&a);
        if (!ok) goto out;
    }
    if (bench_eval_attacks(ctx, &m, x, y, n,
                           arch == RC_ARCH_SMALL_CNN ? (const float[]){0.1f, 1.5f, 10.0f}
                                                     : (const float[]){8.0f / 255, 0.5f, 12.0f},
                           o, e) ||
        bench_ramp(ctx, &m, x, y, n, &io, o, e))
        goto out;
    r = 0;
out:
    if (io.labels) clReleaseMemObject(io.labels);
    if (io.loss) clReleaseMemObject(io.loss);
    if (io.correct) clReleaseMemObject(io.correct);
    rc_model_free(&m);
    free(x);
    free(y);
    return r;
}

int rc_bench_run(rc_ctx *ctx, const rc_bench_opts *o, rc_err *e) {
    printf("ramp-cl bench on [%d] %s (%s, driver %s, %s class)\n", ctx->dev.index,
           ctx->dev.name, ctx->dev.platform_name, ctx->dev.driver_version,
           rc_device_class_name(ctx->cls));
    int all = o->model && !strcmp(o->model, "all");
    double peak = 0;
    if (o->layers && rc_bench_peak(ctx, &peak, e)) return -1;
    for (size_t i = 0; i < N_MODELS; i++) {
        if (o->model ? !all && strcmp(o->model, MODELS[i].name) : !MODELS[i].by_default) continue;
        if (!o->layers) {
            if (bench_model(ctx, &MODELS[i], o, e)) return -1;
            continue;
        }
        rc_model_opts mo;
        rc_model m;
        model_opts(&MODELS[i], &mo);
        if (rc_model_create(ctx, &m, &mo, o->batch, e)) return -1;
        printf("%s: convolutions\n", MODELS[i].name);
        int r = rc_bench_layers(ctx, &m, o->batch, o->min_seconds, peak, e);
        rc_model_free(&m);
        if (r) return -1;
    }
    return 0;
}
