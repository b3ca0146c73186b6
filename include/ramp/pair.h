/* The key tradeoff pair (paper Sec. 4.1, App. B.2.1): given l_inf-, l_2- and l_1-AT models,
 * each measured against its own norm, the two norms with the lowest own-norm robust accuracy form
 * the pair; the lowest is q (the model to fine-tune from), the other r. */
#ifndef RAMP_PAIR_H
#define RAMP_PAIR_H

#include "ramp/config.h"
#include "ramp/device.h"

/* own_acc[p] for p = RC_NORM_LINF, RC_NORM_L2, RC_NORM_L1; a negative value means no model for
 * that norm (at least two are needed). Ties go to the norm listed first (l_inf, l_2, l_1). */
int rc_pair_choose(const double own_acc[3], rc_norm *q, rc_norm *r);

/* `ramp-cl pair`: evaluate each given checkpoint (NULL: none for that norm) against its own norm
 * with the fast protocol on the first n test points, print the table, choose the pair, and with
 * write_path write the config with method ramp, that pair, init = q's checkpoint and an
 * output.dir of its own (runs/NAME for NAME.yaml, numbered where that exists). */
int rc_pair_run(rc_ctx *ctx, const rc_config *cfg, const char *const checkpoints[3], int n,
                const char *write_path, rc_err *e);

/* `ramp.pair: auto` in a RAMP config: measure ramp.at_checkpoints (first eval.n test points),
 * set the pair and init = q's checkpoint (and clear at_checkpoints: the config then reads as the
 * decision). Does nothing for other methods or a given pair. */
int rc_pair_resolve(rc_ctx *ctx, rc_config *cfg, rc_err *e);

#endif
