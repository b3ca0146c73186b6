/* Prelude: device functions shared by the kernel files, prepended to every program's source (by
 * tools/embed-cl.sh, or by program.c under RAMP_CL_KERNEL_DIR), so it is part of every cache key.
 * Functions only, no kernels. No FP_CONTRACT pragma here: each file keeps its own contraction
 * setting, and the float helpers below contract exactly as the copies they replace did. */

/* ---- device classes ------------------------------------------------------------------------ */

/* RC_GPU is 1 in programs built for a GPU-class device and 0 for a CPU-class one (the host sets
 * it, src/runtime/program.c). The CPU class gives a work-item a whole plane or a chunk of a row;
 * the GPU class gives work-items neighbouring elements and reduces in work-groups. */
#ifndef RC_GPU
#define RC_GPU 0
#endif

/* GPU-class reductions sum RC_LANES "lanes" in a fixed binary tree: lane v first adds elements
 * v, v + RC_LANES, v + 2 RC_LANES, ... in order, then the lanes are paired (v, v + s) for s =
 * RC_LANES/2, ..., 1. A work-group of any size L runs the lanes v = lid, lid + L, ...: the result
 * depends on RC_LANES only, never on the work-group size. */
#define RC_LANES 256

/* Sum of lanes[0..RC_LANES) in the fixed tree. Every work-item of the group must call it (it has
 * barriers) after writing its lanes; all get the total, and lanes may be reused after it. */
