// The /files routes: listing, download (ranges, validators, digests), upload, delete.
#include <cerrno>
#include <cstdio>

#include "duet/core/base64.hpp"
#include "duet/core/json.hpp"
#include "duet/http/http_conditional.hpp"
#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/page.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {

std::string quoted_etag(const Digest& d) {
    return "\"" + to_hex(d) + "\"";
}

std::string repr_digest(const Digest& d) {
    return "sha-256=:" + base64_encode(d.data(), d.size()) + ":";
}

std::string file_json(const FileInfo& f, bool with_mtime) {
    char num[96];
    std::string s = "{\"name\":\"" + json_escape(f.name) + "\",\"size\":";
    std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(f.size));
    s += num;
    // A file duet may not read has no digest it could vouch for: null, not a made-up one.
    s += f.readable ? ",\"sha256\":\"" + to_hex(f.sha256) + "\"" : std::string(",\"sha256\":null");
    if (with_mtime) {
        std::snprintf(num, sizeof num, ",\"mtime\":%lld", static_cast<long long>(f.mtime));
        s += num;
    }
    s += "}";
    return s;
}

}  // namespace

// Answers a store error that is not about the file itself; false if `rc` is none of them.
bool HttpConn::store_trouble(int rc) {
    switch (classify_store_error(rc)) {
        case StoreTrouble::Gone:
            respond_error(503, "The store is unavailable: " + host().store.gone_reason() + ".");
            return true;
        case StoreTrouble::Busy:
            ++host().metrics.busy_503;
            respond_error(503, "The server is out of resources; retry.", "Retry-After: 1\r\n");
            return true;
        case StoreTrouble::Wait:
            // The digest (or listing) is being computed: wait for it, unless we are stopping.
            if (host().stopping())
                respond_error(503, "The server is shutting down.", "Retry-After: 1\r\n");
            else
                host().park(this);
            return true;
        default:
            return false;
    }
}

// GET /files is the top folder's listing (http_folders.cpp).
void HttpConn::route_files_list(const Request& req) {
    list_folder(req, {});
}

namespace {

// The value of every `name` line, combined as RFC 9110 §5.3 says ("a, b"); `storage` holds the
// combination when there is more than one line. false when the field is absent.
bool field_value(const Request& req, std::string_view name, std::string& storage,
                 std::string_view& out) {
    int n = 0;
    for (std::size_t i = 0; i < req.header_count; ++i) {
        if (!iequals(req.headers[i].name, name)) continue;
        if (n == 1) storage.assign(out);
        if (n >= 1) {
            storage += ", ";
            storage.append(req.headers[i].value);
        }
        out = req.headers[i].value;
        ++n;
    }
    if (n > 1) out = storage;
    return n > 0;
}

bool is_star(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v == "*";
}

}  // namespace

bool has_conditions(const Request& req) {
    for (const char* f : {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})
        if (req.find(f)) return true;
    return false;
}

bool head_digests(const Request& req, bool content, ExpectedDigest& out) {
    for (const char* f : {"repr-digest", "content-digest"}) {
        if (!content && f[0] == 'c') continue;
        std::string storage;
        std::string_view value;
        if (field_value(req, f, storage, value) && !out.add(value)) return false;
    }
    return true;
}

bool trailer_digests(std::string_view trailers, bool content, ExpectedDigest& out) {
    for (const char* f : {"repr-digest", "content-digest"}) {
        if (!content && f[0] == 'c') continue;
        std::string combined;
        bool present = false;
        if (!trailer_value(trailers, f, combined, present) || (present && !out.add(combined)))
            return false;
    }
    return true;
}

