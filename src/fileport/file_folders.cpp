// Folders on the file port (README "Folders"): LIST of a folder or of everything below it, MKDIR,
// and the refusals of an upload whose path collides with a folder.
#include <cerrno>
#include <string>

#include "duet/fileport/file_conn.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {

// Served from the index: one shared text for the top folder of a small store, else a stream
// rendered as the client reads; COUNT is what it will send (store_index.hpp).
void FileConn::list(const Command& c) {
    if (!host().store.usable()) return reply("ERR 503 store unavailable");
    StoreIndex& index = host().index;
    if (!index.holds_folder(c.name)) {
        if (!index.built()) return (void)wait_or_trouble(-EINPROGRESS);
        return reply(index.holds(c.name) ? "ERR 404 not a folder" : "ERR 404 not found");
    }
    std::uint64_t count = 0, length = 0;
    std::shared_ptr<const std::string> lines;
    std::unique_ptr<ListingStream> stream;
    if (!index.listing(StoreIndex::Scope{c.name, c.recursive}, false, lines, stream, count,
                       length)) {
        wait_or_trouble(-EINPROGRESS);
        return;
    }
    reply("OK " + std::to_string(count));
    if (lines)
        queue_shared(std::move(lines));
    else
        queue_source(std::move(stream));
}

// The folder is made on a helper (Store::make_folder_async): the line parks and runs again.
void FileConn::mkdir(const Command& c) {
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::MakeFolder, op, rc,
                         [&](StoreOpRef& o) { return host().store.make_folder_async(c.name, o); }))
        return;
    if (rc == -EEXIST)
        return reply(host().index.holds(c.name) ? "ERR 405 a file has this name"
                                                : "ERR 405 the folder exists");
    if (rc == -ENOENT) return reply("ERR 409 the folder that would hold it does not exist");
    if (rc == -ENOTDIR) return reply("ERR 409 a folder on the way is a file");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot make the folder");
    reply("OK");
}

// The folder and everything in it (Store::remove_folder_async): parked meanwhile.
void FileConn::del_folder(const Command& c) {
    if (c.name.empty()) return reply("ERR 403 the top folder cannot be deleted");
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::DeleteFolder, op, rc, [&](StoreOpRef& o) {
            return host().store.remove_folder_async(c.name, o);
        }))
        return;
    if (rc == -ENOENT) return reply("ERR 404 not found");
    if (rc == -ENOTDIR) return reply("ERR 404 not a folder");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot delete");
    reply("OK");
}

// MOVE SRC DST [if=SHA256|if=none]: if=SHA256 moves only that version of SRC, if=none refuses an
// existing DST (RENAME_NOREPLACE, so no writer can slip in between).
void FileConn::move(const Command& c) {
    bool no_replace = c.pre.kind == Precondition::Kind::MustNotExist;
    Precondition pre = no_replace ? Precondition{} : c.pre;
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::Move, op, rc, [&](StoreOpRef& o) {
            return host().store.move_async(c.name, c.dest, pre, no_replace, o);
        }))
        return;
    if (rc == -ENOENT && op && op->conflict == "parent")
        return reply("ERR 409 the folder that would hold DST does not exist");
    if (rc == -ENOTDIR) return reply("ERR 409 a folder on the way to DST is a file");
    if (rc == -ENOENT) return reply("ERR 404 not found");
    if (rc == -ECANCELED) return reply("ERR 412 precondition failed");
    if (rc == -EINVAL) return reply("ERR 409 a folder cannot move into itself");
    if (rc == -EACCES) return reply("ERR 403 not readable by the server");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot move");
    reply("OK");
}

void FileConn::archive(const Command& c) {
    if (!host().store.usable()) return reply("ERR 503 store unavailable");
    StoreIndex& index = host().index;
    if (!index.holds_folder(c.name)) {
        if (!index.built()) return (void)wait_or_trouble(-EINPROGRESS);
        return reply(index.holds(c.name) ? "ERR 404 not a folder" : "ERR 404 not found");
    }
    // The folder is read on a helper (Store::snapshot_async); the line parks meanwhile.
    StoreOpRef op;
    int rc = 0;
    if (!host().store_op(this, StoreOp::Kind::Snapshot, op, rc,
                         [&](StoreOpRef& o) { return host().store.snapshot_async(c.name, o); }))
        return;
    if (rc == -ENOENT || rc == -ENOTDIR) return reply("ERR 404 not found");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot read");
    auto tar = std::make_unique<TarStream>(host().store.dirfd(), std::move(op->entries),
                                           host().store.pipe_runner().helpers);
    reply("OK " + std::to_string(tar->length()) + " -");
    ++host().metrics.downloads;
    queue_source(std::move(tar));
}

std::string FileConn::folder_refusal(const Command& c) {
    if (c.folder) return "ERR 400 a name ending in '/' is a folder; upload a file under a name";
    bool folder = false;
    std::string in_the_way = host().index.upload_conflict(c.name, folder);
    if (in_the_way.empty()) return {};
    return "ERR 409 " + port_encode(in_the_way) + (folder ? " is a folder" : " is a file");
}

}  // namespace duet
