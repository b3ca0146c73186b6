/* Batch normalisation over (N, H, W) per channel, as PyTorch's BatchNorm2d. Reductions go through
 * per-(channel, image) partial sums and then a fixed-order sum over images: deterministic. They
 * run a plane (partial sums) or a channel (totals) per work-item on the CPU class, per work-group
 * on the GPU class; element-wise kernels go through plane_elems (cl/common.cl). */

/* CPU class: channel c's total of its N per-image partials part[c*N + n], in image order. */
static inline float bn_channel_total(__global const float *part, const int c, const int N) {
    float s = 0.0f;
    for (int n = 0; n < N; n++) s += part[c * N + n];
    return s;
}

#if RC_GPU
/* Work-group c*N + n (N*C groups) reduces the plane x[n][c] in the fixed lanes of wg_sum /
 * wg_tree_sum: neighbouring work-items read neighbouring floats, and the sum does not depend on
 * the work-group size. The offset of that plane; its channel in *c. */
static inline size_t bn_group_plane(const int N, const int C, const int HW, int *c) {
    const int g = get_group_id(0);
    *c = g / N;
    return ((size_t)(g - *c * N) * C + *c) * HW;
}

/* part[c*N + n] = sum over the plane x[n][c] */
__kernel void bn_partial_sum(__global const float *x, __global float *part, const int N,
                             const int C, const int HW) {
    __local float lanes[RC_LANES];
    int c;
    const float s = wg_sum(x + bn_group_plane(N, C, HW, &c), HW, lanes);
    if (get_local_id(0) == 0) part[get_group_id(0)] = s;
}

/* Centered second moment, from the mean implied by part_sum (more accurate than E[x^2]-E[x]^2).
 * part_sum holds the partials of all NT images of the batch (NT > N: the batch is split across
 * processes, ramp/dist.h); part_sq gets this slice's N. */
__kernel void bn_partial_sq(__global const float *x, __global const float *part_sum,
                            __global float *part_sq, const int N, const int C, const int HW,
                            const int NT) {
    __local float lanes[RC_LANES];
    int c;
    __global const float *p = x + bn_group_plane(N, C, HW, &c);
    /* summed as bn_finalize_stats sums it: the same mean */
    const float mean = wg_sum(part_sum + c * NT, NT, lanes) / (float)(NT * HW);
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0)) {
        float s = 0.0f;
        for (int j = v; j < HW; j += RC_LANES) {
            const float d = p[j] - mean;
            s += d * d;
        }
        lanes[v] = s;
    }
    const float s = wg_tree_sum(lanes);
    if (get_local_id(0) == 0) part_sq[get_group_id(0)] = s;
}
#else
/* part[c*N + n] = sum over the plane x[n][c] */
__kernel void bn_partial_sum(__global const float *x, __global float *part, const int N,
                             const int C, const int HW) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    __global const float *p = x + ((size_t)n * C + c) * HW;
    float s = 0.0f;
    for (int i = 0; i < HW; i++) s += p[i];
    part[c * N + n] = s;
}

/* Centered second moment, as the GPU class's (part_sum: all NT images, part_sq: these N). */
__kernel void bn_partial_sq(__global const float *x, __global const float *part_sum,
                            __global float *part_sq, const int N, const int C, const int HW,
                            const int NT) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    const float mean = bn_channel_total(part_sum, c, NT) / (float)(NT * HW);
    __global const float *p = x + ((size_t)n * C + c) * HW;
    float s = 0.0f;
    for (int i = 0; i < HW; i++) {
        const float d = p[i] - mean;
        s += d * d;
    }
    part_sq[c * N + n] = s;
}
#endif

/* Channel c's batch mean and 1/sqrt(biased var + eps) from its totals s (of x) and q (of the
 * squared deviations) over N*HW values; running stats updated with the unbiased variance. */
static inline void bn_store_stats(const int c, const float s, const float q, const int N,
                                  const int HW, __global float *mean, __global float *invstd,
                                  __global float *running_mean, __global float *running_var,
                                  const float momentum, const float eps) {
    const float M = (float)(N * HW);
    const float mu = s / M, var = q / M;
    mean[c] = mu;
    invstd[c] = 1.0f / sqrt(var + eps);
    const float unbiased = M > 1.0f ? q / (M - 1.0f) : var;
    running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mu;
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
}

#if RC_GPU
/* The channels' totals: one work-group per channel (C groups), its N partials in the fixed lanes
 * of wg_sum. */
