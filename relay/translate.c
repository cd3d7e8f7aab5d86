/* translate.c — see translate.h. */
#include "relay/translate.h"

#include <stdlib.h>
#include <string.h>

#include "relay/record_build.h"
#include "relay/relay.h"

struct rbuf *translate_connect(struct conn *dst, const struct rbuf *rb)
{
    const struct record_header *h = &rb->hdr;
    enum record_type want = dst->ops->connect_type;
    char version[32], to[1024], from[1024], alias[1024];
    struct rbuf *out = NULL;
    uint8_t *buf = NULL;
    size_t len;

    if (!record_type_is_connect(h->type) || want == RECORD_TYPE_NONE || h->type == want ||
        h->payload_security != 0 || h->has_mac_signature || h->has_sender_cert)
        return NULL;
    if (h->version.len >= sizeof version || h->to_id.len >= sizeof to ||
        h->from_id.len >= sizeof from)
        return NULL;
    memcpy(version, h->version.ptr, h->version.len);
    version[h->version.len] = '\0';
    memcpy(to, h->to_id.ptr, h->to_id.len);
    to[h->to_id.len] = '\0';
    memcpy(from, h->from_id.ptr, h->from_id.len);
    from[h->from_id.len] = '\0';

    struct record_fields f = {.version = version, .to_id = to, .from_id = from, .type = want};
    if (want == RECORD_STOMP_CONNECT || want == RECORD_MQTT_CONNECT) {
        /* Where the receiver reaches the sender: the relay's alias on the receiver's MTP. */
        if (!dst->ops->alias_address ||
            dst->ops->alias_address(dst, from, h->from_id.len, alias, sizeof alias) < 0)
            return NULL;
        f.subscribed = alias;
        f.connect_version = dst->ops->connect_version ? dst->ops->connect_version(dst) : 0;
    }
    if (record_build(&f, &buf, &len) != 0)
        return NULL;
    out = rbuf_new(len);
    if (!out)
        goto out;
    memcpy(out->data, buf, len);
    out->rx_ns = rb->rx_ns;
    out->origin_mtp = rb->origin_mtp;
    out->qos = rb->qos;
    if ((rb->reply_to && rbuf_set_reply_to(out, rb->reply_to, strlen(rb->reply_to)) != 0) ||
        record_scan(out->data, out->len, dst->relay->cfg->max_endpoint_id_length, &out->hdr) != 0) {
        rbuf_unref(out);
        out = NULL;
    }
out:
    free(buf);
    return out;
}
