// The change feed of the store index (README "The page"): events kept, numbered, read by folder.
#include "duet/store/change_feed.hpp"

#include <algorithm>

#include "duet/store/names.hpp"

namespace duet {

std::string_view change_name(ChangeFeed::Kind k) {
    switch (k) {
        case ChangeFeed::Kind::Created:
            return "created";
        case ChangeFeed::Kind::Replaced:
            return "replaced";
        case ChangeFeed::Kind::Deleted:
            return "deleted";
        case ChangeFeed::Kind::Moved:
            return "moved";
        case ChangeFeed::Kind::Reset:
            break;
    }
    return "reset";
}

namespace {
std::string sse_block(std::uint64_t id, ChangeFeed::Kind kind, std::string_view data) {
    std::string b = "id: " + std::to_string(id) + "\nevent: ";
    b += change_name(kind);
    b += "\ndata: ";
    b += data;  // one line: JSON escapes every control character
    b += "\n\n";
    return b;
}
}  // namespace

void ChangeFeed::push(Event e) {
    log_.push_back(std::move(e));
    if (log_.size() > kKept) log_.pop_front();
    const Event& last = log_.back();
    for (Listener* l : listeners_)
        if (concerns(last, l->folder)) l->on_change();
}

void ChangeFeed::add(Kind kind, std::string_view name, std::string_view to, std::string data) {
    std::uint64_t id = next_++;
    Event e{id, kind, std::string(parent_of(name)),
            std::string(kind == Kind::Moved ? parent_of(to) : std::string_view()),
            sse_block(id, kind, data)};
    push(std::move(e));
}

void ChangeFeed::reset() {
    std::uint64_t id = next_++;
    push(Event{id, Kind::Reset, {}, {}, sse_block(id, Kind::Reset, "{}")});
}

std::uint64_t ChangeFeed::read(std::uint64_t after, std::string_view folder, std::string& out,
                               std::size_t max) const {
    std::uint64_t first = log_.empty() ? next_ : log_.front().id;
    if (after + 1 < first || after >= next_) {
        // Missed events that are gone, or an id from another image: start over from now.
        out += sse_block(next_ - 1, Kind::Reset, "{}");
        return next_ - 1;
    }
    for (std::size_t i = std::size_t(after + 1 - first); i < log_.size() && out.size() < max; ++i) {
        const Event& e = log_[i];
        if (concerns(e, folder)) out += e.block;
        after = e.id;
    }
    return after;
}

void ChangeFeed::unsubscribe(Listener* l) {
    listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), l), listeners_.end());
}

void ChangeFeed::keepalive() {
    for (Listener* l : listeners_) l->on_keepalive();
}

}  // namespace duet
