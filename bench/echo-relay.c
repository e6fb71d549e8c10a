// The C floor for bench/echo-floor.mjs: a plain TCP <-> pty relay with no SSH, one process per
// connection as sshd has, poll(2) and read/write with a stack buffer (no allocation per read).
// Listens on 127.0.0.1:<port>, accepts one connection at a time, forkpty()s the program as
// <uid>:<gid> and copies bytes both ways until either side closes.
// Runs at nice <TG_BENCH_NICE, default -5> (the gateway's priority); the program at the start priority.
// Usage: echo-relay <port> <uid> <gid> <program> [args...]   (prints "listening on <port>")
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(int fd, const char *b, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    b += w;
    n -= w;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  signal(SIGCHLD, SIG_IGN);
  int start = getpriority(PRIO_PROCESS, 0);
  setpriority(PRIO_PROCESS, 0, getenv("TG_BENCH_NICE") ? atoi(getenv("TG_BENCH_NICE")) : -5);
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 16)) return perror("listen"), 1;
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("listening on %d\n", ntohs(a.sin_port));
  fflush(stdout);
  for (;;) {
    int s = accept(ls, NULL, NULL);
    if (s < 0) continue;
    if (fork() != 0) {
      close(s);
      continue;
    }
    close(ls);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    int m;
    pid_t pid = forkpty(&m, NULL, NULL, &ws);
    if (pid == 0) {
      gid_t g = atoi(argv[3]);
      if (setgroups(1, &g) || setgid(g) || setuid(atoi(argv[2]))) _exit(127);
      signal(SIGCHLD, SIG_DFL);
      setpriority(PRIO_PROCESS, 0, start);
      setenv("TERM", "xterm-256color", 1);
      execv(argv[4], argv + 4);
      _exit(127);
    }
    struct pollfd p[2] = {{.fd = s, .events = POLLIN}, {.fd = m, .events = POLLIN}};
    char b[65536];
    for (;;) {
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[0].revents) {
        ssize_t n = read(s, b, sizeof b);
        if (n <= 0 || put(m, b, n)) break;
      }
      if (p[1].revents) {
        ssize_t n = read(m, b, sizeof b);
        if (n <= 0 || put(s, b, n)) break;
      }
    }
    kill(pid, SIGHUP);
    _exit(0);
  }
}
