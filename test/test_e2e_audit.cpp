// Black-box tests for what an outside audit found unchecked (issue 13): the HTTP and file-port
// access log (fields, one line per request, escaping per README "Limits"), a bare LF after chunk
// data, DEL/PUT without AUTH on files that exist, the status of a DELETE aimed at a directory
// symlink, and /metrics values that must move by exactly what the test did.
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
int g_log_fd = -1;  // read end of the FIFO duet's stdout (the access log) is redirected to
std::string g_log;  // everything read from it so far

void fini() {
    if (g_log_fd >= 0) close(g_log_fd);
    t::teardown();
}

std::string get(const std::string& path, const std::string& fields = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
}

// Boots duet with --access-log (plus `args`), its stdout going to a FIFO this test reads.
void boot_logged(std::vector<std::string> args = {}) {
    std::string parent = t::make_tmpdir();
    t::remove_at_teardown(parent);
    std::string data = parent + "/data", fifo = parent + "/stdout";
    cr_assert_eq(mkfifo(fifo.c_str(), 0600), 0);
    // Opened for reading first (non-blocking), so the shell's open for writing does not wait.
    g_log_fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert(g_log_fd >= 0);
    std::vector<std::string> all = {"-c",
                                    "exec \"$0\" \"$@\" >'" + fifo + "'",
                                    t::duet_binary(),
                                    "--http",
                                    "127.0.0.1:0",
                                    "--files",
                                    "127.0.0.1:0",
                                    "--data",
                                    data,
                                    "--access-log"};
    all.insert(all.end(), args.begin(), args.end());
    cr_assert(t::start(g_srv, all, data, {}, "/bin/sh"), "duet did not start: %s",
              g_srv.err_log.c_str());
}

// The access-log lines read so far, after waiting (bounded) until there are at least `n`.
std::vector<std::string> log_lines(std::size_t n, int timeout_ms = 5000) {
    std::int64_t deadline = t::now_ms() + timeout_ms;
    std::vector<std::string> lines;
    for (;;) {
        lines.clear();
        std::size_t start = 0, nl;
        while ((nl = g_log.find('\n', start)) != std::string::npos) {
            lines.push_back(g_log.substr(start, nl - start));
            start = nl + 1;
        }
        std::int64_t left = deadline - t::now_ms();
        if (lines.size() >= n || left <= 0) return lines;
        pollfd p{g_log_fd, POLLIN, 0};
        if (poll(&p, 1, int(left)) <= 0) continue;
        char buf[4096];
        ssize_t got = read(g_log_fd, buf, sizeof buf);
        if (got > 0) g_log.append(buf, std::size_t(got));
        if (got == 0) usleep(1000);  // writer not open yet (POLLHUP): bounded by the deadline
    }
}

std::string all_lines(const std::vector<std::string>& lines) {
    std::string s;
    for (auto& l : lines) s += "  [" + l + "]\n";
    return s;
}

// Quotes in `line` that are not escaped with a backslash.
int bare_quotes(const std::string& line) {
    int n = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\') {
            ++i;
            continue;
        }
        if (line[i] == '"') ++n;
    }
    return n;
}

int files_conn() {
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(fd >= 0);
    return fd;
}

std::string cmd(int fd, const std::string& line) {
    cr_assert(t::send_all(fd, line + "\n"));
    return t::read_line(fd);
}

// A connection from a loopback address of its own (127.0.0.2, .3, ...): the token-guessing
// throttle counts failures per client address (README "Token"), and this test is about what
// one wrong attempt does, not about the throttle.
int connect_fresh(int port) {
    static int next = 2;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000000u + unsigned(next++));
    cr_assert_eq(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

std::string http_fresh(const std::string& raw) {
    int fd = connect_fresh(g_srv.http_port);
    t::send_all(fd, raw);
    std::string r = t::read_response(fd);
    close(fd);
    return r;
}

double metric(const std::string& body, const std::string& series) {
    double v = t::metric_value(body, series);
    // A status code nobody got yet has no sample line: it counts 0.
    if (v < 0 && series.find("code=") != std::string::npos) return 0;
    cr_assert_geq(v, 0, "no sample %s in /metrics:\n%s", series.c_str(), body.c_str());
    return v;
}

}  // namespace

