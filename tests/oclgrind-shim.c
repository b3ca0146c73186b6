/* Preloaded by tests/oclgrind.sh in front of Oclgrind's OpenCL runtime. Oclgrind 21.10's
 * uninitialized-value checker (src/plugins/Uninitialized.cpp, jrprice/Oclgrind) keeps one shadow
 * array per buffer slot, and three host operations leave it wrong:
 *   - clReleaseMemObject frees the slot without dropping its shadow (the plugin has no
 *     memoryDeallocated): the next buffer given that slot keeps the old, smaller shadow, and every
 *     read past the old size is reported as uninitialised however often a kernel wrote there;
 *   - a host write or copy (clEnqueueWriteBuffer, clEnqueueCopyBuffer, clEnqueueFillBuffer) makes
 *     the slot's shadow exactly as long as the bytes written and drops them unless they start at
 *     offset 0: a write at an offset, into a sub-buffer or of a fill pattern (one store per
 *     pattern) leaves the whole buffer reading as uninitialised;
 *   - a whole-buffer copy marks the destination initialised whatever the source held.
 * So this never frees buffers (their slots are never reused), stages partial writes and fills in
 * a fresh whole buffer and lets a kernel copy them into place, and copies buffers with a kernel:
 * kernel loads and stores carry the shadow byte for byte. Only a whole-buffer write at offset 0
 * goes to Oclgrind as it is (it gives the slot a full, initialised shadow, which is right). */
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef cl_int (*write_fn)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void *,
                           cl_uint, const cl_event *, cl_event *);

/* Oclgrind's own clEnqueueWriteBuffer (the next definition after this library). */
static write_fn real_write(void) {
    static write_fn f;
    if (!f && !(f = (write_fn)dlsym(RTLD_NEXT, "clEnqueueWriteBuffer"))) {
        fprintf(stderr, "oclgrind-shim: no clEnqueueWriteBuffer after the shim\n");
        abort();
    }
    return f;
}

/* Each work-item copies a chunk of CHUNK units (4-byte words, or bytes when unaligned): the
 * interpreter pays per work-item as well as per instruction. */
#define CHUNK 1024
static const char *const source =
    "#define COPY(NAME, T)                                                                 \\\n"
    "__kernel void NAME(__global const T *s, const ulong so, __global T *d, const ulong do_, \\\n"
    "                   const ulong n) {                                                   \\\n"
    "    const ulong i0 = get_global_id(0) * 1024, i1 = min(n, i0 + 1024);                \\\n"
    "    for (ulong i = i0; i < i1; i++) d[do_ + i] = s[so + i];                           \\\n"
    "}\n"
    "COPY(shim_copy4, uint)\n"
    "COPY(shim_copy1, uchar)\n";

static struct {
    cl_context ctx;
    cl_kernel copy4, copy1;
} cache[64];
static int n_cache;

/* The copy kernels of the queue's context, built on first use. */
static int kernels(cl_command_queue q, cl_kernel *k4, cl_kernel *k1) {
    cl_context ctx;
    cl_device_id dev;
    if (clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof ctx, &ctx, NULL) != CL_SUCCESS ||
        clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL) != CL_SUCCESS)
        return -1;
    for (int i = 0; i < n_cache; i++)
        if (cache[i].ctx == ctx) {
            *k4 = cache[i].copy4, *k1 = cache[i].copy1;
            return 0;
        }
    if (n_cache == (int)(sizeof cache / sizeof *cache)) return -1;
    cl_int s;
    const char *src = source;
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, &s);
    if (s != CL_SUCCESS || clBuildProgram(p, 1, &dev, "", NULL, NULL) != CL_SUCCESS) return -1;
    cache[n_cache].ctx = ctx;
    cache[n_cache].copy4 = clCreateKernel(p, "shim_copy4", &s);
    if (s != CL_SUCCESS) return -1;
    cache[n_cache].copy1 = clCreateKernel(p, "shim_copy1", &s);
    if (s != CL_SUCCESS) return -1;
    *k4 = cache[n_cache].copy4, *k1 = cache[n_cache].copy1;
    n_cache++;
    return 0;
}

