#!/usr/bin/env python3
"""Goldens for common/algo (tests/unit/algo/algo_golden_test.cc).

Exact versions: trl==0.24.0, torch==2.9.1, transformers==4.57.1 (asserted below).

Where TRL has a function, it is run as is: trl.core.masked_mean / masked_var /
masked_whiten, trl.trainer.utils.selective_log_softmax / entropy_from_logits,
DPOTrainer.dpo_loss, KTOTrainer.kto_loss, ORPOTrainer.odds_ratio_loss, CPOTrainer.cpo_loss,
RewardTrainer.compute_loss (unbound methods called with a minimal stand-in `self` carrying
the attributes they read) and transformers' fixed_cross_entropy (the reduction of
ForCausalLMLoss). Where TRL has no function (its PPO/GRPO/RLOO trainers inline the math in
train() / _compute_loss; OpenRLHF's REINFORCE++ and dual clip; TRL <= 0.11's
AdaptiveKLController), the code block is transcribed below in float64, with a comment
naming where it comes from.

Inputs are seeded float64 random tensors with right padding (and an all-padding row where
the reference defines a result). Output: tests/golden/fixtures/algo/<family>.json, each
{"meta": ..., "cases": [{"fn", "params", "inputs", "outputs"}]}, tensors as
{"dtype", "shape", "data"} with data flattened row-major.

Run: .venv/bin/python tests/golden/make_algo_goldens.py
"""
import json
import math
import os
import types
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
import transformers
import trl
from transformers.loss.loss_utils import fixed_cross_entropy
from trl.core import masked_mean, masked_var, masked_whiten
from trl.trainer.cpo_trainer import CPOTrainer
from trl.trainer.dpo_config import FDivergenceType
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.kto_trainer import KTOTrainer
from trl.trainer.orpo_trainer import ORPOTrainer
from trl.trainer.reward_trainer import RewardTrainer
from trl.trainer.utils import entropy_from_logits, selective_log_softmax

assert trl.__version__ == "0.24.0", trl.__version__
assert torch.__version__.split("+")[0] == "2.9.1", torch.__version__
assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "fixtures", "algo")
INVALID_LOGPROB = 1.0  # TRL ppo_trainer.py
D = torch.float64


def enc(x):
    x = torch.as_tensor(x)
    if x.dtype == torch.bool:
        dtype, data = "bool", x.flatten().int().tolist()
    elif x.dtype in (torch.int64, torch.int32):
        dtype, data = "int64", x.flatten().tolist()
    else:
        dtype, data = "float64", x.detach().to(D).flatten().tolist()
        assert all(math.isfinite(v) for v in data), "goldens must be finite (JSON)"
    return {"dtype": dtype, "shape": list(x.shape), "data": data}


def case(fn, params, inputs, outputs):
    return {
        "fn": fn,
        "params": params,
        "inputs": {k: enc(v) for k, v in inputs.items()},
        "outputs": {k: enc(v) for k, v in outputs.items()},
    }


def gen(seed):
    g = torch.Generator().manual_seed(seed)
    return g


def randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=D) * scale


def right_mask(lengths, t):
    return torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def stand_in(**attrs):
    acc = types.SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x)
    return types.SimpleNamespace(accelerator=acc, **attrs)


def write(name, cases):
    os.makedirs(OUT, exist_ok=True)
    meta = {"trl": trl.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "generator": "tests/golden/make_algo_goldens.py"}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"meta": meta, "cases": cases}, f, separators=(",", ":"))
    n = sum(len(c["outputs"]) for c in cases)
    print(f"{name}.json: {len(cases)} cases, {n} outputs")


