#!/usr/bin/env python3
"""The bundled alignment demo, end to end (README: the main job).

Stages, each one `rlhf local` job from examples/demo/jobs/ with every service in-process:
  1. sft           a tiny GPT-2 from random weights learns the instruction corpus
  2. reward_model  the SFT model plus a score head learns the preference pairs
  3. ppo           the SFT model is optimised against the reward model, KL-penalised
  4. dpo           separately, the SFT model learns the same pairs with DPO
Then `rlhf eval` measures every model on held-out data, the hidden rule (hidden_rule.py,
which training never sees) judges fresh samples, and a report is written:

  OUT/report/summary.md     the table of results, with sample generations before/after
  OUT/report/summary.json   the same numbers, for scripts and tests
  OUT/report/metrics/*.jsonl  every iteration's metrics per stage (`rlhf local --metrics-jsonl`)
  OUT/report/plots/*.png    reward, KL and losses over iterations per stage (gnuplot)
  OUT/report/samples/*.jsonl  the evaluated samples with reward score, KL and rule score

Standard library only; needs build/bin/rlhf (scripts/main.sh builds it) and gnuplot for
the plots. --quick runs a shorter variant (the test suite's); --check exits 1 unless every
effect goes the right way (with the thresholds of issue 5 unless --quick).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hidden_rule  # noqa: E402

# --quick: the test suite's variant, the same jobs with fewer iterations.
QUICK_ITERATIONS = {"sft": 300, "reward_model": 150, "ppo": 30, "dpo": 60}
SAMPLES_PER_PROMPT = 4
EVAL_SEED = 1234


def log(message):
    print(message, flush=True)


class Demo:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.report = os.path.join(self.out, "report")
        self.data = os.path.join(HERE, "data")
        self.jobs = {}
        self.seconds = {}

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def run(self, name, command, log_file):
        """Runs a command, echoing its lines prefixed with the stage; raises on failure."""
        with open(log_file, "w") as logf:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            for line in proc.stdout:
                logf.write(line)
                if not self.args.quiet:
                    print(f"[{name}] {line}", end="", flush=True)
            if proc.wait() != 0:
                raise SystemExit(f"run_demo: stage {name} failed (exit {proc.returncode}); "
                                 f"see {log_file}")

    def write_job(self, stage):
        with open(os.path.join(HERE, "jobs", stage + ".json")) as f:
            job = json.load(f)
        # The job files name out/demo/...; point them at --out instead.
        text = json.dumps(job).replace('"out/demo/', json.dumps(self.out + "/")[:-1])
        job = json.loads(text)
        if self.args.quick:
            job["training"]["iterations"] = QUICK_ITERATIONS[stage]
        path = self.path("jobs", stage + ".json")
        with open(path, "w") as f:
            json.dump(job, f, indent=2)
        self.jobs[stage] = job
        return path

    def train(self, stage):
        job_file = self.write_job(stage)
        final = os.path.join(self.jobs[stage]["checkpoint"]["dir"], "final")
        shutil.rmtree(self.jobs[stage]["checkpoint"]["dir"], ignore_errors=True)
        log(f"== stage {stage}: {self.jobs[stage]['training']['iterations']} iterations "
            f"({job_file})")
        start = time.time()
        self.run(stage, [self.args.rlhf, "local", job_file, "--metrics-jsonl",
                         os.path.join(self.report, "metrics", stage + ".jsonl")],
                 self.path("logs", stage + ".log"))
        self.seconds[stage] = time.time() - start
        log(f"== stage {stage}: done in {self.seconds[stage]:.1f} s -> {final}")
        return final

    def evaluate(self, name, flags):
        """rlhf eval with the demo's token limits; returns its measures."""
        gen = self.jobs["ppo"]["generation"]
        output = self.path("eval", name + ".json")
        command = [self.args.rlhf, "eval", "--output", output,
                   "--max-prompt-tokens", str(gen["max_prompt_tokens"])] + flags
        self.run("eval " + name, command, self.path("logs", "eval-" + name + ".log"))
        with open(output) as f:
            return json.load(f)

    def sample(self, name, policy, sft, reward):
        gen = self.jobs["ppo"]["generation"]
        samples = os.path.join(self.report, "samples", name + ".jsonl")
        measures = self.evaluate("samples-" + name, [
            "--policy", policy, "--reference", sft, "--reward-model", reward,
            "--prompts", os.path.join(self.data, "heldout_prompts.jsonl"),
            "--samples-per-prompt", str(SAMPLES_PER_PROMPT), "--seed", str(EVAL_SEED),
            "--temperature", str(gen.get("temperature", 1.0)),
            "--max-response-tokens", str(gen["max_response_tokens"]),
            "--samples-out", samples])
        rows = [json.loads(line) for line in open(samples)]
        for row in rows:
            row["rule"] = hidden_rule.rule_score(hidden_rule.prompt_topic(row["prompt"]),
                                                 row["response"])
        with open(samples, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        measures["rule_mean"] = sum(r["rule"] for r in rows) / len(rows)
        measures["polite_fraction"] = sum(
            any(r["response"].strip().startswith(p) for p in hidden_rule.POLITE)
            for r in rows) / len(rows)
        measures["on_topic_fraction"] = sum(
            hidden_rule.prompt_topic(r["prompt"]) in hidden_rule.words(r["response"])
            for r in rows) / len(rows)
        return measures, rows

    def main(self):
        for sub in ["jobs", "logs", "eval", "report/metrics", "report/plots", "report/samples"]:
            os.makedirs(self.path(sub), exist_ok=True)
        start = time.time()
        sft = self.train("sft")
        reward = self.train("reward_model")
        ppo = self.train("ppo")
        dpo = self.train("dpo")

        log("== evaluation on held-out pairs and prompts")
        pairs = ["--pairs", os.path.join(self.data, "heldout.jsonl"),
                 "--max-response-tokens",
                 str(self.jobs["reward_model"]["generation"]["max_response_tokens"])]
        beta = str(self.jobs["dpo"].get("preference", {}).get("beta", 0.1))
        results = {
            "reward_model_before": self.evaluate("rm-before", ["--reward-model", sft] + pairs),
            "reward_model_after": self.evaluate("rm-after", ["--reward-model", reward] + pairs),
            "dpo_before": self.evaluate("dpo-before", ["--policy", sft, "--reference", sft,
                                                       "--beta", beta] + pairs),
            "dpo_after": self.evaluate("dpo-after", ["--policy", dpo, "--reference", sft,
                                                     "--beta", beta] + pairs),
        }
        samples = {}
        for name, policy in [("sft", sft), ("ppo", ppo), ("dpo", dpo)]:
            results["samples_" + name], samples[name] = self.sample(name, policy, sft, reward)
        results["ppo_vs_sft"] = win_rate(samples["ppo"], samples["sft"])
        results["dpo_vs_sft"] = win_rate(samples["dpo"], samples["sft"])
        results["kl_target"] = self.jobs["ppo"]["kl"]["target"]
        results["ppo_train_kl_last"] = last_metric(self.report, "ppo", "kl")
        results["seconds"] = dict(self.seconds, total=time.time() - start)
        results["quick"] = self.args.quick

        with open(os.path.join(self.report, "summary.json"), "w") as f:
            json.dump(results, f, indent=2)
        plot_all(self.report, results["kl_target"])
        checks = check(results, self.args.quick)
        write_summary(self.report, results, samples, checks)
        log("")
        log(open(os.path.join(self.report, "summary.md")).read().split("\n## Samples")[0])
        log(f"report: {self.report}/summary.md (plots in {self.report}/plots)")
        failed = [c for c in checks if not c[2]]
        if self.args.check and failed:
            for name, _, _ in failed:
                log(f"run_demo: check failed: {name}")
            return 1
        return 0


def last_metric(report, stage, name):
    rows = [json.loads(line) for line in open(os.path.join(report, "metrics", stage + ".jsonl"))]
    return rows[-1].get(name) if rows else None


def win_rate(candidate, baseline):
    """Per held-out prompt, the mean hidden-rule score of the candidate's samples against
    the baseline's (same prompts, same sampling seeds): a win, a tie (counts half) or a
    loss."""
    def by_prompt(rows):
        out = {}
        for r in rows:
            out.setdefault(r["prompt"], []).append(r["rule"])
        return {p: sum(v) / len(v) for p, v in out.items()}
    a, b = by_prompt(candidate), by_prompt(baseline)
    wins = sum(a[p] > b[p] for p in a)
    ties = sum(a[p] == b[p] for p in a)
    losses = len(a) - wins - ties
    return {"prompts": len(a), "wins": wins, "ties": ties, "losses": losses,
            "win_rate": (wins + 0.5 * ties) / len(a)}


def check(r, quick):
    """(description, value, passed) for every effect the demo must show. The full run
    holds issue 5's thresholds; --quick (fewer steps) only the direction of each effect."""
    ppo_s, sft_s, dpo_s = r["samples_ppo"], r["samples_sft"], r["samples_dpo"]
    rm_min, ppo_win, dpo_acc, dpo_win = (0.75, 0.5, 0.6, 0.5) if quick else (0.9, 0.7, 0.8, 0.65)
    score_margin = 0.5 if quick else 1.0
    return [
        (f"reward model held-out accuracy >= {rm_min:.0%}",
         r["reward_model_after"]["reward_model_accuracy"],
         r["reward_model_after"]["reward_model_accuracy"] >= rm_min),
        ("reward model accuracy rose over the untrained head",
         r["reward_model_after"]["reward_model_accuracy"]
         - r["reward_model_before"]["reward_model_accuracy"],
         r["reward_model_after"]["reward_model_accuracy"]
         > r["reward_model_before"]["reward_model_accuracy"]),
        (f"PPO reward-model score of fresh samples up by >= {score_margin} over SFT",
         ppo_s["score_mean"] - sft_s["score_mean"],
         ppo_s["score_mean"] - sft_s["score_mean"] >= score_margin),
        (f"hidden rule prefers PPO over SFT on >= {ppo_win:.0%} of held-out prompts",
         r["ppo_vs_sft"]["win_rate"], r["ppo_vs_sft"]["win_rate"] > ppo_win
         if quick else r["ppo_vs_sft"]["win_rate"] >= ppo_win),
        (f"PPO KL to the reference under the target ({r['kl_target']})",
         ppo_s["kl_mean"], 0 <= ppo_s["kl_mean"] < r["kl_target"]),
        ("DPO implicit-reward accuracy starts at 50% (policy = reference)",
         r["dpo_before"]["implicit_reward_accuracy"],
         abs(r["dpo_before"]["implicit_reward_accuracy"] - 0.5) < 1e-9),
        (f"DPO held-out implicit-reward accuracy >= {dpo_acc:.0%}",
         r["dpo_after"]["implicit_reward_accuracy"],
         r["dpo_after"]["implicit_reward_accuracy"] >= dpo_acc),
        (f"hidden rule prefers DPO over SFT on >= {dpo_win:.0%} of held-out prompts",
         r["dpo_vs_sft"]["win_rate"], r["dpo_vs_sft"]["win_rate"] > dpo_win
         if quick else r["dpo_vs_sft"]["win_rate"] >= dpo_win),
    ]


PLOTS = {  # stage -> [(metric, title)]
    "sft": [("loss", "SFT loss (NLL per token)")],
    "reward_model": [("loss", "reward model loss (Bradley-Terry)"),
                     ("reward_accuracy", "training-batch accuracy"),
                     ("reward_margin", "score(chosen) - score(rejected)")],
    "ppo": [("reward_mean", "reward-model score of rollouts"), ("kl", "KL to reference (dashed: target)"),
            ("policy_loss", "policy loss"), ("value_loss", "value loss")],
    "dpo": [("loss", "DPO loss"), ("reward_accuracy", "training-batch implicit-reward accuracy"),
            ("reward_margin", "implicit reward margin (chosen - rejected)"),
            ("chosen_rewards", "implicit reward of chosen: beta (log pi - log ref)")],
}


def plot_all(report, kl_target=None):
    if shutil.which("gnuplot") is None:
        log("run_demo: gnuplot not found; skipping plots (scripts/install_deps.sh installs it)")
        return
    for stage, series in PLOTS.items():
        rows = [json.loads(line) for line in open(os.path.join(report, "metrics", stage + ".jsonl"))]
        series = [(m, t) for m, t in series if any(m in r for r in rows)]
        data = os.path.join(report, "metrics", stage + ".dat")
        with open(data, "w") as f:
            for r in rows:
                f.write(" ".join([str(r["iteration"])] +
                                 [repr(r.get(m, float("nan"))) for m, _ in series]) + "\n")
        script = [f"set terminal pngcairo size 1000,{300 * ((len(series) + 1) // 2)} font ',10'",
                  f"set output '{os.path.join(report, 'plots', stage + '.png')}'",
                  f"set multiplot layout {(len(series) + 1) // 2},{min(2, len(series))} "
                  f"title '{stage}'",
                  "set grid", "set xlabel 'iteration'", "unset key"]
        for i, (metric, title) in enumerate(series):
            line = f"plot '{data}' using 1:{i + 2} with lines lw 2"
            yrange = "set autoscale y"
            if metric == "kl" and kl_target is not None:  # the configured target, dashed
                line += f", {kl_target} with lines dt 2 lw 2 lc rgb 'red'"
                top = max([kl_target] + [r.get("kl", 0) for r in rows])
                yrange = f"set yrange [0:{1.15 * top}]"
            script += [f"set title '{title}'", yrange, line]
        script.append("unset multiplot")
        subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)


