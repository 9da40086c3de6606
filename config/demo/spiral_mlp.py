"""A real (small) training run for vapord's demo: a two-layer MLP learns to tell apart three
interleaved spirals, by full-batch gradient descent in numpy. Each step writes one point to the
pipe vapord hands it (VAPOR_METRICS_FD): the training loss and accuracy, and the held-out
`val_loss` and `val_accuracy` and the learning rate as named scalars. Without vapord it prints
the points. With --push it is a push job's trainer instead: it posts its points to vapord's API
in batches of ten (token from $VAPOR_PUSH_TOKEN) and reports its end.

    python3 spiral_mlp.py [--steps 300] [--hidden 64] [--lr 1.0] [--step-seconds 0.1]
                          [--fail-at STEP] [--nan-at STEP] [--hang-at STEP]
                          [--push http://127.0.0.1:9786 --job NAME]
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

import numpy as np


class Pusher:
    """Posts points to a push job, ten at a time, with the standard library only."""

    def __init__(self, url, job):
        self.base = f"{url.rstrip('/')}/api/v1/jobs/{job}"
        self.token = os.environ["VAPOR_PUSH_TOKEN"]
        self.batch = []

    def post(self, path, body):
        request = urllib.request.Request(
            f"{self.base}/{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as refused:  # e.g. 409 once vapord has failed the job
            sys.exit(f"vapord refused the {path}: {refused.code} {refused.read().decode()}")

    def write(self, line):
        self.batch.append(json.loads(line))
        if len(self.batch) == 10:
            self.flush()

    def flush(self):
        if self.batch:
            self.post("points", self.batch)
            self.batch = []

    def finish(self, state, reason=None):
        self.flush()
        self.post("finish", {"state": state, **({"reason": reason} if reason else {})})


def spirals(points_per_class, classes, rng):
    """Three arms winding around the origin, with noise: not separable by a straight line."""
    features = np.zeros((points_per_class * classes, 2))
    labels = np.zeros(points_per_class * classes, dtype=int)
    for c in range(classes):
        rows = range(points_per_class * c, points_per_class * (c + 1))
        radius = np.linspace(0.0, 1.0, points_per_class)
        angle = np.linspace(c * 4.0, (c + 1) * 4.0, points_per_class) + rng.normal(
            0.0, 0.2, points_per_class)
        features[rows] = np.c_[radius * np.sin(angle), radius * np.cos(angle)]
        labels[rows] = c
    return features, labels


def forward(params, x):
    hidden = np.maximum(0.0, x @ params["w1"] + params["b1"])
    scores = hidden @ params["w2"] + params["b2"]
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    return hidden, probs


def loss_and_accuracy(probs, y):
    loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
    accuracy = float((probs.argmax(axis=1) == y).mean())
    return loss, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    parser.add_argument("--fail-at", type=int, help="exit 1 at this step")
    parser.add_argument("--nan-at", type=int, help="report a NaN loss at this step")
    parser.add_argument("--hang-at", type=int, help="stop reporting at this step")
    parser.add_argument("--push", metavar="URL", help="report to vapord's API as a push job")
    parser.add_argument("--job", help="the push job's name (with --push)")
    args = parser.parse_args()

    rng = np.random.default_rng(int(os.environ.get("VAPOR_JOB_ID", "0")) + 7)
    x, y = spirals(150, 3, rng)
    order = rng.permutation(len(y))
    train, held_out = order[:360], order[360:]
    params = {
        "w1": rng.normal(0.0, 1.0, (2, args.hidden)),
        "b1": np.zeros(args.hidden),
        "w2": rng.normal(0.0, 0.1, (args.hidden, 3)),
        "b2": np.zeros(3),
    }
    fd = os.environ.get("VAPOR_METRICS_FD")
    if args.push:
        if not args.job:
            parser.error("--push needs --job NAME")
        out = Pusher(args.push, args.job)
    else:
        out = os.fdopen(int(fd), "w", buffering=1) if fd else sys.stdout
    print(f"spiral MLP: {len(train)} training and {len(held_out)} held-out points, "
          f"{args.hidden} hidden units, attempt {os.environ.get('VAPOR_ATTEMPT', '-')}", flush=True)

    for step in range(1, args.steps + 1):
        lr = args.lr * (0.5 if step > args.steps * 0.7 else 1.0)
        hidden, probs = forward(params, x[train])
        loss, accuracy = loss_and_accuracy(probs, y[train])
        # Backpropagation of the mean cross-entropy.
        grad_scores = probs.copy()
        grad_scores[np.arange(len(train)), y[train]] -= 1.0
        grad_scores /= len(train)
        grad_hidden = grad_scores @ params["w2"].T
        grad_hidden[hidden <= 0.0] = 0.0
        params["w2"] -= lr * hidden.T @ grad_scores
        params["b2"] -= lr * grad_scores.sum(axis=0)
        params["w1"] -= lr * x[train].T @ grad_hidden
        params["b1"] -= lr * grad_hidden.sum(axis=0)

        _, val_probs = forward(params, x[held_out])
        val_loss, val_accuracy = loss_and_accuracy(val_probs, y[held_out])
        if args.fail_at == step:
            print(f"step {step}: giving up (--fail-at)", file=sys.stderr, flush=True)
            if args.push:
                out.finish("failed", "fail_at")
            sys.exit(1)
        if args.hang_at == step:
            print(f"step {step}: hanging (--hang-at)", flush=True)
            while True:
                time.sleep(1)
        point = {"step": step, "loss": "NaN" if args.nan_at == step else loss,
                 "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy,
                 "lr": lr}
        out.write(json.dumps(point) + "\n")
        if step % 50 == 0:
            print(f"step {step}: loss {loss:.4f} accuracy {accuracy:.3f} "
                  f"val_loss {val_loss:.4f} val_accuracy {val_accuracy:.3f}", flush=True)
        time.sleep(args.step_seconds)
    if args.push:
        out.finish("complete")


if __name__ == "__main__":
    main()
