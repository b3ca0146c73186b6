/* APGD (Croce & Hein 2020) for l_inf and l_2, and l_1-APGD (Croce & Hein 2021), on the device,
 * as auto-attack's autopgd_base.py (APGDAttack) and RAMP's autopgd_train.py (apgd_train):
 * step-size schedule and checkpoints, momentum, the two halving conditions with restarts from
 * the best point, and for l_1 the sparse top-k step with adaptive sparsity and the exact
 * l_1-ball-and-box projection. The host only issues work: nothing is read back during a run.
 *
 * Training mode (apgd_train as RAMP's training scripts call it): no random start, BN in eval
 * mode, no backward at the last iteration, l_1 initial sparsity 0.05; the caller uses x_best and
 * loss_best. Evaluation mode: l_1 sparsity 0.2, optional random start, and the caller uses
 * x_best_adv and acc. */
#ifndef RAMP_APGD_H
#define RAMP_APGD_H

#include "ramp/attack_ops.h"
#include "ramp/model.h"
#include "ramp/names.h"

/* The attack losses of attack_loss in cl/loss.cl; RC_LOSS_LOGIT_DIFF is z_target - z_label
 * (targeted FAB's hyperplane). */
typedef enum rc_attack_loss {
    RC_LOSS_CE,
    RC_LOSS_DLR,
    RC_LOSS_DLR_TARGETED,
    RC_LOSS_LOGIT_DIFF
} rc_attack_loss;

typedef struct rc_apgd_opts {
    rc_norm norm;
    float eps;
    int n_iter;
    rc_attack_loss loss;
    int train;     /* training mode (see above) */
    float l1_topk; /* initial sparsity of the l_1 step; 0 = the mode's default (0.05 / 0.2) */
    int l1_sparsity_from_start; /* l_1 from a start point: sparsity from its l0 (AA largereps) */
    int pgd; /* plain PGD, the simple baseline: fixed step 2.5 eps / n_iter, no momentum, no
              * checkpoints or sparsity adaptation (l_1 keeps its initial sparsity) */
} rc_apgd_opts;

/* Device state of one attack on up to B samples of d coordinates. The caller writes the clean
 * batch into `x` and labels (int32) into `labels` (and `targets` for the targeted loss), and
 * optionally a start point into `x_start`. Results: x_best, loss_best, x_best_adv, acc. */
typedef struct rc_apgd {
    int B, d, max_iter;
    cl_mem x, x_start, labels, targets;
    cl_mem x_adv, x_adv_old, z, v,
        g; /* iterate, previous iterate, step, momentum result, gradient */
    cl_mem x_best, grad_best, x_best_adv; /* best-loss point and its gradient; last misclassified */
    cl_mem loss, correct, loss_best, acc;          /* per sample */
    cl_mem loss_steps;                             /* (max_iter + 1) x B, row -1 kept zero */
    cl_mem eta, reduced, loss_best_last, topk, sp_old, tau;
    rc_attack_scratch scratch;
} rc_apgd;

int rc_apgd_alloc(rc_ctx *ctx, rc_apgd *a, int B, int d, int max_iter, rc_err *e);
void rc_apgd_free(rc_apgd *a);

/* Attack the first n <= B samples of a->x with model m (BN in eval mode). With `from_start`
 * the run starts at a->x_start (a random start or a previous stage), else at a->x. */
int rc_apgd_run(rc_ctx *ctx, rc_apgd *a, rc_model *m, const rc_apgd_opts *o, int n,
                int from_start, rc_err *e);

/* Forward (eval mode) of the n samples at `x` (rows of d floats), per-sample attack loss and
 * correctness (argmax == label) into `loss` and `correct`, and with want_grad the input
 * gradient of the summed loss into g. labels and targets: int32 per sample. */
int rc_attack_loss_grad(rc_ctx *ctx, rc_model *m, rc_attack_loss loss, cl_mem x, cl_mem labels,
                        cl_mem targets, int n, int d, cl_mem loss_out, cl_mem correct,
                        int want_grad, cl_mem g, rc_err *e);

/* rc_attack_loss_grad with a's labels, targets, loss and correct. */
int rc_apgd_loss_grad(rc_ctx *ctx, rc_apgd *a, rc_model *m, rc_attack_loss loss, cl_mem x, int n,
                      int want_grad, cl_mem g, rc_err *e);

#endif
