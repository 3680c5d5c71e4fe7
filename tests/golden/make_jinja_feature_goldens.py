#!/usr/bin/env python3
"""Goldens for the C++ Jinja subset (common/chat): small templates, one feature each,
rendered by the environment transformers renders chat templates with.

Writes tests/golden/fixtures/chat/jinja_features.json: [{"name", "template", "variables",
"rendered"} or {..., "error": true}]. Run: .venv/bin/python tests/golden/make_jinja_feature_goldens.py
Pinned: transformers 4.57.1, jinja2 3.1.6 (scripts/install_deps.sh --python).
"""
import json
import pathlib

import jinja2
import transformers
from transformers.utils.chat_template_utils import _compile_jinja_template

assert transformers.__version__ == "4.57.1", transformers.__version__
assert jinja2.__version__ == "3.1.6", jinja2.__version__

MESSAGES = [
    {"role": "system", "content": "  Be brief.  "},
    {"role": "user", "content": "héllo 世界"},
    {"role": "assistant", "content": "Hi!", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": "z"}}}]},
    {"role": "user", "content": "Thanks"},
]

CASES = [
    ("text", "plain text\n", {}),
    ("output_types", "{{ s }}|{{ i }}|{{ f }}|{{ b }}|{{ n }}|{{ l }}|{{ d }}|{{ u }}",
     {"s": "x", "i": 3, "f": 1.5, "b": True, "n": None, "l": [1, "a", None], "d": {"k": "v"}}),
    ("float_repr", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e-5 * 1 }} {{ 2.5e16 * 1 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }}", {}),
    ("trim_blocks", "{% if true %}\nA\n{% endif %}\nB", {}),
    ("lstrip_blocks", "x\n    {% if true %}\n    A\n    {% endif %}\ny", {}),
    ("lstrip_not_after_output", "{{ 'a' }}  {% if true %}b{% endif %}", {}),
    ("dash_strip", "a   {{- 'b' -}}   c\n  {%- if true -%}  d  {%- endif %}\n", {}),
    ("plus_keeps", "x\n  {%+ if true +%}\nA{% endif %}", {}),
    ("comments", "a\n  {# note #}\nb {#- x -#} c", {}),
    ("for_loop", "{% for m in messages %}{{ loop.index0 }}:{{ m.role }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %} {{ loop.length }} {{ loop.revindex }};{% endfor %}", {"messages": MESSAGES}),
    ("for_else_filter", "{% for x in xs if x > 1 %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {"xs": [1, 2, 3]}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_scope", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {"messages": MESSAGES}),
    ("set_block", "{% set greeting %}Hello {{ name }}{% endset %}[{{ greeting }}]", {"name": "x"}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a + b }}", {}),
    ("conditional_expr", "{{ 'y' if flag else 'n' }}{{ 'z' if not flag }}|{{ 'a' if x is defined else 'b' }}", {"flag": False}),
    ("and_or_values", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }} {{ 'a' and 0 }}", {}),
    ("tests", "{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ s is string }} {{ 1 is number }} {{ d is mapping }} {{ l is iterable }} {{ s is not string }} {{ 3 is odd }} {{ 4 is even }} {{ 'a' is equalto 'a' }} {{ 1.5 is float }} {{ 2 is integer }} {{ true is boolean }} {{ l is sequence }} {{ 6 is divisibleby 3 }}",
     {"x": 1, "n": None, "s": "t", "d": {}, "l": [1]}),
    ("comparisons", "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ [1, 2] == [1, 2] }}", {}),
    ("concat_and_math", "{{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 2 }} {{ -x }} {{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }}", {"x": 4}),
    ("subscripts_slices", "{{ messages[0]['role'] }} {{ messages[-1].content }} {{ messages[1:]|length }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ 'héllo'[1] }} {{ [1,2,3,4][::2] }} {{ [1,2,3][-2:] }} {{ messages[9] is defined }}", {"messages": MESSAGES}),
    ("string_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' B') }}|{{ 'a,b,,c'.split(',') }}|{{ ' x  y '.split() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ 'a-a'.replace('a', 'b') }}|{{ 'hello world'.title() }}|{{ 'abc'.find('c') }}|{{ '-'.join(['a', 'b']) }}", {"s": "  Be brief.  "}),
    ("dict_methods", "{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.get('z') }} {{ d['a'] }} {{ d.a }}", {"d": {"a": 1, "b": [2]}}),
    ("filters_text", "{{ s|trim }}|{{ s|length }}|{{ 'hé'|length }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello world'|capitalize }}|{{ 'hello world'|title }}|{{ 'a.b'|replace('.', '!') }}|{{ 'x'|string }}|{{ 3|string }}|{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", {"s": "  Be brief.  "}),
    ("filters_lists", "{{ l|join(', ') }}|{{ l|first }}|{{ l|last }}|{{ l|length }}|{{ l|reverse|list }}|{{ [1, 1, 2]|unique|list }}|{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|join(',') }}|{{ [0, 1, 2]|select|list }}|{{ [0, 1, 2]|reject('odd')|list }}|{{ messages|selectattr('tool_calls', 'defined')|list|length }}|{{ ['a', 'b']|map('upper')|join }}",
     {"l": ["x", "y", "z"], "messages": MESSAGES}),
    ("filters_default", "{{ u|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ u|d('x') }}", {}),
    ("filters_numbers", "{{ '5'|int + 1 }} {{ 'x'|int }} {{ 2.7|int }} {{ '1.5'|float }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }}", {}),
    ("tojson", "{{ messages[2].tool_calls|tojson }}|{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é\"\\n'|tojson }}|{{ [1.0, none, true]|tojson }}|{{ {}|tojson }}|{{ d|tojson(sort_keys=true) }}",
     {"messages": MESSAGES, "d": {"b": [1, {"c": None}], "a": "x"}}),
    ("items_filter_and_dict_literal", "{% for k, v in {'x': 1, 'y': [2]}|items %}{{ k }}{{ v }}{% endfor %} {{ dict(a=1)['a'] }}", {}),
    ("elif_chain", "{% for r in ['system', 'user', 'assistant', 'tool'] %}{% if r == 'system' %}S{% elif r == 'user' %}U{% elif r == 'assistant' %}A{% else %}?{% endif %}{% endfor %}", {}),
    ("generation_tag", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endif %}{% endfor %}", {"messages": MESSAGES}),
    ("strings_escapes", "{{ 'a\\tb' }}|{{ \"it's\" }}|{{ 'x' 'y' }}|{{ '\\\\' }}|{{ l }}", {"l": ["it's", "a\"b", "c\nd"]}),
    ("raise_exception", "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}", {"messages": MESSAGES}),
    ("undefined_attribute_error", "{{ nothing.attr }}", {}),
    ("macro", "{% macro f(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ f(1) }}{{ f(2, b=3) }}{{ f('x', 'y') }}", {}),
    ("unsupported_include", "{% include 'other.jinja' %}", {}),
    ("trailing_newline_dropped_once", "a\n\n", {}),
]


def main():
    out = []
    for name, source, variables in CASES:
        case = {"name": name, "template": source, "variables": variables}
        try:
            case["rendered"] = _compile_jinja_template(source).render(**variables)
        except Exception as error:  # noqa: BLE001 - any template error is the golden
            case["error"] = True
            case["python_error"] = f"{type(error).__name__}: {error}"
        out.append(case)
    path = pathlib.Path(__file__).parent / "fixtures" / "chat" / "jinja_features.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {len(out)} cases to {path}")


if __name__ == "__main__":
    main()