TestSuite(audit, .fini = fini, .timeout = 60);

// ---- access log ----

// One line per HTTP request, in order, with the client address, the port, the request line in
// quotes, the status and the body bytes.
Test(audit, http_access_log_has_one_line_per_request_with_its_fields) {
    boot_logged();
    std::string root = t::http(g_srv.http_port, get("/"));
    cr_assert_eq(t::status_of(root), 200);
    std::string put = t::http(g_srv.http_port,
                              "PUT /files/a.txt HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 5\r\n\r\nhello");
    cr_assert_eq(t::status_of(put), 201, "%s", put.c_str());
    // Keep-alive: three requests on one connection are three lines.
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, get("/files/a.txt") + get("/files/missing.txt") +
                                  "HEAD /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string r1 = t::read_response(fd), r2 = t::read_response(fd),
                r3 = t::read_response(fd, true);
    close(fd);
    cr_assert_eq(t::status_of(r1), 200);
    cr_assert_eq(t::status_of(r2), 404);
    cr_assert_eq(t::status_of(r3), 200);

    auto lines = log_lines(5);
    cr_assert_eq(lines.size(), 5u, "want 5 lines, got:\n%s", all_lines(lines).c_str());
    struct Want {
        std::string request;
        int status;
        std::size_t bytes;
    } want[] = {
        {"GET / HTTP/1.1", 200, t::body_of(root).size()},
        {"PUT /files/a.txt HTTP/1.1", 201, t::body_of(put).size()},
        {"GET /files/a.txt HTTP/1.1", 200, 5},
        {"GET /files/missing.txt HTTP/1.1", 404, t::body_of(r2).size()},
        {"HEAD /files/a.txt HTTP/1.1", 200, 5},
    };
    for (std::size_t i = 0; i < 5; ++i) {
        const std::string& l = lines[i];
        cr_expect(l.rfind("127.0.0.1", 0) == 0, "line %zu does not start with the client: %s", i,
                  l.c_str());
        std::string tail = " http \"" + want[i].request + "\" " + std::to_string(want[i].status) +
                           " " + std::to_string(want[i].bytes);
        cr_expect(
            l.size() >= tail.size() && l.compare(l.size() - tail.size(), tail.size(), tail) == 0,
            "line %zu: %s\n  want it to end with: %s", i, l.c_str(), tail.c_str());
    }
    cr_expect_eq(t::stop(g_srv, SIGTERM), 0);
}

// A request the parser refuses is logged too, with its status.
Test(audit, http_access_log_records_a_bad_request) {
    boot_logged();
    std::string r = t::http(g_srv.http_port, "GET / HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n");
    cr_assert_eq(t::status_of(r), 400, "%s", r.c_str());
    auto lines = log_lines(1);
    cr_assert_eq(lines.size(), 1u, "%s", all_lines(lines).c_str());
    cr_expect(lines[0].find(" 400 ") != std::string::npos, "%s", lines[0].c_str());
    cr_expect(lines[0].rfind("127.0.0.1", 0) == 0, "%s", lines[0].c_str());
}

// The file port logs each command with its result; AUTH's token is never written.
Test(audit, file_port_access_log_has_the_command_and_result_but_never_the_token) {
    boot_logged({"--token", "hunter2-secret"});
    int fd = files_conn();
    cr_assert_eq(cmd(fd, "PING"), "OK pong");
    cr_assert_eq(cmd(fd, "AUTH wrong-guess"), "ERR 401 bad token");
    cr_assert_eq(cmd(fd, "AUTH hunter2-secret"), "OK");
    cr_assert_eq(cmd(fd, "STAT nope.txt").substr(0, 7), "ERR 404");
    close(fd);
    auto lines = log_lines(4);
    cr_assert_eq(lines.size(), 4u, "%s", all_lines(lines).c_str());
    const char* want[] = {"\"PING\" OK pong", "\"AUTH ***\" ERR 401", "\"AUTH ***\" OK",
                          "\"STAT nope.txt\" ERR 404"};
    for (std::size_t i = 0; i < 4; ++i) {
        cr_expect(lines[i].rfind("127.0.0.1", 0) == 0, "%s", lines[i].c_str());
        cr_expect(lines[i].find(" files ") != std::string::npos, "%s", lines[i].c_str());
        cr_expect(lines[i].find(want[i]) != std::string::npos, "line %zu: %s (want %s)", i,
                  lines[i].c_str(), want[i]);
    }
    cr_expect(g_log.find("hunter2") == std::string::npos, "the token reached the log");
    cr_expect(g_log.find("wrong-guess") == std::string::npos, "a guessed token reached the log");
}