# ---------------------------------------------------------------------------------------
def masked_cases():
    g = gen(1)
    v = randn(g, 5, 7, scale=2.0) + 0.5
    mask = right_mask([7, 4, 0, 1, 6], 7)  # includes an all-padding row and a 1-token row
    row_mask = right_mask([7, 4, 2, 1, 6], 7)  # TRL's per-row mean is NaN for an empty row
    cases = [
        case("masked_mean", {}, {"values": v, "mask": mask}, {"out": masked_mean(v, mask)}),
        case("masked_row_mean", {}, {"values": v, "mask": row_mask},
             {"out": masked_mean(v, row_mask, axis=1)}),
        case("masked_row_sum", {}, {"values": v, "mask": mask}, {"out": (v * mask).sum(1)}),
        case("masked_var", {"unbiased": True}, {"values": v, "mask": mask},
             {"out": masked_var(v, mask, unbiased=True)}),
        case("masked_var", {"unbiased": False}, {"values": v, "mask": mask},
             {"out": masked_var(v, mask, unbiased=False)}),
    ]
    for shift in (True, False):
        # TRL's callers masked_fill padding with 0 right after whitening.
        w = masked_whiten(v, mask, shift_mean=shift).masked_fill(~mask, 0)
        cases.append(case("masked_whiten", {"shift_mean": shift}, {"values": v, "mask": mask}, {"out": w}))
    # Float (weighted) mask.
    fm = torch.rand(5, 7, generator=g, dtype=D) * mask
    cases.append(case("masked_mean", {}, {"values": v, "mask": fm}, {"out": masked_mean(v, fm)}))
    # Loss aggregations: TRL GRPOTrainer._compute_loss grpo / bnpo / dr_grpo.
    l = randn(g, 5, 7)
    m = mask.to(D)
    cases.append(case("aggregate", {"mode": "token_mean"}, {"loss": l, "mask": mask},
                      {"out": (l * m).sum() / m.sum().clamp(min=1.0)}))
    cases.append(case("aggregate", {"mode": "sequence_mean"}, {"loss": l, "mask": mask},
                      {"out": ((l * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()}))
    cases.append(case("aggregate", {"mode": "sequence_sum"}, {"loss": l, "mask": mask},
                      {"out": (l * m).sum(-1).mean()}))
    cases.append(case("aggregate", {"mode": "constant", "max_length": 16}, {"loss": l, "mask": mask},
                      {"out": (l * m).sum() / (l.size(0) * 16)}))
    return cases


# ---------------------------------------------------------------------------------------
class AdaptiveKLControllerTrl011:
    """Transcribed from trl/trainer/utils.py (TRL 0.11.4); TRL 0.24 no longer ships it."""

    def __init__(self, init_kl_coef, target, horizon):
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current, n_steps):
        target = self.target
        proportional_error = np.clip(current / target - 1, -0.2, 0.2)
        mult = 1 + proportional_error * n_steps / self.horizon
        self.value *= mult


def kl_cases():
    g = gen(2)
    lp = randn(g, 4, 6, scale=0.8) - 2.0
    ref = lp + randn(g, 4, 6, scale=0.3)
    mask = right_mask([6, 3, 0, 5], 6)
    cases = []
    logr = ref - lp  # TRL PPOTrainer: logr = ref_logprobs - logprobs
    estimators = {"k1": -logr, "k2": 0.5 * logr**2, "k3": (logr.exp() - 1) - logr}
    for name, kl in estimators.items():
        cases.append(case("kl_penalty", {"estimator": name},
                          {"logprobs": lp, "ref_logprobs": ref, "mask": mask},
                          {"out": kl.masked_fill(~mask, 0)}))
    ctl = AdaptiveKLControllerTrl011(0.2, 6.0, 10000)
    kls = [3.0, 6.5, 12.0, 0.1, 7.2, 100.0]
    steps = [256, 512, 64, 1000, 256, 128]
    values = []
    for k, n in zip(kls, steps):
        ctl.update(k, n)
        values.append(ctl.value)
    cases.append(case("adaptive_kl", {"init_kl_coef": 0.2, "target": 6.0, "horizon": 10000},
                      {"kl": torch.tensor(kls, dtype=D), "n_steps": torch.tensor(steps)},
                      {"values": torch.tensor(values, dtype=D)}))
    return cases


# ---------------------------------------------------------------------------------------
def trl_ppo_block(lp, ref, values, scores, seq_lens, contain_eos, kl_coef, kl_estimator,
                  missing_eos_penalty, gamma, lam):
    """TRL 0.24 PPOTrainer.train, steps 'Response Processing 3' to 6, transcribed."""
    b, t = lp.shape
    scores = scores.clone()
    if missing_eos_penalty is not None:
        scores[~contain_eos] -= missing_eos_penalty
    response_idxs = torch.arange(t).repeat(b, 1)
    padding_mask = response_idxs > seq_lens.unsqueeze(1)
    logprobs = torch.masked_fill(lp, padding_mask, INVALID_LOGPROB)
    ref_logprobs = torch.masked_fill(ref, padding_mask, INVALID_LOGPROB)
    sequence_lengths_p1 = seq_lens + 1
    padding_mask_p1 = response_idxs > (sequence_lengths_p1.unsqueeze(1))
    values = torch.masked_fill(values, padding_mask_p1, 0)
    logr = ref_logprobs - logprobs
    kl = -logr if kl_estimator == "k1" else (logr.exp() - 1) - logr
    non_score_reward = -kl_coef * kl
    rewards = non_score_reward.clone()
    actual_start = torch.arange(rewards.size(0))
    actual_end = torch.where(sequence_lengths_p1 < rewards.size(1), sequence_lengths_p1, seq_lens)
    rewards[actual_start, actual_end] += scores  # TRL writes rewards[[actual_start, actual_end]]
    lastgaelam = 0
    advantages_reversed = []
    for i in reversed(range(t)):
        nextvalues = values[:, i + 1] if i < t - 1 else 0.0
        delta = rewards[:, i] + gamma * nextvalues - values[:, i]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], axis=1)
    returns = advantages + values
    whitened = masked_whiten(advantages, ~padding_mask)
    whitened = torch.masked_fill(whitened, padding_mask, 0)
    return dict(logprobs=logprobs, ref_logprobs=ref_logprobs, values=values, scores=scores,
                rewards=rewards, kl=kl, advantages=advantages, returns=returns,
                whitened=whitened, policy_mask=~padding_mask, value_mask=~padding_mask_p1)


