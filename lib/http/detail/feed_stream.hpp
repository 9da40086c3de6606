#pragma once

// The transport under a feed connection's websocket::stream. Not a public header: it pulls in
// Asio's composed write and is included by websocket_session.cpp alone.

#include <cstddef>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace vapor::http::detail {

/// A tcp_stream whose writes are whole and taken one at a time, in the order they were asked for.
///
/// The feed writes many messages per system call: a session encodes a batch of complete
/// WebSocket frames itself and hands it to write_frames(), because Beast's websocket::stream
/// writes one message per write. Beast still writes its own frames through this stream (the
/// handshake response, pongs, the close frame), and those must never land inside a batch. So
/// every write, Beast's or the session's, waits for the one before it to be written out entirely.
/// Reads pass straight through. Event-loop thread only, like the stream it wraps.
class FeedStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using Completion =
      boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

  explicit FeedStream(boost::beast::tcp_stream stream)
      : core_(std::make_shared<Core>(std::move(stream))) {}
  FeedStream(FeedStream&&) noexcept = default;
  FeedStream& operator=(FeedStream&&) noexcept = default;
  FeedStream(const FeedStream&) = delete;
  FeedStream& operator=(const FeedStream&) = delete;
  /// Closes the socket (as a tcp_stream does when it goes), so that writes still queued end at
  /// once instead of holding the connection open for a client that never reads.
  ~FeedStream() {
    if (!core_) return;
    boost::system::error_code ignored;
    core_->stream.socket().close(ignored);
  }

  [[nodiscard]] executor_type get_executor() noexcept { return core_->stream.get_executor(); }
  [[nodiscard]] boost::beast::tcp_stream& next_layer() noexcept { return core_->stream; }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return core_->stream.async_read_some(buffers, std::forward<Token>(token));
  }

  /// Beast's writes: queued behind any write in flight, then written whole (the completion
  /// reports every byte, so Beast's own write loop finishes in one round).
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [core = core_](auto handler, const ConstBufferSequence& sequence) {
          // Beast keeps its buffers alive until the handler runs, so views are enough.
          std::vector<boost::asio::const_buffer> views(boost::asio::buffer_sequence_begin(sequence),
                                                       boost::asio::buffer_sequence_end(sequence));
          enqueue(core, std::move(views), Completion(std::move(handler)));
        },
        token, buffers);
  }

  /// The session's batch of encoded frames. `frames` must stay valid until `done` runs.
  void write_frames(boost::asio::const_buffer frames, Completion done) {
    enqueue(core_, {frames}, std::move(done));
  }

 private:
  struct PendingWrite {
    std::vector<boost::asio::const_buffer> buffers;
    Completion done;
  };

  /// Shared with the writes in flight: a write Beast starts on its own (the keep-alive ping holds
  /// no reference to the session) may complete after the session and this stream are gone.
  struct Core {
    explicit Core(boost::beast::tcp_stream s) : stream(std::move(s)) {}
    boost::beast::tcp_stream stream;
    std::deque<PendingWrite> pending;
    bool writing = false;
  };

  /// What the write in flight holds. Should the io_context destroy that write unrun (at
  /// teardown), the completions waiting behind it would keep their sessions alive, and with
  /// them this stream and its Core: a cycle nothing else breaks. They are released with it.
  struct InFlight {
    explicit InFlight(std::shared_ptr<Core> c) : core(std::move(c)) {}
    InFlight(InFlight&&) noexcept = default;
    InFlight& operator=(InFlight&&) noexcept = default;
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight() {
      if (!core) return;  // ran: the handler took the Core
      const auto orphaned = std::move(core->pending);
      core->pending.clear();
    }
    std::shared_ptr<Core> core;
  };

  static void enqueue(const std::shared_ptr<Core>& core,
                      std::vector<boost::asio::const_buffer> buffers, Completion done) {
    core->pending.push_back({std::move(buffers), std::move(done)});
    if (!core->writing) write_next(core);
  }

  static void write_next(const std::shared_ptr<Core>& core) {
    core->writing = true;
    boost::asio::async_write(core->stream, core->pending.front().buffers,
                             [flight = InFlight(core)](boost::system::error_code ec,
                                                       std::size_t written) mutable {
                               const auto written_core = std::move(flight.core);
                               auto done = std::move(written_core->pending.front().done);
                               written_core->pending.pop_front();
                               written_core->writing = false;
                               // The next write starts before this one's owner resumes, so a
                               // write it asks for now queues behind those already waiting.
                               if (!written_core->pending.empty()) write_next(written_core);
                               std::move(done)(ec, written);
                             });
  }

  std::shared_ptr<Core> core_;
};

// Beast's close handshake ends with a teardown of the next layer, found by argument-dependent
// lookup: a FeedStream tears down as its tcp_stream does.
inline void teardown(boost::beast::role_type role, FeedStream& stream,
                     boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, FeedStream& stream, TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace vapor::http::detail
