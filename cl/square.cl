/* Square Attack (Andriushchenko et al. 2020) as AutoAttack runs it (fra31/auto-attack,
 * autoattack/square.py, SquareAttack with the margin loss, the version with the l_1 variant):
 * random square windows of a shrinking size around the best point so far, accepted when the
 * margin z_y - max_{j != y} z_j falls. Samples are rows of d = c*h*w floats (NCHW); each slot b
 * carries the point's id (ids[b]), which, with the run's key and the iteration, seeds its draws:
 * the windows, orientations and signs of a point do not depend on which other points share the
 * batch. Element-wise kernels run in row chunks (atk_chunk); per-sample ones one work-item per
 * sample (CPU class) or one work-group per sample (GPU class, SAMPLE_ID). */
#pragma OPENCL FP_CONTRACT OFF

/* ---- counter-based draws -------------------------------------------------------------------- */

/* Iteration number of the initial point's draws (the loop's are 0 .. n_queries-1). */
#define SQ_INIT_ITER 0xffffffffu
/* Draw k of an iteration: the window corners, the orientation of the window pattern, then one
 * sign per channel; the initial point's draws are numbered per grid cell instead (sq_cell_k). */
#define SQ_K_VH 0u
#define SQ_K_VW 1u
#define SQ_K_VH2 2u
#define SQ_K_VW2 3u
#define SQ_K_ORIENT 4u
#define SQ_K_SIGN 8u

static inline ulong sq_mix(ulong z) { /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}

/* 32 random bits: draw k of point `id` at iteration `it` of the run keyed `key`. */
static inline uint sq_bits(const ulong key, const int id, const uint it, const uint k) {
    const ulong z = sq_mix(key + 0x9e3779b97f4a7c15UL * ((ulong)(uint)id + 1UL));
    return (uint)(sq_mix(z ^ (((ulong)it << 32) | (ulong)k)) >> 32);
}

/* Uniform in [0, n) (n >= 1) from 32 random bits. */
static inline int sq_below(const uint bits, const int n) {
    return (int)(((ulong)bits * (ulong)n) >> 32);
}

static inline float sq_sign(const uint bits) { return (bits & 1u) ? 1.0f : -1.0f; }

/* The iteration's windows and pattern orientation for one point. Deviations from square.py:
 * each point draws its own (the reference draws one window position and one orientation per
 * iteration for the whole batch; per point each is uniform either way), and the corners are
 * uniform over all of [0, h - s] x [0, w - s] (the reference's random_int(0, h - s) gives
 * 0 .. h - s - 1, so its windows never cover the last row and column unless s = h). */
typedef struct sq_draw {
    int vh, vw, vh2, vw2, orient;
} sq_draw;

static inline sq_draw sq_draws(const ulong key, const int id, const uint it, const int s,
                               const int h, const int w) {
    sq_draw r;
    r.vh = sq_below(sq_bits(key, id, it, SQ_K_VH), h - s + 1);
    r.vw = sq_below(sq_bits(key, id, it, SQ_K_VW), w - s + 1);
    r.vh2 = sq_below(sq_bits(key, id, it, SQ_K_VH2), h - s + 1);
    r.vw2 = sq_below(sq_bits(key, id, it, SQ_K_VW2), w - s + 1);
    r.orient = (int)(sq_bits(key, id, it, SQ_K_ORIENT) & 1u);
    return r;
}

static inline int sq_in(const int r, const int col, const int vh, const int vw, const int s) {
    return r >= vh && r < vh + s && col >= vw && col < vw + s;
}

/* |v|^p term of an l_p norm (l_1 or l_2) and the norm from the sum of the terms. */
static inline float sq_term(const float v, const int l1) { return l1 ? fabs(v) : v * v; }
static inline float sq_norm(const float sum, const int l1) { return l1 ? sum : sqrt(sum); }

/* ---- initial points ------------------------------------------------------------------------- */

/* l_inf: x_best = clip_[0,1](x + eps * sign), one sign per (sample, channel, column): vertical
 * stripes, as the reference's random_choice([n, c, 1, w]). */
