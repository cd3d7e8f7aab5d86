/* record_build.c — encode a USP Record with protobuf-c (see record_build.h).
 *
 * Everything is built on the stack from the caller's fields, pointing at the caller's
 * bytes; only the output buffer is allocated.
 */
#include "relay/record_build.h"

#include <stdlib.h>

#include "usp-record.pb-c.h"

/* protobuf-c's structs take non-const pointers but only read through them when packing. */
static char *str_or_empty(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t len)
{
    ProtobufCBinaryData b = {len, len > 0 ? (uint8_t *)p : NULL};
    return b;
}

int record_build(const struct record_fields *f, uint8_t **out, size_t *out_len)
{
    UspRecord__Record rec = USP_RECORD__RECORD__INIT;
    UspRecord__NoSessionContextRecord nsc = USP_RECORD__NO_SESSION_CONTEXT_RECORD__INIT;
    UspRecord__SessionContextRecord sc = USP_RECORD__SESSION_CONTEXT_RECORD__INIT;
    UspRecord__WebSocketConnectRecord ws = USP_RECORD__WEB_SOCKET_CONNECT_RECORD__INIT;
    UspRecord__MQTTConnectRecord mqtt = USP_RECORD__MQTTCONNECT_RECORD__INIT;
    UspRecord__STOMPConnectRecord stomp = USP_RECORD__STOMPCONNECT_RECORD__INIT;
    UspRecord__DisconnectRecord disc = USP_RECORD__DISCONNECT_RECORD__INIT;
    UspRecord__UDSConnectRecord uds = USP_RECORD__UDSCONNECT_RECORD__INIT;
    ProtobufCBinaryData sc_payload;

    *out = NULL;
    *out_len = 0;

    rec.version = str_or_empty(f->version != NULL ? f->version : "1.3");
    rec.to_id = str_or_empty(f->to_id);
    rec.from_id = str_or_empty(f->from_id);
    rec.payload_security = (UspRecord__Record__PayloadSecurity)f->payload_security;
    rec.mac_signature = bin(f->mac_signature, f->mac_signature_len);
    rec.sender_cert = bin(f->sender_cert, f->sender_cert_len);

    switch (f->type) {
    case RECORD_TYPE_NONE:
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE__NOT_SET;
        break;
    case RECORD_NO_SESSION:
        nsc.payload = bin(f->payload, f->payload_len);
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_NO_SESSION_CONTEXT;
        rec.no_session_context = &nsc;
        break;
    case RECORD_SESSION:
        sc.session_id = f->session_id;
        sc.sequence_id = f->sequence_id;
        sc.expected_id = f->expected_id;
        sc.retransmit_id = f->retransmit_id;
        sc.payload_sar_state = (UspRecord__SessionContextRecord__PayloadSARState)f->payload_sar_state;
        sc.payloadrec_sar_state =
            (UspRecord__SessionContextRecord__PayloadSARState)f->payloadrec_sar_state;
        if (f->payload_len > 0) {
            sc_payload = bin(f->payload, f->payload_len);
            sc.n_payload = 1;
            sc.payload = &sc_payload;
        }
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_SESSION_CONTEXT;
        rec.session_context = &sc;
        break;
    case RECORD_WS_CONNECT:
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_WEBSOCKET_CONNECT;
        rec.websocket_connect = &ws;
        break;
    case RECORD_MQTT_CONNECT:
        mqtt.version = (UspRecord__MQTTConnectRecord__MQTTVersion)f->connect_version;
        mqtt.subscribed_topic = str_or_empty(f->subscribed);
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_MQTT_CONNECT;
        rec.mqtt_connect = &mqtt;
        break;
    case RECORD_STOMP_CONNECT:
        stomp.version = (UspRecord__STOMPConnectRecord__STOMPVersion)f->connect_version;
        stomp.subscribed_destination = str_or_empty(f->subscribed);
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_STOMP_CONNECT;
        rec.stomp_connect = &stomp;
        break;
    case RECORD_DISCONNECT:
        disc.reason = str_or_empty(f->disconnect_reason);
        disc.reason_code = f->disconnect_code;
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_DISCONNECT;
        rec.disconnect = &disc;
        break;
    case RECORD_UDS_CONNECT:
        rec.record_type_case = USP_RECORD__RECORD__RECORD_TYPE_UDS_CONNECT;
        rec.uds_connect = &uds;
        break;
    default:
        return -1;
    }

    size_t len = usp_record__record__get_packed_size(&rec);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return -1;
    size_t packed = usp_record__record__pack(&rec, buf);
    /* Our own invariant: protobuf-c writes exactly what it sized. */
    if (packed != len) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}
