// Black-box tests of the file-transfer port (README "File port"): every command of the line
// protocol over raw sockets, the real nc, and the store shared with the HTTP port. Each test starts
// build/duet-san on port 0 with a fresh store; the suite's fini stops it and removes the dirs.
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace fs = std::filesystem;

// Compares as std::string, so temporaries live through the check (and binary data is safe).
#define EXPECT_STR(got, want, ...)                                                            \
    do {                                                                                      \
        std::string got_ = (got), want_ = (want);                                             \
        cr_assert(got_ == want_, "got '%.300s', want '%.300s'", got_.c_str(), want_.c_str()); \
    } while (0)

namespace {

t::Duet g_d;
std::vector<int> g_fds;

void teardown() {
    for (int fd : g_fds) close(fd);
    g_fds.clear();
    if (g_d.pid > 0) t::stop(g_d, SIGTERM);
    if (!g_d.data_dir.empty()) {
        std::error_code ec;
        fs::remove_all(fs::path(g_d.data_dir).parent_path(), ec);
    }
}

void boot(std::vector<std::string> args = {}) {
    bool ok = t::start(g_d, std::move(args));
    cr_assert(ok, "duet did not start: %s", g_d.err_log.c_str());
}

// A scratch directory for the test's own files, removed with the store.
std::string scratch() {
    return fs::path(g_d.data_dir).parent_path().string();
}

int files_conn() {
    int fd = t::connect_port(g_d.files_port);
    cr_assert(fd >= 0, "cannot connect to the file port");
    g_fds.push_back(fd);
    return fd;
}

std::string hex_of(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

// Sends one command line and returns the first answer line.
std::string cmd(int fd, const std::string& line) {
    cr_assert(t::send_all(fd, line + "\n"));
    return t::read_line(fd);
}

std::string ok_put(const std::string& data) {
    return "OK " + std::to_string(data.size()) + " " + hex_of(data);
}

// PUT NAME SIZE + the bytes; returns the answer line.
std::string put(int fd, const std::string& name, const std::string& data) {
    cr_assert(t::send_all(fd, "PUT " + name + " " + std::to_string(data.size()) + "\n" + data));
    return t::read_line(fd);
}

// Stores `data` as `name` on a connection of its own.
void store(const std::string& name, const std::string& data) {
    int fd = files_conn();
    std::string answer = put(fd, name, data);
    EXPECT_STR(answer.c_str(), ok_put(data).c_str());
}

// GET NAME: the answer line, then the bytes it announces into `body`.
std::string get(int fd, const std::string& args, std::string& body) {
    std::string answer = cmd(fd, "GET " + args);
    body.clear();
    if (answer.rfind("OK ", 0) == 0) {
        std::size_t len = std::strtoull(answer.c_str() + 3, nullptr, 10);
        body = t::read_n(fd, len);
    }
    return answer;
}

// Everything in the store but duet's bookkeeping: a leaked temporary file counts.
std::vector<std::string> store_entries() {
    return t::store_listing(g_d.data_dir);
}

void assert_store_empty() {
    auto names = store_entries();
    cr_assert(names.empty(), "store not empty: %s", names.empty() ? "" : names[0].c_str());
}

// Polls /metrics until the failed-upload counter reaches `want` (bounded).
bool wait_failed_uploads(int want) {
    std::string needle = "duet_uploads_total{result=\"failed\"} " + std::to_string(want);
    std::int64_t deadline = t::now_ms() + 3000;
    while (t::now_ms() < deadline) {
        std::string r = t::http(g_d.http_port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        if (r.find(needle) != std::string::npos) return true;
        usleep(20000);
    }
    return false;
}

std::string http_get(const std::string& name) {
    return t::http(g_d.http_port, "GET /files/" + name + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

}  // namespace

TestSuite(e2e_files, .fini = teardown, .timeout = 30);

// ---- simple commands -------------------------------------------------------------------------

Test(e2e_files, ping_answers_pong) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong", "a session carries many commands");
}

Test(e2e_files, help_announces_its_line_count) {
    boot();
    int fd = files_conn();
    std::string first = cmd(fd, "HELP");
    cr_assert(first.rfind("OK ", 0) == 0, "HELP answered %s", first.c_str());
    int count = std::atoi(first.c_str() + 3);
    cr_assert_gt(count, 0);
    for (int i = 0; i < count; ++i) {
        std::string l = t::read_line(fd);
        cr_assert(!l.empty() && l.rfind("OK", 0) != 0, "usage line %d: '%s'", i, l.c_str());
    }
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong", "exactly COUNT lines follow HELP");
}

Test(e2e_files, help_ends_with_how_a_session_ends) {
    boot();
    int fd = files_conn();
    std::string first = cmd(fd, "HELP");
    cr_assert(first.rfind("OK ", 0) == 0, "HELP answered %s", first.c_str());
    std::string tail;
    for (int i = std::atoi(first.c_str() + 3); i > 0; --i) {
        std::string l = t::read_line(fd);
        tail = i <= 2 ? tail + l + " " : "";
    }
    for (const char* needle : {"QUIT", "half-close", "nc -N", "--idle-timeout"})
        cr_expect(tail.find(needle) != std::string::npos, "the last HELP lines lack '%s': %s",
                  needle, tail.c_str());
}

Test(e2e_files, quit_says_bye_and_closes) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "QUIT").c_str(), "OK bye");
    cr_assert(t::peer_closed(fd));
}

