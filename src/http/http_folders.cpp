// Folders over HTTP (README "Folders"): listings per folder, recursive ones, MKCOL, and the
// answers for a path that names a folder where a file is meant or the reverse.
#include <cerrno>
#include <string>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/http/page.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {

void HttpConn::route_folder(const Request& req, const std::string& path) {
    if (req.method == "GET" || req.method == "HEAD") return list_folder(req, path);
    if (req.method == "MKCOL") return make_folder(path);
    if (req.body != BodyKind::None) ex_.keep_alive = false;
    if (req.method == "DELETE" && !path.empty()) return delete_folder(path);
    if (req.method == "PUT" || req.method == "POST") {
        respond_error(400, "A path ending in '/' names a folder; upload a file under a name.");
        return;
    }
    if (path.empty()) {
        respond_error(403, "The top folder cannot be deleted or moved.");
        return;
    }
    respond_error(405, "This method is not allowed on a folder.",
                  "Allow: GET, HEAD, MKCOL, OPTIONS\r\n");
}

void HttpConn::list_folder(const Request& req, const std::string& path) {
    if (!host().store.usable()) {
        store_trouble(kStoreGone);
        return;
    }
    StoreIndex& index = host().index;
    if (!index.holds_folder(path)) {
        // The index is still being built: wait for it rather than say "missing" too early.
        if (!index.built()) {
            store_trouble(-EINPROGRESS);
            return;
        }
        respond_error(404, index.holds(path) ? "This is a file: name it without a trailing '/'."
                                             : "No folder has this name.");
        return;
    }
    if (query_value(req.target, "archive") == "tar") return archive_folder(path);
    ex_.vary_accept = true;  // a browser gets the page here (README "The page")
    StoreIndex::Scope scope{path, query_flag(req.target, "recursive")};
    std::shared_ptr<const std::string> body;
    std::unique_ptr<ListingStream> stream;
    std::uint64_t count = 0, length = 0;
    if (!index.listing(scope, true, body, stream, count, length)) {
        store_trouble(-EINPROGRESS);
        return;
    }
    ResponseHead head(200, host().date_header());
    head.header("Content-Type", "application/json");
    end_head(head, length);
    queue(head.finish());
    log_access(200, length);
    if (ex_.head_only) return;
    if (body)
        queue_shared(std::move(body));
    else
        queue_source(std::move(stream));
}

// The folder as one tar (README "Folders"): its length from the index's snapshot, taken now; the
// files' bytes by sendfile as the client reads (TarStream).
void HttpConn::archive_folder(const std::string& path) {
    // The folder is read on a helper (Store::snapshot_async); the request parks meanwhile.
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::Snapshot, op, rc,
                         [&](StoreOpRef& o) { return host().store.snapshot_async(path, o); }))
        return;
    if (rc == -ENOENT || rc == -ENOTDIR) return respond_error(404, "No folder has this name.");
    if (rc < 0) {
        if (!store_trouble(rc)) respond_error(500, "The folder could not be read.");
        return;
    }
    auto tar = std::make_unique<TarStream>(host().store.dirfd(), std::move(op->entries),
                                           host().store.pipe_runner().helpers);
    std::string leaf(path.empty() ? std::string_view("files") : leaf_of(path));
    ResponseHead head(200, host().date_header());
    head.header("Content-Type", "application/x-tar");
    head.header("Content-Disposition", attachment_disposition(leaf + ".tar"));
    std::uint64_t length = tar->length();
    end_head(head, length);
    queue(head.finish());
    log_access(200, length);
    ++host().metrics.downloads;
    if (ex_.head_only) return;
    queue_source(std::move(tar));
}

// RFC 4918 §9.3: 201 made; 405 something is there; 409 a parent is missing or is a file. The
// folder is made on a helper (Store::make_folder_async); the connection parks meanwhile.
void HttpConn::make_folder(const std::string& path) {
    if (path.empty()) {
        respond_error(405, "The top folder exists.", "Allow: GET, HEAD, OPTIONS\r\n");
        return;
    }
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::MakeFolder, op, rc,
                         [&](StoreOpRef& o) { return host().store.make_folder_async(path, o); }))
        return;
    if (rc == -EEXIST) {
        respond_error(
            405, host().index.holds(path) ? "A file has this name." : "This folder exists already.",
            "Allow: GET, HEAD, DELETE, OPTIONS\r\n");
    } else if (rc == -ENOENT) {
        respond_error(409, "The folder that would hold it does not exist; make it first.");
    } else if (rc == -ENOTDIR) {
        respond_error(409, "A folder on the way is a file.");
    } else if (rc < 0) {
        if (!store_trouble(rc)) respond_error(500, "The folder could not be made.");
    } else {
        respond(201, {}, {}, "Location: /files/" + url_encode(path) + "/\r\n");
    }
}

