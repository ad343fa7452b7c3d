#pragma once
// Throttled token guessing (README "Tokens"), shared by both ports. Per client address: after
// kFreeFailures failed attempts within kWindowMs, each further attempt is answered only after a
// delay that doubles per failure (kBaseDelayMs, up to kMaxDelayMs). Attempts from one address
// are released one after another (each waits for the previous one's slot), so opening many
// connections does not multiply the rate. The table is bounded: the least recently seen address
// is evicted. Pure bookkeeping: the caller passes the clock and parks the connection itself.
#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

namespace duet {

struct AuthAddr {
    std::array<std::uint8_t, 16> bytes{};  // IPv6, or IPv4-mapped
    bool operator==(const AuthAddr& o) const { return bytes == o.bytes; }
};

class AuthThrottle {
  public:
    static constexpr int kFreeFailures = 5;
    static constexpr std::int64_t kWindowMs = 60'000;
    static constexpr std::int64_t kBaseDelayMs = 200;
    static constexpr std::int64_t kMaxDelayMs = 10'000;
    static constexpr int kCloseAfter = 10;  // failures on one connection
    static constexpr std::size_t kDefaultCapacity = 4096;

    explicit AuthThrottle(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

    // An attempt from `a` arrives at `now`: when it may be answered (`now` when not throttled).
    // A later time books that slot for it.
    std::int64_t admit(const AuthAddr& a, std::int64_t now);
    void failure(const AuthAddr& a, std::int64_t now);
    void success(const AuthAddr& a);

    std::size_t size() const { return map_.size(); }
    int failures(const AuthAddr& a, std::int64_t now) const;

  private:
    struct Entry {
        AuthAddr addr;
        int failures = 0;
        std::int64_t window_start = 0;
        std::int64_t next_free = 0;  // when the last booked slot ends
    };
    struct Hash {
        std::size_t operator()(const AuthAddr& a) const {
            std::uint64_t h = 1469598103934665603ull;
            for (std::uint8_t b : a.bytes) h = (h ^ b) * 1099511628211ull;
            return std::size_t(h);
        }
    };
    Entry* find(const AuthAddr& a);
    Entry& touch(const AuthAddr& a);

    std::size_t capacity_;
    std::list<Entry> lru_;  // most recently seen first
    std::unordered_map<AuthAddr, std::list<Entry>::iterator, Hash> map_;
};

}  // namespace duet
