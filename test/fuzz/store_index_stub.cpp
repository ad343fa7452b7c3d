// The fuzz targets link the store for name validation but run no server: the store has no index
// (its index_ stays null), so these are never called. They stand in for store_index.cpp, which
// would pull in the whole server (its Server&, helpers, inotify).
#include <cstdlib>

#include "duet/store_index.hpp"

namespace duet {
int StoreIndex::digest_for(std::string_view, const struct stat&, Digest&) {
    std::abort();
}
void StoreIndex::need(std::string_view, const struct stat&) {
    std::abort();
}
void StoreIndex::published(std::string_view, const struct stat&, const Digest&) {
    std::abort();
}
void StoreIndex::removed(std::string_view) {
    std::abort();
}
void StoreIndex::sync_dir_later() {
    std::abort();
}
}  // namespace duet
