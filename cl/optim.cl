/* SGD exactly as torch.optim.SGD (dampening 0) over floats [off, off + n) of the arenas:
 * d = g + wd * p; buf = first ? d : m * buf + d; d = nesterov ? d + m * buf : buf; p -= lr * d. */
__kernel void sgd_step(__global float *p, __global const float *g, __global float *buf,
                       const int off, const int n, const float lr, const float momentum,
                       const float wd, const int nesterov, const int first) {
    const int j = get_global_id(0);
    if (j >= n) return;
    const int i = off + j;
    float d = g[i] + wd * p[i];
    if (momentum != 0.0f) {
        const float b = first ? d : momentum * buf[i] + d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
}