def gae_direct(rewards, values, mask, gamma, lam):
    """GAE over valid tokens only (V beyond the last valid token = 0), float64."""
    r = rewards * mask
    v = values * mask
    b, t = r.shape
    adv = torch.zeros_like(r)
    last = torch.zeros(b, dtype=D)
    for i in reversed(range(t)):
        nxt = v[:, i + 1] if i + 1 < t else torch.zeros(b, dtype=D)
        last = r[:, i] + gamma * nxt - v[:, i] + gamma * lam * last
        adv[:, i] = last
    return adv * mask, (adv + v) * mask


def ppo_cases():
    g = gen(3)
    b, t = 5, 8
    lp = randn(g, b, t, scale=0.7) - 1.5
    ref = lp + randn(g, b, t, scale=0.2)
    values = randn(g, b, t)
    scores = randn(g, b, scale=2.0)
    # Last real index per row (TRL sequence_lengths); row 1 fills T (no room for EOS).
    seq_lens = torch.tensor([3, t - 1, 0, 5, 6])
    contain_eos = torch.tensor([True, False, True, False, True])
    cases = []
    for est, pen, gamma, lam in (("k1", None, 1.0, 0.95), ("k3", 1.0, 0.99, 0.9)):
        o = trl_ppo_block(lp, ref, values, scores, seq_lens, contain_eos, 0.05, est, pen, gamma, lam)
        params = {"kl_coef": 0.05, "estimator": est, "gamma": gamma, "lambda": lam}
        if pen is not None:
            params["missing_eos_penalty"] = pen
        cases.append(case("ppo_rewards_gae", params,
                          {"logprobs": o["logprobs"], "ref_logprobs": o["ref_logprobs"],
                           "values": o["values"], "scores": scores, "has_eos": contain_eos,
                           "value_mask": o["value_mask"], "policy_mask": o["policy_mask"]},
                          {"rewards": o["rewards"] * o["value_mask"], "scores": o["scores"],
                           "advantages": o["advantages"] * o["value_mask"],
                           "returns": o["returns"] * o["value_mask"], "whitened": o["whitened"]}))
    # Direct GAE with an all-padding row and a float (weighted) mask-free binary case.
    rewards = randn(g, 4, 6)
    vals = randn(g, 4, 6)
    mask = right_mask([6, 0, 2, 4], 6)
    a, r = gae_direct(rewards, vals, mask.to(D), 0.97, 0.9)
    cases.append(case("gae", {"gamma": 0.97, "lambda": 0.9},
                      {"rewards": rewards, "values": vals, "mask": mask},
                      {"advantages": a, "returns": r}))

    # Policy / value losses: TRL PPOTrainer minibatch block, transcribed.
    new_lp = lp + randn(g, b, t, scale=0.3)
    adv = randn(g, b, t)
    pmask = right_mask([4, 8, 1, 6, 7], t)
    vmask = right_mask([5, 8, 2, 7, 8], t)
    old_values = values
    vpred = values + randn(g, b, t, scale=0.4)
    returns = values + randn(g, b, t)
    new_m = torch.masked_fill(new_lp, ~pmask, INVALID_LOGPROB)
    old_m = torch.masked_fill(lp, ~pmask, INVALID_LOGPROB)
    for eps_low, eps_high, dual, agg in ((0.2, 0.2, None, "token_mean"), (0.2, 0.28, 3.0, "token_mean"),
                                         (0.1, 0.1, None, "sequence_mean")):
        diff = new_m - old_m
        ratio = torch.exp(diff)
        surr1 = ratio * adv  # OpenRLHF PolicyLoss (surr1/surr2, clip_eps_low/high, dual_clip)
        surr2 = ratio.clamp(1 - eps_low, 1 + eps_high) * adv
        if dual is None:
            loss_t = -torch.min(surr1, surr2)
        else:
            clip1 = torch.min(surr1, surr2)
            clip2 = torch.max(clip1, dual * adv)
            loss_t = -torch.where(adv < 0, clip2, clip1)
        pg_losses = -adv * ratio  # TRL PPOTrainer
        pg_losses2 = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
        if dual is None:
            assert torch.allclose(loss_t, torch.max(pg_losses, pg_losses2))
        if agg == "token_mean":
            pg_loss = masked_mean(loss_t, pmask)
        else:
            pg_loss = masked_mean(loss_t, pmask, axis=1).mean()
        clipfrac = masked_mean((pg_losses2 > pg_losses).float(), pmask)
        approxkl = 0.5 * masked_mean(diff**2, pmask)  # TRL: 0.5 * (diff**2).mean() incl. padding
        params = {"clip_eps_low": eps_low, "clip_eps_high": eps_high, "aggregation": agg}
        if dual is not None:
            params["dual_clip"] = dual
        cases.append(case("ppo_policy_loss", params,
                          {"logprobs": new_m, "old_logprobs": old_m, "advantages": adv, "mask": pmask},
                          {"loss": pg_loss, "per_token_loss": loss_t.masked_fill(~pmask, 0),
                           "clip_fraction": clipfrac, "approx_kl": approxkl}))
    for clip in (0.2, None):
        vp = torch.masked_fill(vpred, ~vmask, 0)
        if clip is None:
            vf_loss_max = torch.square(vp - returns)
            vf_clipfrac = torch.zeros((), dtype=D)
        else:
            vpredclipped = torch.clamp(vp, old_values - clip, old_values + clip)
            vf_losses1 = torch.square(vp - returns)
            vf_losses2 = torch.square(vpredclipped - returns)
            vf_loss_max = torch.max(vf_losses1, vf_losses2)
            vf_clipfrac = masked_mean((vf_losses2 > vf_losses1).float(), vmask)
        vf_loss = 0.5 * masked_mean(vf_loss_max, vmask)
        params = {} if clip is None else {"clip_range": clip}
        cases.append(case("ppo_value_loss", params,
                          {"values": vp, "old_values": old_values, "returns": returns, "mask": vmask},
                          {"loss": vf_loss, "clip_fraction": vf_clipfrac}))
    # Full loss: TRL's loss = pg_loss + vf_coef * vf_loss, minus an entropy bonus.
    entropy = torch.rand(b, t, generator=g, dtype=D) * 3
    ratio = torch.exp(new_m - old_m)
    pg = masked_mean(torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)), pmask)
    vpc = torch.clamp(vpred, old_values - 0.2, old_values + 0.2)
    vf = 0.5 * masked_mean(torch.max((vpred - returns) ** 2, (vpc - returns) ** 2), vmask)
    ent = masked_mean(entropy, pmask)
    cases.append(case("ppo_loss", {"vf_coef": 0.1, "entropy_coef": 0.01},
                      {"logprobs": new_m, "old_logprobs": old_m, "advantages": adv, "mask": pmask,
                       "values": vpred, "old_values": old_values, "returns": returns,
                       "value_mask": vmask, "entropy": entropy},
                      {"loss": pg + 0.1 * vf - 0.01 * ent, "policy_loss": pg, "value_loss": vf,
                       "entropy": ent}))
    return cases


