#!/usr/bin/env python3
"""LoRA goldens from PEFT: an adapter PEFT writes for the tiny GPT-2, Llama and Qwen2
fixtures, and the logits PEFT computes with it.

For each model: get_peft_model(base, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False
so that B is not zero)), save_pretrained into tests/golden/fixtures/lora/<model>/, and
expected.safetensors with input_ids [2, 6] and the adapted model's logits [2, 6, vocab]
(eval mode, float32), plus the logits after merge_and_unload (the merged weights).
Run: .venv/bin/python tests/golden/make_lora_goldens.py
Pinned: peft 0.17.1, transformers 4.57.1, torch 2.9.1 (scripts/install_deps.sh --python).
"""
import pathlib

import peft
import safetensors.torch
import torch
import transformers

assert peft.__version__ == "0.17.1", peft.__version__
assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = pathlib.Path(__file__).parent / "fixtures"
MODELS = {
    "gpt2": ["c_attn", "c_proj"],  # Conv1D: fan_in_fan_out
    "llama": ["q_proj", "v_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "o_proj", "gate_proj", "up_proj"],
}


def main():
    for name, targets in MODELS.items():
        torch.manual_seed(0)
        base = transformers.AutoModelForCausalLM.from_pretrained(
            ROOT / "models" / name, dtype=torch.float32)
        config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                                 init_lora_weights=False, fan_in_fan_out=name == "gpt2",
                                 task_type="CAUSAL_LM")
        model = peft.get_peft_model(base, config).eval()
        out = ROOT / "lora" / name
        model.peft_config["default"].base_model_name_or_path = f"tests/golden/fixtures/models/{name}"
        model.save_pretrained(out)
        (out / "README.md").unlink(missing_ok=True)  # PEFT's model card
        input_ids = torch.tensor([[1, 5, 9, 77, 300, 2], [400, 3, 3, 8, 120, 511]])
        with torch.no_grad():
            logits = model(input_ids=input_ids).logits.float().contiguous()
            merged = model.merge_and_unload()(input_ids=input_ids).logits.float().contiguous()
        safetensors.torch.save_file({"input_ids": input_ids, "logits": logits,
                                     "merged_logits": merged}, out / "expected.safetensors")
        print(f"{name}: {out} logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main()