Test(e2e_files, unknown_command_keeps_the_session) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "FROB x y").c_str(), "ERR 400 unknown command");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, empty_and_blank_lines_are_ignored) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "\n\r\n   \n\t\nPING\n"));
    EXPECT_STR(t::read_line(fd).c_str(), "OK pong");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong", "no answer was queued for blank lines");
}

Test(e2e_files, command_names_are_case_insensitive) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "ping").c_str(), "OK pong");
    EXPECT_STR(cmd(fd, "PiNg").c_str(), "OK pong");
    EXPECT_STR(put(fd, "x.txt", "abc").c_str(), ok_put("abc").c_str());
    cr_assert(t::send_all(fd, "pUt y.txt 2\nhi"));
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("hi").c_str());
    std::string body;
    EXPECT_STR(get(fd, "x.txt", body).c_str(), ok_put("abc").c_str());
    EXPECT_STR(body.c_str(), "abc");
    cr_assert(cmd(fd, "stat x.txt").rfind("OK 3 ", 0) == 0);
    EXPECT_STR(cmd(fd, "list").c_str(), "OK 2");
    t::read_line(fd);
    t::read_line(fd);
    EXPECT_STR(cmd(fd, "Del x.txt").c_str(), "OK");
    EXPECT_STR(cmd(fd, "quit").c_str(), "OK bye");
}

Test(e2e_files, crlf_line_endings_are_accepted) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PING\r\nPUT c.txt 4\r\nabcdSTAT c.txt\r\n"));
    EXPECT_STR(t::read_line(fd).c_str(), "OK pong", "the CR is dropped, not answered");
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("abcd").c_str());
    cr_assert(t::read_line(fd).rfind("OK 4 " + hex_of("abcd") + " ", 0) == 0);
    EXPECT_STR(t::read_file(g_d.data_dir + "/c.txt").c_str(), "abcd");
}

Test(e2e_files, pipelined_commands_are_answered_in_order) {
    boot();
    int fd = files_conn();
    std::string all =
        "PING\nPUT p.txt 5\nhelloSTAT p.txt\nGET p.txt\nNOPE\nDEL p.txt\n"
        "GET p.txt\nPING\nQUIT\n";
    cr_assert(t::send_all(fd, all));
    EXPECT_STR(t::read_line(fd).c_str(), "OK pong");
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("hello").c_str());
    cr_assert(t::read_line(fd).rfind("OK 5 " + hex_of("hello") + " ", 0) == 0);
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("hello").c_str());
    EXPECT_STR(t::read_n(fd, 5).c_str(), "hello");
    EXPECT_STR(t::read_line(fd).c_str(), "ERR 400 unknown command");
    EXPECT_STR(t::read_line(fd).c_str(), "OK");
    cr_assert(t::read_line(fd).rfind("ERR 404", 0) == 0);
    EXPECT_STR(t::read_line(fd).c_str(), "OK pong");
    EXPECT_STR(t::read_line(fd).c_str(), "OK bye");
    cr_assert(t::peer_closed(fd));
}

// ---- PUT -------------------------------------------------------------------------------------

Test(e2e_files, sized_put_stores_and_session_goes_on) {
    boot();
    int fd = files_conn();
    std::string data = t::random_bytes(10000, 7);
    // The line and the bytes in separate writes, the bytes split too.
    cr_assert(t::send_all(fd, "PUT r.bin 10000\n"));
    cr_assert(t::send_all(fd, data.substr(0, 3333)));
    cr_assert(t::send_all(fd, data.substr(3333)));
    EXPECT_STR(t::read_line(fd).c_str(), ok_put(data).c_str());
    cr_assert(t::read_file(g_d.data_dir + "/r.bin") == data);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, put_of_zero_bytes_stores_an_empty_file) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "PUT empty 0").c_str(), ok_put("").c_str());
    cr_assert(fs::exists(g_d.data_dir + "/empty"));
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, put_replaces_an_existing_file) {
    boot();
    int fd = files_conn();
    EXPECT_STR(put(fd, "f", "old contents").c_str(), ok_put("old contents").c_str());
    EXPECT_STR(put(fd, "f", "new").c_str(), ok_put("new").c_str());
    EXPECT_STR(t::read_file(g_d.data_dir + "/f").c_str(), "new");
}

Test(e2e_files, put_with_the_right_digest_is_stored) {
    boot();
    int fd = files_conn();
    std::string data = "digest me";
    cr_assert(t::send_all(fd, "PUT d.txt 9 " + hex_of(data) + "\n" + data));
    EXPECT_STR(t::read_line(fd).c_str(), ok_put(data).c_str());
    EXPECT_STR(t::read_file(g_d.data_dir + "/d.txt").c_str(), "digest me");
}

Test(e2e_files, put_digest_in_upper_case_hex_is_accepted) {
    boot();
    int fd = files_conn();
    std::string hex = hex_of("abc");
    std::transform(hex.begin(), hex.end(), hex.begin(), ::toupper);
    cr_assert(t::send_all(fd, "PUT u.txt 3 " + hex + "\nabc"));
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("abc").c_str());
}

