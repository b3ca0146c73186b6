/* Gradient projection (RAMP, paper Eq. 4-7; RAMP's utils.py gp()): per state-dict
 * tensor, with g_a = adv - old and g_n = nat - old,
 *   cos = <g_a, g_n> / (max(|g_a|, 1e-8) * max(|g_n|, 1e-8))
 *   adv <- old + beta * g_a + [cos > 0] * (1 - beta) * cos * g_n.
 *
 * Tensors are cut into chunks of contiguous floats (a table built by the host: start, length,
 * arena, tensor). CPU class: one work-item per chunk and per tensor. GPU class: one work-group
 * per chunk and per tensor (RC_LAUNCH_EACH), its work-items on neighbouring floats, the sums
 * combined in RC_LANES lanes as wg_tree_sum (cl/common.cl) does. Sums are compensated (TwoSum
 * into a hi/lo pair) and taken in a fixed order, so the result is deterministic and accurate to
 * about one float rounding for millions of elements, without needing fp64 on the device. The
 * host turns each tensor's three sums into cos and the weight w = [cos > 0] (1 - beta) cos of
 * g_n, in double. */
#pragma OPENCL FP_CONTRACT OFF

/* (s, c) += x, exactly up to the final rounding of c (Knuth's TwoSum, branch free). */
inline void gp_acc(float *s, float *c, const float x) {
    const float t = *s + x;
    const float bp = t - *s;
    *c += (*s - (t - bp)) + (x - bp);
    *s = t;
}

/* The three compensated sums s[6] = dot hi, lo, |g_a|^2 hi, lo, |g_n|^2 hi, lo over the floats
 * i = from, from + step, ... below to. */
static inline void gp_dots(__global const float *o, __global const float *a,
                           __global const float *n, const int from, const int to, const int step,
                           float *s) {
    float ds = 0, dc = 0, as = 0, ac = 0, ns = 0, nc = 0;
    for (int i = from; i < to; i += step) {
        const float oi = o[i];
        const float ga = a[i] - oi, gn = n[i] - oi;
        gp_acc(&ds, &dc, ga * gn);
        gp_acc(&as, &ac, ga * ga);
        gp_acc(&ns, &nc, gn * gn);
    }
    s[0] = ds, s[1] = dc, s[2] = as, s[3] = ac, s[4] = ns, s[5] = nc;
}

/* The partials of chunks k = from, from + step, ... below to, summed in order into s[6] (the
 * same layout). */
static inline void gp_chunk_sums(__global const float *partial, const int from, const int to,
                                 const int step, float *s) {
    float h[3] = {0, 0, 0}, c[3] = {0, 0, 0};
    for (int k = from; k < to; k += step) {
        __global const float *p = partial + 6 * k;
        for (int q = 0; q < 3; q++) {
            gp_acc(&h[q], &c[q], p[2 * q]);
            gp_acc(&h[q], &c[q], p[2 * q + 1]);
        }
    }
    for (int q = 0; q < 3; q++) s[2 * q] = h[q], s[2 * q + 1] = c[q];
}

#if RC_GPU
/* GPU class: lane v of a group's three sums is (hi[q RC_LANES + v], lo[q RC_LANES + v]), q = 0, 1,
 * 2; gp_lane sets it from s[6]. gp_tree pairs the lanes in wg_tree_sum's fixed tree, adding both
 * parts of lane v + s into lane v with TwoSum as gp_chunk_sums does, and the first work-item
 * writes the result to out[0..6) (the same layout). Every work-item of the group calls it. */
static inline void gp_lane(__local float *hi, __local float *lo, const int v, const float *s) {
    for (int q = 0; q < 3; q++) {
        hi[q * RC_LANES + v] = s[2 * q];
        lo[q * RC_LANES + v] = s[2 * q + 1];
    }
}

static void gp_tree(__local float *hi, __local float *lo, __global float *out) {
    const int lid = get_local_id(0), L = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RC_LANES / 2; s > 0; s >>= 1) {
        for (int v = lid; v < s; v += L)
            for (int q = 0; q < 3; q++) {
                __local float *h = hi + q * RC_LANES, *l = lo + q * RC_LANES;
                float sh = h[v], sl = l[v];
                gp_acc(&sh, &sl, h[v + s]);
                gp_acc(&sh, &sl, l[v + s]);
                h[v] = sh, l[v] = sl;
            }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        for (int q = 0; q < 3; q++) {
            out[2 * q] = hi[q * RC_LANES];
            out[2 * q + 1] = lo[q * RC_LANES];
        }
}
#endif

