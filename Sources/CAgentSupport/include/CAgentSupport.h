#ifndef DEPLOYCTL_CAGENTSUPPORT_H
#define DEPLOYCTL_CAGENTSUPPORT_H
#include <spawn.h>

/* GNU extensions Swift's Glibc module does not import. */
int deployctl_pipe_cloexec(int fds[2]);
int deployctl_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/* Closes every descriptor from `lowest` up in the child, so hooks inherit nothing of the agent's. */
int deployctl_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowest);
/* Copies `length` bytes in the kernel (copy_file_range); returns bytes copied or -1. */
long long deployctl_copy_range(int in, int out, long long length);
/* SIGTERM and SIGINT set a flag instead of ending the process, so the agent can finish its current event. */
void deployctl_install_stop_handler(void);
int deployctl_stop_requested(void);
#endif
