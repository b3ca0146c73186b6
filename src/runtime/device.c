#include "ramp/device.h"

#include <stdlib.h>
#include <string.h>

#define RC_MAX_PLATFORMS 16
#define RC_MAX_DEVICES 64

const char *rc_device_type_name(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static int info_str(cl_device_id d, cl_device_info what, char *buf, size_t n, const char *name,
                    rc_err *e) {
    cl_int s = clGetDeviceInfo(d, what, n, buf, NULL);
    if (s != CL_SUCCESS) return rc_err_cl(e, "clGetDeviceInfo", s, "%s", name);
    buf[n - 1] = '\0';
    return 0;
}

#define INFO(d, what, var, e)                                                                     \
    do {                                                                                          \
        cl_int s_ = clGetDeviceInfo(d, what, sizeof(var), &(var), NULL);                          \
        if (s_ != CL_SUCCESS) return rc_err_cl(e, "clGetDeviceInfo", s_, "%s", #what);            \
    } while (0)

static int describe(cl_platform_id p, cl_device_id d, int index, rc_device_desc *out, rc_err *e) {
    memset(out, 0, sizeof *out);
    out->index = index;
    out->platform = p;
    out->device = d;
    cl_int s = clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof out->platform_name,
                                 out->platform_name, NULL);
    if (s == CL_SUCCESS)
        s = clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof out->platform_version,
                              out->platform_version, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clGetPlatformInfo", s, "platform of device %d", index);
    if (info_str(d, CL_DEVICE_NAME, out->name, sizeof out->name, "CL_DEVICE_NAME", e) ||
        info_str(d, CL_DEVICE_VENDOR, out->vendor, sizeof out->vendor, "CL_DEVICE_VENDOR", e) ||
        info_str(d, CL_DRIVER_VERSION, out->driver_version, sizeof out->driver_version,
                 "CL_DRIVER_VERSION", e) ||
        info_str(d, CL_DEVICE_OPENCL_C_VERSION, out->c_version, sizeof out->c_version,
                 "CL_DEVICE_OPENCL_C_VERSION", e))
        return -1;
    INFO(d, CL_DEVICE_TYPE, out->type, e);
    INFO(d, CL_DEVICE_MAX_COMPUTE_UNITS, out->compute_units, e);
    INFO(d, CL_DEVICE_GLOBAL_MEM_SIZE, out->global_mem, e);
    INFO(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, out->max_alloc, e);
    INFO(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, out->max_work_group, e);
    cl_uint align_bits = 0;
    INFO(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, align_bits, e);
    out->base_addr_align = align_bits / 8 ? align_bits / 8 : 1;
    cl_device_fp_config fp64 = 0;
    INFO(d, CL_DEVICE_DOUBLE_FP_CONFIG, fp64, e);
    out->fp64 = fp64 != 0;
    size_t ext_len = 0;
    s = clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len);
    if (s != CL_SUCCESS) return rc_err_cl(e, "clGetDeviceInfo", s, "CL_DEVICE_EXTENSIONS size");
    char *ext = calloc(ext_len + 1, 1);
    if (!ext) return rc_err_set(e, "out of host memory reading device extensions");
    s = clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL);
    if (s != CL_SUCCESS) {
        free(ext);
        return rc_err_cl(e, "clGetDeviceInfo", s, "CL_DEVICE_EXTENSIONS");
    }
    out->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    free(ext);
    INFO(d, CL_DEVICE_LOCAL_MEM_SIZE, out->local_mem, e);
    cl_device_local_mem_type lmt = CL_GLOBAL;
    INFO(d, CL_DEVICE_LOCAL_MEM_TYPE, lmt, e);
    out->local_mem_dedicated = lmt == CL_LOCAL;
    INFO(d, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, out->vector_width_float, e);
    return 0;
}

const char *rc_device_class_name(rc_device_class c) { return c == RC_CLASS_GPU ? "gpu" : "cpu"; }

rc_device_class rc_device_class_natural(const rc_device_desc *d) {
    if (d->type & CL_DEVICE_TYPE_GPU) return RC_CLASS_GPU;
    if (d->type & CL_DEVICE_TYPE_CPU) return RC_CLASS_CPU;
    /* accelerators and custom devices: by what their memory and work-groups look like */
    return d->local_mem_dedicated && d->max_work_group >= 256 ? RC_CLASS_GPU : RC_CLASS_CPU;
}

