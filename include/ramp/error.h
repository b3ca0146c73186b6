/* Error reporting: one message per failure, carried up to the caller that reports it.
 *
 * Functions that can fail take an rc_err* and return 0 on success, -1 on failure. The innermost
 * failing call writes the message; callers may add context in front with rc_err_prefix. main()
 * prints the message as one line on stderr and exits non-zero. */
#ifndef RAMP_ERROR_H
#define RAMP_ERROR_H

#include "ramp/cl.h"

#include <stdarg.h>

typedef struct rc_err {
    char msg[8192];
    cl_int cl_status; /* the OpenCL status of a failed OpenCL call, else 0 */
} rc_err;

/* Replace the message. Always returns -1 so that `return rc_err_set(...)` reads naturally. */
int rc_err_set(rc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context ("loading x.yaml: ") to an existing message. Returns -1. */
int rc_err_prefix(rc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rc_err_clear(rc_err *e);

/* Text read from a file (a name, a value) made fit for a one-line message: control characters
 * (C0, DEL and the UTF-8 encoded C1 range) shown as \n, \r, \t or \xNN, and cut with "..." where
 * it would not fit in cap bytes (cap >= 4), never inside a UTF-8 sequence. Returns buf. */
const char *rc_err_text(char *buf, size_t cap, const char *s);

/* Symbolic names of OpenCL and CLBlast status codes, e.g. "CL_OUT_OF_RESOURCES". */
const char *rc_cl_status_name(cl_int status);
const char *rc_clblast_status_name(int status);

/* "CALL failed: NAME (code): context" for a failing OpenCL call. Returns -1. */
int rc_err_cl(rc_err *e, const char *call, cl_int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for a CLBlast routine. Returns -1. */
int rc_err_clblast(rc_err *e, const char *routine, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
