#!/usr/bin/env python3
"""PPO iteration time: `rlhf local` (every service in one process, in-process gRPC) vs
the five binaries as separate processes on loopback, same job, same run; and the weight
sync (actor.ExportWeights streamed into rollout.LoadWeights) vs a plain in-memory copy
of the same bytes.

The model is a GPT-2 with 4 layers x 256 wide (3.4M parameters, 13.6 MB fp32, random
weights, the bundled tiny tokenizer), written once to build/bench/gpt2-4x256. The job:
PPO, 8 prompts x 32 new tokens, 2 PPO epochs x 2 minibatches, --iterations iterations.
Both modes run --rounds times, alternating (local, distributed, local, ...) so that a load
spike on this shared machine hits both; per mode the fastest round's mean iteration time
(iterations after the first) is kept. Stage seconds come from the coordinator's job store
(SQLite metrics history), the same numbers /metrics exports.

Run: .venv/bin/python tests/bench/iteration_bench.py   (after scripts/build.sh)
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "build", "bin")
STAGES = ["generate", "reference", "score", "evaluate", "train", "sync", "iteration"]


def make_model(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return
    import torch
    import transformers
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=256, n_layer=4, n_head=4, n_positions=256,
                                     vocab_size=501, bos_token_id=500, eos_token_id=500)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(path, safe_serialization=True)
    tiny = os.path.join(ROOT, "examples", "models", "tiny-gpt2")
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(tiny, name), path)


def write_job(work, model, iterations, endpoints=None):
    prompts = os.path.join(work, "prompts.jsonl")
    with open(prompts, "w") as f:
        for i in range(64):
            f.write(json.dumps({"prompt": f"prompt number {i} about the sea and the sky"}) + "\n")
    job = {
        "name": "bench", "algorithm": "ppo",
        "models": {"policy_dir": model},
        "data": {"train_path": prompts},
        "optimizer": {"learning_rate": 1e-5},
        "training": {"batch_size": 8, "minibatch_size": 4, "ppo_epochs": 2,
                     "iterations": iterations},
        "generation": {"max_prompt_tokens": 32, "max_response_tokens": 32},
        "reward": {"kind": "length", "target_length": 16},
        "checkpoint": {"dir": os.path.join(work, "ckpt"), "interval": 0},
        "runtime": {"seed": 11},
    }
    if endpoints:
        job["endpoints"] = endpoints
    path = os.path.join(work, "job.json")
    with open(path, "w") as f:
        json.dump(job, f)
    return path


def stage_means(db):
    """Mean seconds per stage over iterations 2.. (the first one warms up)."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT iteration, name, value FROM metrics WHERE iteration > 1").fetchall()
    sync_bytes = [v for _, n, v in rows if n == "sync_bytes"]
    con.close()
    out = {}
    for stage in STAGES:
        values = [v for _, n, v in rows if n == f"time_{stage}_seconds"]
        out[stage] = sum(values) / len(values) if values else float("nan")
    out["sync_bytes"] = sync_bytes[0] if sync_bytes else 0
    return out


def run_local(work, model, iterations):
    db = os.path.join(work, "local.sqlite")
    job = write_job(work, model, iterations)
    subprocess.run([os.path.join(BIN, "rlhf"), "local", job, "--state-db", db], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return stage_means(db)


def start(work, name, args, core=None):
    """Starts build/bin/NAME on a free loopback port (pinned to `core` with taskset when
    given); returns the process and its address."""
    log = open(os.path.join(work, f"{name}.log"), "w+")
    pin = ["taskset", "-c", str(core)] if core is not None else []
    proc = subprocess.Popen(pin + [os.path.join(BIN, name)] + args +
                            ["--listen", "127.0.0.1:0", "--metrics-listen", ""],
                            stdout=log, stderr=log)
    for _ in range(600):
        log.seek(0)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read())
        if match:
            return proc, f"127.0.0.1:{match.group(1)}"
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


def run_distributed(work, model, iterations):
    db = os.path.join(work, "distributed.sqlite")
    procs = []
    try:
        actor, a = start(work, "rlhf-actor", ["--model", model, "--checkpoint-root", work])
        rollout, r = start(work, "rlhf-rollout", ["--model", model])
        reference, f = start(work, "rlhf-reference", ["--model", model])
        reward, w = start(work, "rlhf-reward", ["--scorer", "length", "--target-length", "16"])
        # Job paths are confined to these roots (the model lives under build/bench).
        coordinator, c = start(work, "rlhf-coordinator", ["--state-db", db, "--data-root", "/",
                                                          "--checkpoint-root", work])
        procs = [actor, rollout, reference, reward, coordinator]
        job = write_job(work, model, iterations,
                        {"actor": a, "rollout": [r], "reference": f, "reward": w})
        run_job(c, job, "the distributed job")
    finally:
        stop(procs)
    return stage_means(db)


def run_job(coordinator, job, what):
    """Submits `job` and watches it to the end; raises with its output if it fails."""
    rlhf = os.path.join(BIN, "rlhf")
    job_id = subprocess.run([rlhf, "submit", job, "--coordinator", coordinator], check=True,
                            capture_output=True, text=True).stdout.strip()
    watched = subprocess.run([rlhf, "watch", job_id, "--coordinator", coordinator],
                             capture_output=True, text=True)
    if watched.returncode != 0:
        raise RuntimeError(f"{what} failed: {watched.stdout[-2000:]}{watched.stderr[-2000:]}")


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def memcpy_seconds(nbytes, repeats=20):
    src = np.random.default_rng(0).integers(0, 255, size=int(nbytes), dtype=np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = os.path.join(ROOT, "build", "bench", "gpt2-4x256")
    make_model(model)
    best = {}
    for round_index in range(args.rounds):
        for mode, fn in [("local", run_local), ("distributed", run_distributed)]:
            work = tempfile.mkdtemp(prefix=f"rlhf-bench-{mode}-")
            try:
                result = fn(work, model, args.iterations)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"round {round_index + 1} {mode}: {result['iteration']:.3f} s/iteration",
                  file=sys.stderr)
            if mode not in best or result["iteration"] < best[mode]["iteration"]:
                best[mode] = result
    local, dist = best["local"], best["distributed"]
    print(f"PPO iteration, GPT-2 4x256 (13.6 MB), 8 prompts x 32 tokens, "
          f"{args.iterations} iterations, best of {args.rounds} rounds")
    print(f"{'stage':<10} {'local s':>9} {'distributed s':>14} {'ratio':>7}")
    for stage in STAGES:
        ratio = dist[stage] / local[stage] if local[stage] > 0 else float("nan")
        print(f"{stage:<10} {local[stage]:>9.4f} {dist[stage]:>14.4f} {ratio:>6.2f}x")
    print(f"iteration time ratio distributed/local: {dist['iteration'] / local['iteration']:.3f}x "
          f"(target <= 1.10x)")
    nbytes = dist["sync_bytes"]
    copy = memcpy_seconds(nbytes)
    for mode, result in [("local", local), ("distributed", dist)]:
        print(f"weight sync {mode}: {nbytes / 1e6:.1f} MB in {result['sync'] * 1e3:.1f} ms = "
              f"{result['sync'] / copy:.1f}x a plain in-memory copy ({copy * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
