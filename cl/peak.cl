/* The device's single-precision FMA peak, for `ramp-cl bench --layers`: every work-item runs
 * CHAINS independent chains of fma on a vector type PEAK_T (float or floatN of the device's native
 * width, a build option), enough chains to cover the FMA latency on every unit. c = c * h + h
 * with h = 0.5 stays finite (it converges to 1), and the lanes are stored, so no chain can be
 * folded away. */
#ifndef PEAK_T
#define PEAK_T float
#endif
typedef PEAK_T vec;
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)

__kernel void peak_fma(__global float *out, const int iters, const float h) {
    const size_t g = get_global_id(0);
    const vec m = (vec)(h);
#define INIT(i) vec c##i = (vec)((float)(g + i));
#define FMA(i) c##i = fma(c##i, m, m);
#define ADD(i) +c##i
    CHAINS(INIT)
    for (int it = 0; it < iters; it++) {
        CHAINS(FMA)
    }
    ((__global vec *)out)[g] = (vec)(0.0f) CHAINS(ADD);
}
