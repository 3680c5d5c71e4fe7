#!/usr/bin/env python3
"""Makes the tokenizer fixtures and goldens that tests/unit/tokenizer/ compares against.

Reference versions (asserted below): tokenizers==0.22.1, transformers==4.57.1 (PyPI).
Run from the repository root, with no network access needed:

    .venv/bin/python tests/golden/make_tokenizer_goldens.py

What it does, deterministically (fixed seed, no downloads):
  1. Builds a varied training corpus from the text in this file (English, accented Latin,
     Greek, Cyrillic, CJK, Korean, combining marks, emoji incl. ZWJ sequences and flags,
     digits, code, whitespace runs, tabs and newlines).
  2. Trains a small BPE (about 500 entries) with the `tokenizers` library for each family
     and assembles it with that family's real pipeline configuration:
       gpt2     ByteLevel pre-tokenizer (built-in regex), ByteLevel decoder, "a b" merges.
       llama3   Split(regex, Isolated) + ByteLevel(use_regex=false), ignore_merges, template
                post-processor adding <|begin_of_text|>.
       qwen2    NFC normalizer, Split(regex) + ByteLevel, no BOS.
       llama2   SentencePiece-style: Prepend/Replace normalizer, no pre-tokenizer, byte
                fallback, Replace/ByteFallback/Fuse/Strip decoder, <s> template.
       mistral  Metaspace pre-tokenizer (prepend_scheme "first", split false) instead of the
                normalizer.
     and variants that exercise options the families above do not:
       gpt2_prefix_space  ByteLevel add_prefix_space=true.
       mistral_always     Metaspace prepend_scheme "always", split=true, Metaspace decoder.
       added_tokens       NFKC normalizer and added tokens with lstrip/rstrip/single_word/
                          normalized set, special and not.
       qwen2_chat         Qwen2 with a ChatML-style tokenizer_config (eos_token <|im_end|>)
                          while generation_config lists <|endoftext|> first.
       qwen2_split_special  Qwen2 with split_special_tokens=true in tokenizer_config and
                          non-special added tokens, raw and normalized, some of them
                          inside special tokens' text.
     Byte-level vocabularies keep the 256 byte symbols first (as training does) and stay
     <= 512 entries including special tokens, so small test models can use them.
  3. Writes tests/golden/fixtures/tokenizers/<name>/{tokenizer.json, tokenizer_config.json,
     generation_config.json (families that ship one)} and goldens.json with, for every
     tokenizer and every held-out test string: ids with and without special tokens
     (transformers' AutoTokenizer.from_pretrained(dir).encode), decode with
     skip_special_tokens false and true (tokenizers.Tokenizer.decode), and whether
     decode(encode(s), skip_special_tokens=True) == s. Per tokenizer also: bos/eos/pad ids,
     eos_token_id (AutoTokenizer's), and decode_out_of_range: AutoTokenizer's decode of ids
     some of which are >= vocab_size (up to 2^32 - 1), which tokenizers skips.
  4. Asserts that tokenizers.Tokenizer.from_file(tokenizer.json) gives the same ids as
     AutoTokenizer (from_file_matches) for every tokenizer but the split_special_tokens one,
     whose tokenizer_config changes encoding.
"""

import collections
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import tokenizers
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

TOKENIZERS_VERSION = "0.22.1"
TRANSFORMERS_VERSION = "4.57.1"
assert tokenizers.__version__ == TOKENIZERS_VERSION, tokenizers.__version__
assert transformers.__version__ == TRANSFORMERS_VERSION, transformers.__version__

OUT = Path(__file__).resolve().parent / "fixtures" / "tokenizers"
SEED = 20240611

