// Resumable uploads over HTTP, the body side: appending a request body to a partial upload,
// progress 104s, and publishing a completed partial through the store's staged publish. The
// routes that start these are in http_uploads.cpp.
#include <cerrno>
#include <string>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/http_upload_answers.hpp"
#include "duet/http/upload_fields.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {

// ---- the body
// ------------------------------------------------------------------------------------

bool HttpConn::start_resumable(const Request& req, const PartialRef& p,
                               std::unique_ptr<ResumableBody> rb) {
    int rc = host().partials.begin_append(p, rb->append);
    if (rc < 0) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        if (rc == -EBUSY)
            respond_error(409, "Another append to this upload is in progress.");
        else
            respond_error(500, "The upload could not be opened.");
        return false;
    }
    if (rb->has_checksum) rb->append.hold();
    rb->announced = p->offset;
    body_ = std::make_unique<Body>();
    body_->resumable = std::move(rb);
    start_body(req, false);
    ex_.keep_alive = req.keep_alive && !drain_close_;
    if (req.body == BodyKind::None) {
        if (!finish_resumable()) body_.reset();  // else published by process(), like any body
        return true;
    }
    if (req.expect_continue && req.minor == 1) {
        ResponseHead head(100, host().date_header());
        queue(head.finish());
    }
    return true;
}

bool HttpConn::feed_resumable(std::string_view chunk) {
    ResumableBody& rb = *body_->resumable;
    PartialAppend& ap = rb.append;
    PartialRef p = ap.ref();
    std::uint64_t after = ap.offset() + chunk.size();
    auto fail = [&](int status, std::string_view msg) {
        body_.reset();  // ends the append: what arrived so far is made durable
        // Where a resume starts: the offset durable now (the end's checkpoint may add to it).
        respond_fatal(
            status, msg,
            p->gone ? std::string() : "Upload-Offset: " + std::to_string(p->offset) + "\r\n");
        expect_unread_input();
        return false;
    };
    if (p->spec.length != kUnknownLength && after > p->spec.length) {
        body_.reset();
        host().partials.remove(p);
        return fail(400, "The upload goes past its length; the upload is cancelled.");
    }
    if (after > host().cfg.max_upload)
        return fail(413, "The upload is larger than the server accepts.");
    int rc = ap.write(chunk.data(), chunk.size());
    if (rc == -ECANCELED) return fail(410, "The upload was cancelled.");
    if (disk_full(rc))
        return fail(507, "The disk is full; the upload is kept at its last durable offset.");
    if (rc < 0)
        return fail(500, "Writing the upload failed; it is kept at its last durable offset.");
    // Progress: a 104 with each offset made durable (IETF clients that named an interop version).
    if (rb.door == UploadDoor::Ietf && rb.interop && p->offset > rb.announced) {
        rb.announced = p->offset;
        send_interim("Upload-Offset: " + std::to_string(p->offset) + "\r\n" +
                     interop_field(rb.interop));
    }
    return true;
}

// The body has arrived: the append's last checkpoint starts on a helper (PublishStage::Checkpoint);
// the answer comes after it (after_last_checkpoint). true while the body stays (process() drives
// advance_publish()); false when answered already.
bool HttpConn::finish_resumable() {
    ResumableBody& rb = *body_->resumable;
    PartialRef p = rb.append.ref();
    if (rb.has_checksum) {
        if (!rb.append.append_digest_is(rb.checksum)) {
            rb.append.end();  // held: rolled back to where this append began
            respond_error(
                460, "The checksum does not match; the bytes were not kept.",
                "Tus-Resumable: 1.0.0\r\nUpload-Offset: " + std::to_string(p->offset) + "\r\n");
            return false;
        }
        rb.append.release_hold();
    }
    rb.publishing = p;
    body_->wait = rb.append.finish();
    body_->stage = PublishStage::Checkpoint;
    return true;
}

