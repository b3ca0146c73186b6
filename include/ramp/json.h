/* A small strict JSON reader for the files ramp-cl reads back: the safetensors header, the lines
 * of metrics.jsonl and the eval-*.json reports; and the writer all three are made with.
 *
 * There is no document tree: the caller knows the schema and walks the text value by value with
 * a cursor (expect '{', read a key, ...). The grammar is RFC 8259's, checked exactly: no
 * trailing commas, no leading zeros, strings must be valid UTF-8 without control characters and
 * without \u0000 (they become C strings). Each failure sets one message that names the file and
 * the place, e.g. "m.safetensors: tensor a: header byte 30: expected ',' or '}', found 'x'" or
 * "run/metrics.jsonl:3:17: train_loss: expected a number, found '\"'". */
#ifndef RAMP_JSON_H
#define RAMP_JSON_H

#include "ramp/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rc_json {
    const unsigned char *start, *p, *end; /* the text; p is the next byte to read */
    const char *path;                     /* the file, first in every message */
    /* Where a message says the failure is:
     *   line > 0:  "PATH:LINE:COLUMN: [CONTEXT: ]WHAT", the text starting at that line of the
     *              file (1 for a whole file, N for the Nth line of a JSON Lines file);
     *   line == 0: "PATH: [CONTEXT: ]UNIT OFFSET: WHAT", the offset counted from 0. */
    long line;
    const char *unit;     /* "byte" unless set, e.g. "header byte" */
    const char *context;  /* NULL or what is being read, e.g. "tensor fc.weight" */
    const char *end_name; /* in "found the end of ...": "the input" unless set */
    int nonfinite;        /* also accept nan, inf, NaN and Infinity (with a sign) as numbers */
    rc_err *e;
} rc_json;

/* A cursor at the start of the len bytes at text, with the defaults above. */
void rc_json_init(rc_json *j, const void *text, size_t len, const char *path, rc_err *e);

/* Set the message for a failure at the cursor. Returns -1. */
int rc_json_error(rc_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "expected WANTED, found 'x'" (or the byte, or the end). Returns -1. */
int rc_json_unexpected(rc_json *j, const char *wanted);

void rc_json_skip_ws(rc_json *j);
/* 1 and consume c if it is the next token, else 0. */
int rc_json_accept(rc_json *j, char c);
int rc_json_expect(rc_json *j, char c);
/* After an element of an object or array: 1 if another follows (the comma is consumed), 0 at
 * the closing bracket (consumed), -1 on anything else. */
int rc_json_more(rc_json *j, char close);
/* 1 and consume the literal null if it is next, else 0. */
int rc_json_null(rc_json *j);

/* A string, unescaped into a new NUL-terminated UTF-8 string the caller frees. */
int rc_json_string(rc_json *j, char **out);
/* An integer that fits int64_t; fractions and exponents are refused. */
int rc_json_int(rc_json *j, int64_t *out);
/* Any number (and the non-finite words where j->nonfinite is set). */
int rc_json_number(rc_json *j, double *out);
/* Step over one value of any kind, checking it as strictly as the readers above. */
int rc_json_skip_value(rc_json *j);

/* 1 if s is well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF). */
int rc_json_utf8_valid(const char *s);

/* ---- writing --------------------------------------------------------------------------------- */

/* JSON text built in memory; the caller lays it out (rc_json_put for punctuation and spacing) and
 * formats its numbers (rc_json_putf), so each file keeps its own look. After a failed allocation
 * further output is dropped and oom is set: check it once at the end. Zero-initialise. */
typedef struct rc_json_buf {
    char *p; /* NUL-terminated once anything was put */
    size_t len, cap;
    int oom;
} rc_json_buf;

/* Verbatim text. */
void rc_json_put(rc_json_buf *b, const char *text);
void rc_json_put_bytes(rc_json_buf *b, const void *bytes, size_t n);
/* A string literal (RFC 8259): '"' and '\\' escaped, control characters as \b \f \n \r \t or
 * \u00xx, everything else (UTF-8) as it is. The reader above rejects invalid UTF-8, so callers
 * whose strings may hold it check with rc_json_utf8_valid first. */
void rc_json_put_string(rc_json_buf *b, const char *s);
void rc_json_put_int(rc_json_buf *b, long long v);
/* printf into the text: for numbers in the caller's format ("%.6f"). */
void rc_json_putf(rc_json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A number in the caller's format (one conversion of a double, "%.6f"), or null when it is NaN
 * or infinite: JSON has no such numbers. */
void rc_json_put_number(rc_json_buf *b, const char *fmt, double v);
void rc_json_buf_free(rc_json_buf *b);

#endif
