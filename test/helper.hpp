#pragma once
// Shared by the black-box tests: start the real binary on port 0, read its ready line, talk to it
// over sockets, and wait for events (lines on stderr, process exit) instead of sleeping.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace t {

struct Duet {
    pid_t pid = -1;
    int err_fd = -1;         // read end of the server's stderr
    std::string err_log;     // everything read from stderr so far
    std::string ready_line;  // "duet: ready http=... files=... data=... pid=N generation=G"
    int http_port = 0;
    int files_port = 0;
    std::string data_dir;
    int generation = -1;
};

// One server per test (Criterion runs each test in a process of its own): the one boot() starts.
extern Duet served;
// Starts `served` with `args` on a fresh store under a new temporary directory, asserts that it
// became ready, and returns that directory (the store is DIR/data).
std::string boot(std::vector<std::string> args = {});
// For a suite's .fini: kills `served` by PID and removes every directory boot() made, so nothing
// is left behind even when an assertion failed halfway.
void teardown();
// Adds a directory for teardown() to remove.
void remove_at_teardown(const std::string& dir);

// The binary under test: $DUET_BIN, else build/duet-san (ASan+UBSan build).
std::string duet_binary();
// For tests that time the loop: $DUET_BIN, else the optimised build/duet (the sanitizer build
// would measure ASan, not the loop; everything else about it is the same code).
std::string timing_binary();
// As bench/ does: the server on CPU 0, the calling process (and threads it starts later) on
// CPU 1, so a probe measures the server's loop, not two processes taking turns. No-op on 1 CPU.
void pin_apart(pid_t server);
// A fresh directory under /tmp.
std::string make_tmpdir();
// In /dev/shm (else /tmp): for stores of thousands of files, whose creation on a disk that
// many tests have just emptied costs seconds of inode search (ext4's recently_deleted).
std::string make_memory_tmpdir();

// Starts the server with `args` plus --http/--files on 127.0.0.1:0 and --data (a fresh dir
// unless `data_dir` is given), unless args already name them. `env` entries are "K=V".
// Waits up to 10 s for the ready line. Returns false (and the stderr text in d.err_log) if none.
bool start(Duet& d, std::vector<std::string> args = {}, std::string data_dir = "",
           std::vector<std::string> env = {}, std::string binary = "");
// Waits until stderr has a line containing `needle` (searching all output so far); false on
// timeout.
bool wait_log(Duet& d, const std::string& needle, int timeout_ms = 10000);
// Parses the newest ready line in err_log into ports/generation; true if one was found after
// `from`.
bool parse_ready(Duet& d, std::size_t from = 0);
// Waits for a ready line after `from` in err_log (a reload's new image); false on timeout.
bool wait_ready_after(Duet& d, std::size_t from, int timeout_ms = 15000);
// Sends SIGHUP and waits for the next image's ready line; false when none came.
bool reload_and_wait(Duet& d, int timeout_ms = 15000);
// Sends `sig` and waits for exit; returns the exit status (128+signal when killed), or -1.
int stop(Duet& d, int sig = 15, int timeout_ms = 15000);
// Waits for exit without signalling; -1 on timeout.
int wait_exit(Duet& d, int timeout_ms);
std::int64_t now_ms();

int connect_port(int port);  // blocking socket with 10 s send/receive timeouts; -1 on failure
// A slow reader (20 s timeouts): 1000-byte segments and an `rcvbuf`-byte receive window, so that
// the server's socket buffer fills after a few KiB and what it sends waits for the client.
int connect_slow_reader(int port, int rcvbuf);
bool send_all(int fd, const std::string& data);
// Reads until the peer closes (or timeout). Returns what arrived.
std::string read_all(int fd, int timeout_ms = 10000);
// Reads one HTTP response (head + Content-Length body; none for HEAD/1xx/204/304 when `head_only`).
std::string read_response(int fd, bool head_only = false, int timeout_ms = 10000);
// Reads one LF-terminated line (without LF), or "" on close/timeout.
std::string read_line(int fd, int timeout_ms = 10000);
// Reads exactly n bytes (fewer on close/timeout).
std::string read_n(int fd, std::size_t n, int timeout_ms = 10000);
// True when the peer has closed: a read returns 0 (or reset) within the timeout.
bool peer_closed(int fd, int timeout_ms = 5000);

// Status code of a raw HTTP response text, or -1.
int status_of(const std::string& response);
// Value of a header (case-insensitive) in a raw response, or "".
std::string header_of(const std::string& response, const std::string& name);
// Body after the blank line.
std::string body_of(const std::string& response);

// "METHOD PATH HTTP/1.1" with Host: x, `fields` (each ending in CRLF), then `body`.
std::string request(const std::string& method, const std::string& path,
                    const std::string& fields = "", const std::string& body = "");
// A file-port connection to `d` (asserts it opened), and one command's first answer line on it.
int files_conn(const Duet& d);
std::string files_cmd(int fd, const std::string& line);

// One request on a fresh connection: returns the full response text.
std::string http(int port, const std::string& raw_request, bool head_only = false);

// Runs a shell command, returns its stdout; `status` gets the exit status.
std::string sh(const std::string& cmd, int* status = nullptr);
std::string read_file(const std::string& path);
bool write_file(const std::string& path, const std::string& data);
std::string random_bytes(std::size_t n, unsigned seed = 1);

// ---- Checks shared by every test (helper_check.cpp): one strict version of each ----

// Every entry of the store directory, sorted, dot-files included, except duet's own bookkeeping
// names (kBookkeeping below): a leaked temporary file (".duet-tmp-*") is listed, so a test that
// expects "nothing stored" sees it.
std::vector<std::string> store_listing(const std::string& data_dir);
// The names store_listing() leaves out: directories duet keeps its records in.
extern const std::vector<std::string> kBookkeeping;
// store_listing() joined with spaces, for messages.
std::string joined(const std::vector<std::string>& names);
// An HTTP error answer as README "HTTP API" wants it: Content-Type application/json, a body of the
// exact form
// {"error":"<non-empty sentence>"} whose length matches Content-Length, containing `text` if given.
bool is_json_error(const std::string& response, const std::string& text = "");
// SHA-256 of `data` as lower-case hex (the library's implementation, tested on NIST vectors).
std::string sha256_hex(const std::string& data);
// SHA-256 of `data` as standard base64 (for Repr-Digest), encoded here independently of duet.
std::string sha256_b64(const std::string& data);
// The value of the Prometheus sample `series` (e.g. `duet_uploads_total{result="ok"}`) in a
// /metrics body, or -1 when absent.
double metric_value(const std::string& metrics_body, const std::string& series);

}  // namespace t