// README "Limits": every byte a client chose is escaped: no control byte, no quote that ends the
// field, nothing that forges a second line.
Test(audit, access_log_escapes_what_clients_choose) {
    boot_logged();
    int fd = files_conn();
    // CR, ESC (a terminal colour sequence), a quote and a DEL inside one command line.
    std::string forged = "STAT \x1b[31mred\r\"x\" 127.0.0.1 files \"DEL all\" OK\x7f";
    cr_assert(t::send_all(fd, forged + "\n"));
    std::string answer = t::read_line(fd);
    cr_assert(answer.rfind("ERR ", 0) == 0, "%s", answer.c_str());
    cr_assert_eq(cmd(fd, "PING"), "OK pong");
    close(fd);
    // An HTTP target with bytes outside ASCII, as far as the parser lets them through.
    std::string r =
        t::http(g_srv.http_port, "GET /files/caf\xc3\xa9\"q HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert(t::status_of(r) > 0);
    auto lines = log_lines(3);
    cr_assert_eq(lines.size(), 3u, "a command became more or fewer lines:\n%s",
                 all_lines(lines).c_str());
    for (auto& l : lines) {
        for (unsigned char c : l)
            cr_expect(c >= 0x20 && c != 0x7f, "control byte 0x%02x in log line: %s", c, l.c_str());
        cr_expect_eq(bare_quotes(l), 2, "a quote ends the field early: %s", l.c_str());
    }
    cr_expect(lines[1].find("\"PING\" OK pong") != std::string::npos, "%s", lines[1].c_str());
}

// ---- framing ----

// Chunked framing needs CRLF: a bare LF after the chunk data is 400, the connection closes, and
// nothing is stored (README "Protocol rules"); likewise a bare LF after the chunk size.
Test(audit, bare_lf_in_chunked_framing_is_400_and_stores_nothing) {
    t::boot();
    const char* bodies[] = {"5\r\nhello\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                            "5\r\nhello\r\n0\n\r\n"};
    for (const char* body : bodies) {
        int fd = t::connect_port(g_srv.http_port);
        cr_assert(fd >= 0);
        cr_assert(t::send_all(fd, std::string("PUT /files/c.txt HTTP/1.1\r\nHost: x\r\n"
                                              "Transfer-Encoding: chunked\r\n\r\n") +
                                      body));
        std::string r = t::read_response(fd, false, 5000);
        cr_expect_eq(t::status_of(r), 400, "body %s: %s", body, r.c_str());
        cr_expect(t::is_json_error(r), "%s", r.c_str());
        cr_expect(t::peer_closed(fd, 3000), "connection left open after a framing error");
        close(fd);
    }
    auto names = t::store_listing(g_srv.data_dir);
    cr_expect(names.empty(), "stored: %s", t::joined(names).c_str());
}

// ---- token on files that exist ----

Test(audit, without_the_token_existing_files_are_neither_deleted_nor_replaced) {
    t::boot({"--token", "s3cret"});
    const std::string auth = "Authorization: Bearer s3cret\r\n";
    std::string r = t::http(g_srv.http_port, "PUT /files/keep.txt HTTP/1.1\r\nHost: x\r\n" + auth +
                                                 "Content-Length: 8\r\n\r\noriginal");
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    const std::string path = g_srv.data_dir + "/keep.txt";

    // HTTP: no token, a wrong token, a wrong scheme.
    for (const char* fields :
         {"", "Authorization: Bearer wrong\r\n", "Authorization: Basic czNjcmV0\r\n",
          "Authorization: Bearer s3cretX\r\n", "Authorization: Bearer s3cre\r\n"}) {
        r = http_fresh("DELETE /files/keep.txt HTTP/1.1\r\nHost: x\r\n" + std::string(fields) +
                       "\r\n");
        cr_expect_eq(t::status_of(r), 401, "DELETE with [%s]: %s", fields, r.c_str());
        cr_expect_eq(t::header_of(r, "WWW-Authenticate").rfind("Bearer", 0), 0u, "%s", r.c_str());
        cr_expect(t::is_json_error(r), "%s", r.c_str());
        r = http_fresh("PUT /files/keep.txt HTTP/1.1\r\nHost: x\r\n" + std::string(fields) +
                       "Content-Length: 7\r\n\r\nchanged");
        cr_expect_eq(t::status_of(r), 401, "PUT with [%s]: %s", fields, r.c_str());
        r = http_fresh("GET /files/keep.txt HTTP/1.1\r\nHost: x\r\n" + std::string(fields) +
                       "\r\n");
        cr_expect_eq(t::status_of(r), 401, "GET with [%s]: %s", fields, r.c_str());
        cr_expect(r.find("original") == std::string::npos, "GET leaked the file");
    }
    cr_expect_eq(t::read_file(path), "original", "the file changed without the token");

    // File port: DEL, sized PUT, PUT until EOF, each before any AUTH and after a wrong one.
    for (int wrong_auth = 0; wrong_auth < 2; ++wrong_auth) {
        int fd = connect_fresh(g_srv.files_port);
        if (wrong_auth) {
            cr_expect_eq(cmd(fd, "AUTH nope"), "ERR 401 bad token");
            cr_expect_eq(cmd(fd, "AUTH s3cret-and-more"), "ERR 401 bad token");
        }
        std::string a = cmd(fd, "DEL keep.txt");
        cr_expect(a.rfind("ERR 401", 0) == 0, "DEL: %s", a.c_str());
        a = cmd(fd, "PUT keep.txt 7");
        cr_expect(a.rfind("ERR 401", 0) == 0, "sized PUT: %s", a.c_str());
        close(fd);
        fd = connect_fresh(g_srv.files_port);
        cr_assert(t::send_all(fd, "PUT keep.txt\nchanged"));
        shutdown(fd, SHUT_WR);
        a = t::read_line(fd);
        cr_expect(a.rfind("ERR 401", 0) == 0, "PUT until EOF: %s", a.c_str());
        close(fd);
    }
    cr_expect_eq(t::read_file(path), "original", "the file changed without the token");
    auto names = t::store_listing(g_srv.data_dir);
    cr_expect_eq(t::joined(names), "keep.txt", "store: %s", t::joined(names).c_str());
    // And with the token both ports still work on it.
    int fd = files_conn();
    cr_expect_eq(cmd(fd, "AUTH s3cret"), "OK");
    cr_expect_eq(cmd(fd, "DEL keep.txt"), "OK");
    close(fd);
    cr_expect(t::store_listing(g_srv.data_dir).empty());
}

// ---- symlinks ----

// A symlink to a directory planted in the store is not a file: DELETE answers 404 (as for any
// entry that is not a regular file), the link stays, and nothing behind it is touched.
Test(audit, delete_of_a_directory_symlink_is_404_and_touches_nothing) {
    std::string parent = t::boot();
    std::string outside = parent + "/outside";
    cr_assert_eq(mkdir(outside.c_str(), 0755), 0);
    cr_assert(t::write_file(outside + "/secret.txt", "SECRET"));
    std::string link = g_srv.data_dir + "/dirlink";
    cr_assert_eq(symlink(outside.c_str(), link.c_str()), 0);

    std::string r = t::http(g_srv.http_port, "DELETE /files/dirlink HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_expect_eq(t::status_of(r), 404, "%s", r.c_str());
    cr_expect(t::is_json_error(r), "%s", r.c_str());
    int fd = files_conn();
    std::string a = cmd(fd, "DEL dirlink");
    close(fd);
    cr_expect(a.rfind("ERR 404", 0) == 0, "file port DEL dirlink: %s", a.c_str());
    struct stat st;
    cr_expect_eq(lstat(link.c_str(), &st), 0, "the link was removed");
    cr_expect(S_ISLNK(st.st_mode));
    cr_expect_eq(t::read_file(outside + "/secret.txt"), "SECRET");
}

// ---- metrics that move ----

// Every counter moves by exactly what this test did between two scrapes.
Test(audit, metrics_move_by_exactly_the_traffic_sent) {
    t::boot();
    int m = t::connect_port(g_srv.http_port);
    cr_assert(m >= 0);
    std::string scrape = get("/metrics");
    cr_assert(t::send_all(m, scrape));
    std::string r0 = t::read_response(m);
    std::string m0 = t::body_of(r0);
    std::size_t client_sent = 0, client_read = r0.size();  // r0 is counted after it is built

    auto count = [&](const std::string& req, const std::string& resp) {
        client_sent += req.size();
        client_read += resp.size();
    };
    const std::string a(1000, 'a'), b(500, 'b');
    std::string req = "PUT /files/a.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + a;
    std::string resp = t::http(g_srv.http_port, req);
    cr_assert_eq(t::status_of(resp), 201);
    count(req, resp);
    req = get("/files/a.bin");
    resp = t::http(g_srv.http_port, req);
    cr_assert_eq(t::body_of(resp), a);
    count(req, resp);
    req = get("/files/none.bin");
    resp = t::http(g_srv.http_port, req);
    cr_assert_eq(t::status_of(resp), 404);
    count(req, resp);
    int fd = files_conn();
    req = "PUT b.bin 500\n" + b;
    cr_assert(t::send_all(fd, req));
    std::string line = t::read_line(fd) + "\n";
    cr_assert_eq(line, "OK 500 " + t::sha256_hex(b) + "\n");
    count(req, line);
    req = "QUIT\n";
    cr_assert_eq(cmd(fd, "QUIT"), "OK bye");
    count(req, "OK bye\n");
    close(fd);

    cr_assert(t::send_all(m, scrape));
    std::string m1 = t::body_of(t::read_response(m));
    client_sent += scrape.size();  // the second scrape's request is read before it is answered
    close(m);

    auto delta = [&](const std::string& series) { return metric(m1, series) - metric(m0, series); };
    cr_expect_eq(delta("duet_uploads_total{result=\"stored\"}"), 2);
    cr_expect_eq(delta("duet_uploads_total{result=\"failed\"}"), 0);
    cr_expect_eq(delta("duet_upload_bytes_total"), 1500);
    cr_expect_eq(delta("duet_downloads_total"), 1);
    cr_expect_eq(delta("duet_download_bytes_total"), 1000);
    cr_expect_eq(delta("duet_stored_files"), 2);
    cr_expect_eq(delta("duet_stored_bytes"), 1500);
    cr_expect_eq(delta("duet_http_requests_total{code=\"201\"}"), 1);
    cr_expect_eq(delta("duet_http_requests_total{code=\"404\"}"), 1);
    // The first scrape is counted once it is sent (after its body was built), and the GET.
    cr_expect_eq(delta("duet_http_requests_total{code=\"200\"}"), 2);
    cr_expect_eq(delta("duet_file_commands_total"), 2);
    cr_expect_eq(delta("duet_file_sessions_total"), 1);
    cr_expect_eq(delta("duet_received_bytes_total"), double(client_sent));
    cr_expect_eq(delta("duet_sent_bytes_total"), double(client_read));
}

// ---- limits ----

// --max-upload N is exact on both ports: N bytes are stored, N + 1 are refused before any body
// byte is sent.
Test(audit, max_upload_boundary_is_exact_on_both_ports) {
    t::boot({"--max-upload", "1000"});
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0);
    cr_assert(
        t::send_all(fd, "PUT /files/over.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
    std::string r = t::read_response(fd, false, 3000);
    close(fd);
    cr_expect_eq(t::status_of(r), 413, "CL 1001 with --max-upload 1000: %s", r.c_str());
    r = t::http(g_srv.http_port,
                "PUT /files/at.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                    std::string(1000, 'a'));
    cr_expect_eq(t::status_of(r), 201, "%s", r.c_str());

    fd = files_conn();
    std::string a = cmd(fd, "PUT fover.bin 1001");
    close(fd);
    cr_expect(a.rfind("ERR 413", 0) == 0, "file port PUT of 1001: %s", a.c_str());
    fd = files_conn();
    cr_assert(t::send_all(fd, "PUT fat.bin 1000\n" + std::string(1000, 'b')));
    a = t::read_line(fd);
    close(fd);
    cr_expect(a.rfind("OK 1000 ", 0) == 0, "file port PUT of 1000: %s", a.c_str());
    cr_expect_eq(t::joined(t::store_listing(g_srv.data_dir)), "at.bin fat.bin");
}
