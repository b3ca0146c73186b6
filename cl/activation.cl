/* Element-wise activations and the residual add, forward and backward. Backward kernels write
 * dx, or add to it when `accumulate` is set (a tensor read by two layers sums both gradients). */

__kernel void relu_forward(__global const float *x, __global float *y, const int total) {
    const int i = get_global_id(0);
    if (i < total) y[i] = fmax(x[i], 0.0f);
}

/* PyTorch's ReLU gradient is 0 at x == 0. */
__kernel void relu_backward(__global const float *dy, __global const float *x, __global float *dx,
                            const int total, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float g = x[i] > 0.0f ? dy[i] : 0.0f;
    dx[i] = accumulate ? dx[i] + g : g;
}

/* Softplus with beta 1 and threshold 20, as torch.nn.functional.softplus. */
__kernel void softplus_forward(__global const float *x, __global float *y, const int total) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float v = x[i];
    y[i] = v > 20.0f ? v : log1p(exp(v));
}

__kernel void softplus_backward(__global const float *dy, __global const float *x,
                                __global float *dx, const int total, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float v = x[i];
    const float g = v > 20.0f ? dy[i] : dy[i] / (1.0f + exp(-v));
    dx[i] = accumulate ? dx[i] + g : g;
}

/* SiLU (DeepMind's Swish): x * sigmoid(x), its gradient sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 * as their custom autograd function and torch.nn.SiLU compute it. exp(-x) overflows to inf for
 * x < -88, where sigmoid is then 0 as it should be. */
__kernel void silu_forward(__global const float *x, __global float *y, const int total) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float v = x[i];
    y[i] = v / (1.0f + exp(-v));
}

__kernel void silu_backward(__global const float *dy, __global const float *x, __global float *dx,
                            const int total, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= total) return;
    const float v = x[i], s = 1.0f / (1.0f + exp(-v));
    const float g = dy[i] * (s * (1.0f + v * (1.0f - s)));
    dx[i] = accumulate ? dx[i] + g : g;
}

__kernel void add_forward(__global const float *a, __global const float *b, __global float *y,
                          const int total) {
    const int i = get_global_id(0);
    if (i < total) y[i] = a[i] + b[i];
}

/* dx (+)= dy: the gradient of an identity edge (residual add, shortcut). */
__kernel void grad_pass(__global const float *dy, __global float *dx, const int total,
                        const int accumulate) {
    const int i = get_global_id(0);
    if (i >= total) return;
    dx[i] = accumulate ? dx[i] + dy[i] : dy[i];
}

/* Input normalisation y = (x - mean[c]) / std[c] over the N * C planes of P floats (plane_elems),
 * computed as PyTorch's (x - mean) / std, not as a multiply by 1 / std. */
__kernel void normalize_forward(__global const float *x, __global float *y,
                                __global const float *mean, __global const float *std,
                                const int NC, const int C, const int P) {
    int g, p0, p1;
    if (!plane_elems(NC, P, &g, &p0, &p1)) return;
    const float m = mean[g % C], s = std[g % C];
    __global const float *src = x + (size_t)g * P;
    __global float *dst = y + (size_t)g * P;
    for (int p = p0; p < p1; p++) dst[p] = (src[p] - m) / s;
}

/* dx (+)= dy / std[c], over the planes as normalize_forward. */
__kernel void normalize_backward(__global const float *dy, __global float *dx,
                                 __global const float *std, const int NC, const int C,
                                 const int P, const int accumulate) {
    int g, p0, p1;
    if (!plane_elems(NC, P, &g, &p0, &p1)) return;
    const float s = std[g % C];
    __global const float *src = dy + (size_t)g * P;
    __global float *dst = dx + (size_t)g * P;
    for (int p = p0; p < p1; p++) dst[p] = accumulate ? dst[p] + src[p] / s : src[p] / s;
}