// After the last checkpoint: the answer, or (complete) on to the publish. true when publishing
// goes on (SyncData), false when answered.
bool HttpConn::after_last_checkpoint() {
    ResumableBody& rb = *body_->resumable;
    PartialRef p = rb.publishing;
    rb.publishing.reset();
    std::string echo = interop_field(rb.interop);
    int rc = body_->wait->rc;
    if (p->gone) {
        respond_error(410, "The upload was cancelled.");
        return false;
    }
    if (rc < 0) {
        bool full = disk_full(rc);
        respond_error(full ? 507 : 500,
                      full ? "The disk is full; the upload is kept at its last durable offset."
                           : "The upload could not be made durable.",
                      "Upload-Offset: " + std::to_string(p->offset) + "\r\n");
        return false;
    }
    if (body_->kind == BodyKind::Chunked && !body_->chunked.trailers().empty()) {
        // Digests in the trailer section count like those in the head (README "Digests").
        ExpectedDigest expected;
        bool whole = rb.door == UploadDoor::Ietf && rb.creation && rb.complete;
        if (!trailer_digests(body_->chunked.trailers(), whole, expected)) {
            respond_error(400, "A trailer field is malformed; the upload is kept.",
                          "Upload-Offset: " + std::to_string(p->offset) + "\r\n");
            return false;
        }
        if (int e = expect_digest(p, expected); e != 0) {
            respond_error(e > 0 ? 400 : 500,
                          e > 0 ? "The digest differs from the one the upload expects."
                                : "The digest could not be recorded.",
                          "Upload-Offset: " + std::to_string(p->offset) + "\r\n");
            return false;
        }
    }
    // An append that reaches the length the upload declared completes it even when it says
    // Upload-Complete: ?0, as tusd does: no further byte could be taken, and a client that sent
    // every byte (tus-js-client's ietf-draft-05 mode ends so) would otherwise wait forever.
    if (rb.door == UploadDoor::Ietf && !rb.complete && p->spec.length != kUnknownLength &&
        p->offset == p->spec.length && p->offset > 0)
        rb.complete = true;
    if (rb.door == UploadDoor::Ietf && rb.complete) {
        if (p->spec.length == kUnknownLength) host().partials.set_length(*p, p->offset);
        if (p->offset != p->spec.length) {
            respond(
                400, "application/problem+json",
                problem_body("inconsistent-upload-length", "inconsistent length values for upload"),
                echo + "Upload-Complete: ?0\r\nUpload-Offset: " + std::to_string(p->offset) +
                    "\r\n");
            return false;
        }
        rb.publishing = p;
        body_->stage = PublishStage::SyncData;
        return true;
    }
    if (rb.door == UploadDoor::Tus && p->offset == p->spec.length) {
        rb.publishing = p;
        body_->stage = PublishStage::SyncData;
        return true;
    }
    std::string fields = state_fields(*p, host().partials.expires(*p));
    if (rb.door == UploadDoor::Ietf)
        fields += "Upload-Complete: ?0\r\n" + echo + upload_limit_field(p.get());
    if (rb.creation) {
        fields += "Location: /uploads/" + p->id + "\r\n";
        respond(201, {}, {}, fields);
    } else {
        respond(204, {}, {}, fields);
    }
    return false;
}