static inline float wg_tree_sum(__local float *lanes) {
    const int lid = get_local_id(0), L = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RC_LANES / 2; s > 0; s >>= 1) {
        for (int v = lid; v < s; v += L) lanes[v] += lanes[v + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = lanes[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* Sum of the n floats p[0..n) by the work-group, in the fixed lane order. lanes: RC_LANES floats
 * of local memory. */
static inline float wg_sum(__global const float *p, const int n, __local float *lanes) {
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int v = lid; v < RC_LANES; v += L) {
        float s = 0.0f;
        for (int j = v; j < n; j += RC_LANES) s += p[j];
        lanes[v] = s;
    }
    return wg_tree_sum(lanes);
}

/* ---- planes of NCHW tensors ---------------------------------------------------------------- */

/* Element-wise kernels over `planes` planes of P floats each (an NCHW tensor's (image, channel)
 * planes, say): the CPU class gives a work-item a whole plane (global size planes), the GPU class
 * one element (global size planes * P, rc_plane_items in ramp/launch.h). Work-item i gets plane
 * *g and its elements *p0 to *p1 (exclusive); 0 when out of range. */
static inline int plane_elems(const int planes, const int P, int *g, int *p0, int *p1) {
    const int i = get_global_id(0);
#if RC_GPU
    if (i >= planes * P) return 0;
    *g = i / P;
    *p0 = i - *g * P;
    *p1 = *p0 + 1;
#else
    if (i >= planes) return 0;
    *g = i;
    *p0 = 0;
    *p1 = P;
#endif
    return 1;
}

/* ---- rows of logits ------------------------------------------------------------------------ */

/* The *_cols helpers take the columns k0, k0 + step, ... below K of a row: (0, 1) is the whole
 * row (the CPU class's work-item per row, through the *_row wrappers); (lane, RC_LANES) is one
 * lane of a work-group per row and (local id, local size) one work-item's share of an
 * element-wise update (the GPU class, the wg_row_* helpers below). */

/* Index of the largest logit among the columns; the first maximum wins. k0 < K. */
static inline int cols_argmax(__global const float *z, const int k0, const int step, const int K) {
    int arg = k0;
    for (int k = k0 + step; k < K; k += step)
        if (z[k] > z[arg]) arg = k;
    return arg;
}

/* Index of the largest of K logits; the first maximum wins. */
static inline int row_argmax(__global const float *z, const int K) {
    return cols_argmax(z, 0, 1, K);
}

/* Sum over the columns of exp(z[k] - mx). */
static inline float cols_exp_sum(__global const float *z, const int k0, const int step, const int K,
                                 const float mx) {
    float s = 0.0f;
    for (int k = k0; k < K; k += step) s += exp(z[k] - mx);
    return s;
}

/* log-sum-exp of K logits, shifted by mx (their maximum, however the caller found it). */
static inline float row_lse_at(__global const float *z, const int K, const float mx) {
    return mx + log(cols_exp_sum(z, 0, 1, K, mx));
}

/* log-sum-exp of K logits. */
static inline float row_lse(__global const float *z, const int K) {
    float mx = z[0];
    for (int k = 1; k < K; k++) mx = fmax(mx, z[k]);
    return row_lse_at(z, K, mx);
}

/* Gradient of the cross-entropy with label y over the columns: dz = (softmax(z) - onehot(y)) *
 * scale. */
static inline void ce_grad_cols(__global const float *z, const int y, const int k0, const int step,
                                const int K, const float lse, const float scale,
                                __global float *dz) {
    for (int k = k0; k < K; k += step) dz[k] = (exp(z[k] - lse) - (k == y ? 1.0f : 0.0f)) * scale;
}

static inline void ce_grad_row(__global const float *z, const int y, const int K, const float lse,
                               const float scale, __global float *dz) {
    ce_grad_cols(z, y, 0, 1, K, lse, scale, dz);
}

/* The columns' terms of KL(p || q) for p, q the softmaxes of logit rows zp, zq with log-sum-exps
 * lp, lq. */
static inline float kl_cols(__global const float *zp, const float lp, __global const float *zq,
                            const float lq, const int k0, const int step, const int K) {
    float kl = 0.0f;
    for (int k = k0; k < K; k += step) {
        const float lpp = zp[k] - lp, lpq = zq[k] - lq;
        kl += exp(lpp) * (lpp - lpq);
    }
    return kl;
}

static inline float kl_rows(__global const float *zp, const float lp, __global const float *zq,
                            const float lq, const int K) {
    return kl_cols(zp, lp, zq, lq, 0, 1, K);
}

/* Gradients of scale * KL(p || q) over the columns, kl = kl_rows(...):
 *   dzq = scale * (q - p),  dzp = scale * p * (log p - log q - kl),
 * dzp added to (accumulate) or stored. Each update stays one expression: that is what the
 * compiler may contract, as in the copies this replaces. */
static inline void kl_cols_grad(__global const float *zp, const float lp, __global const float *zq,
                                const float lq, const int k0, const int step, const int K,
                                const float kl, const float scale, __global float *dzp,
                                __global float *dzq, const int accumulate) {
    for (int k = k0; k < K; k += step) {
        const float lpp = zp[k] - lp, lpq = zq[k] - lq;
        const float pp = exp(lpp), pq = exp(lpq);
        dzq[k] = scale * (pq - pp);
        if (accumulate)
            dzp[k] += scale * pp * (lpp - lpq - kl);
        else
            dzp[k] = scale * pp * (lpp - lpq - kl);
    }
}

static inline void kl_rows_grad(__global const float *zp, const float lp, __global const float *zq,
                                const float lq, const int K, const float kl, const float scale,
                                __global float *dzp, __global float *dzq, const int accumulate) {
    kl_cols_grad(zp, lp, zq, lq, 0, 1, K, kl, scale, dzp, dzq, accumulate);
}

/* ---- rows of logits, one work-group per row (GPU class) ------------------------------------ */

/* Every work-item of the group calls these (they have barriers). Lane v takes the columns v,
 * v + RC_LANES, ...; the lanes are combined in wg_tree_sum's fixed tree, so the results do not
 * depend on the work-group size. lanes: RC_LANES floats, ilanes: RC_LANES ints of local memory;
 * both may be reused after a call. */

/* row_argmax by the work-group: the first maximum wins, as there. */
static inline int wg_row_argmax(__global const float *z, const int K, __local float *lanes,
                                __local int *ilanes) {
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int v = lid; v < RC_LANES; v += L) {
        const int a = v < K ? cols_argmax(z, v, RC_LANES, K) : -1;
        ilanes[v] = a;
        lanes[v] = a < 0 ? 0.0f : z[a];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RC_LANES / 2; s > 0; s >>= 1) {
        /* lanes are empty (-1) only from K on: when lane v + s is not, lane v is not */
        for (int v = lid; v < s; v += L) {
            const int b = ilanes[v + s];
            const float zb = lanes[v + s], za = lanes[v];
            if (b >= 0 && (zb > za || (zb == za && b < ilanes[v]))) ilanes[v] = b, lanes[v] = zb;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int arg = ilanes[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return arg;
}

/* row_lse_at by the work-group. */
static inline float wg_row_lse_at(__global const float *z, const int K, const float mx,
                                  __local float *lanes) {
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0))
        lanes[v] = cols_exp_sum(z, v, RC_LANES, K, mx);
    return mx + log(wg_tree_sum(lanes));
}

/* kl_rows by the work-group. */
static inline float wg_kl_rows(__global const float *zp, const float lp, __global const float *zq,
                               const float lq, const int K, __local float *lanes) {
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0))
        lanes[v] = kl_cols(zp, lp, zq, lq, v, RC_LANES, K);
    return wg_tree_sum(lanes);
}

