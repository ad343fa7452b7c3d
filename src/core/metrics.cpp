#include "duet/core/metrics.hpp"

#include <cstdio>
#include <iterator>

namespace duet {
namespace {

void line(std::string& out, const char* name, const char* help, const char* type) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void value(std::string& out, const char* name, const char* labels, std::uint64_t v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %llu\n", static_cast<unsigned long long>(v));
    out += name;
    out += labels;
    out += buf;
}

}  // namespace

// "max,sum,count,b0,...,b11", times in nanoseconds: integers only, so neither side needs libc's
// formatting or locale code (an idle image's resident pages stay few).
std::string Metrics::stalls_env() const {
    std::string s = std::to_string(std::uint64_t(stall_max * 1e9 + 0.5)) + "," +
                    std::to_string(std::uint64_t(stall_sum * 1e9 + 0.5)) + "," +
                    std::to_string(stall_count);
    for (std::uint64_t b : stall_buckets) s += "," + std::to_string(b);
    return s;
}

void Metrics::adopt_stalls(const char* env) {
    if (!env) return;
    std::uint64_t v[3 + kStallBuckets + 1] = {};
    const char* p = env;
    for (std::size_t i = 0; i < std::size(v); ++i) {
        if (i > 0 && *p++ != ',') return;
        if (*p < '0' || *p > '9') return;
        for (; *p >= '0' && *p <= '9'; ++p) v[i] = v[i] * 10 + std::uint64_t(*p - '0');
    }
    if (*p != 0) return;
    stall_max = double(v[0]) / 1e9;
    stall_sum = double(v[1]) / 1e9;
    stall_count = v[2];
    for (int i = 0; i <= kStallBuckets; ++i) stall_buckets[i] = v[3 + i];
}

std::string render_metrics(const Metrics& m, const MetricsContext& ctx) {
    std::string out;
    out.reserve(4096);
    line(out, "duet_http_requests_total", "HTTP responses sent, by status code.", "counter");
    for (int s = 100; s < 600; ++s) {
        if (!m.http_requests_by_status[s]) continue;
        char labels[32];
        std::snprintf(labels, sizeof labels, "{code=\"%d\"}", s);
        value(out, "duet_http_requests_total", labels, m.http_requests_by_status[s]);
    }
    line(out, "duet_open_connections", "Open client connections, by port.", "gauge");
    value(out, "duet_open_connections", "{port=\"http\"}", m.open_http);
    value(out, "duet_open_connections", "{port=\"files\"}", m.open_files);
    // The metrics that are one unlabelled number each.
    struct Single {
        const char* name;
        const char* help;
        const char* type;
        std::uint64_t value;
    };
    const Single singles[] = {
        {"duet_accepted_connections_total", "Client connections accepted.", "counter", m.accepted},
        {"duet_received_bytes_total", "Bytes read from clients, both ports.", "counter",
         m.bytes_in},
        {"duet_sent_bytes_total", "Bytes written to clients, both ports.", "counter", m.bytes_out},
        {"duet_upload_bytes_total", "Bytes of stored uploads.", "counter", m.upload_bytes},
        {"duet_downloads_total", "File downloads started, both ports.", "counter", m.downloads},
        {"duet_download_bytes_total", "File bytes sent to clients.", "counter", m.download_bytes},
        {"duet_file_sessions_total", "File-port sessions accepted.", "counter", m.file_sessions},
        {"duet_file_commands_total", "File-port commands handled.", "counter", m.file_commands},
        {"duet_accept_pauses_total",
         "Times accepting paused (at --max-conns or out of file descriptors).", "counter",
         m.accept_pauses},
        {"duet_auth_failures_total", "Wrong tokens (bearer or AUTH), both ports.", "counter",
         m.auth_failures},
        {"duet_auth_throttled_total",
         "Token attempts answered late because their address guessed too often.", "counter",
         m.auth_throttled},
        {"duet_timeouts_total", "Connections closed by header or idle timeout.", "counter",
         m.timeouts},
        {"duet_reloads_total", "Reloads since the first start (this PID).", "counter", ctx.reloads},
        {"duet_generation", "Reload generation of the running image.", "gauge", ctx.generation},
        {"duet_handover_lost_total",
         "Connections the last reload handed over that this image could not take back (closed).",
         "counter", m.handover_lost},
        {"duet_stored_files", "Regular files in the store.", "gauge", ctx.files_stored},
        {"duet_stored_bytes", "Bytes in the store's files.", "gauge", ctx.bytes_stored},
        {"duet_partial_uploads", "Partial (resumable) uploads kept.", "gauge", m.partials_open},
        {"duet_partial_upload_bytes", "Bytes held by partial uploads.", "gauge", m.partial_bytes},
        {"duet_partial_uploads_resumed_total", "Appends that continued a partial upload.",
         "counter", m.partials_resumed},
        {"duet_partial_uploads_expired_total", "Partial uploads removed after --partial-ttl.",
         "counter", m.partials_expired},
        {"duet_draining", "1 while shutting down or reloading.", "gauge", ctx.draining ? 1u : 0u},
        {"duet_log_lines_dropped_total",
         "Log lines dropped because stdout or stderr was not read fast enough.", "counter",
         ctx.log_lines_dropped},
        {"duet_store_available", "1 while the store directory is there, 0 after it went away.",
         "gauge", ctx.store_ok ? 1u : 0u},
        {"duet_store_skipped_entries",
         "Entries in the store that are not served: names that break the rules, or not regular "
         "files (each logged once).",
         "gauge", ctx.store_skipped},
        {"duet_store_digests_pending", "Files whose SHA-256 is being computed.", "gauge",
         ctx.index_pending},
        {"duet_busy_responses_total", "503 answers for lack of file descriptors or memory.",
         "counter", m.busy_503},
    };
    for (const Single& x : singles) {
        line(out, x.name, x.help, x.type);
        value(out, x.name, "", x.value);
    }
    line(out, "duet_uploads_total", "Uploads finished, by result.", "counter");
    value(out, "duet_uploads_total", "{result=\"stored\"}", m.uploads_ok);
    value(out, "duet_uploads_total", "{result=\"failed\"}", m.uploads_failed);
    char buf[96];
    line(out, "duet_loop_stall_seconds",
         "Loop steps: time from an epoll_wait return to the next epoll_wait call.", "histogram");
    std::uint64_t cumulative = 0;
    for (int b = 0; b <= Metrics::kStallBuckets; ++b) {
        cumulative += m.stall_buckets[b];
        if (b < Metrics::kStallBuckets)
            std::snprintf(buf, sizeof buf, "duet_loop_stall_seconds_bucket{le=\"%g\"} %llu\n",
                          Metrics::kStallBounds[b], static_cast<unsigned long long>(cumulative));
        else
            std::snprintf(buf, sizeof buf, "duet_loop_stall_seconds_bucket{le=\"+Inf\"} %llu\n",
                          static_cast<unsigned long long>(cumulative));
        out += buf;
    }
    std::snprintf(buf, sizeof buf, "duet_loop_stall_seconds_sum %.6f\n", m.stall_sum);
    out += buf;
    std::snprintf(buf, sizeof buf, "duet_loop_stall_seconds_count %llu\n",
                  static_cast<unsigned long long>(m.stall_count));
    out += buf;
    line(out, "duet_loop_stall_max_seconds", "Longest loop step since start.", "gauge");
    std::snprintf(buf, sizeof buf, "duet_loop_stall_max_seconds %.6f\n", m.stall_max);
    out += buf;
    std::snprintf(buf, sizeof buf, "duet_uptime_seconds %.3f\n", ctx.uptime_seconds);
    line(out, "duet_uptime_seconds", "Seconds since this process first started.", "gauge");
    out += buf;
    return out;
}

}  // namespace duet