# The pre-tokenizer regexes the real checkpoints ship (tokenizer.json of
# meta-llama/Meta-Llama-3-8B and Qwen/Qwen2-7B).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# ---------------------------------------------------------------------------------------
# Training corpus.
ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Reinforcement learning from human feedback trains a reward model on preferences.",
    "The policy is optimised with PPO against the reward, with a KL penalty to the reference.",
    "She said that they'd be there at 5 o'clock, but we're not sure they'll make it.",
    "It's a truth universally acknowledged that a good tokenizer is hard to find.",
    "Data scientists often clean, normalise and deduplicate their training data first.",
    "In 2023, the model was trained on 1.4 trillion tokens using 2048 GPUs.",
    "Questions? Answers! Exclamations... and ellipses; colons: dashes - and more.",
    "I've seen things you people wouldn't believe.",
    "the and of to in is that for it as with was on be by this are from at",
]
ACCENTED = [
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Größere Häuser, schöne Straßen und grüne Wälder.",
    "El niño pequeño comió piña en la montaña.",
    "Ação, coração, não, também, você.",
    "Ελληνικά: καλημέρα κόσμε.",
    "Русский текст: привет, как дела?",
    "Tiếng Việt có dấu: chào thế giới.",
]
CJK = [
    "机器学习是人工智能的一个分支。",
    "我们使用强化学习来训练语言模型。",
    "東京は日本の首都です。今日はいい天気ですね。",
    "한국어는 아름다운 언어입니다.",
    "中文、日本語、한국어 mixed with English.",
]
COMBINING = [
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "a\u0300 e\u0300 o\u0302 u\u0308 n\u0303",
    "Z\u0351\u036b\u0343a\u0306l\u0357g\u0310o text",
]
EMOJI = [
    "I love it 😀😂🎉👍",
    "family: 👨‍👩‍👧‍👦 couple: 👩‍❤️‍👨 technologist: 👩🏽‍💻",
    "flags 🇫🇷 🇯🇵 🇺🇸 and hands 👋🏻👋🏿",
    "weather ☀️ 🌧️ ⛄ ❄️",
]
CODE = [
    "def train(model, data):\n    for batch in data:\n        loss = model(batch)\n        loss.backward()\n",
    "int main(int argc, char** argv) {\n\treturn argc > 1 ? 0 : 1;\n}\n",
    "for (size_t i = 0; i < n; ++i) { sum += x[i] * y[i]; }",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
    "https://example.com/path/to/page?query=1&lang=en#section",
]
WHITESPACE = [
    "  two leading spaces",
    "trailing spaces   ",
    "tabs\tbetween\twords",
    "multiple\n\nnewlines\n\n\nhere",
    "mixed \t \n whitespace",
    "          indented ten",
]
DIGITS = ["0123456789", "3.14159265358979", "1,000,000", "-273.15", "2024-06-11", "12:30:45"]
WORDS = (
    " ".join(ENGLISH).replace(".", " ").replace(",", " ").split()
    + "learning model reward policy token text data train value network".split()
)


def corpus(rng):
    lines = []
    banks = [ENGLISH, ACCENTED, CJK, COMBINING, EMOJI, CODE, WHITESPACE, DIGITS]
    for bank in banks:
        lines.extend(bank * 3)
    for _ in range(1500):
        n = rng.randint(3, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 99999)))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words) + 1), rng.choice(rng.choice(banks[1:6])))
        sep = rng.choice([" ", " ", " ", "  ", "\t", "\n"])
        lines.append(sep.join(words))
    return lines


# Held-out test strings: not in the corpus above.
TEST_STRINGS = [
    "",
    " ",
    "   ",
    "a",
    "Hello world",
    " leading space",
    "trailing space ",
    "  multiple   spaces",
    "\n\n\t",
    "tabs\tand\nnewlines\r\nwindows",
    "trailing newline\n",
    "Don't you'll I'M we'RE THEY'VE",
    "ALLCAPS SHOUTING and mixedCase camelCaseIdentifier snake_case_name",
    "numbers 1234567890 3.14159 -42 1e-9",
    "ÀÉÎÕÜ àéîõü ñ ç ß Œuvre",
    "e\u0301 vs \u00e9 (combining vs precomposed) A\u030a \u212b",
    "中文分词测试，你好世界。",
    "日本語のテキストです",
    "한국어 문장입니다",
    "mixed 中English混合text",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇩🇪 ❤️",
    "def f(x):\n    return x ** 2  # square\n",
    "if (a && b) { return c[i]; } // done",
    "URL: https://example.org/a?b=c&d=e email@example.org",
    "\u00a0nbsp\u2003em\u3000ideographic\u2028line sep",
    "zero\u200bwidth\u200djoiner NEL\u0085char",
    "ﬁ ligature ① ２ ㎏ (NFKC)",
    "Math: ∑ x² ≤ ∞ ≠ π",
    "עברית والعربية",
    "already▁has▁metaspace ▁",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" + "x" * 300,
    "!!!???...;;;",
    "<|endoftext|>",
    "text with <|endoftext|> inside<|endoftext|>",
    "<s>hello</s>",
    "<|begin_of_text|>Hi<|end_of_text|> <|eot_id|>",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<unk> and <0x41>",
    "<mask>",
    "a <mask> b",
    "x<mask>y and <mask>",
    "[SEP]  next [SEP]",
    "ﬁx the fix",
    "hello world hello  world",
    # U+180E is a format character, not whitespace, for Oniguruma (PCRE2's \s takes it).
    "mongolian\u180e'd separator  \u180e<|endoftext|>",
    "<tool_call>{\"name\": \"f\"}</tool_call><|im_end|>\n<|endoftext|> im_end endoftext",
]