__kernel void square_init_linf(__global const float *x, __global const int *ids, const ulong key,
                               const float eps, __global float *x_best, const int B, const int d,
                               const int h, const int w, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const int id = ids[b], hw = h * w;
    for (int j = j0; j < j1; j += step) {
        const int ch = j / hw, col = j % w;
        const float sg = sq_sign(sq_bits(key, id, SQ_INIT_ITER, (uint)(ch * w + col)));
        x_best[off + j] = clamp(x[off + j] + eps * sg, 0.0f, 1.0f);
    }
}

/* l_2 and l_1: the initial perturbation, a grid of (h / s0) x (w / s0) cells of s0 = h / 5
 * pixels from row and column sp = (h - 5 s0) / 2, each holding the window pattern (eta, both
 * orientations, [2][s0][s0]) in a random orientation times a random sign per channel (the
 * reference draws a cell's orientation once for the batch, here each point draws its own). */
__kernel void square_init_lp(__global const int *ids, const ulong key, __global const float *eta,
                             const int s0, __global float *delta, const int B, const int d,
                             const int h, const int w, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const int id = ids[b], hw = h * w, sp = (h - 5 * s0) / 2, gh = h / s0, gw = w / s0;
    for (int j = j0; j < j1; j += step) {
        const int ch = j / hw, r = (j % hw) / w, col = j % w;
        const int ri = r - sp, ci = col - sp;
        float v = 0.0f;
        if (ri >= 0 && ci >= 0 && ri / s0 < gh && ci / s0 < gw) {
            const uint cell = (uint)((ri / s0) * gw + ci / s0);
            const int o = (int)(sq_bits(key, id, SQ_INIT_ITER, cell << 8) & 1u);
            const float sg = sq_sign(sq_bits(key, id, SQ_INIT_ITER, (cell << 8) | (uint)(ch + 1)));
            v = eta[(o * s0 + ri % s0) * s0 + ci % s0] * sg;
        }
        delta[off + j] = v;
    }
}

/* ---- one query ------------------------------------------------------------------------------ */

/* l_inf: x_new = the best point with one s x s window set to x_best + 2 eps * sign (a sign per
 * channel), clipped to the eps box around x and to [0,1]. */
__kernel void square_linf_step(__global const float *x, __global const float *x_best,
                               __global const int *ids, const ulong key, const uint it,
                               const int s, const float eps, __global float *x_new, const int B,
                               const int d, const int h, const int w, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const int id = ids[b], hw = h * w;
    const sq_draw q = sq_draws(key, id, it, s, h, w);
    for (int j = j0; j < j1; j += step) {
        const int ch = j / hw, r = (j % hw) / w, col = j % w;
        float v = x_best[off + j];
        if (sq_in(r, col, q.vh, q.vw, s)) {
            const float xj = x[off + j];
            v += 2.0f * eps * sq_sign(sq_bits(key, id, it, SQ_K_SIGN + (uint)ch));
            v = clamp(fmin(fmax(v, xj - eps), xj + eps), 0.0f, 1.0f);
        }
        x_new[off + j] = v;
    }
}

/* Sums of terms over a sample's coordinates, taken by lanes: a lane sums the items k0, k0 +
 * stride, ... (CPU class: one lane, stride 1; GPU class: RC_LANES lanes combined in
 * wg_tree_sum's fixed tree, so nothing depends on the work-group size). */

/* the whole row of delta = xb - x */
static inline float sq_row_part(__global const float *x, __global const float *xb, const int d,
                                const int l1, const int k0, const int stride) {
    float t = 0.0f;
    for (int j = k0; j < d; j += stride) t += sq_term(xb[j] - x[j], l1);
    return t;
}

/* sum of squares of a row */
static inline float sq_sumsq_part(__global const float *t, const int d, const int k0,
                                  const int stride) {
    float q = 0.0f;
    for (int j = k0; j < d; j += stride) q += t[j] * t[j];
    return q;
}

/* channel ch of delta over window 1 (items k < s*s), or over the union of windows 1 and 2
 * (items k < 2 s*s: window 2's coordinates inside window 1 are skipped) */
