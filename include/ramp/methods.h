/* Adversarial training methods (RAMP's RAMP.py, MAX.py, eat_train.py, pretrain.py; E-AT's
 * train.py; robust_union's msd_v0). Except MSD, each batch's training input is built from APGD
 * attacks in training mode (apgd_train in their autopgd_train.py: no random start, BN in eval mode,
 * x_best).
 *   at   one threat model (attack_norm)
 *   sat  one threat model per batch, drawn uniformly from train_norms (default: all)
 *   eat  E-AT: one threat model per batch from train_norms (default linf and l1, as the
 *        published E-AT), drawn with weight 1 - its robust accuracy so far (cumulative
 *        counters; uniform until each of them has been used)
 *   avg  every threat model; one train-mode forward and backward per threat model's batch (each
 *        its own BN batch statistics), L = (1/T) sum_p CE(x_p), gradients accumulated
 *   max  every threat model; per sample the example with the highest attack loss (threat models
 *        in the order linf, l1, l2 as in the reference MAX.py; ties go to the earlier one)
 *   msd  multi steepest descent (ramp/msd.h) in train mode, then CE on its result
 *   ramp the key tradeoff pair (q, r): attacks in both, per-sample MAX selection (ties to r),
 *        train-mode forwards and L = CE(x_best) + lambda KL(p_q || p_r) over the points the l_q
 *        example leaves correctly classified; with outer trades, CE(x_best) becomes
 *        CE(x) + beta KL(p_x || p_best). */
#ifndef RAMP_METHODS_H
#define RAMP_METHODS_H

#include "ramp/apgd.h"
#include "ramp/config.h"
#include "ramp/msd.h"

typedef struct rc_adv_trainer {
    rc_method method;
    int n_threats;
    rc_threat threats[RC_MAX_THREATS]; /* in attack order */
    int at_index;                      /* method at: which threat model */
    int n_draw, draw[RC_MAX_THREATS];  /* sat, eat: the threat models a batch is drawn from */
    int q, r;                          /* method ramp: threat indices of the pair */
    float lambda;
    int trades;                        /* ramp: the TRADES outer loss */
    float trades_beta;
    rc_model view_q, view_r, view_c;   /* ramp: activations of the x_q, x_r (and x) passes */
    rc_msd msd;                        /* method msd */
    rc_msd_opts msd_opts;
    rc_apgd apgd;                      /* attack buffers; its x and labels hold the clean batch */
    cl_mem adv[RC_MAX_THREATS], loss[RC_MAX_THREATS];
    double robust[RC_MAX_THREATS], attacked[RC_MAX_THREATS]; /* E-AT counters */
    float *acc;                                              /* host copy of one batch's flags */
    rc_rng rng;
} rc_adv_trainer;

int rc_adv_trainer_init(rc_ctx *ctx, rc_adv_trainer *t, const rc_config *cfg, rc_model *m, int B,
                        int d, rc_err *e);
void rc_adv_trainer_free(rc_adv_trainer *t);

/* E-AT's current sampling weights, one per threat model (0 for those outside t->draw),
 * normalised to sum 1 (exposed for tests). */
void rc_eat_weights(const rc_adv_trainer *t, double *w);

/* MAX's per-sample choice: out[b] = adv[i][b] for the i with the largest loss[i][b], the first on
 * ties; n_threats of adv/loss are used. */
int rc_select_max(rc_ctx *ctx, const cl_mem *adv, const cl_mem *loss, int n_threats, cl_mem out,
                  int n, int d, rc_err *e);

/* AVG's loss and gradients from the adversarial batches in t->adv (one per threat model): per
 * threat model a train-mode forward, CE scaled by 1/T and a backward that writes (the first) or
 * adds to the parameter gradients. loss[b] and correct[b] are means over the threat models. */
int rc_avg_loss(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch, cl_mem labels,
                cl_mem loss, cl_mem correct, rc_err *e);

/* One training step but the optimiser: with the clean batch (n samples) in t->apgd.x and its
 * labels in t->apgd.labels and `labels`, attack as the method says, run the train-mode forwards and
 * write the per-sample loss (its batch mean is the loss), correctness and the parameter
 * gradients. n_batch > n: the n are this process's slice of a batch split across the processes
 * of ctx->dist (ramp/dist.h), and the gradients those of the whole batch's loss; every process
 * calls it for every batch. */
int rc_adv_trainer_step(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch,
                        cl_mem labels, cl_mem loss, cl_mem correct, rc_err *e);

#endif
