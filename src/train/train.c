/* The training loop (every method; the adversarial ones through ramp/methods.h) and everything
 * around it (run directory, metrics, checkpoints, resume; evaluation is ramp/eval.h's). */
#include "ramp/train.h"
#include "ramp/checkpoint.h"
#include "ramp/clock.h"
#include "ramp/dist.h"
#include "ramp/eval.h"
#include "ramp/files.h"
#include "ramp/gp.h"
#include "ramp/guard.h"
#include "ramp/interrupt.h"
#include "ramp/json.h"
#include "ramp/launch.h"
#include "ramp/loss.h"
#include "ramp/methods.h"
#include "ramp/optim.h"
#include "ramp/pair.h"
#include "ramp/rundir.h"
#include "ramp/safetensors.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write the resolved config next to the results, atomically. */
static int write_config(const rc_config *cfg, const char *dir, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    rc_atomic_file a;
    if (rc_atomic_begin(&a, path, e)) return -1;
    rc_config_print(a.f, cfg);
    return rc_atomic_commit(&a, e);
}

/* One JSON line per epoch, appended and synced, so a crash loses at most the line in flight. */
static int append_metrics(const char *dir, const char *line, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    sigset_t held; /* a second Ctrl-C waits for the whole line */
    rc_signals_hold(&held);
    FILE *f = fopen(path, "a");
    int bad = !f || fputs(line, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    if (f && fclose(f) != 0 && !bad) bad = 1, err = errno;
    rc_signals_release(&held);
    if (bad) return rc_err_set(e, "cannot write %s: %s", path, strerror(err));
    return 0;
}

static void model_opts_from_config(const rc_config *cfg, rc_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->arch = cfg->model.arch;
    o->activation = cfg->model.activation;
    o->width = cfg->model.width;
    o->depth = cfg->model.depth;
    o->in_channels = cfg->model.in_channels;
    o->num_classes = cfg->model.num_classes;
    o->input_size = cfg->model.input_size;
    o->normalize = cfg->model.mean.n > 0;
    for (int c = 0; c < cfg->model.mean.n; c++) {
        o->mean[c] = (float)cfg->model.mean.v[c];
        o->std[c] = (float)cfg->model.std.v[c];
    }
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

/* Gradient projection (paper Sec. 4.3.2 and Algorithm 2; RAMP's RAMP.py --gp with utils.py gp(),
 * beta weighting the adversarial delta as the paper's Eq. 7): once per epoch a natural epoch
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
        /* num_batches_tracked is copied from the adversarial model; buffers never change */
        if (p->kind == RC_P_NUM_BATCHES || p->kind == RC_P_BUFFER) continue;
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

/* After the adversarial epoch: merge into m; cosines are kept for the metrics. */
static int gp_merge(rc_ctx *ctx, gp_state *g, rc_model *m, const rc_config *cfg, rc_err *e) {
    if (rc_gp_merge(ctx, &g->old, m->arena, m->state, g->nat.arena, g->nat.state, g->tensors,
                    g->n_tensors, (float)cfg->ramp.beta, g->cos, e))
        return rc_err_prefix(e, "gradient projection: ");
    return 0;
}

/* One training run: everything it allocates, and where it stands. An epoch has up to two phases:
 * GP's natural pass (when gradient projection is on), then the training pass. A checkpoint
 * records the phase and the batches done in it, so a run resumes at the next batch with the
 * same data order, augmentation, random draws and optimiser state: bit-exact. */
enum { PHASE_NATURAL, PHASE_TRAIN };
#define MAX_BLOBS 16

typedef struct run {
    rc_ctx *ctx;
    const rc_config *cfg;
    const rc_run_opts *opts;
    rc_progress_mode show;
    rc_run_lock lock;
    rc_guard guard;
    char *config_text; /* what the checkpoints record (ramp/rundir.h) */
    int epoch;         /* the epoch running, from 0 */
    rc_dataset train, test;
    rc_model m;
    rc_sgd opt;
    rc_batcher batcher;
    rc_batch_io b;
    rc_adv_trainer adv;
    gp_state gp;
    int adversarial, use_gp, d;
    rc_train_progress progress;
    int64_t position[2];  /* phase, batches done in it (in epoch progress.epoch) */
    int64_t wall_ms;      /* training wall time of the sessions before this one */
    double t0;            /* start of this session */
    int64_t rng[2], eat[2 * RC_MAX_THREATS], gp_scalars[2];
    rc_ckpt_blob blobs[MAX_BLOBS];
    long interrupt_after; /* RAMP_CL_INTERRUPT_AFTER (tests): raise SIGINT after this many steps */
    long nan_after;       /* RAMP_CL_NAN_AFTER (tests): a NaN gradient at this training step */
    long steps_here;
    double last_checkpoint;
    const rc_dist *dist; /* the processes the batches are split across (ramp/dist.h) */
    int writer;          /* rank 0: the one process that writes the run directory */
    float *sync;         /* host staging of the gradient sum over processes [m.n_train] */
    double comm_s;       /* time spent in it */
} run;

/* The training state beyond the model and optimiser that a resume needs, as checkpoint blobs. */
static void describe_state(run *r) {
    int n = 0;
    r->blobs[n++] = (rc_ckpt_blob){"train.position", RC_ST_I64, 2, r->position, NULL};
    r->blobs[n++] = (rc_ckpt_blob){"train.wall_ms", RC_ST_I64, 1, &r->wall_ms, NULL};
    r->blobs[n++] = (rc_ckpt_blob){"train.epoch_stats", RC_ST_F32, 3, NULL, r->b.stats};
    if (r->adversarial) {
        r->blobs[n++] = (rc_ckpt_blob){"train.method_rng", RC_ST_I64, 2, r->rng, NULL};
        r->blobs[n++] = (rc_ckpt_blob){"train.eat_counters", RC_ST_I64,
                                       2 * (size_t)r->adv.n_threats, r->eat, NULL};
    }
    if (r->use_gp) {
        rc_model *nat = &r->gp.nat;
        r->blobs[n++] = (rc_ckpt_blob){"train.gp.scalars", RC_ST_I64, 2, r->gp_scalars, NULL};
        r->blobs[n++] = (rc_ckpt_blob){"train.gp.nat_params", RC_ST_F32, nat->n_train, NULL,
                                       nat->arena};
        r->blobs[n++] = (rc_ckpt_blob){"train.gp.nat_momentum", RC_ST_F32, nat->n_train, NULL,
                                       nat->momentum};
        r->blobs[n++] = (rc_ckpt_blob){"train.gp.old_params", RC_ST_F32, nat->n_train, NULL,
                                       r->gp.old.params};
        if (nat->n_state) {
            r->blobs[n++] = (rc_ckpt_blob){"train.gp.nat_state", RC_ST_F32, nat->n_state, NULL,
                                           nat->state};
            r->blobs[n++] = (rc_ckpt_blob){"train.gp.old_state", RC_ST_F32, nat->n_state, NULL,
                                           r->gp.old.state};
        }
    }
    r->progress.extra = r->blobs;
    r->progress.n_extra = n;
}

/* Host state <-> the int64 blobs (random streams as their bits, counters as integers). */
static void pack_state(run *r) {
    r->rng[0] = (int64_t)r->adv.rng.s[0], r->rng[1] = (int64_t)r->adv.rng.s[1];
    for (int i = 0; i < r->adv.n_threats; i++) {
        r->eat[2 * i] = (int64_t)r->adv.robust[i];
        r->eat[2 * i + 1] = (int64_t)r->adv.attacked[i];
    }
    r->gp_scalars[0] = r->gp.opt.steps, r->gp_scalars[1] = r->gp.nat.bn_batches;
    r->wall_ms += (int64_t)((rc_now_s() - r->t0) * 1000);
    r->t0 = rc_now_s();
}

static void unpack_state(run *r) {
    r->adv.rng.s[0] = (uint64_t)r->rng[0], r->adv.rng.s[1] = (uint64_t)r->rng[1];
    for (int i = 0; i < r->adv.n_threats; i++) {
        r->adv.robust[i] = (double)r->eat[2 * i];
        r->adv.attacked[i] = (double)r->eat[2 * i + 1];
    }
    r->gp.opt.steps = (long)r->gp_scalars[0];
    r->gp.nat.bn_batches = r->gp_scalars[1];
}

static double wall_s(const run *r) { return (double)r->wall_ms / 1000 + rc_now_s() - r->t0; }

/* ---- divergence ---------------------------------------------------------------------------- */

/* What a guard check looked at; its tag is (batch << 4) | (phase << 3) | what. */
enum { G_LOSS, G_GRAD, G_STATE, G_WEIGHTS, G_MERGED_WEIGHTS, G_MERGED_STATE };

/* After a step of model m on batch `batch` (n samples) of `phase`: each sample's loss, the
 * gradients, the BN statistics and the weights the optimiser left. */
static int guard_step(run *r, const rc_model *m, int phase, uint32_t batch, uint32_t n, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    rc_guard *g = &r->guard;
    int t = (int)batch << 4 | phase << 3;
    return rc_guard_check(ctx, g, r->b.loss, 0, n, t | G_LOSS, e) ||
           rc_guard_check(ctx, g, m->grads, 0, m->n_train, t | G_GRAD, e) ||
           rc_guard_check(ctx, g, m->state, 0, m->n_state, t | G_STATE, e) ||
           rc_guard_check(ctx, g, m->arena, 0, m->n_train, t | G_WEIGHTS, e);
}

/* The state-dict name of float `index` of the parameter arena, or of the BN state arena. */
static const char *tensor_at(const rc_model *m, int state, size_t index) {
    for (int i = 0; i < m->n_params; i++) {
        const rc_param *p = &m->params[i];
        int in_state = p->kind == RC_P_RUNNING_MEAN || p->kind == RC_P_RUNNING_VAR;
        if (p->kind != RC_P_NUM_BATCHES && in_state == state && index >= p->offset &&
            index < p->offset + p->numel)
            return p->name;
    }
    return "alignment padding";
}

/* Read the guard (the device is waited for) and stop the run at the first non-finite value it
 * met, naming the epoch, the step and the tensor. Nothing of a diverged step is saved. */
static int check_finite(run *r, rc_err *e) {
    int tag, index;
    if (rc_guard_read(r->ctx, &r->guard, &tag, &index, e)) return -1;
    if (tag < 0) return 0;
    int what = tag & 7, natural = (tag >> 3 & 1) == PHASE_NATURAL, batch = tag >> 4;
    const rc_model *m = natural ? &r->gp.nat : &r->m;
    const rc_config *cfg = r->cfg;
    uint32_t nb = rc_batcher_num_batches(&r->batcher);
    char value[192], where[160], ckpt[RC_CONFIG_PATH_MAX + 64];
    if (what == G_LOSS)
        snprintf(value, sizeof value, "the loss of sample %d of the batch", index + 1);
    else
        snprintf(value, sizeof value, "%s%s%s%s", what == G_GRAD ? "the gradient of " : "",
                 tensor_at(m, what == G_STATE || what == G_MERGED_STATE, (size_t)index),
                 natural ? " of GP's natural model" : "",
                 what == G_WEIGHTS          ? " after the optimiser step"
                 : what >= G_MERGED_WEIGHTS ? " after the gradient projection merge"
                                            : "");
    if (what >= G_MERGED_WEIGHTS)
        snprintf(where, sizeof where, "at the end of epoch %d", r->epoch + 1);
    else if (natural)
        snprintf(where, sizeof where, "in epoch %d, batch %d of %u of GP's natural pass",
                 r->epoch + 1, batch + 1, nb);
    else
        snprintf(where, sizeof where, "in epoch %d, batch %d of %u (step %lld)", r->epoch + 1,
                 batch + 1, nb, (long long)r->epoch * nb + batch + 1);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", cfg->output.dir);
    int saved = access(ckpt, F_OK) == 0;
    return rc_err_set(e, "training diverged %s: %s is not finite (NaN or infinite). The run "
                         "stopped without saving anything of it; %s%s%s. Lower optimizer.lr (%g) "
                         "or check the data and init",
                      where, value, saved ? "the last checkpoint, " : "",
                      saved ? ckpt : "no checkpoint was written",
                      saved ? ", is from before it" : "", cfg->optimizer.lr);
}

/* The epoch's running sums (loss, correct, samples) of every process into rank 0's, the others'
 * zeroed: the sums stay those of the whole batches, and a checkpoint holds them whatever the
 * number of processes that resumes it (ramp/dist.h). */
static int fold_epoch_stats(run *r, rc_err *e) {
    if (rc_dist_size(r->dist) == 1) return 0;
    float f[3];
    if (rc_buffer_read(r->ctx, r->b.stats, 0, sizeof f, f, "running statistics", e)) return -1;
    double s[3] = {f[0], f[1], f[2]};
    if (rc_dist_sum_f64(r->dist, s, 3, e)) return -1;
    for (int i = 0; i < 3; i++) f[i] = r->writer ? (float)s[i] : 0.0f;
    return rc_buffer_write(r->ctx, r->b.stats, 0, sizeof f, f, "running statistics", e);
}

static int save_checkpoint(run *r, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", r->cfg->output.dir);
    if (check_finite(r, e) || fold_epoch_stats(r, e)) return -1;
    pack_state(r);
    r->last_checkpoint = rc_now_s();
    return r->writer ? rc_checkpoint_save(r->ctx, &r->m, &r->opt, &r->progress, path, e) : 0;
}

/* After each step: stop on a signal (checkpoint first), or checkpoint when the configured time
 * has passed. Returns the signal that stops the run, 0 to go on, -1 on error. */
static int after_step(run *r, int phase, uint32_t done, rc_err *e) {
    r->steps_here++;
    if (r->interrupt_after > 0 && r->steps_here == r->interrupt_after) raise(SIGINT);
    double every = r->cfg->output.checkpoint_minutes * 60.0;
    int want[2] = {rc_interrupt_pending(), every > 0 && rc_now_s() - r->last_checkpoint >= every};
    /* the processes stop or checkpoint after the same step: any one that wants to decides */
    if (rc_dist_max_i32(r->dist, want, 2, e)) return -1;
    int sig = want[0];
    if (!sig && !want[1]) return 0;
    r->position[0] = phase, r->position[1] = done;
    if (save_checkpoint(r, e)) return -1;
    return sig;
}

/* Skip the batches a resumed phase has already done (the batcher's draws advance as they did). */
static void skip_batches(rc_batcher *bt, rc_batch_io *b, int64_t k) {
    for (int64_t i = 0; i < k; i++) rc_batcher_next(bt, b->x, b->y);
}

static float lr_at(const rc_config *cfg, int epoch, uint32_t i, uint32_t nb) {
    float t = (float)epoch + (float)(i + 1) / (float)nb;
    return rc_schedule_lr(cfg->schedule.name, (float)cfg->optimizer.lr, cfg->schedule.epochs, t,
                          cfg->schedule.static_drop_epoch);
}

/* Data parallelism (ramp/dist.h): every process draws the whole batch, in the order and with the
 * augmentation of one process, and trains on its slice, moved to the front of the batch. Returns
 * the slice's size. */
static uint32_t own_slice(const run *r, uint32_t n) {
    uint32_t lo, k;
    rc_dist_slice(r->dist, n, &lo, &k);
    if (lo > 0) {
        memmove(r->b.x, r->b.x + (size_t)lo * r->d, (size_t)k * r->d * sizeof *r->b.x);
        memmove(r->b.y, r->b.y + lo, (size_t)k * sizeof *r->b.y);
    }
    return k;
}

/* The gradients of model m summed over the processes: one allreduce of the whole arena. */
static int sum_gradients(run *r, rc_model *m, rc_err *e) {
    return rc_dist_sum_buffer(r->ctx, r->dist, m->grads, m->n_train, r->sync, &r->comm_s, e);
}

/* The natural pass of GP: theta_old is saved, the natural model starts from it and trains one
 * epoch of clean batches (same schedule, its own optimiser state and shuffle). `from` > 0 resumes
 * it (theta_old and the natural model come from the checkpoint). */
static int gp_natural_epoch(run *r, int epoch, int64_t from, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    gp_state *g = &r->gp;
    rc_model *nat = &g->nat, *m = &r->m;
    rc_batch_io *b = &r->b;
    if (from == 0) {
        if (rc_gp_snapshot_take(ctx, &g->old, m->arena, m->state, e) ||
            rc_gp_snapshot_restore(ctx, &g->old, nat->arena, nat->state, e))
            return rc_err_prefix(e, "gradient projection: ");
        nat->bn_batches = m->bn_batches;
    }
    rc_batcher_start_epoch(&g->batcher, (uint32_t)epoch);
    skip_batches(&g->batcher, b, from);
    uint32_t nb = rc_batcher_num_batches(&g->batcher), bs = (uint32_t)r->cfg->data.batch_size;
    char what[64];
    snprintf(what, sizeof what, "epoch %d/%d, GP natural pass", epoch + 1,
             r->cfg->schedule.epochs);
    rc_progress bar;
    rc_progress_begin(&bar, r->show, stdout, what, "images", (uint64_t)from * bs, r->train.n);
    for (uint32_t i = (uint32_t)from;; i++) {
        uint32_t n = rc_batcher_next(&g->batcher, b->x, b->y);
        if (n == 0) break;
        uint32_t k = own_slice(r, n);
        if (rc_batch_io_upload(ctx, nat, b, k, e) || rc_model_forward(ctx, nat, 1, (int)k, e) ||
            rc_ce_forward_backward_part(ctx, (int)k, (int)n, nat->opts.num_classes,
                                        rc_model_logits(nat), b->labels, b->loss, b->correct,
                                        rc_model_logits_grad(nat), e) ||
            rc_model_backward(ctx, nat, 1, (int)k, RC_GRAD_WRITE, 0, e) ||
            sum_gradients(r, nat, e) ||
            rc_sgd_step(ctx, &g->opt, nat, lr_at(r->cfg, epoch, i, nb), e) ||
            guard_step(r, nat, PHASE_NATURAL, i, k, e))
            return rc_err_prefix(e, "gradient projection, natural epoch %d, batch %u: ",
                                 epoch + 1, i + 1);
        rc_progress_update(&bar, (uint64_t)(i + 1) * bs < r->train.n ? (uint64_t)(i + 1) * bs
                                                                     : r->train.n, "clean batches");
        int st = after_step(r, PHASE_NATURAL, i + 1, e);
        if (st) {
            rc_progress_end(&bar);
            return st;
        }
    }
    rc_progress_end(&bar);
    return 0;
}

/* One training step on the batch in r->b (n samples, of which this process takes its slice):
 * attacks as the method says, the loss and its gradients, the optimiser. Returns the samples of
 * the slice in *k. */
static int train_step(run *r, uint32_t n, float lr, uint32_t *k, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    rc_batch_io *b = &r->b;
    rc_model *m = &r->m;
    uint32_t n_batch = n;
    n = *k = own_slice(r, n);
    int step;
    if (r->adversarial)
        step = rc_buffer_write(ctx, r->adv.apgd.x, 0, (size_t)n * r->d * 4, b->x, "images", e) ||
               rc_buffer_write(ctx, r->adv.apgd.labels, 0, n * 4, b->y, "labels", e) ||
               rc_buffer_write(ctx, b->labels, 0, n * 4, b->y, "labels", e) ||
               rc_adv_trainer_step(ctx, &r->adv, m, (int)n, (int)n_batch, b->labels, b->loss,
                                   b->correct, e);
    else
        step = rc_batch_io_upload(ctx, m, b, n, e) || rc_model_forward(ctx, m, 1, (int)n, e) ||
               rc_ce_forward_backward_part(ctx, (int)n, (int)n_batch, m->opts.num_classes,
                                           rc_model_logits(m), b->labels, b->loss, b->correct,
                                           rc_model_logits_grad(m), e) ||
               rc_model_backward(ctx, m, 1, (int)n, RC_GRAD_WRITE, 0, e);
    return step || rc_batch_io_accumulate(ctx, b, (int)n, e) || sum_gradients(r, m, e) ||
           rc_sgd_step(ctx, &r->opt, m, lr, e);
}

/* The training pass of epoch `epoch` from batch `from`. Returns a stopping signal, 0 or -1. */
static int train_pass(run *r, int epoch, int64_t from, float *lr, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    const rc_config *cfg = r->cfg;
    uint32_t nb = rc_batcher_num_batches(&r->batcher), bs = (uint32_t)cfg->data.batch_size;
    rc_batcher_start_epoch(&r->batcher, (uint32_t)epoch);
    skip_batches(&r->batcher, &r->b, from);
    if (from == 0 && rc_fill(ctx, r->b.stats, 0, 3, 0.0f, e)) return -1;
    char what[64];
    snprintf(what, sizeof what, "epoch %d/%d", epoch + 1, cfg->schedule.epochs);
    rc_progress bar;
    rc_progress_begin(&bar, r->show, stdout, what, "images", (uint64_t)from * bs, r->train.n);
    int st = 0;
    for (uint32_t i = (uint32_t)from;; i++) {
        uint32_t n = rc_batcher_next(&r->batcher, r->b.x, r->b.y);
        if (n == 0) break;
        *lr = lr_at(cfg, epoch, i, nb);
        uint32_t k;
        if (train_step(r, n, *lr, &k, e) ||
            (r->progress.step + 1 == r->nan_after && rc_fill(ctx, r->m.grads, 0, 1, NAN, e)) ||
            guard_step(r, &r->m, PHASE_TRAIN, i, k, e)) {
            rc_progress_end(&bar);
            return rc_err_prefix(e, "epoch %d, batch %u: ", epoch + 1, i + 1);
        }
        r->progress.step++;
        if (rc_progress_due(&bar)) {
            double loss, acc;
            /* this process's slice only: the others do not wait for a progress line */
            if (rc_batch_io_read_stats(ctx, &r->b, NULL, &loss, &acc, e) || check_finite(r, e)) {
                rc_progress_end(&bar);
                return -1;
            }
            char fig[64];
            snprintf(fig, sizeof fig, "loss %.4f, accuracy %.2f%%", loss, 100 * acc);
            uint64_t done = (uint64_t)(i + 1) * bs;
            rc_progress_update(&bar, done < r->train.n ? done : r->train.n, fig);
        }
        if ((st = after_step(r, PHASE_TRAIN, i + 1, e))) break;
    }
    rc_progress_end(&bar);
    return st;
}

/* Keep the metrics of the epochs a checkpoint covers; a resumed run appends the rest (a crash
 * after an epoch's line but before its checkpoint would otherwise leave that epoch twice). */
static int trim_metrics(const char *dir, int64_t epochs, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64], line[1 << 16];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    rc_atomic_file a;
    if (rc_atomic_begin(&a, path, e)) {
        fclose(in);
        return -1;
    }
    while (fgets(line, sizeof line, in)) {
        int ep;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n' && sscanf(line, "{\"epoch\": %d,", &ep) == 1 &&
            ep <= epochs)
            fputs(line, a.f);
    }
    fclose(in);
    return rc_atomic_commit(&a, e);
}


