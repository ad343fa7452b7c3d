#pragma once
// One session on the file port: command line → (upload bytes | download bytes) → next command.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "duet/fileport/file_proto.hpp"
#include "duet/net/conn.hpp"
#include "duet/session/publish_stage.hpp"
#include "duet/session/session.hpp"
#include "duet/store/partial_store.hpp"
#include "duet/store/store.hpp"

namespace duet {

class FileConn final : public Session {
  public:
    FileConn(SessionHost& host, int fd) : Session(host, fd, Port::Files) {}
    ~FileConn() override;
    void on_header_timeout() override;
    void on_idle_timeout() override;
    void begin_drain(bool for_reload) override;
    bool is_idle() const override;
    bool publishing() const override { return up_ && up_->stage != PublishStage::None; }
    void on_quiet() override;
    char handover_kind() const override { return authed_ ? 'a' : 'f'; }
    // A session carried over a reload keeps its AUTH.
    void set_authed() { authed_ = true; }

    // Reload hand-over (file_handover.cpp): the whole session state, in whatever state it is.
    // resume() rebuilds a connection from its record; nullptr (with r.error()) when it cannot be
    // read.
    static constexpr std::uint16_t kRecordVersion = 1;
    static Conn* resume(SessionHost& host, std::uint16_t version, RecordReader& r,
                        std::int64_t& head_left_ms);

  protected:
    void encode_state(RecordWriter& w) override;
    char record_kind() const override { return kRecordFiles; }
    std::uint16_t record_version() const override { return kRecordVersion; }
    bool process() override;
    void on_eof() override;
    bool wants_input() const override;

  private:
    bool resume_state(RecordReader& r);
    struct Incoming {  // an upload in progress
        Upload upload;
        std::string name;
        std::uint64_t left = 0;  // sized: bytes still to come
        bool sized = true;
        bool has_digest = false;
        Digest digest{};
        Precondition pre;
        // RESUME (file_resume.cpp): the bytes go to a partial upload instead of `upload`.
        PartialAppend append;
        std::uint64_t total = 0;  // the whole upload's SIZE
        PartialRef publishing;    // RESUME complete, its append ended: being published
        // Publishing with the fsyncs on helpers. A RESUME's append waits for its last checkpoint
        // first: before the publish, or before the answer to a cut (`cut_answer` + "got N of
        // SIZE bytes, partial kept").
        PublishStage stage = PublishStage::None;
        std::string cut_answer;
        bool close_after = false;  // PUT NAME ended by a half-close: close after the answer
        std::shared_ptr<DiskWait> wait;
        FileInfo info;
    };

    void run(const Command& c, std::string_view line);
    void put(const Command& c);
    // Folders (file_folders.cpp, README "Folders").
    void list(const Command& c);
    void mkdir(const Command& c);
    void del_folder(const Command& c);
    void move(const Command& c);
    void archive(const Command& c);  // GET PATH/: OK LENGTH -, then the folder's tar
    // An upload to a path ending in '/', into a folder that is a file, or onto a folder: the
    // ERR line (the caller closes, since bytes follow), else "".
    std::string folder_refusal(const Command& c);
    // The ERR answer for a sized upload of `size` bytes that can never fit (--max-upload, the
    // store's file system) or, with `whole`, does not fit now (its free space: a RESUME may have
    // most of it stored already); nullptr when it may go on.
    const char* size_refusal(std::uint64_t size, bool whole);
    void get(const Command& c);
    void stat(const Command& c);
    void del(const Command& c);
    bool feed_upload();
    void finish_upload();
    bool advance_publish();
    void fail_upload(const char* answer);
    bool wait_or_trouble(int rc);
    void reply(std::string_view line);  // queues line + "\n"
    void reply_and_close(std::string_view line);
    void log_command(std::string_view result);
    // Resumable uploads (file_resume.cpp).
    void resume(const Command& c);
    void partial_list(const Command& c);
    int write_incoming(const char* p, std::size_t n);
    void finish_resume();
    void cut_resume(std::string answer);
    bool after_last_checkpoint();
    // A sized upload stops short (half-close, stall, reset): its bytes stay as a partial.
    // Returns "got N of SIZE bytes".
    std::string keep_partial();
    std::string session_token() const;

    std::unique_ptr<Incoming> up_;
    // Only with --access-log, so an idle session stays small. The peer is taken at the first
    // command: by the time a later answer is logged the peer may have reset.
    struct AccessLog {
        std::string peer;
        std::string line;
    };
    std::unique_ptr<AccessLog> log_;
    bool authed_ = false;
    bool peer_closed_ = false;
    bool drain_ = false;
    bool reload_handover_ = false;
};

}  // namespace duet