# ---------------------------------------------------------------------------------------
def logprob_cases():
    g = gen(4)
    cases = []
    for b, t, v, temp in ((3, 5, 11, 1.0), (2, 7, 13, 0.7)):
        logits = randn(g, b, t, v, scale=2.0)
        targets = torch.randint(0, v, (b, t), generator=g)
        w_lp = randn(g, b, t)
        w_h = randn(g, b, t)
        x = logits.clone().requires_grad_(True)
        scaled = x / (temp + 1e-7) if temp != 1.0 else x  # TRL: logits /= temperature + 1e-7
        lp = selective_log_softmax(scaled, targets)
        h = entropy_from_logits(scaled, chunk_size=4)
        ((lp * w_lp).sum() + (h * w_h).sum()).backward()
        cases.append(case("logprobs_entropy", {"temperature": temp + 1e-7 if temp != 1.0 else 1.0, "chunk": 2},
                          {"logits": logits, "targets": targets, "w_logprobs": w_lp, "w_entropy": w_h},
                          {"logprobs": lp, "entropy": h, "grad_logits": x.grad}))
    # SFT: transformers ForCausalLMLoss = shift + fixed_cross_entropy(ignore_index=-100).
    b, t, v = 3, 6, 9
    logits = randn(g, b, t, v, scale=1.5)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[0, :2] = -100  # prompt
    labels[1, :4] = -100
    labels[2, 5:] = -100  # padding
    shift_logits = logits[:, :-1, :].contiguous()
    shift_labels = labels[:, 1:].contiguous()
    flat = shift_logits.view(-1, v)
    mean_loss = fixed_cross_entropy(flat, shift_labels.view(-1), None, -100)
    sum_loss = fixed_cross_entropy(flat, shift_labels.view(-1), torch.tensor(20.0, dtype=D), -100)
    mask = shift_labels != -100
    acc = ((shift_logits.argmax(-1) == shift_labels) & mask).sum() / mask.sum()
    cases.append(case("sft", {}, {"logits": shift_logits, "targets": shift_labels, "mask": mask},
                      {"loss": mean_loss, "num_tokens": mask.sum().to(D), "token_accuracy": acc}))
    cases.append(case("sft", {"num_items_in_batch": 20.0},
                      {"logits": shift_logits, "targets": shift_labels, "mask": mask},
                      {"loss": sum_loss}))
    return cases


