// Durability, proven from the outside (README "Uploads"): duet runs under `strace -f` (every
// thread, so fsyncs moved to helper threads are seen too), and for each kind of upload on both
// ports the trace must show, in this order:
//
//   fsync(the upload's file) done → rename/link onto NAME → fsync(the store directory) done →
//   the answer written to the client's socket.
//
// kill -9 keeps the page cache, so the crash test cannot tell a synced upload from one that only
// reached the cache; this test fails when any of the fsyncs is removed or moved after the answer.
//
// Resumable appends (IETF PATCH /uploads/ID, tus PATCH, the file port's RESUME) are checked the
// same way: every offset announced to a client (an interim 104's Upload-Offset, a final answer's
// Upload-Offset, RESUME's "OK N", a cut session's "got N") must be durable first, in this order:
//
//   the bytes up to N written → fdatasync(ID.data) done → the state file saying "offset N"
//   written and fsync'd → renamed onto ID.state → fsync(.duet-partial) done → the announcement;
//
// and the append that completes the upload publishes like a PUT (the table above) before its
// answer. The checkpoints run on helper threads; -f sees them.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "helper.hpp"
#include "resumable_helper.hpp"

namespace {

t::Duet& g_srv = t::served;
pid_t g_duet_pid = -1;  // duet itself, a child of strace (which is g_srv.pid)

void fini() {
    if (g_duet_pid > 0) kill(g_duet_pid, SIGKILL);
    t::teardown();
}

// One syscall as strace wrote it: where it began and where it ended in the trace (the same line
// unless another thread's call came in between: "<unfinished ...>" / "<... resumed>").
struct Call {
    std::string name;  // fsync, renameat2, sendto, ...
    std::string args;  // the argument text of the entry line (with -y paths)
    std::string ret;   // what follows " = " on the exit line
    std::size_t entry = 0, exit = 0;
};

std::vector<Call> parse_trace(const std::string& text) {
    std::vector<Call> calls;
    std::vector<std::pair<std::string, std::size_t>> open;  // pid -> index in calls (unfinished)
    std::size_t idx = 0, start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(start, nl - start);
        start = nl + 1;
        ++idx;
        std::size_t sp = line.find(' ');
        if (sp == std::string::npos) continue;
        std::string pid = line.substr(0, sp);
        std::string rest = line.substr(sp + 1);
        while (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
        if (rest.rfind("<... ", 0) == 0) {  // "<... fsync resumed>) = 0"
            for (std::size_t i = open.size(); i-- > 0;) {
                if (open[i].first != pid) continue;
                Call& c = calls[open[i].second];
                c.exit = idx;
                std::size_t eq = rest.rfind(" = ");
                c.ret = eq == std::string::npos ? "?" : rest.substr(eq + 3);
                open.erase(open.begin() + long(i));
                break;
            }
            continue;
        }
        std::size_t paren = rest.find('(');
        if (paren == std::string::npos || rest[0] == '+' || rest[0] == '-') continue;
        Call c;
        c.name = rest.substr(0, paren);
        c.entry = idx;
        std::size_t unf = rest.find(" <unfinished ...>");
        if (unf != std::string::npos) {
            c.args = rest.substr(paren + 1, unf - paren - 1);
            calls.push_back(c);
            open.emplace_back(pid, calls.size() - 1);
            continue;
        }
        std::size_t eq = rest.rfind(" = ");
        c.args =
            rest.substr(paren + 1, eq == std::string::npos ? std::string::npos : eq - paren - 1);
        c.ret = eq == std::string::npos ? "?" : rest.substr(eq + 3);
        c.exit = idx;
        calls.push_back(c);
    }
    return calls;
}

bool is_fsync(const Call& c) {
    return c.name == "fsync" || c.name == "fdatasync";
}

// The path strace -y printed for the first fd argument: "7</tmp/x/data/#123 (deleted)>" -> path.
std::string fd_path(const Call& c) {
    std::size_t lt = c.args.find('<'), gt = c.args.find('>');
    if (lt == std::string::npos || gt == std::string::npos || gt < lt) return "";
    return c.args.substr(lt + 1, gt - lt - 1);
}

bool ok_ret(const Call& c) {
    return c.ret.rfind("0", 0) == 0;
}

// A call that gives the upload its final name: rename*/link* whose last path argument is NAME
// relative to the store directory fd.
bool publishes(const Call& c, const std::string& dir, const std::string& name) {
    if (c.name.rfind("rename", 0) != 0 && c.name.rfind("link", 0) != 0) return false;
    return c.args.find("<" + dir + ">, \"" + name + "\"") != std::string::npos && ok_ret(c);
}

bool is_socket_write(const Call& c) {
    static const char* names[] = {"sendto", "send", "write", "writev", "sendmsg", "sendmmsg"};
    bool known = false;
    for (auto* n : names) known = known || c.name == n;
    return known && c.args.find("<TCP") != std::string::npos;
}

struct Upload {
    const char* kind;
    std::string name;
    std::string answer;  // how the answer starts, as strace prints it
};

// Checks one upload in the window of calls [from, ...) and returns the index of its answer.
std::size_t check_order(const std::vector<Call>& calls, std::size_t from, const std::string& dir,
                        const Upload& up) {
    std::size_t publish = calls.size(), answer = calls.size();
    for (std::size_t i = from; i < calls.size(); ++i) {
        if (publish == calls.size() && publishes(calls[i], dir, up.name)) publish = i;
        if (is_socket_write(calls[i]) && calls[i].args.find(up.answer) != std::string::npos) {
            answer = i;
            break;
        }
    }
    cr_assert(answer < calls.size(), "%s: no answer \"%s\" on a TCP socket in the trace", up.kind,
              up.answer.c_str());
    cr_assert(publish < answer, "%s: %s was not renamed/linked into place before the answer",
              up.kind, up.name.c_str());
    const Call& pub = calls[publish];
    // The upload's own file: an fd under the store (not the store itself, not the digest sidecar
    // directory), fsynced successfully, and finished before the publishing call began.
    bool file_synced = false;
    for (std::size_t i = from; i < publish; ++i) {
        const Call& c = calls[i];
        std::string p = fd_path(c);
        if (is_fsync(c) && ok_ret(c) && p.rfind(dir + "/", 0) == 0 &&
            p.rfind(dir + "/.duet-meta", 0) != 0 && c.exit < pub.entry)
            file_synced = true;
    }
    cr_expect(file_synced, "%s: no fsync of the upload's file completed before %s(%s)", up.kind,
              pub.name.c_str(), pub.args.c_str());
    // The directory: fsynced after the publishing call returned and before the answer began.
    const Call& ans = calls[answer];
    bool dir_synced = false;
    for (std::size_t i = from; i < calls.size(); ++i) {
        const Call& c = calls[i];
        if (is_fsync(c) && ok_ret(c) && fd_path(c) == dir && c.entry > pub.exit &&
            c.exit < ans.entry)
            dir_synced = true;
    }
    cr_expect(dir_synced,
              "%s: no fsync of the store directory between the publish of %s and the answer",
              up.kind, up.name.c_str());
    return answer + 1;
}

std::string read_answer_line(int fd) {
    return t::read_line(fd, 20000);
}

// duet under `strace -f` with the store at a fresh directory; returns the store's real path
// (as strace prints it) and sets `trace`.
std::string start_traced(std::string& trace) {
    int st = 0;
    std::string strace = t::sh("command -v strace | tr -d '\\n'");
    cr_assert(!strace.empty(), "strace is missing: test/deps.sh installs it");
    std::string probe = t::sh(strace + " -f -o /dev/null true 2>&1", &st);
    if (st != 0) cr_skip_test("not applicable: ptrace is not permitted here: %s", probe.c_str());

    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data";
    trace = parent + "/trace";
    // -y: fds as paths (and sockets as TCP:[...]) so the file, the directory and the client can be
    // told apart; -f: every thread; -s: enough of each buffer to see an answer's head and a state
    // file's offset line. pwrite64 shows which bytes of a partial were written when.
    bool ok = t::start(
        g_srv,
        {"-f", "-qq", "-yy", "-s", "400", "-o", trace, "-e",
         "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,write,writev,pwrite64,"
         "sendto,sendmsg,sendmmsg",
         t::duet_binary(), "--http", "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
        data, {}, strace);
    cr_assert(ok, "duet under strace did not start: %s", g_srv.err_log.c_str());
    std::size_t at = g_srv.ready_line.find(" pid=");
    cr_assert(at != std::string::npos);
    g_duet_pid = std::atoi(g_srv.ready_line.c_str() + at + 5);
    cr_assert(g_duet_pid > 0);
    char real[4096];
    cr_assert(realpath(data.c_str(), real) != nullptr);
    return real;
}

// Stops duet (not strace), lets strace finish writing, and reads the trace.
std::vector<Call> stop_traced(const std::string& trace) {
    cr_assert_eq(kill(g_duet_pid, SIGTERM), 0);
    int rc = t::wait_exit(g_srv, 20000);
    g_duet_pid = -1;
    cr_assert_eq(rc, 0, "duet under strace exited with %d: %s", rc, g_srv.err_log.c_str());
    std::vector<Call> calls = parse_trace(t::read_file(trace));
    cr_assert_gt(calls.size(), 0u, "empty trace");
    return calls;
}

// ---- resumable appends ----------------------------------------------------------------------

// The number after `key` in a call's argument text, or -1.
long long number_after(const std::string& text, const std::string& key) {
    std::size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    at += key.size();
    if (at >= text.size() || text[at] < '0' || text[at] > '9') return -1;
    return std::atoll(text.c_str() + at);
}

// pwrite64(fd, "...", LEN, OFF): the end of the range it wrote, or -1.
long long pwrite_end(const Call& c) {
    std::size_t b = c.args.rfind(", ");
    if (b == std::string::npos) return -1;
    std::size_t a = c.args.rfind(", ", b - 1);
    if (a == std::string::npos) return -1;
    return std::atoll(c.args.c_str() + a + 2) + std::atoll(c.args.c_str() + b + 2);
}

// The announcement at calls[ans] says the partial `id` holds `n` bytes: each step that makes
// them durable must be in the trace before it, in order.
void check_durable(const std::vector<Call>& calls, std::size_t ans, const std::string& pdir,
                   const std::string& id, long long n, const char* what) {
    const std::string state_tmp = pdir + "/" + id + ".state.tmp", data = pdir + "/" + id + ".data";
    const std::string line = "\\noffset " + std::to_string(n) + "\\n";
    std::size_t w = calls.size();
    for (std::size_t i = ans; i-- > 0;) {
        const Call& c = calls[i];
        if (c.name == "write" && fd_path(c) == state_tmp &&
            c.args.find(line) != std::string::npos) {
            w = i;
            break;
        }
    }
    cr_assert(w < calls.size(),
              "%s: offset %lld announced, but no state file saying so was "
              "written before",
              what, n);
    std::size_t ren = calls.size();
    for (std::size_t i = w + 1; i < ans; ++i) {
        const Call& c = calls[i];
        if (c.name.rfind("rename", 0) == 0 && ok_ret(c) &&
            c.args.find("\"" + id + ".state.tmp\"") != std::string::npos &&
            c.args.find("\"" + id + ".state\"") != std::string::npos) {
            ren = i;
            break;
        }
    }
    cr_assert(ren < calls.size() && calls[ren].exit < calls[ans].entry,
              "%s: the state file saying offset %lld was not renamed into place before the "
              "announcement",
              what, n);
    const Call& r = calls[ren];
    bool state_synced = false;
    for (std::size_t i = w + 1; i < ren; ++i)
        if (is_fsync(calls[i]) && ok_ret(calls[i]) && fd_path(calls[i]) == state_tmp &&
            calls[i].exit < r.entry)
            state_synced = true;
    cr_expect(state_synced, "%s: the state file (offset %lld) was renamed before its fsync", what,
              n);
    // The write that brought the partial to n bytes, then the data's sync after it.
    std::size_t wrote = calls.size();
    for (std::size_t i = ren; i-- > 0;)
        if (calls[i].name == "pwrite64" && fd_path(calls[i]) == data && pwrite_end(calls[i]) == n) {
            wrote = i;
            break;
        }
    cr_assert(wrote < calls.size(), "%s: no pwrite64 of %s ending at %lld before its checkpoint",
              what, data.c_str(), n);
    bool data_synced = false;
    for (std::size_t i = wrote + 1; i < ren; ++i) {
        const Call& c = calls[i];
        if (is_fsync(c) && ok_ret(c) && fd_path(c) == data && c.entry > calls[wrote].exit &&
            c.exit < r.entry)
            data_synced = true;
    }
    cr_expect(data_synced,
              "%s: no fdatasync of the partial's data between its bytes up to %lld and the state "
              "file's rename",
              what, n);
    bool dir_synced = false;
    for (std::size_t i = ren + 1; i < ans; ++i) {
        const Call& c = calls[i];
        if (is_fsync(c) && ok_ret(c) && fd_path(c) == pdir && c.entry > r.exit &&
            c.exit < calls[ans].entry)
            dir_synced = true;
    }
    cr_expect(dir_synced,
              "%s: no fsync of %s between the state file's rename (offset %lld) and the "
              "announcement",
              what, pdir.c_str(), n);
}

// Every socket write in [from, to) that announces an offset of partial `id` (by `key`, e.g.
// "Upload-Offset: " or "OK ") is checked. Returns how many there were.
int check_announcements(const std::vector<Call>& calls, std::size_t from, std::size_t to,
                        const std::string& pdir, const std::string& id, const std::string& key,
                        const char* what) {
    int count = 0;
    for (std::size_t i = from; i < to && i < calls.size(); ++i) {
        if (!is_socket_write(calls[i])) continue;
        long long n = number_after(calls[i].args, key);
        if (n <= 0) continue;
        ++count;
        check_durable(calls, i, pdir, id, n, what);
    }
    return count;
}

// The index of the first socket write at or after `from` whose text holds `needle`.
std::size_t answer_at(const std::vector<Call>& calls, std::size_t from, const std::string& needle,
                      const char* what) {
    for (std::size_t i = from; i < calls.size(); ++i)
        if (is_socket_write(calls[i]) && calls[i].args.find(needle) != std::string::npos) return i;
    cr_assert_fail("%s: no answer holding \"%s\" in the trace", what, needle.c_str());
    return calls.size();
}

std::string id_of(const std::string& location) {
    return location.substr(location.rfind('/') + 1);
}

}  // namespace

TestSuite(durability, .fini = fini, .timeout = 120);

Test(durability, every_upload_kind_fsyncs_file_then_publishes_then_fsyncs_dir_then_answers) {
    std::string trace;
    std::string dir = start_traced(trace);

    const std::string body = t::random_bytes(300 * 1024, 7);
    const std::string size = std::to_string(body.size());
    const std::string ok_line = "OK " + size + " " + t::sha256_hex(body);
    std::vector<Upload> uploads;

    // HTTP, Content-Length: a new name (201) and a replacement (200, rename over the old file).
    for (int round = 0; round < 2; ++round) {
        std::string r = t::http(g_srv.http_port,
                                "PUT /files/http-cl.bin HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: " +
                                    size + "\r\n\r\n" + body);
        int want = round == 0 ? 201 : 200;
        cr_assert_eq(t::status_of(r), want, "%.200s", r.c_str());
        uploads.push_back(
            {round == 0 ? "HTTP Content-Length (new)" : "HTTP Content-Length (replace)",
             "http-cl.bin", "\"HTTP/1.1 " + std::to_string(want)});
    }
    // HTTP, chunked.
    {
        std::string raw =
            "PUT /files/http-chunked.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t off = 0; off < body.size(); off += 65536) {
            std::string piece = body.substr(off, 65536);
            char hex[32];
            std::snprintf(hex, sizeof hex, "%zx\r\n", piece.size());
            raw += hex + piece + "\r\n";
        }
        raw += "0\r\n\r\n";
        std::string r = t::http(g_srv.http_port, raw);
        cr_assert_eq(t::status_of(r), 201, "%.200s", r.c_str());
        uploads.push_back({"HTTP chunked", "http-chunked.bin", "\"HTTP/1.1 201"});
    }
    // File port, sized.
    {
        int fd = t::connect_port(g_srv.files_port);
        cr_assert(fd >= 0);
        cr_assert(t::send_all(fd, "PUT port-sized.bin " + size + "\n" + body));
        std::string line = read_answer_line(fd);
        close(fd);
        cr_assert_eq(line, ok_line);
        uploads.push_back({"file port, sized", "port-sized.bin", "\"OK " + size});
    }
    // File port, until the client half-closes.
    {
        int fd = t::connect_port(g_srv.files_port);
        cr_assert(fd >= 0);
        cr_assert(t::send_all(fd, "PUT port-eof.bin\n" + body));
        shutdown(fd, SHUT_WR);
        std::string line = read_answer_line(fd);
        close(fd);
        cr_assert_eq(line, ok_line);
        uploads.push_back({"file port, until half-close", "port-eof.bin", "\"OK " + size});
    }

