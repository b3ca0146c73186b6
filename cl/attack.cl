/* Attack primitives (spec 1.5, 2.2, 2.4): the l_inf / l_2 steps and momentum, the l_1 sparse
 * step with its top-k threshold, and the exact projection onto the l_1 ball intersected with the
 * [0,1] box. Samples are rows of d contiguous floats.
 *
 * Two launch shapes, both 1D with no per-element integer division:
 *   - element-wise kernels run one work-item per chunk of ATK_CHUNK consecutive coordinates of a
 *     row (global size B * C, C = ceil(d / ATK_CHUNK)); per-sample sums go through per-chunk
 *     partials that are then added in a fixed order, so results are deterministic;
 *   - selection, sorting and the projection run one work-item per sample, looping over its row
 *     (the scratch areas live in global memory).
 * Contraction of a*b+c into fma is switched off so every device rounds like the reference
 * (PyTorch element-wise float32 operations). */
#pragma OPENCL FP_CONTRACT OFF

#define ATK_CHUNK 256

/* The chunk handled by work-item `i`: sample *b, coordinates [*j0, *j1). 0 when out of range. */
static int atk_chunk(const int i, const int C, const int B, const int d, int *b, int *j0,
                     int *j1) {
    if (i >= B * C) return 0;
    *b = i / C;
    const int c = i - *b * C;
    *j0 = c * ATK_CHUNK;
    *j1 = min(d, *j0 + ATK_CHUNK);
    return 1;
}

/* LSD radix sort of n uint keys, ascending, between two scratch areas; returns the one that
 * holds the result. */
