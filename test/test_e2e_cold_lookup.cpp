// README "Disk I/O off the loop", for name lookups: the loop thread (tid == pid) looks store
// names up only from the kernel's caches (openat2 with RESOLVE_CACHED); a lookup that would need
// the disk is done by a helper thread, and the request is then answered as usual.
//
// Proven from the outside with `strace -f` (every thread): after the ready line the loop thread
// never calls a blocking lookup (openat, newfstatat, statx, faccessat*) on a store name, and a
// helper thread does. Cold caches are made two ways: DUET_TEST_COLD_LOOKUPS=1 makes every lookup
// the loop tries act cold (deterministic, no privileges), and, when running as root, writing 2
// to /proc/sys/vm/drop_caches makes them really cold. A name never looked up before is cold on
// any file system. The answers must be right however the lookup went (both ports, preconditions).
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
pid_t g_duet_pid = -1;  // duet itself, a child of strace (which is g_srv.pid)
pid_t g_loop_tid = -1;  // the same number: the loop is duet's main thread

void fini() {
    if (g_duet_pid > 0) kill(g_duet_pid, SIGKILL);
    t::teardown();
}

struct Call {
    std::string pid;
    std::string name;
    std::string line;  // the entry line, arguments (with -yy paths) and, when finished, result
};

// strace -f -o: "PID name(args) = ret", or "<unfinished ...>" then "<... name resumed>".
std::vector<Call> parse_trace(const std::string& text) {
    std::vector<Call> calls;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(start, nl - start);
        start = nl + 1;
        std::size_t sp = line.find(' ');
        if (sp == std::string::npos) continue;
        Call c;
        c.pid = line.substr(0, sp);
        std::string rest = line.substr(sp + 1);
        while (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
        std::size_t paren = rest.find('(');
        if (paren == std::string::npos || rest[0] == '<' || rest[0] == '+' || rest[0] == '-')
            continue;
        c.name = rest.substr(0, paren);
        c.line = rest;
        calls.push_back(c);
    }
    return calls;
}

// A call whose directory argument is the store and whose name argument is `name`.
bool on_name(const Call& c, const std::string& dir, const std::string& name) {
    return c.line.find("<" + dir + ">, \"" + name + "\"") != std::string::npos;
}

bool blocking_lookup(const Call& c) {
    static const char* names[] = {"openat",     "newfstatat", "statx",    "faccessat",
                                  "faccessat2", "unlinkat",   "renameat", "renameat2",
                                  "linkat",     "open",       "stat",     "lstat"};
    for (const char* n : names)
        if (c.name == n) return true;
    return false;
}

// duet under `strace -f` with a store holding `files`; returns the store's real path.
std::string start_traced(const std::vector<std::pair<std::string, std::string>>& files,
                         std::vector<std::string> env, std::string& trace) {
    int st = 0;
    std::string strace = t::sh("command -v strace | tr -d '\\n'");
    cr_assert(!strace.empty(), "strace is missing: test/deps.sh installs it");
    std::string probe = t::sh(strace + " -f -o /dev/null true 2>&1", &st);
    if (st != 0) cr_skip_test("not applicable: ptrace is not permitted here: %s", probe.c_str());
    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data";
    cr_assert_eq(mkdir(data.c_str(), 0755), 0);
    for (auto& [name, body] : files) cr_assert(t::write_file(data + "/" + name, body));
    trace = parent + "/trace";
    bool ok = t::start(
        g_srv,
        {"-f", "-qq", "-yy", "-o", trace, "-e",
         "trace=openat,openat2,open,newfstatat,stat,lstat,statx,faccessat,"
         "faccessat2,unlinkat,renameat,renameat2,linkat,write",
         t::duet_binary(), "--http", "127.0.0.1:0", "--files", "127.0.0.1:0", "--data", data},
        data, std::move(env), strace);
    cr_assert(ok, "duet under strace did not start: %s", g_srv.err_log.c_str());
    std::size_t at = g_srv.ready_line.find(" pid=");
    cr_assert(at != std::string::npos);
    g_duet_pid = std::atoi(g_srv.ready_line.c_str() + at + 5);
    cr_assert(g_duet_pid > 0);
    g_loop_tid = g_duet_pid;
    char real[4096];
    cr_assert(realpath(data.c_str(), real) != nullptr);
    // The index is built (on helpers, from the ready line on) once a listing answers.
    cr_assert_eq(t::status_of(t::http(g_srv.http_port, "GET /files HTTP/1.1\r\nHost: x\r\n\r\n")),
                 200);
    return real;
}

