// Resumable uploads on the file port (README "File port", RESUME, PARTIAL): the session side of the
// shared partial-upload store. A sized PUT cut short leaves a partial; RESUME says where the server
// stands and takes the rest; PARTIAL lists what can be resumed.
#include <cerrno>
#include <cstring>

#include "duet/core/log_escape.hpp"
#include "duet/fileport/file_answers.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
// The token this session proved with AUTH (none without --token): partials made under a token
// need it again.
std::string FileConn::session_token() const {
    return authed_ ? host().cfg.token : std::string();
}

int FileConn::write_incoming(const char* p, std::size_t n) {
    Incoming& u = *up_;
    if (u.append.active()) return u.append.write(p, n);
    return u.upload.write(p, n);
}

std::string FileConn::keep_partial() {
    Incoming& u = *up_;
    std::uint64_t got = 0;
    if (u.append.active()) {
        // What arrived is made durable; on failure the partial stays at its last durable offset.
        PartialRef p = u.append.ref();
        u.append.end();
        got = p->offset;
    } else if (u.upload.active() && u.upload.size() > 0) {
        got = u.upload.size();
        PartialSpec spec;
        spec.name = u.name;
        spec.length = u.total;
        spec.token_hash =
            host().cfg.token.empty() ? std::string() : PartialStore::hash_token(session_token());
        spec.has_expected = u.has_digest;
        spec.expected = u.digest;
        spec.pre = u.pre;  // if= is re-checked when the partial is published
        int rc = 0;
        if (!host().partials.adopt(u.upload, spec, rc)) {
            // The name was validated, but every client byte in a log line goes through the
            // escaping formatter (README "Limits").
            host().log("cannot keep the partial upload of %s: %s", log_escape(u.name).c_str(),
                       std::strerror(-rc));
            got = 0;
        }
    }
    return "got " + u64(got) + " of " + u64(u.total) + " bytes";
}

void FileConn::resume(const Command& c) {
    if (!valid_path(c.name)) return reply_and_close("ERR 400 " + path_error(c.name));
    if (std::string why = folder_refusal(c); !why.empty()) return reply_and_close(why);
    if (const char* refusal = size_refusal(c.size, false)) return reply_and_close(refusal);
    // An if= is checked now, like PUT's, before any byte is read; it then replaces what the
    // partial must find at publish, where it is checked again.
    if (int rc = host().store.check_precondition(c.name, c.pre); rc < 0) {
        if (rc == -ECANCELED) return reply_and_close("ERR 412 precondition failed");
        if (rc == -EACCES) return reply_and_close("ERR 403 not readable by the server");
        // A digest being computed or a lookup on a helper: the line runs again when woken.
        if (rc == -EINPROGRESS && !host().stopping()) return host().park(this);
        if (rc == kStoreGone) return reply_and_close("ERR 503 store unavailable");
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM)
            return reply_and_close("ERR 503 busy, retry");
        return reply_and_close("ERR 500 cannot stat");
    }
    std::string token = session_token();
    // A partial this line had created on a helper (below): the line runs again and takes it.
    StoreOpRef made = host().take_store_op(this, StoreOp::Kind::PartialCreate);
    if (made && !made->done) return host().wait_store_op(this, std::move(made));
    PartialRef p = made ? static_cast<PartialCreateOp&>(*made).partial : nullptr;
    if (made && !p)
        return reply_and_close(disk_full(made->rc) ? "ERR 507 disk full" : "ERR 500 cannot store");
    if (!p) p = host().partials.find_named(c.name, c.size);
    if (p && !PartialStore::token_allows(*p, token)) p = nullptr;
    // An append that just ended is still making its last bytes durable on a helper: wait for
    // that (the line runs again when woken), so the offset answered is where it ended.
    if (p && p->busy && !p->active) {
        if (std::shared_ptr<DiskWait> w = PartialStore::pending_sync(*p); w && !w->done)
            return host().park(this);
    }
    int rc = 0;
    if (!p) {
        // Nothing to resume: an ordinary sized upload from 0, itself resumable.
        PartialSpec spec;
        spec.name = std::string(c.name);
        spec.length = c.size;
        spec.token_hash = token.empty() ? std::string() : PartialStore::hash_token(token);
        spec.has_expected = c.has_digest;
        spec.expected = c.digest;
        spec.pre = c.pre;
        // Its data and state files are made on a helper; the line parks and runs again.
        StoreOpRef op;
        rc = host().partials.create_async(spec, op);
        if (rc == 0) return host().wait_store_op(this, std::move(op));
        return reply_and_close(disk_full(rc) ? "ERR 507 disk full" : "ERR 500 cannot store");
    } else if (!made && (c.has_digest || c.pre.kind != Precondition::Kind::None)) {
        // (A partial just made for this line has them already.) Checked at publish; recorded with
        // the partial, so a RESUME cut again keeps them.
        PartialSpec spec = p->spec;
        if (c.has_digest) {
            spec.has_expected = true;
            spec.expected = c.digest;
        }
        if (c.pre.kind != Precondition::Kind::None) spec.pre = c.pre;
        if (p->busy)
            return reply_and_close("ERR 409 another upload to this partial is in progress");
        if (host().partials.set_spec(*p, spec) < 0)
            return reply_and_close("ERR 500 cannot record the partial upload");
    }
    auto in = std::make_unique<Incoming>();
    rc = host().partials.begin_append(p, in->append);
    if (rc == -EBUSY)
        return reply_and_close("ERR 409 another upload to this partial is in progress");
    if (rc < 0) return reply_and_close("ERR 500 cannot open the partial upload");
    in->name = std::string(c.name);
    in->sized = true;
    in->total = c.size;
    in->left = c.size - p->offset;
    in->has_digest = p->spec.has_expected;
    in->digest = p->spec.expected;
    in->pre = p->spec.pre;
    up_ = std::move(in);
    reply("OK " + u64(p->offset));
    if (up_->left == 0) finish_resume();
}