/* A fresh run starts from an empty directory: the files of an earlier run there are removed
 * (--resume is what continues one), and the user is told which. Its reports on other
 * checkpoints stay. */
static int clear_earlier_run(const run *r, rc_err *e) {
    static const char *const names[] = {"metrics.jsonl", "checkpoint.safetensors",
                                        "model.safetensors", "eval-fast.json", "eval-full.json"};
    const char *dir = r->cfg->output.dir;
    char path[RC_CONFIG_PATH_MAX + 64], removed[160] = "";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) != 0) {
            if (errno == ENOENT) continue;
            return rc_err_set(e, "cannot remove %s: %s", path, strerror(errno));
        }
        size_t len = strlen(removed);
        snprintf(removed + len, sizeof removed - len, "%s%s", len ? ", " : "", names[i]);
    }
    if (*removed && r->show != RC_PROGRESS_QUIET)
        printf("ramp-cl: note: %s held an earlier run; its %s are removed (ramp-cl --resume %s "
               "continues a stopped run instead)\n",
               dir, removed, dir);
    return 0;
}

/* The device side of a run for training batch B and evaluation batch E: model, batch buffers,
 * the method's attack buffers and GP's natural model. */
static int run_alloc(run *r, int B, int E, rc_err *e) {
    rc_model_opts o;
    model_opts_from_config(r->cfg, &o);
    return rc_model_create(r->ctx, &r->m, &o, B > E ? B : E, e) ||
           rc_batch_io_alloc(r->ctx, &r->b, &r->m, e) ||
           (r->adversarial && rc_adv_trainer_init(r->ctx, &r->adv, r->cfg, &r->m, B, r->d, e)) ||
           (r->use_gp && gp_init(r->ctx, &r->gp, r->cfg, &r->m, &r->train, e));
}

