/*
 * The machine's latency floor: a UDP echo server in C with no runtime at all. It answers each datagram
 * with itself (QR bit set), like test/bench/echo.ts. test/bench/latency.ts compiles it with
 * `gcc -O2` into a temp dir (skipped when gcc is missing).
 *
 *   echo PORT [block|epoll|spin]
 *
 * block (default): blocking recvfrom/sendto, the least a server can do.
 * epoll: non-blocking socket, epoll_wait, then recvfrom until EAGAIN: the shape of libuv's loop (Node),
 *        without the runtime.
 * spin:  non-blocking recvfrom in a busy loop, so the core never goes idle while packets come; after
 *        200 ms without one it blocks in poll (it then costs nothing while other servers are measured).
 *        Against block, it shows what waking an idle vCPU costs on the server side.
 * Prints "listening PORT" when bound. Loopback only (binds 127.0.0.1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int answer(int fd) {
  unsigned char buf[4096];
  struct sockaddr_in from;
  socklen_t len = sizeof from;
  ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
  if (n < 0) return -1;
  if (n >= 3) buf[2] |= 0x80;
  sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  const char *mode = argc > 2 ? argv[2] : "block";
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
  socklen_t alen = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &alen);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  if (strcmp(mode, "block") == 0) {
    for (;;) if (answer(fd) < 0 && errno != EINTR) { perror("recvfrom"); return 1; }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (strcmp(mode, "epoll") == 0) {
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    for (;;) {
      struct epoll_event got[8];
      int k = epoll_wait(ep, got, 8, -1);
      if (k < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
      if (k > 0) while (answer(fd) == 0) {}
    }
  }
  if (strcmp(mode, "spin") == 0) {
    double last = now_ms();
    for (;;) {
      if (answer(fd) == 0) { last = now_ms(); continue; }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) { perror("recvfrom"); return 1; }
      if (now_ms() - last > 200) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        poll(&p, 1, -1);
        last = now_ms();
      }
    }
  }
  fprintf(stderr, "unknown mode %s (block, epoll, spin)\n", mode);
  return 2;
}