# Random mixes of tricky pieces (contractions, every kind of whitespace, digits of other
# scripts, marks, emoji, special-token text), as a differential check of the regexes.
PIECES = (
    list("aZ09!'\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~")
    + [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000",
       "\u200a", "\u2028", "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\ufeff",
       "\u200d", "'s", "'S", "'ll", "'RE", "'\u017f", "don't", "\u00e9", "e\u0301", "\u00df",
       "\u0130", "\ufb01", "\u03a3", "\u0436", "\u4e2d", "\u65e5\u672c", "\ud55c", "\u0308",
       "\u05d0", "\u0628\u0651", "\u0e01\u0e31", "\u0915\u093f", "\u0663", "\uff13", "\u00b2",
       "\u216b", "\u00bd", "\U0001d7d8", "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F1EB\U0001F1F7",
       "\U0010FFFD", "<|endoftext|>", "<|begin_of_text|>", "<|im_end|>", "<s>", "</s>", "<unk>",
       "<mask>", "[SEP]", "\ufb01x", "the", "hello world", "\u2581", "<0x41>", "learning", "4567"]
)


def random_strings(rng, count):
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 24))) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# Pipeline pieces (JSON exactly as tokenizers 0.22 serialises them).
def bytelevel(add_prefix_space=False, trim_offsets=True, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space,
            "trim_offsets": trim_offsets, "use_regex": use_regex}


def split_regex(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
            "invert": False}


def metaspace(prepend_scheme, split):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": prepend_scheme,
            "split": split}


def template(bos, bos_id):
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


def added(token_id, content, special=True, normalized=False, lstrip=False, rstrip=False,
          single_word=False):
    return {"id": token_id, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def bpe(vocab, merges, legacy_merges, **options):
    model = {"type": "BPE", "dropout": None, "unk_token": None,
             "continuing_subword_prefix": None, "end_of_word_suffix": None,
             "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}
    model.update(options)
    model["vocab"] = vocab
    model["merges"] = [f"{a} {b}" for a, b in merges] if legacy_merges else merges
    return model


def assemble(model, added_tokens, normalizer, pre_tokenizer, post_processor, decoder):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor, "decoder": decoder, "model": model}


def train(lines, normalizer, pre_tokenizer, vocab_size, **trainer_options):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, **trainer_options)
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [list(m) for m in model["merges"]]


def train_byte_level(lines, normalizer, pre_tokenizer, vocab_size):
    return train(lines, normalizer, pre_tokenizer, vocab_size,
                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def train_sentencepiece_style(lines, vocab_size):
    """Trains on Metaspace words, then lays the vocabulary out like Llama-2's:
    <unk> <s> </s>, the 256 <0xXX> byte-fallback tokens, then the learned pieces."""
    # The 150 most frequent characters, ties broken by code point: tokenizers' own
    # limit_alphabet breaks ties in hash order, which would change the files run to run.
    counts = collections.Counter(
        c for line in lines for c in "\u2581" + line.replace(" ", "\u2581"))
    alphabet = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:150]]
    pieces, merges = train(lines, None, pre_tokenizers.Metaspace(prepend_scheme="always"),
                           vocab_size, initial_alphabet=alphabet, limit_alphabet=len(alphabet))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(pieces.items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))
    return vocab, merges