std::vector<Call> stop_traced(const std::string& trace) {
    cr_assert_eq(kill(g_duet_pid, SIGTERM), 0);
    int rc = t::wait_exit(g_srv, 20000);
    g_duet_pid = -1;
    cr_assert_eq(rc, 0, "duet under strace exited with %d: %s", rc, g_srv.err_log.c_str());
    return parse_trace(t::read_file(trace));
}

// Index of the first call after the ready line was written.
std::size_t after_ready(const std::vector<Call>& calls) {
    for (std::size_t i = 0; i < calls.size(); ++i)
        if (calls[i].name == "write" && calls[i].line.find("ready http=") != std::string::npos)
            return i + 1;
    cr_assert_fail("no ready line in the trace");
    return 0;
}

// The loop thread never looked `names` up with a blocking call after the ready line; it did use
// openat2 with RESOLVE_CACHED; and a helper thread looked each of `helped` up.
void check_threads(const std::vector<Call>& calls, const std::string& dir,
                   const std::vector<std::string>& names, const std::vector<std::string>& helped) {
    std::string loop = std::to_string(g_loop_tid);
    std::size_t from = after_ready(calls);
    bool cached = false;
    for (std::size_t i = from; i < calls.size(); ++i) {
        const Call& c = calls[i];
        if (c.pid != loop) continue;
        if (c.name == "openat2" && c.line.find("RESOLVE_CACHED") != std::string::npos)
            cached = true;
        for (const std::string& n : names)
            cr_expect(!(blocking_lookup(c) && on_name(c, dir, n)),
                      "the loop thread looked %s up with a blocking call: %s", n.c_str(),
                      c.line.c_str());
    }
    cr_expect(cached, "the loop thread never used openat2 with RESOLVE_CACHED");
    for (const std::string& n : helped) {
        bool found = false;
        for (std::size_t i = from; i < calls.size() && !found; ++i)
            found = calls[i].pid != loop &&
                    (calls[i].name == "newfstatat" || calls[i].name == "openat2") &&
                    on_name(calls[i], dir, n);
        cr_expect(found, "no helper thread looked %s up after the ready line", n.c_str());
    }
}

std::string req(const std::string& method, const std::string& path, const std::string& fields = "",
                const std::string& body = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n" + body;
}

std::string put_req(const std::string& name, const std::string& body,
                    const std::string& fields = "") {
    return req("PUT", "/files/" + name,
               "Content-Length: " + std::to_string(body.size()) + "\r\n" + fields, body);
}

std::string http(const std::string& raw, bool head_only = false) {
    return t::http(g_srv.http_port, raw, head_only);
}

int files_conn() {
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0);
    return fd;
}

std::string cmd(int fd, const std::string& line) {
    t::send_all(fd, line + "\n");
    return t::read_line(fd);
}

std::string quoted_etag(const std::string& hex) {
    return "\"" + hex + "\"";
}