Test(e2e_files, put_with_a_wrong_digest_stores_nothing_and_keeps_the_session) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT w.txt 5 " + hex_of("other") + "\nhello"));
    EXPECT_STR(t::read_line(fd).c_str(), "ERR 422 digest mismatch");
    assert_store_empty();
    cr_assert(cmd(fd, "STAT w.txt").rfind("ERR 404", 0) == 0);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
    // A mismatch over an existing file keeps the old one whole.
    EXPECT_STR(put(fd, "w.txt", "first").c_str(), ok_put("first").c_str());
    cr_assert(t::send_all(fd, "PUT w.txt 6 " + hex_of("other") + "\nsecond"));
    EXPECT_STR(t::read_line(fd).c_str(), "ERR 422 digest mismatch");
    EXPECT_STR(t::read_file(g_d.data_dir + "/w.txt").c_str(), "first");
}

Test(e2e_files, put_with_a_malformed_digest_or_size_is_refused_and_closed) {
    boot();
    int fd = files_conn();
    cr_assert(cmd(fd, "PUT m.txt 3 xyz").rfind("ERR 400", 0) == 0);
    cr_assert(t::peer_closed(fd));
    fd = files_conn();
    cr_assert(cmd(fd, "PUT m.txt -3").rfind("ERR 400", 0) == 0);
    cr_assert(t::peer_closed(fd));
    assert_store_empty();
}

Test(e2e_files, unsized_put_ends_at_half_close) {
    boot();
    int fd = files_conn();
    std::string data = t::random_bytes(70000, 3);
    cr_assert(t::send_all(fd, "PUT h.bin\n" + data));
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    EXPECT_STR(t::read_line(fd).c_str(), ok_put(data).c_str());
    cr_assert(t::peer_closed(fd));
    cr_assert(t::read_file(g_d.data_dir + "/h.bin") == data);
}

Test(e2e_files, unsized_put_of_nothing_stores_an_empty_file) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT e.bin\n"));
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    EXPECT_STR(t::read_line(fd).c_str(), ok_put("").c_str());
    cr_assert(t::peer_closed(fd));
    cr_assert(fs::exists(g_d.data_dir + "/e.bin"));
}

// ---- GET -------------------------------------------------------------------------------------

Test(e2e_files, get_sends_length_digest_and_bytes) {
    boot();
    std::string data = t::random_bytes(5000, 11);
    store("g.bin", data);
    int fd = files_conn();
    std::string body;
    EXPECT_STR(get(fd, "g.bin", body).c_str(), ok_put(data).c_str());
    cr_assert(body == data);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong", "nothing follows the announced bytes");
}

Test(e2e_files, get_with_offset_and_length_resumes) {
    boot();
    std::string data = "0123456789abcdefghij";
    store("r.txt", data);
    std::string whole = hex_of(data);
    int fd = files_conn();
    std::string body;
    EXPECT_STR(get(fd, "r.txt 10", body).c_str(), ("OK 10 " + whole).c_str(),
               "the digest is of the whole file");
    EXPECT_STR(body.c_str(), "abcdefghij");
    EXPECT_STR(get(fd, "r.txt 3 4", body).c_str(), ("OK 4 " + whole).c_str());
    EXPECT_STR(body.c_str(), "3456");
    EXPECT_STR(get(fd, "r.txt 15 100", body).c_str(), ("OK 5 " + whole).c_str(),
               "a LENGTH past the end is cut to the end");
    EXPECT_STR(body.c_str(), "fghij");
    EXPECT_STR(get(fd, "r.txt 0 0", body).c_str(), ("OK 0 " + whole).c_str());
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, get_at_the_end_sends_nothing) {
    boot();
    store("r.txt", "12345");
    int fd = files_conn();
    std::string body;
    EXPECT_STR(get(fd, "r.txt 5", body).c_str(), ("OK 0 " + hex_of("12345")).c_str());
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong", "no bytes follow OK 0");
}

