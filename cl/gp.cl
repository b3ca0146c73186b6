/* Gradient projection (RAMP, paper Eq. 4-7; RAMP's utils.py gp()): per state-dict
 * tensor, with g_a = adv - old and g_n = nat - old,
 *   cos = <g_a, g_n> / (max(|g_a|, 1e-8) * max(|g_n|, 1e-8))
 *   adv <- old + beta * g_a + [cos > 0] * (1 - beta) * cos * g_n.
 *
 * Tensors are cut into chunks of contiguous floats (a table built by the host: start, length,
 * arena, tensor); each work-item handles one chunk. Sums are compensated (TwoSum into a hi/lo
 * pair) and taken in a fixed order, so the result is deterministic and accurate to about one float
 * rounding for millions of elements, without needing fp64 on the device. The host turns each
 * tensor's three sums into cos and the weight w = [cos > 0] (1 - beta) cos of g_n, in double. */
#pragma OPENCL FP_CONTRACT OFF

/* (s, c) += x, exactly up to the final rounding of c (Knuth's TwoSum, branch free). */
inline void gp_acc(float *s, float *c, const float x) {
    const float t = *s + x;
    const float bp = t - *s;
    *c += (*s - (t - bp)) + (x - bp);
    *s = t;
}

/* Per chunk k: partial[6k ..] = dot hi, lo, |g_a|^2 hi, lo, |g_n|^2 hi, lo.
 * chunks[4k ..] = start (floats into its arena), length, arena (0 params, 1 state), tensor. */
__kernel void gp_partial(__global const int *chunks, const int n_chunks,
                         __global const float *old_p, __global const float *old_s,
                         __global const float *adv_p, __global const float *adv_s,
                         __global const float *nat_p, __global const float *nat_s,
                         __global float *partial) {
    const int k = get_global_id(0);
    if (k >= n_chunks) return;
    const int start = chunks[4 * k], len = chunks[4 * k + 1], arena = chunks[4 * k + 2];
    __global const float *o = arena ? old_s : old_p;
    __global const float *a = arena ? adv_s : adv_p;
    __global const float *n = arena ? nat_s : nat_p;
    float ds = 0, dc = 0, as = 0, ac = 0, ns = 0, nc = 0;
    for (int i = start; i < start + len; i++) {
        const float oi = o[i];
        const float ga = a[i] - oi, gn = n[i] - oi;
        gp_acc(&ds, &dc, ga * gn);
        gp_acc(&as, &ac, ga * ga);
        gp_acc(&ns, &nc, gn * gn);
    }
    __global float *out = partial + 6 * k;
    out[0] = ds, out[1] = dc, out[2] = as, out[3] = ac, out[4] = ns, out[5] = nc;
}

/* Per tensor t: its chunks are tensors[2t] .. tensors[2t] + tensors[2t+1] - 1, summed in order into
 * sums[6t ..] (the same hi, lo layout as the partials). The host finishes the cosine in double. */
__kernel void gp_sums(__global const int *tensors, const int n_tensors,
                      __global const float *partial, __global float *sums) {
    const int t = get_global_id(0);
    if (t >= n_tensors) return;
    const int first = tensors[2 * t], count = tensors[2 * t + 1];
    float s[3] = {0, 0, 0}, c[3] = {0, 0, 0};
    for (int k = first; k < first + count; k++) {
        __global const float *p = partial + 6 * k;
        for (int q = 0; q < 3; q++) {
            gp_acc(&s[q], &c[q], p[2 * q]);
            gp_acc(&s[q], &c[q], p[2 * q + 1]);
        }
    }
    __global float *out = sums + 6 * t;
    for (int q = 0; q < 3; q++) out[2 * q] = s[q], out[2 * q + 1] = c[q];
}

/* Per chunk: adv <- old + beta * (adv - old) + w * (nat - old), w = weight[tensor]. */
__kernel void gp_apply(__global const int *chunks, const int n_chunks,
                       __global const float *old_p, __global const float *old_s,
                       __global float *adv_p, __global float *adv_s,
                       __global const float *nat_p, __global const float *nat_s,
                       __global const float *weight, const float beta) {
    const int k = get_global_id(0);
    if (k >= n_chunks) return;
    const int start = chunks[4 * k], len = chunks[4 * k + 1], arena = chunks[4 * k + 2];
    const float w = weight[chunks[4 * k + 3]];
    __global const float *o = arena ? old_s : old_p;
    __global float *a = arena ? adv_s : adv_p;
    __global const float *n = arena ? nat_s : nat_p;
    for (int i = start; i < start + len; i++) {
        const float oi = o[i];
        a[i] = oi + beta * (a[i] - oi) + w * (n[i] - oi);
    }
}
