"""Goldens for the off-policy and DAPO pieces of the policy loss (fixtures/algo/off_policy.json):

- CISPO (MiniMax-M1; TRL GRPOTrainer loss_type="cispo", added after 0.24, transcribed):
  per_token = -clamp(coef_1, max=epsilon_high).detach() * A * logprob, with its gradient;
- truncated importance sampling (TIS) of the GRPO loss, as TRL 0.24's
  vllm_importance_sampling_correction (per_token_loss *= min(exp(old - sampling), cap), before
  the KL term) and of the PPO clipped loss, as veRL's tis_imp_ratio (after the dual clip);
- the TIS weights themselves (padding holds junk: the weight there must be 1);
- GSPO's sequence-level ratio together with TIS;
- DAPO's soft overlong punishment (veRL DAPORewardManager overlong_buffer, transcribed).

Run: .venv/bin/python tests/golden/make_off_policy_goldens.py (after scripts/install_deps.sh
--python). Shares make_algo_goldens.py's encoders and pins (TRL 0.24.0, torch 2.9.1).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_algo_goldens import D, case, gen, randn, right_mask, write  # noqa: E402


def grpo_per_token(lp, old, ref, adv, mask, s, is_weights):
    """TRL GRPOTrainer._compute_loss up to aggregation (with the cispo branch)."""
    log_ratio = lp - old
    if s["level"] == "token":
        log_w = log_ratio
    else:
        log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    coef_1 = torch.exp(log_w)
    a = adv.unsqueeze(1)
    if s["policy_loss"] == "cispo":
        per_token = -torch.clamp(coef_1, max=s["eps_high"]).detach() * a * lp
        high = (coef_1 > s["eps_high"]) & (a > 0)
        low = torch.zeros_like(high)
    else:
        coef_2 = torch.clamp(coef_1, 1 - s["eps_low"], 1 + s["eps_high"])
        per_token = -torch.min(coef_1 * a, coef_2 * a)
        low = (coef_1 < 1 - s["eps_low"]) & (a < 0)
        high = (coef_1 > 1 + s["eps_high"]) & (a > 0)
    if is_weights is not None:
        per_token = per_token * is_weights
    kl = torch.exp(ref - lp) - (ref - lp) - 1
    if s["beta"] != 0.0:
        per_token = per_token + s["beta"] * kl
    return per_token, low, high, kl


def grpo_cases(g):
    n, t = 6, 7
    lp0 = randn(g, n, t, scale=0.5) - 1.0
    old = lp0 + randn(g, n, t, scale=0.3)
    ref = lp0 + randn(g, n, t, scale=0.2)
    sampling = old + randn(g, n, t, scale=0.4)  # the rollout's (e.g. bf16) log-probs
    adv = randn(g, n)
    mask = right_mask([7, 3, 0, 5, 1, 6], t).to(D)
    settings = [
        dict(policy_loss="cispo", level="token", eps_low=0.2, eps_high=1.3, beta=0.0, cap=None),
        dict(policy_loss="cispo", level="token", eps_low=0.2, eps_high=5.0, beta=0.04, cap=2.0),
        dict(policy_loss="clip", level="token", eps_low=0.2, eps_high=0.28, beta=0.04, cap=2.0),
        dict(policy_loss="clip", level="sequence", eps_low=0.1, eps_high=0.1, beta=0.0, cap=1.5),
    ]
    cases = []
    for s in settings:
        lp = lp0.clone().requires_grad_(True)
        w = None
        if s["cap"] is not None:
            w = torch.clamp(torch.exp(old - sampling), max=s["cap"]) * mask + (1 - mask)
        per_token, low, high, kl = grpo_per_token(lp, old, ref, adv, mask, s, w)
        # Token mean over the batch (TRL "bnpo"; "dapo" with one process and step).
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
        loss.backward()

        def mbm(x):
            return x.mean() if x.shape[1] == 1 else (x * mask).sum() / mask.sum().clamp(min=1.0)

        outputs = {"loss": loss, "grad_logprobs": lp.grad, "clip_ratio_high": mbm(high.to(D)),
                   "clip_ratio_region": mbm((low | high).to(D))}
        if s["beta"] != 0.0:
            outputs["mean_kl"] = mbm(kl)
        params = {"loss_type": "bnpo", "beta": s["beta"], "epsilon_low": s["eps_low"],
                  "epsilon_high": s["eps_high"], "importance_sampling": s["level"],
                  "policy_loss": s["policy_loss"], "grad": True}
        inputs = {"logprobs": lp0, "old_logprobs": old, "advantages": adv, "mask": mask}
        if s["beta"] != 0.0:
            inputs["ref_logprobs"] = ref
        if w is not None:
            inputs["is_weights"] = w
        cases.append(case("grpo_loss", params, inputs, outputs))
    return cases, old, sampling, mask


def tis_weight_cases(old, sampling, mask):
    cases = []
    junk_old = old.clone()
    junk_old[mask == 0] = 40.0  # padding: exp(40 - x) would be huge; the weight must be 1
    for cap in (1.0, 2.0, 10.0):
        w = torch.clamp(torch.exp(old - sampling), max=cap) * mask + (1 - mask)
        cases.append(case("tis_weights", {"cap": cap},
                          {"old_logprobs": junk_old, "rollout_logprobs": sampling, "mask": mask},
                          {"weights": w}))
    return cases


def ppo_tis_cases(g):
    # veRL compute_policy_loss (dual clip) then pg_losses * tis_imp_ratio, token mean.
    b, t = 5, 6
    lp = randn(g, b, t, scale=0.6) - 1.2
    old = lp + randn(g, b, t, scale=0.3)
    sampling = old + randn(g, b, t, scale=0.5)
    adv = randn(g, b, t)
    mask = right_mask([6, 2, 0, 4, 5], t).to(D)
    cases = []
    for cap, dual in ((2.0, None), (1.2, 3.0)):
        w = torch.clamp(torch.exp(old - sampling), max=cap) * mask + (1 - mask)
        ratio = torch.exp(lp - old)
        pg1 = -adv * ratio
        pg2 = -adv * torch.clamp(ratio, 1 - 0.2, 1 + 0.28)
        pg = torch.maximum(pg1, pg2)
        if dual is not None:
            pg = torch.where(adv < 0, torch.minimum(pg, -adv * dual), pg)
        pg = pg * w
        loss = (pg * mask).sum() / mask.sum()
        params = {"clip_eps_low": 0.2, "clip_eps_high": 0.28}
        if dual is not None:
            params["dual_clip"] = dual
        cases.append(case("ppo_policy_loss", params,
                          {"logprobs": lp, "old_logprobs": old, "advantages": adv, "mask": mask,
                           "is_weights": w},
                          {"loss": loss, "per_token_loss": pg * mask}))
    return cases


def overlong_cases():
    # veRL DAPORewardManager: expected_len = max_resp_len - overlong_buffer_len;
    # exceed_len = valid_response_length - expected_len;
    # overlong_reward = min(-exceed_len / overlong_buffer_len * penalty_factor, 0).
    lengths = torch.tensor([0, 10, 47, 48, 49, 56, 63, 64], dtype=torch.int64)
    cases = []
    for max_len, buffer, factor in ((64, 16, 1.0), (64, 4, 0.5), (64, 63, 2.0)):
        out = [min(-(int(n) - (max_len - buffer)) / buffer * factor, 0.0) for n in lengths]
        cases.append(case("overlong_penalty",
                          {"max_tokens": max_len, "buffer_tokens": buffer, "penalty": factor},
                          {"lengths": lengths}, {"penalty": torch.tensor(out, dtype=D)}))
    return cases


def main():
    g = gen(11)
    grpo, old, sampling, mask = grpo_cases(g)
    write("off_policy", grpo + tis_weight_cases(old, sampling, mask) + ppo_tis_cases(g) +
          overlong_cases())


if __name__ == "__main__":
    main()
