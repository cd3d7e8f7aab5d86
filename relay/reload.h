/* reload.h — the parts of the configuration a running relay takes up again on SIGHUP:
 * the policy, the password files and every listener's TLS material.
 *
 * The workers read these through atomic pointers in struct relay on their hot paths. A
 * reload swaps the pointers, then frees the old objects only when nothing can use them:
 * the policy and password files after every worker has passed through its mailbox
 * (grace.h), a TLS server when its last connection is gone as well (its reference
 * count), and a reloaded configuration when all of its parts are released. So reloading
 * any number of times costs no memory beyond the material in use.
 */
#ifndef USPRELAY_RELOAD_H
#define USPRELAY_RELOAD_H

struct relay;

/* Set up r->policy, r->passwd and r->tls from r->cfg (main thread, before the workers
 * start). 0, or -1 (logged as startup_failed). */
int reload_init(struct relay *r);

/* SIGHUP: load r->cfg->path again and apply its policy, password files and TLS groups
 * (main thread, workers running). An invalid file changes nothing; each error is logged
 * (reload_refused). Other changes need a restart. */
void reload_apply(struct relay *r);

/* After every worker has stopped and every connection is freed: release it all. */
void reload_fini(struct relay *r);

#endif
