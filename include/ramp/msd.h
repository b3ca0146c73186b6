/* Multi steepest descent, the MSD training attack (Maini et al. 2020; robust_union's msd_v0),
 * on the device: the host only enqueues work and draws the l_1 sparsity k.
 *
 * From delta = 0, each iteration takes one gradient g of the batch-mean cross-entropy at x +
 * delta and builds three candidates from the same delta and g:
 *   l_2:   delta + alpha_2 g / ||g||_2, scaled back onto the eps_2 ball, x + delta clipped to
 * [0,1]; l_inf: clip(delta + alpha_inf sign(g), -eps_inf, eps_inf), clipped to the box; l_1:   k ~
 * U{5..20}, alpha' = alpha_1 * 20 / k; the direction sign(g) on the coordinates whose |g| is at
 * least the k-th largest after masking those within gap = alpha' of the box boundary in the
 * direction of g (or already on it); delta + alpha' * direction, then the reference's sort-based
 * l_1-ball projection (skipped when the whole batch is inside; samples inside grow by (eps_1 -
 * ||delta||_1) / d on their nonzero coordinates when another one is outside), then clipped to the
 * box. Each candidate's per-sample cross-entropy is measured in the order (l_1, l_2, l_inf) and
 * delta becomes, per sample, the one with the highest loss (ties to the later). The result is the
 * best delta over the iterations (strictly higher loss, from loss 0 at delta = 0).
 *
 * The model stays in TRAIN mode throughout, as in the reference (which never calls eval() in
 * training): every forward uses batch statistics and updates the BN running statistics, four
 * per iteration. */
#ifndef RAMP_MSD_H
#define RAMP_MSD_H

#include "ramp/attack_ops.h"
#include "ramp/model.h"
#include "ramp/rng.h"

typedef struct rc_msd_opts {
    float eps_linf, eps_l2, eps_l1;
    float alpha_linf, alpha_l2, alpha_l1;
    int n_iter;
} rc_msd_opts;

enum { RC_MSD_L1, RC_MSD_L2, RC_MSD_LINF }; /* candidate order = evaluation order */

typedef struct rc_msd {
    int B, d;
    cl_mem x_adv;   /* x + delta, the iterate */
    cl_mem cand[3]; /* the iteration's candidates x + delta_p, RC_MSD_* order */
    cl_mem x_best;  /* x + the best delta so far: the result */
    cl_mem gm;      /* the masked gradient of the l_1 direction */
    cl_mem loss, correct, max_loss, best_loss;           /* per sample */
    cl_mem eta_linf, eta_l2, topk, tau;                  /* per sample, for attack_ops */
    rc_attack_scratch scratch;
} rc_msd;

int rc_msd_alloc(rc_ctx *ctx, rc_msd *a, int B, int d, rc_err *e);
/* Safe on a zeroed or partly allocated struct; leaves it zeroed. */
void rc_msd_free(rc_msd *a);

/* The three candidates of one iteration into a->cand from the iterate a->x_adv, the clean batch
 * x and the gradient g at the iterate, with l_1 sparsity k (n <= B samples). */
int rc_msd_candidates(rc_ctx *ctx, rc_msd *a, cl_mem x, cl_mem g, const rc_msd_opts *o, int k,
                      int n, rc_err *e);

/* Candidate c (RC_MSD_*), whose per-sample loss is in a->loss, competes for the iterate (c = 0
 * starts the iteration's running maximum); after c = RC_MSD_LINF the best point is updated. */
int rc_msd_select(rc_ctx *ctx, rc_msd *a, int c, int n, rc_err *e);

/* Start a run: iterate and best point at x, best loss 0. */
int rc_msd_start(rc_ctx *ctx, rc_msd *a, cl_mem x, int n, rc_err *e);

/* The whole attack on the first n samples of x (labels int32) with model m in train mode; the
 * result is a->x_best. k is drawn from rng once per iteration. n_batch > n: the n are this
 * process's slice of a batch split across processes (ramp/dist.h), whose train-mode batch norm
 * couples the slices' input gradients: each is that of the whole batch's mean loss. */
int rc_msd_run(rc_ctx *ctx, rc_msd *a, rc_model *m, cl_mem x, cl_mem labels,
               const rc_msd_opts *o, rc_rng *rng, int n, int n_batch, rc_err *e);

#endif