// All the bytes arrived: the append's last checkpoint runs on a helper (CheckpointThenPublish),
// then the publish (after_last_checkpoint).
void FileConn::finish_resume() {
    Incoming& u = *up_;
    u.publishing = u.append.ref();
    u.wait = u.append.finish();
    u.stage = PublishStage::CheckpointThenPublish;
}

// The session was cut (half-close, stall): what arrived is made durable on a helper (Checkpoint),
// and the answer says how much that is.
void FileConn::cut_resume(std::string answer) {
    Incoming& u = *up_;
    u.publishing = u.append.ref();
    u.wait = u.append.finish();
    u.cut_answer = std::move(answer);
    u.stage = PublishStage::Checkpoint;
}

bool FileConn::after_last_checkpoint() {
    Incoming& u = *up_;
    PartialRef p = std::move(u.publishing);
    int rc = u.wait->rc;
    if (u.stage == PublishStage::Checkpoint) {
        std::string answer =
            u.cut_answer + "got " + u64(p->offset) + " of " + u64(u.total) + " bytes, partial kept";
        up_.reset();
        reply_and_close(answer);
        return true;
    }
    if (rc < 0) {
        ++host().metrics.uploads_failed;
        up_.reset();
        reply_and_close(disk_full(rc) ? "ERR 507 disk full; partial kept"
                                      : "ERR 500 cannot store; partial kept");
        return true;
    }
    // Published like a PUT (advance_publish): its bytes are durable already, so the first stage
    // only waits for a digest a compare-and-swap needs, then checks and renames in one step; the
    // directory's fsync runs on a helper.
    u.publishing = p;
    u.stage = PublishStage::SyncData;
    u.wait = std::make_shared<DiskWait>(DiskWait{true, 0});
    return true;
}

void FileConn::partial_list(const Command& c) {
    if (!c.name.empty() && !valid_path(c.name)) return reply("ERR 400 " + path_error(c.name));
    std::string token = session_token();
    std::string lines;
    std::size_t count = 0;
    for (const PartialRef& p : host().partials.list(c.name)) {
        if (!PartialStore::token_allows(*p, token)) continue;
        ++count;
        lines += port_encode(p->spec.name) + " " + u64(p->offset) + " " +
                 (p->spec.length == kUnknownLength ? std::string("-") : u64(p->spec.length)) + " " +
                 p->id + " " + std::to_string(host().partials.expires(*p)) + "\n";
    }
    reply("OK " + u64(count));
    queue_extra(std::move(lines));
}

}  // namespace duet