Test(e2e_files, get_past_the_end_is_416) {
    boot();
    store("r.txt", "12345");
    int fd = files_conn();
    cr_assert(cmd(fd, "GET r.txt 6").rfind("ERR 416", 0) == 0);
    cr_assert(cmd(fd, "GET r.txt 99999999999 1").rfind("ERR 416", 0) == 0);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, get_of_a_missing_file_is_404) {
    boot();
    int fd = files_conn();
    cr_assert(cmd(fd, "GET nothing.here").rfind("ERR 404", 0) == 0);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, get_with_a_bad_offset_is_400_and_keeps_the_session) {
    boot();
    store("r.txt", "12345");
    int fd = files_conn();
    cr_assert(cmd(fd, "GET r.txt abc").rfind("ERR 400", 0) == 0);
    cr_assert(cmd(fd, "GET").rfind("ERR 400", 0) == 0);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

// ---- STAT, LIST, DEL -------------------------------------------------------------------------

Test(e2e_files, stat_gives_size_digest_and_mtime) {
    boot();
    store("s.txt", "some bytes");
    struct stat st {};
    cr_assert_eq(::stat((g_d.data_dir + "/s.txt").c_str(), &st), 0);
    int fd = files_conn();
    std::string want = "OK 10 " + hex_of("some bytes") + " " + std::to_string(st.st_mtime);
    EXPECT_STR(cmd(fd, "STAT s.txt").c_str(), want.c_str());
    cr_assert(cmd(fd, "STAT missing").rfind("ERR 404", 0) == 0);
    cr_assert(cmd(fd, "STAT").rfind("ERR 400", 0) == 0);
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, list_is_sorted_by_name) {
    boot();
    store("b.txt", "bb");
    store("a.txt", "a");
    store("C.txt", "ccc");
    store("a-1", "");
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "LIST").c_str(), "OK 4");
    const char* names[] = {"C.txt", "a-1", "a.txt", "b.txt"};
    const char* bodies[] = {"ccc", "", "a", "bb"};
    for (int i = 0; i < 4; ++i) {
        std::string want = std::string(names[i]) + " " + std::to_string(strlen(bodies[i])) + " " +
                           hex_of(bodies[i]);
        EXPECT_STR(t::read_line(fd).c_str(), want.c_str());
    }
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, list_of_an_empty_store_is_ok_0) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "LIST").c_str(), "OK 0");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, list_skips_temporaries_and_non_regular_entries) {
    boot();
    store("real", "x");
    fs::create_directory(g_d.data_dir + "/subdir");
    t::write_file(g_d.data_dir + "/.hidden", "h");
    cr_assert_eq(mkfifo((g_d.data_dir + "/fifo").c_str(), 0600), 0);
    int fd = files_conn();
    // A folder is listed as one (README "Folders"); the rest is not.
    EXPECT_STR(cmd(fd, "LIST").c_str(), "OK 2");
    EXPECT_STR(t::read_line(fd).c_str(), ("real 1 " + hex_of("x")).c_str());
    EXPECT_STR(t::read_line(fd).c_str(), "subdir/ - -");
    cr_assert(cmd(fd, "GET fifo").rfind("ERR 404", 0) == 0);
    cr_assert(cmd(fd, "GET subdir").rfind("ERR 404", 0) == 0);
}

// A temporary left by a crash (README "Stop and reload") is removed at start, the real file beside
// it kept. The first LIST is answered only once the start-up scan (which sweeps) is over, so no
// waiting here.
Test(e2e_files, a_leftover_temporary_is_swept_at_start) {
    std::string data = t::make_tmpdir() + "/data";
    cr_assert(fs::create_directory(data));
    cr_assert(t::write_file(data + "/.duet-tmp-99999-1", "half an upload"));
    cr_assert(t::write_file(data + "/kept", "k"));
    cr_assert(t::start(g_d, {}, data), "duet did not start: %s", g_d.err_log.c_str());
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "LIST").c_str(), "OK 1");
    EXPECT_STR(t::read_line(fd).c_str(), ("kept 1 " + hex_of("k")).c_str());
    auto names = store_entries();
    cr_assert(names.size() == 1 && names[0] == "kept", "store after start: %zu entries, first %s",
              names.size(), names.empty() ? "" : names[0].c_str());
}

// 2,000 files dropped into the store by hand, listed to a client that reads slowly: every line
// arrives, in order, with the right size and digest, and other clients are served meanwhile.
Test(e2e_files, list_of_2000_files_streams_to_a_slow_reader) {
    boot();
    const int n = 2000;
    std::string pad(120, 'p');
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
        char num[16];
        std::snprintf(num, sizeof num, "%05d", i);
        names.push_back("f" + std::string(num) + pad);
        cr_assert(t::write_file(g_d.data_dir + "/" + names.back(), std::string(num)));
    }
    int fd = files_conn();
    int small = 32768;  // far less than the listing: the server must wait for the reader
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cr_assert(t::send_all(fd, "LIST\nPING\n"));
    std::string got;
    std::size_t want_bytes = 0;
    for (auto& name : names) want_bytes += name.size() + 1 + 1 + 1 + 64 + 1;
    std::string first = t::read_line(fd);
    EXPECT_STR(first.c_str(), "OK 2000");
    bool other_served = false;
    while (got.size() < want_bytes) {
        std::string part = t::read_n(fd, std::min<std::size_t>(8192, want_bytes - got.size()));
        cr_assert(!part.empty(), "listing stopped after %zu bytes", got.size());
        got += part;
        if (!other_served && got.size() > want_bytes / 4) {
            int other = files_conn();  // the loop is not stuck on the slow reader
            EXPECT_STR(cmd(other, "PING").c_str(), "OK pong");
            other_served = true;
        }
        usleep(2000);  // a slow reader
    }
    std::size_t at = 0;
    for (int i = 0; i < n; ++i) {
        std::size_t lf = got.find('\n', at);
        cr_assert(lf != std::string::npos);
        std::string line = got.substr(at, lf - at);
        std::string num = names[i].substr(1, 5);
        std::string want = names[i] + " 5 " + hex_of(num);
        EXPECT_STR(line.c_str(), want.c_str(), "line %d", i);
        at = lf + 1;
    }
    EXPECT_STR(t::read_line(fd).c_str(), "OK pong", "commands after LIST wait their turn");
}

