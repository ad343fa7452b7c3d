// The file-transfer session (README "File port") on the shared loop and store: commands,
// downloads, listings and deletes. Uploads (PUT) are in file_upload.cpp, RESUME and PARTIAL in
// file_resume.cpp.
#include "duet/fileport/file_conn.hpp"

#include <cerrno>
#include <cstdio>

#include "duet/core/log_escape.hpp"
#include "duet/core/text.hpp"
#include "duet/fileport/file_answers.hpp"
#include "duet/session/store_errors.hpp"

namespace duet {
namespace {
constexpr std::size_t kOutputHighWater = 32 * 1024;
}  // namespace

FileConn::~FileConn() {
    // Closed mid-upload by a path that did not finish it (a reset, a read error, a forced stop):
    // a sized upload's bytes stay as a partial upload (README "File port"), and the metrics count
    // it as failed.
    if (up_) {
        ++host().metrics.uploads_failed;
        if (up_->sized) keep_partial();
    }
}

bool FileConn::wants_input() const {
    if (closing()) return false;
    if (up_) return !peer_closed_ && up_->stage == PublishStage::None;
    return !output_blocked() && out_.size() < kOutputHighWater;
}

bool FileConn::is_idle() const {
    return !up_ && in_.empty() && !output_pending() && !parked();
}

void FileConn::begin_drain(bool for_reload) {
    // Stop: busy sessions finish the transfer in hand, then close; idle ones close now.
    // Reload: each session goes to the next image (with its AUTH) once nothing is in flight, so
    // someone typing into nc keeps their session.
    reload_handover_ = for_reload;
    drain_ = !for_reload;
    if (is_idle()) on_quiet();
}

void FileConn::on_quiet() {
    if (reload_handover_)
        host().hand_over(this);
    else
        close_now();
}

void FileConn::on_header_timeout() {
    ++host().metrics.timeouts;
    if (up_ || output_pending()) return;
    reply_and_close("ERR 408 command line timeout");
    pump_now();
}

void FileConn::on_idle_timeout() {
    if (up_ && up_->stage != PublishStage::None)
        return;  // the client waits for helpers, not the other way round
    if (up_ && up_->append.active()) {
        ++host().metrics.uploads_failed;
        cut_resume("ERR 408 upload stalled; ");
        pump_now();
        return;
    }
    if (up_) {
        if (!up_->sized) {
            fail_upload("ERR 408 upload stalled; nothing stored");
        } else {
            ++host().metrics.uploads_failed;
            std::string got = keep_partial();
            up_.reset();
            reply_and_close("ERR 408 upload stalled; " + got + ", partial kept");
        }
        pump_now();
        return;
    }
    close_now();
}

void FileConn::on_eof() {
    peer_closed_ = true;
    if (up_ && up_->stage != PublishStage::None) return;  // complete and being published
    if (up_ && !up_->sized) {
        up_->close_after = true;
        finish_upload();  // PUT NAME: the half-close ends the bytes
        return;
    }
    if (up_ && up_->append.active()) {  // a RESUME cut short: answered after its checkpoint
        ++host().metrics.uploads_failed;
        cut_resume("ERR 400 short upload: ");
        return;
    }
    if (up_) {  // a sized upload cut short: nothing published, its bytes kept as a partial
        ++host().metrics.uploads_failed;
        std::string got = keep_partial();
        up_.reset();
        reply("ERR 400 short upload: " + got + ", partial kept");
        close_after_output();
        return;
    }
}

bool FileConn::process() {
    bool progressed = false;
    while (!dead() && !closing() && !parked()) {
        if (up_ && up_->stage != PublishStage::None) {
            if (!advance_publish()) break;
            progressed = true;
            continue;
        }
        if (up_) {
            if (!feed_upload()) break;
            progressed = true;
            continue;
        }
        if (output_blocked() || out_.size() >= kOutputHighWater) break;
        if (drain_ && progressed) {
            close_after_output();  // the transfer in hand is done
            break;
        }
        std::string_view line;
        std::size_t used = 0;
        LineStatus st = next_line(std::string_view(in_.head(), in_.size()), line, used);
        if (st == LineStatus::TooLong) {
            reply_and_close("ERR 400 line too long");
            break;
        }
        if (st == LineStatus::Incomplete) {
            if (peer_closed_) {
                close_after_output();
            } else if (!in_.empty()) {
                arm_header_timer();
            } else {
                cancel_header_timer();
            }
            break;
        }
        cancel_header_timer();
        // Copy the line first: consume() may reuse the buffer.
        std::string text(line);
        Command c;
        bool blank = text.empty() || text.find_first_not_of(" 	") == std::string::npos;
        if (blank) {
            in_.consume(used);
            progressed = true;
            continue;
        }
        c = parse_command(text);
        // An AUTH from an address that guessed too often waits its turn, parked; its line
        // stays in the buffer and is read again on release.
        if (c.verb == Verb::Auth && !c.error && !host().cfg.token.empty() &&
            auth_attempt_must_wait())
            break;
        if (host().cfg.access_log) {
            if (!log_) log_ = std::make_unique<AccessLog>(AccessLog{peer_address(), {}});
            // The token is a secret: logs show that an AUTH happened, never what it carried.
            log_->line = c.verb == Verb::Auth ? std::string("AUTH ***") : log_escape(text);
        }
        run(c, text);
        // A command waiting for the index (a digest, a listing) keeps its line, and runs again
        // from the start when woken. Otherwise the line is dropped now, so that an upload's
        // bytes start at in_.head() (put() itself reads none of them).
        if (parked()) break;
        in_.consume(used);
        ++host().metrics.file_commands;
        progressed = true;
    }
    return progressed;
}

void FileConn::run(const Command& c, std::string_view) {
    if (c.error) {
        // A bad name says which rule it breaks (README "Name errors"), on this port too.
        std::string text = c.bad_name ? "ERR 400 " + c.name_why : std::string(c.error);
        if (c.error_closes)
            reply_and_close(text);
        else
            reply(text);
        return;
    }
    bool open_verb = c.verb == Verb::Ping || c.verb == Verb::Help || c.verb == Verb::Quit ||
                     c.verb == Verb::Auth || c.verb == Verb::Unknown;
    if (!open_verb && !host().cfg.token.empty() && !authed_) {
        // A sized or unsized PUT would be followed by bytes we cannot read as commands.
        if (c.verb == Verb::Put || c.verb == Verb::Resume)
            reply_and_close("ERR 401 authentication required");
        else
            reply("ERR 401 authentication required");
        return;
    }
    switch (c.verb) {
        case Verb::Put:
            put(c);
            return;
        case Verb::Get:
            get(c);
            return;
        case Verb::Resume:
            resume(c);
            return;
        case Verb::Partial:
            partial_list(c);
            return;
        case Verb::Stat:
            stat(c);
            return;
        case Verb::List:
            list(c);
            return;
        case Verb::Mkdir:
            mkdir(c);
            return;
        case Verb::Move:
            move(c);
            return;
        case Verb::Del:
            del(c);
            return;
        case Verb::Auth: {
            if (host().cfg.token.empty()) {
                authed_ = true;
                reply("OK");
                return;
            }
            bool ok = token_matches(c.name, host().cfg.token);
            bool too_many = auth_result(ok);
            authed_ = authed_ || ok;  // a wrong AUTH does not undo an earlier good one
            if (ok)
                reply("OK");
            else if (too_many)
                reply_and_close("ERR 401 bad token; too many attempts");
            else
                reply("ERR 401 bad token");
            return;
        }
        case Verb::Ping:
            reply("OK pong");
            return;
        case Verb::Help: {
            std::string text = "OK " + u64(std::size(kHelpLines)) + "\n";
            for (const char* l : kHelpLines) (text += l) += '\n';
            queue_extra(std::move(text));
            log_command("OK");
            return;
        }
        case Verb::Quit:
            reply_and_close("OK bye");
            return;
        case Verb::Unknown:
            reply("ERR 400 unknown command");
            return;
    }
}

void FileConn::get(const Command& c) {
    if (c.folder) return archive(c);  // README "Folders": the folder as one tar
    if (!valid_path(c.name)) return reply("ERR 400 " + path_error(c.name));
    Fd fd;
    FileInfo info;
    int rc = host().store.open_read(c.name, fd, info);
    if (rc == -ENOENT) return reply("ERR 404 not found");
    if (rc == -EACCES) return reply("ERR 403 not readable by the server");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot read");
    if (c.offset > info.size) return reply("ERR 416 offset past the end");
    std::uint64_t length = info.size - c.offset;
    if (c.length < length) length = c.length;
    reply("OK " + u64(length) + " " + to_hex(info.sha256));
    ++host().metrics.downloads;
    queue_file(std::move(fd), off_t(c.offset), length);
}

void FileConn::stat(const Command& c) {
    if (!valid_path(c.name)) return reply("ERR 400 " + path_error(c.name));
    if (c.folder) return reply("ERR 404 not found: a name ending in '/' is a folder");
    FileInfo info;
    int rc = host().store.stat(c.name, info);
    if (rc == -ENOENT) return reply("ERR 404 not found");
    if (rc == -EACCES) return reply("ERR 403 not readable by the server");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot stat");
    reply("OK " + u64(info.size) + " " + to_hex(info.sha256) + " " + std::to_string(info.mtime));
}

// Parks on -EINPROGRESS (a digest or listing being computed) or answers a store error that is
// not about the file; false if `rc` is none of them.
bool FileConn::wait_or_trouble(int rc) {
    if (rc == -EINPROGRESS) {
        if (host().stopping())
            reply("ERR 503 shutting down");
        else
            host().park(this);
        return true;
    }
    if (const char* t = trouble_answer(rc)) {
        if (classify_store_error(rc) == StoreTrouble::Busy) ++host().metrics.busy_503;
        reply(t);
        return true;
    }
    return false;
}

void FileConn::del(const Command& c) {
    if (c.folder) return del_folder(c);  // README "Folders"
    if (!valid_path(c.name)) return reply("ERR 400 " + path_error(c.name));
    if (c.pre.kind == Precondition::Kind::None &&
        (host().index.holds_folder(c.name) ||
         host().has_store_op(this, StoreOp::Kind::DeleteFolder)))
        return del_folder(c);
    // The checks on the loop, the unlink on a helper: parked meanwhile, the line runs again.
    int rc = 0;
    if (StoreOpRef op = host().take_store_op(this, StoreOp::Kind::Delete)) {
        if (!op->done) return host().wait_store_op(this, std::move(op));
        rc = op->rc;
    } else {
        rc = host().store.remove_async(c.name, c.pre, op);
        if (rc == 0 && !op->done) return host().wait_store_op(this, std::move(op));
        if (rc == 0) rc = op->rc;
    }
    if (rc == -ENOENT) return reply("ERR 404 not found");
    if (rc == -EACCES) return reply("ERR 403 not readable by the server");
    if (rc == -ECANCELED) return reply("ERR 412 precondition failed");
    if (rc < 0 && wait_or_trouble(rc)) return;
    if (rc < 0) return reply("ERR 500 cannot delete");
    reply("OK");
}

void FileConn::reply(std::string_view line) {
    std::string s(line);
    s += '\n';
    queue(s);
    log_command(line);
}

void FileConn::reply_and_close(std::string_view line) {
    reply(line);
    close_after_output();
    expect_unread_input();
}

void FileConn::log_command(std::string_view result) {
    if (!host().cfg.access_log) return;
    if (!log_) log_ = std::make_unique<AccessLog>(AccessLog{peer_address(), {}});
    // The answer may quote client bytes (a name): escaped like the command line.
    host().access_log(log_->peer + " files \"" + log_->line + "\" " + log_escape(result));
}

}  // namespace duet
