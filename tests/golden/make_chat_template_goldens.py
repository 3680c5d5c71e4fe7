#!/usr/bin/env python3
"""Makes tests/golden/fixtures/chat/chat_templates.json: chat-template renderings that the C++
Jinja-subset engine (common/chat/) must reproduce byte for byte.

Reference versions (asserted below): transformers==4.57.1, jinja2==3.1.6, trl==0.24.0 (PyPI).
Run from the repository root, with no network access needed:

    .venv/bin/python tests/golden/make_chat_template_goldens.py

Inputs: the official chat templates in tests/golden/fixtures/chat/templates/*.jinja (provenance
in SOURCES.md there) and the GPT-2 tokenizer in tests/golden/fixtures/models/gpt2 (TRL cases).

Every direct case is rendered with transformers' own code path,
transformers.utils.chat_template_utils.render_jinja_template (what
PreTrainedTokenizerBase.apply_chat_template calls), and cross-checked against
tokenizer.apply_chat_template(..., tokenize=False) on a tokenizer carrying the same template and
special tokens. The template context is exactly: messages, tools (null unless the case has
tools), documents (null), add_generation_prompt, the case's bos_token / eos_token (a key that is
absent from the case was not passed at all) and the case's "extra" variables. With
continue_final_message=true, transformers appends "CONTINUE_FINAL_MESSAGE_TAG " to the last
message's content before rendering and cuts the output at that tag afterwards (rstrip()-ing what
precedes it when the template trimmed the tag's trailing space); the engine must do the same.
Globals: raise_exception(msg) raises; strftime_now(fmt) is datetime.now().strftime(fmt); tojson
is json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).
Environment: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with
jinja2.ext.loopcontrols.

Case fields: name, template, messages, tools, documents, add_generation_prompt,
continue_final_message, [bos_token], [eos_token], extra, and either "rendered" or
"raises": true + "error_contains". A llama3_2 case without date_string in extra is
"date_dependent": true; its "today" is strftime_now("%d %b %Y") at generation time, which the
C++ test substitutes. TRL cases have trl_function, trl_input, trl_tokenizer (what was set on the
GPT-2 tokenizer and its resulting special_tokens_map, all of which TRL passes to the template)
and trl_output.
"""

import copy
import json
from datetime import datetime
from pathlib import Path

import jinja2
import transformers
import trl
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template
from trl.data_utils import maybe_apply_chat_template

for mod, want in ((transformers, "4.57.1"), (jinja2, "3.1.6"), (trl, "0.24.0")):
    assert mod.__version__ == want, f"{mod.__name__} {mod.__version__} != {want}"

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "tests/golden/fixtures/chat/templates"
OUT = ROOT / "tests/golden/fixtures/chat/chat_templates.json"
GPT2 = ROOT / "tests/golden/fixtures/models/gpt2"