Test(e2e_files, del_removes_and_get_then_404) {
    boot();
    store("d.txt", "bye");
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "DEL d.txt").c_str(), "OK");
    cr_assert(cmd(fd, "GET d.txt").rfind("ERR 404", 0) == 0);
    cr_assert(cmd(fd, "DEL d.txt").rfind("ERR 404", 0) == 0);
    cr_assert(!fs::exists(g_d.data_dir + "/d.txt"));
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

// ---- names and limits ------------------------------------------------------------------------

Test(e2e_files, invalid_names_are_400_and_keep_the_session_for_get_stat_del) {
    boot();
    int fd = files_conn();
    const std::string bad[] = {"..",       ".hidden",     "a%2Fb", std::string(256, 'n'),
                               "..%2Fetc", "a\\b",        "a%5Cb", "%20a",
                               "a%0Ab",    "a%E2%80%AEb", "a%zz"};
    for (auto& name : bad) {
        std::string got = cmd(fd, "GET " + name);
        cr_assert(got.rfind("ERR 400 invalid file name: ", 0) == 0, "%s: %s", name.c_str(),
                  got.c_str());
        cr_assert(cmd(fd, "STAT " + name).rfind("ERR 400", 0) == 0);
        cr_assert(cmd(fd, "DEL " + name).rfind("ERR 400", 0) == 0);
    }
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

Test(e2e_files, a_255_byte_name_is_valid) {
    boot();
    int fd = files_conn();
    std::string name(255, 'n');
    EXPECT_STR(put(fd, name, "ok").c_str(), ok_put("ok").c_str());
    cr_assert(fs::exists(g_d.data_dir + "/" + name));
}

Test(e2e_files, sized_put_with_an_invalid_name_answers_and_closes) {
    boot();
    const std::string bad[] = {"..", ".hidden", "a%2Fb", std::string(256, 'n')};
    for (auto& name : bad) {
        int fd = files_conn();
        cr_assert(t::send_all(fd, "PUT " + name + " 5\nhello"));
        std::string got = t::read_line(fd);
        cr_assert(got.rfind("ERR 400 invalid file name: ", 0) == 0, "%s: %s", name.c_str(),
                  got.c_str());
        cr_assert(t::peer_closed(fd), "the stream is out of step after %s", name.c_str());
    }
    assert_store_empty();
    cr_assert(!fs::exists(scratch() + "/hidden") && !fs::exists(scratch() + "/a"));
}

Test(e2e_files, line_over_4096_bytes_is_refused_and_closed) {
    boot();
    int fd = files_conn();
    // 4095 bytes + LF is the longest line: it is read (and is an unknown command).
    EXPECT_STR(cmd(fd, std::string(4095, 'x')).c_str(), "ERR 400 unknown command");
    cr_assert(t::send_all(fd, std::string(4096, 'y') + "\n"));
    EXPECT_STR(t::read_line(fd).c_str(), "ERR 400 line too long");
    cr_assert(t::peer_closed(fd));
    fd = files_conn();
    cr_assert(t::send_all(fd, std::string(10000, 'z')));  // no LF at all
    EXPECT_STR(t::read_line(fd).c_str(), "ERR 400 line too long");
    cr_assert(t::peer_closed(fd));
}

Test(e2e_files, sized_put_over_max_upload_is_413_and_closed) {
    boot({"--max-upload", "100"});
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT x 200\n" + std::string(200, 'a')));
    cr_assert(t::read_line(fd).rfind("ERR 413", 0) == 0);
    cr_assert(t::peer_closed(fd));
    assert_store_empty();
    fd = files_conn();
    EXPECT_STR(put(fd, "x", std::string(100, 'a')).c_str(), ok_put(std::string(100, 'a')).c_str(),
               "exactly the limit is accepted");
}

Test(e2e_files, unsized_put_growing_past_max_upload_is_413) {
    boot({"--max-upload", "100"});
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT x\n" + std::string(60, 'a')));
    cr_assert(t::send_all(fd, std::string(60, 'b')));
    cr_assert(t::read_line(fd).rfind("ERR 413", 0) == 0);
    cr_assert(t::peer_closed(fd));
    assert_store_empty();
    // A PUT without size that stays within the limit is stored.
    fd = files_conn();
    cr_assert(t::send_all(fd, "PUT y\n" + std::string(100, 'c')));
    shutdown(fd, SHUT_WR);
    EXPECT_STR(t::read_line(fd).c_str(), ok_put(std::string(100, 'c')).c_str());
}

Test(e2e_files, stalled_sized_put_times_out_and_stores_nothing) {
    boot({"--idle-timeout", "1"});
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT s.bin 1000\n" + std::string(300, 's')));
    std::string answer = t::read_line(fd, 5000);
    cr_assert(answer.rfind("ERR ", 0) == 0, "a stalled upload got '%s'", answer.c_str());
    cr_assert(t::peer_closed(fd));
    assert_store_empty();
    int other = files_conn();
    cr_assert(cmd(other, "STAT s.bin").rfind("ERR 404", 0) == 0);
}

Test(e2e_files, client_gone_mid_sized_put_stores_nothing) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT gone.bin 100000\n" + t::random_bytes(40000, 5)));
    g_fds.pop_back();
    close(fd);
    cr_assert(wait_failed_uploads(1), "the cut upload was not counted as failed");
    assert_store_empty();
    int other = files_conn();
    cr_assert(cmd(other, "STAT gone.bin").rfind("ERR 404", 0) == 0);
}