# ---------------------------------------------------------------------------------------
def grpo_cases():
    g = gen(5)
    k = 4
    rewards = randn(g, 12)
    rewards[4:8] = 0.75  # a group of identical rewards
    cases = []
    for scale in ("group", "batch", "none"):
        # TRL 0.24 GRPOTrainer._generate_and_score_completions, transcribed.
        mean_grouped = rewards.view(-1, k).mean(dim=1).repeat_interleave(k, dim=0)
        advantages = rewards - mean_grouped
        if scale in ("group", "none"):
            std = rewards.view(-1, k).std(dim=1).repeat_interleave(k, dim=0)
        else:
            std = rewards.std().expand_as(rewards)
        is_std_zero = torch.isclose(std, torch.zeros_like(std))
        if scale != "none":
            advantages = advantages / (std + 1e-4)
        cases.append(case("grpo_advantages", {"group_size": k, "scale_rewards": scale},
                          {"rewards": rewards},
                          {"advantages": advantages, "std": std,
                           "zero_std_fraction": is_std_zero.to(D).mean()}))
    # Loss: TRL 0.24 GRPOTrainer._compute_loss, transcribed.
    n, t = 6, 7
    lp = randn(g, n, t, scale=0.5) - 1.0
    old = lp + randn(g, n, t, scale=0.2)
    ref = lp + randn(g, n, t, scale=0.2)
    adv = randn(g, n)
    mask = right_mask([7, 3, 0, 5, 1, 6], t).to(D)
    settings = [
        dict(loss_type="grpo", beta=0.0, eps_low=0.2, eps_high=0.2, delta=None, level="token"),
        dict(loss_type="bnpo", beta=0.04, eps_low=0.2, eps_high=0.28, delta=None, level="token"),
        dict(loss_type="dr_grpo", beta=0.04, eps_low=0.2, eps_high=0.2, delta=1.5, level="token",
             max_len=10),
        dict(loss_type="dapo", beta=0.1, eps_low=0.2, eps_high=0.28, delta=None, level="token",
             num_items=40.0),
        dict(loss_type="grpo", beta=0.0, eps_low=0.1, eps_high=0.1, delta=None, level="sequence"),
    ]
    for s in settings:
        per_token_kl = torch.exp(ref - lp) - (ref - lp) - 1
        log_ratio = lp - old
        if s["level"] == "token":
            log_w = log_ratio
        else:
            log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
        coef_1 = torch.exp(log_w)
        coef_2 = torch.clamp(coef_1, 1 - s["eps_low"], 1 + s["eps_high"])
        if s["delta"] is not None:
            coef_1 = torch.clamp(coef_1, max=s["delta"])
        per_token_loss = -torch.min(coef_1 * adv.unsqueeze(1), coef_2 * adv.unsqueeze(1))
        if s["beta"] != 0.0:
            per_token_loss = per_token_loss + s["beta"] * per_token_kl
        if s["loss_type"] == "grpo":
            loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        elif s["loss_type"] == "bnpo":
            loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
        elif s["loss_type"] == "dr_grpo":
            loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * s["max_len"])
        else:
            loss = (per_token_loss * mask).sum() / s["num_items"]

        def mbm(x):
            return x.mean() if x.shape[1] == 1 else (x * mask).sum() / mask.sum().clamp(min=1.0)

        low = (coef_1 < 1 - s["eps_low"]) & (adv.unsqueeze(1) < 0)
        high = (coef_1 > 1 + s["eps_high"]) & (adv.unsqueeze(1) > 0)
        outputs = {"loss": loss, "clip_ratio_low": mbm(low.to(D)), "clip_ratio_high": mbm(high.to(D)),
                   "clip_ratio_region": mbm((low | high).to(D))}
        if s["beta"] != 0.0:
            outputs["mean_kl"] = mbm(per_token_kl)
        params = {"loss_type": s["loss_type"], "beta": s["beta"], "epsilon_low": s["eps_low"],
                  "epsilon_high": s["eps_high"], "importance_sampling": s["level"]}
        if s["delta"] is not None:
            params["delta"] = s["delta"]
        if "max_len" in s:
            params["max_completion_length"] = s["max_len"]
        if "num_items" in s:
            params["num_items_in_batch"] = s["num_items"]
        inputs = {"logprobs": lp, "old_logprobs": old, "advantages": adv, "mask": mask}
        if s["beta"] != 0.0:
            inputs["ref_logprobs"] = ref
        cases.append(case("grpo_loss", params, inputs, outputs))
    # RLOO: TRL 0.24 RLOOTrainer._generate_and_score_completions / _compute_loss, transcribed.
    rl_rewards = randn(g, 12)
    rl_rewards[8:12] = -0.5
    seq_kl = torch.rand(12, generator=g, dtype=D) * 4
    for beta, normalize, clip_range in ((0.05, False, None), (0.1, True, (-1.0, 1.0))):
        r = rl_rewards.clone()
        if clip_range:
            r = r.clamp(min=clip_range[0], max=clip_range[1])
        r = r - beta * seq_kl
        grouped = r.view(-1, k)
        baselines = ((grouped.sum(dim=1, keepdim=True) - grouped) / (k - 1)).view(-1)
        a = r - baselines
        if normalize:
            a = (a - a.mean()) / (a.std() + 1e-4)
        params = {"group_size": k, "beta": beta, "normalize_advantages": normalize}
        if clip_range:
            params["reward_clip"] = list(clip_range)
        cases.append(case("rloo_advantages", params, {"rewards": rl_rewards, "sequence_kl": seq_kl},
                          {"advantages": a}))
    logps_new = lp[:, :] + randn(g, n, t, scale=0.05)
    s_new = (logps_new * mask).sum(1)
    s_old = (lp * mask).sum(1)
    coef_1 = torch.exp(s_new - s_old)
    coef_2 = torch.clamp(coef_1, 1 - 0.2, 1 + 0.28)
    rl_loss = (-torch.min(coef_1 * adv, coef_2 * adv)).mean()
    cases.append(case("rloo_loss", {"epsilon_low": 0.2, "epsilon_high": 0.28},
                      {"logprobs": logps_new, "old_logprobs": lp, "advantages": adv, "mask": mask},
                      {"loss": rl_loss}))
    # REINFORCE++: OpenRLHF get_cumulative_returns + advantage normalisation, transcribed.
    rw = randn(g, 4, 6, scale=0.1)
    m4 = right_mask([6, 2, 0, 4], 6).to(D)
    for gamma in (1.0, 0.9):
        rr = rw * m4
        returns = torch.zeros_like(rr)
        cumulative = torch.zeros(rr.size(0), dtype=D)
        for i in reversed(range(rr.size(1))):
            cumulative = rr[:, i] + gamma * cumulative
            returns[:, i] = cumulative
        num = m4.sum()
        mean = (returns * m4).sum() / num
        var = ((returns - mean).pow(2) * m4).sum() / num
        a = (returns - mean) * var.clamp(min=1e-8).rsqrt()
        cases.append(case("reinforce_pp", {"gamma": gamma}, {"rewards": rw, "mask": m4},
                          {"returns": returns * m4, "advantages": a * m4}))
    return cases


