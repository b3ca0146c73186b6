#include "ramp/error.h"

#include <clblast_c.h>
#include <stdio.h>
#include <string.h>

int rc_err_set(rc_err *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->cl_status = 0;
    return -1;
}

int rc_err_prefix(rc_err *e, const char *fmt, ...) {
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t hn = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t old = strlen(e->msg);
    if (hn + old >= sizeof e->msg) old = sizeof e->msg - 1 - hn; /* keep the head, cut the tail */
    memmove(e->msg + hn, e->msg, old);
    memcpy(e->msg, head, hn);
    e->msg[hn + old] = '\0';
    return -1;
}

void rc_err_clear(rc_err *e) {
    e->msg[0] = '\0';
    e->cl_status = 0;
}

/* The next unit of rc_err_text at p: an escaped control character or a character's bytes as
 * they are (at most 8 bytes). Sets *used to the bytes of p it stands for. */
static size_t text_unit(const unsigned char *p, char *unit, size_t *used) {
    static const char named[] = {'\n', 'n', '\r', 'r', '\t', 't'};
    *used = 1;
    for (size_t i = 0; i < sizeof named; i += 2)
        if (*p == named[i]) return (size_t)snprintf(unit, 8, "\\%c", named[i + 1]);
    if (*p < 0x20 || *p == 0x7f) return (size_t)snprintf(unit, 8, "\\x%02x", *p);
    if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
        *used = 2;
        return (size_t)snprintf(unit, 9, "\\x%02x\\x%02x", p[0], p[1]);
    }
    size_t n = 0;
    unit[n++] = (char)*p;
    for (; n < 4 && (p[n] & 0xc0) == 0x80; n++) unit[n] = (char)p[n];
    *used = n;
    return n;
}

const char *rc_err_text(char *buf, size_t cap, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    char unit[9];
    size_t used, total = 0;
    for (const unsigned char *q = p; *q; q += used) total += text_unit(q, unit, &used);
    size_t room = total < cap ? cap - 1 : cap - 4, len = 0; /* cut: "..." follows */
    for (; *p; p += used) {
        size_t n = text_unit(p, unit, &used);
        if (len + n > room) break;
        memcpy(buf + len, unit, n);
        len += n;
    }
    strcpy(buf + len, total < cap ? "" : "...");
    return buf;
}

const char *rc_cl_status_name(cl_int status) {
    switch (status) {
#define N(x) case x: return #x;
    N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE) N(CL_COMPILER_NOT_AVAILABLE)
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES) N(CL_OUT_OF_HOST_MEMORY)
    N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_MEM_COPY_OVERLAP) N(CL_IMAGE_FORMAT_MISMATCH)
    N(CL_IMAGE_FORMAT_NOT_SUPPORTED) N(CL_BUILD_PROGRAM_FAILURE) N(CL_MAP_FAILURE)
    N(CL_MISALIGNED_SUB_BUFFER_OFFSET) N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    N(CL_COMPILE_PROGRAM_FAILURE) N(CL_LINKER_NOT_AVAILABLE) N(CL_LINK_PROGRAM_FAILURE)
    N(CL_DEVICE_PARTITION_FAILED) N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    N(CL_INVALID_VALUE) N(CL_INVALID_DEVICE_TYPE) N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE)
    N(CL_INVALID_CONTEXT) N(CL_INVALID_QUEUE_PROPERTIES) N(CL_INVALID_COMMAND_QUEUE)
    N(CL_INVALID_HOST_PTR) N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    N(CL_INVALID_IMAGE_SIZE) N(CL_INVALID_SAMPLER) N(CL_INVALID_BINARY) N(CL_INVALID_BUILD_OPTIONS)
    N(CL_INVALID_PROGRAM) N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME)
    N(CL_INVALID_KERNEL_DEFINITION) N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX)
    N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE) N(CL_INVALID_KERNEL_ARGS)
    N(CL_INVALID_WORK_DIMENSION) N(CL_INVALID_WORK_GROUP_SIZE) N(CL_INVALID_WORK_ITEM_SIZE)
    N(CL_INVALID_GLOBAL_OFFSET) N(CL_INVALID_EVENT_WAIT_LIST) N(CL_INVALID_EVENT)
    N(CL_INVALID_OPERATION) N(CL_INVALID_GL_OBJECT) N(CL_INVALID_BUFFER_SIZE)
    N(CL_INVALID_MIP_LEVEL) N(CL_INVALID_GLOBAL_WORK_SIZE) N(CL_INVALID_PROPERTY)
    N(CL_INVALID_IMAGE_DESCRIPTOR) N(CL_INVALID_COMPILER_OPTIONS) N(CL_INVALID_LINKER_OPTIONS)
    N(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef N
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL status";
    }
}

const char *rc_clblast_status_name(int status) {
    /* CLBlast reuses the OpenCL codes above -1000 and adds its own below. */
    if (status > -1000) return rc_cl_status_name(status);
    switch ((CLBlastStatusCode)status) {
#define N(x) case x: return #x;
    N(CLBlastNotImplemented) N(CLBlastInvalidMatrixA) N(CLBlastInvalidMatrixB)
    N(CLBlastInvalidMatrixC) N(CLBlastInvalidVectorX) N(CLBlastInvalidVectorY)
    N(CLBlastInvalidDimension) N(CLBlastInvalidLeadDimA) N(CLBlastInvalidLeadDimB)
    N(CLBlastInvalidLeadDimC) N(CLBlastInvalidIncrementX) N(CLBlastInvalidIncrementY)
    N(CLBlastInsufficientMemoryA) N(CLBlastInsufficientMemoryB) N(CLBlastInsufficientMemoryC)
    N(CLBlastInsufficientMemoryX) N(CLBlastInsufficientMemoryY) N(CLBlastInsufficientMemoryTemp)
    N(CLBlastInvalidBatchCount) N(CLBlastInvalidOverrideKernel) N(CLBlastMissingOverrideParameter)
    N(CLBlastInvalidLocalMemUsage) N(CLBlastNoHalfPrecision) N(CLBlastNoDoublePrecision)
    N(CLBlastInvalidVectorScalar) N(CLBlastInsufficientMemoryScalar) N(CLBlastDatabaseError)
    N(CLBlastUnknownError) N(CLBlastUnexpectedError)
#undef N
    default: return "unknown CLBlast status";
    }
}

static int err_call(rc_err *e, const char *kind, const char *call, int status, const char *name,
                    const char *fmt, va_list ap) {
    char ctx[1024];
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    return rc_err_set(e, "%s%s failed: %s (%d)%s%s", kind, call, name, status, ctx[0] ? ": " : "",
                      ctx);
}

int rc_err_cl(rc_err *e, const char *call, cl_int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_call(e, "", call, status, rc_cl_status_name(status), fmt, ap);
    va_end(ap);
    e->cl_status = status;
    return -1;
}

int rc_err_clblast(rc_err *e, const char *routine, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_call(e, "CLBlast ", routine, status, rc_clblast_status_name(status), fmt, ap);
    va_end(ap);
    return -1;
}