static cl_int copy_kernel(cl_command_queue q, cl_mem src, size_t so, cl_mem dst, size_t d_o,
                          size_t size, cl_uint nw, const cl_event *wl, cl_event *ev) {
    cl_kernel k4, k1;
    if (kernels(q, &k4, &k1)) {
        fprintf(stderr, "oclgrind-shim: cannot build the copy kernels\n");
        return CL_OUT_OF_RESOURCES;
    }
    const size_t unit = (so | d_o | size) % 4 == 0 ? 4 : 1;
    const cl_kernel k = unit == 4 ? k4 : k1;
    const cl_ulong a = so / unit, b = d_o / unit, n = size / unit;
    const size_t g = (size_t)((n + CHUNK - 1) / CHUNK);
    cl_int s = clSetKernelArg(k, 0, sizeof src, &src);
    if (s == CL_SUCCESS) s = clSetKernelArg(k, 1, sizeof a, &a);
    if (s == CL_SUCCESS) s = clSetKernelArg(k, 2, sizeof dst, &dst);
    if (s == CL_SUCCESS) s = clSetKernelArg(k, 3, sizeof b, &b);
    if (s == CL_SUCCESS) s = clSetKernelArg(k, 4, sizeof n, &n);
    if (s == CL_SUCCESS) s = clEnqueueNDRangeKernel(q, k, 1, NULL, &g, NULL, nw, wl, ev);
    return s;
}

cl_int clReleaseMemObject(cl_mem mem) {
    (void)mem; /* kept: see the top of the file */
    return CL_SUCCESS;
}

cl_int clEnqueueWriteBuffer(cl_command_queue q, cl_mem buf, cl_bool blocking, size_t offset,
                            size_t size, const void *ptr, cl_uint nw, const cl_event *wl,
                            cl_event *ev) {
    size_t whole = 0;
    cl_mem parent = NULL;
    if (size == 0 ||
        clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof whole, &whole, NULL) != CL_SUCCESS ||
        clGetMemObjectInfo(buf, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL) !=
            CL_SUCCESS ||
        (offset == 0 && size == whole && !parent))
        return real_write()(q, buf, blocking, offset, size, ptr, nw, wl, ev);
    cl_context ctx;
    cl_int s = clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof ctx, &ctx, NULL);
    if (s != CL_SUCCESS) return s;
    cl_mem stage = clCreateBuffer(ctx, CL_MEM_READ_WRITE, size, NULL, &s);
    if (s != CL_SUCCESS) return s;
    s = real_write()(q, stage, CL_TRUE, 0, size, ptr, nw, wl, NULL);
    if (s == CL_SUCCESS) s = copy_kernel(q, stage, 0, buf, offset, size, 0, NULL, ev);
    if (s == CL_SUCCESS && blocking) s = clFinish(q);
    return s;
}

cl_int clEnqueueFillBuffer(cl_command_queue q, cl_mem buf, const void *pattern, size_t psize,
                           size_t offset, size_t size, cl_uint nw, const cl_event *wl,
                           cl_event *ev) {
    unsigned char *h = psize && size % psize == 0 ? malloc(size ? size : 1) : NULL;
    if (!h) return CL_INVALID_VALUE;
    for (size_t i = 0; i < size; i += psize) memcpy(h + i, pattern, psize);
    cl_int s = clEnqueueWriteBuffer(q, buf, CL_TRUE, offset, size, h, nw, wl, ev);
    free(h);
    return s;
}

cl_int clEnqueueCopyBuffer(cl_command_queue q, cl_mem src, cl_mem dst, size_t so, size_t d_o,
                           size_t size, cl_uint nw, const cl_event *wl, cl_event *ev) {
    return copy_kernel(q, src, so, dst, d_o, size, nw, wl, ev);
}