static void run_release(run *r) {
    gp_free(&r->gp);
    rc_adv_trainer_free(&r->adv);
    rc_batch_io_free(&r->b);
    rc_model_free(&r->m);
    memset(&r->gp, 0, sizeof r->gp);
    memset(&r->adv, 0, sizeof r->adv);
    memset(&r->b, 0, sizeof r->b);
    memset(&r->m, 0, sizeof r->m);
}

static void run_free(run *r) {
    run_release(r);
    free(r->sync);
    rc_guard_free(&r->guard);
    free(r->config_text);
    free(r->progress.saved_config);
    rc_run_lock_release(&r->lock);
    rc_batcher_free(&r->batcher);
    rc_dataset_free(&r->train);
    rc_dataset_free(&r->test);
}

/* Whether the run fits in device memory, decided before the real allocation: the buffers at
 * batch 1 and 2 give the fixed and per-sample bytes (every buffer is linear in the batch), which
 * predict the need at the configured batch sizes and the largest batch that fits. 10% of the
 * device's memory is left to GEMM scratch and the driver. */
static int check_memory(run *r, rc_err *e) {
    size_t used[2];
    for (int k = 0; k < 2; k++) {
        size_t before = r->ctx->bytes_created;
        int fail = run_alloc(r, k + 1, k + 1, e);
        used[k] = r->ctx->bytes_created - before;
        run_release(r);
        if (fail) return rc_err_prefix(e, "sizing device memory: ");
    }
    const rc_config *cfg = r->cfg;
    double per = (double)used[1] - (double)used[0], fixed = (double)used[0] - per;
    int B = cfg->data.batch_size > cfg->data.eval_batch_size ? cfg->data.batch_size
                                                             : cfg->data.eval_batch_size;
    double need = fixed + per * B, budget = 0.9 * (double)r->ctx->dev.global_mem;
    if (need <= budget) return 0;
    double fits = per > 0 ? (budget - fixed) / per : 0;
    rc_model_opts o;
    char name[64];
    model_opts_from_config(cfg, &o);
    return rc_err_set(e,
                      "batch size %d (data.batch_size %d, data.eval_batch_size %d) needs about "
                      "%.1f GiB of device memory for %s with %s, the device has %.1f GiB: the "
                      "largest batch that fits is about %.0f; lower data.batch_size and "
                      "data.eval_batch_size",
                      B, cfg->data.batch_size, cfg->data.eval_batch_size, need / (1 << 30),
                      rc_model_name(&o, name, sizeof name), rc_method_name(cfg->method),
                      (double)r->ctx->dev.global_mem / (1 << 30), fits > 0 ? fits : 0);
}