void HttpConn::route_file(const Request& req, std::string_view raw_name) {
    std::string name;
    bool folder = false;
    std::string why = decode_path(raw_name, name, folder);
    if (!why.empty()) {
        if (req.method == "PUT" && req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(400, why);
        return;
    }
    if (req.method == "MOVE") return move_entry(req, name);
    // DELETE of a folder works with or without its '/'.
    if (folder || req.method == "MKCOL" ||
        (req.method == "DELETE" && (host().index.holds_folder(name) ||
                                    host().has_store_op(this, StoreOp::Kind::DeleteFolder))))
        return route_folder(req, name);
    if (req.method == "PUT" || req.method == "POST") {
        // IETF resumable upload creation (Upload-Complete); without a supported interop version
        // it is an ordinary upload. POST means nothing else here.
        bool resumable = req.find("upload-complete") != nullptr;
        if (resumable && create_resumable(req, name)) return;
        if (req.method == "POST" && !resumable) {
            if (req.body != BodyKind::None) ex_.keep_alive = false;
            // Not 405: POST is a method this route takes, with that field (RFC 9110 §15.5.6
            // would have Allow list it, which tells the client nothing).
            respond_error(400,
                          "POST here creates a resumable upload: it needs an Upload-Complete "
                          "field (or use PUT).");
            return;
        }
        if (path_conflict(req, name)) return;
        put_file(req, name);
    } else if (req.method == "DELETE") {
        delete_file(req, name);
    } else {
        get_file(req, name);
    }
}

int HttpConn::size_refusal(std::uint64_t size, std::string_view& msg) {
    if (size > host().cfg.max_upload) {
        msg = "The upload is larger than the server accepts.";
        return 413;
    }
    std::uint64_t total = 0, avail = 0;
    if (host().store.space(total, avail) != 0) return 0;
    if (size > total) {
        msg = "The upload is larger than the store's file system.";
        return 413;
    }
    if (size > avail) {
        msg = "The disk has not enough free space; nothing was stored.";
        return 507;
    }
    return 0;
}

// RFC 9110 §13.2: evaluates the preconditions against the current file. Returns true when it has
// answered (304 or 412, or an error reading the file); otherwise `pre` is what must still hold
// when the change is published. `info`/`rc` are the current state (Store::stat).
bool HttpConn::preconditions(const Request& req, CondMethod m, const FileInfo& info, int rc,
                             Precondition& pre, std::string_view extra_fields) {
    CondHeaders h;
    std::string s1, s2, s3, s4;
    h.has_if_match = field_value(req, "if-match", s1, h.if_match);
    h.has_if_none_match = field_value(req, "if-none-match", s2, h.if_none_match);
    h.has_if_modified_since = field_value(req, "if-modified-since", s3, h.if_modified_since);
    h.has_if_unmodified_since = field_value(req, "if-unmodified-since", s4, h.if_unmodified_since);
    if (!h.any()) return false;
    std::string etag;
    CondState st;
    st.exists = rc == 0;
    if (st.exists) {
        etag = quoted_etag(info.sha256);
        st.etag = etag;
        st.mtime = info.mtime;
    }
    switch (evaluate_conditions(m, h, st)) {
        case CondOutcome::NotModified: {
            ResponseHead head(304, host().date_header());
            head.raw(extra_fields);
            send(head, {});
            return true;
        }
        case CondOutcome::PreconditionFailed:
            if (req.body != BodyKind::None) ex_.keep_alive = false;
            respond_error(412, kPreconditionFailed);
            return true;
        case CondOutcome::Proceed:
            break;
    }
    // What was true now must still be true at publish: the tightest statement of the state
    // the conditions were evaluated on, except that "*" only asks for existence.
    using K = Precondition::Kind;
    std::int64_t date = 0;
    // If-Modified-Since (ignored outside GET/HEAD) and an unreadable date ask for nothing.
    bool asked = h.has_if_match || h.has_if_none_match ||
                 (h.has_if_unmodified_since && parse_http_date(h.if_unmodified_since, date));
    if (!asked) {
        pre.kind = K::None;
    } else if (h.has_if_match && is_star(h.if_match) && st.exists) {
        pre.kind = K::MustExist;
    } else if (h.has_if_none_match && !h.has_if_match && is_star(h.if_none_match)) {
        pre.kind = K::MustNotExist;
    } else if (st.exists) {
        pre.kind = K::MustMatch;
        pre.etag = info.sha256;
    } else {
        pre.kind = K::MustNotExist;
    }
    return false;
}

void HttpConn::get_file(const Request& req, const std::string& name) {
    Fd fd;
    FileInfo info;
    int rc = host().store.open_read(name, fd, info);
    // RFC 9110 §13.2.1: preconditions are ignored when the answer would not be 2xx/412 anyway.
    if (rc == -ENOENT) {
        // A folder named without its '/' (README "Folders"): looked for only when no file has
        // the name, so a file's GET pays nothing for it.
        if (host().index.holds_folder(name)) {
            std::string to = "/files/" + url_encode(name) + "/";
            std::size_t q = req.target.find('?');
            if (q != std::string_view::npos) to += req.target.substr(q);
            respond_error(301, "This is a folder: " + to, "Location: " + to + "\r\n");
            return;
        }
        respond_error(404, "No file has this name.");
        return;
    }
    if (rc == -EACCES) {
        respond_error(403, kUnreadable);
        return;
    }
    if (rc < 0) {
        if (!store_trouble(rc)) respond_error(500, "The file could not be read.");
        return;
    }
    std::string etag = quoted_etag(info.sha256);
    std::string fields = "ETag: " + etag + "\r\nLast-Modified: " + http_date(info.mtime) +
                         "\r\nAccept-Ranges: bytes\r\nRepr-Digest: " + repr_digest(info.sha256) +
                         "\r\n";
    Precondition pre;
    CondMethod m = req.method == "HEAD" ? CondMethod::Head : CondMethod::Get;
    if (preconditions(req, m, info, 0, pre, fields)) return;
    std::uint64_t start = 0, length = info.size;
    int status = 200;
    const Header* range = req.find("range");
    const Header* if_range = req.find("if-range");
    // RFC 9110 §14.2: range handling is defined for GET only (HEAD answers as a 200 would).
    // If-Range (§13.1.5) with our strong tag; a date or any other tag sends the whole file.
    bool range_applies = range && req.method == "GET" && (!if_range || if_range->value == etag);
    if (range_applies) {
        switch (parse_range(range->value, info.size, start, length)) {
            case RangeResult::Ignore:
                break;
            case RangeResult::Unsatisfiable: {
                char cr[64];
                std::snprintf(cr, sizeof cr, "Content-Range: bytes */%llu\r\n",
                              static_cast<unsigned long long>(info.size));
                respond_error(416, "The range is outside the file.", cr);
                return;
            }
            case RangeResult::Satisfiable:
                status = 206;
                break;
        }
    }
    ResponseHead head(status, host().date_header());
    // A type from the name, never one a browser runs; and a sandbox whatever it is (README "The
    // page"): a stored file can never run script on duet's origin.
    MediaType type = stored_media_type(name);
    head.header("Content-Type", type.type);
    head.raw("Content-Security-Policy: sandbox\r\n");
    if (type.attachment) head.header("Content-Disposition", attachment_disposition(leaf_of(name)));
    head.raw(fields);
    if (status == 206) {
        char cr[96];
        std::snprintf(cr, sizeof cr, "Content-Range: bytes %llu-%llu/%llu\r\n",
                      static_cast<unsigned long long>(start),
                      static_cast<unsigned long long>(start + length - 1),
                      static_cast<unsigned long long>(info.size));
        head.raw(cr);
    }
    send_file(head, std::move(fd), start, length);
}

// The checks on the loop, the unlink on a helper (Store::remove_async): the connection parks
// meanwhile and this runs again, then with the result.
void HttpConn::delete_file(const Request& req, const std::string& name) {
    int rc = 0;
    if (StoreOpRef op = host().take_store_op(this, StoreOp::Kind::Delete)) {
        if (!op->done) return host().wait_store_op(this, std::move(op));
        rc = op->rc;
    } else {
        Precondition pre;
        if (has_conditions(req)) {
            FileInfo info;
            rc = host().store.stat(name, info);
            if (rc == 0 && preconditions(req, CondMethod::Delete, info, rc, pre)) return;
        }
        if (rc == 0 || rc == -ENOENT) rc = host().store.remove_async(name, pre, op);
        if (rc == 0 && !op->done) return host().wait_store_op(this, std::move(op));
        if (rc == 0) rc = op->rc;
    }
    if (rc == -ENOENT) {
        respond_error(404, "No file has this name.");
    } else if (rc == -EACCES) {
        respond_error(403, kUnreadable);
    } else if (rc == -ECANCELED) {
        respond_error(412, kPreconditionFailed);
    } else if (rc < 0) {
        if (!store_trouble(rc)) respond_error(500, "The file could not be deleted.");
    } else {
        respond(204, {}, {});
    }
}

void HttpConn::put_file(const Request& req, const std::string& name) {
    // Answers known before the body is read go out at once; with a body on its way we then close,
    // since reading a body we will not store is the client's cost, not ours.
    auto refuse = [&](int status, std::string_view msg) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(status, msg);
    };
    ExpectedDigest expected;
    if (!head_digests(req, true, expected)) return refuse(400, "The digest field is malformed.");
    Precondition pre;
    if (has_conditions(req)) {
        FileInfo info;
        int st = host().store.stat(name, info);
        if (st == -EACCES) return refuse(403, kUnreadable);
        // The current file's digest is being computed, or the store is gone: wait or say so.
        if (st != 0 && st != -ENOENT && store_trouble(st)) return;
        if (preconditions(req, CondMethod::Put, info, st, pre)) return;
    }
    std::string_view too_big;
    if (req.body == BodyKind::Length)
        if (int status = size_refusal(req.content_length, too_big)) return refuse(status, too_big);
    // The file is created on a helper (Store::begin_upload_async): the request parks and runs
    // again, its checks too, then adopts the file.
    body_ = std::make_unique<Body>();
    int rc = 0;
    if (!host().upload_file(this, body_->upload, rc)) {
        body_.reset();
        return;
    }
    if (rc < 0) {
        body_.reset();
        if (rc == kStoreGone || rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM) {
            if (req.body != BodyKind::None) ex_.keep_alive = false;
            store_trouble(rc);
            return;
        }
        bool full = disk_full(rc);
        return refuse(full ? 507 : 500, full ? "The disk is full; nothing was stored."
                                             : "The upload could not be started.");
    }
    body_->name = name;
    body_->expected = expected;
    body_->pre = pre;
    start_body(req, true);
    ex_.keep_alive = req.keep_alive && !drain_close_;
    if (req.body == BodyKind::None) {
        if (!finish_upload()) body_.reset();  // else published by process(), like any body
        return;
    }
    if (req.expect_continue && req.minor == 1) {
        // Interim answer: no Content-Length, but Date and Server like every response (README "HTTP
        // API").
        ResponseHead head(100, host().date_header());
        queue(head.finish());
    }
}