/* Per chunk k: partial[6k ..] = gp_dots over the chunk.
 * chunks[4k ..] = start (floats into its arena), length, arena (0 params, 1 state), tensor. */
__kernel void gp_partial(__global const int *chunks, const int n_chunks,
                         __global const float *old_p, __global const float *old_s,
                         __global const float *adv_p, __global const float *adv_s,
                         __global const float *nat_p, __global const float *nat_s,
                         __global float *partial) {
#if RC_GPU
    __local float hi[3 * RC_LANES], lo[3 * RC_LANES];
    const int k = get_group_id(0);
#else
    const int k = get_global_id(0);
    if (k >= n_chunks) return;
#endif
    const int start = chunks[4 * k], len = chunks[4 * k + 1], arena = chunks[4 * k + 2];
    __global const float *o = arena ? old_s : old_p;
    __global const float *a = arena ? adv_s : adv_p;
    __global const float *n = arena ? nat_s : nat_p;
    float s[6];
#if RC_GPU
    /* lane v: the chunk's floats v, v + RC_LANES, ... */
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0)) {
        gp_dots(o, a, n, start + v, start + len, RC_LANES, s);
        gp_lane(hi, lo, v, s);
    }
    gp_tree(hi, lo, partial + 6 * k);
#else
    gp_dots(o, a, n, start, start + len, 1, s);
    for (int q = 0; q < 6; q++) partial[6 * k + q] = s[q];
#endif
}

/* Per tensor t: its chunks are tensors[2t] .. tensors[2t] + tensors[2t+1] - 1, summed into
 * sums[6t ..] (the same hi, lo layout as the partials); CPU class in order, GPU class in the
 * lanes' tree. The host finishes the cosine in double. */
__kernel void gp_sums(__global const int *tensors, const int n_tensors,
                      __global const float *partial, __global float *sums) {
#if RC_GPU
    __local float hi[3 * RC_LANES], lo[3 * RC_LANES];
    const int t = get_group_id(0);
#else
    const int t = get_global_id(0);
    if (t >= n_tensors) return;
#endif
    const int first = tensors[2 * t], count = tensors[2 * t + 1];
    float s[6];
#if RC_GPU
    /* lane v: the tensor's chunks v, v + RC_LANES, ... */
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0)) {
        gp_chunk_sums(partial, first + v, first + count, RC_LANES, s);
        gp_lane(hi, lo, v, s);
    }
    gp_tree(hi, lo, sums + 6 * t);
#else
    gp_chunk_sums(partial, first, first + count, 1, s);
    for (int q = 0; q < 6; q++) sums[6 * t + q] = s[q];
#endif
}

/* Per chunk: adv <- old + beta * (adv - old) + w * (nat - old), w = weight[tensor]. CPU class: a
 * work-item's chunk; GPU class: a work-group's, one float per work-item at a time. */
__kernel void gp_apply(__global const int *chunks, const int n_chunks,
                       __global const float *old_p, __global const float *old_s,
                       __global float *adv_p, __global float *adv_s,
                       __global const float *nat_p, __global const float *nat_s,
                       __global const float *weight, const float beta) {
#if RC_GPU
    const int k = get_group_id(0), i0 = get_local_id(0), step = get_local_size(0);
#else
    const int k = get_global_id(0), i0 = 0, step = 1;
    if (k >= n_chunks) return;
#endif
    const int start = chunks[4 * k], len = chunks[4 * k + 1], arena = chunks[4 * k + 2];
    const float w = weight[chunks[4 * k + 3]];
    __global const float *o = arena ? old_s : old_p;
    __global float *a = arena ? adv_s : adv_p;
    __global const float *n = arena ? nat_s : nat_p;
    for (int i = start + i0; i < start + len; i += step) {
        const float oi = o[i];
        a[i] = oi + beta * (a[i] - oi) + w * (n[i] - oi);
    }
}