Test(e2e_files, partial_command_line_times_out) {
    boot({"--header-timeout", "1"});
    int fd = files_conn();
    std::int64_t t0 = t::now_ms();
    cr_assert(t::send_all(fd, "PIN"));
    std::string answer = t::read_line(fd, 5000);
    cr_assert(answer.rfind("ERR ", 0) == 0, "got '%s'", answer.c_str());
    cr_assert(t::peer_closed(fd));
    cr_assert_geq(t::now_ms() - t0, 900, "the timeout came too early");
}

Test(e2e_files, idle_session_between_commands_is_not_cut_by_header_timeout) {
    boot({"--header-timeout", "1"});
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
    cr_assert(!t::peer_closed(fd, 1600), "an idle session is not a slow command line");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

// ---- token -----------------------------------------------------------------------------------

Test(e2e_files, token_required_before_file_commands) {
    boot({"--token", "s3cret"});
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
    std::string help = cmd(fd, "HELP");
    cr_assert(help.rfind("OK ", 0) == 0);
    for (int i = std::atoi(help.c_str() + 3); i > 0; --i) t::read_line(fd);
    cr_assert(cmd(fd, "LIST").rfind("ERR 401", 0) == 0);
    cr_assert(cmd(fd, "GET a").rfind("ERR 401", 0) == 0);
    cr_assert(cmd(fd, "STAT a").rfind("ERR 401", 0) == 0);
    cr_assert(cmd(fd, "DEL a").rfind("ERR 401", 0) == 0);
    EXPECT_STR(cmd(fd, "AUTH wrong").c_str(), "ERR 401 bad token");
    cr_assert(cmd(fd, "LIST").rfind("ERR 401", 0) == 0, "a bad AUTH does not authenticate");
    EXPECT_STR(cmd(fd, "AUTH s3cret").c_str(), "OK");
    EXPECT_STR(cmd(fd, "LIST").c_str(), "OK 0");
    EXPECT_STR(put(fd, "t.txt", "tok").c_str(), ok_put("tok").c_str());
    std::string body;
    EXPECT_STR(get(fd, "t.txt", body).c_str(), ok_put("tok").c_str());
    EXPECT_STR(cmd(fd, "QUIT").c_str(), "OK bye");
}

Test(e2e_files, token_put_before_auth_is_401_and_closed) {
    boot({"--token", "s3cret"});
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT x 5\nhello"));
    cr_assert(t::read_line(fd).rfind("ERR 401", 0) == 0);
    cr_assert(t::peer_closed(fd));
    assert_store_empty();
}

Test(e2e_files, token_quit_works_before_auth) {
    boot({"--token", "s3cret"});
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "QUIT").c_str(), "OK bye");
    cr_assert(t::peer_closed(fd));
}

Test(e2e_files, token_is_per_session) {
    boot({"--token", "s3cret"});
    int a = files_conn();
    EXPECT_STR(cmd(a, "AUTH s3cret").c_str(), "OK");
    int b = files_conn();
    cr_assert(cmd(b, "LIST").rfind("ERR 401", 0) == 0);
    EXPECT_STR(cmd(a, "LIST").c_str(), "OK 0");
}

// ---- big transfers ---------------------------------------------------------------------------

Test(e2e_files, three_mib_round_trip_is_intact) {
    boot();
    std::string data = t::random_bytes(3 << 20, 42);
    int fd = files_conn();
    EXPECT_STR(put(fd, "big.bin", data).c_str(), ok_put(data).c_str());
    std::string body;
    EXPECT_STR(get(fd, "big.bin", body).c_str(), ok_put(data).c_str());
    cr_assert(body == data, "download differs (%zu bytes read)", body.size());
    std::size_t half = data.size() / 2;
    std::string tail_answer = get(fd, "big.bin " + std::to_string(half), body);
    EXPECT_STR(tail_answer.c_str(),
               ("OK " + std::to_string(data.size() - half) + " " + hex_of(data)).c_str());
    cr_assert(body == data.substr(half), "resumed download differs");
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
}

// ---- the real nc -----------------------------------------------------------------------------

Test(e2e_files, nc_put_until_eof_then_get_back) {
    boot();
    std::string dir = scratch();
    std::string data = t::random_bytes(200000, 9);
    cr_assert(t::write_file(dir + "/a.bin", data));
    std::string port = std::to_string(g_d.files_port);
    std::string out = t::sh("cd " + dir +
                            " && { echo \"PUT a.bin\"; cat a.bin; } | "
                            "nc -N 127.0.0.1 " +
                            port);
    EXPECT_STR(out.c_str(), (ok_put(data) + "\n").c_str());
    cr_assert(t::read_file(g_d.data_dir + "/a.bin") == data);
    std::size_t n = ok_put(data).size() + 2;
    std::string got =
        t::sh("echo \"GET a.bin\" | nc -N 127.0.0.1 " + port + " | tail -c +" + std::to_string(n));
    cr_assert(got == data, "nc download differs (%zu bytes)", got.size());
}

