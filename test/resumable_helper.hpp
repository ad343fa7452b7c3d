#pragma once
// Shared by the resumable-upload black-box tests (test_e2e_resumable*.cpp): requests, the final
// answer after interim 104s, IETF/tus field sets, nc, restart, metrics.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "duet/core/base64.hpp"
#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace rt {

inline t::Duet& g_srv = t::served;
inline std::string g_dir;  // t::boot's directory: the store is g_dir + "/data"

inline void boot(std::vector<std::string> args = {}) {
    g_dir = t::boot(std::move(args));
}

inline std::string num(std::uint64_t v) {
    return std::to_string(v);
}

inline std::string hex_sha256(const std::string& data) {
    return duet::to_hex(duet::Sha256::of(data));
}

inline std::string b64(const std::string& s) {
    return duet::base64_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

inline std::string request(const std::string& method, const std::string& path,
                           const std::string& fields = "", const std::string& body = "") {
    std::string r = method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + fields;
    if (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH")
        r += "Content-Length: " + num(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

// The final answer on `fd`, collecting the interim (1xx) heads before it.
inline std::string final_response(int fd, std::vector<std::string>* interims = nullptr,
                                  bool head_only = false) {
    for (int i = 0; i < 1000; ++i) {
        std::string r = t::read_response(fd, head_only);
        int s = t::status_of(r);
        if (s < 100 || s >= 200) return r;
        if (interims) interims->push_back(r);
    }
    return "";
}

// One request on a fresh connection; its final answer (interim 104s skipped).
inline std::string http(const std::string& raw, bool head_only = false) {
    int fd = t::connect_port(g_srv.http_port);
    if (fd < 0) return "";
    t::send_all(fd, raw);
    std::string r = final_response(fd, nullptr, head_only);
    close(fd);
    return r;
}

inline const std::string kIetf = "Upload-Draft-Interop-Version: 6\r\n";
inline const std::string kTus = "Tus-Resumable: 1.0.0\r\n";

// Heads of uploads whose bodies the tests send a piece at a time.
inline std::string put_head(const std::string& name, std::uint64_t size) {
    return "PUT /files/" + name + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + num(size) +
           "\r\n\r\n";
}
inline std::string chunked_put_head(const std::string& name) {
    return "PUT /files/" + name + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
}
// An IETF creation of the whole upload (Upload-Complete: ?1), by POST or PUT.
inline std::string ietf_creation_head(const std::string& name, std::uint64_t size,
                                      const std::string& method = "POST") {
    return method + " /files/" + name + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + num(size) +
           "\r\nUpload-Complete: ?1\r\n" + kIetf + "\r\n";
}
// One chunk of a chunked body.
inline std::string chunk(const std::string& bytes) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    return size + bytes + "\r\n";
}

// Sends an IETF creation with only the first `sent` bytes of `data`, half-closes, and returns
// the upload's path from the 104.
inline std::string ietf_cut_creation(const std::string& name, const std::string& data,
                                     std::size_t sent) {
    int fd = t::connect_port(g_srv.http_port);
    cr_assert(fd >= 0);
    cr_assert(t::send_all(fd, ietf_creation_head(name, data.size(), "PUT") + data.substr(0, sent)));
    std::string first = t::read_response(fd);
    cr_assert_eq(t::status_of(first), 104, "%s", first.c_str());
    cr_expect_eq(t::header_of(first, "Upload-Draft-Interop-Version"), "6");
    std::string loc = t::header_of(first, "Location");
    cr_assert(loc.rfind("/uploads/", 0) == 0, "%s", first.c_str());
    shutdown(fd, SHUT_WR);
    t::peer_closed(fd, 5000);
    close(fd);
    return loc;
}

// HEAD until the offset reaches `want` (the server may not have seen the cut yet).
inline std::string head_until(const std::string& loc, std::uint64_t want) {
    std::string r;
    for (int i = 0; i < 100; ++i) {
        r = http(request("HEAD", loc), true);
        if (t::header_of(r, "Upload-Offset") == num(want)) return r;
        usleep(50000);  // polling a server-side event that has no client-visible signal
    }
    return r;
}

inline std::string files_cmd(int fd, const std::string& line) {
    t::send_all(fd, line + "\n");
    return t::read_line(fd);
}

inline std::string nc(const std::string& input_cmd) {
    return t::sh("{ " + input_cmd + "; } | nc -N 127.0.0.1 " + num(g_srv.files_port));
}

// Stops the server and starts a new one on the same store.
inline void restart(std::vector<std::string> args = {}) {
    cr_assert_eq(t::stop(g_srv, SIGTERM), 0);
    if (g_srv.err_fd >= 0) close(g_srv.err_fd);
    g_srv = t::Duet{};  // a fresh ready line to read
    cr_assert(t::start(g_srv, std::move(args), g_dir + "/data"), "%s", g_srv.err_log.c_str());
}

inline std::string metric(const std::string& name) {
    std::string body = t::body_of(http(request("GET", "/metrics")));
    std::size_t at = body.find("\n" + name + " ");
    if (at == std::string::npos) return "";
    at += name.size() + 2;
    return body.substr(at, body.find('\n', at) - at);
}

}  // namespace rt