/* Split across processes, every process needs a share of every batch. */
static int check_split(const run *r, rc_err *e) {
    const rc_config *cfg = r->cfg;
    int size = rc_dist_size(r->dist);
    if (size == 1) return 0;
    uint32_t last = r->train.n % (uint32_t)cfg->data.batch_size;
    if (cfg->data.batch_size < size || (last > 0 && last < (uint32_t)size))
        return rc_err_set(e, "%d processes share each batch, but data.batch_size is %d%s: every "
                             "process needs at least one sample of every batch",
                          size, cfg->data.batch_size,
                          last > 0 && last < (uint32_t)size ? " and the last batch smaller" : "");
    return 0;
}

/* A resumed run's config must be the one its checkpoint recorded, but for accepted changes. */
static int check_resumed_config(run *r, rc_err *e) {
    const rc_train_progress *p = &r->progress;
    const char *dir = r->cfg->output.dir;
    int quiet = r->show == RC_PROGRESS_QUIET;
    if (!p->saved_config) {
        if (!quiet)
            printf("ramp-cl: note: %s/checkpoint.safetensors does not record the run's config (an "
                   "older ramp-cl wrote it): config.yaml is used as it is\n",
                   dir);
        return 0;
    }
    if (rc_run_config_check(p->saved_config, p->saved_digest, r->config_text, r->opts->accept,
                            r->opts->n_accept, quiet, e))
        return rc_err_prefix(e, "--resume %s: ", dir);
    return 0;
}

