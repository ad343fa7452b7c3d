#pragma once
// What a protocol session (an HTTP or a file-port connection) sees of the server: its
// connection's host (ConnHost) plus the services both protocols share: the configuration, the
// store with its index and partial uploads, the waits on store work done by helpers, the access
// log and the server's status. The server implements the few calls back; a session never sees
// the rest of it (listeners, lifecycle, reload).
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "duet/core/config.hpp"
#include "duet/event/helpers.hpp"
#include "duet/net/conn_host.hpp"
#include "duet/store/partial_store.hpp"
#include "duet/store/store.hpp"
#include "duet/store/store_index.hpp"

namespace duet {

class SessionHost : public ConnHost {
  public:
    const Config& cfg;
    Store store;
    PartialStore partials;
    StoreIndex index;
    Helpers helpers;  // declared last: destroyed (joined) before what their jobs touch

    // ---- waits on store work (store_waits.cpp) ----
    // fsync(fd) on a helper; the result lands in the returned DiskWait and parked connections
    // are woken.
    std::shared_ptr<DiskWait> fsync_later(int fd);
    // A delete whose unlink runs on a helper (Store::remove_async), or an upload's file being
    // created on one (Store::begin_upload_async): the connection parks with it here, and its
    // request, run again when woken, takes it back with the result.
    void wait_store_op(Conn* c, StoreOpRef op);
    // One of another kind was left by a request that then went another way: dropped.
    StoreOpRef take_store_op(const Conn* c, StoreOp::Kind kind);
    // A store change made on a helper for `c`: the first time, `start(op)` begins it (0 and `op`,
    // or -errno); while it runs, `c` parks (false) and its request runs again when woken. Then
    // true, with the change's rc in `rc` and the finished `op` (null if `start` refused).
    template <class Start>
    bool store_op(Conn* c, StoreOp::Kind kind, StoreOpRef& op, int& rc, Start start) {
        op = take_store_op(c, kind);
        rc = op ? 0 : start(op);
        if (rc == 0 && !op->done) {
            wait_store_op(c, std::move(op));
            return false;
        }
        if (rc == 0) rc = op->rc;
        return true;
    }
    // `c` waits for (or holds the result of) a change of this kind: its request, run again,
    // must go the same way even if what it saw before has changed since (a deleted folder).
    bool has_store_op(const Conn* c, StoreOp::Kind kind) const {
        auto it = store_ops_.find(c);
        return it != store_ops_.end() && it->second->kind == kind;
    }
    // The file an upload writes into, created on a helper: false while `c` waits for it (parked;
    // its request runs again, checks included), else true with `rc` the result of adopting it
    // into `up` (0, or -errno / kStoreGone).
    bool upload_file(Conn* c, Upload& up, int& rc);
    // A closed connection's wait: its change goes on, nobody to answer.
    void drop_store_op(const Conn* c);

    // ---- status ----
    // "Date: ...\r\nServer: duet/...\r\n", formatted once a second.
    const std::string& date_header() const { return date_header_; }
    // The JSON of GET /, fixed for the life of this image.
    const std::string& root_body() const { return root_body_; }
    std::uint64_t generation = 0;  // images before this one in this process
    std::uint64_t reloads = 0;
    double started_at = 0;  // CLOCK_REALTIME seconds of the first start of this PID
    // Stopping or reloading (the duet_draining gauge).
    virtual bool draining() const = 0;
    // A stop (not a reload) is under way: GET /healthz and requests parked on the index are
    // answered 503.
    virtual bool stopping() const = 0;
    virtual std::uint64_t log_lines_dropped() const = 0;
    virtual void access_log(const std::string& line) = 0;

  protected:
    explicit SessionHost(const Config& config);
    ~SessionHost() = default;
    // True while a reload writes the rests of streamed listings ahead: a new stream waits.
    virtual bool holding_new_streams() const = 0;

    std::string date_header_;
    std::string root_body_;

  private:
    std::unordered_map<const Conn*, StoreOpRef> store_ops_;  // a late answer finds none
};

}  // namespace duet
