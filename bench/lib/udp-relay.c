/*
 * udp-relay: the smallest UDP relay that works like one of baton's UDP proxies for a single client:
 * one listening socket, one socket connected to the upstream, one epoll loop, one thread. Used by
 * bench/udp-timing to show how single-flow latency on a 2-vCPU machine follows the relay's
 * timing rather than its cost.
 *
 *   udp-relay LISTEN_PORT UPSTREAM_PORT WORK_NS
 *
 * WORK_NS: nanoseconds of busy work done for every datagram, between reading it and sending it on
 * (standing in for what a heavier relay does per datagram). Loopback only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void work(long ns) {
    long end = now_ns() + ns;
    while (ns > 0 && now_ns() < end) {
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: udp-relay LISTEN_PORT UPSTREAM_PORT WORK_NS\n");
        return 2;
    }
    long work_ns = atol(argv[3]);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int listener = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_port = htons(atoi(argv[1]));
    if (bind(listener, (struct sockaddr *) &addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    int upstream = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_port = htons(atoi(argv[2]));
    if (connect(upstream, (struct sockaddr *) &addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = listener;
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    ev.data.fd = upstream;
    epoll_ctl(ep, EPOLL_CTL_ADD, upstream, &ev);

    static char buf[65536];
    struct sockaddr_in client;
    socklen_t client_len = sizeof client;
    struct epoll_event ready[16];
    for (;;) {
        int n = epoll_wait(ep, ready, 16, -1);
        for (int i = 0; i < n; i++) {
            if (ready[i].data.fd == listener) {
                client_len = sizeof client;
                ssize_t len = recvfrom(listener, buf, sizeof buf, 0, (struct sockaddr *) &client, &client_len);
                if (len >= 0) {
                    work(work_ns);
                    send(upstream, buf, len, 0);
                }
            } else {
                ssize_t len = recv(upstream, buf, sizeof buf, 0);
                if (len >= 0) {
                    work(work_ns);
                    sendto(listener, buf, len, 0, (struct sockaddr *) &client, client_len);
                }
            }
        }
    }
}
