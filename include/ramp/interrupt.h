/* SIGINT / SIGTERM during a long run. While training, the first signal only asks the loop to
 * stop after the current step (it then writes a checkpoint and exits 128 + signal: 130 / 143);
 * a second signal, or any signal outside training, ends the process at once. Files are written
 * with signals held (rc_signals_hold), so even an immediate exit never leaves a partial file
 * under a real name. */
#ifndef RAMP_INTERRUPT_H
#define RAMP_INTERRUPT_H

#include <signal.h>

/* Install the handlers (once, from main). */
void rc_interrupt_install(void);
/* Whether the first signal should be deferred to the training loop (1) or end the process (0). */
void rc_interrupt_defer(int on);
/* The signal received while deferring, or 0. */
int rc_interrupt_pending(void);
/* Block SIGINT and SIGTERM around a file write; release delivers what arrived meanwhile. */
void rc_signals_hold(sigset_t *saved);
void rc_signals_release(const sigset_t *saved);

#endif
