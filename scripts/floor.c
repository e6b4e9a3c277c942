/* floor.c: the cheapest keep-alive HTTP/1.1 server this kernel allows, as a
 * floor to hold servelab's reactors against (scripts/floor-vs-reactors.sh)
 * and a server to drive when comparing load generators
 * (scripts/load-vs-wrk.sh).
 *
 * One thread, one level-triggered epoll instance, non-blocking sockets. It
 * parses nothing: a request is counted when the blank line that ends its
 * head (CR LF CR LF) goes by, even split across reads, and each request is
 * answered with the same fixed bytes; the answers to one read leave in one
 * write, so N pipelined requests cost one read and one write. What it
 * leaves out is what makes it a floor, not a server: no Date header, no
 * routing, no bodies (a request body is scanned as if it were a head), and
 * a client that does not read its answers (a short write) is disconnected.
 *
 * Build: gcc -O2 -o target/floor scripts/floor.c
 * Usage: floor [PORT]   listens on 127.0.0.1:PORT (default 9200) until a
 *        signal ends it; SIGTERM's default action is its shutdown.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The answer to every request: 66 bytes, servelab's response less its Date. */
static const char ANSWER[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 2\r\n"
    "\r\n"
    "OK";
#define ANSWER_LEN (sizeof ANSWER - 1)

/* Descriptors past this are closed at once (the table below is indexed by fd). */
#define MAX_FD (1 << 20)
/* Per connection: how much of CR LF CR LF the bytes so far end with (0-3). */
static unsigned char matched[MAX_FD];

static char in[64 * 1024];
static char out[1024 * ANSWER_LEN];

static void drop(int epoll, int fd) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Writes all of out[0..len); 0 if the client did not take it at once. */
static int send_all(int fd, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, out + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        done += (size_t)n;
    }
    return 1;
}

/* Reads what arrived on fd and answers every request head it completes. */
static void serve(int epoll, int fd) {
    ssize_t n = read(fd, in, sizeof in);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(epoll, fd);
        return;
    }
    unsigned state = matched[fd];
    size_t len = 0;
    for (ssize_t i = 0; i < n; i++) {
        char c = in[i];
        /* The state machine of CR LF CR LF: an LF moves on after a CR, a CR
         * after an LF (or at the start), anything else starts over. */
        if (c == '\r')
            state = (state == 2) ? 3 : 1;
        else if (c == '\n' && (state == 1 || state == 3))
            state++;
        else
            state = 0;
        if (state == 4) {
            state = 0;
            if (len == sizeof out) {
                if (!send_all(fd, len)) {
                    drop(epoll, fd);
                    return;
                }
                len = 0;
            }
            memcpy(out + len, ANSWER, ANSWER_LEN);
            len += ANSWER_LEN;
        }
    }
    matched[fd] = (unsigned char)state;
    if (len && !send_all(fd, len))
        drop(epoll, fd);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9200;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: floor [PORT]\n");
        return 2;
    }
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 4096)) {
        perror("floor: listen");
        return 1;
    }
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    if (epoll < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event)) {
        perror("floor: epoll");
        return 1;
    }
    struct epoll_event ready[256];
    for (;;) {
        int count = epoll_wait(epoll, ready, 256, -1);
        for (int i = 0; i < count; i++) {
            int fd = ready[i].data.fd;
            if (fd != listener) {
                serve(epoll, fd);
                continue;
            }
            int conn;
            while ((conn = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                struct epoll_event ce = {.events = EPOLLIN, .data.fd = conn};
                if (conn >= MAX_FD ||
                    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
                    epoll_ctl(epoll, EPOLL_CTL_ADD, conn, &ce)) {
                    close(conn);
                    continue;
                }
                matched[conn] = 0;
            }
        }
    }
}
