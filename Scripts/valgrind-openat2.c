/* Preloaded by Scripts/startup-order.py into the binary it profiles under valgrind 3.19, which does not know the
 * openat2 system call (437) and fails it with ENOSYS, so every hook would fail before it ran and the profile would
 * miss the rest of the deployment. This serves openat2 with a plain openat (ignoring the RESOLVE_* confinement): only
 * for that profile, whose revision is the script's own, without symlinks. Never used by deployctl itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long number, ...) {
    va_list arguments;
    va_start(arguments, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(arguments, long);
    va_end(arguments);
    if (number == SYS_openat2) {
        const struct open_how *how = (const struct open_how *)a[2];
        return openat((int)a[0], (const char *)a[1], (int)how->flags, (mode_t)how->mode);
    }
    static long (*next)(long, ...);
    if (!next) next = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
