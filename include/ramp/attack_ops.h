/* Device primitives of the APGD attacks (the reference: auto-attack's autopgd_base.py and its
 * L1_projection): the l_inf and l_2 steps with their momentum, the l_1 top-k threshold, sparse
 * step and exact projection, and the l_0 count.
 *
 * Conventions shared by every function here:
 *   - a tensor is a batch of B samples, each a contiguous float32 row of d coordinates (NCHW
 *     flattened); per-sample scalars (eta, topk, tau, counts) are float buffers of length B;
 *   - x is the clean input, in [0,1]; x_adv the current iterate; g the gradient at x_adv;
 *   - outputs may be the same buffer as any input (every kernel reads a coordinate before it
 *     writes the same coordinate, and temporaries live in the scratch), e.g. z == x_adv;
 *   - nothing waits for the device; 0 on success, -1 with *e set on failure;
 *   - per-sample reductions use fixed-order partial sums: results are bit-identical run to run
 *     on one device. Kernels are compiled without fma contraction, so element-wise results round
 *     as the reference's float32 PyTorch operations.
 * Kernels: cl/attack_step.cl (steps, momentum, l_0) and cl/l1.cl (the l_1 parts), with the
 * chunk helper and radix sort of the prelude cl/common.cl. Element-wise work runs in chunks of
 * the rows (atk_chunk); work on whole samples runs one work-item per sample on the CPU class
 * and one work-group per sample on the GPU class (ramp/device.h). Results do not depend on the
 * work-group size. */
#ifndef RAMP_ATTACK_OPS_H
#define RAMP_ATTACK_OPS_H

#include "ramp/names.h" /* rc_norm */
#include "ramp/device.h"
#include "ramp/launch.h"

/* Work-items per row of d coordinates of the element-wise attack kernels (atk_chunk in
 * cl/common.cl): chunks of 256 consecutive coordinates on the CPU class, 256 interleaved lanes on
 * the GPU class. */
int rc_attack_chunks(const rc_ctx *ctx, int d);

/* Device scratch for one batch shape, allocated once and reused for every call with B' <= B and
 * d' <= d (larger shapes are an error). About (B*d floats) + 2 * (B*2d uints) + small; the GPU
 * class needs no keys (B*d floats + small). */
typedef struct rc_attack_scratch {
    int B, d;           /* capacity */
    int chunks;         /* per-row chunks for d (atk_chunk in cl/common.cl) */
    cl_mem tmp;         /* [B*d] floats: the perturbation before a projection */
    cl_mem part;        /* [B*chunks] floats: per-chunk partial sums */
    cl_mem cnt;         /* [B*chunks] uints: per-chunk partial counts (GPU class: per sample) */
    cl_mem nrm;         /* [B] floats: per-sample norms */
    cl_mem nrm2;        /* [B] floats */
    cl_mem keys, keys2; /* [B*2d] uints each: l_1 projection breakpoints, top-k candidates; CPU
                         * class only (NULL on the GPU class) */
} rc_attack_scratch;


int rc_attack_scratch_alloc(rc_ctx *ctx, rc_attack_scratch *s, int B, int d, rc_err *e);
/* Safe on a zeroed or partly allocated struct; leaves it zeroed. */
void rc_attack_scratch_free(rc_attack_scratch *s);

/* l_inf step (APGD's update, first half):
 *   z = clip_[0,1](clip_[x-eps, x+eps](x_adv + eta[b] * sign(g))). */
int rc_attack_linf_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                        float eps, cl_mem z, rc_err *e);

/* l_2 step (APGD's update, first half):
 *   u = x_adv + eta[b] * (g / (||g||_2 + 1e-12)),
 *   z = clip_[0,1](x + ((u - x) / (||u - x||_2 + 1e-12)) * min(eps, ||u - x||_2)),
 * the reference's radial rescale then box clamp (not the exact projection onto ball ∩ box; the
 * clamp only shrinks the norm, so z stays feasible). g = 0 gives z = clip(x_adv projected), no NaN.
 * Uses s->tmp, s->part, s->nrm, s->nrm2. */
int rc_attack_l2_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                      float eps, rc_attack_scratch *s, cl_mem z, rc_err *e);

