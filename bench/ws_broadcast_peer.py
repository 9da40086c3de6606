#!/usr/bin/python3
"""The WebSocket fan-out peer for bench/network_bench.sh: a python3-websockets server that feeds
every client the same stream vapord's /ws carries — a hello, then one point message per step of
JOBS simulated jobs stepping every STEP_INTERVAL — and fans each message out with
websockets.broadcast().

Like vapord, it produces the steps itself on its event loop, stamps each point with the wall
time at which the step was due (`ts`, RFC 3339 with milliseconds), and skips ahead when it falls
more than a second behind rather than replaying the backlog. Messages are padded to the byte
sizes measured on vapord's feed (--message-bytes, --hello-bytes), so both servers send the same
amount. The one thing it does not copy is vapord's per-connection `seq`: broadcast() sends one
buffer to every client, so `seq` here counts messages globally (same field, same width).

Debian package: python3-websockets (10.x). Run with the system interpreter: /usr/bin/python3.
"""

import argparse
import asyncio
import collections
import math
import sys
import time

import websockets

MAX_CATCH_UP = 1.0  # seconds; as vapord's scheduler
YIELD_EVERY_FRAMES = 2000  # frames written in a burst between yields to the event loop


def rfc3339_millis(wall_seconds):
    millis = int(wall_seconds * 1000)
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % ms


def pad_object(text, target_bytes):
    """Pads a JSON object's text with a "pad" field so that it is target_bytes long."""
    missing = target_bytes - len(text)
    overhead = len(',"pad":""')
    if missing <= overhead:
        return text
    return text[:-1] + ',"pad":"' + "x" * (missing - overhead) + '"}'


def build_hello(jobs, target_bytes):
    summaries = []
    for job_id in range(1, jobs + 1):
        summaries.append(
            '{"id":%d,"name":"bench-%d","model":"sim","state":"running","reason":null,'
            '"epoch":1,"epochs":1000,"step":0,"steps":1000000,"progress":0E0,"loss":null,'
            '"accuracy":null,"eta_seconds":null,"created_at":"%s","started_at":"%s",'
            '"finished_at":null}' % (job_id, job_id, rfc3339_millis(time.time()),
                                     rfc3339_millis(time.time())))
    hello = '{"seq":0,"type":"hello","server":"ws_broadcast_peer","jobs":[%s]}' % ",".join(summaries)
    return pad_object(hello, target_bytes)


class Feed:
    def __init__(self, jobs, step_interval, message_bytes):
        self.clients = set()
        self.jobs = jobs
        self.step_interval = step_interval
        self.message_bytes = message_bytes
        self.seq = 0

    def point(self, job_id, step, due_wall, ts_cache):
        millis = int(due_wall * 1000)
        ts = ts_cache.get(millis)
        if ts is None:
            ts_cache.clear()
            ts = ts_cache[millis] = rfc3339_millis(due_wall)
        self.seq += 1
        loss = 0.1 + 2.3 * math.exp(-step / 50000.0) * (1.0 + 0.01 * math.sin(step * 12.9898 + job_id))
        accuracy = 0.9 - 0.8 * math.exp(-step / 50000.0)
        progress = step / 1000000.0
        eta = (1000000 - step) * self.step_interval
        text = ('{"seq":%d,"type":"point","job_id":%d,"step":%d,"epoch":%d,"loss":%r,'
                '"accuracy":%r,"progress":%r,"eta_seconds":%r,"ts":"%s"}'
                % (self.seq, job_id, step, step // 1000 + 1, loss, accuracy, progress, eta, ts))
        return pad_object(text, self.message_bytes)

    async def run(self):
        """Steps every job every step_interval (all started together, as vapord starts a queue)."""
        loop = time.monotonic
        start = loop() + self.step_interval
        # (due on the monotonic clock, job id, step) in due order: every job has the same interval,
        # so appending each job's next step keeps the deque sorted.
        due = collections.deque((start, job_id, 1) for job_id in range(1, self.jobs + 1))
        ts_cache = {}
        while True:
            now = loop()
            wall_offset = time.time() - now
            written = 0
            while due and due[0][0] <= now:
                if written >= YIELD_EVERY_FRAMES:
                    written = 0
                    await asyncio.sleep(0)  # let handshakes and closes run during a long burst
                at, job_id, step = due.popleft()
                if self.clients:
                    message = self.point(job_id, step, at + wall_offset, ts_cache)
                    websockets.broadcast(self.clients, message)
                    written += len(self.clients)
                next_at = at + self.step_interval
                if next_at < now - MAX_CATCH_UP:
                    next_at = now  # the loop was late: skip ahead, as vapord does
                due.append((next_at, job_id, step + 1))
            await asyncio.sleep(max(0.0, due[0][0] - loop()))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--step-interval-ms", type=float, default=10.0)
    parser.add_argument("--message-bytes", type=int, default=0, help="pad points to this size")
    parser.add_argument("--hello-bytes", type=int, default=0, help="pad the hello to this size")
    args = parser.parse_args()

    feed = Feed(args.jobs, args.step_interval_ms / 1000.0, args.message_bytes)
    hello = build_hello(args.jobs, args.hello_bytes)

    async def handler(websocket, path=None):
        await websocket.send(hello)
        feed.clients.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            feed.clients.discard(websocket)

    # No compression (vapord offers none) and no server pings, so both serve plain frames.
    async with websockets.serve(handler, "127.0.0.1", args.port, compression=None,
                                ping_interval=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print("listening on ws://127.0.0.1:%d" % port, flush=True)
        await feed.run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
