#!/usr/bin/env python3
"""Decode throughput: rlhf (C++/LibTorch) vs transformers' generate, same run.

A GPT-2-small-shaped model (124M parameters, random weights, fixed seed, no EOS so every
row generates exactly --new-tokens) is written once to build/bench/gpt2-small. Both
implementations decode greedily from the same 64-token prompts with the same thread
count. The two alternate for --rounds rounds (rlhf, transformers, rlhf, ...) so that a
load spike on this shared machine hits both; each round times every batch size once after
a warm-up, and the fastest run of each side is kept. Prints tokens/s of both and the
ratio (rlhf / transformers; > 1 means rlhf is faster).

--device cuda[:N] runs both on that GPU (float32, TF32 off on both sides); the C++ side
needs a -DRLHF_WITH_CUDA=ON build (--build build-gpu, see tests/gpu/run_gpu_checks.sh).

Reference: transformers==4.57.1, torch==2.9.1 (pinned in scripts/install_deps.sh).
Run: .venv/bin/python tests/bench/generation_bench.py   (after scripts/build.sh)
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_model(path):
    if os.path.exists(os.path.join(path, "config.json")):
        return
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024,
                                     vocab_size=50257, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(path, safe_serialization=True)


def bench_transformers(model, prompts, batch, new_tokens, repeats):
    device = model.device
    ids = torch.tensor(prompts[:batch], device=device)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  pad_token_id=0, attention_mask=torch.ones_like(ids))
    best = float("inf")
    with torch.inference_mode():
        for r in range(repeats + 1):  # run 0 warms up
            start = time.perf_counter()
            out = model.generate(ids, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            if r > 0:
                best = min(best, seconds)
    assert out.shape[1] == ids.shape[1] + new_tokens
    return {"impl": "transformers", "batch": batch, "seconds": best,
            "tokens_per_second": batch * new_tokens / best, "threads": torch.get_num_threads(),
            "first_row": out[0, ids.shape[1]:].tolist()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both sides)")
    args = parser.parse_args()

    model_dir = os.path.join(args.build, "bench", "gpt2-small")
    make_model(model_dir)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    gen = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, 50257, (max(batches), args.prompt_tokens), generator=gen).tolist()
    prompts_file = os.path.join(args.build, "bench", "prompts.json")
    with open(prompts_file, "w") as f:
        json.dump({"prompts": prompts}, f)

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # LibTorch's default, as in C++
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(model_dir).eval().to(device)
    ours, ref = {}, {}
    for _ in range(args.rounds):
        out = subprocess.run(
            [os.path.join(args.build, "bench", "generation_bench"), "--model", model_dir,
             "--prompts", prompts_file, "--batch-sizes", args.batch_sizes,
             "--new-tokens", str(args.new_tokens), "--repeats", "1",
             "--device", args.device, "--dtype", "float32"],
            check=True, capture_output=True, text=True).stdout
        for r in map(json.loads, out.splitlines()):
            if r["batch"] not in ours or r["seconds"] < ours[r["batch"]]["seconds"]:
                ours[r["batch"]] = r
        for batch in batches:
            r = bench_transformers(hf_model, prompts, batch, args.new_tokens, 1)
            if batch not in ref or r["seconds"] < ref[batch]["seconds"]:
                ref[batch] = r

    print(f"decode throughput, GPT-2 small (124M, fp32, {args.device}), "
          f"prompt {args.prompt_tokens}, "
          f"{args.new_tokens} new tokens, greedy; transformers {transformers.__version__}, "
          f"torch {torch.__version__}")
    print(f"{'batch':>5} {'rlhf tok/s':>11} {'hf tok/s':>10} {'ratio':>7} {'threads':>8} "
          f"{'same tokens':>12}")
    worst = float("inf")
    for batch in batches:
        mine = ours[batch]
        ratio = mine["tokens_per_second"] / ref[batch]["tokens_per_second"]
        worst = min(worst, ratio)
        theirs = ref[batch]
        same = sum(a == b for a, b in zip(mine["first_row"], theirs["first_row"]))
        print(f"{batch:>5} {mine['tokens_per_second']:>11.1f} {theirs['tokens_per_second']:>10.1f} "
              f"{ratio:>6.2f}x {mine['threads']:>4}/{theirs['threads']:<3} "
              f"{same:>5}/{len(theirs['first_row'])}")
    print(f"worst ratio: {worst:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
