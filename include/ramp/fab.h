/* Targeted FAB (Croce & Hein 2020), AutoAttack's FAB-T, on the device, as fra31/auto-attack's
 * autoattack/fab_base.py and fab_pt.py run it in the standard version: one restart from the clean
 * point (no random start), 100 iterations, alpha_max 0.1, overshoot eta 1.05, backward step
 * beta 0.9, the target the class with the k-th largest clean logit, l_inf, l_2 and l_1. Each
 * iteration takes one input gradient (of z_target - z_label) and one forward; the step's two
 * projections onto hyperplane-and-box are exact l_p projections found by bisection on the device
 * (cl/fab.cl says how they differ from the reference's sort-based ones). A point counts as broken
 * when the closest misclassified point found lies within eps, as the reference's perturb judges. */
#ifndef RAMP_FAB_H
#define RAMP_FAB_H

#include "ramp/model.h"
#include "ramp/names.h"

typedef struct rc_fab_opts {
    rc_norm norm;
    float eps;
    int n_iter; /* AutoAttack: 100 */
} rc_fab_opts;

/* Device state for up to B samples of d coordinates. The caller writes the clean points into `x`,
 * labels and targets (int32) into `labels` and `targets`. Results: `res`, the l_p distance of the
 * closest misclassified point found (1e10 when none), that point in `best`. */
typedef struct rc_fab {
    int B, d;
    cl_mem x, labels, targets;
    cl_mem x1, g, df, correct; /* iterate, gradient of z_t - z_y there, z_t - z_y, argmax == y */
    cl_mem best, res;
} rc_fab;

int rc_fab_alloc(rc_ctx *ctx, rc_fab *f, int B, int d, rc_err *e);
void rc_fab_free(rc_fab *f);

/* Start the first n samples at their clean points (res 1e10, best = x). */
int rc_fab_init(rc_ctx *ctx, rc_fab *f, int n, rc_err *e);
/* One iteration: the gradient of z_t - z_y at x1, the projections and the step, the forward
 * there, and the bookkeeping (res only falls). */
int rc_fab_step(rc_ctx *ctx, rc_fab *f, rc_model *m, rc_norm norm, int n, rc_err *e);

/* One FAB-T run (init, n_iter steps) on the first n samples; broken[i] = (res[i] <= eps) unless
 * broken is NULL. */
int rc_fab_run(rc_ctx *ctx, rc_fab *f, rc_model *m, const rc_fab_opts *o, int n,
               unsigned char *broken, rc_err *e);

#endif
