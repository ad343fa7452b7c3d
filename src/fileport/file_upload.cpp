// File-port uploads (README "File port", PUT): the bytes of a sized or half-close-ended PUT into
// the upload's file, then the publish without waiting for the disk on the loop, and the answer.
#include <cerrno>
#include <cstdio>

#include "duet/fileport/file_answers.hpp"
#include "duet/fileport/file_conn.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {

// As HTTP does with Content-Length: a size that can never fit, or does not fit now, is refused
// before any byte is read.
const char* FileConn::size_refusal(std::uint64_t size, bool whole) {
    if (size > host().cfg.max_upload) return "ERR 413 upload larger than the server accepts";
    std::uint64_t total = 0, avail = 0;
    if (host().store.space(total, avail) != 0) return nullptr;
    if (size > total) return "ERR 413 upload larger than the file system";
    if (whole && size > avail) return "ERR 507 not enough free space; nothing stored";
    return nullptr;
}

void FileConn::put(const Command& c) {
    if (!valid_path(c.name)) return reply_and_close("ERR 400 " + path_error(c.name));
    if (std::string why = folder_refusal(c); !why.empty()) return reply_and_close(why);
    // Checked before any byte is read; the bytes that follow cannot be told from commands.
    if (int rc = host().store.check_precondition(c.name, c.pre); rc < 0) {
        if (rc == -ECANCELED) return reply_and_close("ERR 412 precondition failed");
        if (rc == -EACCES) return reply_and_close("ERR 403 not readable by the server");
        if (rc == -EINPROGRESS && !host().stopping())
            return host().park(this);  // digest on its way
        if (const char* t = trouble_answer(rc)) return reply_and_close(t);
        return reply_and_close("ERR 500 cannot stat");
    }
    if (c.sized)
        if (const char* refusal = size_refusal(c.size, true)) return reply_and_close(refusal);
    // The file is created on a helper (Store::begin_upload_async): the line parks and runs again,
    // its checks too, then adopts the file.
    auto in = std::make_unique<Incoming>();
    int rc = 0;
    if (!host().upload_file(this, in->upload, rc)) return;
    if (rc < 0) {
        if (const char* t = trouble_answer(rc)) return reply_and_close(t);
        return reply_and_close(disk_full(rc) ? "ERR 507 disk full" : "ERR 500 cannot store");
    }
    in->name = std::string(c.name);
    in->sized = c.sized;
    in->left = c.size;
    in->total = c.size;
    in->has_digest = c.has_digest;
    in->digest = c.digest;
    in->pre = c.pre;
    up_ = std::move(in);
    if (up_->sized && up_->left == 0) finish_upload();
}

bool FileConn::feed_upload() {
    Incoming& u = *up_;
    if (in_.empty()) return false;
    // The helper writing the bytes is behind (the upload's pipe is full), or a RESUME is two
    // checkpoints ahead of the disk: the session reads again once the helper has caught up.
    if (u.append.backlogged() || u.upload.backlogged()) {
        host().park(this);
        return false;
    }
    std::size_t n = in_.size();
    if (u.sized && n > u.left) n = std::size_t(u.left);
    if (!u.sized && u.upload.size() + n > host().cfg.max_upload) {
        fail_upload("ERR 413 upload larger than the server accepts");
        return false;
    }
    int rc = write_incoming(in_.head(), n);
    in_.consume(n);
    if (rc < 0) {
        if (u.append.active()) {
            ++host().metrics.uploads_failed;
            std::string got = keep_partial();
            up_.reset();
            reply_and_close(rc == -ECANCELED ? "ERR 410 the partial upload was cancelled"
                            : disk_full(rc)  ? "ERR 507 disk full; " + got + ", partial kept"
                                             : "ERR 500 write failed; " + got + ", partial kept");
            return false;
        }
        fail_upload(disk_full(rc) ? "ERR 507 disk full; nothing stored" : "ERR 500 write failed");
        return false;
    }
    if (u.sized) {
        u.left -= n;
        if (u.left == 0) finish_upload();
    }
    return true;
}