int rc_device_class_choose(const rc_device_desc *d, rc_device_class *out, int *forced, rc_err *e) {
    const char *env = getenv("RAMP_CL_PATH");
    *forced = env && *env;
    *out = rc_device_class_natural(d);
    if (!*forced) return 0;
    if (strcmp(env, "cpu") == 0)
        *out = RC_CLASS_CPU;
    else if (strcmp(env, "gpu") == 0)
        *out = RC_CLASS_GPU;
    else
        return rc_err_set(e, "RAMP_CL_PATH=%s: expected cpu or gpu", env);
    return 0;
}

int rc_devices_enumerate(rc_device_desc **out, int *count, rc_err *e) {
    *out = NULL;
    *count = 0;
    cl_platform_id plats[RC_MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int s = clGetPlatformIDs(RC_MAX_PLATFORMS, plats, &np);
    if (s == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (s == CL_SUCCESS && np == 0))
        return rc_err_set(e, "no OpenCL platform found: install an OpenCL driver (ICD), e.g. "
                             "`apt-get install pocl-opencl-icd` for CPUs");
    if (s != CL_SUCCESS) return rc_err_cl(e, "clGetPlatformIDs", s, "listing platforms");
    if (np > RC_MAX_PLATFORMS) np = RC_MAX_PLATFORMS;
    rc_device_desc *list = calloc(RC_MAX_DEVICES, sizeof *list);
    if (!list) return rc_err_set(e, "out of host memory listing devices");
    int n = 0;
    for (cl_uint p = 0; p < np && n < RC_MAX_DEVICES; p++) {
        cl_device_id devs[RC_MAX_DEVICES];
        cl_uint nd = 0;
        s = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, RC_MAX_DEVICES, devs, &nd);
        if (s == CL_DEVICE_NOT_FOUND) continue; /* a platform with no device is not an error */
        if (s != CL_SUCCESS) {
            free(list);
            return rc_err_cl(e, "clGetDeviceIDs", s, "platform %u", p);
        }
        if (nd > RC_MAX_DEVICES) nd = RC_MAX_DEVICES;
        for (cl_uint d = 0; d < nd && n < RC_MAX_DEVICES; d++) {
            if (describe(plats[p], devs[d], n, &list[n], e)) {
                free(list);
                return -1;
            }
            n++;
        }
    }
    if (n == 0) {
        free(list);
        return rc_err_set(e, "OpenCL platforms exist but none has a device: install an OpenCL "
                             "driver (ICD) for your hardware, e.g. pocl-opencl-icd for CPUs");
    }
    *out = list;
    *count = n;
    return 0;
}