def specials_after(vocab, names):
    return [added(len(vocab) + i, name) for i, name in enumerate(names)]


def build_all(lines):
    """Returns {name: (tokenizer_json, tokenizer_config, generation_config or None)}."""
    out = {}

    # GPT-2: ByteLevel with its built-in regex; <|endoftext|> is the last id.
    vocab, merges = train_byte_level(lines, None, pre_tokenizers.ByteLevel(), 500)
    gpt2_added = specials_after(vocab, ["<|endoftext|>"])
    eot = gpt2_added[0]["id"]
    gpt2 = assemble(bpe(vocab, merges, legacy_merges=True), gpt2_added, None, bytelevel(),
                    bytelevel(trim_offsets=True), bytelevel())
    gpt2_config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False,
                   "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "model_max_length": 1024}
    out["gpt2"] = (gpt2, gpt2_config, {"bos_token_id": eot, "eos_token_id": eot})

    prefix = json.loads(json.dumps(gpt2))
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    prefix["decoder"]["add_prefix_space"] = True
    out["gpt2_prefix_space"] = (prefix, dict(gpt2_config, add_prefix_space=True), None)

    # Added-token options on a byte-level model with an NFKC normalizer.
    opts = json.loads(json.dumps(gpt2))
    opts["normalizer"] = {"type": "NFKC"}
    n = len(vocab) + 1
    opts["added_tokens"] = gpt2_added + [
        added(n, "<mask>", special=False, lstrip=True, rstrip=True, single_word=True),
        added(n + 1, "[SEP]", special=True, rstrip=True),
        added(n + 2, "\ufb01x", special=False, normalized=True),
        added(n + 3, "hello world", special=False, normalized=True),
        added(vocab["the"], "the", special=False, normalized=False, single_word=True),
    ]
    out["added_tokens"] = (opts, dict(gpt2_config), None)

    # Llama-3: Split(regex) + ByteLevel(use_regex=false), ignore_merges, BOS template.
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    vocab, merges = train_byte_level(lines, None, pre, 500)
    l3_added = specials_after(vocab, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"])
    bot, eot, eot_id = (t["id"] for t in l3_added)
    llama3 = assemble(
        bpe(vocab, merges, legacy_merges=False, ignore_merges=True), l3_added, None,
        {"type": "Sequence", "pretokenizers": [split_regex(LLAMA3_PATTERN),
                                               bytelevel(use_regex=False)]},
        {"type": "Sequence", "processors": [bytelevel(True, False, True),
                                            template("<|begin_of_text|>", bot)]},
        bytelevel(True, True, True))
    out["llama3"] = (llama3,
                     {"tokenizer_class": "PreTrainedTokenizerFast",
                      "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                      "clean_up_tokenization_spaces": True, "model_max_length": 131072},
                     {"bos_token_id": bot, "eos_token_id": [eot, eot_id]})

    # Qwen2: NFC, Split(regex) + ByteLevel, no BOS, ByteLevel post-processor.
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    vocab, merges = train_byte_level(lines, normalizers.NFC(), pre, 500)
    q_added = specials_after(vocab, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    q_eot = q_added[0]["id"]
    qwen2 = assemble(
        bpe(vocab, merges, legacy_merges=True), q_added, {"type": "NFC"},
        {"type": "Sequence", "pretokenizers": [split_regex(QWEN2_PATTERN),
                                               bytelevel(use_regex=False)]},
        bytelevel(False, False, False), bytelevel(False, False, False))
    qwen2_config = {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None,
                    "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                    "unk_token": None, "add_prefix_space": False, "errors": "replace",
                    "split_special_tokens": False, "model_max_length": 32768}
    out["qwen2"] = (qwen2, qwen2_config, {"bos_token_id": q_eot, "eos_token_id": q_eot})

    # ChatML-style (Qwen2-Instruct): eos_token is <|im_end|>, but generation_config lists
    # <|endoftext|> first, so tokenizer.eos_token_id differs from the first stop id.
    q_im_end = q_added[2]["id"]
    out["qwen2_chat"] = (qwen2, dict(qwen2_config, eos_token="<|im_end|>"),
                         {"bos_token_id": q_eot, "eos_token_id": [q_eot, q_im_end]})

    # split_special_tokens=true: special tokens are encoded as text, non-special added
    # tokens still split: "<tool_call>" (raw, as in Qwen2.5), "endoftext" (normalized: it
    # matches inside "<|endoftext|>" once the raw pass skips that) and "im_end" (raw: never
    # inside "<|im_end|>", as the automaton resumes after the skipped special match).
    split = json.loads(json.dumps(qwen2))
    n = q_added[-1]["id"] + 1
    split["added_tokens"] = q_added + [
        added(n, "<tool_call>", special=False), added(n + 1, "</tool_call>", special=False),
        added(n + 2, "endoftext", special=False, normalized=True),
        added(n + 3, "im_end", special=False)]
    out["qwen2_split_special"] = (split, dict(qwen2_config, split_special_tokens=True),
                                  {"bos_token_id": q_eot, "eos_token_id": q_eot})

    # Llama-2: SentencePiece-style BPE with byte fallback (legacy normalizer form).
    vocab, merges = train_sentencepiece_style(lines, 260)
    sp_added = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    sp_model = bpe(vocab, merges, legacy_merges=False, unk_token="<unk>", fuse_unk=True,
                   byte_fallback=True)
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    llama2 = assemble(
        sp_model, sp_added,
        {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        None, template("<s>", 1), sp_decoder)
    sp_config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
                 "add_eos_token": False, "legacy": True,
                 "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False,
                               "normalized": False, "rstrip": False, "single_word": False},
                 "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False,
                               "normalized": False, "rstrip": False, "single_word": False},
                 "unk_token": {"__type": "AddedToken", "content": "<unk>", "lstrip": False,
                               "normalized": False, "rstrip": False, "single_word": False},
                 "pad_token": None, "clean_up_tokenization_spaces": False,
                 "model_max_length": 4096}
    out["llama2"] = (llama2, sp_config,
                     {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})

    # Mistral: the non-legacy conversion, Metaspace pre-tokenizer instead of the normalizer.
    mistral = assemble(sp_model, sp_added, None, metaspace("first", False), template("<s>", 1),
                       sp_decoder)
    out["mistral"] = (mistral, dict(sp_config, legacy=False, model_max_length=32768),
                      {"bos_token_id": 1, "eos_token_id": 2})
    always = assemble(sp_model, sp_added, None, metaspace("always", True), template("<s>", 1),
                      metaspace("always", True))
    out["mistral_always"] = (always, dict(sp_config, legacy=False), None)
    return out


# ---------------------------------------------------------------------------------------
def write_json(path, value, indent=None):
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent) + "\n",
                    encoding="utf-8")


