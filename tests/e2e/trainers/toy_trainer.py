"""A stand-in trainer for the command-job tests: a real process that writes its points to the
pipe vapord hands it (VAPOR_METRICS_FD), one JSON object per line, then ends the way it is told.

    toy_trainer.py STEPS [--end exit:N | signal:NAME | hang | nan | ignore-term | trap-term]
                         [--interval SECONDS] [--bad-lines] [--long-line BYTES] [--pidfile PATH]
"""

import argparse
import json
import math
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("steps", type=int)
parser.add_argument("--end", default="exit:0")
parser.add_argument("--interval", type=float, default=0.0)
parser.add_argument("--bad-lines", action="store_true")
parser.add_argument("--long-line", type=int, default=0)
parser.add_argument("--pidfile")
parser.add_argument("--flood-mib", type=int, default=0, help="write this much to stdout first")
args = parser.parse_args()

if args.pidfile:
    with open(args.pidfile, "w") as f:
        f.write(str(os.getpid()))
print("env:", " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                       if k.startswith("VAPOR_") or k == "TOY_SETTING"), flush=True)
if args.end == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif args.end == "trap-term":
    signal.signal(signal.SIGTERM, lambda *_: (print("SIGTERM: saving and leaving", flush=True),
                                              sys.exit(0)))

for index in range(args.flood_mib * 1024):  # 1 KiB lines
    sys.stdout.write(f"flood line {index:08d} " + "z" * 1000 + "\n")
sys.stdout.flush()

metrics = os.fdopen(int(os.environ["VAPOR_METRICS_FD"]), "w", buffering=1)
for step in range(1, args.steps + 1):
    loss = 2.0 * math.exp(-step / 20.0) + 0.1
    point = {"step": step, "loss": loss, "accuracy": 1.0 - loss / 2.1, "val_loss": loss * 1.1}
    if step % 5 == 0:
        point["lr"] = 0.1 / step  # a scalar that not every point carries
    if args.end == "nan" and step == args.steps:
        point["loss"] = "NaN"
    metrics.write(json.dumps(point) + "\n")
    if args.bad_lines and step == 2:
        metrics.write("this is not json\n")
        metrics.write(json.dumps({"step": 1, "loss": 1.0}) + "\n")  # not after step 2
        metrics.write(json.dumps({"loss": 1.0}) + "\n")  # no step
    if args.long_line and step == 3:
        metrics.write('{"step": 4, "pad": "' + "x" * args.long_line + '"}\n')
    if args.interval:
        time.sleep(args.interval)
metrics.flush()

kind, _, value = args.end.partition(":")
if kind == "exit":
    sys.exit(int(value))
if kind == "signal":
    os.kill(os.getpid(), getattr(signal, value))
if kind in ("hang", "ignore-term", "trap-term", "nan"):
    while True:
        time.sleep(1)