// Publish in steps, none of which waits for the disk on the loop: the data's fsync on a helper;
// then the checks on the loop and the rename on a helper (a compare-and-swap stays atomic with
// respect to every other request: no other change of the name by duet starts in between, see
// store_publish.cpp); then the directory's fsync on a helper; then the answer. The connection parks
// while a helper works. false when the upload was refused before that (already answered; the caller
// drops the body).
bool HttpConn::finish_upload() {
    Body& b = *body_;
    if (b.kind == BodyKind::Chunked && !b.chunked.trailers().empty()) {
        // Digests may come in the trailer section too; each must match like those in the head.
        if (!trailer_digests(b.chunked.trailers(), true, b.expected)) {
            ++host().metrics.uploads_failed;
            b.upload.abort();
            respond_error(400, "A trailer field is malformed; nothing was stored.");
            return false;
        }
    }
    if (b.expected.conflict) {
        // Two different digests cannot both match the body: a mismatch whatever the bytes were.
        b.upload.abort();
        upload_failed(-EBADMSG);
        return false;
    }
    b.stage = PublishStage::SyncData;
    b.wait = b.upload.sync_later();  // the pipe drains, then fsyncs
    return true;
}

bool HttpConn::advance_publish() {
    Body& b = *body_;
    if (b.resumable) return advance_partial_publish();
    if (!b.wait->done) {
        host().park(this);
        return false;
    }
    if (b.stage == PublishStage::SyncData) {
        if (b.wait->rc < 0) {
            b.upload.abort();
            upload_failed(b.wait->rc);
        } else {
            // The checks run now, on the loop; the rename on a helper (store_publish.cpp). A
            // compare-and-swap whose current digest is being computed, whose name's lookup is on
            // a helper, or whose name another change by duet holds, waits here and comes again.
            b.upload.set_synced();
            b.upload.defer_dir_sync();
            StoreOpRef op;
            int rc =
                b.upload.commit_async(b.name, b.expected.any ? &b.expected.d : nullptr, b.pre, op);
            if (rc == -EINPROGRESS) {
                host().park(this);
                return false;
            }
            if (rc == 0) {
                b.stage = PublishStage::Rename;
                b.wait = op;
                return advance_publish();
            }
            upload_failed(rc);
        }
    } else if (b.stage == PublishStage::Rename) {
        const StoreOp& op = static_cast<const StoreOp&>(*b.wait);
        if (op.rc == 0) {
            b.info = op.info;
            b.created = op.created;
            b.stage = PublishStage::SyncDir;
            b.wait = host().fsync_later(host().store.dirfd());
            return advance_publish();
        }
        if (!op.conflict.empty() && (op.rc == -ENOTDIR || op.rc == -EISDIR)) {
            ++host().metrics.uploads_failed;
            respond_error(409, op.conflict + (op.rc == -EISDIR ? " is a folder" : " is a file"));
        } else {
            upload_failed(op.rc);
        }
    } else if (b.wait->rc < 0) {
        // The new file is in place, but its name may not survive a crash: say so.
        upload_failed(b.wait->rc);
    } else {
        ++host().metrics.uploads_ok;
        host().metrics.upload_bytes += b.info.size;
        ResponseHead head(b.created ? 201 : 200, host().date_header());
        head.header("Content-Type", "application/json");
        if (b.created) head.header("Location", "/files/" + url_encode(b.info.name));
        head.header("ETag", quoted_etag(b.info.sha256));
        send(head, file_json(b.info, false) + "\n");
    }
    bool gone = b.peer_gone;
    body_.reset();
    if (gone) close_after_output();
    return true;
}

void HttpConn::upload_failed(int rc) {
    ++host().metrics.uploads_failed;
    if (rc == -EBADMSG) {
        respond_error(400, "The body does not match its digest; nothing was stored.");
    } else if (rc == -ECANCELED) {
        respond_error(412, kPreconditionFailed);
    } else if (rc == -EACCES) {
        respond_error(403, kUnreadable);
    } else if (rc == -ENOTDIR || rc == -EISDIR) {
        respond_error(409,
                      rc == -EISDIR ? "A folder has this name." : "A folder on the way is a file.");
    } else if (disk_full(rc)) {
        respond_error(507, "The disk is full; nothing was stored.");
    } else if (rc == kStoreGone || rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM) {
        store_trouble(rc);
    } else {
        respond_error(500, "The upload could not be stored.");
    }
}

}  // namespace duet
