// AuthThrottle: free failures, doubling delays up to the cap, serialised slots per address,
// reset on success, the window, and the bounded table.
#include <criterion/criterion.h>

#include "duet/net/auth_throttle.hpp"

using duet::AuthAddr;
using duet::AuthThrottle;

namespace {
AuthAddr addr(int n) {
    AuthAddr a;
    a.bytes[10] = a.bytes[11] = 0xff;
    a.bytes[15] = std::uint8_t(n);
    a.bytes[14] = std::uint8_t(n >> 8);
    return a;
}
}  // namespace

Test(auth_throttle, five_free_failures_then_doubling_delays) {
    AuthThrottle t;
    AuthAddr a = addr(1);
    std::int64_t now = 1000;
    for (int i = 0; i < 5; ++i) {
        cr_expect_eq(t.admit(a, now), now, "attempt %d must not wait", i + 1);
        t.failure(a, now);
    }
    std::int64_t want[] = {200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (std::int64_t d : want) {
        std::int64_t at = t.admit(a, now);
        cr_expect_eq(at - now, d, "delay %lld, want %lld", (long long)(at - now), (long long)d);
        now = at;  // answered then, and wrong again
        t.failure(a, now);
    }
}

Test(auth_throttle, parallel_attempts_are_served_one_after_another) {
    AuthThrottle t;
    AuthAddr a = addr(2);
    for (int i = 0; i < 5; ++i) t.failure(a, 0);
    // Three connections ask at once: each gets its own slot after the previous one.
    std::int64_t a1 = t.admit(a, 0), a2 = t.admit(a, 0), a3 = t.admit(a, 0);
    cr_expect_eq(a1, 200);
    cr_expect_eq(a2, 400);
    cr_expect_eq(a3, 600);
}

Test(auth_throttle, other_addresses_and_success_are_not_slowed) {
    AuthThrottle t;
    for (int i = 0; i < 9; ++i) t.failure(addr(3), 0);
    cr_expect_eq(t.admit(addr(4), 0), 0);
    cr_expect_gt(t.admit(addr(3), 0), 0);
    t.success(addr(3));
    cr_expect_eq(t.admit(addr(3), 0), 0);
    cr_expect_eq(t.failures(addr(3), 0), 0);
}

Test(auth_throttle, window_of_a_minute) {
    AuthThrottle t;
    AuthAddr a = addr(5);
    for (int i = 0; i < 5; ++i) t.failure(a, 0);
    cr_expect_gt(t.admit(a, 1000), 1000);
    // A minute after the first failure the count starts again.
    std::int64_t later = AuthThrottle::kWindowMs + 20000;
    cr_expect_eq(t.admit(a, later), later);
    t.failure(a, later);
    cr_expect_eq(t.failures(a, later), 1);
}

Test(auth_throttle, table_is_bounded_oldest_evicted) {
    AuthThrottle t(4);
    for (int i = 0; i < 10; ++i) t.failure(addr(100 + i), i);
    cr_expect_eq(t.size(), 4u);
    cr_expect_eq(t.failures(addr(100), 10), 0);  // evicted
    cr_expect_eq(t.failures(addr(109), 10), 1);
}