Test(e2e_files, nc_crlf_session) {
    boot();
    store("a.bin", "nc!");
    struct stat st {};
    cr_assert_eq(::stat((g_d.data_dir + "/a.bin").c_str(), &st), 0);
    std::string out = t::sh("printf 'ping\\r\\nstat a.bin\\r\\nquit\\r\\n' | nc -N 127.0.0.1 " +
                            std::to_string(g_d.files_port));
    std::string want =
        "OK pong\nOK 3 " + hex_of("nc!") + " " + std::to_string(st.st_mtime) + "\nOK bye\n";
    EXPECT_STR(out.c_str(), want.c_str());
}

// ---- the other port --------------------------------------------------------------------------

Test(e2e_files, put_on_file_port_is_served_over_http) {
    boot();
    std::string data = t::random_bytes(12345, 4);
    store("x.bin", data);
    std::string r = http_get("x.bin");
    cr_assert_eq(t::status_of(r), 200, "%s", r.substr(0, 200).c_str());
    cr_assert(t::body_of(r) == data);
    EXPECT_STR(t::header_of(r, "etag").c_str(), ("\"" + hex_of(data) + "\"").c_str());
}

Test(e2e_files, put_over_http_is_served_on_file_port) {
    boot();
    std::string data = "from http\n";
    std::string r = t::http(g_d.http_port,
                            "PUT /files/h.txt HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 10\r\n\r\n" +
                                data);
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    int fd = files_conn();
    std::string body;
    EXPECT_STR(get(fd, "h.txt", body).c_str(), ok_put(data).c_str());
    EXPECT_STR(body.c_str(), data.c_str());
}

Test(e2e_files, delete_on_one_port_is_seen_on_the_other) {
    boot();
    store("one", "1");
    store("two", "2");
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "DEL one").c_str(), "OK");
    cr_assert_eq(t::status_of(http_get("one")), 404);
    std::string r = t::http(g_d.http_port, "DELETE /files/two HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(t::status_of(r), 204, "%s", r.c_str());
    cr_assert(cmd(fd, "GET two").rfind("ERR 404", 0) == 0);
}

Test(e2e_files, sigterm_with_idle_session_exits_zero) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "PING").c_str(), "OK pong");
    cr_assert_eq(t::stop(g_d, SIGTERM), 0);
    cr_assert(t::peer_closed(fd));
}

Test(e2e_files, many_pipelined_gets_are_all_answered) {
    boot();
    store("s.txt", "small");
    int fd = files_conn();
    const int n = 300;
    std::string batch;
    for (int i = 0; i < n; ++i) batch += "GET s.txt\n";
    cr_assert(t::send_all(fd, batch + "PING\n"));
    std::string one = ok_put("small") + "\nsmall";
    std::string want;
    for (int i = 0; i < n; ++i) want += one;
    want += "OK pong\n";
    std::string got = t::read_n(fd, want.size(), 5000);
    cr_assert(got == want, "%zu of %zu bytes arrived", got.size(), want.size());
}

Test(e2e_files, many_pipelined_pings_are_all_answered) {
    boot();
    int fd = files_conn();
    const int n = 20000;
    std::string batch;
    for (int i = 0; i < n; ++i) batch += "PING\n";
    cr_assert(t::send_all(fd, batch + "QUIT\n"));
    std::string want;
    for (int i = 0; i < n; ++i) want += "OK pong\n";
    want += "OK bye\n";
    std::string got = t::read_all(fd, 5000);
    cr_assert(got == want, "%zu of %zu bytes arrived", got.size(), want.size());
}

Test(e2e_files, client_reset_mid_sized_put_stores_nothing) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "PUT reset.bin 100000\n" + t::random_bytes(30000, 6)));
    int other = files_conn();  // once this answers, the server has seen the upload's bytes
    EXPECT_STR(cmd(other, "PING"), "OK pong");
    linger hard{1, 0};  // close with a reset, not a FIN
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    g_fds.erase(std::find(g_fds.begin(), g_fds.end(), fd));
    close(fd);
    cr_assert(wait_failed_uploads(1), "the reset upload was not counted as failed");
    assert_store_empty();
    EXPECT_STR(cmd(other, "STAT reset.bin").substr(0, 7), "ERR 404");
}

Test(e2e_files, quit_ignores_what_follows) {
    boot();
    int fd = files_conn();
    cr_assert(t::send_all(fd, "QUIT\nPING\nPING\n"));
    EXPECT_STR(t::read_all(fd, 3000), "OK bye\n");
}

Test(e2e_files, auth_without_a_server_token_is_ok) {
    boot();
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "AUTH anything"), "OK");
    EXPECT_STR(cmd(fd, "LIST"), "OK 0");
}

// ---- graceful stop ---------------------------------------------------------------------------

