#!/usr/bin/env python3
"""The same GRPO job with runtime.max_policy_lag 0 (generate, judge, train, sync in turn)
and 1 (batch k+1 is sampled while batch k trains), the five services as separate
processes on loopback, the rollout pinned to core 0 and the actor to core 1 with taskset
(the reference, reward and coordinator float). Prints seconds per iteration (iterations
after the first) and the reward curve side by side; the pipelined run must reach the same
reward within noise.

Model: iteration_bench.py's GPT-2 4x256 (random weights, build/bench/gpt2-4x256). Job:
GRPO, 8 prompts x 4 samples x 32 new tokens, one on-policy step per batch, length reward
(target 16), in-loss k3 KL 0.04, TIS cap 2 (the pipelined run's samples are one step old).

Run: .venv/bin/python tests/bench/pipeline_bench.py [--iterations 10] [--rounds 1]
(after scripts/build.sh; needs 2 cores for the pinning).
"""
import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iteration_bench import ROOT, make_model, run_job, start, stop  # noqa: E402


def write_job(work, model, iterations, lag, endpoints):
    prompts = os.path.join(work, "prompts.jsonl")
    with open(prompts, "w") as f:
        for i in range(64):
            f.write(json.dumps({"prompt": f"prompt number {i} about the sea and the sky"}) + "\n")
    job = {
        "name": f"pipeline-lag{lag}", "algorithm": "grpo",
        "models": {"policy_dir": model},
        "data": {"train_path": prompts},
        "optimizer": {"learning_rate": 2e-4},
        "training": {"batch_size": 8, "ppo_epochs": 1, "iterations": iterations},
        "generation": {"max_prompt_tokens": 32, "max_response_tokens": 32,
                       "samples_per_prompt": 4},
        "kl": {"coef": 0.04},
        "ppo": {"tis_cap": 2.0},
        "reward": {"kind": "length", "target_length": 16},
        "checkpoint": {"dir": os.path.join(work, "ckpt"), "interval": 0},
        "runtime": {"seed": 11, "max_policy_lag": lag},
        "endpoints": endpoints,
    }
    path = os.path.join(work, "job.json")
    with open(path, "w") as f:
        json.dump(job, f)
    return path


def run(work, model, iterations, lag):
    db = os.path.join(work, "jobs.sqlite")
    procs = []
    try:
        actor, a = start(work, "rlhf-actor", ["--model", model, "--checkpoint-root", work], core=1)
        rollout, r = start(work, "rlhf-rollout", ["--model", model], core=0)
        reference, f = start(work, "rlhf-reference", ["--model", model])
        reward, w = start(work, "rlhf-reward", ["--scorer", "length"])
        coordinator, c = start(work, "rlhf-coordinator", ["--state-db", db, "--data-root", "/",
                                                          "--checkpoint-root", work])
        procs = [actor, rollout, reference, reward, coordinator]
        job = write_job(work, model, iterations, lag,
                        {"actor": a, "rollout": [r], "reference": f, "reward": w})
        run_job(c, job, f"the lag {lag} job")
    finally:
        stop(procs)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT iteration, name, value FROM metrics").fetchall()
    con.close()
    per = {}
    for it, name, value in rows:
        per.setdefault(it, {})[name] = value
    its = sorted(per)
    later = [per[i] for i in its if i > 1]

    def mean(name):
        values = [m.get(name, 0.0) for m in later]
        return sum(values) / len(values) if values else float("nan")

    return {"iteration": mean("time_iteration_seconds"),
            "generate": mean("time_generate_seconds"),
            "train": mean("time_train_seconds"),
            "wait": mean("time_generate_wait_seconds"),
            "rewards": [per[i]["reward_mean"] for i in its],
            "lags": [per[i].get("policy_lag", 0) for i in its]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("pipeline_bench pins the rollout and the actor to cores 0 and 1: needs 2 cores")
    model = os.path.join(ROOT, "build", "bench", "gpt2-4x256")
    make_model(model)
    best = {}
    for round_index in range(args.rounds):
        for lag in (0, 1):
            work = tempfile.mkdtemp(prefix=f"rlhf-pipeline-{lag}-")
            try:
                result = run(work, model, args.iterations, lag)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"round {round_index + 1} lag {lag}: {result['iteration']:.3f} s/iteration",
                  file=sys.stderr)
            if lag not in best or result["iteration"] < best[lag]["iteration"]:
                best[lag] = result
    sync, pipe = best[0], best[1]
    print(f"GRPO, GPT-2 4x256, 8 prompts x 4 samples x 32 tokens, {args.iterations} iterations, "
          f"separate processes, rollout on core 0, actor on core 1; best of {args.rounds}")
    print(f"{'':<24} {'lag 0':>8} {'lag 1':>8}")
    for key in ("iteration", "generate", "train", "wait"):
        print(f"{key + ' s':<24} {sync[key]:>8.3f} {pipe[key]:>8.3f}")
    print(f"iteration time lag 1 / lag 0: {pipe['iteration'] / sync['iteration']:.3f}x "
          f"(speed-up {sync['iteration'] / pipe['iteration']:.2f}x)")
    print(f"{'iteration':<10} {'reward lag 0':>13} {'reward lag 1':>13} {'policy lag':>11}")
    for i, (a, b, lag) in enumerate(zip(sync["rewards"], pipe["rewards"], pipe["lags"])):
        print(f"{i + 1:<10} {a:>13.4f} {b:>13.4f} {lag:>11.0f}")
    tail = max(1, len(sync["rewards"]) // 3)
    print(f"mean reward of the last {tail} iterations: lag 0 {sum(sync['rewards'][-tail:]) / tail:.4f}"
          f", lag 1 {sum(pipe['rewards'][-tail:]) / tail:.4f}")


if __name__ == "__main__":
    main()
