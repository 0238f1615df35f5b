"""The bar to beat (issue 24): ATFT-GAT-FAN vs ridge, LightGBM, the no-graph ablation and
the simulator's oracle, validation RankIC per horizon on the same walk-forward folds.

The same table as ``gogooku3 train`` (``training.baselines``), computed in parallel: the
full model's CV and the no-graph ablation's CV (``model.use_gat=false``, otherwise the
same overrides, so the same folds, fold scalers and epochs) run as two processes, each
with its own MLflow store under ``--out``; ridge and LightGBM then train on the
ablation run's folds (``training.baselines.evaluate_baselines``), which are the full
model's folds. The oracle is computed for ``--market`` (the market that built the lake).
Only validation folds are scored; nothing here reads a test block.

    .venv/bin/python benchmarks/training_eval.py --lake /work/main/lake --out eval/ \\
        --phase gat train.epochs=6 model.hidden=32 ...

Prints the markdown table, the paired difference ATFT-GAT-FAN minus the ablation (the
mean over validation dates of the two models' daily RankIC difference, +- its standard
error), the load average before and after, and the wall time of each part; writes
``table.md`` and ``result.json`` under ``--out``.

``--summarize OUT [OUT ...]`` reads finished runs (one per seed) and prints the paired
difference per run and averaged over the runs date by date.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MARKET = "{stocks: 500, start: 2023-01-04, end: 2025-12-30, seed: 7}"


def _store(out: Path, name: str) -> str:
    """The MLflow tracking URI of run ``name``'s own SQLite store under ``out``."""
    return f"sqlite:///{(out / f'mlflow-{name}.db').resolve()}"


def _cv(out: Path, name: str, phase: str, overrides: list[str], env: dict) -> subprocess.Popen:
    """Start ``gogooku3 train --cv-only`` with its own MLflow store; log in ``out``."""
    env = {**env, "MLFLOW_TRACKING_URI": _store(out, name)}
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    cmd = [sys.executable, "-m", "gogooku3.cli", "train", "--cv-only", "--phase", phase,
           *overrides]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out)


def _run_id(out: Path, name: str) -> str:
    lines = (out / f"{name}.log").read_text().strip().splitlines()
    return lines[-1].strip()


def _pooled(store: str, run_id: str) -> dict[int, float]:
    import mlflow

    from training.data.panel import HORIZONS

    run = mlflow.tracking.MlflowClient(tracking_uri=store).get_run(run_id)
    return {h: float(run.data.metrics.get(f"val/rank_ic_{h}d", float("nan")))
            for h in HORIZONS}


def _daily_rank_ic(store: str, run_id: str):
    """The CV run's pooled validation RankIC per date (rows) and horizon (columns)."""
    import mlflow
    import pandas as pd

    path = mlflow.tracking.MlflowClient(tracking_uri=store).download_artifacts(
        run_id, "val_daily_metrics.csv")
    return pd.read_csv(path).pivot(index="date", columns="horizon", values="rank_ic")


def _paired(out: Path):
    """Per date and horizon: the full model's RankIC minus the no-graph ablation's for the
    finished evaluation in ``out`` (NaN where either did not score that horizon: the last
    dates have no long-horizon labels)."""
    runs = json.loads((out / "result.json").read_text())["runs"]
    full, ablation = (_daily_rank_ic(_store(out, n), runs[n]) for n in ("full", "no_graph"))
    return full - ablation


def _mean_se(diff) -> str:
    """Per horizon, over the dates it was scored: mean +- standard error."""
    cells = []
    for h in diff.columns:
        d = diff[h].dropna()
        cells.append(f"{d.mean():+.4f} +- {d.std(ddof=1) / len(d) ** 0.5:.4f}")
    return " | ".join(cells)


def summarize(outs: list[Path]) -> str:
    """Markdown table of the paired difference per run in ``outs`` and, averaged over the
    runs date by date (dates all of them scored), for all of them together."""
    diffs = {out.name: _paired(out) for out in outs}
    horizons = next(iter(diffs.values())).columns
    lines = ["| run | " + " | ".join(f"{h}d" for h in horizons) + " |",
             "| --- |" + " --- |" * len(horizons)]
    lines += [f"| {name} | {_mean_se(d)} |" for name, d in diffs.items()]
    if len(diffs) > 1:
        common = sum(d for d in diffs.values()) / len(diffs)  # NaN unless all scored
        lines.append(f"| **{len(diffs)} runs** | {_mean_se(common)} |")
    return "\n".join(lines)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", help="gold lake root (read only)")
    ap.add_argument("--out", help="folder for logs, MLflow stores, table")
    ap.add_argument("--summarize", nargs="+", type=Path, metavar="OUT",
                    help="print the paired difference of finished runs and exit")
    ap.add_argument("--phase", default="gat")
    ap.add_argument("--market", default=MARKET, help="MarketConfig of the lake (YAML map)")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    a = ap.parse_args()
    if a.summarize:
        print(summarize(a.summarize))
        return
    if not (a.lake and a.out):
        ap.error("--lake and --out are required unless --summarize is given")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOGOOKU_LAKE": a.lake}
    overrides = [*a.overrides, "baselines.models=[ridge, lightgbm]",
                 f"baselines.oracle_market={a.market}"]
    print(f"start: {_uptime()}", flush=True)
    t0 = time.perf_counter()
    procs = {"full": _cv(out, "full", a.phase, overrides, env),
             "no_graph": _cv(out, "no_graph", a.phase, [*overrides, "model.use_gat=false"],
                             env)}
    secs = {}
    for name, proc in procs.items():
        if proc.wait() != 0:
            sys.exit(f"{name} CV failed: see {out / f'{name}.log'}")
        secs[name] = time.perf_counter() - t0
    print(f"CVs done in {secs}: {_uptime()}", flush=True)

    import mlflow

    from training.baselines import baseline_table, evaluate_baselines

    os.environ["GOGOOKU_LAKE"] = a.lake
    stores = {n: _store(out, n) for n in procs}
    runs = {n: _run_id(out, n) for n in procs}
    mlflow.set_tracking_uri(stores["no_graph"])
    t1 = time.perf_counter()
    base = evaluate_baselines(runs["no_graph"], lake_root=a.lake)
    secs["ridge+lightgbm"] = time.perf_counter() - t1
    rank_ic = {"atft_gat_fan": _pooled(stores["full"], runs["full"]),
               "no_graph": _pooled(stores["no_graph"], runs["no_graph"])}
    for name in ("ridge", "lightgbm"):
        rank_ic[name] = {int(h): v for h, v in base["rank_ic"][name].items()}
    oracle = {int(h): v for h, v in base["oracle"].items()} if base["oracle"] else None
    table = baseline_table(rank_ic, oracle)
    print(table)
    print(f"end: {_uptime()}; seconds: {json.dumps({k: round(v) for k, v in secs.items()})}")
    (out / "result.json").write_text(json.dumps(
        {"rank_ic": rank_ic, "oracle": oracle, "runs": runs, "seconds": secs,
         "overrides": a.overrides, "phase": a.phase}, indent=2))
    paired = summarize([out])
    print(f"ATFT-GAT-FAN minus the no-graph ablation, mean over dates +- s.e.:\n{paired}")
    (out / "table.md").write_text(f"{table}\n\n{paired}\n")


if __name__ == "__main__":
    main()
