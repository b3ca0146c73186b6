/* Multi steepest descent (Maini et al. 2020, the reference robust_union's msd_v0): the parts of
 * its l_1 candidate that the APGD primitives (cl/attack_step.cl, cl/l1.cl) do not cover, and the
 * per-sample choice between the three candidates (the l_inf and l_2 candidates and the l_1 top-k
 * threshold are those primitives). Iterates are points x_adv = x + delta in [0,1]. Contraction of
 * a*b+c into fma is switched off so every device rounds like the reference. */
#pragma OPENCL FP_CONTRACT OFF

/* l1_dir_topk's mask: gm = g, with 0 where a step along sign(g) would push a pixel that is within
 * `gap` of the boundary further out, or where the pixel is already at 0 or 1. */
__kernel void msd_l1_mask(__global const float *x_adv, __global const float *g, const float gap,
                          __global float *gm, const int B, const int d, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    for (int j = j0; j < j1; j += step) {
        const float v = g[off + j], xc = x_adv[off + j];
        const int out = (v < 0.0f && xc <= gap) || (v > 0.0f && xc >= 1.0f - gap) ||
                        xc <= 0.0f || xc >= 1.0f;
        gm[off + j] = out ? 0.0f : v;
    }
}

/* delta = (x_adv - x) + alpha * sign(gm) * [|gm| >= tau[b]] (tau: the k-th largest |gm|), and
 * the sum of |delta|: GPU class, nrm[b] = the sample's sum, by its work-group (the lanes of
 * wg_tree_sum); CPU class, part[b*C + c] = the chunk's sum. */
static inline float msd_l1_delta(const float xj, const float xa, const float v, const float th,
                                 const float alpha) {
    const float dir = fabs(v) >= th ? sign(v) : 0.0f;
    return (xa - xj) + alpha * dir;
}

#if RC_GPU
__kernel void msd_l1_step(__global const float *x, __global const float *x_adv,
                          __global const float *gm, __global const float *tau, const float alpha,
                          __global float *delta, __global float *nrm, const int B, const int d) {
    __local float lanes[RC_LANES];
    const int b = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const float th = tau[b];
    for (int v = lid; v < RC_LANES; v += L) {
        float s = 0.0f;
        for (int j = v; j < d; j += RC_LANES) {
            const float t = msd_l1_delta(x[off + j], x_adv[off + j], gm[off + j], th, alpha);
            delta[off + j] = t;
            s += fabs(t);
        }
        lanes[v] = s;
    }
    const float s = wg_tree_sum(lanes);
    if (lid == 0) nrm[b] = s;
}
#else
__kernel void msd_l1_step(__global const float *x, __global const float *x_adv,
                          __global const float *gm, __global const float *tau, const float alpha,
                          __global float *delta, __global float *part, const int B, const int d,
                          const int C) {
    int b, j0, j1, step;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float th = tau[b];
    float s = 0.0f;
    for (int j = j0; j < j1; j += step) {
        const float t = msd_l1_delta(x[off + j], x_adv[off + j], gm[off + j], th, alpha);
        delta[off + j] = t;
        s += fabs(t);
    }
    part[i] = s;
}
#endif

/* proj_l1ball then the box: z = clip_[0,1](x + sign(delta) * max(|delta| - theta, 0)).
 *   - If no sample of the batch has ||delta||_1 > eps, theta = 0 (the reference returns the
 *     batch unchanged).
 *   - Otherwise every sample goes through the sort-based simplex projection (Duchi et al. 2008):
 *     with u the magnitudes sorted descending and S_j their prefix sums, rho = the last j with
 *     u_j * j > S_j - eps, theta = (S_rho - eps) / rho. For a sample inside the ball that rule
 *     takes every coordinate, zeros included (rho = d), so theta = (||delta||_1 - eps) / d < 0:
 *     its nonzero coordinates grow by (eps - ||delta||_1) / d, the reference's quirk (zeros stay
 *     zero through sign(delta)).
 * CPU class: the magnitudes of a sample outside the ball are sorted by an LSD radix sort on their
 * float bits (positive floats order as their bits) in keys[b*2d ...] / keys2. One work-item per
 * sample; part holds the per-chunk sums of |delta| from msd_l1_step.
 * GPU class: msd_l1_theta (one work-group per sample, nrm[b] = ||delta_b||_1 from msd_l1_step)
 * then msd_l1_apply, and no sort: with f(t) = sum_j max(|delta_j| - t, 0) (nonincreasing), the
 * rule's condition u_j * j > S_j - eps reads f(u_j) < eps, so the rho coordinates it takes are
 * those above t, the largest float with f(t) > eps (found bit by bit from the top, each f a
 * work-group sum); their count and sum give theta = (S_rho - eps) / rho as on the CPU class. */
