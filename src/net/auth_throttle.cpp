#include "duet/net/auth_throttle.hpp"

namespace duet {

AuthThrottle::Entry* AuthThrottle::find(const AuthAddr& a) {
    auto it = map_.find(a);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &*it->second;
}

AuthThrottle::Entry& AuthThrottle::touch(const AuthAddr& a) {
    if (Entry* e = find(a)) return *e;
    if (map_.size() >= capacity_ && !lru_.empty()) {
        map_.erase(lru_.back().addr);
        lru_.pop_back();
    }
    lru_.push_front(Entry{a, 0, 0, 0});
    map_[a] = lru_.begin();
    return lru_.front();
}

int AuthThrottle::failures(const AuthAddr& a, std::int64_t now) const {
    auto it = map_.find(a);
    if (it == map_.end() || now - it->second->window_start > kWindowMs) return 0;
    return it->second->failures;
}

std::int64_t AuthThrottle::admit(const AuthAddr& a, std::int64_t now) {
    Entry* e = find(a);
    if (!e || e->failures < kFreeFailures || now - e->window_start > kWindowMs) return now;
    int over = e->failures - kFreeFailures;  // 0 for the first throttled attempt
    std::int64_t delay = over >= 6 ? kMaxDelayMs : kBaseDelayMs << over;
    if (delay > kMaxDelayMs) delay = kMaxDelayMs;
    std::int64_t start = e->next_free > now ? e->next_free : now;
    e->next_free = start + delay;
    return e->next_free;
}

void AuthThrottle::failure(const AuthAddr& a, std::int64_t now) {
    Entry& e = touch(a);
    if (e.failures == 0 || now - e.window_start > kWindowMs) {
        e.failures = 0;
        e.window_start = now;
    }
    if (e.failures < 1'000'000) ++e.failures;
}

void AuthThrottle::success(const AuthAddr& a) {
    auto it = map_.find(a);
    if (it == map_.end()) return;
    lru_.erase(it->second);
    map_.erase(it);
}

}  // namespace duet
