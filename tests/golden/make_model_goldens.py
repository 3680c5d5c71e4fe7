#!/usr/bin/env python3
"""Makes the tiny model fixtures and goldens that tests/unit/model/ compares against.

Reference versions (asserted below): torch==2.9.1, transformers==4.57.1, safetensors==0.6.2
(PyPI), and trl==0.24.0 for the value-head check; run on CPU in float32. Run from the repository root, no network access needed:

    .venv/bin/python tests/golden/make_model_goldens.py [--roundtrip-bin PATH | --skip-roundtrip]
    .venv/bin/python tests/golden/make_model_goldens.py --padded-vocab-only   # step 5 alone

What it does, deterministically (fixed seeds, no downloads):
  1. Builds tiny random checkpoints with transformers (hidden 32, 2 layers, vocab 512,
     initializer_range 0.2 so that logits are well spread and greedy choices are not
     near-ties) and saves each with save_pretrained(safe_serialization=True) into
     tests/golden/fixtures/models/<name>/:
       gpt2         GPT2LMHeadModel (gelu_new, tied, Conv1D weights); ships the gpt2
                    tokenizer fixture when tests/golden/fixtures/tokenizers/gpt2 exists.
       llama        LlamaForCausalLM, GQA (4 heads, 2 kv heads), untied, Llama-3 rope_scaling
                    with original_max_position_embeddings 32 so every branch of
                    _compute_llama3_parameters is taken.
       qwen2        Qwen2ForCausalLM (q/k/v bias), tied embeddings.
       mistral      MistralForCausalLM, 1 kv head, head_dim 16 != hidden/heads, sliding_window
                    8 (shorter than the prompts, so the window mask matters).
       llama-seqcls LlamaForSequenceClassification, num_labels 1, pad_token_id 0.
  2. Records, in fixtures/models/goldens.json and goldens.safetensors, for 3 prompts of
     different lengths (5, 11, 19): the input ids; full-forward logits (fp32) of the last
     position and 3 sampled positions of each prompt, elementwise, plus the sum and the sum
     of absolute values of all logits as a checksum; greedy continuations of 16 tokens with
     generate(do_sample=False) (one prompt at a time) and the smallest top-1/top-2 logit
     margin met on the way; RoPE inv_freq of the Llama-family models; and for llama-seqcls
     the scores (right-padded batch, as transformers pads).
  3. Round trip: runs our C++ tool `rlhf_model_roundtrip IN OUT` (load + SavePretrained),
     loads OUT with transformers and checks logits equal the original model's within 1e-5,
     once as a single file and once sharded (a small --max-shard-bytes); and checks that a
     llama saved with our value head (--value-head) loads in TRL's
     AutoModelForCausalLMWithValueHead with the same v_head.summary weights and logits.
  4. Writes examples/models/tiny-gpt2/: a random GPT-2 (n_embd 64, 2 layers, 4 heads,
     n_positions 256) with the gpt2 tokenizer fixture, the bundled model for `rlhf generate`.
  5. Writes fixtures/models/gpt2-padded-vocab/: a random GPT-2 (like gpt2 above) with the
     gpt2 tokenizer fixture whose embedding has 64 rows more than the tokenizer has tokens,
     as every Qwen2/2.5 checkpoint does (151936 rows, 151665 tokens). The padded rows are
     made likely (a shared direction added to them and to ln_f's bias; the embedding is
     tied, so to the lm_head too): 2/3 or more of the sampled ids at temperature 1 have no
     token, so `rlhf generate` and `rlhf eval` on it must drop them when decoding, as
     tokenizers does (tests/integration/cli_generate_test.sh).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import safetensors
import safetensors.torch
import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

VERSIONS = {"torch": "2.9.1", "transformers": "4.57.1", "safetensors": "0.6.2"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "golden", "fixtures", "models")
TOKENIZERS = os.path.join(ROOT, "tests", "golden", "fixtures", "tokenizers")
EXAMPLE = os.path.join(ROOT, "examples", "models", "tiny-gpt2")
PADDED_VOCAB = os.path.join(FIXTURES, "gpt2-padded-vocab")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

VOCAB = 512
PROMPT_LENGTHS = [5, 11, 19]
NEW_TOKENS = 16
SAMPLED_POSITIONS = 3
ROUNDTRIP_TOLERANCE = 1e-5
PADDED_ROWS = 64  # embedding rows beyond the tokenizer's ids
PADDED_SHIFT = (2.5, 1.0)  # |ln_f.bias| and the padded rows' shift, along one direction
PADDED_MASS = (0.5, 0.9)  # wanted mean probability of a padded id per sampled token


def check_versions():
    found = {
        "torch": torch.__version__.split("+")[0],
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
    }
    if found != VERSIONS:
        sys.exit(f"version mismatch: want {VERSIONS}, found {found}")


def common_llama_kwargs():
    return dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        initializer_range=0.2,
        bos_token_id=1,
        eos_token_id=2,
    )


def model_specs():
    """(name, seed, constructor) for each fixture."""
    return [
        (
            "gpt2",
            1,
            lambda: GPT2LMHeadModel(
                GPT2Config(
                    vocab_size=VOCAB,
                    n_embd=32,
                    n_layer=2,
                    n_head=4,
                    n_positions=128,
                    initializer_range=0.2,
                    bos_token_id=500,
                    eos_token_id=500,
                )
            ),
        ),
        (
            "llama",
            2,
            lambda: LlamaForCausalLM(
                LlamaConfig(
                    **common_llama_kwargs(),
                    num_key_value_heads=2,
                    tie_word_embeddings=False,
                    rope_theta=500000.0,
                    rope_scaling={
                        "rope_type": "llama3",
                        "factor": 8.0,
                        "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 32,
                    },
                )
            ),
        ),
        (
            "qwen2",
            3,
            lambda: Qwen2ForCausalLM(
                Qwen2Config(
                    **common_llama_kwargs(),
                    num_key_value_heads=2,
                    tie_word_embeddings=True,
                    rope_theta=1000000.0,
                )
            ),
        ),
        (
            "mistral",
            4,
            lambda: MistralForCausalLM(
                MistralConfig(
                    **common_llama_kwargs(),
                    num_key_value_heads=1,
                    head_dim=16,
                    sliding_window=8,
                    tie_word_embeddings=False,
                )
            ),
        ),
        (
            "llama-seqcls",
            5,
            lambda: LlamaForSequenceClassification(
                LlamaConfig(
                    **common_llama_kwargs(),
                    num_key_value_heads=2,
                    num_labels=1,
                    pad_token_id=0,
                )
            ),
        ),
    ]


def make_prompts():
    generator = torch.Generator().manual_seed(1234)
    # Ids from 3: below are pad (0), bos (1) and eos (2) of the Llama-style fixtures.
    return [torch.randint(3, 500, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]


def full_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def greedy(model, ids):
    """16 greedy tokens with generate(), and the smallest top-1/top-2 margin on the way."""
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=model.generation_config.eos_token_id,
        )
    margins = [float((s[0].topk(2).values[0] - s[0].topk(2).values[1])) for s in out.scores]
    return out.sequences[0, len(ids):].tolist(), min(margins)


def copy_tokenizer(family, dest):
    src = os.path.join(TOKENIZERS, family)
    if not os.path.isdir(src):
        print(f"note: no tokenizer fixture {src}; {dest} ships without one")
        return False
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dest, name))
    return True


def build_fixtures(prompts):
    goldens = {"versions": VERSIONS, "prompts": prompts, "models": {}}
    tensors = {}
    for name, seed, make in model_specs():
        torch.manual_seed(seed)
        model = make().eval()
        out_dir = os.path.join(FIXTURES, name)
        shutil.rmtree(out_dir, ignore_errors=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        if name == "gpt2":
            copy_tokenizer("gpt2", out_dir)
        # Goldens come from the saved files, the same bytes the C++ tests load.
        is_seqcls = name.endswith("seqcls")
        loader = AutoModelForSequenceClassification if is_seqcls else AutoModelForCausalLM
        model = loader.from_pretrained(out_dir).eval()
        entry = {"architecture": model.config.architectures[0], "prompts": []}
        if hasattr(model, "model") and hasattr(model.model, "rotary_emb"):
            tensors[f"{name}/inv_freq"] = model.model.rotary_emb.inv_freq.float().contiguous()
        for i, ids in enumerate(prompts):
            record = {}
            if is_seqcls:
                with torch.no_grad():
                    record["score"] = model(torch.tensor([ids])).logits[0].tolist()
            else:
                logits = full_logits(model, ids)
                positions = torch.linspace(0, len(ids) - 2, SAMPLED_POSITIONS).round().long()
                positions = torch.cat([positions, torch.tensor([len(ids) - 1])])
                tensors[f"{name}/prompt{i}/positions"] = positions.contiguous()
                tensors[f"{name}/prompt{i}/logits"] = logits[positions].contiguous()
                record["logits_sum"] = float(logits.double().sum())
                record["logits_abs_sum"] = float(logits.double().abs().sum())
                record["greedy"], record["greedy_min_margin"] = greedy(model, ids)
                if record["greedy_min_margin"] < 1e-3:
                    sys.exit(f"{name} prompt {i}: greedy margin too small; change the seed")
            entry["prompts"].append(record)
        if is_seqcls:
            # A right-padded batch, scored as transformers does (last token != pad_token_id).
            width = max(len(p) for p in prompts)
            pad = model.config.pad_token_id
            batch = torch.tensor([p + [pad] * (width - len(p)) for p in prompts])
            mask = (batch != pad).long()
            with torch.no_grad():
                entry["batch_scores"] = model(batch, attention_mask=mask).logits.tolist()
        goldens["models"][name] = entry
        print(f"{name}: saved {out_dir}")
    safetensors.torch.save_file(
        tensors, os.path.join(FIXTURES, "goldens.safetensors"), metadata={"format": "pt"}
    )
    with open(os.path.join(FIXTURES, "goldens.json"), "w") as f:
        json.dump(goldens, f, indent=1)
        f.write("\n")


def check_roundtrip(binary, prompts):
    """Our SavePretrained output must load in transformers with the same logits."""
    for name, _, _ in model_specs():
        src = os.path.join(FIXTURES, name)
        is_seqcls = name.endswith("seqcls")
        loader = AutoModelForSequenceClassification if is_seqcls else AutoModelForCausalLM
        reference = loader.from_pretrained(src).eval()
        for extra in ([], ["--max-shard-bytes=20000"]):
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "saved")
                subprocess.run([binary, src, out, *extra], check=True, capture_output=True)
                if extra:
                    assert os.path.exists(os.path.join(out, "model.safetensors.index.json"))
                ours = loader.from_pretrained(out).eval()
                worst = 0.0
                for ids in prompts:
                    with torch.no_grad():
                        a = reference(torch.tensor([ids])).logits
                        b = ours(torch.tensor([ids])).logits
                    worst = max(worst, float((a - b).abs().max()))
                ref_keys = set(reference.state_dict())
                our_keys = set(ours.state_dict())
                if worst > ROUNDTRIP_TOLERANCE or ref_keys != our_keys:
                    sys.exit(f"{name} {extra}: round trip differs (max abs diff {worst})")
                print(f"{name} round trip {' '.join(extra) or 'single file'}: max abs diff {worst}")


def check_value_head_roundtrip(binary):
    """A model saved with our value head loads in TRL's AutoModelForCausalLMWithValueHead."""
    from trl import AutoModelForCausalLMWithValueHead

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ppo")
        src = os.path.join(FIXTURES, "llama")
        subprocess.run([binary, src, out, "--value-head"], check=True, capture_output=True)
        saved = safetensors.torch.load_file(os.path.join(out, "model.safetensors"))
        trl_model = AutoModelForCausalLMWithValueHead.from_pretrained(out)
        for key in ("weight", "bias"):
            ours = saved[f"v_head.summary.{key}"]
            if not torch.equal(getattr(trl_model.v_head.summary, key), ours):
                sys.exit(f"TRL did not load v_head.summary.{key}")
        ids = torch.tensor([make_prompts()[0]])
        with torch.no_grad():
            theirs = trl_model(ids)[0]
            reference = AutoModelForCausalLM.from_pretrained(src)(ids).logits
        if float((theirs - reference).abs().max()) > ROUNDTRIP_TOLERANCE:
            sys.exit("TRL value-head model logits differ")
        print("llama value head round trip: TRL AutoModelForCausalLMWithValueHead loads it")


