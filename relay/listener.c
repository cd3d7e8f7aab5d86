/* listener.c — see listener.h. */
#include "relay/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "relay/log.h"
#include "relay/mtp/mqtt_server.h"
#include "relay/mtp/stomp_server.h"
#include "relay/mtp/uds_server.h"
#include "relay/mtp/ws_server.h"
#include "relay/worker.h"

struct listener {
    const struct listener_cfg *cfg;
    struct relay *relay;
    struct evconnlistener *evl;
    struct event *resume;
    unsigned next_worker;
    conn_factory make;
    int fd;
    time_t last_reject_log;
};

static void format_peer(const struct sockaddr *sa, socklen_t len, const struct listener *l,
                        char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    (void)len;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, cap, "unix:%s", l->cfg->uds.path);
    }
}

/* TCP options for an accepted socket: no Nagle delay on small Records and replies, and
 * keepalive probes so a peer that vanished without a FIN (power loss, NAT timeout) is
 * found even when its MTP has no heart-beats — its endpoint ID would stay taken. */
static void tune_tcp(int fd)
{
    int one = 1, idle = 60, intvl = 10, cnt = 6;
    unsigned int user_timeout_ms = 120000;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    /* Unacknowledged output for this long also ends the connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    struct listener *l = arg;
    struct relay *r = l->relay;
    char peer[112];
    format_peer(sa, (socklen_t)salen, l, peer, sizeof peer);
    if (atomic_load(&r->live_conns) >= r->cfg->max_connections) {
        close(fd);
        stats_inc(&r->acceptor, STAT_conn_rejected_limit);
        time_t now = time(NULL);
        if (now != l->last_reject_log) { /* at most one line a second per listener */
            l->last_reject_log = now;
            log_warn("conn_rejected", "listener=%s peer=%s reason=max_connections limit=%u",
                     l->cfg->name, peer, r->cfg->max_connections);
        }
        return;
    }
    atomic_fetch_add(&r->live_conns, 1);
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        tune_tcp(fd);
    /* WebSocket sessions all live in the libwebsockets thread. */
    struct worker *w = l->cfg->type == LISTENER_WEBSOCKET
                           ? ws_server_worker(r->ws)
                           : r->workers[l->next_worker++ % r->n_io_workers];
    worker_post_adopt(w, fd, l->make, l->cfg, peer, NULL);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct listener *l = arg;
    evconnlistener_enable(l->evl);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_warn("accept_failed", "listener=%s error=\"%s\" action=pause_100ms", l->cfg->name,
             evutil_socket_error_to_string(err));
    /* Out of descriptors or memory: back off instead of spinning on the error. */
    evconnlistener_disable(evl);
    struct timeval tv = {0, 100000};
    evtimer_add(l->resume, &tv);
}

static int open_tcp(const struct listener_cfg *c)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, c->address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(c->port);
        sl = sizeof *in;
    } else if (inet_pton(AF_INET6, c->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(c->port);
        sl = sizeof *in6;
    } else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, c->backlog) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A socket file left by a dead process is removed; one a live process listens on is
 * not (two relays on one path would steal each other's clients). */
static int clear_stale_socket(const char *path, const char **why)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        *why = "path exists and is not a socket";
        errno = EEXIST;
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -1;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int rc = connect(probe, (struct sockaddr *)&sun, sizeof sun);
    int e = errno;
    close(probe);
    if (rc == 0) {
        *why = "another process is listening on this socket";
        errno = EADDRINUSE;
        return -1;
    }
    if (e != ECONNREFUSED) {
        errno = e;
        return -1;
    }
    log_info("uds_stale_removed", "path=%s", path);
    return unlink(path);
}

static int open_uds(const struct listener_cfg *c, const char **why)
{
    const struct uds_listener_cfg *u = &c->uds;
    if (clear_stale_socket(u->path, why) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", u->path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
        goto fail;
    if (chmod(u->path, (mode_t)u->mode) != 0) {
        *why = "chmod failed";
        goto fail_unlink;
    }
    /* Owner and group were resolved when the configuration was loaded. */
    if ((u->owner_uid != (uid_t)-1 || u->group_gid != (gid_t)-1) &&
        chown(u->path, u->owner_uid, u->group_gid) != 0) {
        *why = "chown failed";
        goto fail_unlink;
    }
    if (listen(fd, c->backlog) != 0)
        goto fail_unlink;
    return fd;
fail_unlink: {
    int e = errno;
    unlink(u->path);
    errno = e;
}
fail: {
    int e = errno;
    close(fd);
    errno = e;
}
    return -1;
}

static void listener_free(struct listener *l)
{
    if (!l)
        return;
    if (l->evl)
        evconnlistener_free(l->evl); /* closes the fd */
    else if (l->fd >= 0)
        close(l->fd);
    if (l->resume)
        event_free(l->resume);
    if (l->cfg->type == LISTENER_UDS && l->fd >= 0)
        unlink(l->cfg->uds.path);
    free(l);
}

int listeners_open(struct relay *r, struct event_base *base, struct listener ***out, size_t *n)
{
    const struct relay_config *cfg = r->cfg;
    struct listener **ls = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *ls);
    size_t i;
    if (!ls)
        return -1;
    for (i = 0; i < cfg->n_listeners; i++) {
        const struct listener_cfg *c = &cfg->listeners[i];
        const char *why = NULL;
        struct listener *l = calloc(1, sizeof *l);
        if (!l)
            goto fail;
        ls[i] = l;
        l->cfg = c;
        l->relay = r;
        l->fd = -1;
        l->make = c->type == LISTENER_STOMP  ? stomp_conn_new
                  : c->type == LISTENER_MQTT ? mqtt_conn_new
                  : c->type == LISTENER_UDS  ? uds_conn_new
                                             : ws_conn_new;
        l->fd = c->type == LISTENER_UDS ? open_uds(c, &why) : open_tcp(c);
        if (l->fd < 0) {
            if (c->type == LISTENER_UDS)
                log_error("listener_failed", "listener=%s type=uds path=%s error=\"%s\"", c->name,
                          c->uds.path, why ? why : strerror(errno));
            else
                log_error("listener_failed", "listener=%s type=%s address=%s port=%u error=\"%s\"",
                          c->name, listener_type_name(c->type), c->address, c->port,
                          strerror(errno));
            goto fail;
        }
        l->resume = evtimer_new(base, resume_cb, l);
        l->evl = evconnlistener_new(base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, -1, l->fd);
        if (!l->resume || !l->evl)
            goto fail;
        evconnlistener_set_error_cb(l->evl, accept_error_cb);
        if (c->type == LISTENER_UDS)
            log_info("listener_open", "listener=%s type=uds path=%s mode=%04o peer_endpoint_id=%s",
                     c->name, c->uds.path, c->uds.mode,
                     c->uds.peer_endpoint_id ? c->uds.peer_endpoint_id : "-");
        else
            log_info("listener_open", "listener=%s type=%s address=%s port=%u tls=%s", c->name,
                     listener_type_name(c->type), c->address, c->port,
                     !c->tls.certificate                           ? "off"
                     : c->tls.client_certs == TLS_CLIENT_REQUIRED ? "client_cert_required"
                     : c->tls.client_certs == TLS_CLIENT_OPTIONAL ? "client_cert_optional"
                                                                   : "on");
    }
    *out = ls;
    *n = cfg->n_listeners;
    return 0;
fail:
    for (size_t j = 0; j <= i && j < cfg->n_listeners; j++)
        listener_free(ls[j]);
    free(ls);
    return -1;
}

void listeners_close(struct listener **ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        listener_free(ls[i]);
    free(ls);
}