static __global uint *atk_radix_sort(__global uint *src, __global uint *dst, const uint n) {
    uint hist[256];
    for (int shift = 0; shift < 32; shift += 8) {
        for (int i = 0; i < 256; i++) hist[i] = 0;
        for (uint i = 0; i < n; i++) hist[(src[i] >> shift) & 255u]++;
        if (hist[(src[0] >> shift) & 255u] == n) continue; /* one digit: order unchanged */
        uint run = 0;
        for (int i = 0; i < 256; i++) {
            const uint h = hist[i];
            hist[i] = run;
            run += h;
        }
        for (uint i = 0; i < n; i++) {
            const uint k = src[i];
            dst[hist[(k >> shift) & 255u]++] = k;
        }
        __global uint *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

/* ---- l_inf ------------------------------------------------------------------------------- */

/* z = clip_[0,1](clip_[x-eps, x+eps](x_adv + eta[b] * sign(g))) */
__kernel void atk_linf_step(__global const float *x, __global const float *x_adv,
                            __global const float *g, __global const float *eta, const float eps,
                            __global float *z, const int B, const int d, const int C) {
    int b, j0, j1;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float s = eta[b];
    for (int j = j0; j < j1; j++) {
        const float xj = x[off + j];
        const float v = x_adv[off + j] + s * sign(g[off + j]);
        z[off + j] = clamp(fmin(fmax(v, xj - eps), xj + eps), 0.0f, 1.0f);
    }
}

/* v = x_adv + (z - x_adv) * a + (x_adv - x_adv_old) * (1 - a), clipped to the eps box and
 * [0,1]. */
__kernel void atk_momentum_linf(__global const float *x, __global const float *x_adv,
                                __global const float *x_adv_old, __global const float *z,
                                const float a, const float eps, __global float *out, const int B,
                                const int d, const int C) {
    int b, j0, j1;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float a1 = 1.0f - a;
    for (int j = j0; j < j1; j++) {
        const float xa = x_adv[off + j], xj = x[off + j];
        const float v = xa + (z[off + j] - xa) * a + (xa - x_adv_old[off + j]) * a1;
        out[off + j] = clamp(fmin(fmax(v, xj - eps), xj + eps), 0.0f, 1.0f);
    }
}

/* ---- l_2 --------------------------------------------------------------------------------- */

/* part[b*C + c] = sum of v^2 over chunk c of row b */
__kernel void atk_sqnorm_part(__global const float *v, __global float *part, const int B,
                              const int d, const int C) {
    int b, j0, j1;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    float s = 0.0f;
    for (int j = j0; j < j1; j++) {
        const float t = v[off + j];
        s += t * t;
    }
    part[i] = s;
}

/* nrm[b] = sqrt(sum over the C partials of row b, in order) */
__kernel void atk_norm_final(__global const float *part, __global float *nrm, const int B,
                             const int C) {
    const int b = get_global_id(0);
    if (b >= B) return;
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += part[b * C + c];
    nrm[b] = sqrt(s);
}

/* u = x_adv + eta[b] * (g / (||g|| + 1e-12)); t = u - x; part = per-chunk sums of t^2. */
__kernel void atk_l2_grad_step(__global const float *x, __global const float *x_adv,
                               __global const float *g, __global const float *eta,
                               __global const float *gnorm, __global float *t,
                               __global float *part, const int B, const int d, const int C) {
    int b, j0, j1;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float s = eta[b], den = gnorm[b] + 1e-12f;
    float q = 0.0f;
    for (int j = j0; j < j1; j++) {
        const float u = x_adv[off + j] + s * (g[off + j] / den);
        const float r = u - x[off + j];
        t[off + j] = r;
        q += r * r;
    }
    part[i] = q;
}

/* v = x_adv + (z - x_adv) * a + (x_adv - x_adv_old) * (1 - a); t = v - x; part as above. */
__kernel void atk_momentum_l2(__global const float *x, __global const float *x_adv,
                              __global const float *x_adv_old, __global const float *z,
                              const float a, __global float *t, __global float *part, const int B,
                              const int d, const int C) {
    int b, j0, j1;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float a1 = 1.0f - a;
    float q = 0.0f;
    for (int j = j0; j < j1; j++) {
        const float xa = x_adv[off + j];
        const float v = xa + (z[off + j] - xa) * a + (xa - x_adv_old[off + j]) * a1;
        const float r = v - x[off + j];
        t[off + j] = r;
        q += r * r;
    }
    part[i] = q;
}

/* z = clip_[0,1](x + (t / (||t|| + 1e-12)) * min(eps, ||t||)): radial rescale onto the eps ball,
 * then the box clamp (the reference's approximate projection, spec 1.5). */
__kernel void atk_l2_project(__global const float *x, __global const float *t,
                             __global const float *tnorm, const float eps, __global float *z,
                             const int B, const int d, const int C) {
    int b, j0, j1;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float n = tnorm[b], den = n + 1e-12f, m = fmin(eps, n);
    for (int j = j0; j < j1; j++)
        z[off + j] = clamp(x[off + j] + (t[off + j] / den) * m, 0.0f, 1.0f);
}

/* ---- counts ------------------------------------------------------------------------------ */

/* out[b] = #{j : p_j != q_j} as a float; one work-item per sample. */
__kernel void atk_l0(__global const float *p, __global const float *q, __global float *out,
                     const int B, const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    uint n = 0;
    for (int j = 0; j < d; j++) n += p[off + j] != q[off + j] ? 1u : 0u;
    out[b] = (float)n;
}

/* ---- l_1 sparse step --------------------------------------------------------------------- */

/* tau[b] = the (idx+1)-th smallest |g| of row b, idx = (long)clamp((1 - topk[b]) * d, 0, d-1)
 * in float32. Radix select, 8 bits at a time from the top, on the bits of |g| (monotone for
 * non-negative floats; NaN sorts last, as in torch.sort). After the first digit the candidates
 * (keys with that top digit) are copied to cand[b*2d ...] and filtered in place by the later
 * digits, so only the first two scans read the whole row. */
__kernel void atk_topk_threshold(__global const float *g, __global const float *topk,
                                 __global float *tau, __global uint *cand, const int B,
                                 const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    __global const uint *row = (__global const uint *)g + (size_t)b * d;
    __global uint *cd = cand + (size_t)b * 2 * d;
    const float t = fmin(fmax((1.0f - topk[b]) * (float)d, 0.0f), (float)(d - 1));
    uint k = (uint)t; /* truncation toward zero, t >= 0 */
    uint hist[256];
    for (int i = 0; i < 256; i++) hist[i] = 0;
    for (int j = 0; j < d; j++) hist[(row[j] >> 24) & 127u]++;
    uint digit = 0, below = 0;
    while (below + hist[digit] <= k) below += hist[digit++];
    k -= below;
    uint prefix = digit << 24, m = 0;
    for (int j = 0; j < d; j++) {
        const uint key = row[j] & 0x7fffffffu;
        if ((key >> 24) == digit) cd[m++] = key;
    }
    for (int shift = 16; shift >= 0; shift -= 8) {
        for (int i = 0; i < 256; i++) hist[i] = 0;
        for (uint i = 0; i < m; i++) hist[(cd[i] >> shift) & 255u]++;
        digit = 0, below = 0;
        while (below + hist[digit] <= k) below += hist[digit++];
        k -= below;
        prefix |= digit << shift;
        if (shift == 0) break;
        uint w = 0;
        for (uint i = 0; i < m; i++) {
            const uint key = cd[i];
            if (((key >> shift) & 255u) == digit) cd[w++] = key;
        }
        m = w;
    }
    tau[b] = as_float(prefix);
}

/* cnt[b*C + c] = #{j in chunk : |g_j| >= tau[b] and g_j != 0} (= the l_1 norm of
 * sign(g * 1_S), the reference's divisor). */
__kernel void atk_l1_count(__global const float *g, __global const float *tau,
                           __global uint *cnt, const int B, const int d, const int C) {
    int b, j0, j1;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float th = tau[b];
    uint n = 0;
    for (int j = j0; j < j1; j++) {
        const float v = g[off + j];
        n += (fabs(v) >= th && v != 0.0f) ? 1u : 0u;
    }
    cnt[i] = n;
}

/* delta = x_adv + (eta[b] * sign(g) * 1_S) / (n_S + 1e-10) - x, n_S from the C partial counts. */
__kernel void atk_l1_grad_step(__global const float *x, __global const float *x_adv,
                               __global const float *g, __global const float *eta,
                               __global const float *tau, __global const uint *cnt,
                               __global float *delta, const int B, const int d, const int C) {
    int b, j0, j1;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1)) return;
    uint n = 0;
    for (int c = 0; c < C; c++) n += cnt[b * C + c];
    const size_t off = (size_t)b * d;
    const float s = eta[b], th = tau[b], den = (float)n + 1e-10f;
    for (int j = j0; j < j1; j++) {
        const float v = g[off + j];
        const float sg = fabs(v) >= th ? sign(v) : 0.0f;
        delta[off + j] = (x_adv[off + j] + (s * sg) / den) - x[off + j];
    }
}

