/*
 * web_fetch.c - a minimal HTTP/1.1 GET load client for bench/web that does not copy response
 * bodies into user space: body bytes are dropped in the kernel with recv(MSG_TRUNC) (Linux TCP
 * discards them), so the client costs far less CPU than wrk or curl and the server's sending
 * rate shows. Keep-alive when the response has a Content-Length; a response framed by closing
 * the connection (no Content-Length) is read to EOF and the next request reconnects.
 *
 *   web_fetch HOST PORT PATH ACCEPT CONNECTIONS SECONDS
 *   prints: FETCH <requests> <body bytes> <errors> <seconds>
 *
 * Not built by CMake (speed is not a test, STYLE §11); bench/web compiles it with cc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *path, *accept_hdr;
static int port;
static double seconds;

typedef struct {
    pthread_t t;
    uint64_t requests, bytes, errors;
} worker_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request on fd; returns body bytes, -1 on error; *reuse: keep the connection. */
static int64_t one(int fd, int *reuse)
{
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n\r\n", path,
                     host, accept_hdr);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    char h[16384];
    size_t hl = 0;
    char *end = NULL;
    while (!end) { /* headers: read, then find the blank line */
        ssize_t k = recv(fd, h + hl, sizeof h - 1 - hl, 0);
        if (k <= 0)
            return -1;
        hl += (size_t)k;
        h[hl] = 0;
        end = strstr(h, "\r\n\r\n");
        if (!end && hl >= sizeof h - 1)
            return -1;
    }
    if (strncmp(h, "HTTP/1.1 200", 12) != 0)
        return -1;
    size_t head = (size_t)(end + 4 - h), have = hl - head;
    int64_t len = -1;
    for (char *l = strstr(h, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
        if (strncasecmp(l + 2, "content-length:", 15) == 0)
            len = strtoll(l + 17, NULL, 10);
    *reuse = len >= 0;
    int64_t got = (int64_t)have;
    for (;;) {
        if (len >= 0 && got >= len)
            break;
        size_t want = len >= 0 ? (size_t)(len - got) : (1u << 30);
        ssize_t k = recv(fd, NULL, want > (1u << 30) ? (1u << 30) : want, MSG_TRUNC);
        if (k < 0)
            return -1;
        if (k == 0)
            return len >= 0 ? -1 : got; /* closed: the end of a close-framed body */
        got += k;
    }
    return got;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    double stop = now() + seconds;
    int fd = -1;
    while (now() < stop) {
        if (fd < 0 && (fd = dial()) < 0) {
            w->errors++;
            continue;
        }
        int reuse = 0;
        int64_t b = one(fd, &reuse);
        if (b < 0) {
            w->errors++;
            reuse = 0;
        } else {
            w->requests++;
            w->bytes += (uint64_t)b;
        }
        if (!reuse) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: web_fetch HOST PORT PATH ACCEPT CONNECTIONS SECONDS\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    path = argv[3];
    accept_hdr = argv[4];
    int conns = atoi(argv[5]);
    seconds = atof(argv[6]);
    if (conns < 1 || conns > 256 || seconds <= 0)
        return 2;
    worker_t *w = calloc((size_t)conns, sizeof *w);
    double t0 = now();
    for (int i = 0; i < conns; i++)
        pthread_create(&w[i].t, NULL, run, &w[i]);
    uint64_t r = 0, b = 0, e = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].t, NULL);
        r += w[i].requests;
        b += w[i].bytes;
        e += w[i].errors;
    }
    printf("FETCH %llu %llu %llu %.3f\n", (unsigned long long)r, (unsigned long long)b,
           (unsigned long long)e, now() - t0);
    free(w);
    return 0;
}
