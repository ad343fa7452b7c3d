#pragma once
// Where an upload stands between its last byte and its answer, the same on both ports: the
// fsyncs and the rename run on helpers while the connection parks, and each step, when woken,
// moves the upload to the next stage (README "Disk I/O off the loop").
#include <cstdint>

namespace duet {

enum class PublishStage : std::uint8_t {
    None,                   // still receiving (or not publishing at all)
    SyncData,               // the file's data being fsynced; then the checks and the rename
    Rename,                 // the link or rename into the store, on a helper
    SyncDir,                // the store directory being fsynced; then the answer
    Checkpoint,             // a resumable append's last checkpoint; then its answer (or publish)
    CheckpointThenPublish,  // file port RESUME complete: its last checkpoint, then the publish
};

}  // namespace duet