// Publishing a completed partial follows PUT's steps (README "Limits", see finish_upload): its
// bytes are durable already (Checkpoint waited for the append's last checkpoint); SyncData: the
// checks on the loop (after any digest a compare-and-swap needs is known); Rename: on a helper;
// SyncDir: the directory's fsync on a helper; then the answer.
bool HttpConn::advance_partial_publish() {
    Body& b = *body_;
    ResumableBody& rb = *b.resumable;
    PartialRef p = rb.publishing;
    if (b.stage == PublishStage::Checkpoint) {
        if (!b.wait->done) {
            host().park(this);
            return false;
        }
        if (after_last_checkpoint()) return advance_partial_publish();
    } else if (b.stage == PublishStage::SyncData) {
        StoreOpRef op;
        int rc = host().partials.publish(p, op);
        if (rc == -EINPROGRESS) {  // a digest or lookup on its way, or another change of the name
            host().park(this);
            return false;
        }
        if (rc == 0) {
            b.stage = PublishStage::Rename;
            b.wait = op;
            return advance_partial_publish();
        }
        publish_failed(rb, rc);
    } else if (!b.wait->done) {
        host().park(this);
        return false;
    } else if (b.stage == PublishStage::Rename) {
        const StoreOp& op = static_cast<const StoreOp&>(*b.wait);
        if (op.rc == 0) {
            b.info = op.info;
            b.created = op.created;
            b.stage = PublishStage::SyncDir;
            b.wait = host().fsync_later(host().store.dirfd());
            return advance_partial_publish();
        }
        publish_failed(rb, op.rc);
    } else if (b.wait->rc < 0) {
        // The file is in place, but its name may not survive a crash: say so.
        ++host().metrics.uploads_failed;
        respond_error(500, "The upload could not be made durable.", done_fields(rb));
    } else {
        published_answer(rb, p);
    }
    bool gone = b.peer_gone;
    body_.reset();
    if (gone) close_after_output();
    return true;
}

std::string HttpConn::done_fields(const ResumableBody& rb) const {
    return rb.door == UploadDoor::Ietf ? "Upload-Complete: ?1\r\n" + interop_field(rb.interop)
                                       : std::string("Tus-Resumable: 1.0.0\r\n");
}

// The check and the rename; true when the file is in place (its directory not yet synced).
// Otherwise answered.
void HttpConn::publish_failed(const ResumableBody& rb, int rc) {
    std::string done = done_fields(rb);
    {
        ++host().metrics.uploads_failed;
        if (rc == -EBADMSG)
            respond_error(400, "The upload does not match its digest; nothing was stored.", done);
        else if (rc == -ESTALE)
            respond_error(412, "A precondition of the upload no longer holds; nothing was stored.",
                          done);
        else if (rc == -ECANCELED)
            respond_error(410, "The upload was cancelled.");
        else if (rc == -EACCES)
            respond_error(403,
                          "The file exists but the server may not read it; the upload is kept.",
                          "Upload-Complete: ?0\r\n");
        else if (disk_full(rc))
            respond_error(507, "The disk is full; the upload is kept.", "Upload-Complete: ?0\r\n");
        else if (rc == -ENOTDIR || rc == -EISDIR)
            respond_error(409,
                          rc == -EISDIR ? "A folder has this name; the upload is kept."
                                        : "A folder on the way is a file; the upload is kept.",
                          "Upload-Complete: ?0\r\n");
        else if (rc == kStoreGone || rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM)
            store_trouble(rc);
        else
            respond_error(500, "The upload could not be stored; it is kept.",
                          "Upload-Complete: ?0\r\n");
    }
}

void HttpConn::published_answer(const ResumableBody& rb, const PartialRef& p) {
    const Body& b = *body_;
    const FileInfo& info = b.info;
    ++host().metrics.uploads_ok;
    host().metrics.upload_bytes += info.size;
    std::string fields = done_fields(rb) + "Upload-Offset: " + std::to_string(p->offset) +
                         "\r\nETag: \"" + to_hex(info.sha256) + "\"\r\n";
    if (rb.door == UploadDoor::Tus) {
        // tus: the append answer; a creation that carried the whole upload still says where.
        if (rb.creation) {
            fields += "Location: /uploads/" + p->id + "\r\n";
            respond(201, {}, {}, fields);
        } else {
            respond(204, {}, {}, fields);
        }
        return;
    }
    // IETF: what the creation request (a PUT of the file) would have answered.
    if (b.created) fields += "Location: /files/" + url_encode(info.name) + "\r\n";
    respond(b.created ? 201 : 200, "application/json", file_info_json(info), fields);
}

}  // namespace duet
