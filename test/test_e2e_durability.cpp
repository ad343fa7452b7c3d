// Durability, proven from the outside (SPEC §2 "Uploads"): duet runs under `strace -f` (every
// thread, so fsyncs moved to helper threads are seen too), and for each kind of upload on both
// ports the trace must show, in this order:
//
//   fsync(the upload's file) done → rename/link onto NAME → fsync(the store directory) done →
//   the answer written to the client's socket.
//
// kill -9 keeps the page cache, so the crash test cannot tell a synced upload from one that only
// reached the cache; this test fails when any of the fsyncs is removed or moved after the answer.
// TODO(issue 11): resumable appends (PATCH /uploads/ID, RESUME) join the table when they land.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "helper.hpp"

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

}  // namespace

TestSuite(durability, .fini = fini, .timeout = 120);

Test(durability, every_upload_kind_fsyncs_file_then_publishes_then_fsyncs_dir_then_answers) {
    int st = 0;
    std::string strace = t::sh("command -v strace | tr -d '\\n'");
    cr_assert(!strace.empty(), "strace is missing: test/deps.sh installs it");
    std::string probe = t::sh(strace + " -f -o /dev/null true 2>&1", &st);
    if (st != 0) cr_skip_test("not applicable: ptrace is not permitted here: %s", probe.c_str());

    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data";
    std::string trace = parent + "/trace";
    // -y: fds as paths (and sockets as TCP:[...]) so the file, the directory and the client can be
    // told apart; -f: every thread; -s: enough of each buffer to see how an answer starts.
    bool ok = t::start(
        g_srv,
        {"-f", "-qq", "-yy", "-s", "48", "-o", trace, "-e",
         "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat,write,writev,"
         "sendto,sendmsg,sendmmsg",
         t::duet_binary(), "--http", "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
        data, {}, strace);
    cr_assert(ok, "duet under strace did not start: %s", g_srv.err_log.c_str());
    std::size_t at = g_srv.ready_line.find(" pid=");
    cr_assert(at != std::string::npos);
    g_duet_pid = std::atoi(g_srv.ready_line.c_str() + at + 5);
    cr_assert(g_duet_pid > 0);
    // The real path of the store, as strace prints it.
    char real[4096];
    cr_assert(realpath(data.c_str(), real) != nullptr);
    std::string dir = real;

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

    // Stop duet (not strace) and let strace finish writing the trace.
    cr_assert_eq(kill(g_duet_pid, SIGTERM), 0);
    int rc = t::wait_exit(g_srv, 20000);
    g_duet_pid = -1;
    cr_assert_eq(rc, 0, "duet under strace exited with %d: %s", rc, g_srv.err_log.c_str());

    std::vector<Call> calls = parse_trace(t::read_file(trace));
    cr_assert_gt(calls.size(), 0u, "empty trace");
    std::size_t from = 0;
    for (auto& up : uploads) from = check_order(calls, from, dir, up);
}