# ---------------------------------------------------------------------------------------
def dpo_self(beta, label_smoothing=0.0, reference_free=False):
    return stand_in(beta=beta, label_smoothing=label_smoothing, reference_free=reference_free,
                    f_divergence_type=FDivergenceType.REVERSE_KL, f_divergence_params={})


def preference_cases():
    g = gen(6)
    b = 6
    lengths_c = torch.tensor([5, 9, 3, 12, 7, 1])
    lengths_r = torch.tensor([8, 4, 6, 2, 10, 5])
    pc = -torch.rand(b, generator=g, dtype=D) * lengths_c * 2
    pr = -torch.rand(b, generator=g, dtype=D) * lengths_r * 2
    rc = pc + randn(g, b, scale=0.8)
    rr = pr + randn(g, b, scale=0.8)
    dpo = []
    for loss_type, ls, ref_free in (("sigmoid", 0.0, False), ("sigmoid", 0.1, False), ("robust", 0.1, False),
                                    ("hinge", 0.0, False), ("ipo", 0.0, False), ("sigmoid", 0.0, True)):
        beta = 0.1 if loss_type != "ipo" else 0.5
        inputs = {"policy_chosen_logps": pc, "policy_rejected_logps": pr, "ref_chosen_logps": rc,
                  "ref_rejected_logps": rr}
        args = (pc, pr, rc, rr)
        if loss_type == "ipo":
            # DPOTrainer.concatenated_forward divides all_logps by loss_mask.sum(-1) for "ipo",
            # for the policy and the reference model alike.
            args = (pc / lengths_c, pr / lengths_r, rc / lengths_c, rr / lengths_r)
            inputs.update(chosen_lengths=lengths_c, rejected_lengths=lengths_r)
        losses, cr, rj = DPOTrainer.dpo_loss(dpo_self(beta, ls, ref_free), *args, loss_type=loss_type)
        dpo.append(case("dpo", {"loss_type": loss_type, "beta": beta, "label_smoothing": ls,
                                "reference_free": ref_free}, inputs,
                        {"losses": losses, "loss": losses.mean(), "chosen_rewards": cr,
                         "rejected_rewards": rj, "reward_accuracy": (cr > rj).to(D).mean(),
                         "reward_margin": (cr - rj).mean()}))
    # KTO: KTOTrainer.kto_loss with chosen/rejected split by the label.
    desirable = torch.tensor([True, False, True, True, False, False, True, False])
    n = desirable.numel()
    pl = -torch.rand(n, generator=g, dtype=D) * 20
    rl = pl + randn(g, n, scale=1.0)
    pkl = -torch.rand(n, generator=g, dtype=D) * 20
    kto = []
    for beta, dw, uw, kl_shift in ((0.1, 1.0, 1.0, 0.5), (0.3, 1.33, 0.75, -2.0)):
        rkl = pkl - kl_shift  # kl_shift < 0: the batch KL clamps at 0
        self_ = stand_in(beta=beta, desirable_weight=dw, undesirable_weight=uw, calculate_KL=True,
                         loss_type="kto")
        losses, cr, rj, kl = KTOTrainer.kto_loss(self_, pl[desirable], pl[~desirable], pkl, rl[desirable],
                                                 rl[~desirable], rkl)
        in_order = torch.empty(n, dtype=D)
        in_order[desirable] = losses[: int(desirable.sum())]
        in_order[~desirable] = losses[int(desirable.sum()):]
        rewards = torch.empty(n, dtype=D)
        rewards[desirable] = cr
        rewards[~desirable] = rj
        kto.append(case("kto", {"beta": beta, "desirable_weight": dw, "undesirable_weight": uw},
                        {"policy_logps": pl, "ref_logps": rl, "desirable": desirable,
                         "policy_kl_logps": pkl, "ref_kl_logps": rkl},
                        {"losses": in_order, "loss": losses.nanmean(), "rewards": rewards,
                         "kl": kl.reshape(())}))
    # ORPO: ORPOTrainer.odds_ratio_loss on length-averaged logprobs; loss = nll - mean(losses).
    ac = -torch.rand(b, generator=g, dtype=D) * 2 - 0.05
    ar = -torch.rand(b, generator=g, dtype=D) * 2 - 0.05
    ac[0] = -1e-4  # near log p = 0: exercises log1mexp's expm1 branch
    nll = torch.tensor(1.7, dtype=D)
    orpo = []
    for beta in (0.1, 0.25):
        losses, cr, rj, ratio, log_odds = ORPOTrainer.odds_ratio_loss(stand_in(beta=beta), ac, ar)
        orpo.append(case("orpo", {"beta": beta}, {"chosen_logps": ac, "rejected_logps": ar, "chosen_nll": nll},
                         {"loss": nll - losses.mean(), "log_odds_ratio": ratio, "log_odds_chosen": log_odds,
                          "chosen_rewards": cr, "rejected_rewards": rj}))
    # CPO / SimPO: CPOTrainer.cpo_loss (alpha = 0); loss = mean(losses) + cpo_alpha * nll.
    cpo = []
    for loss_type, beta, gamma, ls, alpha in (("simpo", 2.0, 0.5, 0.0, 0.0), ("simpo", 2.5, 1.0, 0.1, 1.0),
                                              ("sigmoid", 0.1, 0.5, 0.0, 1.0), ("hinge", 0.1, 0.5, 0.0, 0.0),
                                              ("ipo", 0.5, 0.5, 0.0, 0.0)):
        self_ = stand_in(beta=beta, simpo_gamma=gamma, label_smoothing=ls, loss_type=loss_type, alpha=0.0)
        losses, cr, rj = CPOTrainer.cpo_loss(self_, ac, ar)
        cpo.append(case("cpo", {"loss_type": loss_type, "beta": beta, "simpo_gamma": gamma,
                                "label_smoothing": ls, "nll_weight": alpha},
                        {"chosen_logps": ac, "rejected_logps": ar, "chosen_nll": nll},
                        {"losses": losses, "loss": losses.mean() + alpha * nll, "chosen_rewards": cr,
                         "rejected_rewards": rj}))
    # Reward model: RewardTrainer.compute_loss with a stand-in model returning the rewards.
    rm = []
    chosen = randn(g, b, scale=1.5)
    rejected = randn(g, b, scale=1.5)
    rejected[2] = chosen[2]  # a tie counts as wrong
    margin = torch.rand(b, generator=g, dtype=D)
    for center, use_margin in ((None, False), (0.01, True)):
        metrics = defaultdict(lambda: defaultdict(list))
        self_ = stand_in(model=types.SimpleNamespace(training=True),
                         args=types.SimpleNamespace(center_rewards_coefficient=center),
                         _total_train_tokens=0, _metrics=metrics)
        inputs = {"attention_mask": torch.ones(2 * b, 3)}
        if use_margin:
            inputs["margin"] = margin
        logits = torch.cat([chosen, rejected]).unsqueeze(-1)
        loss = RewardTrainer.compute_loss(self_, lambda **kw: types.SimpleNamespace(logits=logits), inputs)
        params = {} if center is None else {"center_rewards_coefficient": center}
        rin = {"chosen": chosen, "rejected": rejected}
        if use_margin:
            rin["margin"] = margin
        rm.append(case("reward_model", params, rin,
                       {"loss": loss, "accuracy": torch.tensor(metrics["train"]["accuracy"][-1], dtype=D),
                        "margin": torch.tensor(metrics["train"]["margin"][-1], dtype=D)}))
    return dpo, kto, orpo, cpo, rm


def main():
    write("masked", masked_cases())
    write("kl", kl_cases())
    write("ppo", ppo_cases())
    write("logprobs", logprob_cases())
    write("grpo", grpo_cases())
    dpo, kto, orpo, cpo, rm = preference_cases()
    write("dpo", dpo)
    write("kto", kto)
    write("orpo", orpo)
    write("simpo", cpo)
    write("reward_model", rm)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"total {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
