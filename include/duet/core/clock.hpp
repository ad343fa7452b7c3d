#pragma once
// The clocks duet reads, in one place. The loop reads the monotonic clock once per step and
// shares it (ConnHost::now_ms); these are for that read and for the few places that need the
// exact time (loop-stall accounting, systemd's MONOTONIC_USEC, wall-clock seconds for expiry).
#include <time.h>

#include <cstdint>

namespace duet {

inline std::int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline std::int64_t monotonic_ms() {
    return monotonic_ns() / 1000000;
}

inline std::uint64_t monotonic_us() {
    return std::uint64_t(monotonic_ns()) / 1000;
}

// A duration option (seconds, fractions allowed) in whole milliseconds, rounded.
inline std::int64_t ms_of(double seconds) {
    return std::int64_t(seconds * 1000.0 + 0.5);
}

// Wall-clock seconds, coarse (a tick's precision is plenty for dates and expiry).
inline std::int64_t wall_seconds() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

// Wall-clock microseconds (the first id of an image's change events).
inline std::uint64_t wall_us() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return std::uint64_t(ts.tv_sec) * 1000000 + std::uint64_t(ts.tv_nsec) / 1000;
}

}  // namespace duet
