#ifndef DEPLOYCTL_CAGENTSUPPORT_H
#define DEPLOYCTL_CAGENTSUPPORT_H
#include <spawn.h>
#include <sys/types.h>

/* GNU extensions Swift's Glibc module does not import. */
int deployctl_pipe_cloexec(int fds[2]);
int deployctl_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/* Closes every descriptor from `lowest` up in the child, so hooks inherit nothing of the agent's. */
int deployctl_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowest);
/* Copies `length` bytes in the kernel (copy_file_range); returns bytes copied or -1. */
long long deployctl_copy_range(int in, int out, long long length);
/* openat2(2): `resolve` is a RESOLVE_* mask; EAGAIN/EINTR are retried. Returns a descriptor or -1 (errno set). */
int deployctl_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve);
int deployctl_o_path(void);
int deployctl_o_nofollow(void);
int deployctl_o_directory(void);
/* Symlinks resolve as if the directory were `/`: nothing leads out of it. */
unsigned long long deployctl_resolve_in_root(void);
/* Any step that would leave the directory (`..`, an absolute or escaping symlink) fails with EXDEV. */
unsigned long long deployctl_resolve_beneath(void);
unsigned long long deployctl_resolve_no_symlinks(void);
/* PR_SET_CHILD_SUBREAPER: hook processes that leave their group are re-parented to us, not to init. */
int deployctl_become_subreaper(void);
/* Forks a watchdog that kills process group `group` (TERM, then KILL after `grace_seconds`) if this process dies
   first (PR_SET_PDEATHSIG). Kill it with SIGKILL once the hook has ended. Returns its pid or -1. */
pid_t deployctl_spawn_watchdog(pid_t group, int grace_seconds);
/* A descriptor that polls readable when `pid` (our child) exits; -1 where the kernel lacks pidfd_open. */
int deployctl_pidfd_open(pid_t pid);
/* malloc_trim(0): gives freed heap back to the system; 1 when memory was released. */
int deployctl_malloc_trim(void);
#endif