/* ---- rows of samples ----------------------------------------------------------------------- */

static inline void copy_row(__global float *dst, __global const float *src, const int d) {
    for (int j = 0; j < d; j++) dst[j] = src[j];
}

/* Element-wise attack kernels run C work-items per row of d coordinates (global size B * C),
 * each over the coordinates j0, j0 + step, ... below j1: no per-element integer division, and
 * per-sample sums go through C per-work-item partials added in a fixed order (deterministic).
 *   CPU class: C = ceil(d / ATK_CHUNK), a chunk of ATK_CHUNK consecutive coordinates each.
 *   GPU class: C = min(d, ATK_CHUNK), coordinates interleaved (j0 = c, step = C), so that
 *              neighbouring work-items read neighbouring addresses.
 * The host side (src/attack/attack_ops.c, rc_attack_chunks) computes the same C. */
#define ATK_CHUNK 256

/* The coordinates of work-item `i`: sample *b, j from *j0 below *j1 in steps of *step. 0 when
 * out of range. */
static inline int atk_chunk(const int i, const int C, const int B, const int d, int *b, int *j0,
                            int *j1, int *step) {
    if (i >= B * C) return 0;
    *b = i / C;
    const int c = i - *b * C;
#if RC_GPU
    *j0 = c;
    *j1 = d;
    *step = C;
#else
    *j0 = c * ATK_CHUNK;
    *j1 = min(d, *j0 + ATK_CHUNK);
    *step = 1;
#endif
    return 1;
}

/* Sample b's total of its C per-chunk partials, added in chunk order. */
static inline float atk_row_total(__global const float *part, const int b, const int C) {
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += part[b * C + c];
    return s;
}

/* LSD radix sort of n uint keys, ascending, between two scratch areas; returns the one that
 * holds the result. */
static inline __global uint *atk_radix_sort(__global uint *src, __global uint *dst,
                                            const uint n) {
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

/* ---- per-sample attack kernels ------------------------------------------------------------- */

/* Kernels that handle whole samples (a row of d floats and its per-sample scalars) run one
 * work-item per sample on the CPU class and one work-group per sample on the GPU class
 * (RC_LAUNCH_EACH, ramp/launch.h), whose work-items share the row:
 * work-item lid takes j = lid, lid + L, ... (coalesced). Every work-item of a group reads the
 * sample's scalars and so takes the same branches; one writes the scalars, after
 * sample_writer() has made sure that every other one has read them, and then the rows are
 * copied (PoCL 3.1, which runs the GPU class in the tests, crashed on that barrier placed after
 * the copies under their conditions). */
#if RC_GPU
#define SAMPLE_ID ((int)get_group_id(0))
#else
#define SAMPLE_ID ((int)get_global_id(0))
#endif

/* dst = src over a sample's d coordinates. */
static inline void sample_copy(__global float *dst, __global const float *src, const int d) {
#if RC_GPU
    for (int j = get_local_id(0); j < d; j += get_local_size(0)) dst[j] = src[j];
#else
    copy_row(dst, src, d);
#endif
}

/* Call once every work-item has read the sample's scalars, before the row copies (all
 * work-items of the group must call it): 1 for the work-item that writes the scalars. */
static inline int sample_writer(void) {
#if RC_GPU
    barrier(CLK_GLOBAL_MEM_FENCE);
    return get_local_id(0) == 0;
#else
    return 1;
#endif
}

#if RC_GPU
/* #{j < d : p_j != q_j} (NaN counts as different) by the work-group: 0/1 terms summed in the
 * fixed lanes of wg_tree_sum, exact for d < 2^24. lanes: RC_LANES floats of local memory. */
static inline float wg_count_ne(__global const float *p, __global const float *q, const int d,
                                __local float *lanes) {
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int v = lid; v < RC_LANES; v += L) {
        float n = 0.0f;
        for (int j = v; j < d; j += RC_LANES) n += p[j] != q[j] ? 1.0f : 0.0f;
        lanes[v] = n;
    }
    return wg_tree_sum(lanes);
}
#endif
