"""Hostile and broken WebSocket clients against the real vapord's feed, with a real client
library (Debian's python3-websockets) and, for what that library refuses to send, raw frames on
a socket: a message over the 64 KiB client limit (closed 1009), invalid UTF-8 in a text frame
(1007), unmasked and otherwise malformed frames (1002), and a client that never reads among 100
that do (closed 1008 at websocket.send_queue_bytes; the others get every message in seq order).
Each time a bystander client keeps its feed, and the daemon's fd count and
vapor_websocket_clients return to their baselines."""

import asyncio
import base64
import json
import os
import socket
import struct
import time
import unittest

import websockets
from websockets.frames import OP_CONT, OP_TEXT

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml, queue_yaml

MESSAGE_LIMIT = 64 * 1024  # the server's read limit for one client message
SEND_QUEUE_BYTES = 65536  # websocket.send_queue_bytes in this test's vapord.yaml
HEALTHY_CLIENTS = 100
# The healthy clients follow job 2, 50 points (10 KB) a second each: 5,000 messages a second in
# all, which this one Python process reads even on a loaded machine. The never-reading client
# follows everything, job 3's 500 points a second too, so its backlog passes the limit fast.
FOLLOWED_STEPS = 300
FOLLOWED_INTERVAL = "20ms"
FIREHOSE_STEPS = 5000
FIREHOSE_INTERVAL = "2ms"


def disconnects(daemon, reason):
    return daemon.metric(f'vapor_websocket_disconnects_total{{reason="{reason}"}}')


class RawWebSocket:
    """A hand-made client: handshake on a plain socket, then whatever frames a test wants,
    masked or not."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("closed during the handshake")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, opcode, payload, fin=True, masked=True, rsv=0):
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", first, (0x80 if masked else 0) | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, (0x80 if masked else 0) | 126, length)
        else:
            header = struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, length)
        if masked:
            mask = os.urandom(4)
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            header += mask
        self.sock.sendall(header + payload)

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_frame(self):
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        mask = self._read(4) if second & 0x80 else None
        payload = self._read(length)
        if mask:
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        return first & 0x0F, payload

    def close_code(self, timeout=10):
        """Reads frames until a close frame; its status code (None if the socket just ends)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                opcode, payload = self.read_frame()
                if opcode == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (ConnectionError, socket.timeout):
            return None

    def close(self):
        self.sock.close()


class Bystander:
    """A well-behaved feed client that reads all along; `check()` says whether it saw every
    message in seq order, the points of the steady job without a gap, and is still open."""

    def __init__(self, url):
        self.url = url

    async def __aenter__(self):
        self.ws = await websockets.connect(self.url, ping_interval=None, compression=None)
        self.seq = json.loads(await self.ws.recv())["seq"]
        self.steps = []
        self.task = asyncio.create_task(self.read())
        return self

    async def read(self):
        async for raw in self.ws:
            message = json.loads(raw)
            assert message["seq"] == self.seq + 1, f"seq {message['seq']} after {self.seq}"
            self.seq = message["seq"]
            if message["type"] == "point" and message["job_id"] == 1:
                self.steps.append(message["step"])

    async def check(self, test):
        test.assertFalse(self.task.done(), "the bystander's feed ended: "
                         + repr(self.task.exception() if self.task.done() else None))
        seen = len(self.steps)
        await asyncio.sleep(0.3)
        test.assertGreater(len(self.steps), seen, "the bystander stopped receiving points")
        test.assertEqual(self.steps, list(range(self.steps[0], self.steps[-1] + 1)))

    async def __aexit__(self, *exc):
        await self.ws.close()
        self.task.cancel()


class WebSocketAbuseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        jobs = [job_yaml("steady", 1_000_000, "20ms")]  # job 1, for bystanders
        jobs.append(job_yaml("followed", FOLLOWED_STEPS, FOLLOWED_INTERVAL,
                             "    start: manual\n"))  # job 2
        jobs.append(job_yaml("firehose", FIREHOSE_STEPS, FIREHOSE_INTERVAL,
                             "    start: manual\n"))  # job 3
        cls.daemon = Vapord(harness.vapord_binary(), queue_yaml(jobs),
                            {"scheduler": {"max_concurrent": 3},
                             "websocket": {"send_queue_bytes": SEND_QUEUE_BYTES,
                                           "max_clients": 256}})
        cls.daemon.start()
        cls.url = f"ws://127.0.0.1:{cls.daemon.port}/ws"
        cls.daemon.get("/api/v1/jobs")
        time.sleep(0.3)
        cls.baseline_fds = cls.daemon.fd_count()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop_cleanly_and_close()

    def tearDown(self):
        daemon = self.daemon
        self.assertTrue(daemon.alive(), daemon.log_tail())
        self.assertTrue(eventually(lambda: daemon.metric("vapor_websocket_clients") == 0, 15),
                        "feed clients are still counted")
        self.assertTrue(eventually(lambda: daemon.fd_count() <= self.baseline_fds, 15),
                        f"vapord holds {daemon.fd_count()} fds, {self.baseline_fds} before")

    def run_async(self, coroutine, timeout=60):
        asyncio.run(asyncio.wait_for(coroutine, timeout))

    # --- client messages the server must refuse --------------------------------------------

    def test_a_message_over_64_kib_is_closed_with_1009(self):
        async def scenario():
            async with Bystander(self.url) as bystander:
                # At the limit: answered with an error message, and the connection stays.
                async with websockets.connect(self.url, ping_interval=None, compression=None,
                                              max_size=None) as ws:
                    await ws.recv()  # hello
                    await ws.send(" " * MESSAGE_LIMIT)
                    # Live points of the running jobs may come first; the answer follows.
                    for _ in range(10_000):
                        reply = json.loads(await ws.recv())
                        if reply["type"] not in ("point", "state"):
                            break
                    self.assertEqual(reply["type"], "error")
                # One byte past it, a lot past it, or past it in fragments: closed with 1009.
                # Each is written whole before vapord can answer. A client still writing when
                # vapord closes may see a reset instead of the close frame: Boost 1.81's
                # websocket teardown stops draining after one read and closes with the client's
                # bytes unread, so the kernel answers them with RST.
                for fragments in [["x" * (MESSAGE_LIMIT + 1)], ["x" * (4 * MESSAGE_LIMIT)],
                                  ["y" * 30000, "y" * 30000, "y" * 10000]]:
                    async with websockets.connect(self.url, ping_interval=None,
                                                  compression=None, max_size=None) as ws:
                        await ws.recv()  # hello
                        for index, fragment in enumerate(fragments):
                            await ws.write_frame(index == len(fragments) - 1,
                                                 OP_CONT if index else OP_TEXT,
                                                 fragment.encode())
                        with self.assertRaises(websockets.ConnectionClosed):
                            while True:
                                await asyncio.wait_for(ws.recv(), 10)
                        self.assertEqual(ws.close_code, 1009, [len(f) for f in fragments])
                await bystander.check(self)

        before = disconnects(self.daemon, "message_too_big")
        self.run_async(scenario())
        self.assertEqual(disconnects(self.daemon, "message_too_big"), before + 3)

    def test_invalid_utf8_in_a_text_frame_is_closed_with_1007(self):
        async def scenario():
            async with Bystander(self.url) as bystander:
                for payload in [b'{"type":"subscribe","job_ids":["\xff\xfe"]}',
                                b'{"type":"subscribe"}\xe2\x82',  # cut inside a character
                                b'{"type":"\xed\xa0\x80"}']:  # an encoded surrogate
                    async with websockets.connect(self.url, ping_interval=None,
                                                  compression=None) as ws:
                        await ws.recv()  # hello
                        # The library will not encode this; its frame writer sends it as is.
                        await ws.write_frame(True, OP_TEXT, payload)
                        with self.assertRaises(websockets.ConnectionClosed):
                            while True:
                                await asyncio.wait_for(ws.recv(), 10)
                        self.assertEqual(ws.close_code, 1007, payload)
                await bystander.check(self)

        self.run_async(scenario())

    def test_unmasked_and_malformed_client_frames_are_closed_with_1002(self):
        cases = {
            "unmasked text": dict(opcode=0x1, payload=b'{"type":"subscribe"}', masked=False),
            "reserved bit without an extension": dict(opcode=0x1, payload=b"{}", rsv=4),
            "unknown opcode": dict(opcode=0x3, payload=b"{}"),
            "ping over 125 bytes": dict(opcode=0x9, payload=b"p" * 200),
            "fragmented ping": dict(opcode=0x9, payload=b"p", fin=False),
            "continuation with nothing to continue": dict(opcode=0x0, payload=b"{}"),
        }

        async def scenario():
            async with Bystander(self.url) as bystander:
                loop = asyncio.get_running_loop()
                for case, frame in cases.items():
                    def exchange():
                        client = RawWebSocket(self.daemon.port)
                        try:
                            opcode, _ = client.read_frame()  # hello
                            assert opcode == 0x1
                            client.send_frame(**frame)
                            return client.close_code()
                        finally:
                            client.close()
                    with self.subTest(case=case):
                        self.assertEqual(await loop.run_in_executor(None, exchange), 1002)
                await bystander.check(self)

        self.run_async(scenario())

    # --- a client that never reads ---------------------------------------------------------

    def test_a_never_reading_client_among_100_healthy_ones(self):
        daemon = self.daemon
        token = daemon.token()

        def connected_socket(receive_buffer, segment=None):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if segment:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, segment)
            sock.connect(("127.0.0.1", daemon.port))
            return sock

        async def healthy_client(ready):
            # A large receive buffer: the kernel holds what this one process has not read yet,
            # so a healthy client falls behind by the server's measure only if it stops.
            async with websockets.connect(self.url, sock=connected_socket(4 << 20),
                                          ping_interval=None, compression=None) as ws:
                seq = json.loads(await ws.recv())["seq"]
                await ws.send(json.dumps({"type": "subscribe", "job_ids": [2]}))
                steps = []
                async for raw in ws:
                    message = json.loads(raw)
                    if message["seq"] != seq + 1:
                        return f"seq {message['seq']} after {seq}"
                    seq = message["seq"]
                    if message["type"] == "subscribed":
                        ready.append(1)
                    elif message.get("job_id") != 2:
                        continue  # sent before the subscription took effect
                    elif message["type"] == "point":
                        steps.append(message["step"])
                    elif message["type"] == "state" and message["to"] == "complete":
                        return steps
                return f"closed with {ws.close_code} {ws.close_reason} after {len(steps)} points"

        async def scenario():
            loop = asyncio.get_running_loop()
            # The never-reading client: a tiny receive buffer and segment size so that the
            # kernel hides little of its backlog (loopback's 64 KiB segments would otherwise
            # let the server's send buffer grow past a megabyte before vapord's queue fills).
            slow = await websockets.connect(self.url, sock=connected_socket(1024, 536),
                                            ping_interval=None, compression=None, max_queue=1,
                                            read_limit=1024)
            ready = []
            clients = [asyncio.create_task(healthy_client(ready))
                       for _ in range(HEALTHY_CLIENTS)]
            while len(ready) < HEALTHY_CLIENTS:
                await asyncio.sleep(0.05)
                for client in clients:
                    if client.done():
                        self.fail(f"a healthy client ended early: {client.result()}")
            self.assertEqual(await loop.run_in_executor(
                None, daemon.metric, "vapor_websocket_clients"), HEALTHY_CLIENTS + 1)

            started = time.monotonic()
            for name in ("followed", "firehose"):
                status, body = await loop.run_in_executor(None, lambda name=name: daemon.request(
                    "POST", f"/api/v1/jobs/{name}/start",
                    headers={"Authorization": f"Bearer {token}"}))
                self.assertEqual(status, 200, body)

            # vapord gives up on the slow client while the feed runs ...
            while await loop.run_in_executor(None, disconnects, daemon, "slow_consumer") < 1:
                self.assertLess(time.monotonic() - started, 30, "the slow client was never cut")
                await asyncio.sleep(0.1)
            cut_after = time.monotonic() - started
            # ... and when it finally reads, it finds what was sent, then a 1008 close.
            received = 0
            with self.assertRaises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(slow.recv(), 10)
                    received += 1
            self.assertEqual(slow.close_code, 1008)

            results = await asyncio.gather(*clients)
            every_point = list(range(1, FOLLOWED_STEPS + 1))
            failures = [result for result in results if result != every_point]
            self.assertEqual(failures[:3], [], f"{len(failures)} healthy clients missed messages")
            print(f"slow client cut after {cut_after:.1f} s having been sent {received} "
                  f"messages; {HEALTHY_CLIENTS} healthy clients got all {FOLLOWED_STEPS} points "
                  f"in order in {time.monotonic() - started:.1f} s")

        before = disconnects(daemon, "slow_consumer")
        self.run_async(scenario(), timeout=90)
        self.assertEqual(disconnects(daemon, "slow_consumer"), before + 1,
                         "only the never-reading client is cut")


if __name__ == "__main__":
    harness.main()
