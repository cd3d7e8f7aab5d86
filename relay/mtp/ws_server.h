/* ws_server.h — the USP WebSocket MTP server (TR-369 R-WS.*) on libwebsockets.
 *
 * Debian's libwebsockets has no libevent or external-poll integration, so every
 * WebSocket session lives in one libwebsockets service thread. To the router that
 * thread is one more worker: Records for its sessions arrive through its mailbox (woken
 * with lws_cancel_service()), and Records from them go to the router like any others.
 * The main thread still accepts; accepted sockets are handed to the service thread,
 * which adopts them into the listener's vhost.
 */
#ifndef USPRELAY_WS_SERVER_H
#define USPRELAY_WS_SERVER_H

#include "relay/conn.h"

struct ws_server;
struct relay;
struct worker;

/* Set up the libwebsockets context with one vhost per websocket listener of R's
 * configuration, and the worker (index WORKER_INDEX) its thread will be. NULL after
 * logging why. */
struct ws_server *ws_server_new(struct relay *r, unsigned worker_index);
struct worker *ws_server_worker(struct ws_server *s);
/* Start the service thread. 0 or -1. */
int ws_server_start(struct ws_server *s);
/* Wait for the thread to end (after worker_post_stop on its worker). */
void ws_server_join(struct ws_server *s);
/* Destroy the context and every session left; the worker itself is freed by the caller. */
void ws_server_free(struct ws_server *s);

/* Adopt an accepted socket into the listener's vhost (conn_factory; runs on the service
 * thread). NULL on failure (fd closed). */
struct conn *ws_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                         const char *peer);

#endif