def dump_goldens(goldens):
    """JSON with one test string or one case per line: compact, and diffs stay readable."""
    def one(value):
        return json.dumps(value, ensure_ascii=True)

    out = ["{"]
    for key in ("generator", "tokenizers_version", "transformers_version"):
        out.append(f" {one(key)}: {one(goldens[key])},")
    out.append(' "strings": [')
    out.append(",\n".join("  " + one(s) for s in goldens["strings"]))
    out.append(" ],")
    out.append(' "tokenizers": {')
    entries = []
    for name, entry in goldens["tokenizers"].items():
        head = ", ".join(f"{one(k)}: {one(v)}" for k, v in entry.items() if k != "cases")
        cases = ",\n".join("   " + one(case) for case in entry["cases"])
        entries.append(f"  {one(name)}: {{{head}, \"cases\": [\n{cases}\n  ]}}")
    out.append(",\n".join(entries))
    out.append(" }")
    out.append("}")
    text = "\n".join(out)
    assert json.loads(text) == goldens
    return text


def expected_specials(hf, generation_config):
    eos = []
    if generation_config and "eos_token_id" in generation_config:
        value = generation_config["eos_token_id"]
        eos = list(value) if isinstance(value, list) else [value]
    if hf.eos_token_id is not None and hf.eos_token_id not in eos:
        eos.append(hf.eos_token_id)
    return hf.bos_token_id, eos, hf.pad_token_id


