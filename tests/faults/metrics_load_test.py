"""/metrics under load against the real vapord with 10,000 jobs (a scrape is megabytes of text):
many scrapes at once and many scrapers that never read. Before vapord shared one rendering of
the per-job series among scrapes, 300 parallel scrapes held /healthz for 27 s (past systemd's
watchdog) and 100 non-reading scrapers raised its RSS from 33 to 725 MB."""

import json
import socket
import subprocess
import sys
import time
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml, queue_yaml

JOBS = 10_000
RUNNING = 200  # stepping every 50 ms: the per-job series change all the time

# argv: PORT SCRAPES THREADS. Prints [sorted distinct statuses, smallest body size].
SCRAPERS = """
import concurrent.futures, http.client, json, sys
port, count, threads = (int(value) for value in sys.argv[1:4])
def scrape(_):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", "/metrics")
        answer = connection.getresponse()
        return answer.status, len(answer.read())
    finally:
        connection.close()
with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
    answers = list(pool.map(scrape, range(count)))
print(json.dumps([sorted({status for status, _ in answers}), min(size for _, size in answers)]))
"""


class MetricsLoadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        jobs = [job_yaml(f"job-{index:05d}", 1_000_000, "50ms") for index in range(JOBS)]
        cls.daemon = Vapord(harness.vapord_binary(), queue_yaml(jobs), {
            "queue_max_bytes": 4 * 1024 * 1024,
            "scheduler": {"max_concurrent": RUNNING, "max_jobs": JOBS},
        })
        cls.daemon.start(timeout=120)
        status, body = cls.daemon.get("/metrics", timeout=60)
        assert status == 200, body[:300]
        cls.scrape_bytes = len(body)
        # Slower builds (sanitizers) get proportionally more time; RSS there is larger anyway.
        cls.slow = 3 if harness.sanitized(cls.daemon.pid) else 1

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop_cleanly_and_close()

    def healthz_seconds(self):
        started = time.monotonic()
        status, _ = self.daemon.get("/healthz", timeout=60)
        self.assertEqual(status, 200)
        return time.monotonic() - started

    def test_a_scrape_is_megabytes_of_every_job(self):
        self.assertGreater(self.scrape_bytes, 5_000_000)

    def test_scrapers_that_never_read_do_not_each_hold_a_copy(self):
        baseline = self.daemon.rss_kib()
        request = (f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{self.daemon.port}\r\n\r\n"
                   .encode())
        sockets = []
        try:
            for _ in range(100):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", self.daemon.port))
                sock.sendall(request)
                sockets.append(sock)
            # Every request answered as far as the socket takes it, and the rest waits in vapord.
            time.sleep(2 * self.slow)
            self.assertLess(self.healthz_seconds(), 2 * self.slow)
            grown_mib = (self.daemon.rss_kib() - baseline) / 1024
            copies_mib = 100 * self.scrape_bytes / 2**20
            self.assertLess(grown_mib, copies_mib / 4,
                            f"RSS grew {grown_mib:.0f} MiB for 100 waiting scrapes of "
                            f"{self.scrape_bytes / 2**20:.1f} MiB each")
        finally:
            for sock in sockets:
                sock.close()

    def test_parallel_scrapes_leave_the_loop_free_for_health_checks(self):
        # The scrapers run in a process of their own, so that timing /healthz here does not
        # wait for this interpreter's lock behind 100 threads reading megabytes.
        scrapers = subprocess.Popen(
            [sys.executable, "-c", SCRAPERS, str(self.daemon.port), "300", "100"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        latencies = []
        try:
            while scrapers.poll() is None:
                latencies.append(self.healthz_seconds())
                time.sleep(0.05)
            out, err = scrapers.communicate(timeout=10)
        finally:
            if scrapers.poll() is None:
                scrapers.kill()
                scrapers.wait()
        self.assertEqual(scrapers.returncode, 0, err)
        statuses, smallest = json.loads(out)
        self.assertEqual(statuses, [200])
        self.assertGreater(smallest, 5_000_000)
        self.assertTrue(latencies, "the scrapes ended before /healthz was asked once")
        self.assertLess(max(latencies), 2 * self.slow,
                        f"/healthz waited {max(latencies):.1f} s behind 300 scrapes")
        self.assertTrue(eventually(lambda: self.healthz_seconds() < 1, 10))

if __name__ == "__main__":
    harness.main()