static inline float msd_l1_out(const float xj, const float y, const float theta) {
    const float w = fmax(fabs(y) - theta, 0.0f) * sign(y);
    return clamp(xj + w, 0.0f, 1.0f);
}

#if RC_GPU
/* theta[b], by the sample's work-group. Steps 30..0 build t bit by bit (f(inf) = f(NaN) = 0
 * rejects those bits); step -1 sums the magnitudes above t, step -2 counts them. Every step
 * runs, needed or not, and msd_l1_apply writes the row (PoCL: see atk_l1_lambda in cl/l1.cl). */
__kernel void msd_l1_theta(__global const float *delta, __global const float *nrm, const float eps,
                           __global float *theta, const int B, const int d) {
    __local float lanes[RC_LANES];
    const int b = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (b >= B) return;
    __global const float *ys = delta + (size_t)b * d;
    uint t = 0;
    float S_rho = 0.0f, rho = 0.0f;
    for (int i = 30; i >= -2; i--) {
        const float c = as_float(i >= 0 ? t | (1u << i) : t);
        for (int v = lid; v < RC_LANES; v += L) {
            float s = 0.0f;
            for (int j = v; j < d; j += RC_LANES) {
                const float a = fabs(ys[j]);
                s += i >= 0 ? fmax(a - c, 0.0f) : a <= c ? 0.0f : i == -1 ? a : 1.0f;
            }
            lanes[v] = s;
        }
        const float r = wg_tree_sum(lanes);
        if (i >= 0 && r > eps) t = as_uint(c);
        if (i == -1) S_rho = r;
        if (i == -2) rho = r;
    }
    if (lid == 0) {
        int any = 0;
        for (int k = 0; k < B && !any; k++) any = nrm[k] > eps;
        const float norm = nrm[b];
        theta[b] = !any ? 0.0f : norm <= eps ? (norm - eps) / (float)d : (S_rho - eps) / rho;
    }
}

/* z from theta (msd_l1_theta), element-wise in chunks (atk_chunk). */
__kernel void msd_l1_apply(__global const float *x, __global const float *delta,
                           __global const float *theta, __global float *z, const int B, const int d,
                           const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float th = theta[b];
    for (int j = j0; j < j1; j += step) z[off + j] = msd_l1_out(x[off + j], delta[off + j], th);
}
#else
__kernel void msd_l1_project(__global const float *x, __global const float *delta,
                             __global const float *part, const float eps, __global uint *keys,
                             __global uint *keys2, __global float *z, const int B, const int d,
                             const int C) {
    const int b = get_global_id(0);
    if (b >= B) return;
    int any = 0;
    for (int i = 0; i < B && !any; i++) any = atk_row_total(part, i, C) > eps;
    const size_t off = (size_t)b * d;
    __global const float *ys = delta + off;
    float theta = 0.0f;
    if (any) {
        const float norm = atk_row_total(part, b, C);
        if (norm <= eps) {
            theta = (norm - eps) / (float)d;
        } else {
            __global uint *src = keys + 2 * off, *dst = keys2 + 2 * off;
            uint n = 0;
            for (int j = 0; j < d; j++) {
                const float a = fabs(ys[j]);
                if (a > 0.0f) src[n++] = as_uint(a);
            }
            src = atk_radix_sort(src, dst, n);
            /* descending walk; the condition holds on a prefix, always for j = 1 */
            float S = as_float(src[n - 1]), S_rho = S;
            uint rho = 1;
            for (uint j = 2; j <= n; j++) {
                const float u = as_float(src[n - j]);
                S += u;
                if (!(u * (float)j > S - eps)) break;
                rho = j;
                S_rho = S;
            }
            theta = (S_rho - eps) / (float)rho;
        }
    }
    for (int j = 0; j < d; j++) z[off + j] = msd_l1_out(x[off + j], ys[j], theta);
}
#endif

/* Candidate c (0 = l_1, 1 = l_2, 2 = l_inf: the reference's evaluation order) with per-sample
 * loss `loss`: replaces the iterate where loss >= the best loss of this iteration so far (ties go
 * to the later candidate; the running maximum starts at 0 with the first). After the last
 * candidate the iterate becomes the best over iterations where its loss is strictly above the
 * best so far (which starts at 0). A per-sample kernel (SAMPLE_ID in cl/common.cl). */
__kernel void msd_select(__global const float *cand, __global const float *loss,
                         __global float *max_loss, __global float *x_adv, __global float *x_best,
                         __global float *best_loss, const int c, const int B, const int d) {
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const float l = loss[b], m0 = c == 0 ? 0.0f : max_loss[b];
    const int take = l >= m0;
    const float m = take ? l : m0;
    const int best = c == 2 && m > best_loss[b];
    if (sample_writer()) {
        max_loss[b] = m;
        if (best) best_loss[b] = m;
    }
    if (take) sample_copy(x_adv + off, cand + off, d);
    if (best) sample_copy(x_best + off, x_adv + off, d);
}