void FileConn::fail_upload(const char* answer) {
    ++host().metrics.uploads_failed;
    up_.reset();
    reply_and_close(answer);
}

// Publish without waiting for the disk on the loop: the data's fsync on a helper, then the
// checks and the rename in one loop step, then the directory's fsync on a helper, then the
// answer (the same steps as HTTP, see HttpConn::finish_upload).
void FileConn::finish_upload() {
    if (up_->append.active()) return finish_resume();
    Incoming& u = *up_;
    u.stage = PublishStage::SyncData;
    u.wait = u.upload.sync_later();  // the pipe drains, then fsyncs
}

bool FileConn::advance_publish() {
    Incoming& u = *up_;
    if (!u.wait->done) {
        host().park(this);
        return false;
    }
    if (u.stage == PublishStage::Checkpoint || u.stage == PublishStage::CheckpointThenPublish)
        return after_last_checkpoint();
    int rc = u.wait->rc;
    if (u.stage == PublishStage::SyncData && rc == 0) {
        // The checks run now, on the loop; the rename on a helper (store_publish.cpp). A
        // compare-and-swap whose digest or lookup is on its way, or whose name another change
        // by duet holds, waits here and comes again.
        StoreOpRef op;
        if (u.publishing) {
            // A completed partial (file_resume.cpp): its precondition failing is -ESTALE there.
            rc = host().partials.publish(u.publishing, op);
        } else {
            u.upload.set_synced();
            u.upload.defer_dir_sync();
            rc = u.upload.commit_async(u.name, u.has_digest ? &u.digest : nullptr, u.pre, op);
        }
        if (rc == -EINPROGRESS) {
            host().park(this);
            return false;
        }
        if (rc == 0) {
            u.stage = PublishStage::Rename;
            u.wait = op;
            return advance_publish();
        }
    } else if (u.stage == PublishStage::Rename) {
        const StoreOp& op = static_cast<const StoreOp&>(*u.wait);
        if (rc == 0) {
            u.info = op.info;
            u.stage = PublishStage::SyncDir;
            u.wait = host().fsync_later(host().store.dirfd());
            return advance_publish();
        }
    }
    if (u.publishing) {
        if (rc == -ECANCELED) rc = -ENOENT;  // cancelled meanwhile (HTTP DELETE): 500
        if (rc == -ESTALE) rc = -ECANCELED;
    }
    FileInfo info = u.info;
    bool close_after = u.close_after;
    // A partial that could not be published for want of room or a readable file is kept.
    bool kept = u.publishing && !u.publishing->gone;
    up_.reset();
    if (rc == -EBADMSG || rc == -ECANCELED) {
        // The byte count was right: the session goes on.
        ++host().metrics.uploads_failed;
        reply(rc == -EBADMSG ? "ERR 422 digest mismatch" : "ERR 412 precondition failed");
    } else if (rc == -ENOTDIR || rc == -EISDIR) {  // a folder raced the upload (README "Folders")
        ++host().metrics.uploads_failed;
        reply(rc == -EISDIR ? "ERR 409 a folder has this name"
                            : "ERR 409 a folder on the way is a file");
    } else if (rc == -EACCES) {  // the precondition needed a digest of a file duet may not read
        ++host().metrics.uploads_failed;
        reply(kept ? "ERR 403 not readable by the server; partial kept"
                   : "ERR 403 not readable by the server");
    } else if (rc < 0) {
        ++host().metrics.uploads_failed;
        if (const char* t = trouble_answer(rc))
            reply_and_close(t);
        else if (kept)
            reply_and_close(disk_full(rc) ? "ERR 507 disk full; partial kept"
                                          : "ERR 500 cannot store");
        else
            reply_and_close(disk_full(rc) ? "ERR 507 disk full; nothing stored"
                                          : "ERR 500 cannot store");
    } else {
        ++host().metrics.uploads_ok;
        host().metrics.upload_bytes += info.size;
        reply("OK " + u64(info.size) + " " + to_hex(info.sha256));
    }
    if (close_after) close_after_output();
    return true;
}

}  // namespace duet
