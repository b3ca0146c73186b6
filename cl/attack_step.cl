/* Attack steps of the reference's APGD (auto-attack, autopgd_base.py:
 * APGDAttack.attack_single_run): the l_inf / l_2 steps and their momentum, and the l_0 count.
 * Samples are rows of d contiguous floats. Element-wise kernels run one work-item per chunk of a
 * row (atk_chunk in cl/common.cl); per-sample reductions run one work-item per sample (CPU
 * class) or one work-group per sample (GPU class, SAMPLE_ID in cl/common.cl).
 * Contraction of a*b+c into fma is switched off so every device rounds like the reference
 * (PyTorch element-wise float32 operations). */
#pragma OPENCL FP_CONTRACT OFF

/* ---- l_inf ------------------------------------------------------------------------------- */

/* z = clip_[0,1](clip_[x-eps, x+eps](x_adv + eta[b] * sign(g))) */
__kernel void atk_linf_step(__global const float *x, __global const float *x_adv,
                            __global const float *g, __global const float *eta, const float eps,
                            __global float *z, const int B, const int d, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float s = eta[b];
    for (int j = j0; j < j1; j += step) {
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
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float a1 = 1.0f - a;
    for (int j = j0; j < j1; j += step) {
        const float xa = x_adv[off + j], xj = x[off + j];
        const float v = xa + (z[off + j] - xa) * a + (xa - x_adv_old[off + j]) * a1;
        out[off + j] = clamp(fmin(fmax(v, xj - eps), xj + eps), 0.0f, 1.0f);
    }
}

/* ---- l_2 --------------------------------------------------------------------------------- */

/* part[b*C + c] = sum of v^2 over chunk c of row b */
__kernel void atk_sqnorm_part(__global const float *v, __global float *part, const int B,
                              const int d, const int C) {
    int b, j0, j1, step;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    float s = 0.0f;
    for (int j = j0; j < j1; j += step) {
        const float t = v[off + j];
        s += t * t;
    }
    part[i] = s;
}

/* nrm[b] = sqrt(sum of the C partials of row b): added in order (CPU class), or by the
 * sample's work-group in the fixed lanes of wg_sum (GPU class). */
__kernel void atk_norm_final(__global const float *part, __global float *nrm, const int B,
                             const int C) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const int b = get_group_id(0);
    if (b >= B) return;
    const float s = wg_sum(part + (size_t)b * C, C, lanes);
    if (get_local_id(0) == 0) nrm[b] = sqrt(s);
#else
    const int b = get_global_id(0);
    if (b >= B) return;
    nrm[b] = sqrt(atk_row_total(part, b, C));
#endif
}

/* u = x_adv + eta[b] * (g / (||g|| + 1e-12)); t = u - x; part = per-chunk sums of t^2. */
__kernel void atk_l2_grad_step(__global const float *x, __global const float *x_adv,
                               __global const float *g, __global const float *eta,
                               __global const float *gnorm, __global float *t,
                               __global float *part, const int B, const int d, const int C) {
    int b, j0, j1, step;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float s = eta[b], den = gnorm[b] + 1e-12f;
    float q = 0.0f;
    for (int j = j0; j < j1; j += step) {
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
    int b, j0, j1, step;
    const int i = get_global_id(0);
    if (!atk_chunk(i, C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float a1 = 1.0f - a;
    float q = 0.0f;
    for (int j = j0; j < j1; j += step) {
        const float xa = x_adv[off + j];
        const float v = xa + (z[off + j] - xa) * a + (xa - x_adv_old[off + j]) * a1;
        const float r = v - x[off + j];
        t[off + j] = r;
        q += r * r;
    }
    part[i] = q;
}

/* z = clip_[0,1](x + (t / (||t|| + 1e-12)) * min(eps, ||t||)): radial rescale onto the eps ball,
 * then the box clamp (the reference's approximate projection, not the exact one). */
__kernel void atk_l2_project(__global const float *x, __global const float *t,
                             __global const float *tnorm, const float eps, __global float *z,
                             const int B, const int d, const int C) {
    int b, j0, j1, step;
    if (!atk_chunk(get_global_id(0), C, B, d, &b, &j0, &j1, &step)) return;
    const size_t off = (size_t)b * d;
    const float n = tnorm[b], den = n + 1e-12f, m = fmin(eps, n);
    for (int j = j0; j < j1; j += step)
        z[off + j] = clamp(x[off + j] + (t[off + j] / den) * m, 0.0f, 1.0f);
}

/* ---- counts ------------------------------------------------------------------------------ */

/* out[b] = #{j : p_j != q_j} as a float; one work-item (CPU class) or work-group (GPU class)
 * per sample. */
__kernel void atk_l0(__global const float *p, __global const float *q, __global float *out,
                     const int B, const int d) {
#if RC_GPU
    __local float lanes[RC_LANES];
    const int b = get_group_id(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const float n = wg_count_ne(p + off, q + off, d, lanes);
    if (get_local_id(0) == 0) out[b] = n;
#else
    const int b = get_global_id(0);
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    uint n = 0;
    for (int j = 0; j < d; j++) n += p[off + j] != q[off + j] ? 1u : 0u;
    out[b] = (float)n;
#endif
}