void rc_device_print(FILE *f, const rc_device_desc *d) {
    fprintf(f, "[%d] %s\n", d->index, d->name);
    fprintf(f, "    platform:        %s (%s)\n", d->platform_name, d->platform_version);
    fprintf(f, "    type:            %s\n", rc_device_type_name(d->type));
    fprintf(f, "    vendor:          %s\n", d->vendor);
    fprintf(f, "    compute units:   %u\n", d->compute_units);
    fprintf(f, "    global memory:   %.2f GiB (largest buffer %.2f GiB)\n",
            (double)d->global_mem / (1024.0 * 1024 * 1024),
            (double)d->max_alloc / (1024.0 * 1024 * 1024));
    fprintf(f, "    max work-group:  %zu\n", d->max_work_group);
    fprintf(f, "    OpenCL C:        %s\n", d->c_version);
    fprintf(f, "    driver:          %s\n", d->driver_version);
    fprintf(f, "    local memory:    %llu KiB (%s)\n", (unsigned long long)d->local_mem / 1024,
            d->local_mem_dedicated ? "dedicated" : "in global memory");
    fprintf(f, "    fp16: %s, fp64: %s\n", d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
    rc_device_class cls;
    int forced;
    rc_err e;
    if (rc_device_class_choose(d, &cls, &forced, &e))
        fprintf(f, "    class:           %s (%s)\n", rc_device_class_name(cls), e.msg);
    else if (forced && cls != rc_device_class_natural(d))
        fprintf(f, "    class:           %s (set by RAMP_CL_PATH; by its properties %s)\n",
                rc_device_class_name(cls), rc_device_class_name(rc_device_class_natural(d)));
    else
        fprintf(f, "    class:           %s\n", rc_device_class_name(cls));
}

/* OpenCL C 1.2 is the floor: every kernel is written against it. */
static int c_version_ok(const char *v) {
    int major = 0, minor = 0;
    if (sscanf(v, "OpenCL C %d.%d", &major, &minor) != 2) return 0;
    return major > 1 || (major == 1 && minor >= 2);
}

int rc_device_open(rc_ctx *ctx, int index, rc_err *e) {
    memset(ctx, 0, sizeof *ctx);
    rc_device_desc *list;
    int n;
    if (rc_devices_enumerate(&list, &n, e)) return -1;
    if (index < 0 || index >= n) {
        char names[4096];
        size_t off = 0;
        for (int i = 0; i < n && off < sizeof names; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s[%d] %s (%s)",
                                    i ? ", " : "", i, list[i].name,
                                    rc_device_type_name(list[i].type));
        rc_err_set(e, "no OpenCL device with index %d; %d device%s: %s", index, n,
                   n == 1 ? " exists" : "s exist", names);
        free(list);
        return -1;
    }
    ctx->dev = list[index];
    free(list);
    int forced;
    if (rc_device_class_choose(&ctx->dev, &ctx->cls, &forced, e)) return -1;
    if (!c_version_ok(ctx->dev.c_version))
        return rc_err_set(e, "device [%d] %s supports only %s; ramp-cl needs OpenCL C 1.2", index,
                          ctx->dev.name, ctx->dev.c_version);
    cl_int s;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->dev.platform,
                                     0};
    ctx->context = clCreateContext(props, 1, &ctx->dev.device, NULL, NULL, &s);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clCreateContext", s, "device [%d] %s", index, ctx->dev.name);
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->dev.device, 0, &s);
    if (s != CL_SUCCESS) {
        rc_err_cl(e, "clCreateCommandQueue", s, "device [%d] %s", index, ctx->dev.name);
        rc_device_close(ctx);
        return -1;
    }
    return 0;
}

void rc_device_close(rc_ctx *ctx) {
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    ctx->queue = NULL;
    ctx->context = NULL;
}

int rc_ctx_finish(rc_ctx *ctx, rc_err *e) {
    cl_int s = clFinish(ctx->queue);
    if (s != CL_SUCCESS) return rc_err_cl(e, "clFinish", s, "waiting for queued kernels");
    return 0;
}

int rc_buffer_create(rc_ctx *ctx, size_t bytes, const char *what, cl_mem *out, rc_err *e) {
    cl_int s;
    if (bytes > ctx->dev.max_alloc)
        return rc_err_set(e, "buffer %s needs %zu bytes, more than the device's largest "
                             "allocation (%llu bytes)",
                          what, bytes, (unsigned long long)ctx->dev.max_alloc);
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &s);
    if (s != CL_SUCCESS) return rc_err_cl(e, "clCreateBuffer", s, "%s, %zu bytes", what, bytes);
    ctx->bytes_created += bytes;
    return 0;
}

int rc_buffer_write(rc_ctx *ctx, cl_mem buf, size_t offset, size_t bytes, const void *src,
                    const char *what, rc_err *e) {
    cl_int s = clEnqueueWriteBuffer(ctx->queue, buf, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueWriteBuffer", s, "%s, %zu bytes at %zu", what, bytes, offset);
    return 0;
}

int rc_buffer_copy(rc_ctx *ctx, cl_mem src, cl_mem dst, size_t bytes, const char *what,
                   rc_err *e) {
    if (bytes == 0) return 0;
    cl_int s = clEnqueueCopyBuffer(ctx->queue, src, dst, 0, 0, bytes, 0, NULL, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueCopyBuffer", s, "%s, %zu bytes", what, bytes);
    return 0;
}

int rc_buffer_read(rc_ctx *ctx, cl_mem buf, size_t offset, size_t bytes, void *dst,
                   const char *what, rc_err *e) {
    cl_int s = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueReadBuffer", s, "%s, %zu bytes at %zu", what, bytes, offset);
    return 0;
}