__kernel void bn_finalize_stats(__global const float *part_sum, __global const float *part_sq,
                                __global float *mean, __global float *invstd,
                                __global float *running_mean, __global float *running_var,
                                const int N, const int C, const int HW, const float momentum,
                                const float eps) {
    __local float lanes[RC_LANES];
    const int c = get_group_id(0);
    const float s = wg_sum(part_sum + c * N, N, lanes), q = wg_sum(part_sq + c * N, N, lanes);
    if (get_local_id(0) == 0)
        bn_store_stats(c, s, q, N, HW, mean, invstd, running_mean, running_var, momentum, eps);
}
#else
/* The channels' totals: one channel per work-item. */
__kernel void bn_finalize_stats(__global const float *part_sum, __global const float *part_sq,
                                __global float *mean, __global float *invstd,
                                __global float *running_mean, __global float *running_var,
                                const int N, const int C, const int HW, const float momentum,
                                const float eps) {
    const int c = get_global_id(0);
    if (c >= C) return;
    bn_store_stats(c, bn_channel_total(part_sum, c, N), bn_channel_total(part_sq, c, N), N, HW,
                   mean, invstd, running_mean, running_var, momentum, eps);
}
#endif

/* Element-wise kernels: a work-item runs elements i0..i1 of (image, channel) plane g, the whole
 * plane on the CPU class (no per-element division there), one element on the GPU class. */
__kernel void bn_apply(__global const float *x, __global float *y, __global const float *mean,
                       __global const float *invstd, __global const float *gamma,
                       __global const float *beta, const int C, const int HW, const int NC) {
    int g, i0, i1;
    if (!plane_elems(NC, HW, &g, &i0, &i1)) return;
    const int c = g % C;
    const float scale = invstd[c] * gamma[c], shift = beta[c] - mean[c] * scale;
    const size_t off = (size_t)g * HW;
    for (int i = i0; i < i1; i++) y[off + i] = x[off + i] * scale + shift;
}

/* Eval mode: normalise with the running statistics. */
__kernel void bn_apply_eval(__global const float *x, __global float *y,
                            __global const float *running_mean, __global const float *running_var,
                            __global const float *gamma, __global const float *beta,
                            const float eps, const int C, const int HW, const int NC) {
    int g, i0, i1;
    if (!plane_elems(NC, HW, &g, &i0, &i1)) return;
    const int c = g % C;
    const float scale = gamma[c] / sqrt(running_var[c] + eps);
    const float shift = beta[c] - running_mean[c] * scale;
    const size_t off = (size_t)g * HW;
    for (int i = i0; i < i1; i++) y[off + i] = x[off + i] * scale + shift;
}

#if RC_GPU
/* part_a[c*N+n] = sum dy, part_b[c*N+n] = sum dy * xhat over the plane. */
__kernel void bn_backward_partial(__global const float *dy, __global const float *x,
                                  __global const float *mean, __global const float *invstd,
                                  __global float *part_a, __global float *part_b, const int N,
                                  const int C, const int HW) {
    __local float lanes_a[RC_LANES], lanes_b[RC_LANES];
    int c;
    const size_t off = bn_group_plane(N, C, HW, &c);
    const float mu = mean[c], is = invstd[c];
    for (int v = get_local_id(0); v < RC_LANES; v += get_local_size(0)) {
        float a = 0.0f, b = 0.0f;
        for (int j = v; j < HW; j += RC_LANES) {
            const float g = dy[off + j];
            a += g;
            b += g * (x[off + j] - mu) * is;
        }
        lanes_a[v] = a;
        lanes_b[v] = b;
    }
    const float a = wg_tree_sum(lanes_a), b = wg_tree_sum(lanes_b);
    if (get_local_id(0) == 0) {
        part_a[get_group_id(0)] = a;
        part_b[get_group_id(0)] = b;
    }
}
#else
/* part_a[c*N+n] = sum dy, part_b[c*N+n] = sum dy * xhat over the plane. */
__kernel void bn_backward_partial(__global const float *dy, __global const float *x,
                                  __global const float *mean, __global const float *invstd,
                                  __global float *part_a, __global float *part_b, const int N,
                                  const int C, const int HW) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    const size_t off = ((size_t)n * C + c) * HW;
    const float mu = mean[c], is = invstd[c];
    float a = 0.0f, b = 0.0f;
    for (int i = 0; i < HW; i++) {
        const float g = dy[off + i];
        a += g;
        b += g * (x[off + i] - mu) * is;
    }
    part_a[c * N + n] = a;
    part_b[c * N + n] = b;
}
#endif