def fmt(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_summary(report, r, samples, checks):
    s = r["seconds"]
    lines = ["# Alignment demo report", "",
             "Hidden rule: " + hidden_rule.__doc__.strip().split("\n\n")[1].strip().replace(
                 "\n    ", " ").strip(), "",
             "## Results (held-out data)", "",
             "| measure | before | after |", "|---|---|---|",
             f"| reward model: preference accuracy (score head untrained → trained) | "
             f"{fmt(r['reward_model_before']['reward_model_accuracy'])} | "
             f"{fmt(r['reward_model_after']['reward_model_accuracy'])} |",
             f"| DPO: implicit-reward accuracy (SFT → DPO) | "
             f"{fmt(r['dpo_before']['implicit_reward_accuracy'])} | "
             f"{fmt(r['dpo_after']['implicit_reward_accuracy'])} |",
             "", "| fresh samples (4 per prompt) | SFT | PPO | DPO |", "|---|---|---|---|"]
    for key, label in [("score_mean", "reward-model score"), ("kl_mean", "KL to SFT (nats/seq)"),
                       ("rule_mean", "hidden-rule score (max 2)"),
                       ("polite_fraction", "opens politely"),
                       ("on_topic_fraction", "on the prompt's topic"),
                       ("response_length", "tokens"), ("finished_fraction", "ended with EOS")]:
        lines.append(f"| {label} | " + " | ".join(
            fmt(r["samples_" + m][key]) for m in ["sft", "ppo", "dpo"]) + " |")
    lines += ["", "| hidden rule vs SFT, per prompt | wins | ties | losses | win rate |",
              "|---|---|---|---|---|"]
    for m in ["ppo", "dpo"]:
        w = r[m + "_vs_sft"]
        lines.append(f"| {m.upper()} | {w['wins']} | {w['ties']} | {w['losses']} | "
                     f"{fmt(w['win_rate'])} |")
    lines += ["", "## Checks", ""]
    for name, value, passed in checks:
        lines.append(f"- [{'x' if passed else ' '}] {name}: {fmt(value)}")
    lines += ["", "## Time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in s.items()]
    lines += ["", "Plots: " + ", ".join(f"plots/{st}.png" for st in PLOTS), "",
              "## Samples (first held-out prompts, first sample each)", "",
              "| prompt | SFT | PPO | DPO |", "|---|---|---|---|"]
    shown = [row for row in samples["sft"] if row["sample"] == 0][:12]
    for row in shown:
        cells = [row["prompt"]]
        for m in ["sft", "ppo", "dpo"]:
            match = next(x for x in samples[m] if x["prompt"] == row["prompt"] and x["sample"] == 0)
            cells.append(f"{match['response'].strip()} (rule {match['rule']:g})")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    with open(os.path.join(report, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_args():
    root = os.path.dirname(os.path.dirname(HERE))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rlhf", default=os.path.join(root, "build", "bin", "rlhf"))
    p.add_argument("--out", default="out/demo", help="output directory (default out/demo)")
    p.add_argument("--quick", action="store_true", help="the short variant the tests run")
    p.add_argument("--check", action="store_true", help="exit 1 unless every check passes")
    p.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    return p.parse_args()


if __name__ == "__main__":
    args = parse_args()
    args.out, args.rlhf = os.path.abspath(args.out), os.path.abspath(args.rlhf)
    os.chdir(os.path.dirname(os.path.dirname(HERE)))  # job files name paths from the root
    sys.exit(Demo(args).main())
