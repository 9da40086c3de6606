#include "http/feed_client.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include "http/json_codec.hpp"
#include "runtime/scheduler.hpp"

namespace vapor::http {

std::string feed_error_body(const std::string& message) {
  boost::json::object error;
  error["type"] = "error";
  error["message"] = message;
  return feed_body(boost::json::serialize(error));
}

FeedClient::FeedClient(const FeedHub& hub, const runtime::Scheduler& scheduler, Options options)
    : hub_(hub), scheduler_(scheduler), options_(options) {}

void FeedClient::send_own(std::string body) {
  if (closed_) return;
  own_bytes_ += body.size();
  own_.push_back(std::move(body));
}

void FeedClient::close() {
  closed_ = true;
  own_.clear();  // what has not been started is dropped
  own_bytes_ = 0;
}

std::uint64_t FeedClient::cursor() const {
  // While a page is being read, the log is kept from where the read began: what the cursor
  // skips for the replaying job meanwhile is not in the page, and goes out when it goes live.
  return page_log_end_ ? std::min(cursor_, *page_log_end_) : cursor_;
}

std::uint64_t FeedClient::backlog_bytes() const { return own_bytes_ + hub_.bytes_from(cursor_); }

std::vector<FeedStatesRead> FeedClient::subscribe(const Subscription& subscription) {
  harvest_states();  // the replays in progress take what the log holds for them so far
  all_jobs_ = subscription.job_ids.empty();
  subscribed_ = std::set<core::JobId>(subscription.job_ids.begin(), subscription.job_ids.end());

  // Everything from here on belongs to the new subscription; the ack marks the boundary.
  boost::json::object ack;
  ack["type"] = "subscribed";
  if (all_jobs_) {
    ack["job_ids"] = nullptr;
  } else {
    ack["job_ids"] = boost::json::value_from(subscription.job_ids);
  }
  if (subscription.since_step) {
    ack["since_step"] = *subscription.since_step;
  } else {
    ack["since_step"] = nullptr;
  }
  if (!subscription.since.empty()) {
    boost::json::object since;
    for (const auto& [id, step] : subscription.since) since[std::to_string(id)] = step;
    ack["since"] = std::move(since);
  }
  send_own(feed_body(boost::json::serialize(ack)));

  auto previous = std::move(replaying_);
  replaying_.clear();
  ++generation_;  // a read still pending belongs to the old subscription
  if (subscription.since_step || !subscription.since.empty()) {
    for (const auto& [id, job] : scheduler_.jobs()) {
      const auto after = subscription.replay_after(id);
      if (after && wants(id)) replaying_[id] = Replay{*after, {}, cursor_};
    }
  }
  // State changes held by an interrupted replay still reach a job that stays subscribed: in
  // step order within its new replay, or now if it goes straight to live.
  for (auto& [id, replay] : previous) {
    if (!wants(id)) continue;
    if (auto again = replaying_.find(id); again != replaying_.end()) {
      // Those read from the store are read again for the new replay's first step.
      for (auto& held : replay.held_states) {
        if (!held.stored) again->second.held_states.push_back(std::move(held));
      }
      again->second.harvest_from = harvested_to_;  // harvested up to here already
    } else {
      for (auto& held : replay.held_states) send_own(std::move(held.body));
    }
  }
  harvested_to_ = cursor_;

  // Each replay reads the job's stored state changes first, to send them in step order among
  // its points. The read sees every change recorded before it was asked for: those the log still
  // holds from where the job's harvest starts (and those carried over from an interrupted
  // replay) reach the client from there, so the read's last `known` are dropped.
  // One pass over the log for every replay (a subscribe to all jobs may start thousands).
  std::map<core::JobId, std::size_t> in_log;
  for (auto index = std::max(cursor_, hub_.begin()); index < hub_.end(); ++index) {
    const auto& message = hub_.at(index);
    if (message.kind != FeedMessage::Kind::state) continue;
    const auto replay = replaying_.find(message.job_id);
    if (replay != replaying_.end() && index >= replay->second.harvest_from) {
      ++in_log[message.job_id];
    }
  }
  std::vector<FeedStatesRead> reads;
  reads.reserve(replaying_.size());
  for (const auto& [id, replay] : replaying_) {
    const auto logged = in_log.find(id);
    const std::size_t known =
        replay.held_states.size() + (logged == in_log.end() ? 0 : logged->second);
    reads.push_back({id, known, generation_});
  }
  return reads;
}

void FeedClient::on_stored_states(const FeedStatesRead& read,
                                  Result<std::vector<store::StoredTransition>> stored) {
  auto it = replaying_.find(read.job_id);
  if (closed_ || read.generation != generation_ || it == replaying_.end()) return;
  Replay& replay = it->second;
  replay.history_states_read = true;
  if (!stored) {
    send_own(feed_error_body("replay of job " + std::to_string(read.job_id) +
                        "'s state changes failed: " + stored.error().message));
    return;
  }
  stored->resize(stored->size() - std::min(read.known, stored->size()));
  std::vector<HeldState> earlier;
  for (const auto& transition : *stored) {
    // A change after the replay's first step; one stored before steps were kept has no place.
    if (!transition.step || *transition.step < replay.after_step) continue;
    auto message = state_message({read.job_id, transition.from, transition.to, transition.reason,
                                  transition.ts, *transition.step});
    message["replay"] = true;
    earlier.push_back({*transition.step, feed_body(boost::json::serialize(message)), 0, true});
  }
  replay.held_states.insert(replay.held_states.begin(), std::make_move_iterator(earlier.begin()),
                            std::make_move_iterator(earlier.end()));
}

void FeedClient::harvest_states() {
  if (closed_) return;
  if (!replaying_.empty()) {
    for (auto index = std::max(harvested_to_, hub_.begin()); index < hub_.end(); ++index) {
      const auto& message = hub_.at(index);
      if (message.kind != FeedMessage::Kind::state) continue;
      auto replay = replaying_.find(message.job_id);
      if (replay == replaying_.end() || index < replay->second.harvest_from) continue;
      replay->second.held_states.push_back({message.step, message.body, index, false});
    }
  }
  harvested_to_ = hub_.end();
}

std::optional<FeedPageRead> FeedClient::next_page() {
  harvest_states();
  const auto room = options_.send_queue_bytes / 2;
  if (closed_ || page_log_end_ || replaying_.empty() || backlog_bytes() >= room) return {};
  const auto& [job_id, replay] = *replaying_.begin();
  if (!replay.history_states_read) return {};  // its stored state changes come first
  // The page holds every point the log held when it was asked for, and none after.
  page_log_end_ = hub_.end();
  return FeedPageRead{job_id, replay.after_step, options_.replay_page, generation_};
}

void FeedClient::on_page(const FeedPageRead& read, Result<std::vector<store::StoredPoint>> page) {
  const std::uint64_t log_end = page_log_end_.value_or(hub_.end());
  page_log_end_.reset();
  auto it = replaying_.find(read.job_id);
  // A new subscription (or a close) since the read was asked for: the page is stale.
  if (closed_ || read.generation != generation_ || it == replaying_.end()) return;
  harvest_states();
  if (!page) {
    send_own(feed_error_body("replay of job " + std::to_string(read.job_id) + " failed: " +
                        page.error().message));
    go_live(it, log_end);  // what the replay held still goes out; from here on, live points
    return;
  }
  const auto room = options_.send_queue_bytes / 2;
  const runtime::Job* job = scheduler_.find(read.job_id);
  auto& held = it->second.held_states;
  bool filled = false;
  for (auto& point : *page) {
    if (backlog_bytes() >= room) {
      filled = true;  // continue from after_step when the client has read more
      break;
    }
    // A state change the job went through before this step comes first.
    std::size_t due_states = 0;
    while (due_states < held.size() && held[due_states].step < point.step) {
      send_own(std::move(held[due_states++].body));
    }
    held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(due_states));
    core::StepRecorded event;
    event.job_id = read.job_id;
    event.step = point.step;
    event.epoch = point.epoch;
    event.loss = point.loss;
    event.accuracy = point.accuracy;
    const auto total = job ? job->spec.total_steps() : 0;
    event.progress =
        total == 0 ? 0.0 : static_cast<double>(point.step) / static_cast<double>(total);
    event.ts = point.ts;
    event.scalars = std::move(point.scalars);
    auto message = point_message(event);
    message["replay"] = true;
    send_own(feed_body(boost::json::serialize(message)));
    it->second.after_step = point.step;
  }
  if (!filled && page->size() < options_.replay_page) go_live(it, log_end);
}