def decode_out_of_range(hf, tok, vocab_size):
    """transformers' decode skips ids >= vocab_size (tokenizers' decode filter_maps ids to
    tokens), as a model whose embedding has more rows than its tokenizer has tokens needs
    (Qwen2: 151936 vs 151665). Ids outside u32 raise OverflowError in the Python binding."""
    hello = hf.encode("Hello world", add_special_tokens=False)
    ids = ([vocab_size] + hello[:2] + [vocab_size + 270, hf.eos_token_id, 2**31, 2**32 - 1]
           + hello[2:] + [vocab_size + 1])
    out = {"ids": ids}
    for key, skip in (("decode", False), ("decode_skip_special", True)):
        text = hf.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)
        in_range = [i for i in ids if i < vocab_size]
        assert text == tok.decode(ids, skip_special_tokens=skip)
        assert text == tok.decode(in_range, skip_special_tokens=skip)
        out[key] = text
    for bad in (-1, 2**32):
        try:
            hf.decode([bad])
            raise AssertionError(f"decode([{bad}]) did not raise")
        except OverflowError:
            pass
    return out


def main():
    rng = random.Random(SEED)
    lines = corpus(rng)
    strings = TEST_STRINGS + random_strings(random.Random(SEED + 1), 24)
    assert not any(s and s in lines for s in strings)
    built = build_all(lines)

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    goldens = {"generator": "tests/golden/make_tokenizer_goldens.py",
               "tokenizers_version": TOKENIZERS_VERSION,
               "transformers_version": TRANSFORMERS_VERSION,
               "strings": strings, "tokenizers": {}}
    for name, (tok_json, config, generation) in built.items():
        directory = OUT / name
        directory.mkdir()
        write_json(directory / "tokenizer.json", tok_json, indent=1)
        write_json(directory / "tokenizer_config.json", config, indent=2)
        if generation is not None:
            write_json(directory / "generation_config.json", generation, indent=2)

        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        hf = transformers.AutoTokenizer.from_pretrained(str(directory))
        # transformers 4.57 sets the backend's encode_special_tokens from the config.
        split = config.get("split_special_tokens", False)
        assert hf.backend_tokenizer.encode_special_tokens == split, name
        cases = []
        from_file_matches = True
        for s in strings:
            with_special = hf.encode(s)
            without = hf.encode(s, add_special_tokens=False)
            from_file_matches &= (tok.encode(s).ids == with_special and
                                  tok.encode(s, add_special_tokens=False).ids == without)
            skip = tok.decode(with_special, skip_special_tokens=True)
            cases.append({"ids": with_special, "ids_no_special": without,
                          "decode": tok.decode(with_special, skip_special_tokens=False),
                          "decode_skip_special": skip, "roundtrip": skip == s})
        # Only split_special_tokens changes what the directory encodes to; and it must, for
        # some test string, or the fixture would not test it.
        assert from_file_matches == (not split), (name, from_file_matches)
        bos, eos, pad = expected_specials(hf, generation)
        ids = list(tok.get_vocab(with_added_tokens=True).values())
        vocab_size = max(ids) + 1
        goldens["tokenizers"][name] = {
            "vocab_size": vocab_size, "bos_id": bos, "eos_ids": eos, "pad_id": pad,
            "eos_token_id": hf.eos_token_id, "from_file_matches": from_file_matches,
            "decode_out_of_range": decode_out_of_range(hf, tok, vocab_size), "cases": cases}
        print(f"{name}: vocab_size={vocab_size} bos={bos} eos={eos} pad={pad} "
              f"eos_token_id={hf.eos_token_id}")

    text = dump_goldens(goldens)
    (OUT / "goldens.json").write_text(text + "\n", encoding="utf-8")
    files = sorted(f for f in OUT.rglob("*") if f.is_file())
    total = sum(f.stat().st_size for f in files)
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(OUT)).encode() + b"\0" + f.read_bytes())
    # Reruns print the same digest: the output depends on nothing but this file.
    print(f"wrote {OUT} ({total} bytes in {len(files)} files, sha256 {digest.hexdigest()[:16]})")
    assert total < 600_000, total


if __name__ == "__main__":
    sys.exit(main())
