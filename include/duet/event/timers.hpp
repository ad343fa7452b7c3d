#pragma once
// Timeouts as one intrusive list per timeout length (the lwan pattern): every entry in a list has
// the same duration, so appending on each touch keeps the list sorted by deadline. Arming,
// touching and cancelling are O(1); expiry walks from the head and stops at the first live entry.
#include <cstdint>

namespace duet {

struct TimerNode {
    TimerNode* prev = nullptr;
    TimerNode* next = nullptr;
    std::int64_t deadline_ms = 0;
    void* owner = nullptr;  // what expired: set once by the owner
    bool linked() const { return prev != nullptr; }
};

class TimerList {
  public:
    explicit TimerList(std::int64_t timeout_ms = 0) : timeout_ms_(timeout_ms) {
        head_.prev = head_.next = &head_;
    }
    TimerList(const TimerList&) = delete;
    TimerList& operator=(const TimerList&) = delete;

    void set_timeout(std::int64_t ms) { timeout_ms_ = ms; }
    // (Re)arms `n` to expire timeout_ms after `now`.
    void touch(TimerNode& n, std::int64_t now) {
        cancel(n);
        n.deadline_ms = now + timeout_ms_;
        n.prev = head_.prev;
        n.next = &head_;
        head_.prev->next = &n;
        head_.prev = &n;
    }
    // Arms `n` for an arbitrary deadline, keeping the list sorted (for lists whose entries do not
    // share one timeout). Walks from the tail: deadlines mostly arrive in order.
    void insert_at(TimerNode& n, std::int64_t deadline) {
        cancel(n);
        n.deadline_ms = deadline;
        TimerNode* after = head_.prev;
        while (after != &head_ && after->deadline_ms > deadline) after = after->prev;
        n.prev = after;
        n.next = after->next;
        after->next->prev = &n;
        after->next = &n;
    }
    static void cancel(TimerNode& n) {
        if (!n.linked()) return;
        n.prev->next = n.next;
        n.next->prev = n.prev;
        n.prev = n.next = nullptr;
    }
    // The first node whose deadline has passed, or nullptr. The caller cancels or re-arms it.
    TimerNode* expired(std::int64_t now) {
        TimerNode* first = head_.next;
        return (first != &head_ && first->deadline_ms <= now) ? first : nullptr;
    }
    // Earliest deadline, or -1 when empty.
    std::int64_t next_deadline() const {
        return head_.next == &head_ ? -1 : head_.next->deadline_ms;
    }

  private:
    TimerNode head_;
    std::int64_t timeout_ms_;
};

}  // namespace duet
