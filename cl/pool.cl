/* Global average pooling: [N][C][HW] -> [N][C]. */

__kernel void gap_forward(__global const float *x, __global float *y, const int NC, const int HW) {
    const int i = get_global_id(0);
    if (i >= NC) return;
    __global const float *p = x + (size_t)i * HW;
    float s = 0.0f;
    for (int k = 0; k < HW; k++) s += p[k];
    y[i] = s / (float)HW;
}

__kernel void gap_backward(__global const float *dy, __global float *dx, const int NC,
                           const int HW, const int accumulate) {
    const int idx = get_global_id(0);
    if (idx >= NC * HW) return;
    const float g = dy[idx / HW] / (float)HW;
    dx[idx] = accumulate ? dx[idx] + g : g;
}
