#!/usr/bin/env python3
"""The actor's training step at a real size: seconds per optimizer step and peak RSS for
a Qwen2.5-0.5B-shaped random model (tests/bench/make_qwen_shaped.py), fp32 vs
bf16-mixed, with and without gradient checkpointing and micro-batching, and the actor's
bytes per parameter; and the same step in PyTorch (transformers Qwen2ForCausalLM, AdamW,
torch.autocast bf16, gradient_checkpointing_enable) measured in the same run.
With --device cuda[:N] both run on that GPU and the memory column is the process's peak
GPU memory as nvidia-smi reports it (polled every 0.1 s; CUDA context included) instead
of peak RSS.

Each setting runs in its own process (peak RSS only grows): one warm-up step, then
--steps timed steps. The step: a policy-gradient loss (GRPO at ratio 1: -A * logprob, token
mean) over --rows sequences of --prompt-tokens + --response-tokens random ids, one AdamW
step. Prints a Markdown table.

Run: .venv/bin/python tests/bench/train_step_bench.py   (after scripts/build.sh)
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SETTINGS = [  # (precision, checkpointing, micro-batch tokens as a fraction of the batch)
    ("fp32", False, 0), ("fp32", True, 0), ("fp32", False, 4), ("fp32", True, 4),
    ("bf16-mixed", False, 0),  # (on CPUs without AVX512-BF16/AMX, bf16 matmuls are slow)
]
PEER_SETTINGS = [("fp32", False), ("fp32", True), ("bf16-mixed", False)]


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def torch_step(args):
    """One setting of the PyTorch peer, in this (child) process; prints a JSON line."""
    import torch
    import transformers
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = transformers.Qwen2ForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.to(device).train()
    model.config.use_cache = False
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    g = torch.Generator().manual_seed(7)
    vocab = model.config.vocab_size
    length = args.prompt_tokens + args.response_tokens
    ids = torch.randint(0, vocab, (args.rows, length), generator=g).to(device)
    adv = torch.randn(args.rows, args.response_tokens, generator=g).to(device)
    seconds = []
    for _ in range(args.steps + 1):
        start = time.time()
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.precision == "bf16-mixed"):
            logits = model(input_ids=ids).logits[:, args.prompt_tokens - 1:-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, args.prompt_tokens:, None])[..., 0]
        loss = -(adv * logp).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        loss.item()  # waits for the device
        seconds.append(time.time() - start)
    print(json.dumps({"load_rss_mib": load_rss,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "seconds_per_step": sum(seconds[1:]) / max(1, len(seconds) - 1)}))


def gpu_memory_mib(pid):
    """The GPU memory nvidia-smi reports for process `pid` (0 when it has none yet)."""
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
    return sum(float(m) for p, m in (line.split(",") for line in out.splitlines() if "," in line)
               if int(p) == pid)


def run_json(command, gpu=False):
    """Runs one setting; on a GPU its peak GPU memory replaces peak RSS (peak_rss_mib)."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak_gpu = 0.0
    while gpu and child.poll() is None:
        peak_gpu = max(peak_gpu, gpu_memory_mib(child.pid))
        time.sleep(0.1)
    out = child.communicate()[0]
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    r = json.loads(out.strip().splitlines()[-1])
    if gpu:
        r["peak_rss_mib"] = peak_gpu
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=os.path.join(ROOT, "build", "bench", "qwen2.5-0.5b-shape"))
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--prompt-tokens", type=int, default=16)
    p.add_argument("--response-tokens", type=int, default=48)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--no-peer", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both runtimes)")
    p.add_argument("--precisions", default="fp32,bf16-mixed",
                   help="the precisions to run (fp32 alone skips the slow CPU bf16 rows)")
    p.add_argument("--plain-only", action="store_true",
                   help="only the settings without checkpointing or micro-batching")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_child:
        return torch_step(args)
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "make_qwen_shaped.py"),
                    args.model], check=True)
    shape = ["--rows", str(args.rows), "--prompt-tokens", str(args.prompt_tokens),
             "--response-tokens", str(args.response_tokens), "--steps", str(args.steps)]
    batch_tokens = args.rows * (args.prompt_tokens + args.response_tokens)
    gpu = args.device.startswith("cuda")
    where = (f"{__import__('torch').cuda.get_device_name(args.device)}" if gpu
             else f"{os.cpu_count()} threads on {cpu_name()}")
    memory = "peak GPU GiB" if gpu else "peak RSS GiB"
    rows = []
    adamw_line = ""
    precisions = args.precisions.split(",")
    for precision, checkpointing, parts in SETTINGS:
        if precision not in precisions or (args.plain_only and (checkpointing or parts)):
            continue
        command = [os.path.join(args.build, "bench", "train_step_bench"), "--model", args.model,
                   "--precision", precision, "--device", args.device] + shape
        if checkpointing:
            command.append("--checkpointing")
        if parts:
            command += ["--microbatch-tokens", str(batch_tokens // parts)]
        if not rows:
            command.append("--compare-adamw")
        r = run_json(command, gpu)
        if r.get("adamw"):
            a = r["adamw"]
            adamw_line = (f"AdamW update alone over every parameter: torch::optim::AdamW::step "
                          f"{a['torch_s']:.3f} s, FusedAdamWStep {a['fused_s']:.3f} s "
                          f"({a['torch_s'] / a['fused_s']:.1f}x)")
        rows.append(("rlhf", precision, checkpointing,
                     f"{batch_tokens // parts}" if parts else "-", r))
        print(f"rlhf {precision} ckpt={checkpointing} micro={parts}: {r}", file=sys.stderr)
    if not args.no_peer:
        for precision, checkpointing in PEER_SETTINGS:
            if precision not in precisions or (args.plain_only and checkpointing):
                continue
            command = [sys.executable, os.path.abspath(__file__), "--torch-child",
                       "--model", args.model, "--precision", precision,
                       "--device", args.device] + shape
            if checkpointing:
                command.append("--checkpointing")
            r = run_json(command, gpu)
            rows.append(("torch", precision, checkpointing, "-", r))
            print(f"torch {precision} ckpt={checkpointing}: {r}", file=sys.stderr)
    params = next(r for *_, r in rows if "parameters" in r)["parameters"]
    print(f"Training step, Qwen2.5-0.5B shape ({params / 1e6:.0f}M parameters, random), "
          f"{args.rows} x {args.prompt_tokens}+{args.response_tokens} tokens, GRPO loss, AdamW; "
          f"{where}; torch {__import__('torch').__version__}\n")
    print(f"| runtime | precision | checkpointing | micro-batch tokens | s / step | {memory} "
          "| bytes / parameter |")
    print("|---|---|---|---|---|---|---|")
    for who, precision, checkpointing, micro, r in rows:
        print(f"| {who} | {precision} | {'yes' if checkpointing else 'no'} | {micro} | "
              f"{r['seconds_per_step']:.1f} | {r['peak_rss_mib'] / 1024:.2f} | "
              f"{r['peak_rss_mib'] * 2**20 / params:.1f} |")
    if adamw_line:
        print("\n" + adamw_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