Test(e2e_files, sigterm_lets_the_upload_in_hand_finish_then_closes) {
    boot();
    int fd = files_conn();
    std::string data = t::random_bytes(2000, 8);
    cr_assert(t::send_all(fd, "PUT late.bin 2000\n" + data.substr(0, 1000)));
    int other = files_conn();  // the server has the first half once this session is answered
    EXPECT_STR(cmd(other, "PING"), "OK pong");
    cr_assert_eq(kill(g_d.pid, SIGTERM), 0);
    cr_assert(t::peer_closed(other, 3000), "an idle session closes at once");
    cr_assert(t::send_all(fd, data.substr(1000) + "PING\n"));
    EXPECT_STR(t::read_line(fd), ok_put(data));
    cr_assert(t::peer_closed(fd), "the session closes after its transfer");
    cr_assert_eq(t::wait_exit(g_d, 5000), 0);
    cr_assert(t::read_file(g_d.data_dir + "/late.bin") == data);
}

Test(e2e_files, sigterm_lets_the_download_in_hand_finish) {
    boot();
    std::string data = t::random_bytes(3 << 20, 12);
    store("big.bin", data);
    int fd = files_conn();
    int small = 32768;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    int idle = files_conn();
    EXPECT_STR(cmd(idle, "PING"), "OK pong");
    EXPECT_STR(cmd(fd, "GET big.bin"), ok_put(data));
    cr_assert_eq(kill(g_d.pid, SIGTERM), 0);
    cr_assert(t::peer_closed(idle, 3000), "the stop has begun: idle sessions are closed");
    std::string body = t::read_n(fd, data.size());
    cr_assert(body == data, "got %zu of %zu bytes", body.size(), data.size());
    cr_assert(t::peer_closed(fd));
    cr_assert_eq(t::wait_exit(g_d, 5000), 0);
}

// ---- framing and names, continued ------------------------------------------------------------

Test(e2e_files, commands_and_bytes_trickling_in_one_byte_at_a_time) {
    boot();
    int fd = files_conn();
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string all = "PING\r\nPUT tr.txt 6\r\ntrickl";
    for (char c : all) cr_assert(t::send_all(fd, std::string(1, c)));
    EXPECT_STR(t::read_line(fd), "OK pong");
    EXPECT_STR(t::read_line(fd), ok_put("trickl"));
    EXPECT_STR(t::read_file(g_d.data_dir + "/tr.txt"), "trickl");
}

Test(e2e_files, names_with_every_allowed_character_are_valid) {
    boot();
    int fd = files_conn();
    const char* good[] = {"A-Z_a.z-09", "x..y", "-", "_", "name.", "UPPER"};
    for (const char* name : good) {
        EXPECT_STR(put(fd, name, name), ok_put(name));
        std::string body;
        EXPECT_STR(get(fd, name, body), ok_put(name));
        EXPECT_STR(body, name);
    }
}

Test(e2e_files, planted_symlinks_are_neither_served_nor_written_through) {
    boot();
    std::string outside = scratch() + "/outside.txt";
    cr_assert(t::write_file(outside, "keep"));
    fs::create_symlink(outside, g_d.data_dir + "/link");
    int fd = files_conn();
    cr_assert(cmd(fd, "GET link").rfind("ERR 404", 0) == 0);
    cr_assert(cmd(fd, "STAT link").rfind("ERR 404", 0) == 0);
    EXPECT_STR(cmd(fd, "LIST"), "OK 0");
    EXPECT_STR(put(fd, "link", "new"), ok_put("new"));
    EXPECT_STR(t::read_file(outside), "keep");
    cr_assert(!fs::is_symlink(g_d.data_dir + "/link"), "the upload replaced the link");
    EXPECT_STR(t::read_file(g_d.data_dir + "/link"), "new");
}

// ---- access log ------------------------------------------------------------------------------

Test(e2e_files, access_log_has_a_line_per_command_and_never_the_token) {
    std::string dir = t::make_tmpdir();
    std::string wrapper = dir + "/duet.sh", log = dir + "/stdout.log";
    std::string bin = fs::absolute(t::duet_binary()).string();
    cr_assert(t::write_file(wrapper, "#!/bin/sh\nexec '" + bin + "' \"$@\" > '" + log + "'\n"));
    fs::permissions(wrapper, fs::perms::owner_all);
    bool ok = t::start(g_d, {"--access-log", "--token", "s3cret"}, dir + "/data", {}, wrapper);
    cr_assert(ok, "duet did not start: %s", g_d.err_log.c_str());
    int fd = files_conn();
    EXPECT_STR(cmd(fd, "AUTH wrong"), "ERR 401 bad token");
    EXPECT_STR(cmd(fd, "AUTH s3cret"), "OK");
    EXPECT_STR(cmd(fd, "PING"), "OK pong");
    EXPECT_STR(cmd(fd, "QUIT"), "OK bye");
    cr_assert(t::peer_closed(fd));
    cr_assert_eq(t::stop(g_d, SIGTERM), 0);
    std::string text = t::read_file(log);
    cr_assert(text.find("\"PING\" OK pong") != std::string::npos, "log: %s", text.c_str());
    cr_assert(text.find("\"QUIT\" OK bye") != std::string::npos, "log: %s", text.c_str());
    cr_assert(text.find("s3cret") == std::string::npos, "the token leaked: %s", text.c_str());
    cr_assert(text.find("wrong") == std::string::npos, "a tried token leaked: %s", text.c_str());
    cr_assert_eq(std::count(text.begin(), text.end(), '\n'), 4, "log: %s", text.c_str());
}
