#!/usr/bin/env python3
"""PPO loss step: rlhf (C++/LibTorch, common/algo) vs the same computation with TRL, same run.

One step = per-token logprobs and entropies from [B, T, V] float32 logits, the clipped policy
loss, the clipped value loss and an entropy bonus (coef 0.01), then backward into the logits
(a leaf with requires_grad, standing in for the LM output) and a [B, T] values leaf.
The TRL side uses trl.trainer.utils.selective_log_softmax and entropy_from_logits and the
loss block of PPOTrainer.train (masked_mean from trl.core). Both sides draw identical inputs
(the same CPU generator and seed), so the losses they print must agree.

Each side runs one warm-up and --repeats timed steps, interleaved (the C++ binary runs in
--interactive mode and steps when told to), so that both see the same machine load; the
fastest and the median step of each are kept. Prints both times, both thread counts and the
ratio trl / rlhf (> 1: rlhf is faster). --sequential runs the C++ binary to completion first
instead (needs only one side's memory at a time).

Reference: trl==0.24.0, torch==2.9.1 (pinned in scripts/install_deps.sh).
Run: .venv/bin/python tests/bench/ppo_loss_bench.py [--batch 32 --seq 512 --vocab 32000]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import trl
from trl.core import masked_mean
from trl.trainer.utils import entropy_from_logits, selective_log_softmax

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVALID_LOGPROB = 1.0


def make_inputs(b, t, v, seed):
    # Same draws, same order as ppo_loss_bench.cc.
    torch.manual_seed(seed)
    logits = torch.randn(b, t, v).requires_grad_(True)
    targets = torch.randint(0, v, (b, t))
    lengths = torch.randint(1, t + 1, (b,))
    old_logprobs = -torch.rand(b, t) * 12
    advantages = torch.randn(b, t)
    values = torch.randn(b, t).requires_grad_(True)
    old_values = torch.randn(b, t)
    returns = torch.randn(b, t)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    value_mask = torch.arange(t).unsqueeze(0) < (lengths + 1).unsqueeze(1)
    return logits, targets, old_logprobs, advantages, values, old_values, returns, mask, value_mask


def trl_step(logits, targets, old_logprobs, advantages, values, old_values, returns, mask, value_mask,
             cliprange=0.2, cliprange_value=0.2, vf_coef=0.1, entropy_coef=0.01):
    """TRL 0.24 PPOTrainer.train minibatch block (ppo_trainer.py), plus an entropy bonus."""
    padding_mask, padding_mask_p1 = ~mask, ~value_mask
    new_logprobs = selective_log_softmax(logits, targets)
    new_logprobs = torch.masked_fill(new_logprobs, padding_mask, INVALID_LOGPROB)
    mb_logprobs = torch.masked_fill(old_logprobs, padding_mask, INVALID_LOGPROB)
    entropy = entropy_from_logits(logits)
    vpred = torch.masked_fill(values, padding_mask_p1, 0)
    vpredclipped = torch.clamp(vpred, old_values - cliprange_value, old_values + cliprange_value)
    vf_losses1 = torch.square(vpred - returns)
    vf_losses2 = torch.square(vpredclipped - returns)
    vf_loss = 0.5 * masked_mean(torch.max(vf_losses1, vf_losses2), ~padding_mask_p1)
    logprobs_diff = new_logprobs - mb_logprobs
    ratio = torch.exp(logprobs_diff)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), ~padding_mask)
    loss = pg_loss + vf_coef * vf_loss - entropy_coef * masked_mean(entropy, ~padding_mask)
    loss.backward()
    return loss


class TrlSide:
    def __init__(self, args):
        self.inputs = make_inputs(args.batch, args.seq, args.vocab, args.seed)
        self.loss = None

    def step(self):
        logits, values = self.inputs[0], self.inputs[4]
        logits.grad = None
        values.grad = None
        start = time.perf_counter()
        self.loss = trl_step(*self.inputs)
        return time.perf_counter() - start

    def summary(self, times):
        return {"impl": "trl", "seconds": min(times), "median": statistics.median(times),
                "threads": torch.get_num_threads(), "loss": self.loss.item(),
                "grad_abs_sum": self.inputs[0].grad.abs().sum().item()}


def cxx_command(args, *extra):
    return [args.binary, "--batch", str(args.batch), "--seq", str(args.seq), "--vocab", str(args.vocab),
            "--repeats", str(args.repeats), "--threads", str(args.threads), "--seed", str(args.seed), *extra]


def run_interleaved(args):
    proc = subprocess.Popen(cxx_command(args, "--interactive"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready", "ppo_loss_bench did not start"
    trl_side = TrlSide(args)
    ours, theirs = [], []
    for r in range(args.repeats + 1):  # round 0 warms up
        time.sleep(0.1)  # let the other side's OpenMP threads stop spinning
        proc.stdin.write("step\n")
        proc.stdin.flush()
        seconds = json.loads(proc.stdout.readline())["seconds"]
        time.sleep(0.1)
        trl_seconds = trl_side.step()
        if r > 0:
            ours.append(seconds)
            theirs.append(trl_seconds)
    proc.stdin.close()
    summary = json.loads(proc.stdout.readline())
    if proc.wait() != 0:
        sys.exit("ppo_loss_bench failed")
    summary.update(seconds=min(ours), median=statistics.median(ours))
    return summary, trl_side.summary(theirs)


def run_sequential(args):
    ours = json.loads(subprocess.run(cxx_command(args), check=True, capture_output=True, text=True).stdout)
    ours["median"] = ours["seconds"]
    trl_side = TrlSide(args)
    times = [trl_side.step() for _ in range(args.repeats + 1)][1:]
    return ours, trl_side.summary(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "bench", "ppo_loss_bench"))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequential", action="store_true", help="C++ first, then TRL (less memory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"PPO loss step, batch {args.batch} x {args.seq} tokens x {args.vocab} vocab (float32), "
          f"trl {trl.__version__}, torch {torch.__version__}")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: build the ppo_loss_bench target first")
    ours, theirs = run_sequential(args) if args.sequential else run_interleaved(args)
    for r in (ours, theirs):
        print(f"  {r['impl']:>5}: best {r['seconds'] * 1e3:9.1f} ms/step  median {r['median'] * 1e3:9.1f}  "
              f"threads {r['threads']}  loss {r['loss']:.6f}  |grad| {r['grad_abs_sum']:.4f}")
    rel = abs(ours["loss"] - theirs["loss"]) / max(1.0, abs(theirs["loss"]))
    print(f"  loss agreement: {rel:.2e} (relative)")
    print(f"  ratio trl / rlhf: {theirs['seconds'] / ours['seconds']:.2f}x best, "
          f"{theirs['median'] / ours['median']:.2f}x median (> 1: rlhf faster)")
    if rel > 1e-4:
        sys.exit("losses disagree")


if __name__ == "__main__":
    main()
