#!/usr/bin/env python3
"""Makes the bundled alignment demo (examples/demo/) from nothing, deterministically.

The hidden rule (what the preference data rewards, stated in one sentence):

    A good response opens politely ("Sure!", "Of course!", "Happy to help!") and talks
    about the topic the prompt asks about, not another one.

Writes:
  data/sft.jsonl          prompt + completion: an instruction corpus where only some
                          responses follow the rule (rude openers, wrong topics), so the
                          SFT model follows it by chance, not by design
  data/preference.jsonl   prompt + chosen + rejected: chosen follows the rule, rejected
                          breaks it (rude, off-topic, both, or unfinished/empty)
  data/heldout.jsonl      preference pairs on prompt/answer combinations not in training
  data/prompts.jsonl      prompts for PPO; data/heldout_prompts.jsonl for evaluation
  model-init/             tokenizer.json (byte-level BPE trained here on the corpus),
                          tokenizer_config.json, config.json and model.safetensors of a
                          tiny GPT-2 with random weights (the SFT stage starts from it)

Deterministic: a fixed seed for the data, tokenizers' BPE trainer (deterministic for a
fixed input), torch.manual_seed for the weights. Needs the pinned Python extras
(scripts/install_deps.sh --python: tokenizers 0.22.1, transformers 4.57.1, torch 2.9.1).
Run: .venv/bin/python examples/demo/make_demo_data.py
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hidden_rule import POLITE, TOPICS  # noqa: E402

ADJECTIVES = ["warm", "quiet", "bright", "soft", "old", "fast", "small", "round", "green",
              "calm", "sweet", "deep", "tall", "kind", "wild", "clean"]
RUDE = ["Ugh.", "Whatever.", "No."]
PROMPT_TEMPLATES = ["Tell me about {t}.", "What do you think of {t}?", "Describe {t}.",
                    "Say something about {t}.", "Write a line about {t}.", "Talk to me about {t}.",
                    "What are {t} like?", "Give me a thought on {t}."]
HELDOUT_TEMPLATES = ["Can you talk about {t}?", "I want to hear about {t}."]
BODY_TEMPLATES = ["{t} are {a} and {b}.", "I think {t} are {a}.", "{t} feel {a} and {b}."]


def body(rng, topic):
    a, b = rng.sample(ADJECTIVES, 2)
    return rng.choice(BODY_TEMPLATES).format(t=topic, a=a, b=b)


def response(rng, topic, polite, on_topic, shift=0):
    """on_topic False: the subject is the topic `shift` places further in TOPICS. For a
    fixed shift every topic is the wrong subject exactly once, so no topic word is more
    common in rejected answers than in chosen ones (a reward model could otherwise learn
    "tea is good" instead of "stay on the asked topic")."""
    if on_topic is None:  # an unfinished answer: an opener alone, or nothing
        return rng.choice(["", " " + rng.choice(POLITE + RUDE)])
    subject = topic if on_topic else TOPICS[(TOPICS.index(topic) + shift) % len(TOPICS)]
    opener = rng.choice(POLITE if polite else RUDE)
    return " " + opener + " " + body(rng, subject)


def shift_for(template_index, slot):
    return 1 + (7 * template_index + 5 * slot) % (len(TOPICS) - 1)


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def make_data(rng):
    data = os.path.join(HERE, "data")
    os.makedirs(data, exist_ok=True)
    sft, pairs, heldout, prompts, heldout_prompts = [], [], [], [], []
    for topic in TOPICS:
        for j, template in enumerate(PROMPT_TEMPLATES):
            prompt = template.format(t=topic)
            prompts.append({"prompt": prompt})
            # SFT: like a real instruction corpus, answers are mostly on topic (3 in 4), but
            # manners are a coin flip; a response follows the whole rule 1 time in 4 or so.
            for polite, on_topic in [(True, True), (False, True), (False, True), (True, False)]:
                sft.append({"prompt": prompt, "completion": response(
                    rng, topic, polite, on_topic, shift_for(j, 0))})
            # Rejected: rude, off-topic (twice: the harder lesson), both, or unfinished.
            kinds = [(False, True), (True, False), (True, False), (False, False), (True, None)]
            for slot, (polite, on_topic) in enumerate(kinds):
                pairs.append({"prompt": prompt, "chosen": response(rng, topic, True, True),
                              "rejected": response(rng, topic, polite, on_topic,
                                                   shift_for(j, slot + 1))})
        for j, template in enumerate(HELDOUT_TEMPLATES):
            prompt = template.format(t=topic)
            heldout_prompts.append({"prompt": prompt})
            for slot, (polite, on_topic) in enumerate([(False, True), (True, False), (True, None)]):
                heldout.append({"prompt": prompt, "chosen": response(rng, topic, True, True),
                                "rejected": response(rng, topic, polite, on_topic,
                                                     shift_for(j + 5, slot))})
    rng.shuffle(sft)
    rng.shuffle(pairs)
    write_jsonl(os.path.join(data, "sft.jsonl"), sft)
    write_jsonl(os.path.join(data, "preference.jsonl"), pairs)
    write_jsonl(os.path.join(data, "heldout.jsonl"), heldout)
    write_jsonl(os.path.join(data, "prompts.jsonl"), prompts)
    write_jsonl(os.path.join(data, "heldout_prompts.jsonl"), heldout_prompts)
    corpus = [r["prompt"] + r["completion"] for r in sft] + \
             [p["prompt"] + p["chosen"] for p in pairs + heldout] + \
             [p["prompt"] + p["rejected"] for p in pairs + heldout]
    return corpus


def make_model(corpus):
    import tokenizers
    import torch
    import transformers
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    out = os.path.join(HERE, "model-init")
    os.makedirs(out, exist_ok=True)
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.save(os.path.join(out, "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>",
                   "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "add_prefix_space": False, "model_max_length": 128}, f, indent=2)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=128,
                                     n_layer=4, n_head=4, bos_token_id=eos, eos_token_id=eos,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.generation_config.pad_token_id = eos
    model.save_pretrained(out, safe_serialization=True)


def main():
    rng = random.Random(20261121)
    corpus = make_data(rng)
    make_model(corpus)


if __name__ == "__main__":
    main()
