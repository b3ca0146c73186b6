/* Element-wise activations and the residual add, forward and backward. Backward kernels write
 * dx, or add to it when `accumulate` is set (a tensor read by two layers sums both gradients). */

/* The activations take ACT_W consecutive elements per work-item: one on the GPU class, 16 as one
 * float16 on the CPU class, where PoCL vectorises exp and log1p only when they are called on a
 * vector (one element per work-item ran them as scalar calls: 3x slower for exp, 14x for log1p,
 * a quarter of PreAct ResNet-18's forward time). Each activation is written once, as macros over
 * `v` (the input) and `d` (the output gradient) of either type (a ternary on vectors selects per
 * lane); the tail of a CPU-class tensor (fewer than 16 elements) runs the same macros on floats.
 *   ReLU: PyTorch's gradient is 0 at x == 0.
 *   Softplus: beta 1 and threshold 20, as torch.nn.functional.softplus.
 *   SiLU (DeepMind's Swish): x * sigmoid(x), its gradient sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 *   as their custom autograd function and torch.nn.SiLU compute it. exp(-x) overflows to inf for
 *   x < -88, where sigmoid is then 0 as it should be. */
#if RC_GPU
#define ACT_W 1
#define ACT_T float
#define ACT_LOAD(p) (*(p))
#define ACT_STORE(v, p) (*(p) = (v))
#else
#define ACT_W 16
#define ACT_T float16
#define ACT_LOAD(p) vload16(0, p)
#define ACT_STORE(v, p) vstore16(v, 0, p)
#endif
#define RELU_F(v) fmax(v, 0.0f)
#define RELU_B(v, d) ((v) > 0.0f ? (d) : 0.0f)
#define SOFTPLUS_F(v) ((v) > 20.0f ? (v) : log1p(exp(v)))
#define SOFTPLUS_B(v, d) ((v) > 20.0f ? (d) : (d) / (1.0f + exp(-(v))))
#define SIGMOID(v) (1.0f / (1.0f + exp(-(v))))
#define SILU_F(v) ((v) / (1.0f + exp(-(v))))
#define SILU_B(v, d) ((d) * (SIGMOID(v) * (1.0f + (v) * (1.0f - SIGMOID(v)))))

#define ACT_KERNELS(NAME, F, B)                                                                   \
    __kernel void NAME##_forward(__global const float *x, __global float *y, const int total) { \
        const int i = get_global_id(0) * ACT_W;                                                   \
        if (ACT_W > 1 && i + ACT_W <= total) {                                                    \
            const ACT_T v = ACT_LOAD(x + i);                                                      \
            ACT_STORE(F(v), y + i);                                                               \
            return;                                                                               \
        }                                                                                         \
        for (int j = i; j < min(i + ACT_W, total); j++) {                                         \
            const float v = x[j];                                                                 \
            y[j] = F(v);                                                                          \
        }                                                                                         \
    }                                                                                             \
    __kernel void NAME##_backward(__global const float *dy, __global const float *x,            \
                                  __global float *dx, const int total, const int accumulate) {    \
        const int i = get_global_id(0) * ACT_W;                                                   \
        if (ACT_W > 1 && i + ACT_W <= total) {                                                    \
            const ACT_T v = ACT_LOAD(x + i), d = ACT_LOAD(dy + i), g = B(v, d);                   \
            ACT_STORE(accumulate ? ACT_LOAD(dx + i) + g : g, dx + i);                             \
            return;                                                                               \
        }                                                                                         \
        for (int j = i; j < min(i + ACT_W, total); j++) {                                         \
            const float v = x[j], d = dy[j], g = B(v, d);                                         \
            dx[j] = accumulate ? dx[j] + g : g;                                                   \
        }                                                                                         \
    }

ACT_KERNELS(relu, RELU_F, RELU_B)
ACT_KERNELS(softplus, SOFTPLUS_F, SOFTPLUS_B)
ACT_KERNELS(silu, SILU_F, SILU_B)

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
