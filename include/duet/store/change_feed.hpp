#pragma once
// The store's changes as events (README "The page", GET /events): what the index saw happen to
// each entry, numbered, kept for a while so a client that reconnects gets what it missed.
//
// Ids start at this image's start time in microseconds and count up by one, so an id from an
// earlier image is always below this image's first: a client presenting one (or one evicted from
// the log) gets a `reset` (reload the listing), never a gap it cannot see.
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

class ChangeFeed {
  public:
    enum class Kind : std::uint8_t { Created, Replaced, Deleted, Moved, Reset };
    // A reader of the feed (an event-stream connection): told when an event for its folder (or a
    // reset) arrives, and every keep-alive period. It must not subscribe or unsubscribe from
    // within those calls (a connection only asks to be woken there).
    class Listener {
      public:
        virtual void on_change() = 0;
        virtual void on_keepalive() = 0;
        std::string folder;  // "" the top folder, else "a/b" (no trailing '/')

      protected:
        ~Listener() = default;
    };

    explicit ChangeFeed(std::uint64_t first_id) : next_(first_id) {}
    // An event about `name` (`to` too for a move): its data is the JSON object `data`.
    void add(Kind kind, std::string_view name, std::string_view to, std::string data);
    // Everyone reloads their listing (the index was rebuilt).
    void reset();
    // The id of the latest event, or the one before this image's first.
    std::uint64_t last_id() const { return next_ - 1; }
    // Appends to `out` the events after `after` that concern `folder`, as Server-Sent Events,
    // while `out` is under `max` bytes; returns the id now reached. When events after `after` are
    // no longer kept (or `after` is not one of ours), one `reset` event instead.
    std::uint64_t read(std::uint64_t after, std::string_view folder, std::string& out,
                       std::size_t max) const;

    void subscribe(Listener* l) { listeners_.push_back(l); }
    void unsubscribe(Listener* l);
    void keepalive();

    static constexpr std::size_t kKept = 4096;  // events kept for catching up

  private:
    struct Event {
        std::uint64_t id;
        Kind kind;
        std::string folder, folder2;  // the parent folders the event concerns
        std::string block;            // the whole "id: ...\nevent: ...\ndata: ...\n\n"
    };
    bool concerns(const Event& e, std::string_view folder) const {
        return e.kind == Kind::Reset || e.folder == folder ||
               (e.kind == Kind::Moved && e.folder2 == folder);
    }
    void push(Event e);

    std::deque<Event> log_;
    std::uint64_t next_;
    std::vector<Listener*> listeners_;
};

// "created", "replaced", ...
std::string_view change_name(ChangeFeed::Kind k);

}  // namespace duet