    std::vector<Call> calls = stop_traced(trace);
    std::size_t from = 0;
    for (auto& up : uploads) from = check_order(calls, from, dir, up);
}

// Each door's appends: an IETF creation with a first part, a 72 MiB PATCH (checkpoints every
// 16 MiB on helpers while the bytes keep coming, each announced by a 104; reading pauses once
// 48 MiB wait behind a running checkpoint, so at least one 104 comes before the last bytes
// are even read, however slow the disk) and the completing
// PATCH; a tus PATCH and the completing one; a RESUME cut by a half-close and the completing one.
Test(durability, resumable_appends_sync_data_then_state_then_dir_then_announce) {
    using rt::kIetf;
    using rt::kTus;
    std::string trace;
    std::string dir = start_traced(trace);
    const std::string pdir = dir + "/.duet-partial";
    const std::string part = t::random_bytes(300 * 1024, 8), big = t::random_bytes(72 << 20, 9);
    const std::string whole = part + big + part;
    const std::string len = std::to_string(whole.size());

    // IETF: creation with the first part (201 with its offset), then two appends.
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(
        fd, rt::request("POST", "/files/ietf.bin", "Upload-Complete: ?0\r\n" + kIetf, part)));
    std::string r = rt::final_response(fd);
    close(fd);
    cr_assert_eq(t::status_of(r), 201, "%.300s", r.c_str());
    const std::string ietf = id_of(t::header_of(r, "Location"));
    std::vector<std::string> interims;
    fd = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(fd, rt::request("PATCH", "/uploads/" + ietf,
                                          "Upload-Offset: " + std::to_string(part.size()) +
                                              "\r\nUpload-Complete: ?0\r\nContent-Type: "
                                              "application/partial-upload\r\n" +
                                              kIetf,
                                          big)));
    r = rt::final_response(fd, &interims);
    close(fd);
    cr_assert_eq(t::status_of(r), 204, "%.300s", r.c_str());
    cr_expect_geq(interims.size(), 1u, "no 104 with an offset during a 72 MiB append");
    r = rt::http(rt::request("PATCH", "/uploads/" + ietf,
                             "Upload-Offset: " + std::to_string(part.size() + big.size()) +
                                 "\r\nUpload-Complete: ?1\r\nContent-Type: "
                                 "application/partial-upload\r\n" +
                                 kIetf,
                             part));
    cr_assert_eq(t::status_of(r), 201, "%.300s", r.c_str());
    cr_assert_eq(t::read_file(dir + "/ietf.bin"), whole);

    // tus: creation without data, an append, the completing append.
    const std::string tus_body = part + part;
    r = rt::http(rt::request("POST", "/uploads",
                             kTus + "Upload-Length: " + std::to_string(tus_body.size()) +
                                 "\r\nUpload-Metadata: filename " + rt::b64("tus.bin") + "\r\n"));
    cr_assert_eq(t::status_of(r), 201, "%.300s", r.c_str());
    const std::string tus = id_of(t::header_of(r, "Location"));
    for (std::size_t off = 0; off < tus_body.size(); off += part.size()) {
        r = rt::http(rt::request("PATCH", "/uploads/" + tus,
                                 kTus +
                                     "Content-Type: application/offset+octet-stream\r\n"
                                     "Upload-Offset: " +
                                     std::to_string(off) + "\r\n",
                                 part));
        cr_assert_eq(t::status_of(r), 204, "%.300s", r.c_str());
    }
    cr_assert_eq(t::read_file(dir + "/tus.bin"), tus_body);

    // File port: RESUME cut by a half-close ("got N ... partial kept"), then RESUME to the end.
    const std::string port_body = part + part;
    fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "RESUME port.bin " + std::to_string(port_body.size()) + "\n"));
    cr_assert_eq(read_answer_line(fd), "OK 0");
    cr_assert(t::send_all(fd, part));
    shutdown(fd, SHUT_WR);
    cr_assert_eq(read_answer_line(fd), "ERR 400 short upload: got " + std::to_string(part.size()) +
                                           " of " + std::to_string(port_body.size()) +
                                           " bytes, partial kept");
    close(fd);
    fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "RESUME port.bin " + std::to_string(port_body.size()) + "\n"));
    cr_assert_eq(read_answer_line(fd), "OK " + std::to_string(part.size()));
    cr_assert(t::send_all(fd, part));
    cr_assert_eq(read_answer_line(fd),
                 "OK " + std::to_string(port_body.size()) + " " + t::sha256_hex(port_body));
    close(fd);

    std::vector<Call> calls = stop_traced(trace);
    // IETF: the creation's answer, every 104 of the big append and its answer, the completing
    // append (its checkpoint, then the publish as for PUT).
    std::size_t a = answer_at(calls, 0, "HTTP/1.1 201", "IETF creation");
    cr_expect_eq(
        check_announcements(calls, 0, a + 1, pdir, ietf, "Upload-Offset: ", "IETF creation"), 1);
    std::size_t b = answer_at(calls, a + 1, "HTTP/1.1 204", "IETF append");
    int n = check_announcements(calls, a + 1, b + 1, pdir, ietf, "Upload-Offset: ", "IETF append");
    cr_expect_geq(n, 2, "the 72 MiB append announced %d offsets (a 104 and the answer)", n);
    Upload done{"IETF completing append", "ietf.bin", "\"HTTP/1.1 201"};
    std::size_t c = check_order(calls, b + 1, dir, done) - 1;
    cr_expect_eq(check_announcements(calls, b + 1, c + 1, pdir, ietf,
                                     "Upload-Offset: ", "IETF completing append"),
                 1);
    // tus: two appends, the second completes and publishes.
    std::size_t d = answer_at(calls, c + 1, "HTTP/1.1 204", "tus append");
    cr_expect_eq(
        check_announcements(calls, c + 1, d + 1, pdir, tus, "Upload-Offset: ", "tus append"), 1);
    Upload tdone{"tus completing append", "tus.bin", "\"HTTP/1.1 204"};
    std::size_t e = check_order(calls, d + 1, dir, tdone) - 1;
    cr_expect_eq(check_announcements(calls, d + 1, e + 1, pdir, tus,
                                     "Upload-Offset: ", "tus completing append"),
                 1);
    // File port: the partial's ID is the one whose data file the RESUME wrote.
    std::string port_id;
    for (std::size_t i = e + 1; i < calls.size() && port_id.empty(); ++i) {
        std::string p = fd_path(calls[i]);
        if (calls[i].name == "pwrite64" && p.rfind(pdir + "/", 0) == 0)
            port_id = p.substr(pdir.size() + 1, 32);
    }
    cr_assert(!port_id.empty(), "no pwrite64 into a partial for RESUME");
    std::size_t f = answer_at(calls, e + 1, "short upload: got", "RESUME cut");
    cr_expect_eq(check_announcements(calls, e + 1, f + 1, pdir, port_id, "got ", "RESUME cut"), 1);
    std::size_t g = answer_at(calls, f + 1, "\"OK " + std::to_string(part.size()), "RESUME");
    cr_expect_eq(check_announcements(calls, f + 1, g + 1, pdir, port_id, "OK ", "RESUME"), 1);
    Upload pdone{"RESUME to the end", "port.bin", "\"OK " + std::to_string(port_body.size())};
    std::size_t h = check_order(calls, g + 1, dir, pdone) - 1;
    cr_expect_eq(
        check_announcements(calls, g + 1, h + 1, pdir, port_id, "OK ", "RESUME to the end"), 1);
}
