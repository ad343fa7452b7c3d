// Black-box (README "Uploads never hold the loop", "Stop and reload"): uploads whose bytes are in
// their pipes (written and hashed on helpers) cross reloads whole. Six uploads on every kind of
// door are sent a piece at a time, with a reload after each piece, then finished in the last
// image: every answer carries the right digest, and every stored file is the bytes sent, nothing
// lost and nothing doubled.
#include <criterion/criterion.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "helper.hpp"
#include "resumable_helper.hpp"

namespace {

t::Duet& g_srv = t::served;

constexpr int kReloads = 20;
constexpr std::size_t kSize = 20 * 256 * 1024 + 4321;  // 20 pieces, each past a pipe buffer

std::string line_of(int fd) {
    std::string l = t::read_line(fd, 20000);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    return l;
}

struct Upload {
    std::string name;
    std::string bytes;
    int fd = -1;
    enum Kind { HttpLength, HttpChunked, Ietf, PortSized, PortUnsized, PortResume } kind;
    std::size_t from = 0;  // where the pieces start (a resumed upload's bytes before are stored)
};

// The piece of `u` sent before reload `g` (1..kReloads), and the rest after the last one.
std::string piece(const Upload& u, int g) {
    std::size_t n = u.bytes.size() - u.from;
    std::size_t at = u.from + n * std::size_t(g - 1) / (kReloads + 1);
    std::size_t to = u.from + n * std::size_t(g) / (kReloads + 1);
    return u.bytes.substr(at, to - at);
}

std::string rest(const Upload& u) {
    std::size_t n = u.bytes.size() - u.from;
    return u.bytes.substr(u.from + n * kReloads / (kReloads + 1));
}

void send_piece(Upload& u, const std::string& p) {
    cr_assert(t::send_all(u.fd, u.kind == Upload::HttpChunked ? rt::chunk(p) : p), "%s",
              u.name.c_str());
}

}  // namespace

TestSuite(reload_uploads, .fini = t::teardown, .timeout = 120);

Test(reload_uploads, six_uploads_on_every_door_cross_twenty_reloads_whole) {
    t::boot();
    std::vector<Upload> ups;
    const char* names[] = {"h-length.bin", "h-chunked.bin", "h-ietf.bin",
                           "p-sized.bin",  "p-unsized.bin", "p-resume.bin"};
    for (int i = 0; i < 6; ++i) {
        Upload u;
        u.name = names[i];
        u.kind = Upload::Kind(i);
        u.bytes = t::random_bytes(kSize, 100 + unsigned(i));
        ups.push_back(std::move(u));
    }
    const std::string size = std::to_string(kSize);
    // A partial for RESUME: a sized PUT cut after its first 300,000 bytes.
    {
        int fd = t::connect_port(g_srv.files_port);
        cr_assert(
            t::send_all(fd, "PUT p-resume.bin " + size + "\n" + ups[5].bytes.substr(0, 300000)));
        shutdown(fd, SHUT_WR);
        cr_assert_eq(line_of(fd),
                     "ERR 400 short upload: got 300000 of " + size + " bytes, partial kept");
        close(fd);
    }
    for (Upload& u : ups) {
        bool http = u.kind <= Upload::Ietf;
        u.fd = t::connect_port(http ? g_srv.http_port : g_srv.files_port);
        cr_assert(u.fd >= 0);
        std::string head;
        switch (u.kind) {
            case Upload::HttpLength:
                head = rt::put_head(u.name, kSize);
                break;
            case Upload::HttpChunked:
                head = rt::chunked_put_head(u.name);
                break;
            case Upload::Ietf:
                head = rt::ietf_creation_head(u.name, kSize);
                break;
            case Upload::PortSized:
                head = "PUT " + u.name + " " + size + "\n";
                break;
            case Upload::PortUnsized:
                head = "PUT " + u.name + "\n";
                break;
            case Upload::PortResume:
                head = "RESUME " + u.name + " " + size + "\n";
                break;
        }
        cr_assert(t::send_all(u.fd, head));
        if (u.kind == Upload::PortResume) {
            cr_assert_eq(line_of(u.fd), "OK 300000");
            u.from = 300000;
        }
    }
    for (int g = 1; g <= kReloads; ++g) {
        for (Upload& u : ups) send_piece(u, piece(u, g));
        cr_assert(t::reload_and_wait(g_srv), "reload %d: %s", g, g_srv.err_log.c_str());
    }
    cr_assert_eq(g_srv.generation, kReloads);
    for (Upload& u : ups) {
        send_piece(u, rest(u));
        if (u.kind == Upload::HttpChunked) cr_assert(t::send_all(u.fd, "0\r\n\r\n"));
        if (u.kind == Upload::PortUnsized) shutdown(u.fd, SHUT_WR);
    }
    for (Upload& u : ups) {
        std::string hex = t::sha256_hex(u.bytes);
        if (u.kind <= Upload::Ietf) {
            std::string r = rt::final_response(u.fd);
            cr_expect_eq(t::status_of(r), 201, "%s: %.300s", u.name.c_str(), r.c_str());
            if (u.kind != Upload::Ietf)
                cr_expect(r.find(hex) != std::string::npos, "%s: %.300s", u.name.c_str(),
                          r.c_str());
        } else {
            cr_expect_eq(line_of(u.fd), "OK " + size + " " + hex, "%s", u.name.c_str());
        }
        close(u.fd);
        cr_expect(t::read_file(g_srv.data_dir + "/" + u.name) == u.bytes, "%s differs",
                  u.name.c_str());
    }
    cr_assert_eq(t::stop(g_srv), 0);
}
