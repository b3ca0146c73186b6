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
