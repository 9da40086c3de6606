#pragma once

// What one live-feed connection owes its client, without any I/O: its own messages (hello, acks,
// errors, replayed history), its cursor into the hub's log, its subscription, and the replays
// that bring each subscribed job from a step in the store up to the live stream with no gap and
// no duplicate. The WebSocket session drives it (sans-I/O, as the scheduler is): it hands over
// what the client sent, does the store reads the client asks for, passes their answers back and
// writes the frames the client encodes. Event-loop thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/job_events.hpp"
#include "http/feed_hub.hpp"
#include "http/subscription.hpp"
#include "store/job_history.hpp"
#include "support/result.hpp"

namespace vapor::runtime {
class Scheduler;
}

namespace vapor::http {

/// A page of a job's points that a replay needs read (`JobHistory::load_points`).
struct FeedPageRead {
  core::JobId job_id = 0;
  std::uint64_t after_step = 0;
  std::size_t limit = 0;
  std::uint64_t generation = 0;  ///< the subscription that asked; a later one drops the answer
};

/// A job's stored state changes that a replay needs read (`JobHistory::load_transitions`).
struct FeedStatesRead {
  core::JobId job_id = 0;
  std::size_t known = 0;  ///< how many of the read's last changes reach the client otherwise
  std::uint64_t generation = 0;
};

/// The body of a feed `{"type":"error","message":...}` message (for a bad client message or a
/// failed replay read).
[[nodiscard]] std::string feed_error_body(const std::string& message);

class FeedClient {
 public:
  struct Options {
    std::uint64_t send_queue_bytes = 4 * 1024 * 1024;  ///< websocket.send_queue_bytes
    std::size_t replay_page = 1000;                    ///< points per history read
    std::size_t batch_bytes = 256 * 1024;              ///< a batch of frames grows to about this
  };

  FeedClient(const FeedHub& hub, const runtime::Scheduler& scheduler, Options options);

  /// From now on the client takes what the hub publishes.
  void start() { cursor_ = hub_.end(); }

  /// Queues a message of its own (a FeedMessage body); they go out before the hub's log.
  void send_own(std::string body);

  /// Applies a subscribe: queues the `subscribed` ack and sets up a replay for each job that
  /// has a starting step. Returns the state-change reads those replays need first.
  [[nodiscard]] std::vector<FeedStatesRead> subscribe(const Subscription& subscription);
  /// The answer to a FeedStatesRead (dropped if a newer subscribe came since).
  void on_stored_states(const FeedStatesRead& read,
                        Result<std::vector<store::StoredTransition>> stored);

  /// The next page of history to read, when the client has room for it and no read is pending.
  [[nodiscard]] std::optional<FeedPageRead> next_page();
  /// The answer to a FeedPageRead: its points are queued (state changes in step order among
  /// them); a short page means the job has reached the live stream.
  void on_page(const FeedPageRead& read, Result<std::vector<store::StoredPoint>> page);

  /// Encodes the next batch of frames (own messages first, then the hub's log from the cursor)
  /// into `out`, replacing its content; false when nothing is due.
  bool fill_batch(std::string& out);

  /// True once more than send_queue_bytes wait for the client (one message alone never counts):
  /// the session then closes it with 1008. Before deciding, it copies out the log messages the
  /// client is owed so that a client following a few jobs never pins the hub's whole log.
  [[nodiscard]] bool over_send_queue();

  /// Stops taking anything: what was queued is dropped.
  void close();

  /// The first hub message the client still needs (the hub keeps the log from there).
  [[nodiscard]] std::uint64_t cursor() const;
  [[nodiscard]] bool replaying() const { return !replaying_.empty(); }

 private:
  struct HeldState {
    std::uint64_t step = 0;  ///< the job's last step before the change
    std::string body;
    std::uint64_t index = 0;  ///< its place in the hub's log (read from the store: 0)
    bool stored = false;      ///< read from the store (it happened before the subscribe)
  };
  struct Replay {
    std::uint64_t after_step = 0;        ///< last step sent
    std::vector<HeldState> held_states;  ///< in the order they happened
    std::uint64_t harvest_from = 0;      ///< log index from which its state changes are taken
    bool history_states_read = false;    ///< its stored state changes are in held_states
  };

  [[nodiscard]] bool wants(core::JobId id) const { return all_jobs_ || subscribed_.contains(id); }
  [[nodiscard]] std::uint64_t backlog_bytes() const;
  void harvest_states();
  void go_live(std::map<core::JobId, Replay>::iterator replay, std::uint64_t log_end);
  bool due(std::uint64_t index, const FeedMessage& message);

  const FeedHub& hub_;
  const runtime::Scheduler& scheduler_;
  Options options_;
  std::deque<std::string> own_;  ///< bodies of this client's own messages, oldest first
  std::uint64_t own_bytes_ = 0;
  std::uint64_t cursor_ = 0;  ///< next index in the hub's log
  std::uint64_t next_seq_ = 0;
  bool closed_ = false;
  bool all_jobs_ = true;
  std::set<core::JobId> subscribed_;
  std::map<core::JobId, Replay> replaying_;
  std::map<core::JobId, std::uint64_t> live_from_;  ///< log index where a replayed job went live
  std::uint64_t harvested_to_ = 0;  ///< log index up to which replays took their state changes
  std::optional<std::uint64_t> page_log_end_;  ///< while a page is read: the log's end then
  std::uint64_t generation_ = 0;               ///< reads of an earlier subscription are dropped
};

}  // namespace vapor::http
