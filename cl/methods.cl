/* Per-batch kernels of the adversarial training methods. */

/* MAX: per sample, the adversarial example of the threat model with the highest attack loss
 * (first maximum wins, threat models in the caller's order). One work-item per sample. */
__kernel void method_select_max(__global const float *adv0, __global const float *adv1,
                                __global const float *adv2, __global const float *loss0,
                                __global const float *loss1, __global const float *loss2,
                                const int n_threats, __global float *out, const int B,
                                const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    int best = 0;
    float l = loss0[b];
    if (n_threats > 1 && loss1[b] > l) best = 1, l = loss1[b];
    if (n_threats > 2 && loss2[b] > l) best = 2;
    __global const float *src = best == 0 ? adv0 : best == 1 ? adv1 : adv2;
    const size_t off = (size_t)b * d;
    for (int j = 0; j < d; j++) out[off + j] = src[off + j];
}