// RFC 4918 §9.6.1: the folder and everything in it, 204. It is gone for every client the moment
// its rename into the trash is done; the contents go afterwards (Store::remove_folder_async).
void HttpConn::delete_folder(const std::string& path) {
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::DeleteFolder, op, rc,
                         [&](StoreOpRef& o) { return host().store.remove_folder_async(path, o); }))
        return;
    if (rc == -ENOENT)
        respond_error(404, "No folder has this name.");
    else if (rc == -ENOTDIR)
        respond_error(404, "This is a file: name it without a trailing '/'.");
    else if (rc < 0 && !store_trouble(rc))
        respond_error(500, "The folder could not be deleted.");
    else if (rc == 0)
        respond(204, {}, {});
}

namespace {

// RFC 4918 §10.3: the Destination of a MOVE, an absolute path or a URL naming this server (its
// authority the request's Host), under /files/. The decoded path, or the reason it is refused.
std::string destination_path(const Request& req, std::string& out) {
    const Header* h = req.find("destination");
    if (!h) return "MOVE needs a Destination field (e.g. Destination: /files/new-name).";
    std::string_view d = h->value;
    for (std::string_view scheme : {"http://", "https://"}) {
        if (d.substr(0, scheme.size()) != scheme) continue;
        d.remove_prefix(scheme.size());
        std::size_t slash = d.find('/');
        const Header* host = req.find("host");
        if (slash == std::string_view::npos || !host || d.substr(0, slash) != host->value)
            return "The Destination must name this server.";
        d.remove_prefix(slash);
        break;
    }
    std::size_t q = d.find_first_of("?#");
    if (q != std::string_view::npos) d = d.substr(0, q);
    std::string normalized = has_dot_segment(d) ? remove_dot_segments(d) : std::string(d);
    constexpr std::string_view kFiles = "/files/";
    if (std::string_view(normalized).substr(0, kFiles.size()) != kFiles)
        return "The Destination must be a path under /files/.";
    bool folder = false;
    std::string why = decode_path(std::string_view(normalized).substr(kFiles.size()), out, folder);
    if (why.empty() && out.empty()) return "The top folder cannot be replaced.";
    return why;
}

}  // namespace

// RFC 4918 §9.9: 201 to a new name, 204 over an existing one; Overwrite: F makes an existing
// destination a 412 that cannot race (RENAME_NOREPLACE); If-Match on the source is honoured.
void HttpConn::move_entry(const Request& req, const std::string& src) {
    int rc = 0;
    StoreOpRef op = host().take_store_op(this, StoreOp::Kind::Move);
    if (!op) {
        if (req.body != BodyKind::None) ex_.keep_alive = false;
        if (src.empty()) return respond_error(403, "The top folder cannot be deleted or moved.");
        std::string dst;
        if (std::string why = destination_path(req, dst); !why.empty())
            return respond_error(400, why);
        const Header* ow = req.find("overwrite");
        if (ow && ow->value != "T" && ow->value != "F")
            return respond_error(400, "Overwrite is T or F.");
        bool no_replace = ow && ow->value == "F";
        Precondition pre;
        if (has_conditions(req)) {
            FileInfo info;
            rc = host().store.stat(src, info);
            if (rc != 0 && rc != -ENOENT && store_trouble(rc)) return;
            if (preconditions(req, CondMethod::Delete, info, rc, pre)) return;
        }
        rc = host().store.move_async(src, dst, pre, no_replace, op);
        if (rc == -EINPROGRESS || (rc < 0 && store_trouble(rc))) {
            if (rc == -EINPROGRESS) host().park(this);
            return;
        }
    }
    if (rc == 0 && !op->done) return host().wait_store_op(this, std::move(op));
    if (rc == 0) rc = op->rc;
    if (rc == -ENOENT && op && op->conflict == "parent")
        respond_error(409, "The folder that would hold the destination does not exist.");
    else if (rc == -ENOTDIR)
        respond_error(409, "A folder on the way to the destination is a file.");
    else if (rc == -ENOENT)
        respond_error(404, "Nothing has this name.");
    else if (rc == -ECANCELED)
        respond_error(412, "The destination exists (Overwrite: F) or a precondition failed.");
    else if (rc == -EINVAL)
        respond_error(409, "A folder cannot be moved into itself.");
    else if (rc == -EACCES)
        respond_error(403, "The file exists but the server may not read it.");
    else if (rc < 0 && !store_trouble(rc))
        respond_error(500, "The move failed.");
    else if (rc == 0)
        respond(op->created ? 201 : 204, {}, {});
}

bool HttpConn::path_conflict(const Request& req, const std::string& name) {
    bool folder = false;
    std::string in_the_way = host().index.upload_conflict(name, folder);
    if (in_the_way.empty()) return false;
    if (req.body != BodyKind::None) ex_.keep_alive = false;
    respond_error(409, in_the_way + (folder ? " is a folder" : " is a file"));
    return true;
}

}  // namespace duet
