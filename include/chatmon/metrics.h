/* metrics: the daemon's counters and gauges in one plain struct, rendered as text (pure; no I/O). */
#ifndef CHATMON_METRICS_H
#define CHATMON_METRICS_H

#include <stdint.h>

#include "chatmon/util.h"

/*
 * X(field, kind, help): kind is "counter" or "gauge". The field name is the
 * key in the stats line; the Prometheus name is chatmon_<field>.
 */
#define METRICS_FIELDS(X)						\
	X(agents_total, counter, "Agent connections accepted")		\
	X(agents_active, gauge, "Agent connections open")		\
	X(upstream_active, gauge, "Upstream connections open")		\
	X(upstream_failures, counter, "Upstream connects or handshakes that failed") \
	X(messages_up, counter, "Messages relayed agent to backend")	\
	X(messages_down, counter, "Messages relayed backend to agent")	\
	X(bytes_up, counter, "Payload bytes relayed agent to backend")	\
	X(bytes_down, counter, "Payload bytes relayed backend to agent") \
	X(binary_messages, counter, "Binary messages relayed, both ways") \
	X(turns_agent, counter, "Chat turns sent by agents")		\
	X(turns_customer, counter, "Chat turns received from customers") \
	X(conversations_ended, counter, "End frames seen")		\
	X(frames_other, counter, "JSON text frames of other types, relayed untouched") \
	X(frames_invalid, counter, "Text frames that are not JSON objects, relayed untouched") \
	X(frames_malformed, counter, "Chat frames missing a field, relayed untouched") \
	X(closes_too_big, counter, "Connections closed 1009 for a message over limits.max_message") \
	X(flow_pauses, counter, "Times a producer was paused because a queue passed limits.queue_bytes") \
	X(queued_bytes, gauge, "Bytes waiting in relay queues")	\
	X(rule_hits, counter, "Rule hits, every action")		\
	X(rule_blocks, counter, "Agent messages blocked by a rule")	\
	X(rule_warnings, counter, "chatmon.warning frames sent to agents") \
	X(rule_errors, counter, "Messages the rules could not be run on (out of memory)") \
	X(sla_warnings, counter, "sla.warn events")			\
	X(sla_breaches, counter, "sla.breach events")			\
	X(sla_escalations, counter, "sla.escalate events")		\
	X(sla_timer_fires, counter, "SLA deadline timers fired")	\
	X(alerts_total, counter, "Alerts handed to the Redis sink")	\
	X(alerts_sent, counter, "Alerts Redis acknowledged (XADD returned an id)") \
	X(alerts_queued, gauge, "Alerts waiting in memory for Redis")	\
	X(alerts_spooled, counter, "Alerts written to the disk spool")	\
	X(alerts_spool_bytes, gauge, "Bytes in the disk spool")	\
	X(alerts_dropped, counter, "Alerts lost: outbox and spool full, or refused by Redis") \
	X(alerts_folded, counter, "Alerts folded into an earlier identical one") \
	X(redis_connected, gauge, "1 when the Redis connection is up")	\
	X(redis_reconnects, counter, "Redis connections lost")		\
	X(sla_timer_late_max_us, gauge, "Latest an SLA timer fired after its deadline, microseconds") \
	X(sla_timer_late_sum_us, counter, "Sum of SLA timer lateness, microseconds") \
	X(sla_timer_late_over_10ms, counter, "SLA timers that fired more than 10 ms late") \
	X(reloads, counter, "Configuration reloads attempted")		\
	X(reload_failures, counter, "Configuration reloads rejected")

struct metrics {
#define METRICS_FIELD(name, kind, help) uint64_t name;
	METRICS_FIELDS(METRICS_FIELD)
#undef METRICS_FIELD
};

/* One line "key=value key=value ..." (no newline) appended to out; 0 or -1. */
int	metrics_format_line(const struct metrics *, struct sbuf *out);
/* The Prometheus text exposition format, HELP and TYPE included; 0 or -1. */
int	metrics_format_prometheus(const struct metrics *, struct sbuf *out);

#endif