def gpt2_tokenizer_size():
    """1 + the largest id of the gpt2 tokenizer fixture (its model vocab and added tokens)."""
    with open(os.path.join(TOKENIZERS, "gpt2", "tokenizer.json")) as f:
        tokenizer = json.load(f)
    return 1 + max([*tokenizer["model"]["vocab"].values(),
                    *(t["id"] for t in tokenizer["added_tokens"])])


def tiny_gpt2(vocab, n_embd, n_positions, **extra):
    """A random 2-layer GPT-2 on the gpt2 tokenizer fixture's ids (BOS = EOS = 500)."""
    config = GPT2Config(vocab_size=vocab, n_embd=n_embd, n_layer=2, n_head=4,
                        n_positions=n_positions, bos_token_id=500, eos_token_id=500, **extra)
    return GPT2LMHeadModel(config).eval()


def build_example():
    # The vocabulary is exactly the tokenizer's, so every sampled id decodes.
    vocab = gpt2_tokenizer_size()
    torch.manual_seed(7)
    model = tiny_gpt2(vocab, n_embd=64, n_positions=256)
    shutil.rmtree(EXAMPLE, ignore_errors=True)
    model.save_pretrained(EXAMPLE, safe_serialization=True)
    copy_tokenizer("gpt2", EXAMPLE)
    print(f"example: saved {EXAMPLE}")


