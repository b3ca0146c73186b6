/* The training loop (every method; the adversarial ones through ramp/methods.h) and everything
 * around it (run directory, metrics, checkpoints, evaluation). */
#include "ramp/train.h"
#include "ramp/checkpoint.h"
#include "ramp/eval.h"
#include "ramp/files.h"
#include "ramp/gp.h"
#include "ramp/launch.h"
#include "ramp/methods.h"
#include "ramp/optim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


int rc_load_split(const rc_config *cfg, int train, uint32_t first_k, rc_dataset *d, rc_err *e) {
    if (cfg->data.dataset == RC_DATASET_CIFAR10)
        return rc_dataset_load_cifar10(d, cfg->data.path, train, first_k, e);
    return rc_dataset_load_mnist_dir(d, cfg->data.path, train, first_k, e);
}

/* Device buffers of one batch: labels and per-sample loss/correctness, plus running sums. */
typedef struct batch_io {
    cl_mem labels, loss, correct, stats; /* stats: loss sum, correct, count */
    float *x;
    int32_t *y;
} batch_io;

static int batch_io_alloc(rc_ctx *ctx, batch_io *b, const rc_model *m, rc_err *e) {
    size_t n = (size_t)m->max_batch;
    size_t img = (size_t)m->opts.in_channels * m->opts.input_size * m->opts.input_size;
    memset(b, 0, sizeof *b);
    b->x = malloc(n * img * sizeof(float));
    b->y = malloc(n * sizeof(int32_t));
    if (!b->x || !b->y) return rc_err_set(e, "out of host memory for a batch of %zu", n);
    return rc_buffer_create(ctx, n * 4, "labels", &b->labels, e) ||
           rc_buffer_create(ctx, n * 4, "per-sample loss", &b->loss, e) ||
           rc_buffer_create(ctx, n * 4, "per-sample correctness", &b->correct, e) ||
           rc_buffer_create(ctx, 3 * 4, "running statistics", &b->stats, e);
}

static void batch_io_free(batch_io *b) {
    cl_mem all[] = {b->labels, b->loss, b->correct, b->stats};
    for (size_t i = 0; i < 4; i++)
        if (all[i]) clReleaseMemObject(all[i]);
    free(b->x);
    free(b->y);
}

static int upload_batch(rc_ctx *ctx, rc_model *m, batch_io *b, uint32_t n, rc_err *e) {
    size_t img = (size_t)m->opts.in_channels * m->opts.input_size * m->opts.input_size;
    return rc_buffer_write(ctx, rc_model_input(m), 0, n * img * sizeof(float), b->x, "images", e) ||
           rc_buffer_write(ctx, b->labels, 0, n * sizeof(int32_t), b->y, "labels", e);
}

static int accumulate(rc_ctx *ctx, batch_io *b, int n, rc_err *e) {
    size_t one = 1;
    return RC_LAUNCH(ctx, "loss.cl", "ce_accumulate", 1, &one, e, RC_ARG(b->loss),
                     RC_ARG(b->correct), RC_ARG(b->stats), RC_ARG(n));
}

static int read_stats(rc_ctx *ctx, batch_io *b, double *loss, double *acc, rc_err *e) {
    float s[3];
    if (rc_buffer_read(ctx, b->stats, 0, sizeof s, s, "running statistics", e)) return -1;
    *loss = s[2] > 0 ? s[0] / s[2] : 0;
    *acc = s[2] > 0 ? s[1] / s[2] : 0;
    return 0;
}

int rc_eval_clean(rc_ctx *ctx, rc_model *m, const rc_dataset *d, uint32_t n, double *acc,
                  double *loss, rc_err *e) {
    if (n == 0 || n > d->n) n = d->n;
    batch_io b;
    int r = -1;
    if (batch_io_alloc(ctx, &b, m, e) || rc_fill(ctx, b.stats, 0, 3, 0.0f, e)) goto out;
    for (uint32_t start = 0; start < n;) {
        uint32_t cnt = n - start < (uint32_t)m->max_batch ? n - start : (uint32_t)m->max_batch;
        if (rc_dataset_slice(d, start, cnt, b.x, b.y) != 0) {
            rc_err_set(e, "evaluation: points %u..%u outside %s", start, start + cnt, d->name);
            goto out;
        }
        if (upload_batch(ctx, m, &b, cnt, e) || rc_model_forward(ctx, m, 0, (int)cnt, e) ||
            rc_ce_forward_backward(ctx, (int)cnt, m->opts.num_classes, rc_model_logits(m),
                                   b.labels, b.loss, b.correct, NULL, e) ||
            accumulate(ctx, &b, (int)cnt, e))
            goto out;
        start += cnt;
    }
    r = read_stats(ctx, &b, loss, acc, e);
out:
    batch_io_free(&b);
    return r;
}