void FeedClient::go_live(std::map<core::JobId, Replay>::iterator replay, std::uint64_t log_end) {
  // The replay has read the job's history up to the log's index `log_end`: the job's messages
  // before it are in what was replayed (its state changes were harvested and follow the last
  // replayed point), those the cursor has passed since go out now in log order, and the rest go
  // out live.
  harvest_states();
  const auto job_id = replay->first;
  auto held = std::move(replay->second.held_states);
  const auto replayed_to = replay->second.after_step;
  replaying_.erase(replay);
  for (auto& state : held) {
    if (state.stored || state.index < log_end) send_own(std::move(state.body));
  }
  // What follows for this job is live: the client may stop treating it as history.
  send_own(feed_body(boost::json::serialize(boost::json::object{
      {"type", "caught_up"}, {"job_id", job_id}, {"step", replayed_to}})));
  for (auto index = std::max(log_end, hub_.begin()); index < cursor_; ++index) {
    const auto& message = hub_.at(index);
    if (message.job_id == job_id && wants(job_id)) send_own(message.body);
  }
  // Messages the cursor has yet to reach go out live from the read's end on, not before.
  live_from_[job_id] = std::max(cursor_, log_end);
}

bool FeedClient::due(std::uint64_t index, const FeedMessage& message) {
  // A job still replaying gets its points from the store (and its state changes were
  // harvested), and so does a replayed job for the log up to where it went live.
  if (!wants(message.job_id)) return false;
  if (replaying_.contains(message.job_id)) return false;
  if (auto live = live_from_.find(message.job_id); live != live_from_.end()) {
    if (index < live->second) return false;
    live_from_.erase(live);
  }
  return true;
}

bool FeedClient::over_send_queue() {
  const auto limit = options_.send_queue_bytes;
  if (closed_ || backlog_bytes() <= limit) return false;
  // The log holds every job's messages, and this client's cursor holds all of them in memory.
  // Copy out the ones it is owed and let go of the rest; then judge it by what it is owed.
  harvest_states();
  for (; cursor_ < hub_.end(); ++cursor_) {
    const auto& message = hub_.at(cursor_);
    if (!due(cursor_, message)) continue;
    own_bytes_ += message.body.size();
    own_.push_back(message.body);
  }
  return own_bytes_ > limit && own_.size() > 1;
}

bool FeedClient::fill_batch(std::string& out) {
  harvest_states();
  out.clear();
  if (closed_) return false;
  while (!own_.empty() && (out.empty() || out.size() < options_.batch_bytes)) {
    own_bytes_ -= own_.front().size();
    append_feed_frame(out, next_seq_++, own_.front());
    own_.pop_front();
  }
  while (cursor_ < hub_.end() && out.size() < options_.batch_bytes) {
    const auto index = cursor_++;
    const auto& message = hub_.at(index);
    if (due(index, message)) append_feed_frame(out, next_seq_++, message.body);
  }
  return !out.empty();
}

}  // namespace vapor::http