static inline float sq_window_part(__global const float *x, __global const float *xb,
                                   const int ch, const sq_draw q, const int s, const int h,
                                   const int w, const int l1, const int both, const int k0,
                                   const int stride) {
    float t = 0.0f;
    const int ss = s * s;
    for (int k = k0; k < (both ? 2 * ss : ss); k += stride) {
        const int second = k >= ss, kk = second ? k - ss : k;
        const int r = (second ? q.vh2 : q.vh) + kk / s, col = (second ? q.vw2 : q.vw) + kk % s;
        if (second && sq_in(r, col, q.vh, q.vw, s)) continue;
        const int j = (ch * h + r) * w + col;
        t += sq_term(xb[j] - x[j], l1);
    }
    return t;
}

/* channel ch of the new window values eta * sign + delta * inv over window 1 */
static inline float sq_new_part(__global const float *x, __global const float *xb,
                                __global const float *eta, const int ch, const sq_draw q,
                                const float sg, const float inv, const int s, const int h,
                                const int w, const int l1, const int k0, const int stride) {
    float t = 0.0f;
    for (int k = k0; k < s * s; k += stride) {
        const int r = q.vh + k / s, col = q.vw + k % s, j = (ch * h + r) * w + col;
        t += sq_term(eta[q.orient * s * s + k] * sg + (xb[j] - x[j]) * inv, l1);
    }
    return t;
}

#if RC_GPU
#define SQ_SUM(out, part)                                                                         \
    do {                                                                                          \
        for (int lane = get_local_id(0); lane < RC_LANES; lane += get_local_size(0)) {            \
            const int k0 = lane, stride = RC_LANES;                                               \
            lanes[lane] = (part);                                                                 \
        }                                                                                         \
        (out) = wg_tree_sum(lanes);                                                               \
    } while (0)
#else
#define SQ_SUM(out, part)                                                                         \
    do {                                                                                          \
        const int k0 = 0, stride = 1;                                                             \
        (out) = (part);                                                                           \
    } while (0)
#endif

/* l_2 / l_1, per sample and channel: with delta = x_best - x, n1 = ||delta over window 1||,
 * nw = ||delta over windows 1 and 2||, nimg = ||delta||, the window's new values are
 * (eta * sign + delta * inv) * scale with inv = 1 / (1e-12 + n1) and
 *   l_2: scale = sqrt(max(eps^2 - nimg^2, 0) / c + nw^2) / (1e-12 + ||eta * sign + delta inv||),
 *   l_1: scale = (max(eps - nimg, 0) / c + nw) * c / (1e-12 + ||eta * sign + delta inv||_1)
 * (the reference's factor c in l_1; the projection after the step brings the point back into
 * the ball). coef[b][2 ch] = inv, coef[b][2 ch + 1] = scale. */
__kernel void square_lp_coef(__global const float *x, __global const float *x_best,
                             __global const int *ids, const ulong key, const uint it,
                             __global const float *eta, const int s, const float eps,
                             const int l1, __global float *coef, const int B, const int c,
                             const int h, const int w) {
#if RC_GPU
    __local float lanes[RC_LANES];
#endif
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const int d = c * h * w;
    const size_t off = (size_t)b * d;
    __global const float *xs = x + off, *xb = x_best + off;
    const int id = ids[b];
    const sq_draw q = sq_draws(key, id, it, s, h, w);
    float nimg;
    SQ_SUM(nimg, sq_row_part(xs, xb, d, l1, k0, stride));
    nimg = sq_norm(nimg, l1);
    const float room = l1 ? fmax(eps - nimg, 0.0f) / (float)c
                          : fmax(eps * eps - nimg * nimg, 0.0f) / (float)c;
    for (int ch = 0; ch < c; ch++) {
        float n1, nw, nn;
        SQ_SUM(n1, sq_window_part(xs, xb, ch, q, s, h, w, l1, 0, k0, stride));
        SQ_SUM(nw, sq_window_part(xs, xb, ch, q, s, h, w, l1, 1, k0, stride));
        const float inv = 1.0f / (1e-12f + sq_norm(n1, l1));
        const float sg = sq_sign(sq_bits(key, id, it, SQ_K_SIGN + (uint)ch));
        SQ_SUM(nn, sq_new_part(xs, xb, eta, ch, q, sg, inv, s, h, w, l1, k0, stride));
        const float target = l1 ? (room + nw) * (float)c : sqrt(room + nw);
        const float scale = target / (1e-12f + sq_norm(nn, l1));
        if (sample_writer()) {
            coef[(size_t)b * 2 * c + 2 * ch] = inv;
            coef[(size_t)b * 2 * c + 2 * ch + 1] = scale;
        }
    }
}

