/* Gradient projection (paper Sec. 4.3.2, Eq. 4-7; RAMP's utils.py gp()), once per epoch on the
 * whole-epoch deltas of every state-dict tensor, each tensor its own group. Following the paper,
 * beta weights the adversarial delta:
 *   g_a = theta_adv - theta_old, g_n = theta_nat - theta_old,
 *   cos = <g_a, g_n> / (max(|g_a|, 1e-8) * max(|g_n|, 1e-8))   (PyTorch >= 1.12 cosine_similarity)
 *   theta_new = theta_old + beta * g_a + [cos > 0] * (1 - beta) * cos * g_n.
 * The device sums <g_a, g_n>, |g_a|^2 and |g_n|^2 per tensor (compensated float sums in a fixed
 * order: deterministic and accurate for millions of floats without fp64); the host finishes cos in
 * double and uploads each tensor's weight of g_n; the device applies the update.
 * num_batches_tracked (host-side) is not touched: the caller keeps the adversarial model's. */
#ifndef RAMP_GP_H
#define RAMP_GP_H

#include "ramp/device.h"

#include <stddef.h>

/* One state-dict tensor: `numel` floats from float `offset` of its arena. */
typedef struct rc_gp_tensor {
    size_t offset, numel;
    int arena; /* 0 = parameter arena, 1 = state arena (BN running_mean / running_var) */
} rc_gp_tensor;

/* A snapshot of both arenas (device copies), taken with rc_gp_snapshot_take. state is NULL when
 * n_state is 0. */
typedef struct rc_gp_snapshot {
    cl_mem params, state;
    size_t n_params, n_state; /* floats */
} rc_gp_snapshot;

int rc_gp_snapshot_alloc(rc_ctx *ctx, rc_gp_snapshot *s, size_t n_params, size_t n_state,
                         rc_err *e);
/* Safe on a zeroed or already freed snapshot. */
void rc_gp_snapshot_free(rc_gp_snapshot *s);
/* Device-to-device copies of the first n_params / n_state floats (queued, not waited for). */
int rc_gp_snapshot_take(rc_ctx *ctx, rc_gp_snapshot *s, cl_mem params, cl_mem state, rc_err *e);
int rc_gp_snapshot_restore(rc_ctx *ctx, const rc_gp_snapshot *s, cl_mem params, cl_mem state,
                           rc_err *e);

/* Merge: the adv arenas are overwritten with theta_new (old and nat are only read; the caller
 * copies theta_new into the natural model). cos_out, when not NULL, receives each tensor's cosine
 * (0 for an empty tensor or a zero delta). Tensor offsets and sizes are checked against
 * old->n_params / old->n_state; state buffers may be NULL when no tensor lives in the state
 * arena. Waits for the device once (one small read of the per-tensor sums, then one small write of
 * the weights); the final update is queued, not waited for. */
int rc_gp_merge(rc_ctx *ctx, const rc_gp_snapshot *old, cl_mem adv_params, cl_mem adv_state,
                cl_mem nat_params, cl_mem nat_state, const rc_gp_tensor *tensors, int n_tensors,
                float beta, double *cos_out, rc_err *e);

#endif