# Real special tokens of each model. Qwen2.5's tokenizer has bos_token null, so
# special_tokens_map has no bos_token and the template never sees one.
SPECIAL = {
    "qwen2_5": {"eos_token": "<|im_end|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "mistral_v0_3": {"bos_token": "<s>", "eos_token": "</s>"},
    "chatml": {"eos_token": "<|im_end|>"},
}
TEMPLATES = {name: (TEMPLATE_DIR / f"{name}.jinja").read_text(encoding="utf-8") for name in SPECIAL}
LLAMA32_DATE = {"date_string": "15 Mar 2025"}


def sys_(text):
    return {"role": "system", "content": text}


def user(text):
    return {"role": "user", "content": text}


def asst(text):
    return {"role": "assistant", "content": text}


MULTI = [sys_("You are a helpful assistant."), user("What is 2+2?"), asst("2+2 equals 4."),
         user("And 3+3?")]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
TOOL_CALL = {"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
TOOL_CONVO = [user("What's the weather in Paris?"), {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
              {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "22 degrees, sunny"}]

# (name, messages, add_generation_prompt, continue_final_message, tools)
COMMON_CASES = [
    ("single_user_gen", [user("Hello!")], True, False, None),
    ("multi_turn", MULTI, False, False, None),
    ("multi_turn_gen", MULTI, True, False, None),
    ("continue_final_message", [user("Finish the sentence: the sky is"), asst("The sky is")], False, True, None),
    ("assistant_whitespace", [user("Say hi."), asst("  \n Hi there!  \n\n"), user("  Again, please. ")],
     True, False, None),
    ("non_ascii", [sys_("Réponds en français — s'il te plaît."), user("héllo 世界 🌍 «¿qué?» Ωμέγα"),
                   asst("こんにちは! Ça va 👍 ñ ü ß"), user("Ещё раз: 你好")], True, False, None),
    ("empty_system", [sys_(""), user("Hi")], True, False, None),
    ("consecutive_user_messages", [user("First."), user("Second.")], True, False, None),
]
TOOL_CASES = {
    "qwen2_5": [("tools_and_tool_call", TOOL_CONVO, True, False, [WEATHER_TOOL]),
                ("tools_with_system", [sys_("Be terse."), user("Weather in Oslo?")], True, False, [WEATHER_TOOL])],
    "llama3_1": [("tools_and_tool_call", TOOL_CONVO, True, False, [WEATHER_TOOL])],
    "llama3_2": [("tools_and_tool_call", TOOL_CONVO, True, False, [WEATHER_TOOL])],
    "mistral_v0_3": [("tools_and_tool_call", [sys_("Be terse.")] + TOOL_CONVO[:2] + [
        {"role": "tool", "tool_call_id": "call12345", "content": "22 degrees, sunny"},
        asst("It is 22 degrees and sunny."), user("Thanks!")], False, False, [WEATHER_TOOL]),
        ("bad_tool_call_id", [user("Hi"), {"role": "assistant", "tool_calls": [dict(TOOL_CALL, id="x")]}],
         False, False, [WEATHER_TOOL])],
}


def render(name, messages, agp, cfm, tools, extra):
    out, _ = render_jinja_template(
        conversations=[messages], tools=tools, documents=None, chat_template=TEMPLATES[name],
        continue_final_message=cfm, add_generation_prompt=agp, **SPECIAL[name], **extra)
    return out[0]


def make_tokenizer(name):
    tok = AutoTokenizer.from_pretrained(GPT2)
    tok.chat_template = TEMPLATES[name]
    tok.bos_token = SPECIAL[name].get("bos_token")  # None removes it from special_tokens_map
    tok.eos_token = SPECIAL[name]["eos_token"]
    return tok


TOKENIZERS = {name: make_tokenizer(name) for name in SPECIAL}


def via_tokenizer(name, messages, agp, cfm, tools, extra):
    return TOKENIZERS[name].apply_chat_template(
        copy.deepcopy(messages), tools=tools, tokenize=False, add_generation_prompt=agp,
        continue_final_message=cfm, **extra)


def make_case(name, case_name, messages, agp, cfm, tools, extra):
    case = {"name": case_name, "template": name, "messages": messages, "tools": tools, "documents": None,
            "add_generation_prompt": agp, "continue_final_message": cfm, **SPECIAL[name], "extra": extra}
    try:
        rendered = render(name, copy.deepcopy(messages), agp, cfm, tools, extra)
    except (jinja2.exceptions.TemplateError, ValueError) as e:
        case.update(raises=True, error_type=type(e).__name__, error_contains=str(e))
        try:
            via_tokenizer(name, messages, agp, cfm, tools, extra)
            raise AssertionError(f"{name}/{case_name}: tokenizer path did not raise")
        except (jinja2.exceptions.TemplateError, ValueError) as e2:
            assert str(e2) == str(e), (name, case_name, e, e2)
        return case
    assert rendered == via_tokenizer(name, messages, agp, cfm, tools, extra), (name, case_name)
    case["rendered"] = rendered
    return case


def direct_cases():
    cases = []
    for name in SPECIAL:
        extra = dict(LLAMA32_DATE) if name == "llama3_2" else {}
        for case_name, messages, agp, cfm, tools in COMMON_CASES + TOOL_CASES.get(name, []):
            cases.append(make_case(name, case_name, messages, agp, cfm, tools, extra))
    cases.append(make_case("llama3_1", "custom_date_string", MULTI, True, False, None,
                           {"date_string": "01 Jan 2030"}))
    # Llama 3.2 without date_string: the template calls strftime_now("%d %b %Y").
    for _ in range(3):  # retry if the date changes while rendering
        today = datetime.now().strftime("%d %b %Y")
        case = make_case("llama3_2", "strftime_now_today", MULTI, True, False, None, {})
        if datetime.now().strftime("%d %b %Y") == today:
            break
    assert "Today Date: " + today + "\n" in case["rendered"]
    case.update(date_dependent=True, today=today)
    cases.append(case)
    return cases


TRL_EXAMPLES = [
    ("prompt_completion", {"prompt": [user("What color is the sky?")],
                           "completion": [asst("It is blue.")]}),
    ("preference", {"prompt": [sys_("You are a helpful assistant."), user("What color is the sky?")],
                    "chosen": [asst("It is blue.")], "rejected": [asst("It is green.")]}),
    ("language_modeling", {"messages": [sys_("You are a helpful assistant."), user("What is 2+2?"),
                                        asst("2+2 equals 4.")]}),
    ("prompt_only", {"prompt": [user("What is 2+2?")]}),
    # Per-line template arguments, as TRL's SFTTrainer passes them: a "tools" column and
    # "chat_template_kwargs".
    ("prompt_completion_tools", {
        "prompt": [user("Weather in Paris?")], "completion": [asst("Let me check.")],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}]}),
    ("prompt_completion_kwargs", {
        "prompt": [user("What day is it?")], "completion": [asst("A good one.")],
        "chat_template_kwargs": {"date_string": "01 Jan 2030"}}),
]


def trl_cases():
    cases = []
    for name in ("qwen2_5", "llama3_1"):
        tok = TOKENIZERS[name]
        tok_info = {"base": "tests/golden/fixtures/models/gpt2", "chat_template": f"{name}.jinja",
                    "set": {"bos_token": SPECIAL[name].get("bos_token"), "eos_token": SPECIAL[name]["eos_token"]},
                    "special_tokens_map": tok.special_tokens_map}
        for case_name, example in TRL_EXAMPLES:
            out = maybe_apply_chat_template(copy.deepcopy(example), tok, tools=example.get("tools"))
            cases.append({"name": "trl_" + case_name, "template": name,
                          "trl_function": "trl.data_utils.maybe_apply_chat_template",
                          "trl_input": example, "trl_tokenizer": tok_info, "trl_output": out})
    return cases


def main():
    cases = direct_cases() + trl_cases()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    raised = sum(1 for c in cases if c.get("raises"))
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases ({raised} raising)")


if __name__ == "__main__":
    main()