/* dbeta = sum dy, dgamma = sum dy * xhat. */
#if RC_GPU
/* One work-group per channel (C groups), as bn_finalize_stats. */
__kernel void bn_backward_params(__global const float *part_a, __global const float *part_b,
                                 __global float *dgamma, __global float *dbeta, const int N,
                                 const int C) {
    __local float lanes[RC_LANES];
    const int c = get_group_id(0);
    const float a = wg_sum(part_a + c * N, N, lanes), b = wg_sum(part_b + c * N, N, lanes);
    if (get_local_id(0) == 0) {
        dbeta[c] = a;
        dgamma[c] = b;
    }
}
#else
__kernel void bn_backward_params(__global const float *part_a, __global const float *part_b,
                                 __global float *dgamma, __global float *dbeta, const int N,
                                 const int C) {
    const int c = get_global_id(0);
    if (c >= C) return;
    dbeta[c] = bn_channel_total(part_a, c, N);
    dgamma[c] = bn_channel_total(part_b, c, N);
}
#endif

/* dx = gamma * invstd * (dy - dbeta/M - xhat * dgamma/M), M = N*HW. */
__kernel void bn_backward_dx(__global const float *dy, __global const float *x,
                             __global const float *mean, __global const float *invstd,
                             __global const float *gamma, __global const float *dgamma,
                             __global const float *dbeta, __global float *dx, const int C,
                             const int HW, const int NC, const float inv_m,
                             const int accumulate) {
    int g, i0, i1;
    if (!plane_elems(NC, HW, &g, &i0, &i1)) return;
    const int c = g % C;
    const float is = invstd[c], mu = mean[c], k = gamma[c] * is;
    const float db = dbeta[c] * inv_m, dgm = dgamma[c] * inv_m;
    const size_t off = (size_t)g * HW;
    for (int i = i0; i < i1; i++) {
        const float xhat = (x[off + i] - mu) * is;
        const float v = k * (dy[off + i] - db - xhat * dgm);
        dx[off + i] = accumulate ? dx[off + i] + v : v;
    }
}

/* Eval mode: statistics are constants, so dx = dy * gamma / sqrt(running_var + eps). */
__kernel void bn_backward_dx_eval(__global const float *dy, __global const float *running_var,
                                  __global const float *gamma, __global float *dx, const float eps,
                                  const int C, const int HW, const int NC, const int accumulate) {
    int g, i0, i1;
    if (!plane_elems(NC, HW, &g, &i0, &i1)) return;
    const int c = g % C;
    const float k = gamma[c] / sqrt(running_var[c] + eps);
    const size_t off = (size_t)g * HW;
    for (int i = i0; i < i1; i++) {
        const float v = dy[off + i] * k;
        dx[off + i] = accumulate ? dx[off + i] + v : v;
    }
}

/* Eval mode, batch norm followed by ReLU whose output is y: the gradient at the batch norm's
 * input from the ReLU's output gradient dy (both NCHW), written to dz[n * ns + c * cs + h * rs +
 * w]; with `padded`, zeros in columns W..rs-1 and after row H up to cs. One (image, channel)
 * plane per work-item: only the CPU class's fused path (implicit GEMM, src/nn/model.c) runs it. */
__kernel void bn_relu_backward_eval(__global const float *dy, __global const float *y,
                                    __global const float *running_var,
                                    __global const float *gamma, __global float *dz,
                                    const float eps, const int N, const int C, const int H,
                                    const int W, const int ns, const int cs, const int rs,
                                    const int padded) {
    const int g = get_global_id(0);
    if (g >= N * C) return;
    const int n = g / C, c = g - n * C;
    const float k = gamma[c] / sqrt(running_var[c] + eps);
    const size_t off = (size_t)g * H * W;
    __global float *dst = dz + (size_t)n * ns + (size_t)c * cs;
    for (int h = 0; h < H; h++) {
        __global float *d = dst + h * rs;
        for (int w = 0; w < W; w++) {
            const size_t i = off + h * W + w;
            d[w] = y[i] > 0.0f ? dy[i] * k : 0.0f;
        }
        if (padded)
            for (int w = W; w < rs; w++) d[w] = 0.0f;
    }
    if (padded)
        for (int q = H * rs; q < cs; q++) dst[q] = 0.0f;
}