/* Momentum (APGD's update, second half), norm RC_NORM_LINF or RC_NORM_L2:
 *   v = x_adv + (z - x_adv) * a + (x_adv - x_adv_old) * (1 - a),
 * then projected as the step: l_inf clips to the eps box then to [0,1]; l_2 rescales radially to
 * the eps ball then clamps to [0,1]. `a` is 0.75, or 1 at the first iteration; the caller keeps
 * x_adv_old (the iterate before x_adv). `s` is needed for l_2 only (may be NULL for l_inf). */
int rc_attack_momentum(rc_ctx *ctx, rc_norm norm, int B, int d, cl_mem x, cl_mem x_adv,
                       cl_mem x_adv_old, cl_mem z, float a, float eps, rc_attack_scratch *s,
                       cl_mem out, rc_err *e);

/* l_1 top-k threshold (l_1-APGD's sparse step, as autopgd_base.py): per sample,
 *   idx = (long)clamp((1 - topk[b]) * d, 0, d - 1)  (float32 product, truncation),
 *   tau[b] = the (idx+1)-th smallest |g_j| (ties counted with multiplicity, as a sort would).
 * topk = 0 gives the largest |g|, topk = 1 the smallest. Radix select on the device: one
 * work-item per sample, two scans of the row then the candidates in s->keys (CPU class), or one
 * work-group per sample, four scans of the row with histograms in local memory (GPU class). */
int rc_attack_topk_threshold(rc_ctx *ctx, int B, int d, cl_mem g, cl_mem topk, cl_mem tau,
                             rc_attack_scratch *s, rc_err *e);

/* l_1 sparse step and projection (l_1-APGD's update): with S = {j : |g_j| >= tau[b]} and
 * n_S = #{j in S : g_j != 0} (the reference's divisor ||sign(g * 1_S)||_1),
 *   u = x_adv + (eta[b] * sign(g) * 1_S) / (n_S + 1e-10),   delta = u - x,
 *   z = clip_[0,1](x + delta + L1_projection(x, delta, eps)),
 * i.e. the point of {||z - x||_1 <= eps} ∩ [0,1]^d nearest to u. The final clip only removes
 * float rounding of x + delta* (it moves z by at most one ulp, towards x). tau normally comes
 * from rc_attack_topk_threshold. Uses s->cnt, s->tmp, and s->keys, s->keys2 (CPU class) or
 * s->nrm (GPU class). */
int rc_attack_l1_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                      cl_mem tau, float eps, rc_attack_scratch *s, cl_mem z, rc_err *e);

/* In place, delta <- the exact Euclidean projection of delta onto
 * {delta : ||delta||_1 <= eps, 0 <= x + delta <= 1} (`y + L1_projection(x, y, eps)`
 * of autopgd_base.py).
 * Signs are kept and magnitudes shrink by min(max(lambda, v_j), |delta_j|), v_j the box
 * violation. CPU class (one work-item per sample: a few O(d) passes plus a radix sort of the
 * nonzero breakpoints, at most 2d, in s->keys, s->keys2): lambda comes from the sorted
 * breakpoints and a walk of the piecewise-linear constraint function (compensated float32 sums,
 * from the top so that nothing cancels against sum |delta|), then is raised by an ulp or so if
 * the result's l_1 norm (summed as written, compensated) would exceed eps. GPU class (one
 * work-group per sample, 32 passes over the row): lambda is the smallest float at which that
 * compensated l_1 norm is <= eps, found bit by bit. Coordinates agree with a float64 projection
 * to a few ulps of max |delta_j|. A point already in the ball and the box is returned unchanged,
 * bit for bit; x must lie in [0,1]; x + delta may leave [0,1] by an ulp of rounding.
 * Uses s->keys, s->keys2 (CPU class) or s->nrm (GPU class). */
int rc_attack_l1_project(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem delta, float eps,
                         rc_attack_scratch *s, rc_err *e);

/* z = clip_[0,1](x + P(delta)), P the projection of rc_attack_l1_project; delta is left as it
 * was (`x + delta + L1_projection(x, delta, eps)` of the reference, clipped as
 * rc_attack_l1_step clips). */
int rc_attack_l1_project_point(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem delta, float eps,
                               rc_attack_scratch *s, cl_mem z, rc_err *e);

/* out[b] = #{j : a_j != b_j} as a float (exact below 2^24), e.g. ||x_best - x||_0 (l_1-APGD's
 * sparsity adaptation).
 * NaN counts as different. Needs no scratch. */
int rc_attack_l0(rc_ctx *ctx, int B, int d, cl_mem a, cl_mem b, cl_mem out, rc_err *e);

#endif