/* ---- exact projection onto {||delta||_1 <= eps} ∩ {0 <= x + delta <= 1} (spec 2.4) ---------
 *
 * Per coordinate: a = |y| (magnitude), v = max(0, -min(1 - x - y, x + y)) (box violation, clamped
 * to <= a). The projection shrinks each magnitude by r = min(max(lambda, v), a), keeping signs:
 * delta* = y - sign(y) * r. lambda = 0 (plain box clipping) when sum v + eps - sum a >= 0,
 * otherwise the root of F(lambda) = sum_j min(max(lambda, v_j), a_j) = sum a - eps, a
 * nondecreasing piecewise linear function with breakpoints {v_j} ∪ {a_j}.
 *
 * Equivalently, G(lambda) = sum_j (a_j - r_j(lambda)) = eps, G nonincreasing from
 * G(0) = sum (a - v) (the l_1 norm after box clipping) to 0. The positive breakpoints are packed
 * as 32-bit keys (float bits << 1 | type, type 0 for v, 1 for a: non-negative float bits are
 * monotone, and equal values order v before a), sorted by an LSD radix sort (4 passes of 8 bits,
 * a pass skipped when every key has the same digit) and walked from the top (see below). Zero
 * breakpoints are not stored. Each sample's keys use keys[b*2d .. b*2d + 2d) and the same range
 * of keys2. Unlike the reference, which solves F = sum a - eps in float32 and so loses about
 * ulp(sum a) to cancellation, the walk accumulates G from 0 up to eps: lambda is accurate to a
 * few ulps of the breakpoints, and the condition for plain box clipping is D = sum (a - v) <= eps
 * (the reference's sum v + eps - sum a >= 0). */

static void atk_box_mag(const float xj, const float y, float *v, float *a) {
    const float u = fmin(0.0f, fmin((1.0f - xj) - y, xj + y));
    *a = fabs(y);
    *v = fmin(-u, *a);
}

/* mode 0: out = delta*  (out may be delta: in place);
 * mode 1: out = clip_[0,1]((x + delta) + (delta* - delta))  (the l_1 step's new iterate) */