// Reads, lookups that miss and preconditions on both ports, checked answer by answer.
void exercise(const std::string& data) {
    std::string hi = "hello cold world\n";
    std::string hex = t::sha256_hex(hi);
    // HTTP: GET, HEAD, a range, a 404, a conditional GET.
    std::string r = http(req("GET", "/files/a"));
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::body_of(r), hi);
    cr_expect_eq(t::header_of(r, "etag"), quoted_etag(hex));
    r = http(req("HEAD", "/files/a"), true);
    cr_expect_eq(t::status_of(r), 200);
    cr_expect_eq(t::header_of(r, "content-length"), std::to_string(hi.size()));
    r = http(req("GET", "/files/a", "Range: bytes=0-4\r\n"));
    cr_expect_eq(t::status_of(r), 206);
    cr_expect_eq(t::body_of(r), "hello");
    cr_expect_eq(t::status_of(http(req("GET", "/files/missing1"))), 404);
    cr_expect_eq(t::status_of(http(
                     req("GET", "/files/a", "If-None-Match: " + quoted_etag(hex) + "\r\n"), true)),
                 304);
    // The file port: STAT, GET, a missing name, DEL of a missing name.
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "STAT a").rfind("OK " + std::to_string(hi.size()) + " " + hex, 0), 0u);
    cr_expect_eq(cmd(fd, "GET a"), "OK " + std::to_string(hi.size()) + " " + hex);
    cr_expect_eq(t::read_n(fd, hi.size()), hi);
    cr_expect_eq(cmd(fd, "STAT missing2"), "ERR 404 not found");
    cr_expect_eq(cmd(fd, "DEL missing3"), "ERR 404 not found");
    // Compare-and-swap on the file port: a wrong digest, then the right one.
    cr_expect_eq(cmd(fd, "PUT b 2 if=" + std::string(64, 'a')), "ERR 412 precondition failed");
    close(fd);
    fd = files_conn();
    t::send_all(fd, "PUT b 2 if=" + t::sha256_hex("bb") + "\nxy");
    cr_expect_eq(t::read_line(fd).rfind("OK 2 " + t::sha256_hex("xy"), 0), 0u);
    cr_expect_eq(cmd(fd, "DEL b if=" + t::sha256_hex("xy")), "OK");
    cr_expect_eq(cmd(fd, "STAT b"), "ERR 404 not found");
    t::send_all(fd, "PUT fresh 3 if=none\nnew");
    cr_expect_eq(t::read_line(fd).rfind("OK 3 ", 0), 0u);
    // A resumable upload: its partial (data and state files) is made, then published.
    cr_expect_eq(cmd(fd, "RESUME r.txt 5"), "OK 0");
    t::send_all(fd, "hello");
    cr_expect_eq(t::read_line(fd), "OK 5 " + t::sha256_hex("hello"));
    close(fd);
    // HTTP preconditions: If-Match wrong and right, If-None-Match: * on an existing name.
    cr_expect_eq(t::status_of(http(put_req("c", "x", "If-Match: \"nope\"\r\n"))), 412);
    r = http(put_req("c", "new c", "If-Match: " + quoted_etag(t::sha256_hex("cc")) + "\r\n"));
    cr_expect_eq(t::status_of(r), 200, "%s", r.c_str());
    cr_expect_eq(t::status_of(http(put_req("c", "x", "If-None-Match: *\r\n"))), 412);
    cr_expect_eq(t::status_of(http(put_req("d", "dd", "If-None-Match: *\r\n"))), 201);
    cr_expect_eq(t::status_of(http(req("DELETE", "/files/d", "If-Match: \"nope\"\r\n"))), 412);
    cr_expect_eq(t::status_of(http(req("DELETE", "/files/d",
                                       "If-Match: " + quoted_etag(t::sha256_hex("dd")) + "\r\n"))),
                 204);
    cr_expect_eq(t::status_of(http(req("DELETE", "/files/d"))), 404);
    cr_expect_eq(t::read_file(data + "/c"), "new c");
    cr_expect_eq(t::read_file(data + "/fresh"), "new");
    cr_expect_eq(t::read_file(data + "/r.txt"), "hello");
    struct stat st;
    cr_expect_neq(stat((data + "/d").c_str(), &st), 0);
    cr_expect_neq(stat((data + "/b").c_str(), &st), 0);
}

const std::vector<std::pair<std::string, std::string>> kFiles = {
    {"a", "hello cold world\n"}, {"b", "bb"}, {"c", "cc"}};
const std::vector<std::string> kNames = {"a",        "b",        "c",        "d",     "fresh",
                                         "missing1", "missing2", "missing3", "never", "r.txt"};

}  // namespace

TestSuite(e2e_cold_lookup, .fini = fini, .timeout = 120);