/* Data, model (initialised, or from the checkpoint when resuming), optimiser, method, GP. All of
 * it is checked (data, device memory, the checkpoint it starts from, a resume's config) before the
 * run directory is written to: a run that cannot start leaves an earlier run's files as they
 * were. */
static int run_setup(run *r, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    const rc_config *cfg = r->cfg;
    const char *dir = cfg->output.dir;
    int resume = r->opts->resume, quiet = r->show == RC_PROGRESS_QUIET;
    r->adversarial = cfg->method != RC_METHOD_NATURAL;
    r->use_gp = cfg->method == RC_METHOD_RAMP && cfg->ramp.gp;
    r->d = cfg->model.in_channels * cfg->model.input_size * cfg->model.input_size;
    /* a resume holds its directory from the start; a fresh run takes it once all is checked
     * (rank 0's: the others write nothing) */
    int bad = !r->writer ? 0
              : resume   ? rc_run_lock_take(&r->lock, dir, quiet, e)
                         : rc_run_dir_check(dir, cfg->init, e);
    if (bad || rc_load_split(cfg, 1, (uint32_t)cfg->data.train_subset, &r->train, e) ||
        rc_load_split(cfg, 0, 0, &r->test, e) || check_data_matches(cfg, &r->train, e) ||
        check_split(r, e) ||
        check_memory(r, e) || run_alloc(r, cfg->data.batch_size, cfg->data.eval_batch_size, e) ||
        rc_guard_init(ctx, &r->guard, e))
        return -1;
    if (rc_dist_size(r->dist) > 1 && !(r->sync = malloc(r->m.n_train * sizeof *r->sync)))
        return rc_err_set(e, "out of host memory for the gradient sum over processes");
    rc_sgd_init(&r->opt, (float)cfg->optimizer.momentum, (float)cfg->optimizer.weight_decay,
                cfg->optimizer.nesterov, cfg->optimizer.param_groups == RC_PARAM_GROUPS_SPLIT,
                cfg->optimizer.lr_all_groups);
    if (rc_batcher_init(&r->batcher, &r->train, (uint32_t)cfg->data.batch_size, cfg->seed, 1,
                        cfg->data.augment == RC_AUGMENT_CROP_FLIP, e))
        return -1;
    describe_state(r);
    if (!(r->config_text = rc_run_config_text(cfg)))
        return rc_err_set(e, "out of host memory for the run's config");
    r->progress.config = r->config_text;
    r->position[0] = r->use_gp ? PHASE_NATURAL : PHASE_TRAIN;
    if (resume) {
        char path[RC_CONFIG_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        if (access(path, F_OK) != 0)
            return rc_err_set(e, "%s: no checkpoint to resume from (the run stopped before its "
                                 "first one); start it again from its config", path);
        if (rc_checkpoint_load(ctx, &r->m, &r->opt, &r->progress, path, e) ||
            check_resumed_config(r, e) || (r->writer && trim_metrics(dir, r->progress.epoch, e)))
            return -1;
        unpack_state(r);
        /* the epoch's sums are the whole batches' (fold_epoch_stats): rank 0 carries them */
        return r->writer ? 0 : rc_fill(ctx, r->b.stats, 0, 3, 0.0f, e);
    }
    if (cfg->init[0] ? rc_checkpoint_load(ctx, &r->m, NULL, NULL, cfg->init, e)
                     : rc_model_init(ctx, &r->m, cfg->seed, e))
        return -1;
    return r->writer && (rc_run_lock_take(&r->lock, dir, quiet, e) || clear_earlier_run(r, e) ||
                         write_config(cfg, dir, e));
}

/* The end of an epoch: GP merge, evaluations, the summary line, metrics and the checkpoint. */
static int finish_epoch(run *r, int epoch, float lr, double t_train, rc_err *e) {
    rc_ctx *ctx = r->ctx;
    const rc_config *cfg = r->cfg;
    double train_loss, train_acc, test_acc = -1, test_loss = -1;
    rc_model *m = &r->m;
    int merged = G_MERGED_WEIGHTS | PHASE_TRAIN << 3, merged_state = merged + 1;
    if ((r->use_gp && (gp_merge(ctx, &r->gp, m, cfg, e) ||
                       rc_guard_check(ctx, &r->guard, m->arena, 0, m->n_train, merged, e) ||
                       rc_guard_check(ctx, &r->guard, m->state, 0, m->n_state, merged_state, e))) ||
        rc_batch_io_read_stats(ctx, &r->b, r->dist, &train_loss, &train_acc, e) ||
        check_finite(r, e))
        return -1;
    r->progress.epoch = epoch + 1;
    int last = epoch + 1 == cfg->schedule.epochs;
    int eval_now = cfg->eval.every > 0 && (epoch + 1) % cfg->eval.every == 0;
    if (last || eval_now) {
        uint32_t n_eval = last ? r->test.n : (uint32_t)cfg->eval.n;
        if (rc_eval_clean(ctx, &r->m, &r->test, n_eval, &test_acc, &test_loss, e)) return -1;
    }
    /* in-training robust evaluation: the fast protocol on the first eval.n test points
     * (skipped at the last epoch when the final evaluation follows) */
    rc_eval_report rob;
    int have_rob = 0;
    if (eval_now && cfg->n_threats > 0 && !(last && cfg->eval.final_protocol != RC_FINAL_NONE)) {
        rc_threat ordered[RC_MAX_THREATS];
        int nt = rc_eval_ordered_threats(cfg, ordered);
        if (rc_eval_robust(ctx, &r->m, &r->test, cfg->eval.n, ordered, nt, RC_PROTOCOL_FAST,
                           cfg->seed, cfg->data.eval_batch_size, r->show, &rob, e))
            return -1;
        have_rob = 1;
    }
    if (r->show != RC_PROGRESS_QUIET) {
        printf("epoch %d/%d: train loss %.4f, train accuracy %.2f%%", epoch + 1,
               cfg->schedule.epochs, train_loss, 100 * train_acc);
        if (test_acc >= 0) printf(", clean test accuracy %.2f%%", 100 * test_acc);
        printf(", lr %.4g, %.1f s (%.0f images/s)\n", lr, t_train, r->train.n / t_train);
        if (have_rob) {
            printf("  fast evaluation on %d test points (%.1f s): clean %.2f%%", rob.n,
                   rob.seconds, 100 * rob.clean_acc);
            for (int i = 0; i < rob.n_norms; i++)
                printf(", %s %.2f%%", rc_norm_name(rob.norms[i]), 100 * rob.acc[i]);
            printf(", union %.2f%%\n", 100 * rob.union_acc);
        }
        if (cfg->method == RC_METHOD_EAT) {
            /* the norms E-AT draws from (train_norms); one not drawn yet has no accuracy */
            printf("  E-AT robust accuracy during training:");
            for (int k = 0; k < r->adv.n_draw; k++) {
                int i = r->adv.draw[k];
                if (r->adv.attacked[i] > 0)
                    printf(" %s %.2f%%", rc_norm_name(r->adv.threats[i].norm),
                           100 * r->adv.robust[i] / r->adv.attacked[i]);
                else
                    printf(" %s not drawn yet", rc_norm_name(r->adv.threats[i].norm));
            }
            printf("\n");
        }
        fflush(stdout);
    }
    rc_json_buf line = {0};
    /* numbers through rc_json_put_number: a NaN (a clean loss can overflow) becomes null */
    rc_json_putf(&line, "{\"epoch\": %d, \"train_loss\": ", epoch + 1);
    rc_json_put_number(&line, "%.6f", train_loss);
    rc_json_put(&line, ", \"train_acc\": ");
    rc_json_put_number(&line, "%.6f", train_acc);
    rc_json_put(&line, ", \"clean_acc\": ");
    rc_json_put_number(&line, "%.6f", test_acc >= 0 ? test_acc : NAN);
    rc_json_put(&line, ", \"lr\": ");
    rc_json_put_number(&line, "%.6g", lr);
    rc_json_putf(&line, ", \"epoch_time_s\": %.3f, \"wall_time_s\": %.3f", t_train, wall_s(r));
    if (have_rob) {
        rc_json_putf(&line, ", \"eval_n\": %d, \"eval_clean_acc\": %.6f", rob.n, rob.clean_acc);
        for (int i = 0; i < rob.n_norms; i++) {
            char key[32];
            snprintf(key, sizeof key, "%s_acc", rc_norm_name(rob.norms[i]));
            rc_json_put(&line, ", ");
            rc_json_put_string(&line, key);
            rc_json_putf(&line, ": %.6f", rob.acc[i]);
        }
        rc_json_putf(&line, ", \"union_acc\": %.6f", rob.union_acc);
        rc_eval_report_free(&rob);
    }
    if (r->use_gp) { /* one cosine per state-dict tensor, in state-dict order */
        rc_json_put(&line, ", \"gp_cos\": [");
        for (int i = 0; i < r->gp.n_tensors; i++) {
            rc_json_put(&line, i ? ", " : "");
            rc_json_put_number(&line, "%.5f", r->gp.cos[i]);
        }
        rc_json_put(&line, "]");
    }
    rc_json_put(&line, "}\n");
    int bad = line.oom ? rc_err_set(e, "out of host memory for the metrics line")
              : r->writer ? append_metrics(cfg->output.dir, line.p, e)
                          : 0;
    rc_json_buf_free(&line);
    if (bad) return -1;
    r->position[0] = r->use_gp ? PHASE_NATURAL : PHASE_TRAIN, r->position[1] = 0;
    if (last ||
        (cfg->output.checkpoint_every > 0 && (epoch + 1) % cfg->output.checkpoint_every == 0))
        return save_checkpoint(r, e);
    return 0;
}

int rc_train_run(rc_ctx *ctx, const rc_config *given, const rc_run_opts *opts, rc_err *e) {
    rc_config resolved = *given; /* with ramp.pair: auto decided, as config.yaml records it */
    const rc_config *cfg = &resolved;
    if (rc_pair_resolve(ctx, &resolved, e)) return -1;
    run r;
    memset(&r, 0, sizeof r);
    static const rc_run_opts fresh_quiet = {.progress = RC_PROGRESS_QUIET};
    r.ctx = ctx, r.cfg = cfg, r.opts = opts ? opts : &fresh_quiet;
    r.show = r.opts->progress;
    r.lock.fd = -1;
    r.dist = ctx->dist;
    r.writer = rc_dist_rank(r.dist) == 0;
    int resume = r.opts->resume;
    const char *hook = getenv("RAMP_CL_INTERRUPT_AFTER");
    r.interrupt_after = hook ? strtol(hook, NULL, 10) : 0;
    hook = getenv("RAMP_CL_NAN_AFTER");
    r.nan_after = hook ? strtol(hook, NULL, 10) : 0;
    r.t0 = r.last_checkpoint = rc_now_s();
    int ret = -1, sig = 0;
    if (run_setup(&r, e)) goto out;
    uint32_t nb = rc_batcher_num_batches(&r.batcher);
    if (r.show != RC_PROGRESS_QUIET) {
        printf("ramp-cl: %s on %s (%u training images, %u batches of %d), model %s (%d "
               "state-dict tensors), device %s (%s class)\n",
               rc_method_name(cfg->method), r.train.name, r.train.n, nb, cfg->data.batch_size,
               rc_arch_name(r.m.opts.arch), r.m.n_params, ctx->dev.name,
               rc_device_class_name(ctx->cls));
        if (resume)
            printf("ramp-cl: resuming %s at epoch %lld, %s pass, batch %lld (%lld steps done)\n",
                   cfg->output.dir, (long long)r.progress.epoch + 1,
                   r.position[0] == PHASE_NATURAL ? "GP natural" : "training",
                   (long long)r.position[1] + 1, (long long)r.progress.step);
        if (cfg->optimizer.param_groups == RC_PARAM_GROUPS_SPLIT && !cfg->optimizer.lr_all_groups)
            printf("ramp-cl: note: as in the reference code, the schedule sets the lr of weights "
                   "only; BN parameters and biases keep lr %.3g (optimizer.lr_all_groups: true "
                   "changes this)\n", r.opt.group1_lr);
        fflush(stdout);
    }
    rc_interrupt_defer(1);
    for (int epoch = (int)r.progress.epoch; epoch < cfg->schedule.epochs; epoch++) {
        double te = rc_now_s();
        r.epoch = epoch;
        int64_t phase = r.position[0], from = r.position[1];
        if (r.use_gp && phase == PHASE_NATURAL) {
            if ((sig = gp_natural_epoch(&r, epoch, from, e))) goto out;
            if (r.show == RC_PROGRESS_LINES)
                printf("  epoch %d: natural pass for gradient projection done, %.1f s\n",
                       epoch + 1, rc_now_s() - te);
            from = 0;
        }
        float lr = lr_at(cfg, epoch, nb - 1, nb); /* the last batch's, if none is left to run */
        if ((sig = train_pass(&r, epoch, from, &lr, e))) goto out;
        if (finish_epoch(&r, epoch, lr, rc_now_s() - te, e)) goto out;
        sig = rc_interrupt_pending();
        if (rc_dist_max_i32(r.dist, &sig, 1, e)) { /* as in after_step */
            sig = 0;
            goto out;
        }
        if (sig) {
            r.position[0] = r.use_gp ? PHASE_NATURAL : PHASE_TRAIN, r.position[1] = 0;
            if (save_checkpoint(&r, e)) sig = -1;
            goto out;
        }
    }
    rc_interrupt_defer(0); /* from here on nothing needs saving: a signal ends the process */
    char path[RC_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/model.safetensors", cfg->output.dir);
    if (r.writer && rc_checkpoint_save(ctx, &r.m, NULL, NULL, path, e)) goto out;
    if (r.show != RC_PROGRESS_QUIET)
        printf("ramp-cl: trained in %.1f s; model saved to %s\n", wall_s(&r), path);
    rc_protocol final;
    if (cfg->n_threats > 0 &&
        !rc_protocol_from_name(rc_final_protocol_name(cfg->eval.final_protocol), &final) &&
        rc_eval_and_report(ctx, &r.m, cfg, &r.test, path, final, cfg->eval.final_n, r.show, e))
        goto out;
    ret = 0;
out:
    rc_interrupt_defer(0);
    if (ret < 0 && (e->cl_status == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                    e->cl_status == CL_OUT_OF_RESOURCES)) {
        size_t len = strlen(e->msg);
        snprintf(e->msg + len, sizeof e->msg - len,
                 " (the device may be out of memory: lower data.batch_size and "
                 "data.eval_batch_size; the last checkpoint, if any, is intact: ramp-cl --resume "
                 "%s)", cfg->output.dir);
    }
    if (sig > 0) {
        char where[96];
        if (r.position[1] == 0)
            snprintf(where, sizeof where, "after epoch %lld", (long long)r.progress.epoch);
        else
            snprintf(where, sizeof where, "in epoch %lld after batch %lld of the %s pass",
                     (long long)r.progress.epoch + 1, (long long)r.position[1],
                     r.position[0] == PHASE_NATURAL ? "GP natural" : "training");
        if (r.writer)
            fprintf(stderr, "ramp-cl: stopped by %s %s; checkpoint in %s/checkpoint.safetensors; "
                            "continue with: ramp-cl --resume %s\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", where, cfg->output.dir,
                    cfg->output.dir);
        ret = sig;
    }
    run_free(&r);
    return ret;
}
