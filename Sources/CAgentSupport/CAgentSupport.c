#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include "CAgentSupport.h"

int deployctl_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int deployctl_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int deployctl_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

long long deployctl_copy_range(int in, int out, long long length) {
    long long total = 0;
    while (total < length) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(length - total), 0);
        if (n < 0) return total > 0 ? total : -1;
        if (n == 0) break;
        total += n;
    }
    return total;
}


#include <errno.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

int deployctl_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
    struct open_how how = {0};
    how.flags = (unsigned long long)flags | O_CLOEXEC;
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = resolve;
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    } while (fd < 0 && (errno == EAGAIN || errno == EINTR));
    return (int)fd;
}

int deployctl_o_path(void) { return O_PATH; }
int deployctl_o_nofollow(void) { return O_NOFOLLOW; }
int deployctl_o_directory(void) { return O_DIRECTORY; }
unsigned long long deployctl_resolve_in_root(void) { return RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; }
unsigned long long deployctl_resolve_beneath(void) { return RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; }
unsigned long long deployctl_resolve_no_symlinks(void) { return RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS; }

#include <sys/prctl.h>
#include <time.h>

int deployctl_become_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

pid_t deployctl_spawn_watchdog(pid_t group, int grace_seconds) {
    pid_t parent = getpid();
    sigset_t all, wanted;
    sigfillset(&all);
    sigset_t saved;
    /* Signals stay blocked across fork so the child cannot run a Swift handler before it resets them. */
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = fork();
    if (pid != 0) {
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return pid;
    }
    /* The child: only async-signal-safe calls from here on. */
    syscall(SYS_close_range, 3, ~0U, 0);
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGUSR1);
    prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
    if (getppid() == parent) {
        for (;;) {
            int signal = sigwaitinfo(&wanted, NULL);
            if (signal == SIGUSR1) break;
        }
    }
    /* deployctl is gone: its hook's process group goes too (TERM, then KILL after the grace period). */
    if (kill(-group, SIGTERM) == 0) {
        struct timespec step = {0, 100000000};
        for (int i = 0; i < grace_seconds * 10; i++) {
            if (kill(-group, 0) != 0) _exit(0);
            nanosleep(&step, NULL);
        }
        kill(-group, SIGKILL);
    }
    _exit(0);
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int deployctl_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

#include <malloc.h>

int deployctl_malloc_trim(void) {
    return malloc_trim(0);
}
