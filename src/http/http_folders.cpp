// Folders over HTTP (README "Folders"): listings per folder, recursive ones, MKCOL, and the
// answers for a path that names a folder where a file is meant or the reverse.
#include <cerrno>
#include <string>

#include "duet/http/http_conn.hpp"
#include "duet/http/http_fields.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {

void HttpConn::route_folder(const Request& req, const std::string& path) {
    if (req.method == "GET" || req.method == "HEAD") return list_folder(req, path);
    if (req.method == "MKCOL") return make_folder(path);
    if (req.body != BodyKind::None) ex_.keep_alive = false;
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

// RFC 4918 §9.3: 201 made; 405 something is there; 409 a parent is missing or is a file. The
// folder is made on a helper (Store::make_folder_async); the connection parks meanwhile.
void HttpConn::make_folder(const std::string& path) {
    if (path.empty()) {
        respond_error(405, "The top folder exists.", "Allow: GET, HEAD, OPTIONS\r\n");
        return;
    }
    int rc = 0;
    if (StoreOpRef op = host().take_store_op(this, StoreOp::Kind::MakeFolder)) {
        if (!op->done) return host().wait_store_op(this, std::move(op));
        rc = op->rc;
    } else {
        rc = host().store.make_folder_async(path, op);
        if (rc == 0 && !op->done) return host().wait_store_op(this, std::move(op));
        if (rc == 0) rc = op->rc;
    }
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

bool HttpConn::path_conflict(const Request& req, const std::string& name) {
    std::string in_the_way = host().index.file_in_the_way(name);
    bool folder = in_the_way.empty() && host().index.holds_folder(name);
    if (in_the_way.empty() && !folder) return false;
    if (req.body != BodyKind::None) ex_.keep_alive = false;
    respond_error(409, folder ? name + " is a folder" : in_the_way + " is a file");
    return true;
}

}  // namespace duet
