/* fuzz_record.c — libFuzzer harness for relay/record.c, differential against protobuf-c.
 *
 * Every input is scanned with record_scan() and unpacked with protobuf-c. Beyond "no
 * crash" it asserts:
 *   - scan OK  => protobuf-c unpacks it, and version, to_id, from_id, payload_security,
 *                 the mac/cert flags, the record type, the session fields and the
 *                 subscribed topic/destination all agree; the spans lie inside the input
 *                 and the IDs pass eid_check();
 *   - protobuf-c refuses => the scanner refuses;
 *   - protobuf-c accepts but the scanner refuses => only for a reason record.h documents
 *     as stricter than protobuf: duplicate/missing/empty/invalid/too long IDs, no or
 *     several record_type members, a varint overflowing 64 bits, field number 0 written
 *     as an over-long tag;
 *   - the error code is a known one, and scanning twice gives the same answer.
 * A second scan with a small max_id_len checks the length limit against the first scan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/endpoint_id.h"
#include "relay/record.h"
#include "usp-record.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ID = 256, SMALL_MAX_ID = 16 };

/* assert() may be compiled out; these invariants must hold in every build. */
#define CHECK(c)                                                                      \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* STR is protobuf-c's NUL-terminated copy of the field SPAN points at; a NUL inside the
 * field makes it look shorter. */
static int span_eq_pbc(struct span s, const char *str)
{
    size_t sl = strlen(str);
    return sl <= s.len && (sl == 0 || memcmp(s.ptr, str, sl) == 0) &&
           (sl == s.len || s.ptr[sl] == '\0');
}

static int span_inside(struct span s, const uint8_t *data, size_t size)
{
    if (s.len == 0)
        return 1;
    return s.ptr >= data && s.len <= size && s.ptr - data <= (ptrdiff_t)(size - s.len);
}

static int stricter_than_protobuf(int rc)
{
    switch (rc) {
    case RECORD_ERR_VARINT_OVERFLOW:
    case RECORD_ERR_FIELD_ZERO:
    case RECORD_ERR_NO_TO_ID:
    case RECORD_ERR_NO_FROM_ID:
    case RECORD_ERR_EMPTY_TO_ID:
    case RECORD_ERR_EMPTY_FROM_ID:
    case RECORD_ERR_DUP_TO_ID:
    case RECORD_ERR_DUP_FROM_ID:
    case RECORD_ERR_NO_TYPE:
    case RECORD_ERR_MULTI_TYPE:
    case RECORD_ERR_TO_ID_SYNTAX:
    case RECORD_ERR_FROM_ID_SYNTAX:
    case RECORD_ERR_ID_TOO_LONG:
        return 1;
    default:
        return 0;
    }
}

static void check_agrees(const struct record_header *h, const UspRecord__Record *r,
                         const uint8_t *data, size_t size)
{
    CHECK(span_inside(h->version, data, size));
    CHECK(span_inside(h->to_id, data, size));
    CHECK(span_inside(h->from_id, data, size));
    CHECK(span_inside(h->subscribed, data, size));
    CHECK(eid_check((const char *)h->to_id.ptr, h->to_id.len, MAX_ID) == EID_OK);
    CHECK(eid_check((const char *)h->from_id.ptr, h->from_id.len, MAX_ID) == EID_OK);

    CHECK(span_eq_pbc(h->version, r->version));
    CHECK(span_eq_pbc(h->to_id, r->to_id));
    CHECK(span_eq_pbc(h->from_id, r->from_id));
    CHECK(h->payload_security == (uint32_t)r->payload_security);
    CHECK(h->has_mac_signature == (r->mac_signature.len > 0));
    CHECK(h->has_sender_cert == (r->sender_cert.len > 0));
    CHECK((int)h->type == (int)r->record_type_case);
    CHECK(h->type >= RECORD_NO_SESSION && h->type <= RECORD_UDS_CONNECT);

    if (h->type == RECORD_SESSION) {
        const UspRecord__SessionContextRecord *s = r->session_context;
        CHECK(h->session_id == s->session_id);
        CHECK(h->sequence_id == s->sequence_id);
        CHECK(h->payload_sar_state == (uint32_t)s->payload_sar_state);
        CHECK(h->payloadrec_sar_state == (uint32_t)s->payloadrec_sar_state);
    } else {
        CHECK(h->session_id == 0 && h->sequence_id == 0);
        CHECK(h->payload_sar_state == 0 && h->payloadrec_sar_state == 0);
    }
    if (h->type == RECORD_MQTT_CONNECT) {
        CHECK(h->connect_version == (uint32_t)r->mqtt_connect->version);
        CHECK(span_eq_pbc(h->subscribed, r->mqtt_connect->subscribed_topic));
    } else if (h->type == RECORD_STOMP_CONNECT) {
        CHECK(h->connect_version == (uint32_t)r->stomp_connect->version);
        CHECK(span_eq_pbc(h->subscribed, r->stomp_connect->subscribed_destination));
    } else {
        CHECK(h->connect_version == 0 && h->subscribed.len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct record_header h, h2;
    int rc = record_scan(data, size, MAX_ID, &h);
    CHECK(rc <= RECORD_OK && rc >= RECORD_ERR_SUBMSG);
    CHECK(strcmp(record_err_name(rc), "unknown") != 0);
    CHECK(record_scan(data, size, MAX_ID, &h2) == rc);

    UspRecord__Record *r = usp_record__record__unpack(NULL, size, data);
    if (rc == RECORD_OK) {
        CHECK(r != NULL);
        check_agrees(&h, r, data, size);
        CHECK(memcmp(&h, &h2, sizeof h) == 0);
        int small = record_scan(data, size, SMALL_MAX_ID, &h2);
        if (h.to_id.len > SMALL_MAX_ID || h.from_id.len > SMALL_MAX_ID)
            CHECK(small == RECORD_ERR_ID_TOO_LONG);
        else
            CHECK(small == RECORD_OK);
    } else if (r != NULL) {
        if (!stricter_than_protobuf(rc)) {
            fprintf(stderr, "scanner refused (%s) what protobuf-c accepts\n",
                    record_err_name(rc));
            abort();
        }
    }
    if (r != NULL)
        usp_record__record__free_unpacked(r, NULL);
    return 0;
}
