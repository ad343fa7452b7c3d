// The page's assets (README "The page"), embedded in the binary: each file of src/http/page as
// it is and gzipped by the Makefile (build/page/NAME.gz), pulled in by the assembler's .incbin so
// that no generated source is needed. Their ETags are SHA-256 prefixes of the bytes, computed
// once on first use.
#include <array>

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

DUET_EMBED(common_js, "common.js")
DUET_EMBED(listing_js, "listing.js")
DUET_EMBED(uploads_js, "uploads.js")
DUET_EMBED(app_js, "app.js")
DUET_EMBED(app_css, "app.css")
DUET_EMBED(hash_worker_js, "hash_worker.js")

namespace duet {
namespace {

constexpr std::size_t kAssets = 6;
constexpr std::string_view kScript = "text/javascript; charset=utf-8";

#define DUET_VIEW(sym, part)                    \
    std::string_view(duet_asset_##sym##_##part, \
                     std::size_t(duet_asset_##sym##_##part##_end - duet_asset_##sym##_##part))

std::array<Asset, kAssets> make_assets() {
    std::array<Asset, kAssets> a{{
        {"app.css", "text/css; charset=utf-8", DUET_VIEW(app_css, raw), DUET_VIEW(app_css, gz), {}},
        {"common.js", kScript, DUET_VIEW(common_js, raw), DUET_VIEW(common_js, gz), {}},
        {"listing.js", kScript, DUET_VIEW(listing_js, raw), DUET_VIEW(listing_js, gz), {}},
        {"uploads.js", kScript, DUET_VIEW(uploads_js, raw), DUET_VIEW(uploads_js, gz), {}},
        {"app.js", kScript, DUET_VIEW(app_js, raw), DUET_VIEW(app_js, gz), {}},
        {"hash_worker.js",
         kScript,
         DUET_VIEW(hash_worker_js, raw),
         DUET_VIEW(hash_worker_js, gz),
         {}},
    }};
    // "\"" + 16 hex digits + "\"", kept for the life of the process.
    static std::string tags[kAssets];
    for (std::size_t i = 0; i < a.size(); ++i) {
        tags[i] = '"' + to_hex(Sha256::of(a[i].raw)).substr(0, 16) + '"';
        a[i].etag = tags[i];
    }
    return a;
}

const std::array<Asset, kAssets>& table() {
    static const std::array<Asset, kAssets> a = make_assets();
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
