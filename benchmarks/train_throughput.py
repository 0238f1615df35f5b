"""Training throughput: this pipeline's day batches vs a naive per-sample DataLoader.

Prints one table of training samples (stock-days) per second and peak memory at
``--stocks`` x L = ``--window`` x ``--features`` (default 4,000 x 20 x 120, hidden 64),
same model, same optimizer step, measured in the same run:

* ``pipeline``: the panel resident on the device, windows gathered by index per day
  (``training.data.batches``), the day's peer graph, one optimizer step per day batch;
* ``naive``: a ``torch.utils.data.Dataset`` whose ``__getitem__`` slices one stock's
  window out of its own per-code DataFrame (the usual first implementation), a
  ``DataLoader`` collating the same number of samples per step, no graph (a batch
  mixes dates, so there is no day graph to give it);
* ``pipeline_nograph``: the pipeline with the same model as ``naive`` (graph block
  off), so the two rows differ only in how windows reach the model;
* ``pipeline_data`` / ``naive_data``: the input paths alone (batches built, no model step),
  compared with each other;
* ``model_step``: the optimizer step alone on one day batch built once (no input path,
  graph on): the ceiling any input path can reach with this model, so
  ``pipeline`` / ``naive`` <= (1 / model_step + 1 / naive_data) / (1 / model_step)
  whatever the input path does;
* ``floor`` (CPU): the arithmetic floor of that optimizer step on this machine: its
  matmul FLOPs (forward and backward, counted by ``FlopCounterMode``) at the rate of a
  large square sgemm measured in the same process, elementwise work left out, so no
  engine or input path can run the step faster; with ``naive_data`` it bounds what any
  pipeline can reach over the naive one on this CPU with this model;
* ``epoch_fp32`` / ``epoch_bf16`` (with ``--epoch-days``): one whole shuffled epoch through
  ``Trainer.train_epoch``, the loop ``gogooku3 train`` runs (bf16 on CUDA only), with
  ``--compile`` as ``train.compile`` (its compilation falls in the timed-apart warm-up).

Each mode runs in its own subprocess so peak memory is its own (RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA). Rates are given per wall second and per
CPU second of the process (the latter is what a shared, loaded machine cannot distort
much when torch runs one thread). On CUDA the pipeline runs in fp32 and in
bf16 autocast. The data are random (throughput does not depend on values).

    .venv/bin/python benchmarks/train_throughput.py [--steps 3] [--device cpu|cuda]
        [--epoch-days 1250]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def _panel(stocks: int, days: int, features: int, seed: int = 0):
    from training.data.panel import Panel

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((days, stocks, features), dtype=np.float32)
    y = (rng.standard_normal((days, stocks, 5)) * 0.02).astype(np.float32)
    day0 = dt.date(2025, 1, 6)
    return Panel([day0 + dt.timedelta(days=i) for i in range(days)],
                 [f"{10000 + i}" for i in range(stocks)], [f"f{i}_cs_z" for i in range(features)],
                 x, np.ones_like(x, bool), y, np.ones_like(y, bool), np.ones((days, stocks), bool))


def _graphs(panel, k: int = 10, seed: int = 1):
    from training.data.graph import PeerGraphs

    rng = np.random.default_rng(seed)
    n = len(panel.codes)
    dst = np.repeat(np.arange(n), k)
    src = (dst + rng.integers(1, n, size=n * k)) % n  # no self-loops, as in gold.peer_graph
    corr = rng.uniform(0.3, 0.9, size=n * k).astype(np.float32)
    return PeerGraphs([panel.days[0]], [(src, dst, corr)],
                      np.zeros(len(panel.days), dtype=int), n)


def _device_panel(a, panel, graph: bool = True):
    """``panel`` scaled and resident on ``a.device``, with a random peer graph unless
    ``graph`` is False."""
    from training.data.batches import DevicePanel, FoldScaler

    return DevicePanel(panel, FoldScaler.fit(panel, range(len(panel.days))),
                       _graphs(panel) if graph else None, torch.device(a.device), a.window)


def _model(n_features: int, window: int, hidden: int, use_gat: bool, dropout: float):
    from training.train import build_model

    return build_model({"hidden": hidden, "heads": 4, "use_gat": use_gat, "dropout": dropout},
                       n_features, window)


def _step(model, opt, x, y, mask, ei, ea, amp):
    from training.losses import LossConfig, forecast_loss

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x, ei, ea)
    out.point, out.quantiles = out.point.float(), out.quantiles.float()
    loss = forecast_loss(out, y, mask, LossConfig())["total"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.8)
    opt.step()


def _sgemm_flops_per_cpu_s(n: int = 2048, cpu_secs: float = 1.0) -> float:
    """FLOPs per CPU second of an ``n`` x ``n`` fp32 matrix product, repeated for at least
    ``cpu_secs`` (the machine's best dense rate at the benchmark's thread count)."""
    x, w = torch.randn(n, n), torch.randn(n, n)
    x @ w
    c0, k = time.process_time(), 0
    while time.process_time() - c0 < cpu_secs:
        x @ w
        k += 1
    return 2 * n**3 * k / (time.process_time() - c0)


def run_floor(mode: str, a) -> dict:
    """Samples per CPU second if the optimizer step of ``model_step`` ran its matmuls at the
    sgemm rate and nothing else cost time (the LSTM counted through its unfused kernel,
    which ``FlopCounterMode`` can see; oneDNN's fused one it cannot). CPU only."""
    from torch.utils.flop_counter import FlopCounterMode

    from training.data.batches import DaySampler

    if a.device != "cpu":
        sys.exit(f"mode {mode} measures the CPU's sgemm rate: run it with --device cpu")
    torch.manual_seed(0)
    panel = _panel(a.stocks, a.window + 1, a.features)
    b = _device_panel(a, panel).batch(*next(iter(DaySampler(
        panel, range(a.window - 1, a.window + 1), max_stocks=a.batch))))
    model = _model(a.features, a.window, a.hidden, use_gat=True, dropout=a.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as fc:
        _step(model, opt, b.x, b.y, b.y_mask, b.edge_index, b.edge_attr, False)
    flops_per_sample = fc.get_total_flops() / len(b.stocks)
    rate = len(b.stocks) / (fc.get_total_flops() / _sgemm_flops_per_cpu_s())
    return {"mode": mode, "samples_per_s": rate, "samples_per_cpu_s": rate, "secs": 0.0,
            "samples": len(b.stocks), "peak_mib": float("nan"),
            "mflop_per_sample": flops_per_sample / 1e6}


def run_epoch(mode: str, a) -> dict:
    """One full training epoch through ``Trainer.train_epoch`` (the production loop) over
    ``a.epoch_days`` days x ``a.stocks`` stocks, after a 2-day warm-up epoch."""
    from training.data.batches import DaySampler
    from training.train import Trainer

    torch.manual_seed(0)
    days = a.epoch_days + a.window - 1
    panel = _panel(a.stocks, days, a.features)
    dp = _device_panel(a, panel)
    model = _model(a.features, a.window, a.hidden, use_gat=True, dropout=a.dropout)
    precision = mode.removeprefix("epoch_")
    trainer = Trainer(model, dp, {"precision": precision, "lr": 1e-3, "weight_decay": 1e-4,
                                  "seed": 0, "grad_clip": 0.8, "compile": a.compile}, {})
    t0 = time.perf_counter()
    trainer.train_epoch(DaySampler(panel, range(a.window - 1, a.window + 1),
                                   max_stocks=a.batch), 0)
    warmup = time.perf_counter() - t0  # includes torch.compile's compilation
    if dp.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sampler = DaySampler(panel, range(a.window - 1, days), max_stocks=a.batch, shuffle=True)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train_epoch(sampler, 1)  # returns after reading the losses: the GPU is drained
    secs, cpu_secs = time.perf_counter() - t0, time.process_time() - c0
    peak = (torch.cuda.max_memory_allocated() if dp.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"mode": mode, "samples_per_s": sampler.samples / secs,
            "samples_per_cpu_s": sampler.samples / cpu_secs, "secs": secs,
            "samples": sampler.samples, "peak_mib": peak / 2**20, "warmup_secs": warmup}


def run_mode(mode: str, a) -> dict:
    """Train ``a.steps`` timed steps (after one warm-up) in ``mode``; samples/s and peak."""
    from training.data.batches import DaySampler

    torch.manual_seed(0)
    device = torch.device(a.device)
    days = a.window + a.steps + 2
    panel = _panel(a.stocks, days, a.features)
    amp = mode == "pipeline_bf16"
    train = not mode.endswith("_data")  # *_data: the input path alone, no model step
    model = _model(a.features, a.window, a.hidden,
                   use_gat=mode not in ("naive", "pipeline_nograph"), dropout=a.dropout).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if mode.startswith("pipeline") or mode == "model_step":
        dp = _device_panel(a, panel, graph=mode != "pipeline_nograph")
        sampler = DaySampler(panel, range(a.window - 1, days), max_stocks=a.batch,
                             shuffle=True)
        batches = iter(sampler)
        fixed = dp.batch(*next(iter(sampler))) if mode == "model_step" else None

        def step():
            b = fixed if fixed is not None else dp.batch(*next(batches))
            if train:
                _step(model, opt, b.x, b.y, b.y_mask, b.edge_index, b.edge_attr, amp)
            return len(b.stocks)
    else:
        import pandas as pd

        frames = {c: pd.DataFrame(panel.features[:, s], index=panel.days)
                  for s, c in enumerate(panel.codes)}
        labels = {c: panel.labels[:, s] for s, c in enumerate(panel.codes)}

        class Windows(torch.utils.data.Dataset):
            def __init__(self):
                self.items = [(t, c) for t in range(a.window - 1, days) for c in panel.codes]

            def __len__(self):
                return len(self.items)

            def __getitem__(self, i):
                t, c = self.items[i]
                x = frames[c].iloc[t - a.window + 1:t + 1].to_numpy(dtype=np.float32)
                return torch.from_numpy(x), torch.from_numpy(labels[c][t])

        loader = iter(torch.utils.data.DataLoader(Windows(), batch_size=a.batch, shuffle=True))

        def step():
            x, y = next(loader)
            x, y = x.to(device), y.to(device)
            if train:
                _step(model, opt, x, y, torch.ones_like(y, dtype=torch.bool), None, None, False)
            return len(x)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for _ in range(a.steps):
        n += step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs, cpu_secs = time.perf_counter() - t0, time.process_time() - c0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"mode": mode, "samples_per_s": n / secs, "samples_per_cpu_s": n / cpu_secs,
            "secs": secs, "samples": n, "peak_mib": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stocks", type=int, default=4000)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--features", type=int, default=120)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2048, help="stocks per step (both modes)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.1, help="model dropout (default 0.1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--epoch-days", type=int, default=0,
                    help="also time one full epoch over this many days through the training "
                         "loop, fp32 and bf16 on CUDA (1,250 = 5 years: ~5M samples at 4,000)")
    ap.add_argument("--compile", default="none",
                    help="train.compile for the epoch modes (none | default | reduce-overhead "
                         "| max-autotune)")
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--only", help="comma-separated modes to run (default: all)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.mode:
        run = (run_epoch if a.mode.startswith("epoch_") else
               run_floor if a.mode == "floor" else run_mode)
        print(json.dumps(run(a.mode, a)))
        return
    cuda = a.device == "cuda"
    modes = ["pipeline", "pipeline_nograph", "naive", "model_step"] + (
        ["pipeline_bf16"] if cuda else ["floor"]) + ["pipeline_data", "naive_data"] + (
        (["epoch_fp32", "epoch_bf16"] if cuda else ["epoch_fp32"]) if a.epoch_days else [])
    rows = []
    for mode in modes if not a.only else a.only.split(","):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--mode", mode],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"{mode}: {rows[-1]['samples_per_s']:,.0f} samples/s", file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    ref = {r["mode"]: r["samples_per_s"] for r in rows if r["mode"].startswith("naive")}
    ref_cpu = {r["mode"]: r["samples_per_cpu_s"] for r in rows if r["mode"].startswith("naive")}
    print(f"device: {name}; {a.stocks} stocks x L={a.window} x {a.features} features, "
          f"hidden {a.hidden}, dropout {a.dropout}, {a.batch} stocks per step, "
          f"{a.steps} timed steps")
    print("| mode | samples/s | x naive | samples per CPU-s | x naive | peak memory (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ref_mode = "naive_data" if r["mode"].endswith("_data") else "naive"
        naive, naive_cpu = ref.get(ref_mode, float("nan")), ref_cpu.get(ref_mode, float("nan"))
        print(f"| {r['mode']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / naive:.1f} "
              f"| {r['samples_per_cpu_s']:.0f} | {r['samples_per_cpu_s'] / naive_cpu:.1f} "
              f"| {r['peak_mib']:.0f} |")
    for r in rows:
        if r["mode"].startswith("epoch_"):
            print(f"{r['mode']} (compile {a.compile}): one epoch of {r['samples']:,} samples "
                  f"in {r['secs']:.1f} s, after a {r['warmup_secs']:.1f} s warm-up epoch")

    rate = {r["mode"]: r["samples_per_cpu_s"] for r in rows}
    for step, what in (("model_step", "the step as it runs"),
                       ("floor", "the step at the sgemm rate, elementwise work free")):
        if step in rate and "naive_data" in rate:
            ceiling = (1 / rate[step] + 1 / rate["naive_data"]) * rate[step]
            print(f"ceiling of pipeline / naive with this model, input path free, {what} "
                  f"(CPU time): {ceiling:.2f}x")
    for r in rows:
        if r["mode"] == "floor":
            print(f"floor: {r['mflop_per_sample']:.1f} MFLOP per sample (forward + backward)")

if __name__ == "__main__":
    main()
