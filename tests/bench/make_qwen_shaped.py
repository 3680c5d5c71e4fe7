#!/usr/bin/env python3
"""Writes a random checkpoint with the shape of Qwen2.5-0.5B (494M parameters: 24 layers,
hidden 896, 14 query / 2 key-value heads, MLP 4864, vocabulary 151936, tied embeddings,
q/k/v biases) in Hugging Face layout, float32 or bfloat16 (--dtype), with transformers'
own initialisation from a fixed seed. The speed and memory benchmarks measure at this
shape (no download: the weights are random, the architecture is Qwen2's).

Run: .venv/bin/python tests/bench/make_qwen_shaped.py OUT_DIR [--dtype float32|bfloat16]
"""
import argparse
import os
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--layers", type=int, default=24, help="fewer for a quick look")
    args = p.parse_args()
    if os.path.exists(os.path.join(args.out, "model.safetensors")):
        print(f"{args.out}: exists")
        return 0
    import torch
    import transformers
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864,
        num_hidden_layers=args.layers, num_attention_heads=14, num_key_value_heads=2,
        max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=True, hidden_act="silu", bos_token_id=151643,
        eos_token_id=151643)
    model = transformers.Qwen2ForCausalLM(config).to(getattr(torch, args.dtype)).eval()
    model.save_pretrained(args.out, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: Qwen2.5-0.5B shape, {n / 1e6:.0f}M parameters, {args.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