static int mkdir_p(const char *path, rc_err *e) {
    if (rc_mkdir_p(path) != 0)
        return rc_err_set(e, "cannot create run directory %s: %s", path, strerror(errno));
    return 0;
}

/* Write the resolved config next to the results, atomically. */
static int write_config(const rc_config *cfg, const char *dir, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    rc_atomic_file a;
    if (rc_atomic_begin(&a, path, e)) return -1;
    rc_config_print(a.f, cfg);
    return rc_atomic_commit(&a, e);
}

/* One JSON line per epoch, appended and synced, so a crash loses at most the line in flight. */
static int append_metrics(const char *dir, const char *line, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    if (!f) return rc_err_set(e, "cannot open %s: %s", path, strerror(errno));
    int bad = fputs(line, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad) return rc_err_set(e, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static void model_opts_from_config(const rc_config *cfg, rc_model_opts *o) {
    o->arch = cfg->model.arch;
    o->activation = cfg->model.activation == RC_ACTIVATION_RELU ? RC_ACT_RELU : RC_ACT_SOFTPLUS;
    o->width = cfg->model.width;
    o->in_channels = cfg->model.in_channels;
    o->num_classes = cfg->model.num_classes;
    o->input_size = cfg->model.input_size;
}

static int check_data_matches(const rc_config *cfg, const rc_dataset *d, rc_err *e) {
    if ((int)d->c != cfg->model.in_channels || (int)d->h != cfg->model.input_size ||
        (int)d->w != cfg->model.input_size)
        return rc_err_set(e, "%s has %ux%ux%u images but model.in_channels/input_size say %dx%dx%d",
                          d->name, d->c, d->h, d->w, cfg->model.in_channels,
                          cfg->model.input_size, cfg->model.input_size);
    if ((int)d->num_classes > cfg->model.num_classes)
        return rc_err_set(e, "%s has %u classes but model.num_classes is %d", d->name,
                          d->num_classes, cfg->model.num_classes);
    return 0;
}

/* Gradient projection (spec 5, following the paper's beta, 12.1): once per epoch a natural epoch
 * from the same start on a separate model with its own persistent optimiser and shuffle, then
 * every state-dict tensor of the adversarially trained model is merged per tensor with the
 * natural delta by their cosine. */
typedef struct gp_state {
    rc_model nat;
    rc_sgd opt;
    rc_batcher batcher;
    rc_gp_snapshot old;
    rc_gp_tensor *tensors;
    int n_tensors;
    double *cos;
} gp_state;

static int gp_init(rc_ctx *ctx, gp_state *g, const rc_config *cfg, rc_model *m,
                   const rc_dataset *train, rc_err *e) {
    if (rc_model_create(ctx, &g->nat, &m->opts, m->max_batch, e)) return -1;
    rc_sgd_init(&g->opt, (float)cfg->optimizer.momentum, (float)cfg->optimizer.weight_decay,
                cfg->optimizer.nesterov, cfg->optimizer.param_groups == RC_PARAM_GROUPS_SPLIT,
                cfg->optimizer.lr_all_groups);
    g->tensors = calloc((size_t)m->n_params, sizeof *g->tensors);
    g->cos = calloc((size_t)m->n_params, sizeof *g->cos);
    if (!g->tensors || !g->cos) return rc_err_set(e, "out of host memory for gradient projection");
    for (int i = 0; i < m->n_params; i++) {
        const rc_param *p = &m->params[i];
        if (p->kind == RC_P_NUM_BATCHES) continue; /* copied from the adversarial model */
        int state = p->kind == RC_P_RUNNING_MEAN || p->kind == RC_P_RUNNING_VAR;
        g->tensors[g->n_tensors++] = (rc_gp_tensor){p->offset, p->numel, state};
    }
    return rc_gp_snapshot_alloc(ctx, &g->old, m->n_train, m->n_state, e) ||
           rc_batcher_init(&g->batcher, train, (uint32_t)cfg->data.batch_size,
                           cfg->seed ^ 0x6e6174ULL /* its own shuffle */, 1,
                           cfg->data.augment == RC_AUGMENT_CROP_FLIP, e);
}

static void gp_free(gp_state *g) {
    rc_model_free(&g->nat);
    rc_batcher_free(&g->batcher);
    rc_gp_snapshot_free(&g->old);
    free(g->tensors);
    free(g->cos);
}

/* The natural epoch of GP: theta_old is saved, the natural model starts from it and trains one
 * epoch of clean batches (same schedule, its own optimiser state and shuffle). */
static int gp_natural_epoch(rc_ctx *ctx, gp_state *g, rc_model *m, batch_io *b,
                            const rc_config *cfg, int epoch, rc_err *e) {
    rc_model *nat = &g->nat;
    if (rc_gp_snapshot_take(ctx, &g->old, m->arena, m->state, e) ||
        rc_gp_snapshot_restore(ctx, &g->old, nat->arena, nat->state, e))
        return rc_err_prefix(e, "gradient projection: ");
    nat->bn_batches = m->bn_batches;
    rc_batcher_start_epoch(&g->batcher, (uint32_t)epoch);
    uint32_t nb = rc_batcher_num_batches(&g->batcher);
    for (uint32_t i = 0;; i++) {
        uint32_t n = rc_batcher_next(&g->batcher, b->x, b->y);
        if (n == 0) break;
        float t = (float)epoch + (float)(i + 1) / (float)nb;
        float lr = rc_schedule_lr(cfg->schedule.name, (float)cfg->optimizer.lr,
                                  cfg->schedule.epochs, t, cfg->schedule.static_drop_epoch);
        if (upload_batch(ctx, nat, b, n, e) || rc_model_forward(ctx, nat, 1, (int)n, e) ||
            rc_ce_forward_backward(ctx, (int)n, nat->opts.num_classes, rc_model_logits(nat),
                                   b->labels, b->loss, b->correct, rc_model_logits_grad(nat), e) ||
            rc_model_backward(ctx, nat, 1, (int)n, RC_GRAD_WRITE, 0, e) ||
            rc_sgd_step(ctx, &g->opt, nat, lr, e))
            return rc_err_prefix(e, "gradient projection, natural epoch %d, batch %u: ",
                                 epoch + 1, i + 1);
    }
    return 0;
}

/* After the adversarial epoch: merge into m; cosines are kept for the metrics. */
static int gp_merge(rc_ctx *ctx, gp_state *g, rc_model *m, const rc_config *cfg, rc_err *e) {
    if (rc_gp_merge(ctx, &g->old, m->arena, m->state, g->nat.arena, g->nat.state, g->tensors,
                    g->n_tensors, (float)cfg->ramp.beta, g->cos, e))
        return rc_err_prefix(e, "gradient projection: ");
    return 0;
}

/* The threat models in the paper's column order: l_inf, l_2, l_1. */
static int ordered_threats(const rc_config *cfg, rc_threat *out) {
    int n = 0;
    for (rc_norm p = RC_NORM_LINF; p <= RC_NORM_L1; p++) {
        int k = rc_config_find_threat(cfg, p);
        if (k >= 0) out[n++] = cfg->threats[k];
    }
    return n;
}

/* Robust evaluation of model m as the config says; table on stdout, JSON in the run directory. */
static int evaluate(rc_ctx *ctx, rc_model *m, const rc_config *cfg, const rc_dataset *test,
                    const char *checkpoint, int full, int n, rc_err *e) {
    if (cfg->n_threats == 0)
        return rc_err_set(e, "robust evaluation needs threat_models in the config");
    rc_eval_report r;
    printf("ramp-cl: %s evaluation of %s on the first %d test points\n", full ? "full" : "fast",
           checkpoint, n);
    fflush(stdout);
    rc_threat ordered[RC_MAX_THREATS];
    int n_ordered = ordered_threats(cfg, ordered);
    if (rc_eval_robust(ctx, m, test, n, ordered, n_ordered,
                       full ? RC_PROTOCOL_FULL : RC_PROTOCOL_FAST, cfg->seed, cfg->data.eval_batch_size,
                       stdout, &r, e))
        return -1;
    rc_eval_print_table(stdout, &r);
    char path[RC_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/eval-%s.json", cfg->output.dir, full ? "full" : "fast");
    int ret = mkdir_p(cfg->output.dir, e) || rc_eval_write_json(&r, checkpoint, path, e);
    if (!ret) printf("ramp-cl: per-point outcomes in %s\n", path);
    rc_eval_report_free(&r);
    return ret ? -1 : 0;
}

int rc_eval_run(rc_ctx *ctx, const rc_config *cfg, const char *checkpoint, int full, int n,
                rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 32];
    if (!checkpoint) {
        snprintf(path, sizeof path, "%s/model.safetensors", cfg->output.dir);
        checkpoint = path;
    }
    rc_model_opts o;
    if (rc_checkpoint_read_opts(checkpoint, &o, e)) return -1;
    rc_dataset test = {0};
    rc_model m;
    memset(&m, 0, sizeof m);
    int r = -1;
    if (rc_load_split(cfg, 0, 0, &test, e)) goto out;
    if ((int)test.c != o.in_channels || (int)test.h != o.input_size) {
        rc_err_set(e, "%s was trained on %dx%dx%d images, %s has %ux%ux%u", checkpoint,
                   o.in_channels, o.input_size, o.input_size, test.name, test.c, test.h, test.w);
        goto out;
    }
    if (rc_model_create(ctx, &m, &o, cfg->data.eval_batch_size, e) ||
        rc_checkpoint_load(ctx, &m, NULL, NULL, checkpoint, e) ||
        evaluate(ctx, &m, cfg, &test, checkpoint, full, n > 0 ? n : cfg->eval.final_n, e))
        goto out;
    r = 0;
out:
    rc_model_free(&m);
    rc_dataset_free(&test);
    return r;
}

int rc_train_run(rc_ctx *ctx, const rc_config *cfg, int verbose, rc_err *e) {
    (void)verbose;
    rc_dataset train = {0}, test = {0};
    rc_model m;
    memset(&m, 0, sizeof m);
    rc_batcher batcher;
    memset(&batcher, 0, sizeof batcher);
    batch_io b;
    memset(&b, 0, sizeof b);
    rc_adv_trainer adv;
    memset(&adv, 0, sizeof adv);
    gp_state gp;
    memset(&gp, 0, sizeof gp);
    char *line = NULL;
    int adversarial = cfg->method != RC_METHOD_NATURAL;
    int r = -1;
    const char *dir = cfg->output.dir;
    if (rc_load_split(cfg, 1, (uint32_t)cfg->data.train_subset, &train, e) ||
        rc_load_split(cfg, 0, 0, &test, e) || check_data_matches(cfg, &train, e) ||
        mkdir_p(dir, e) || write_config(cfg, dir, e))
        goto out;
    rc_model_opts o;
    model_opts_from_config(cfg, &o);
    int max_batch = cfg->data.batch_size > cfg->data.eval_batch_size ? cfg->data.batch_size
                                                                     : cfg->data.eval_batch_size;
    if (rc_model_create(ctx, &m, &o, max_batch, e)) goto out;
    if (cfg->init[0] ? rc_checkpoint_load(ctx, &m, NULL, NULL, cfg->init, e)
                     : rc_model_init(ctx, &m, cfg->seed, e))
        goto out;
    int split = cfg->optimizer.param_groups == RC_PARAM_GROUPS_SPLIT;
    rc_sgd opt;
    rc_sgd_init(&opt, (float)cfg->optimizer.momentum, (float)cfg->optimizer.weight_decay,
                cfg->optimizer.nesterov, split, cfg->optimizer.lr_all_groups);
    int augment = cfg->data.augment == RC_AUGMENT_CROP_FLIP;
    if (rc_batcher_init(&batcher, &train, (uint32_t)cfg->data.batch_size, cfg->seed, 1, augment,
                        e) ||
        batch_io_alloc(ctx, &b, &m, e))
        goto out;
    int d = o.in_channels * o.input_size * o.input_size;
    if (adversarial && rc_adv_trainer_init(ctx, &adv, cfg, &m, cfg->data.batch_size, d, e))
        goto out;
    int use_gp = cfg->method == RC_METHOD_RAMP && cfg->ramp.gp;
    if (use_gp && gp_init(ctx, &gp, cfg, &m, &train, e)) goto out;
    size_t line_cap = 512 + 16 * (size_t)m.n_params;
    if (!(line = malloc(line_cap))) {
        rc_err_set(e, "out of host memory for the metrics line");
        goto out;
    }
    uint32_t nb = rc_batcher_num_batches(&batcher);
    printf("ramp-cl: %s on %s (%u training images, %u batches of %d), model %s (%d "
           "parameters tensors), device %s\n",
           rc_method_name(cfg->method), train.name, train.n, nb, cfg->data.batch_size,
           rc_arch_name(o.arch), m.n_params, ctx->dev.name);
    if (split && !cfg->optimizer.lr_all_groups)
        printf("ramp-cl: note: as in the reference code, the schedule sets the lr of weights "
               "only; BN parameters and biases keep lr %.3g (optimizer.lr_all_groups: true "
               "changes this)\n", opt.group1_lr);
    fflush(stdout);
    double t0 = rc_now_s();
    rc_train_progress progress = {0, 0};
    for (int epoch = 0; epoch < cfg->schedule.epochs; epoch++) {
        double te = rc_now_s(), last_report = te;
        if (use_gp) {
            if (gp_natural_epoch(ctx, &gp, &m, &b, cfg, epoch, e)) goto out;
            printf("  epoch %d: natural epoch for gradient projection done, %.1f s\n", epoch + 1,
                   rc_now_s() - te);
            fflush(stdout);
        }
        rc_batcher_start_epoch(&batcher, (uint32_t)epoch);
        if (rc_fill(ctx, b.stats, 0, 3, 0.0f, e)) goto out;
        float lr = 0;
        for (uint32_t i = 0;; i++) {
            uint32_t n = rc_batcher_next(&batcher, b.x, b.y);
            if (n == 0) break;
            float t = (float)epoch + (float)(i + 1) / (float)nb;
            lr = rc_schedule_lr(cfg->schedule.name, (float)cfg->optimizer.lr, cfg->schedule.epochs,
                                t, cfg->schedule.static_drop_epoch);
            int step;
            if (adversarial)
                step = rc_buffer_write(ctx, adv.apgd.x, 0, (size_t)n * d * 4, b.x, "images", e) ||
                       rc_buffer_write(ctx, adv.apgd.labels, 0, n * 4, b.y, "labels", e) ||
                       rc_buffer_write(ctx, b.labels, 0, n * 4, b.y, "labels", e) ||
                       rc_adv_trainer_step(ctx, &adv, &m, (int)n, b.labels, b.loss, b.correct, e);
            else
                step = upload_batch(ctx, &m, &b, n, e) ||
                       rc_model_forward(ctx, &m, 1, (int)n, e) ||
                       rc_ce_forward_backward(ctx, (int)n, o.num_classes, rc_model_logits(&m),
                                              b.labels, b.loss, b.correct,
                                              rc_model_logits_grad(&m), e) ||
                       rc_model_backward(ctx, &m, 1, (int)n, RC_GRAD_WRITE, 0, e);
            if (step || accumulate(ctx, &b, (int)n, e) || rc_sgd_step(ctx, &opt, &m, lr, e)) {
                rc_err_prefix(e, "epoch %d, batch %u: ", epoch + 1, i + 1);
                goto out;
            }
            progress.step++;
            double tn = rc_now_s();
            if (tn - last_report >= 10.0) {
                double loss, acc;
                if (read_stats(ctx, &b, &loss, &acc, e)) goto out;
                printf("  epoch %d: batch %u/%u, loss %.4f, accuracy %.2f%%, %.0f images/s\n",
                       epoch + 1, i + 1, nb, loss, 100 * acc,
                       (double)(i + 1) * cfg->data.batch_size / (tn - te));
                fflush(stdout);
                last_report = tn;
            }
        }
        double train_loss, train_acc, test_acc = -1, test_loss = -1;
        if (read_stats(ctx, &b, &train_loss, &train_acc, e)) goto out;
        if (use_gp && gp_merge(ctx, &gp, &m, cfg, e)) goto out;
        double t_train = rc_now_s() - te;
        progress.epoch = epoch + 1;
        int last = epoch + 1 == cfg->schedule.epochs;
        int eval_now = cfg->eval.every > 0 && (epoch + 1) % cfg->eval.every == 0;
        if (last || eval_now) {
            uint32_t n_eval = last ? test.n : (uint32_t)cfg->eval.n;
            if (rc_eval_clean(ctx, &m, &test, n_eval, &test_acc, &test_loss, e)) goto out;
        }
        /* in-training robust evaluation: the fast protocol on the first eval.n test points
         * (skipped at the last epoch when the final evaluation follows) */
        rc_eval_report rob;
        int have_rob = 0;
        if (eval_now && cfg->n_threats > 0 &&
            !(last && cfg->eval.final_protocol != RC_FINAL_NONE)) {
            rc_threat ordered[RC_MAX_THREATS];
            int nt = ordered_threats(cfg, ordered);
            if (rc_eval_robust(ctx, &m, &test, cfg->eval.n, ordered, nt, RC_PROTOCOL_FAST,
                               cfg->seed, cfg->data.eval_batch_size, NULL, &rob, e))
                goto out;
            have_rob = 1;
        }
        printf("epoch %d/%d: train loss %.4f, train accuracy %.2f%%", epoch + 1,
               cfg->schedule.epochs, train_loss, 100 * train_acc);
        if (test_acc >= 0) printf(", clean test accuracy %.2f%%", 100 * test_acc);
        printf(", lr %.4g, %.1f s (%.0f images/s)\n", lr, t_train, train.n / t_train);
        if (have_rob) {
            printf("  fast evaluation on %d test points (%.1f s): clean %.2f%%", rob.n,
                   rob.seconds, 100 * rob.clean_acc);
            for (int i = 0; i < rob.n_norms; i++)
                printf(", %s %.2f%%", rc_norm_name(rob.norms[i]), 100 * rob.acc[i]);
            printf(", union %.2f%%\n", 100 * rob.union_acc);
        }
        if (cfg->method == RC_METHOD_EAT) {
            printf("  E-AT robust accuracy during training:");
            for (int i = 0; i < adv.n_threats; i++)
                printf(" %s %.2f%%", rc_norm_name(adv.threats[i].norm),
                       adv.attacked[i] > 0 ? 100 * adv.robust[i] / adv.attacked[i] : 0.0);
            printf("\n");
        }
        fflush(stdout);
        char acc_s[32] = "null";
        if (test_acc >= 0) snprintf(acc_s, sizeof acc_s, "%.6f", test_acc);
        size_t len = (size_t)snprintf(
            line, line_cap,
            "{\"epoch\": %d, \"train_loss\": %.6f, \"train_acc\": %.6f, \"clean_acc\": %s, "
            "\"lr\": %.6g, \"epoch_time_s\": %.3f, \"wall_time_s\": %.3f",
            epoch + 1, train_loss, train_acc, acc_s, lr, t_train, rc_now_s() - t0);
        if (have_rob) {
            len += (size_t)snprintf(line + len, line_cap - len,
                                    ", \"eval_n\": %d, \"eval_clean_acc\": %.6f", rob.n,
                                    rob.clean_acc);
            for (int i = 0; i < rob.n_norms; i++)
                len += (size_t)snprintf(line + len, line_cap - len, ", \"%s_acc\": %.6f",
                                        rc_norm_name(rob.norms[i]), rob.acc[i]);
            len += (size_t)snprintf(line + len, line_cap - len, ", \"union_acc\": %.6f",
                                    rob.union_acc);
            rc_eval_report_free(&rob);
        }
        if (use_gp) { /* one cosine per state-dict tensor, in state-dict order */
            len += (size_t)snprintf(line + len, line_cap - len, ", \"gp_cos\": [");
            for (int i = 0; i < gp.n_tensors; i++)
                len += (size_t)snprintf(line + len, line_cap - len, "%s%.5f", i ? ", " : "",
                                        gp.cos[i]);
            len += (size_t)snprintf(line + len, line_cap - len, "]");
        }
        snprintf(line + len, line_cap - len, "}\n");
        if (append_metrics(dir, line, e)) goto out;
        if (last || (cfg->output.checkpoint_every > 0 &&
                     (epoch + 1) % cfg->output.checkpoint_every == 0)) {
            char path[RC_CONFIG_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
            if (rc_checkpoint_save(ctx, &m, &opt, &progress, path, e)) goto out;
        }
    }
    char path[RC_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (rc_checkpoint_save(ctx, &m, NULL, NULL, path, e)) goto out;
    printf("ramp-cl: trained in %.1f s; model saved to %s\n", rc_now_s() - t0, path);
    if (cfg->eval.final_protocol != RC_FINAL_NONE && cfg->n_threats > 0 &&
        evaluate(ctx, &m, cfg, &test, path, cfg->eval.final_protocol == RC_FINAL_FULL,
                 cfg->eval.final_n, e))
        goto out;
    r = 0;
out:
    free(line);
    gp_free(&gp);
    rc_adv_trainer_free(&adv);
    batch_io_free(&b);
    rc_batcher_free(&batcher);
    rc_model_free(&m);
    rc_dataset_free(&train);
    rc_dataset_free(&test);
    return r;
}
