#pragma once
// Counters for /metrics. Plain integers: one thread touches them.
#include <cstdint>
#include <string>

namespace duet {

struct Metrics {
    std::uint64_t http_requests_by_status[600] = {};
    std::uint64_t open_http = 0, open_files = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t accepted = 0;
    std::uint64_t uploads_ok = 0, uploads_failed = 0, upload_bytes = 0;
    std::uint64_t downloads = 0, download_bytes = 0;  // bytes counted as they leave by sendfile
    std::uint64_t file_sessions = 0, file_commands = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t accept_pauses = 0;
    std::uint64_t auth_failures = 0, auth_throttled = 0;
    // Resumable uploads (partial_store.cpp): gauges kept current by the store, and counters.
    std::uint64_t partials_open = 0, partial_bytes = 0;
    std::uint64_t partials_resumed = 0, partials_expired = 0;
    std::uint64_t busy_503 = 0;       // out of descriptors or memory: 503 Retry-After
    std::uint64_t handover_lost = 0;  // handed-over connections this image could not take back
    // Loop steps: the time from one epoll_wait return to the next epoll_wait call, i.e. how long
    // anyone ready to be served could have waited for the loop (duet_loop_stall_seconds).
    static constexpr int kStallBuckets = 11;
    static constexpr double kStallBounds[kStallBuckets] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5};
    std::uint64_t stall_buckets[kStallBuckets + 1] = {};  // last: +Inf
    std::uint64_t stall_count = 0;
    double stall_sum = 0, stall_max = 0;
    void record_stall(double seconds) {
        int b = 0;
        while (b < kStallBuckets && seconds > kStallBounds[b]) ++b;
        ++stall_buckets[b];
        ++stall_count;
        stall_sum += seconds;
        if (seconds > stall_max) stall_max = seconds;
    }
    // Across a reload (Server::pass_stalls): the loop steps so far as one environment value, and
    // taken back by the next image (an absent or malformed value is ignored).
    std::string stalls_env() const;
    void adopt_stalls(const char* env);

    void count_status(int status) {
        if (status >= 100 && status < 600) ++http_requests_by_status[status];
    }
};

struct MetricsContext {
    double uptime_seconds;
    std::uint64_t generation;
    std::uint64_t reloads;
    std::uint64_t files_stored, bytes_stored;
    bool draining;
    std::uint64_t log_lines_dropped = 0;
    bool store_ok = true;
    std::uint64_t index_pending = 0;  // files whose digest is being computed
    std::uint64_t store_skipped = 0;  // entries in the store duet does not serve (logged once)
};

// Prometheus text exposition format 0.0.4.
std::string render_metrics(const Metrics& m, const MetricsContext& ctx);

}  // namespace duet
