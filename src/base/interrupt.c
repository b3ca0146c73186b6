/* Signal handling for long runs (see ramp/interrupt.h). The two flags below are the only
 * process-wide mutable state besides the OpenCL context: a signal handler can reach nothing
 * else. */
#include "ramp/interrupt.h"

#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t deferring;

static void on_signal(int sig) {
    if (!deferring || pending_signal) {
        signal(sig, SIG_DFL); /* the second one, or nothing to save: the default action */
        raise(sig);
        return;
    }
    pending_signal = sig;
    static const char msg[] = "\nramp-cl: stopping after this step and writing a checkpoint "
                              "(signal again to stop at once)\n";
    ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)unused;
}

void rc_interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void rc_interrupt_defer(int on) { deferring = on; }

int rc_interrupt_pending(void) { return pending_signal; }

void rc_signals_hold(sigset_t *saved) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, saved);
}

void rc_signals_release(const sigset_t *saved) { sigprocmask(SIG_SETMASK, saved, NULL); }