__kernel void atk_l1_project(__global const float *x, __global const float *delta,
                             const float eps, __global uint *keys, __global uint *keys2,
                             __global float *out, const int mode, const int B, const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    __global const float *xs = x + off;
    __global const float *ys = delta + off;
    __global uint *src = keys + 2 * off;
    __global uint *dst = keys2 + 2 * off;

    /* breakpoints, and D = sum (a - v) = ||box-clipped y||_1 (compensated) */
    float D = 0.0f, cd = 0.0f;
    uint n = 0;
    for (int j = 0; j < d; j++) {
        float v, a;
        atk_box_mag(xs[j], ys[j], &v, &a);
        const float t = (a - v) - cd, s = D + t;
        cd = (s - D) - t;
        D = s;
        if (v > 0.0f) src[n++] = as_uint(v) << 1;
        if (a > 0.0f) src[n++] = (as_uint(a) << 1) | 1u;
    }
    float lambda = 0.0f;
    if (D > eps && n > 0) {
        src = atk_radix_sort(src, dst, n);
        /* Walk down from the largest breakpoint, where G(lambda) = ||y - sign(y) r(lambda)||_1
         * = sum_j (a_j - min(max(lambda, v_j), a_j)) is 0, accumulating G (compensated) until it
         * reaches eps: G grows from 0 and never has to cancel against sum a. `cnt` is the number
         * of coordinates with v_j < lambda < a_j on the segment below `prev` (-dG/dlambda):
         * passing an a-breakpoint adds one, passing a v-breakpoint removes one (at equal values
         * the a comes first going down, so cnt stays >= 0). Below the smallest key the remaining
         * cnt = #{j : v_j = 0 < a_j} carries the segment down to lambda = 0. */
        float G = 0.0f, cg = 0.0f, prev = as_float(src[n - 1] >> 1);
        int cnt = 0, found = 0;
        for (int i = (int)n; i >= 0 && !found; i--) {
            const uint k = i > 0 ? src[i - 1] : 0u; /* i == 0: the segment down to 0 */
            const float bp = as_float(k >> 1);
            if (cnt > 0) {
                const float t = (prev - bp) * (float)cnt - cg, Gn = G + t;
                if (Gn >= eps) { /* the root lies in [bp, prev] */
                    lambda = clamp(prev - ((eps - G) + cg) / (float)cnt, bp, prev);
                    found = 1;
                }
                cg = (Gn - G) - t;
                G = Gn;
            }
            prev = bp;
            if (i > 0) cnt += (k & 1u) ? 1 : -1;
        }
        /* not found (float rounding at G(0) = D ~ eps): lambda = 0, plain box clipping */
        if (found) {
            /* lambda is a float: with cnt coordinates shrinking together, rounding it can leave
             * the result up to cnt * ulp(lambda) / 2 above eps. Check the l_1 norm of the
             * result as it will be written and raise lambda until it fits (almost always no
             * raise, or one). */
            for (int it = 0; it < 8; it++) {
                float S = 0.0f, cs = 0.0f;
                int m = 0;
                for (int j = 0; j < d; j++) {
                    float v, a;
                    const float y = ys[j];
                    atk_box_mag(xs[j], y, &v, &a);
                    const float r = fmin(fmax(v, lambda), a);
                    const float t = fabs(y + sign(y) * -r) - cs, q = S + t;
                    cs = (q - S) - t;
                    S = q;
                    m += (v < lambda && lambda < a) ? 1 : 0;
                }
                if (S <= eps) break;
                lambda = fmax(nextafter(lambda, INFINITY), lambda + (S - eps) / (float)max(m, 1));
            }
        }
    }

    __global float *o = out + off;
    for (int j = 0; j < d; j++) {
        const float xj = xs[j], y = ys[j];
        float v, a;
        atk_box_mag(xj, y, &v, &a);
        const float r = fmin(fmax(v, lambda), a);
        const float corr = sign(y) * -r;
        if (mode == 0) o[j] = y + corr;
        else o[j] = clamp((xj + y) + corr, 0.0f, 1.0f);
    }
}

/* ---- multi steepest descent ------------------------------------------------------------------ */
/* MSD (Maini et al. 2020, robust_union's msd_v0; spec section 6): the parts of its l_1 candidate
 * that the APGD primitives above do not cover, and the per-sample choice between the three
 * candidates (the l_inf and l_2 candidates and the l_1 top-k threshold are the kernels above).
 * Iterates are points x_adv = x + delta in [0,1]. */

/* l1_dir_topk's mask: gm = g, with 0 where a step along sign(g) would push a pixel that is within
 * `gap` of the boundary further out, or where the pixel is already at 0 or 1. */
