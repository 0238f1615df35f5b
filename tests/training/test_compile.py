"""``train.compile``: the training step (model + loss) compiles to ONE graph that serves
every padded day batch of an epoch and computes what the eager step computes."""

from __future__ import annotations

import numpy as np
import torch
from planted import DAYS, WINDOW, planted_panel, small_model
from torch._dynamo.testing import CompileCounter

from training.data.batches import DevicePanel, FoldScaler
from training.train import Trainer, compile_step


def test_the_compiled_training_step_is_one_graph_equal_to_the_eager_step():
    panel, graphs = planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cpu", WINDOW)
    model = small_model().train()
    trainer = Trainer(model, dp, {"precision": "fp32", "lr": 1e-3, "weight_decay": 0.0,
                                  "seed": 0, "grad_clip": 0.8, "compile": "none"}, {})
    graphs_traced = CompileCounter()  # counts the graphs Dynamo hands to the backend
    compiled = compile_step(trainer._forward_loss, "default", backend=graphs_traced)
    rng = np.random.default_rng(0)
    for day, n_stocks in ((DAYS - 1, 50), (DAYS - 2, 61)):  # two days, two stock counts
        stocks = np.sort(rng.choice(len(panel.codes), n_stocks, replace=False))
        batch = dp.batch(day, stocks, pad_to=64)
        results = []
        for step in (trainer._forward_loss, compiled):
            model.zero_grad(set_to_none=True)
            losses = step(batch.x, batch.edge_index, batch.edge_attr, batch.y, batch.y_mask)
            losses["total"].backward()
            results.append((losses, [p.grad.clone() for p in model.parameters()]))
        (eager, eager_grads), (comp, comp_grads) = results
        for name in eager:
            torch.testing.assert_close(comp[name], eager[name])
        for e, c in zip(eager_grads, comp_grads, strict=True):
            torch.testing.assert_close(c, e)
    # one graph, no graph break (the LSTM traced in) and no recompilation for the second day
    assert graphs_traced.frame_count == 1