/* l_2 / l_1: the new perturbation: window 2 zeroed, then window 1 set to its new values. */
__kernel void square_lp_step(__global const float *x, __global const float *x_best,
                             __global const int *ids, const ulong key, const uint it,
                             __global const float *eta, const int s,
                             __global const float *coef, __global float *delta, const int B,
                             const int c, const int h, const int w, const int C) {
    int b, j0, j1, step;
    const int d = c * h * w;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const int id = ids[b], hw = h * w;
    const sq_draw q = sq_draws(key, id, it, s, h, w);
    for (int j = j0; j < j1; j += step) {
        const int ch = j / hw, r = (j % hw) / w, col = j % w;
        const float dj = x_best[off + j] - x[off + j];
        float v = sq_in(r, col, q.vh2, q.vw2, s) ? 0.0f : dj;
        if (sq_in(r, col, q.vh, q.vw, s)) {
            const float sg = sq_sign(sq_bits(key, id, it, SQ_K_SIGN + (uint)ch));
            const float e = eta[(q.orient * s + r - q.vh) * s + col - q.vw];
            const size_t cb = (size_t)b * 2 * c + 2 * ch;
            v = (e * sg + dj * coef[cb]) * coef[cb + 1];
        }
        delta[off + j] = v;
    }
}

/* l_2: out = clip_[0,1](x + delta / (||delta||_2 + 1e-12) * eps), the reference's
 * clamp(x + normalize(delta) * eps) (the new point lies on the sphere before clipping). */
__kernel void square_l2_finish(__global const float *x, __global const float *delta,
                               const float eps, __global float *out, const int B, const int d) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const int j0 = get_local_id(0), jstep = get_local_size(0);
#else
    const int j0 = 0, jstep = 1;
#endif
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    __global const float *t = delta + off;
    float n;
    SQ_SUM(n, sq_sumsq_part(t, d, k0, stride));
    n = sqrt(n);
    for (int j = j0; j < d; j += jstep)
        out[off + j] = clamp(x[off + j] + t[j] / (n + 1e-12f) * eps, 0.0f, 1.0f);
}

/* ---- acceptance ----------------------------------------------------------------------------- */

/* After the forward at x_new: a sample still to fool (margin > 0) whose margin fell takes
 * x_new as its best point (the reference's loss 'margin': its loss and margin are the same
 * number, so one value is kept); correct[b] = (argmax == label) there, first maximum wins. */
__kernel void square_accept(__global const float *logits, __global const int *labels,
                            __global const float *x_new, __global float *x_best,
                            __global float *margin, __global float *correct, const int B,
                            const int d, const int K) {
    const int b = SAMPLE_ID;
    if (b >= B) return;
    __global const float *z = logits + (size_t)b * K;
    const int y = labels[b];
    float other = -INFINITY;
    for (int k = 0; k < K; k++)
        if (k != y) other = fmax(other, z[k]);
    const float m = z[y] - other, best = margin[b];
    const int take = best > 0.0f && m < best;
    const int arg = row_argmax(z, K);
    if (sample_writer() && take) {
        margin[b] = m;
        correct[b] = arg == y ? 1.0f : 0.0f;
    }
    if (take) sample_copy(x_best + (size_t)b * d, x_new + (size_t)b * d, d);
}

/* ---- compaction ----------------------------------------------------------------------------- */

/* dst row i = src row idx[i], rows of `row` 32-bit words (floats or ints alike). */
__kernel void square_gather(__global const uint *src, __global const int *idx,
                            __global uint *dst, const int n, const int row) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const size_t from = (size_t)idx[i] * row, to = (size_t)i * row;
    for (int j = 0; j < row; j++) dst[to + j] = src[from + j];
}