__kernel void msd_l1_mask(__global const float *x_adv, __global const float *g, const float gap,
                          __global float *gm, const int B, const int d, const int C) {
    int b, j0, j1;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    for (int j = j0; j < j1; j++) {
        const float v = g[off + j], xc = x_adv[off + j];
        const int out = (v < 0.0f && xc <= gap) || (v > 0.0f && xc >= 1.0f - gap) ||
                        xc <= 0.0f || xc >= 1.0f;
        gm[off + j] = out ? 0.0f : v;
    }
}

/* delta = (x_adv - x) + alpha * sign(gm) * [|gm| >= tau[b]] (tau: the k-th largest |gm|), and
 * part[b*C + c] = the chunk's sum of |delta|. */
__kernel void msd_l1_step(__global const float *x, __global const float *x_adv,
                          __global const float *gm, __global const float *tau, const float alpha,
                          __global float *delta, __global float *part, const int B, const int d,
                          const int C) {
    int b, j0, j1;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1)) return;
    const size_t off = (size_t)b * d;
    const float th = tau[b];
    float s = 0.0f;
    for (int j = j0; j < j1; j++) {
        const float v = gm[off + j];
        const float dir = fabs(v) >= th ? sign(v) : 0.0f;
        const float t = (x_adv[off + j] - x[off + j]) + alpha * dir;
        delta[off + j] = t;
        s += fabs(t);
    }
    part[i] = s;
}

static float msd_l1_norm(__global const float *part, const int b, const int C) {
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += part[b * C + c];
    return s;
}

/* proj_l1ball then the box: z = clip_[0,1](x + sign(delta) * max(|delta| - theta, 0)).
 *   - If no sample of the batch has ||delta||_1 > eps, theta = 0 (the reference returns the
 *     batch unchanged).
 *   - Otherwise every sample goes through the sort-based simplex projection (Duchi et al. 2008):
 *     with u the magnitudes sorted descending and S_j their prefix sums, rho = the last j with
 *     u_j * j > S_j - eps, theta = (S_rho - eps) / rho. For a sample inside the ball that rule
 *     takes every coordinate, zeros included (rho = d), so theta = (||delta||_1 - eps) / d < 0:
 *     its nonzero coordinates grow by (eps - ||delta||_1) / d, the reference's quirk (zeros stay
 *     zero through sign(delta)).
 * The magnitudes of a sample outside the ball are sorted by an LSD radix sort on their float
 * bits (positive floats order as their bits) in keys[b*2d ...] / keys2. One work-item per sample;
 * part holds the per-chunk sums of |delta| from msd_l1_step. */
__kernel void msd_l1_project(__global const float *x, __global const float *delta,
                             __global const float *part, const float eps, __global uint *keys,
                             __global uint *keys2, __global float *z, const int B, const int d,
                             const int C) {
    const int b = get_global_id(0);
    if (b >= B) return;
    int any = 0;
    for (int i = 0; i < B && !any; i++) any = msd_l1_norm(part, i, C) > eps;
    const size_t off = (size_t)b * d;
    __global const float *ys = delta + off;
    float theta = 0.0f;
    if (any) {
        const float norm = msd_l1_norm(part, b, C);
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
    for (int j = 0; j < d; j++) {
        const float y = ys[j];
        const float w = fmax(fabs(y) - theta, 0.0f) * sign(y);
        z[off + j] = clamp(x[off + j] + w, 0.0f, 1.0f);
    }
}

/* Candidate c (0 = l_1, 1 = l_2, 2 = l_inf: the reference's evaluation order) with per-sample
 * loss `loss`: replaces the iterate where loss >= the best loss of this iteration so far (ties go
 * to the later candidate; the running maximum starts at 0 with the first). After the last
 * candidate the iterate becomes the best over iterations where its loss is strictly above the
 * best so far (which starts at 0). One work-item per sample. */
__kernel void msd_select(__global const float *cand, __global const float *loss,
                         __global float *max_loss, __global float *x_adv, __global float *x_best,
                         __global float *best_loss, const int c, const int B, const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const float l = loss[b];
    float m = c == 0 ? 0.0f : max_loss[b];
    if (l >= m) {
        for (int j = 0; j < d; j++) x_adv[off + j] = cand[off + j];
        m = l;
    }
    max_loss[b] = m;
    if (c == 2 && m > best_loss[b]) {
        best_loss[b] = m;
        for (int j = 0; j < d; j++) x_best[off + j] = x_adv[off + j];
    }
}
