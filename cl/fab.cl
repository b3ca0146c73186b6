/* Targeted FAB (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast
 * adaptive boundary attack") as AutoAttack's fab_base.py / fab_pt.py run it: at x1, linearise
 * the boundary z_t - z_y = 0 to the hyperplane {z : df + <g, z - x1> = 0} (df = z_t - z_y at
 * x1, g its input gradient), project x1 and the clean x0 onto hyperplane-and-box in l_p, step
 * to a convex combination with overshoot, and when the step lands on the other side keep it if
 * it is the closest so far and pull x1 back towards x0. Per-sample kernels: one work-item per
 * sample (CPU class) or one work-group per sample (GPU class, SAMPLE_ID in cl/common.cl), sums in
 * the fixed lanes of wg_tree_sum. */
#pragma OPENCL FP_CONTRACT OFF

#define FAB_LINF 0
#define FAB_L2 1
#define FAB_L1 2

/* The projection of a point t onto {z : <w, z> = <w, t> - c} intersected with [0,1]^d, the
 * smallest change in l_p (the reference's projection_linf / _l2 / _l1 of fab_projections.py),
 * found by bisection on a float's bits rather than by sorting. Coordinate j moves in direction
 * dir_j = -sign(w_j) sign(c), at most room_j (to 0 or 1), reducing |c| by |w_j| per unit:
 *   l_inf: d_j = dir_j min(lambda, room_j),          lambda the smallest with sum >= |c|;
 *   l_2:   d_j = dir_j min(lambda |w_j|, room_j),    the same;
 *   l_1:   d_j = dir_j room_j for |w_j| > theta, a fraction f of it at |w_j| = theta, else 0,
 *          theta the smallest with sum_{|w_j| > theta} |w_j| room_j < |c| (largest |w| first);
 * When the box cannot absorb |c| every coordinate moves its whole room (the reference's
 * fallback). Coordinates with w_j = 0 (l_inf) or |w_j| <= 1e-8 (l_2, l_1; the reference zeroes
 * them in the result) do not move and do not count. Ties at theta share the remainder evenly
 * (the reference fills them one at a time in sort order: the same l_1 norm). */
static inline int fab_moves(const float w, const int norm) {
    return norm == FAB_LINF ? w != 0.0f : fabs(w) > 1e-8f;
}

/* d_j of a projection (sgn = sign(c); lambda and f as above) of t_j with gradient w_j */
static inline float fab_dj(const float sgn, const float lambda, const float f, const float w,
                           const float t, const int norm) {
    if (!fab_moves(w, norm)) return 0.0f;
    const float dir = (w > 0.0f) == (sgn > 0.0f) ? -1.0f : 1.0f;
    const float room = dir < 0.0f ? t : 1.0f - t, aw = fabs(w);
    if (norm == FAB_LINF) return dir * fmin(lambda, room);
    if (norm == FAB_L2) return dir * fmin(lambda * aw, room);
    return aw > lambda ? dir * room : aw == lambda ? dir * f * room : 0.0f;
}

/* The terms summed by the bisection (what coordinate j absorbs of |c| at parameter v), and
 * (kind 1) its whole room, (kind 2) its absorption at the l_1 threshold exactly. */
static inline float fab_absorb(const float v, const float sgn, const float w, const float t,
                               const int norm, const int kind) {
    if (!fab_moves(w, norm)) return 0.0f;
    const float dir = (w > 0.0f) == (sgn > 0.0f) ? -1.0f : 1.0f;
    const float room = dir < 0.0f ? t : 1.0f - t, aw = fabs(w);
    if (kind == 1) return aw * room;
    if (kind == 2) return aw == v ? aw * room : 0.0f;
    if (norm == FAB_LINF) return aw * fmin(v, room);
    if (norm == FAB_L2) return aw * fmin(v * aw, room);
    return aw > v ? aw * room : 0.0f;
}

static inline float fab_absorb_part(__global const float *w, __global const float *t, const int d,
                                    const float v, const float sgn, const int norm, const int kind,
                                    const int k0, const int stride) {
    float s = 0.0f;
    for (int j = k0; j < d; j += stride) s += fab_absorb(v, sgn, w[j], t[j], norm, kind);
    return s;
}

/* the partial of ||d||_p (sum of |d_j| or d_j^2, or max |d_j| for l_inf) of a projection */
static inline float fab_norm_part(const float sgn, const float lambda, const float f,
                                  __global const float *w, __global const float *t, const int d,
                                  const int norm, const int k0, const int stride) {
    float s = 0.0f;
    for (int j = k0; j < d; j += stride) {
        const float dj = fab_dj(sgn, lambda, f, w[j], t[j], norm);
        s = norm == FAB_LINF ? fmax(s, fabs(dj)) : norm == FAB_L2 ? s + dj * dj : s + fabs(dj);
    }
    return s;
}

