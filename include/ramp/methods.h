/* Adversarial training methods (spec section 6): each batch's training input is built from APGD
 * attacks in training mode (spec section 3: no random start, BN in eval mode, x_best).
 *   at   one threat model (attack_norm)
 *   sat  one threat model per batch, drawn uniformly
 *   eat  E-AT: one threat model per batch, drawn with weight 1 - its robust accuracy so far
 *        (cumulative counters; uniform until every threat model has been used)
 *   max  every threat model; per sample the example with the highest attack loss (threat models
 *        in the order linf, l1, l2 as in the reference MAX.py; ties go to the earlier one) */
#ifndef RAMP_METHODS_H
#define RAMP_METHODS_H

#include "ramp/apgd.h"
#include "ramp/config.h"

typedef struct rc_adv_trainer {
    rc_method method;
    int n_threats;
    rc_threat threats[RC_MAX_THREATS]; /* in attack order */
    int at_index;                      /* method at: which threat model */
    rc_apgd apgd;                      /* attack buffers; its x and labels hold the clean batch */
    cl_mem adv[RC_MAX_THREATS], loss[RC_MAX_THREATS];
    double robust[RC_MAX_THREATS], attacked[RC_MAX_THREATS]; /* E-AT counters */
    float *acc;                                              /* host copy of one batch's flags */
    rc_rng rng;
} rc_adv_trainer;

/* Methods this version can train with; the others are refused with a clear message. */
int rc_method_supported(rc_method m);

int rc_adv_trainer_init(rc_ctx *ctx, rc_adv_trainer *t, const rc_config *cfg, int B, int d,
                        rc_err *e);
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

int rc_adv_trainer_batch(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int *chosen,
                         rc_err *e);

#endif
