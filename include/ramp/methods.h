/* Adversarial training methods (spec sections 4 and 6): each batch's training input is built from
 * APGD attacks in training mode (spec section 3: no random start, BN in eval mode, x_best).
 *   at   one threat model (attack_norm)
 *   sat  one threat model per batch, drawn uniformly
 *   eat  E-AT: one threat model per batch, drawn with weight 1 - its robust accuracy so far
 *        (cumulative counters; uniform until every threat model has been used)
 *   max  every threat model; per sample the example with the highest attack loss (threat models
 *        in the order linf, l1, l2 as in the reference MAX.py; ties go to the earlier one) */
/*   ramp the key tradeoff pair (q, r): attacks in both, per-sample MAX selection (ties to r),
 *        three train-mode forwards (x_r, x_q, x_best) and L = CE(x_best) + lambda KL(p_q || p_r)
 *        over the points the l_q example leaves correctly classified. */
#ifndef RAMP_METHODS_H
#define RAMP_METHODS_H

#include "ramp/apgd.h"
#include "ramp/config.h"

typedef struct rc_adv_trainer {
    rc_method method;
    int n_threats;
    rc_threat threats[RC_MAX_THREATS]; /* in attack order */
    int at_index;                      /* method at: which threat model */
    int q, r;                          /* method ramp: threat indices of the pair */
    float lambda;
    rc_model view_q, view_r;           /* ramp: activations of the x_q and x_r passes */
    rc_apgd apgd;                      /* attack buffers; its x and labels hold the clean batch */
    cl_mem adv[RC_MAX_THREATS], loss[RC_MAX_THREATS];
    double robust[RC_MAX_THREATS], attacked[RC_MAX_THREATS]; /* E-AT counters */
    float *acc;                                              /* host copy of one batch's flags */
    rc_rng rng;
} rc_adv_trainer;

/* Methods this version can train with; the others are refused with a clear message. */
int rc_method_supported(rc_method m);

int rc_adv_trainer_init(rc_ctx *ctx, rc_adv_trainer *t, const rc_config *cfg, rc_model *m, int B,
                        int d, rc_err *e);
void rc_adv_trainer_free(rc_adv_trainer *t);

/* With the clean batch (n samples) in t->apgd.x and its labels in t->apgd.labels, attack as the
 * method says and write the training input into the model's input buffer. *chosen gets the
 * threat index used for the batch (-1 when every threat model was used). */
/* E-AT's current sampling weights, normalised to sum 1 (exposed for tests). */
void rc_eat_weights(const rc_adv_trainer *t, double *w);

/* MAX's per-sample choice: out[b] = adv[i][b] for the i with the largest loss[i][b], the first on
 * ties; n_threats of adv/loss are used. */
int rc_select_max(rc_ctx *ctx, const cl_mem *adv, const cl_mem *loss, int n_threats, cl_mem out,
                  int n, int d, rc_err *e);

/* RAMP's whole step but the optimiser: attacks, selection, the three forwards, the loss (its
 * per-sample values and correctness written to loss/correct) and the parameter gradients. */
int rc_ramp_step(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, cl_mem labels, cl_mem loss,
                 cl_mem correct, rc_err *e);

int rc_adv_trainer_batch(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int *chosen,
                         rc_err *e);

#endif
