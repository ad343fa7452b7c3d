// The /files routes: listing, download (ranges, validators, digests), upload, delete.
#include <cerrno>
#include <cstdio>

#include "duet/base64.hpp"
#include "duet/http_conn.hpp"
#include "duet/http_fields.hpp"
#include "duet/server.hpp"

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
    std::string s = "{\"name\":\"" + f.name + "\",\"size\":";
    std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(f.size));
    s += num;
    s += ",\"sha256\":\"" + to_hex(f.sha256) + "\"";
    if (with_mtime) {
        std::snprintf(num, sizeof num, ",\"mtime\":%lld", static_cast<long long>(f.mtime));
        s += num;
    }
    s += "}";
    return s;
}

}  // namespace

bool HttpConn::authorized(const Request& req) {
    if (srv_.cfg.token.empty()) return true;
    const Header* h = req.find("authorization");
    return h && bearer_matches(h->value, srv_.cfg.token);
}

void HttpConn::route_files_list(const Request&) {
    std::vector<FileInfo> files;
    int rc = srv_.store.list(files);
    if (rc < 0) {
        respond_error(500, "The store could not be listed.");
        return;
    }
    std::string body = "[";
    for (std::size_t i = 0; i < files.size(); ++i) {
        if (i) body += ',';
        body += file_json(files[i], true);
    }
    body += "]\n";
    send_long_typed(200, "application/json", std::move(body));
}

void HttpConn::route_file(const Request& req, std::string_view raw_name) {
    std::string name;
    if (!percent_decode(raw_name, name) || !valid_name(name)) {
        if (req.method == "PUT" && req.body != BodyKind::None) ex_.keep_alive = false;
        respond_error(400, "invalid file name");
        return;
    }
    if (req.method == "PUT" || req.method == "POST") {
        // IETF resumable upload creation (Upload-Complete); without a supported interop version
        // it is an ordinary upload. POST means nothing else here.
        bool resumable = req.find("upload-complete") != nullptr;
        if (resumable && create_resumable(req, name)) return;
        if (req.method == "POST" && !resumable) {
            if (req.body != BodyKind::None) ex_.keep_alive = false;
            respond_error(405, "POST here needs Upload-Complete (a resumable upload).",
                          "Allow: GET, HEAD, PUT, POST, DELETE, OPTIONS\r\n");
            return;
        }
        put_file(req, name);
    } else if (req.method == "DELETE") {
        delete_file(name);
    } else {
        get_file(req, name);
    }
}

void HttpConn::get_file(const Request& req, const std::string& name) {
    Fd fd;
    FileInfo info;
    int rc = srv_.store.open_read(name, fd, info);
    if (rc == -ENOENT) {
        respond_error(404, "No file has this name.");
        return;
    }
    if (rc < 0) {
        respond_error(500, "The file could not be read.");
        return;
    }
    std::string etag = quoted_etag(info.sha256);
    std::string fields = "ETag: " + etag + "\r\nLast-Modified: " + http_date(info.mtime) +
                         "\r\nAccept-Ranges: bytes\r\nRepr-Digest: " + repr_digest(info.sha256) +
                         "\r\n";
    if (const Header* inm = req.find("if-none-match"); inm && etag_list_matches(inm->value, etag)) {
        ResponseHead head(304, srv_.date_header());
        head.raw(fields);
        send(head, {});
        return;
    }
    std::uint64_t start = 0, length = info.size;
    int status = 200;
    const Header* range = req.find("range");
    const Header* if_range = req.find("if-range");
    bool range_applies = range && (!if_range || if_range->value == etag);
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
    ResponseHead head(status, srv_.date_header());
    head.header("Content-Type", "application/octet-stream");
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

void HttpConn::delete_file(const std::string& name) {
    int rc = srv_.store.remove(name);
    if (rc == -ENOENT) {
        respond_error(404, "No file has this name.");
    } else if (rc < 0) {
        respond_error(500, "The file could not be deleted.");
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
    Digest expected{};
    bool has_expected = false;
    for (const char* field : {"repr-digest", "content-digest"}) {
        const Header* h = req.find(field);
        if (!h || has_expected) continue;
        DigestField d = parse_digest_field(h->value, expected);
        if (d == DigestField::Malformed) return refuse(400, "The digest field is malformed.");
        has_expected = d == DigestField::Found;
    }
    const Header* inm = req.find("if-none-match");
    bool no_replace = inm && inm->value == "*";
    if (no_replace && srv_.store.exists(name))
        return refuse(412, "A file with this name exists (If-None-Match: *).");
    if (req.body == BodyKind::Length && req.content_length > srv_.cfg.max_upload)
        return refuse(413, "The upload is larger than the server accepts.");
    body_ = std::make_unique<Body>();
    int rc = srv_.store.begin_upload(body_->upload);
    if (rc < 0) {
        body_.reset();
        bool full = rc == -ENOSPC || rc == -EDQUOT;
        return refuse(full ? 507 : 500, full ? "The disk is full; nothing was stored."
                                             : "The upload could not be started.");
    }
    body_->name = name;
    body_->expected = expected;
    body_->has_expected = has_expected;
    body_->no_replace = no_replace;
    start_body(req, true);
    ex_.keep_alive = req.keep_alive && !drain_close_;
    if (req.body == BodyKind::None) {
        finish_upload();
        body_.reset();
        return;
    }
    if (req.expect_continue && req.minor == 1) {
        // Interim answer: no Content-Length, but Date and Server like every response (SPEC §2).
        ResponseHead head(100, srv_.date_header());
        queue(head.finish());
    }
}

void HttpConn::finish_upload() {
    Body& b = *body_;
    FileInfo info;
    bool created = false;
    int rc = b.upload.commit(b.name, b.has_expected ? &b.expected : nullptr, b.no_replace, info,
                             created);
    if (rc < 0) {
        ++srv_.metrics.uploads_failed;
        if (rc == -EBADMSG) {
            respond_error(400, "The body does not match its digest; nothing was stored.");
        } else if (rc == -EEXIST) {
            respond_error(412, "A file with this name exists (If-None-Match: *).");
        } else if (rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG) {
            respond_error(507, "The disk is full; nothing was stored.");
        } else {
            respond_error(500, "The upload could not be stored.");
        }
        return;
    }
    ++srv_.metrics.uploads_ok;
    srv_.metrics.upload_bytes += info.size;
    ResponseHead head(created ? 201 : 200, srv_.date_header());
    head.header("Content-Type", "application/json");
    if (created) head.header("Location", "/files/" + info.name);
    head.header("ETag", quoted_etag(info.sha256));
    send(head, file_json(info, false) + "\n");
}

}  // namespace duet
