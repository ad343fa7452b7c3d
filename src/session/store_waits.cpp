// A protocol session's waits on store work that runs on a helper: the connection parks, and its
// request, run again when woken, takes the result back (SessionHost).
#include "duet/net/conn.hpp"
#include "duet/session/session_host.hpp"

namespace duet {

SessionHost::SessionHost(const Config& config)
    : cfg(config),
      index({loop, helpers, store, *this, [this] { wake_parked(); },
             [this] { return holding_new_streams(); }}) {}

std::shared_ptr<DiskWait> SessionHost::fsync_later(int fd) {
    return helpers.fsync_later(fd, [this] { wake_parked(); });
}

void SessionHost::wait_store_op(Conn* c, StoreOpRef op) {
    store_ops_[c] = std::move(op);
    park(c);
}

StoreOpRef SessionHost::take_store_op(const Conn* c, StoreOp::Kind kind) {
    if (store_ops_.empty()) return {};
    auto it = store_ops_.find(c);
    if (it == store_ops_.end()) return {};
    StoreOpRef op = std::move(it->second);
    store_ops_.erase(it);
    if (op->kind != kind) return {};
    return op;
}

bool SessionHost::upload_file(Conn* c, Upload& up, int& rc) {
    StoreOpRef op = take_store_op(c, StoreOp::Kind::TempFile);
    if (op && !op->done) return wait_store_op(c, std::move(op)), false;
    rc = op ? 0 : store.begin_upload_async(op);
    if (rc == 0 && !op->done) return wait_store_op(c, std::move(op)), false;
    if (rc == 0) rc = store.adopt_upload(*op, up);
    return true;
}

// A closed connection's change goes on, nobody to answer. An upload cut while its file was being
// made counts as failed, as one cut a moment later would.
void SessionHost::drop_store_op(const Conn* c) {
    if (store_ops_.empty()) return;
    auto it = store_ops_.find(c);
    if (it == store_ops_.end()) return;
    StoreOp::Kind k = it->second->kind;
    if ((k == StoreOp::Kind::TempFile || k == StoreOp::Kind::PartialCreate) &&
        (c->parked() || !it->second->done))
        ++metrics.uploads_failed;
    store_ops_.erase(it);
}

}  // namespace duet