/* the partial of ||a - b||_p as fab_norm_part */
static inline float fab_lp_part(__global const float *a, __global const float *b, const int d,
                                const int norm, const int k0, const int stride) {
    float s = 0.0f;
    for (int j = k0; j < d; j += stride) {
        const float t = a[j] - b[j];
        s = norm == FAB_LINF ? fmax(s, fabs(t)) : norm == FAB_L2 ? s + t * t : s + fabs(t);
    }
    return s;
}

static inline float fab_dot_part(__global const float *w, __global const float *a,
                                 __global const float *b, const int d, const int k0,
                                 const int stride) {
    float s = 0.0f;
    for (int j = k0; j < d; j += stride) s += w[j] * (a[j] - b[j]);
    return s;
}

/* One halving of the bisection interval (lo, hi) of float bits at mid, where the terms sum to
 * a: l_inf and l_2 look for the smallest v with a >= need, l_1 for the smallest with a < need.
 * Non-negative floats order as their bits. */
static inline uint2 fab_halve(const uint2 r, const uint mid, const float a, const float need,
                              const int norm) {
    if (r.y - r.x <= 1u) return r;
    const int upper = norm == FAB_L1 ? a < need : a >= need;
    return upper ? (uint2)(r.x, mid) : (uint2)(mid, r.y);
}

/* (lambda, f) of a projection from the bisection's v and the sums: no move when c = 0, the
 * whole room (the box's corner) when the box cannot absorb |c|. */
static inline float2 fab_param(const float need, const float total, const float v,
                               const float above, const float at, const int norm) {
    if (need == 0.0f) return (float2)(norm == FAB_L1 ? INFINITY : 0.0f, 1.0f);
    if (total <= need) return (float2)(norm == FAB_L1 ? 0.0f : INFINITY, 1.0f);
    if (norm != FAB_L1) return (float2)(v, 1.0f);
    return (float2)(v, at > 0.0f ? clamp((need - above) / at, 0.0f, 1.0f) : 0.0f);
}

#if RC_GPU
/* The lanes' sum (wg_tree_sum's tree) or maximum (for the l_inf norm); every work-item calls it.
 * One function for both: the barriers stay out of any branch. */
