/* metrics: the daemon's counters and gauges in one plain struct, rendered as text (pure; no I/O). */
#ifndef CHATMON_METRICS_H
#define CHATMON_METRICS_H

#include <stdint.h>

#include "chatmon/util.h"

/*
 * X(field, kind, name, labels, scale, help): field is the key in the stats
 * line; name and labels the Prometheus series (chatmon_<name>{labels}),
 * its value field / scale (microseconds shown in seconds). A name of ""
 * is not exported as it is (the relay exports it with richer labels).
 */
#define METRICS_FIELDS(X)						\
	X(agents_total, counter, "agent_connections_total", "", 1, "Agent connections accepted") \
	X(agents_active, gauge, "agents_connected", "", 1, "Agent connections open") \
	X(upstream_active, gauge, "upstream_connected", "", 1, "Upstream connections open") \
	X(upstream_failures, counter, "upstream_failures_total", "", 1, "Upstream connects or handshakes that failed") \
	X(upstream_refused, counter, "upstream_refusals_total", "", 1, "Upgrades the backend refused with an HTTP answer below 500 (it is up)") \
	X(messages_up, counter, "messages_total", "direction=\"up\"", 1, "Messages relayed, by direction") \
	X(messages_down, counter, "messages_total", "direction=\"down\"", 1, "Messages relayed, by direction") \
	X(bytes_up, counter, "bytes_total", "direction=\"up\"", 1, "Payload bytes relayed, by direction") \
	X(bytes_down, counter, "bytes_total", "direction=\"down\"", 1, "Payload bytes relayed, by direction") \
	X(binary_messages, counter, "binary_messages_total", "", 1, "Binary messages relayed, both ways") \
	X(turns_agent, counter, "turns_total", "role=\"agent\"", 1, "Chat turns, by role") \
	X(turns_customer, counter, "turns_total", "role=\"customer\"", 1, "Chat turns, by role") \
	X(conversations_ended, counter, "conversations_ended_total", "", 1, "End frames seen") \
	X(frames_other, counter, "frames_untouched_total", "reason=\"other\"", 1, "Text frames relayed untouched, by reason") \
	X(frames_invalid, counter, "frames_untouched_total", "reason=\"invalid\"", 1, "Text frames relayed untouched, by reason") \
	X(frames_malformed, counter, "frames_untouched_total", "reason=\"malformed\"", 1, "Text frames relayed untouched, by reason") \
	X(frames_unknown_shop, counter, "frames_refused_total", "reason=\"unknown_shop\"", 1, "Chat frames not forwarded because they name a shop not configured (shops_unknown: refuse)") \
	X(refused_max, counter, "connections_refused_total", "reason=\"max_connections\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_per_ip, counter, "connections_refused_total", "reason=\"per_ip\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_fds, counter, "connections_refused_total", "reason=\"fds\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_draining, counter, "connections_refused_total", "reason=\"draining\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_origin, counter, "connections_refused_total", "reason=\"origin\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_token, counter, "connections_refused_total", "reason=\"token\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_untrusted, counter, "connections_refused_total", "reason=\"untrusted_proxy\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_agent_id, counter, "connections_refused_total", "reason=\"agent_id\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_shop, counter, "connections_refused_total", "reason=\"shop\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(refused_uri, counter, "connections_refused_total", "reason=\"uri_too_long\"", 1, "Agent connections refused before the upgrade (HTTP 400, 401, 403, 414 or 503, or closed as accepted), by reason") \
	X(timeouts_handshake, counter, "timeouts_total", "kind=\"handshake\"", 1, "Connections closed for taking too long, by kind") \
	X(timeouts_message, counter, "timeouts_total", "kind=\"message\"", 1, "Connections closed for taking too long, by kind") \
	X(timeouts_stall, counter, "timeouts_total", "kind=\"stall\"", 1, "Connections closed for taking too long, by kind") \
	X(protocol_errors_agent, counter, "protocol_errors_total", "side=\"agent\"", 1, "Connections failed for breaking RFC 6455, by side") \
	X(protocol_errors_up, counter, "protocol_errors_total", "side=\"upstream\"", 1, "Connections failed for breaking RFC 6455, by side") \
	X(closes_too_big, counter, "closes_too_big_total", "", 1, "Connections closed 1009 for a message over limits.max_message") \
	X(flow_pauses, counter, "flow_pauses_total", "", 1, "Times a producer was paused because a queue passed limits.queue_bytes, or an agent because its note acks waited for Redis") \
	X(queued_bytes, gauge, "queued_bytes", "", 1, "Bytes waiting in relay queues") \
	X(rule_hits, counter, "", "", 1, "Rule hits, every action") \
	X(rule_alerts, counter, "rule_alerts_total", "", 1, "rule.hit alerts: one a turn, however many rules it broke (each rule is a rule hit)") \
	X(rule_blocks, counter, "rule_blocks_total", "", 1, "Agent messages blocked by a rule") \
	X(rule_warnings, counter, "rule_warnings_total", "", 1, "chatmon.warning frames sent to agents for rule.hit alerts (one a turn)") \
	X(rule_vetoes, counter, "rule_vetoes_total", "", 1, "Rule blocks the n-gram model did not back, warned instead (model_veto)") \
	X(rule_errors, counter, "rule_errors_total", "", 1, "Messages the rules could not be run on (out of memory)") \
	X(sla_warnings, counter, "sla_events_total", "type=\"warn\"", 1, "SLA events, by type") \
	X(sla_breaches, counter, "sla_events_total", "type=\"breach\"", 1, "SLA events, by type") \
	X(sla_escalations, counter, "sla_events_total", "type=\"escalate\"", 1, "SLA events, by type") \
	X(sla_timer_fires, counter, "sla_timer_fires_total", "", 1, "SLA deadline timers fired") \
	X(alerts_total, counter, "alerts_total", "", 1, "Alerts handed to the Redis sink") \
	X(alerts_sent, counter, "alerts_sent_total", "", 1, "Alerts Redis acknowledged (XADD returned an id)") \
	X(alerts_queued, gauge, "alerts_queued", "", 1, "Alerts waiting in memory for Redis") \
	X(alerts_spooled, counter, "alerts_spooled_total", "", 1, "Alerts written to the disk spool") \
	X(alerts_spool_bytes, gauge, "alerts_spool_bytes", "", 1, "Bytes in the disk spool") \
	X(alerts_dropped, counter, "alerts_dropped_total", "", 1, "Alerts lost: outbox and spool full, out of memory, or undelivered at exit with no spool") \
	X(alerts_folded, counter, "alerts_folded_total", "", 1, "Alerts folded into an earlier identical one") \
	X(redis_connected, gauge, "redis_connected", "", 1, "1 when the Redis connection is up") \
	X(redis_reconnects, counter, "redis_reconnects_total", "", 1, "Redis connections lost") \
	X(redis_retry_readonly, counter, "redis_write_retries_total", "reason=\"readonly\"", 1, "Alert writes not acknowledged, by reason: reconnected (through Sentinel when configured) and sent again") \
	X(redis_retry_loading, counter, "redis_write_retries_total", "reason=\"loading\"", 1, "Alert writes not acknowledged, by reason: reconnected (through Sentinel when configured) and sent again") \
	X(redis_retry_masterdown, counter, "redis_write_retries_total", "reason=\"masterdown\"", 1, "Alert writes not acknowledged, by reason: reconnected (through Sentinel when configured) and sent again") \
	X(redis_retry_noreplicas, counter, "redis_write_retries_total", "reason=\"noreplicas\"", 1, "Alert writes not acknowledged, by reason: reconnected (through Sentinel when configured) and sent again") \
	X(redis_retry_other, counter, "redis_write_retries_total", "reason=\"other\"", 1, "Alert writes not acknowledged, by reason: reconnected (through Sentinel when configured) and sent again") \
	X(redis_wait_short, counter, "redis_wait_short_total", "", 1, "WAITs that counted fewer than redis.wait_replicas replicas in time: the alerts stay until enough do") \
	X(redis_master_changes, counter, "redis_master_changes_total", "", 1, "Times the Redis server alerts go to changed address (a Sentinel failover)") \
	X(history_written, counter, "history_turns_total", "result=\"written\"", 1, "Chat turns for the conversation history, by result (docs/relay.md)") \
	X(history_lost, counter, "history_turns_total", "result=\"lost\"", 1, "Chat turns for the conversation history, by result (docs/relay.md)") \
	X(notes_delivered, counter, "notes_sent_total", "", 1, "chatmon.note frames sent to agents' connections") \
	X(note_acks, counter, "note_acks_total", "result=\"taken\"", 1, "chatmon.note_ack frames from agents, by result") \
	X(note_acks_bad, counter, "note_acks_total", "result=\"malformed\"", 1, "chatmon.note_ack frames from agents, by result") \
	X(note_acks_foreign, counter, "note_acks_total", "result=\"ignored\"", 1, "chatmon.note_ack frames from agents, by result") \
	X(note_acks_lost, counter, "note_acks_total", "result=\"lost\"", 1, "chatmon.note_ack frames from agents, by result") \
	X(sla_timer_late_max_us, gauge, "sla_timer_late_max_seconds", "", 1e6, "Latest an SLA timer fired after its deadline") \
	X(sla_timer_late_sum_us, counter, "sla_timer_late_seconds_total", "", 1e6, "Sum of SLA timer lateness") \
	X(sla_timer_late_over_10ms, counter, "sla_timer_late_over_10ms_total", "", 1, "SLA timers that fired more than 10 ms late") \
	X(reloads_ok, counter, "", "", 1, "Configuration reloads applied") \
	X(reload_failures, counter, "", "", 1, "Configuration reloads rejected")

struct metrics {
#define METRICS_FIELD(name, kind, prom, labels, scale, help) uint64_t name;
	METRICS_FIELDS(METRICS_FIELD)
#undef METRICS_FIELD
};

/* One line "key=value key=value ..." (no newline) appended to out; 0 or -1. */
int	metrics_format_line(const struct metrics *, struct sbuf *out);
/* The Prometheus text exposition format, HELP and TYPE included; 0 or -1. */
int	metrics_format_prometheus(const struct metrics *, struct sbuf *out);

#endif
