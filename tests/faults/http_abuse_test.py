"""Hostile and broken HTTP against the real vapord, over raw sockets on 127.0.0.1: oversized
headers (431) and bodies (413), malformed requests (400), malformed and truncated JSON job specs
(400), wrong methods (405), unknown paths (404), path traversal on the page's assets (404),
truncated bodies and slowloris connections (cut at api.read_timeout). Each gets its answer, the
daemon keeps serving everyone else, and its fd count returns to its baseline afterwards."""

import json
import socket
import time
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml, queue_yaml, read_http_response

READ_TIMEOUT = 1.0  # api.read_timeout in this test's vapord.yaml
SLACK = 4.0  # scheduling slack on a loaded 2-core machine under ASan


def closed_by_peer(sock, timeout):
    """Reads until the peer closes; True if it did within `timeout`."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except ConnectionError:
            return True
    return False


class HttpAbuseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Vapord(harness.vapord_binary(),
                            queue_yaml([job_yaml("steady", 1_000_000, "20ms")]),
                            {"api": {"read_timeout": f"{int(READ_TIMEOUT * 1000)}ms"}})
        cls.daemon.start()
        cls.host = f"Host: 127.0.0.1:{cls.daemon.port}\r\n".encode()
        cls.auth = f"Authorization: Bearer {cls.daemon.token()}\r\n".encode()
        # Warm up everything that opens a descriptor lazily (the store's readers, say).
        cls.daemon.get("/api/v1/jobs")
        cls.daemon.get("/api/v1/jobs/1/metrics")
        cls.daemon.get("/metrics")
        # The warm-up connections close a moment after their answers.
        time.sleep(0.3)
        cls.baseline_fds = cls.daemon.fd_count()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop_cleanly_and_close()

    def tearDown(self):
        self.assertTrue(self.daemon.alive(), self.daemon.log_tail())
        self.assertEqual(self.daemon.get("/healthz", timeout=5)[0], 200)
        self.assertTrue(eventually(lambda: self.daemon.fd_count() <= self.baseline_fds, 10),
                        f"vapord holds {self.daemon.fd_count()} fds, "
                        f"{self.baseline_fds} before the abuse")

    def exchange(self, raw, timeout=10):
        """Sends raw bytes on a fresh connection; returns (status, headers, body) or None."""
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=timeout) as sock:
            sock.sendall(raw)
            return read_http_response(sock, timeout)

    def request(self, method, target, headers=b"", body=b""):
        head = f"{method} {target} HTTP/1.1\r\n".encode() + self.host + headers
        if body:
            head += f"Content-Length: {len(body)}\r\n".encode()
        return self.exchange(head + b"\r\n" + body)

    def assert_status(self, answer, status, code=None):
        self.assertIsNotNone(answer, "the connection closed without an answer")
        self.assertEqual(answer[0], status, answer[2][:300])
        if code is not None:
            self.assertEqual(json.loads(answer[2])["error"]["code"], code)

    # --- size limits -----------------------------------------------------------------------

    def test_oversized_headers_get_431_and_the_connection_closes(self):
        cases = {
            "one huge header": b"X-Big: " + b"a" * 9000 + b"\r\n",
            "many headers": b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(100)),
            "huge target": None,
        }
        for case, headers in cases.items():
            with self.subTest(case=case):
                if headers is None:
                    raw = b"GET /api/v1/jobs?x=" + b"c" * 9000 + b" HTTP/1.1\r\n" + self.host
                else:
                    raw = b"GET /healthz HTTP/1.1\r\n" + self.host + headers
                with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as s:
                    s.sendall(raw + b"\r\n")
                    answer = read_http_response(s)
                    self.assert_status(answer, 431, "header_too_large")
                    self.assertTrue(closed_by_peer(s, 5), "the connection stayed open")

    def test_oversized_bodies_get_413(self):
        jobs_before = set(self.daemon.jobs())
        # Announced: refused on the headers alone, before a byte of the body.
        answer = self.exchange(b"POST /api/v1/jobs HTTP/1.1\r\n" + self.host + self.auth +
                               b"Content-Type: application/json\r\n"
                               b"Content-Length: 2097152\r\n\r\n")
        self.assert_status(answer, 413, "body_too_large")
        # Chunked: refused once the chunks pass 1 MiB.
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as sock:
            sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\n" + self.host + self.auth +
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
            try:
                for _ in range(24):  # 1.5 MiB
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # vapord answered and closed before the rest was sent
            self.assert_status(read_http_response(sock), 413, "body_too_large")
        self.assertEqual(set(self.daemon.jobs()), jobs_before)

    # --- malformed requests ----------------------------------------------------------------

    def test_malformed_requests_get_400(self):
        host = self.host
        cases = {
            "negative Content-Length": b"POST /api/v1/jobs HTTP/1.1\r\n" + host +
            b"Content-Length: -1\r\n\r\n",
            "two Content-Lengths": b"POST /api/v1/jobs HTTP/1.1\r\n" + host +
            b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "bad chunk size": b"POST /api/v1/jobs HTTP/1.1\r\n" + host +
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            "TLS hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
            "header without a colon": b"GET /healthz HTTP/1.1\r\n" + host + b"NoColon\r\n\r\n",
            "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "unknown version": b"GET /healthz HTTP/3.0\r\n" + host + b"\r\n",
            "control bytes in the target": b"GET /he\x01lthz HTTP/1.1\r\n" + host + b"\r\n",
        }
        for case, raw in cases.items():
            with self.subTest(case=case):
                self.assert_status(self.exchange(raw), 400, "bad_request")

    def test_malformed_and_truncated_json_gets_400_and_adds_no_job(self):
        jobs_before = set(self.daemon.jobs())
        bodies = {
            "not JSON": b"{not json",
            "truncated": b'{"name":"cut-short","epochs":',
            "truncated string": b'{"name":"cut-sh',
            "empty": b"",
            "a list": b"[]",
            "a string": b'"resnet"',
            "null": b"null",
            "wrong type": b'{"name":"typed","epochs":"ten"}',
            "duplicate key": b'{"name":"dup","epochs":1,"epochs":2}',
            "invalid UTF-8": b'{"name":"\xff\xfe","epochs":1}',
            "lone surrogate": b'{"name":"a\\ud800","epochs":1}',
            "nested 10,000 deep": b'{"name":"deep","epochs":1,"simulate":' + b"[" * 10000 +
            b"]" * 10000 + b"}",
            "number too large": b'{"name":"big","epochs":99999999999999999999999}',
        }
        for case, body in bodies.items():
            with self.subTest(case=case):
                raw = (b"POST /api/v1/jobs HTTP/1.1\r\n" + self.host + self.auth +
                       b"Content-Type: application/json\r\n" +
                       f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                answer = self.exchange(raw)
                self.assert_status(answer, 400, "invalid_spec")
        self.assertEqual(set(self.daemon.jobs()), jobs_before)

    def test_a_truncated_body_is_cut_at_the_read_timeout(self):
        jobs_before = set(self.daemon.jobs())
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\n" + self.host + self.auth +
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"name":"never-finished","epochs":')
            self.assertTrue(closed_by_peer(sock, READ_TIMEOUT + SLACK),
                            "a request whose body never came was not cut")
            self.assertGreaterEqual(time.monotonic() - started, READ_TIMEOUT * 0.9)
        self.assertEqual(set(self.daemon.jobs()), jobs_before)

    # --- methods and paths -----------------------------------------------------------------

    def test_wrong_methods_get_405_with_allow(self):
        cases = [
            ("DELETE", "/api/v1/jobs", "GET, HEAD, POST"),
            ("PUT", "/api/v1/jobs/1", "GET, HEAD"),
            ("PATCH", "/api/v1/jobs/steady", "GET, HEAD"),
            ("GET", "/api/v1/jobs/1/start", "POST"),
            ("DELETE", "/api/v1/jobs/1/stop", "POST"),
            ("PUT", "/metrics", "GET, HEAD"),
            ("POST", "/healthz", "GET, HEAD"),
            ("OPTIONS", "/", "GET, HEAD"),
            ("TRACE", "/", "GET, HEAD"),
            ("FROB", "/api/v1/jobs", "GET, HEAD, POST"),
        ]
        for method, target, allow in cases:
            with self.subTest(method=method, target=target):
                answer = self.request(method, target, headers=self.auth)
                self.assert_status(answer, 405, "method_not_allowed")
                self.assertEqual(answer[1].get("allow"), allow)

    def test_unknown_paths_get_404(self):
        for target in ["/nope", "/api", "/api/v2/jobs", "/api/v1/jobs/1/nope",
                       "/api/v1/jobs/no-such-job", "/api/v1/jobs/99999/metrics",
                       "/assets/", "/assets/nope.js", "/metrics/extra", "/ws/extra",
                       "/index.html", "/" + "x" * 4000]:
            with self.subTest(target=target[:60]):
                self.assert_status(self.request("GET", target), 404, "not_found")

    def test_path_traversal_on_the_assets_gets_404(self):
        targets = [
            "/assets/../../etc/passwd",
            "/assets/../../../../../../etc/passwd",
            "/assets/%2e%2e/%2e%2e/etc/passwd",
            "/assets/%2E%2E/%2E%2E/etc/passwd",
            "/assets/..%2f..%2fetc%2fpasswd",
            "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/assets/%252e%252e/%252e%252e/etc/passwd",
            "/assets/..%5c..%5cetc%5cpasswd",
            "/assets/..\\..\\etc\\passwd",
            "/assets/app.js/../../../etc/passwd",
            "/assets/app.js%00.html",
            "/assets/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
            "/assets/....//....//etc/passwd",
            "/assets//etc/passwd",
            "//etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/../../etc/passwd",
            "/assets/../../proc/self/environ",
            "/assets/./app.js",
            "/assets/app%2ejs",
        ]
        for target in targets:
            with self.subTest(target=target):
                answer = self.request("GET", target)
                self.assert_status(answer, 404, "not_found")
                self.assertNotIn(b"root:", answer[2])
        # Not origin-form at all: still nothing from the file system.
        for raw_target in [b"../../etc/passwd", b"http://127.0.0.1/../../etc/passwd"]:
            with self.subTest(target=raw_target):
                answer = self.exchange(b"GET " + raw_target + b" HTTP/1.1\r\n" + self.host +
                                       b"\r\n")
                self.assertIsNotNone(answer)
                self.assertIn(answer[0], (400, 404))
                self.assertNotIn(b"root:", answer[2])
        # The real asset is served, so the 404s above are not a broken page.
        self.assert_status(self.request("GET", "/assets/app.js"), 200)

    # --- slow clients ----------------------------------------------------------------------

    def test_slowloris_connections_are_cut_while_others_are_served(self):
        count = 100
        opened = time.monotonic()
        sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
            sock.setblocking(False)
            sockets.append(sock)
        request = b"GET /api/v1/jobs HTTP/1.1\r\n" + self.host + b"X-Slow: " + b"z" * 1000
        closed_after = {}
        answered = []
        latencies = []
        sent = 0
        try:
            # vapord holds every one of them (the test would prove nothing otherwise).
            self.assertTrue(eventually(
                lambda: self.daemon.fd_count() >= self.baseline_fds + count * 9 // 10,
                READ_TIMEOUT / 2,
                interval=0.01), f"{self.daemon.fd_count()} fds")
            # One byte per connection every 50 ms: a header that never ends, for up to 8 s.
            while len(closed_after) < count and time.monotonic() - opened < READ_TIMEOUT + 7:
                for index, sock in enumerate(sockets):
                    if index in closed_after:
                        continue
                    try:
                        data = sock.recv(4096)
                        if data:
                            answered.append(data[:100])
                        closed_after[index] = time.monotonic() - opened
                        continue
                    except BlockingIOError:
                        pass
                    except ConnectionError:
                        closed_after[index] = time.monotonic() - opened
                        continue
                    try:
                        sock.send(request[sent % len(request):sent % len(request) + 1])
                    except (BlockingIOError, ConnectionError):
                        pass
                sent += 1
                # Meanwhile a well-behaved client is answered promptly.
                started = time.monotonic()
                status, _ = self.daemon.get("/healthz", timeout=10)
                latencies.append(time.monotonic() - started)
                self.assertEqual(status, 200)
                time.sleep(0.05)
        finally:
            for sock in sockets:
                sock.close()
        self.assertEqual(len(closed_after), count,
                         f"{count - len(closed_after)} trickling connections were never cut")
        self.assertEqual(answered, [], "a request that never ended got an answer")
        self.assertLess(max(closed_after.values()), READ_TIMEOUT + SLACK)
        self.assertGreater(min(closed_after.values()), READ_TIMEOUT * 0.9,
                           "cut before api.read_timeout")
        self.assertLess(max(latencies), 2.0, "a well-behaved client waited behind the trickle")

    def test_idle_connections_are_cut_at_the_read_timeout(self):
        sockets = [socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                   for _ in range(100)]
        try:
            deadline = READ_TIMEOUT + SLACK
            started = time.monotonic()
            for sock in sockets:
                self.assertTrue(closed_by_peer(sock, max(0.1, deadline -
                                                         (time.monotonic() - started))),
                                "an idle connection outlived api.read_timeout")
        finally:
            for sock in sockets:
                sock.close()


if __name__ == "__main__":
    harness.main()
