/* The l_1 attack of the reference's APGD (auto-attack, autopgd_base.py): the top-k threshold of
 * |g|, the sparse step, and the exact projection onto the l_1 ball intersected with the [0,1]
 * box. Samples are rows of d contiguous floats; the step runs one work-item per chunk of a row
 * (atk_chunk in cl/common.cl), selection and the projection one work-item per sample, looping
 * over its row with scratch in global memory (CPU class), or one work-group per sample with
 * small arrays in local memory (GPU class). Contraction of a*b+c into fma is switched off so
 * every device rounds like the reference (PyTorch float32 operations). */
#pragma OPENCL FP_CONTRACT OFF

/* ---- l_1 sparse step --------------------------------------------------------------------- */

/* tau[b] = the (idx+1)-th smallest |g| of row b, idx = (long)clamp((1 - topk[b]) * d, 0, d-1)
 * in float32. Radix select, 8 bits at a time from the top, on the bits of |g| (monotone for
 * non-negative floats; NaN sorts last, as in torch.sort). */
#if RC_GPU
/* GPU class: one work-group per sample. Each of the four digits is counted into a histogram in
 * local memory over the keys that match the digits chosen so far (integer atomics: exact, so the
 * counts do not depend on the order; a work-item adds runs of equal digits at once, which keeps
 * the many keys of one digit from queueing on one counter). Rescanning the row (coalesced)
 * replaces the candidate list of the CPU class: nothing is compacted. */
__kernel void atk_topk_threshold(__global const float *g, __global const float *topk,
                                 __global float *tau, const int B, const int d) {
    __local uint hist[256];
    const int b = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (b >= B) return;
    __global const uint *row = (__global const uint *)g + (size_t)b * d;
    const float t = fmin(fmax((1.0f - topk[b]) * (float)d, 0.0f), (float)(d - 1));
    uint k = (uint)t; /* truncation toward zero, t >= 0 */
    uint prefix = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        const uint high = shift == 24 ? 0u : ~0u << (shift + 8); /* the digits chosen */
        for (int i = lid; i < 256; i += L) hist[i] = 0;
        barrier(CLK_LOCAL_MEM_FENCE);
        uint run_digit = 0, run = 0;
        for (int j = lid; j < d; j += L) {
            const uint key = row[j] & 0x7fffffffu;
            if ((key & high) != prefix) continue;
            const uint dg = (key >> shift) & 255u;
            if (dg != run_digit && run) {
                atomic_add(&hist[run_digit], run);
                run = 0;
            }
            run_digit = dg;
            run++;
        }
        if (run) atomic_add(&hist[run_digit], run);
        barrier(CLK_LOCAL_MEM_FENCE);
        /* the digit whose keys hold the k-th: a scan of fixed length (Mesa's llvmpipe ended the
         * outer loop early after a `while` here, at work-group size 1) */
        uint digit = 0, below = 0;
        for (uint q = 0; q < 255; q++) {
            const uint h = hist[q];
            if (digit == q && below + h <= k) {
                below += h;
                digit = q + 1;
            }
        }
        k -= below;
        prefix |= digit << shift;
        barrier(CLK_LOCAL_MEM_FENCE); /* every work-item has read hist */
    }
    if (lid == 0) tau[b] = as_float(prefix);
}
#else
/* CPU class: one work-item per sample. After the first digit the candidates (keys with that top
 * digit) are copied to cand[b*2d ...] and filtered in place by the later digits, so only the
 * first two scans read the whole row. */
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
#endif

/* The l_1 norm of sign(g * 1_S), the reference's divisor: #{j : |g_j| >= tau[b] and g_j != 0}.
 * GPU class: cnt[b] = the count, by the sample's work-group (exact: 0/1 terms in the lanes of
 * wg_tree_sum). CPU class: cnt[b*C + c] = the count over chunk c. */
#if RC_GPU
__kernel void atk_l1_count(__global const float *g, __global const float *tau, __global uint *cnt,
                           const int B, const int d) {
    __local float lanes[RC_LANES];
    const int b = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    if (b >= B) return;
    __global const float *row = g + (size_t)b * d;
    const float th = tau[b];
    for (int v = lid; v < RC_LANES; v += L) {
        float n = 0.0f;
        for (int j = v; j < d; j += RC_LANES)
            n += (fabs(row[j]) >= th && row[j] != 0.0f) ? 1.0f : 0.0f;
        lanes[v] = n;
    }
    const float n = wg_tree_sum(lanes);
    if (lid == 0) cnt[b] = (uint)n;
}
#else
__kernel void atk_l1_count(__global const float *g, __global const float *tau,
                           __global uint *cnt, const int B, const int d, const int C) {
    int b, j0, j1, step;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float th = tau[b];
    uint n = 0;
    for (int j = j0; j < j1; j += step) {
        const float v = g[off + j];
        n += (fabs(v) >= th && v != 0.0f) ? 1u : 0u;
    }
    cnt[i] = n;
}
#endif

/* delta = x_adv + (eta[b] * sign(g) * 1_S) / (n_S + 1e-10) - x, n_S from atk_l1_count (the C
 * partial counts on the CPU class). */
__kernel void atk_l1_grad_step(__global const float *x, __global const float *x_adv,
                               __global const float *g, __global const float *eta,
                               __global const float *tau, __global const uint *cnt,
                               __global float *delta, const int B, const int d, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
#if RC_GPU
    const uint n = cnt[b];
#else
    uint n = 0;
    for (int c = 0; c < C; c++) n += cnt[b * C + c];
#endif
    const size_t off = (size_t)b * d;
    const float s = eta[b], th = tau[b], den = (float)n + 1e-10f;
    for (int j = j0; j < j1; j += step) {
        const float v = g[off + j];
        const float sg = fabs(v) >= th ? sign(v) : 0.0f;
        delta[off + j] = (x_adv[off + j] + (s * sg) / den) - x[off + j];
    }
}