static inline float fab_tree(__local float *lanes, const int use_max) {
    const int lid = get_local_id(0), L = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RC_LANES / 2; s > 0; s >>= 1) {
        for (int v = lid; v < s; v += L)
            lanes[v] = use_max ? fmax(lanes[v], lanes[v + s]) : lanes[v] + lanes[v + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float m = lanes[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return m;
}
/* out = the reduction of `part` over a sample: on the GPU class lane l takes the items
 * l, l + RC_LANES, ... (k0, stride) and the lanes meet in fab_tree; on the CPU class one
 * work-item takes them all. The kernels' reductions all run unconditionally, their results
 * chosen after: barriers under data-dependent branches are miscompiled by PoCL. */
#define FAB_REDUCE(out, part, use_max)                                                            \
    do {                                                                                          \
        for (int lane = get_local_id(0); lane < RC_LANES; lane += get_local_size(0)) {            \
            const int k0 = lane, stride = RC_LANES;                                               \
            lanes[lane] = (part);                                                                 \
        }                                                                                         \
        (out) = fab_tree(lanes, use_max);                                                         \
    } while (0)
#else
#define FAB_REDUCE(out, part, use_max)                                                            \
    do {                                                                                          \
        const int k0 = 0, stride = 1;                                                             \
        (out) = (part);                                                                           \
    } while (0)
#endif
#define FAB_SUM(out, part) FAB_REDUCE(out, part, 0)

/* One step: with c1 = df (the offset at x1) and c0 = df + <g, x0 - x1> (at x0; the reference
 * forms b = <g, x1> - df and then <g, x0> - b, the same number without its cancellation), d1 and
 * d2 the projections of x1 and x0, alpha = clamp(|d1| / (|d1| + |d2|), 0, alpha_max) (norms at
 * least 1e-8, as the reference's a0):
 *   x_new = clip_[0,1]((x1 + eta d1)(1 - alpha) + (x0 + eta d2) alpha).
 * Both projections go through each pass together. */
__kernel void fab_step(__global const float *x0, __global const float *x1,
                       __global const float *g, __global const float *df, const int norm,
                       const float eta, const float alpha_max, __global float *x_new, const int B,
                       const int d) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const int j0 = get_local_id(0), jstep = get_local_size(0);
#else
    const int j0 = 0, jstep = 1;
#endif
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    __global const float *w = g + off, *p0 = x0 + off, *p1 = x1 + off;
    float dot, tot1, tot0, a1, a0, ab1, ab0, at1, at0, n1, n0;
    FAB_SUM(dot, fab_dot_part(w, p0, p1, d, k0, stride));
    const float c1 = df[b], c0 = c1 + dot;
    const float sg1 = c1 < 0.0f ? -1.0f : 1.0f, sg0 = c0 < 0.0f ? -1.0f : 1.0f;
    const float need1 = fabs(c1), need0 = fabs(c0);
    FAB_SUM(tot1, fab_absorb_part(w, p1, d, 0.0f, sg1, norm, 1, k0, stride));
    FAB_SUM(tot0, fab_absorb_part(w, p0, d, 0.0f, sg0, norm, 1, k0, stride));
    uint2 r1 = (uint2)(0u, 0x7f800000u), r0 = r1; /* [0, +inf]: 31 halvings close it */
    for (int it = 0; it < 31; it++) {
        const uint m1 = r1.x + (r1.y - r1.x) / 2u, m0 = r0.x + (r0.y - r0.x) / 2u;
        FAB_SUM(a1, fab_absorb_part(w, p1, d, as_float(m1), sg1, norm, 0, k0, stride));
        FAB_SUM(a0, fab_absorb_part(w, p0, d, as_float(m0), sg0, norm, 0, k0, stride));
        r1 = fab_halve(r1, m1, a1, need1, norm);
        r0 = fab_halve(r0, m0, a0, need0, norm);
    }
    const float v1 = as_float(r1.y), v0 = as_float(r0.y);
    FAB_SUM(ab1, fab_absorb_part(w, p1, d, v1, sg1, norm, 0, k0, stride));
    FAB_SUM(ab0, fab_absorb_part(w, p0, d, v0, sg0, norm, 0, k0, stride));
    FAB_SUM(at1, fab_absorb_part(w, p1, d, v1, sg1, norm, 2, k0, stride));
    FAB_SUM(at0, fab_absorb_part(w, p0, d, v0, sg0, norm, 2, k0, stride));
    const float2 q1 = fab_param(need1, tot1, v1, ab1, at1, norm);
    const float2 q0 = fab_param(need0, tot0, v0, ab0, at0, norm);
    FAB_REDUCE(n1, fab_norm_part(sg1, q1.x, q1.y, w, p1, d, norm, k0, stride), norm == FAB_LINF);
    FAB_REDUCE(n0, fab_norm_part(sg0, q0.x, q0.y, w, p0, d, norm, k0, stride), norm == FAB_LINF);
    n1 = fmax(norm == FAB_L2 ? sqrt(n1) : n1, 1e-8f);
    n0 = fmax(norm == FAB_L2 ? sqrt(n0) : n0, 1e-8f);
    const float alpha = clamp(n1 / (n1 + n0), 0.0f, alpha_max), keep = 1.0f - alpha;
    for (int j = j0; j < d; j += jstep) {
        const float d1 = fab_dj(sg1, q1.x, q1.y, w[j], p1[j], norm);
        const float d2 = fab_dj(sg0, q0.x, q0.y, w[j], p0[j], norm);
        x_new[off + j] = clamp((p1[j] + eta * d1) * keep + (p0[j] + eta * d2) * alpha, 0.0f, 1.0f);
    }
}

/* After the forward at x_new: when it is misclassified, keep it if it is the closest so far
 * (res, best) and set x1 = x0 + (x_new - x0) beta; otherwise x1 = x_new. */
__kernel void fab_update(__global const float *logits, __global const int *labels,
                         __global const float *x0, __global const float *x_new,
                         __global float *x1, __global float *best, __global float *res,
                         const int norm, const float beta, const int B, const int d,
                         const int K) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const int j0 = get_local_id(0), jstep = get_local_size(0);
#else
    const int j0 = 0, jstep = 1;
#endif
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const int adv = row_argmax(logits + (size_t)b * K, K) != labels[b];
    float s; /* the distance, whether or not it is needed: no barrier under the branch */
    FAB_REDUCE(s, fab_lp_part(x_new + off, x0 + off, d, norm, k0, stride), norm == FAB_LINF);
    const float t = norm == FAB_L2 ? sqrt(s) : s;
    const int closer = adv && t < res[b];
    if (sample_writer() && closer) res[b] = t;
    /* a loop per case: PoCL (GPU class, work-groups wider than the row) wrote past the rows
     * with the case selected per coordinate inside one loop */
    if (closer) sample_copy(best + off, x_new + off, d);
    if (adv)
        for (int j = j0; j < d; j += jstep) {
            const float o = x0[off + j];
            x1[off + j] = o + (x_new[off + j] - o) * beta;
        }
    else
        sample_copy(x1 + off, x_new + off, d);
}
