#pragma once
// With DUET_TRACE_RELOAD set, one stderr line per step of a reload ("duet: trace SECONDS STEP",
// the monotonic clock, which runs on across the execve), so that a reload's time can be taken
// apart step by step (README "Stop and reload"). Without it, one branch.
namespace duet {

void trace_reload(const char* step);

}  // namespace duet
