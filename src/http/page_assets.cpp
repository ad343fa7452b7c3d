// The page's assets (README "The page"), embedded in the binary: each file of src/http/page as
// it is and gzipped by the Makefile (build/page/NAME.gz), pulled in by the assembler's .incbin so
// that no generated source is needed. Their ETags are SHA-256 prefixes of the bytes, computed
// once on first use.
#include <array>
#include <mutex>

#include "duet/core/sha256.hpp"
#include "duet/http/page.hpp"

// One asset: symbols NAME_raw/NAME_raw_end and NAME_gz/NAME_gz_end.
#define DUET_EMBED(sym, file)                                                                   \
    asm(".section .rodata\n.balign 16\n.global duet_asset_" #sym "_raw\nduet_asset_" #sym       \
        "_raw:\n.incbin \"src/http/page/" file "\"\n.global duet_asset_" #sym                   \
        "_raw_end\nduet_asset_" #sym "_raw_end:\n.balign 16\n.global duet_asset_" #sym          \
        "_gz\nduet_asset_" #sym "_gz:\n.incbin \"build/page/" file                              \
        ".gz\"\n.global duet_asset_" #sym "_gz_end\nduet_asset_" #sym "_gz_end:\n.previous\n"); \
    extern "C" const char duet_asset_##sym##_raw[], duet_asset_##sym##_raw_end[],               \
        duet_asset_##sym##_gz[], duet_asset_##sym##_gz_end[];

DUET_EMBED(app_js, "app.js")
DUET_EMBED(app_css, "app.css")
DUET_EMBED(hash_worker_js, "hash_worker.js")

namespace duet {
namespace {

#define DUET_VIEW(sym, part)                    \
    std::string_view(duet_asset_##sym##_##part, \
                     std::size_t(duet_asset_##sym##_##part##_end - duet_asset_##sym##_##part))

std::array<Asset, 3> make_assets() {
    std::array<Asset, 3> a{{
        {"app.css", "text/css; charset=utf-8", DUET_VIEW(app_css, raw), DUET_VIEW(app_css, gz), {}},
        {"app.js",
         "text/javascript; charset=utf-8",
         DUET_VIEW(app_js, raw),
         DUET_VIEW(app_js, gz),
         {}},
        {"hash_worker.js",
         "text/javascript; charset=utf-8",
         DUET_VIEW(hash_worker_js, raw),
         DUET_VIEW(hash_worker_js, gz),
         {}},
    }};
    // "\"" + 16 hex digits + "\"", kept for the life of the process.
    static char tags[3][19];
    static const char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < a.size(); ++i) {
        Digest d = Sha256::of(a[i].raw);
        char* t = tags[i];
        t[0] = '"';
        for (int j = 0; j < 8; ++j) {
            t[1 + 2 * j] = kHex[d[std::size_t(j)] >> 4];
            t[2 + 2 * j] = kHex[d[std::size_t(j)] & 15];
        }
        t[17] = '"';
        a[i].etag = std::string_view(t, 18);
    }
    return a;
}

const std::array<Asset, 3>& table() {
    static const std::array<Asset, 3> a = make_assets();
    return a;
}

}  // namespace

const Asset* find_asset(std::string_view name) {
    for (const Asset& a : table())
        if (a.name == name) return &a;
    return nullptr;
}

std::span<const Asset> assets() {
    return table();
}

}  // namespace duet
