#!/usr/bin/python3
"""Prints bench/run's one table from its work folder: WORK/results (key=value lines written by
bench/run), WORK/resources-client.json (bench/ws_load_client's line) and the folder that
bench/network_bench.sh kept (its own results file and ws_load_client JSON lines).

Ratio column: how many times better vapord is than its peer (> 1: vapord ahead), i.e. vapord /
peer for rates and peer / vapord for times, except ingest, which is pipeline / bare INSERT as in
pipeline_bench (the peer there is the ceiling, not a competitor).

Usage: bench/run_report.py WORK
"""

import json
import math
import os
import sys


def read_results(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    out[key] = value
    except OSError:
        pass
    return out


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Values:
    def __init__(self, values):
        self.values = values

    def text(self, key, default="?"):
        return self.values.get(key, default)

    def num(self, key, default=float("nan")):
        try:
            return float(self.values.get(key, "").split()[0])
        except (ValueError, IndexError):
            return default

    def nums(self, key):
        try:
            return [float(v) for v in self.values.get(key, "").split()]
        except ValueError:
            return []


def ok(v):
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def fmt(v, digits=0, suffix=""):
    if not ok(v):
        return "n/a"
    return f"{v:,.{digits}f}{suffix}"


def ms(v):
    if not ok(v) or v < 0:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def ratio(a, b, digits=2):
    if not ok(a) or not ok(b) or b <= 0:
        return "n/a"
    x = a / b
    if x < 0.1:
        return f"{x:.3f}"
    return f"{x:,.{digits}f}"


def ratio_x(a, b, digits=2):
    text = ratio(a, b, digits)
    return text if text == "n/a" else text + "x"


def mib(kib):
    return kib / 1024.0 if ok(kib) else float("nan")


def main():
    work = sys.argv[1]
    r = Values(read_results(os.path.join(work, "results")))
    network_dir = r.text("network_dir", "")
    n = Values(read_results(os.path.join(network_dir, "results")) if network_dir else {})

    rows = []      # (case, vapord, peer, ratio, note)
    notes = []

    def row(case, vapord="", peer="", x="", note=""):
        rows.append((case, vapord, peer, x, note))

    def failed(section, what):
        reason = r.text(f"{section}_failed", "")
        if reason.startswith("skipped"):
            row(what, "skipped", "", "", reason)
            return True
        if reason:
            row(what, "FAILED", "", "", f"{section} section: {reason} (see stderr)")
            return True
        return False

    # --- ingest ---
    if not failed("ingest", "ingest rows/s, 1,000 jobs"):
        pipe, bare = r.num("ingest_pipeline"), r.num("ingest_bare")
        row("ingest rows/s, 1,000 jobs, 4M rows (pipeline_bench)", fmt(pipe),
            f"{fmt(bare)} bare batched INSERT", ratio(pipe, bare),
            "same schema, pragmas, batch (100,000 rows/txn); ratio = pipeline / bare")

    # --- /metrics render ---
    if not failed("render", "/metrics render"):
        for jobs in (1000, 10000):
            v, p = r.num(f"render_{jobs}_vapord_ms"), r.num(f"render_{jobs}_peer_ms")
            row(f"/metrics render, {jobs:,} jobs, in-process (metrics_render_bench)", ms(v),
                f"{ms(p)} prometheus-cpp", ratio_x(p, v, 1),
                f"median of 15; {fmt(r.num(f'render_{jobs}_bytes') / 1024)} KiB of text")

    # --- network_bench.sh ---
    if not failed("network", "network_bench.sh"):
        for jobs in (1000, 10000):
            vm, gm = n.num(f"vapord_metrics_{jobs}_rps"), n.num(f"gateway_metrics_{jobs}_rps")
            row(f"/metrics req/s, {jobs:,} jobs stepping, {fmt(n.num(f'metrics_series_{jobs}'))} "
                "series (wrk -c16)",
                fmt(vm), f"{fmt(gm)} pushgateway", ratio_x(vm, gm),
                f"p99 {ms(n.num(f'vapord_metrics_{jobs}_p99'))} vs "
                f"{ms(n.num(f'gateway_metrics_{jobs}_p99'))}; "
                f"{fmt(n.num(f'metrics_bytes_{jobs}') / 1024)} KiB")
        jr, hr = n.num("jobs_rps"), n.num("healthz_rps")
        row(f"GET /api/v1/jobs req/s, 1,000 jobs ({fmt(n.num('jobs_bytes') / 1024)} KiB)", fmt(jr),
            f"{fmt(hr)} /healthz", ratio(jr, hr),
            f"same daemon; p99 {ms(n.num('jobs_p99'))} vs {ms(n.num('healthz_p99'))}")
        jb = jr * n.num("jobs_bytes") / 1e6
        sb = n.num("static_rps") * n.num("static_bytes") / 1e6
        row("GET /api/v1/jobs MB/s vs a static file (/assets/uplot.js)", f"{fmt(jb)} MB/s",
            f"{fmt(sb)} MB/s", ratio(jb, sb),
            f"same daemon; {fmt(n.num('static_rps'))} req/s of "
            f"{fmt(n.num('static_bytes') / 1024)} KiB")
        cases = [tuple(case.split(":")) for case in r.text("network_cases", "").split()]
        subscribers = [subs for _, subs in cases]
        for interval, subs in cases:
            key = f"{interval}_{subs}"
            v = load_json(os.path.join(network_dir, f"vapord-ws-{key}.json"))
            p = load_json(os.path.join(network_dir, f"peer-ws-{key}.json"))
            try:
                due_points = 1000 * 1000 / float(interval.rstrip("ms"))
            except ValueError:
                due_points = float("nan")
            vd = v.get("deliveries_per_second", float("nan"))
            pd = p.get("deliveries_per_second", float("nan"))

            def kept(m):
                if not m:
                    return "no result"
                text = f"{m.get('connected_at_end', 0)}/{subs} left"
                if m.get("lost") and m.get("before_cut_seconds", 0) > 0:
                    text += (f" ({fmt(m.get('before_cut_deliveries_per_second', 0))}/s for "
                             f"{m['before_cut_seconds']:.1f} s before the first loss)")
                return text

            row(f"WS {subs} sub{'s' if subs != '1' else ''}, 1,000 jobs/{interval} "
                f"({fmt(due_points)} pts/s): deliveries/s", fmt(vd), f"{fmt(pd)} python",
                ratio_x(vd, pd),
                f"vapord {kept(v)}, cpu {v.get('server_cpu_ratio', -1) * 100:.0f}%; "
                f"python {kept(p)}, cpu {p.get('server_cpu_ratio', -1) * 100:.0f}%")
            vl, pl = v.get("latency_p99_ms", -1), p.get("latency_p99_ms", -1)
            row("  p99 step-to-client latency", ms(vl), ms(pl),
                ratio_x(pl, vl, 1) if vl > 0 and pl > 0 else "n/a",
                "ts of the step vs arrival, same clock (ms resolution)")
            if v.get("close_reasons"):
                notes.append(f"vapord WS {subs} subs {interval}: clients closed "
                             f"{v['close_reasons']}")
            if p.get("close_reasons"):
                notes.append(f"python WS {subs} subs {interval}: clients closed "
                             f"{p['close_reasons']}")
        wanted = {"1", "100", "1000"} - set(subscribers)
        if wanted:
            notes.append("WS subscriber counts not run: " + ", ".join(sorted(wanted, key=int)))

    # --- points ---
    if not failed("points", "GET /api/v1/jobs/1/metrics?max_points=1000"):
        rps = r.num("points_vapord_rps")
        per_request = r.num("points_vapord_mean")  # wrk's mean latency, one connection
        if not ok(per_request) or per_request <= 0:
            per_request = 1000.0 / rps if ok(rps) and rps > 0 else float("nan")
        full = r.nums("points_sqlite_full_ms")
        down = r.nums("points_sqlite_downsampled_ms")
        full_ms = full[0] if full else float("nan")
        row("GET .../metrics?max_points=1000, 1M points (wrk -c1): mean ms",
            ms(per_request), f"{ms(full_ms)} sqlite3 full read", ratio_x(full_ms, per_request, 1),
            f"{fmt(r.num('points_vapord_returned'))} points, "
            f"{fmt(r.num('points_vapord_bytes') / 1024)} KiB, {fmt(rps, 1)} req/s; vapord p50 "
            f"{ms(r.num('points_vapord_p50'))} p99 {ms(r.num('points_vapord_p99'))}; sqlite3: "
            f"{fmt(r.num('points_full_rows'))} rows to /dev/null, mean of "
            f"{int(full[3]) if len(full) > 3 else '?'} ({r.text('points_sqlite_full_tool')})")
        if down:
            row("  same downsampling SQL in the sqlite3 CLI", ms(per_request),
                f"{ms(down[0])} sqlite3", ratio_x(down[0], per_request, 2),
                "vapord's query from sqlite_job_store.cpp run by the CLI (process start and "
                f"{fmt(r.num('points_vapord_returned'))} rows of text output included)")
        idle, busy = r.num("healthz_idle_p99"), r.num("healthz_busy_p99")
        if ok(idle) and ok(busy) and idle > 0 and busy > 0:
            row("  /healthz p99 while that read runs in a loop (wrk -c1 each)", ms(busy),
                f"{ms(idle)} idle", ratio_x(idle, busy, 2),
                f"{fmt(r.num('healthz_busy_rps'))} req/s busy vs {fmt(r.num('healthz_idle_rps'))} "
                f"idle; {fmt(r.num('healthz_busy_points_rps'), 1)} history reads/s meanwhile; "
                "the read runs on the store thread (goal: busy p99 <= 3x idle)")
        restored = r.text("points_vapord_restored", "")
        if restored and restored != "complete 1000000":
            notes.append(f"points: vapord restored job 1 as '{restored}', expected 'complete 1000000'")
        if r.num("points_vapord_errors", 0) > 0:
            notes.append(f"points: wrk errors {r.text('points_vapord_errors')}")

    # --- metric lines ---
    if not failed("lines", "metric lines from a command job"):
        n, cpu, wall = r.num("lines_n"), r.num("lines_cpu"), r.num("lines_wall")
        bare = r.num("ingest_bare")
        if ok(n) and ok(cpu) and cpu > 0:
            row("metric lines/s, 1 command job, 1M lines (per CPU-second of vapord)",
                fmt(n / cpu), f"{fmt(bare)} bare batched INSERT", ratio(n / cpu, bare, 2),
                f"{cpu * 1e6 / n:.1f} us of vapord CPU per line (pipe, parse, scheduler, store, "
                f"metrics, feed): {cpu / n * 1000 * 100:.2f}% of a core per 1,000 lines/s; "
                f"{fmt(n / wall if ok(wall) and wall > 0 else float('nan'))} lines/s wall "
                "(to the last commit, 0.1 s polling); "
                f"job {r.text('lines_state', '?')}, {fmt(r.num('lines_stored'))} points stored")

    # --- push jobs ---
    if not failed("push", "points pushed over HTTP"):
        n = r.num("push_points")
        vapord, gateway = r.num("push_vapord_seconds"), r.num("push_gateway_seconds")
        bare = r.num("ingest_bare")
        if ok(n) and ok(vapord) and vapord > 0:
            per_s = n / vapord
            row("points/s pushed over HTTP, 4 push jobs x 100 batches of 1,000 (to the last "
                "commit)", fmt(per_s),
                f"{fmt(n / gateway) if ok(gateway) and gateway > 0 else '?'} pushgateway PUT",
                ratio_x(per_s, n / gateway if ok(gateway) and gateway > 0 else float("nan")),
                f"vs the bare batched INSERT loop ({fmt(bare)} rows/s): "
                f"{ratio_x(per_s, bare)}; refused batches: vapord "
                f"{r.text('push_vapord_failures', '?')}, pushgateway "
                f"{r.text('push_gateway_failures', '?')}; "
                f"{fmt(r.num('push_vapord_committed'))} points committed")

    # --- resources ---
    if not failed("resources", "CPU and RSS, 100 jobs at 10 steps/s"):
        row("CPU, 100 jobs at 10 steps/s, no subscribers", fmt(r.num("res_idle_cpu") * 100, 1, "%"),
            "", "", f"of one core, 10 s from /proc/PID/stat; RSS "
            f"{fmt(mib(r.num('res_idle_rss_kib')), 1)} MiB, {fmt(r.num('res_idle_fds'))} fds")
        c = load_json(os.path.join(work, "resources-client.json"))
        row(f"CPU, same + {fmt(r.num('res_subs'))} WebSocket subscribers",
            fmt(r.num("res_subs_cpu") * 100, 1, "%"), "", "",
            f"of one core over {fmt(r.num('res_window_seconds'))} s; "
            f"{fmt(c.get('deliveries_per_second', float('nan')))} deliveries/s, p99 "
            f"{ms(c.get('latency_p99_ms', -1))}, {c.get('connected_at_end', '?')}/"
            f"{fmt(r.num('res_subs'))} left")
        row("  RSS, window start -> end (peak)",
            f"{fmt(mib(r.num('res_subs_rss_start_kib')), 1)} -> "
            f"{fmt(mib(r.num('res_subs_rss_end_kib')), 1)} MiB", "", "",
            f"max sampled {fmt(mib(r.num('res_subs_rss_max_kib')), 1)} MiB, VmHWM "
            f"{fmt(mib(r.num('res_subs_hwm_kib')), 1)} MiB; {fmt(r.num('res_subs_fds'))} fds")
    if not failed("queued", "RSS per 1,000 queued jobs"):
        xs, ys = [], []
        for count in (0, 1000, 10000):
            v = r.num(f"queued_{count}_rss_kib")
            if ok(v):
                xs.append(count)
                ys.append(v)
        slope = float("nan")
        if len(xs) >= 2:
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            den = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 1000 if den else slope
        row("RSS per 1,000 queued jobs (least squares)", fmt(mib(slope), 2, " MiB"), "", "",
            "RSS at 0 / 1,000 / 10,000 queued manual jobs: " +
            " / ".join(fmt(mib(r.num(f"queued_{c}_rss_kib")), 1) for c in (0, 1000, 10000)) +
            " MiB")

    # --- print ---
    header = ("case", "vapord", "peer", "ratio", "note")
    widths = [max(len(str(c[i])) for c in rows + [header]) for i in range(5)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(f"Vapor benchmark (bench/run), {r.text('date')}")
    print(f"machine: {r.text('nproc')} CPUs ({r.text('cpu_model')}), {r.text('mem_gib')} GiB, "
          f"{r.text('os')}, {r.text('kernel')}; {r.text('pinning')}")
    print(f"{r.text('vapord_version')}, commit {r.text('commit')}; SQLite CLI "
          f"{r.text('sqlite_version')}; {r.text('run_seconds')} s per load run; load average "
          f"before {r.text('load_before')}, after {r.text('load_after')}")
    print("ratio: > 1 means vapord ahead (rate / peer rate, or peer time / vapord time); "
          "ingest is pipeline / bare INSERT")
    print()
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in rows:
        print(line(cells))
    if notes:
        print()
        for note in notes:
            print("note: " + note)


if __name__ == "__main__":
    main()