/* ---- exact projection onto {||delta||_1 <= eps} ∩ {0 <= x + delta <= 1} --------------------
 * (the reference's L1_projection, auto-attack other_utils.py, solved more accurately)
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
 * (the reference's sum v + eps - sum a >= 0). That is the CPU class (one work-item per sample).
 *
 * The GPU class (one work-group per sample) sorts nothing: lambda is the smallest float with
 * G(lambda) <= eps, found bit by bit from the top (G is nonincreasing), each G a compensated
 * work-group sum over the row. The l_1 norm of delta* as written is that same sum at lambda, so
 * it is <= eps without a correction step, and lambda is within an ulp of the root. */

static void atk_box_mag(const float xj, const float y, float *v, float *a) {
    const float u = fmin(0.0f, fmin((1.0f - xj) - y, xj + y));
    *a = fabs(y);
    *v = fmin(-u, *a);
}

/* The output coordinate for lambda: delta* = y - sign(y) r (mode 0) or
 * clip_[0,1]((x + y) + (delta* - y)) (mode 1). |delta*| rounds exactly as a - r. */
static float atk_l1_out(const float xj, const float y, const float lambda, const int mode) {
    float v, a;
    atk_box_mag(xj, y, &v, &a);
    const float corr = sign(y) * -fmin(fmax(v, lambda), a);
    return mode == 0 ? y + corr : clamp((xj + y) + corr, 0.0f, 1.0f);
}

/* mode 0: out = delta*  (out may be delta: in place);
 * mode 1: out = clip_[0,1]((x + delta) + (delta* - delta))  (the l_1 step's new iterate).
 * GPU class: atk_l1_lambda then atk_l1_apply; CPU class: atk_l1_project. */
#if RC_GPU
/* s + *err == a + b exactly (Knuth's TwoSum; additions only, nothing to contract). */
static float two_sum(const float a, const float b, float *err) {
    const float s = a + b, bv = s - a;
    *err = (a - (s - bv)) + (b - bv);
    return s;
}

/* G(t) - eps for one sample, by its work-group. G = sum_j (a_j - min(max(t, v_j), a_j)) is
 * summed in the fixed lanes and tree of wg_tree_sum, carrying each lane's and each pair's
 * rounding error (TwoSum) beside the sum; the difference with eps is taken before that error is
 * added, so its sign is right unless G is within a tiny fraction of an ulp of eps. hi, lo:
 * RC_LANES floats of local memory each. */
static float atk_l1_excess(__global const float *xs, __global const float *ys, const int d,
                           const float t, const float eps, __local float *hi, __local float *lo) {
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int v = lid; v < RC_LANES; v += L) {
        float s = 0.0f, c = 0.0f;
        for (int j = v; j < d; j += RC_LANES) {
            float bv, a, e;
            atk_box_mag(xs[j], ys[j], &bv, &a);
            s = two_sum(s, a - fmin(fmax(t, bv), a), &e);
            c += e;
        }
        hi[v] = s;
        lo[v] = c;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = RC_LANES / 2; w > 0; w >>= 1) {
        for (int v = lid; v < w; v += L) {
            float e;
            hi[v] = two_sum(hi[v], hi[v + w], &e);
            lo[v] += lo[v + w] + e;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = (hi[0] - eps) + lo[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* lam[b] = lambda of sample b, by its work-group. Step 31 tests D = G(0) > eps (else lambda = 0:
 * plain box clipping); steps 30..0 build t, the largest float (bits) with G(t) > eps, and
 * lambda = the next float. Every step runs, needed or not, and the row is written by another
 * kernel (atk_l1_apply): on PoCL 3.1, which runs the GPU class in the tests, this loop gave
 * wrong, varying sums after another reduction or under a condition, and corrupted memory when
 * the kernel went on to write the row. */
__kernel void atk_l1_lambda(__global const float *x, __global const float *delta, const float eps,
                            __global float *lam, const int B, const int d) {
    __local float hi[RC_LANES], lo[RC_LANES];
    const int b = get_group_id(0);
    if (b >= B) return;
    __global const float *xs = x + (size_t)b * d;
    __global const float *ys = delta + (size_t)b * d;
    uint t = 0;
    int clip = 0;
    for (int i = 31; i >= 0; i--) {
        const uint c = i == 31 ? 0u : t | (1u << i);
        const float ex = atk_l1_excess(xs, ys, d, as_float(min(c, 0x7f800000u)), eps, hi, lo);
        if (i == 31)
            clip = ex <= 0.0f;
        else if (c < 0x7f800000u && ex > 0.0f)
            t = c;
    }
    if (get_local_id(0) == 0) lam[b] = clip ? 0.0f : as_float(t + 1);
}

/* The output from lam (atk_l1_lambda), element-wise in chunks (atk_chunk); out may be delta. */
__kernel void atk_l1_apply(__global const float *x, __global const float *delta,
                           __global const float *lam, __global float *out, const int mode,
                           const int B, const int d, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float lambda = lam[b];
    for (int j = j0; j < j1; j += step)
        out[off + j] = atk_l1_out(x[off + j], delta[off + j], lambda, mode);
}
#else
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
    for (int j = 0; j < d; j++) o[j] = atk_l1_out(xs[j], ys[j], lambda, mode);
}
#endif