// Every lookup the loop tries acts cold: the helper path answers all of it right, and the loop
// thread itself never calls a blocking lookup on those names.
Test(e2e_cold_lookup, every_lookup_on_a_helper_answers_right_and_the_loop_never_blocks) {
    std::string trace;
    std::string dir = start_traced(kFiles, {"DUET_TEST_COLD_LOOKUPS=1"}, trace);
    exercise(g_srv.data_dir);
    std::vector<Call> calls = stop_traced(trace);
    check_threads(calls, dir, kNames, {"a", "b", "c", "missing1", "missing2", "missing3"});
    // The publishes' renames and the deletes' unlinks ran on helpers too.
    std::string loop = std::to_string(g_loop_tid);
    auto on_helper = [&](const char* prefix, const std::string& name) {
        for (const Call& c : calls)
            if (c.pid != loop && c.name.rfind(prefix, 0) == 0 && on_name(c, dir, name)) return true;
        return false;
    };
    for (const char* n : {"b", "c", "fresh"})
        cr_expect(on_helper("rename", n) || on_helper("link", n), "no helper published %s", n);
    for (const char* n : {"b", "d"}) cr_expect(on_helper("unlinkat", n), "no helper deleted %s", n);
    // Every upload's file was created by a helper (O_TMPFILE on the store directory), never by
    // the loop.
    bool tmpfile_on_helper = false;
    for (const Call& c : calls) {
        if (c.name != "openat" || c.line.find("O_TMPFILE") == std::string::npos) continue;
        if (c.line.find("<" + dir + ">") == std::string::npos) continue;
        cr_expect(c.pid != loop, "the loop thread created an upload's file: %s", c.line.c_str());
        tmpfile_on_helper = tmpfile_on_helper || c.pid != loop;
    }
    cr_expect(tmpfile_on_helper, "no helper created an upload's file");
    // The partial's state file (written, fsynced, renamed) was made by a helper, never the loop.
    bool state_on_helper = false;
    for (const Call& c : calls) {
        if (c.line.find(".state") == std::string::npos ||
            c.line.find(".duet-partial") == std::string::npos)
            continue;
        if (c.name != "openat" && c.name != "renameat") continue;
        cr_expect(c.pid != loop, "the loop thread wrote a partial's state file: %s",
                  c.line.c_str());
        state_on_helper = state_on_helper || c.pid != loop;
    }
    cr_expect(state_on_helper, "no helper wrote a partial's state file");
}

// Without forcing anything: a name never looked up is not in the dentry cache on any file
// system, so the loop's cached lookup misses and a helper does it.
Test(e2e_cold_lookup, a_name_never_seen_is_looked_up_by_a_helper) {
    std::string trace;
    std::string dir = start_traced(kFiles, {}, trace);
    cr_expect_eq(t::status_of(http(req("GET", "/files/never"))), 404);
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "STAT missing2"), "ERR 404 not found");
    close(fd);
    std::vector<Call> calls = stop_traced(trace);
    check_threads(calls, dir, kNames, {"never", "missing2"});
}

// Really cold caches (root only: drop_caches), then the whole exercise: the loop's openat2 for
// "a" returned EAGAIN, a helper looked it up, the answers are right.
Test(e2e_cold_lookup, dropped_dentry_cache_goes_to_a_helper) {
    if (geteuid() != 0) cr_skip_test("not applicable: dropping the dentry cache needs root");
    std::string trace;
    std::string dir = start_traced(kFiles, {}, trace);
    FILE* f = std::fopen("/proc/sys/vm/drop_caches", "w");
    if (!f) cr_skip_test("not applicable: /proc/sys/vm/drop_caches is not writable");
    bool dropped = std::fputs("2\n", f) >= 0;
    dropped = std::fclose(f) == 0 && dropped;
    if (!dropped) cr_skip_test("not applicable: writing /proc/sys/vm/drop_caches failed");
    exercise(g_srv.data_dir);
    std::vector<Call> calls = stop_traced(trace);
    check_threads(calls, dir, kNames, {"a"});
    bool missed = false;
    std::string loop = std::to_string(g_loop_tid);
    for (const Call& c : calls)
        missed = missed || (c.pid == loop && c.name == "openat2" && on_name(c, dir, "a") &&
                            c.line.find("EAGAIN") != std::string::npos);
    cr_expect(missed, "the loop's cached lookup of a never missed after drop_caches");
}