def build_padded_vocab(prompts):
    """A GPT-2 with PADDED_ROWS embedding rows the tokenizer has no token for, made likely."""
    tokens = gpt2_tokenizer_size()
    torch.manual_seed(8)
    model = tiny_gpt2(tokens + PADDED_ROWS, n_embd=32, n_positions=128, initializer_range=0.2)
    # The logit of id i is ln_f(h) . wte[i] (tied). ln_f's bias is the same at every
    # position, so one direction shared by the bias and the padded rows lifts every padded
    # logit by about |bias| * shift, while the other rows' logits move randomly. Stronger
    # shifts make nearly every id padded, and then the decoded text would be empty.
    bias_norm, row_shift = PADDED_SHIFT
    with torch.no_grad():
        direction = torch.nn.functional.normalize(torch.randn(model.config.n_embd), dim=0)
        model.transformer.ln_f.bias.copy_(bias_norm * direction)
        model.transformer.wte.weight[tokens:] += row_shift * direction
    shutil.rmtree(PADDED_VOCAB, ignore_errors=True)
    model.save_pretrained(PADDED_VOCAB, safe_serialization=True)
    copy_tokenizer("gpt2", PADDED_VOCAB)
    model = AutoModelForCausalLM.from_pretrained(PADDED_VOCAB).eval()
    if model.get_output_embeddings().weight.shape[0] != tokens + PADDED_ROWS:
        sys.exit("gpt2-padded-vocab: lm_head does not have the padded rows")
    masses = []
    for ids in prompts:
        with torch.no_grad():
            probs = full_logits(model, ids).softmax(-1)
        masses.append(float(probs[:, tokens:].sum(-1).mean()))
    mass = sum(masses) / len(masses)
    if not PADDED_MASS[0] <= mass <= PADDED_MASS[1]:
        sys.exit(f"gpt2-padded-vocab: padded ids' mean probability {mass:.3f} not in "
                 f"{PADDED_MASS}; change PADDED_SHIFT")
    print(f"gpt2-padded-vocab: saved {PADDED_VOCAB} ({tokens} tokens, "
          f"{tokens + PADDED_ROWS} rows, padded ids' mean probability {mass:.3f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--roundtrip-bin",
        default=os.path.join(ROOT, "build", "bin", "rlhf_model_roundtrip"),
        help="the C++ load+save tool (built from common/model/tools/roundtrip_main.cc)",
    )
    parser.add_argument("--skip-roundtrip", action="store_true")
    parser.add_argument(
        "--padded-vocab-only",
        action="store_true",
        help="write only fixtures/models/gpt2-padded-vocab (the goldens' last float bits can "
        "differ from one CPU to another, so a full run may rewrite them)",
    )
    args = parser.parse_args()
    check_versions()
    torch.set_num_threads(1)  # bitwise-stable reductions across machines
    prompts = make_prompts()
    if args.padded_vocab_only:
        build_padded_vocab(prompts)
        return
    os.makedirs(FIXTURES, exist_ok=True)
    build_fixtures(prompts)
    build_example()
    build_padded_vocab(prompts)
    if args.skip_roundtrip:
        print("round trip skipped")
    else:
        check_roundtrip(args.roundtrip_bin, prompts)
        check_value_head_roundtrip(args.roundtrip_bin)


if __name__ == "__main__":
    main()
