"""HighRes-net throughput: training samples/s and inference km2/s, beside the pure forward/backward bound.

What it measures
----------------
Two pipelines of worldsat's super-resolution code, each next to its cost floor, in one process and on one device:

* training: `worldsat.sr.train`'s fastai `Learner` (our `sr_dataloaders` over `SRDataset` random crops of the sample
  world's SR samples, `SRLoss`, our `TrainState` callback with checkpoints off, Adam) fitting HighRes-net for a
  fixed number of optimizer steps. The rate is training samples (LR crop stacks) per second.
  bound: the same model, loss and optimizer on random tensors of the same batch shape already on the device:
  forward, loss, backward and step, nothing else.
* inference: `worldsat.sr.infer.predict_array` (worldsat's one tiler, `worldsat.infer.tiles.predict_raster`, into a
  temporary Zarr run) over a revisit stack covering `--area-km` x `--area-km` at 10 m
  (the sample world's revisits tiled to that size), with overlapping tiles and blending. The rate is km2 of
  low-res input per second.
  bound: the same number of forward passes of the same model on random tiles of the same shape on the device, under
  `torch.no_grad` (and autocast on CUDA, as predict_array does).

The ratio column is pipeline rate / bound rate: 1.0 means worldsat adds nothing to the model's own arithmetic.
Each row is the best of `--repeat` rounds after one untimed warm-up round. It prints numbers and exits 0: it measures,
it does not gate.

    python benchmarks/sr.py                      # CPU, HighRes-net small (hidden 32), 3 rounds
    python benchmarks/sr.py --device cuda        # on a GPU (mixed precision for inference, fp32 training)
    python benchmarks/sr.py --hidden 64 --bs 16 --patch 32 --area-km 10

Quality over seeds (``--seeds N``): the demo's HighRes-net (`worldsat.sr.workflow.demo_config`: hidden 32, 30 epochs,
trained on beauce and iowa) trained once per seed 0 .. N-1 and scored on the held-out site by `results_table` (what
`worldsat sr eval` prints), against the PROBA-V challenge's baseline and worldsat's multi-frame bicubic:

    python benchmarks/sr.py --seeds 5            # about a minute per seed on 2 free CPU cores
"""
from __future__ import annotations
import argparse, math, sys, time
import numpy as np, torch


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def training_rate(model, cfg, data, dev, steps:int) -> float:
    "Samples per second of the fastai Learner over SRDataset crops, `steps` optimizer steps."
    from fastai.learner import Learner
    from fastai.optimizer import Adam
    import fastai.callback.progress # noqa: F401 (Learner.no_bar)
    from worldsat.sr.data import SRDataset
    from worldsat.sr.train import SRLoss, sr_dataloaders, TrainState
    import tempfile
    train = SRDataset(data["train"], T=cfg.k, lr_patch=cfg.lr_patch, mode="train", seed=0, augment=True)
    valid = SRDataset(data["train"][:1], T=cfg.k, lr_patch=cfg.lr_patch, mode="eval")
    dls = sr_dataloaders(train, valid, bs=cfg.bs, seed=0)
    n_batches = len(dls.train)
    epochs = max(1, math.ceil(steps / n_batches))
    counted = {"n": 0, "t": 0.0}
    from fastai.callback.core import Callback
    class TrainTimer(Callback):
        "Times the training phase only (validation of one sample excluded)."
        order = 99
        def before_train(self): _sync(dev); self.t0 = time.perf_counter()
        def after_batch(self):
            if self.training: counted["n"] += self.learn.xb[0].shape[0]
        def after_train(self): _sync(dev); counted["t"] += time.perf_counter() - self.t0
    with tempfile.TemporaryDirectory() as d:
        ts = TrainState(d, every=0, patience=0)
        learn = Learner(dls, model, loss_func=SRLoss(cfg.loss), opt_func=Adam, lr=1e-3, cbs=[ts, TrainTimer()])
        with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return counted["n"] / counted["t"], counted["n"]


def training_bound(model, cfg, shape, hr_shape, dev, steps:int) -> float:
    "Samples per second of forward + loss + backward + Adam step on random tensors already on the device."
    from worldsat.sr.train import SRLoss
    loss_fn = SRLoss(cfg.loss)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(*shape, device=dev) * 0.3
    c = torch.ones(shape[0], shape[1], *shape[3:], dtype=torch.bool, device=dev)
    y = torch.rand(*hr_shape, device=dev) * 0.3
    m = torch.ones(hr_shape[0], *hr_shape[2:], dtype=torch.bool, device=dev)
    model.train()
    _sync(dev); t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x, c), y, m)
        loss.backward(); opt.step()
    _sync(dev)
    return steps * shape[0] / (time.perf_counter() - t0)


def inference_rate(model, stack, clear, dev, tile, overlap, bs) -> tuple:
    from worldsat.sr.infer import predict_array
    _sync(dev); t0 = time.perf_counter()
    out = predict_array(model, stack, clear, tile=tile, overlap=overlap, batch_size=bs, device=dev, progress=False)
    _sync(dev)
    km2 = stack.shape[-2] * stack.shape[-1] * 100 / 1e6
    return km2 / (time.perf_counter() - t0), out


def inference_bound(model, n_tiles, T, C, tile, bs, km2, dev) -> float:
    import contextlib
    x = torch.rand(bs, T, C, tile, tile, device=dev) * 0.3
    c = torch.ones(bs, T, tile, tile, dtype=torch.bool, device=dev)
    auto = torch.autocast("cuda") if dev.type == "cuda" else contextlib.nullcontext()
    model.eval()
    _sync(dev); t0 = time.perf_counter()
    with torch.no_grad(), auto:
        left = n_tiles
        while left > 0:
            n = min(bs, left)
            model(x[:n], c[:n]).float().cpu()
            left -= n
    _sync(dev)
    return km2 / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--hidden", type=int, default=32, help="HighRes-net feature channels (default: 32, the 'small' size)")
    p.add_argument("--bs", type=int, default=8, help="training batch size and inference tiles per pass (default: 8)")
    p.add_argument("--patch", type=int, default=16, help="training crop, low-res px (default: 16)")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per timed training round (default: 20)")
    p.add_argument("--loss", default="registered", help="training loss: registered, l1 or mse (default: registered)")
    p.add_argument("--area-km", type=float, default=3.2, help="side of the inferred area, km (default: 3.2)")
    p.add_argument("--tile", type=int, default=64, help="inference tile, low-res px (default: 64)")
    p.add_argument("--overlap", type=int, default=16, help="inference tile overlap, low-res px (default: 16)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds; the best is reported (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seeds", type=int, default=None, help="instead of throughput: the demo's model over seeds 0..N-1, against both baselines")
    p.add_argument("--epochs", type=int, default=30, help="with --seeds: training epochs (default: 30, the demo's)")
    p.add_argument("--out", default=None, help="with --seeds: keep the runs here (default: a temporary folder)")
    a = p.parse_args(argv)
    if a.seeds: return seeds_main(a)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu, or on a machine with a GPU"); return 0
    if a.threads: torch.set_num_threads(a.threads)
    from worldsat.sr.models import make_model, n_params
    from worldsat.sr.train import SRConfig, sr_samples
    cfg = SRConfig(model="highresnet", model_kw={"hidden": a.hidden}, lr_patch=a.patch, bs=a.bs, loss=a.loss)
    data = sr_samples(cfg)
    s0 = data["train"][0]
    T, C = s0["image"].shape[:2]
    scale = s0["hr"].shape[-1] / s0["image"].shape[-1]
    def fresh():
        torch.manual_seed(0)
        return make_model("highresnet", in_channels=C, out_channels=s0["hr"].shape[0], scale=scale, hidden=a.hidden).to(dev)
    model = fresh()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; HighRes-net hidden={a.hidden} ({n_params(model):,} parameters), T={T}, C={C}, scale {scale:g}")
    # -- training
    P = a.patch; H = int(round(P * scale))
    tr, bd = [], []
    for r in range(a.repeat + 1):
        rate, n = training_rate(fresh(), cfg, data, dev, a.steps)
        b = training_bound(fresh(), cfg, (a.bs, T, C, P, P), (a.bs, s0["hr"].shape[0], H, H), dev, max(1, n // a.bs))
        if r: tr.append(rate); bd.append(b)
    # -- inference: the sample world's revisit stacks tiled to the area
    n = int(round(a.area_km * 100))
    reps = math.ceil(n / s0["image"].shape[-1])
    stack = np.tile(np.asarray(s0["image"], np.float32), (1, 1, reps, reps))[:, :, :n, :n]
    clear = np.tile(np.asarray(s0["clear"], bool), (1, reps, reps))[:, :n, :n]
    from worldsat.infer.tiles import windows
    n_tiles = len(windows(n, n, a.tile, a.overlap))
    km2 = n * n * 100 / 1e6
    ir, ib = [], []
    for r in range(a.repeat + 1):
        rate, _ = inference_rate(model, stack, clear, dev, a.tile, a.overlap, a.bs)
        b = inference_bound(model, n_tiles, T, C, a.tile, a.bs, km2, dev)
        if r: ir.append(rate); ib.append(b)
    print(f"\ntraining: batches of {a.bs} x ({T}, {C}, {P}, {P}) -> ({H}, {H}), loss {a.loss}, {a.steps}+ steps per round, best of {a.repeat}")
    print(f"inference: {n} x {n} low-res px = {km2:.2f} km2, {n_tiles} tiles of {a.tile} px (overlap {a.overlap}), best of {a.repeat}\n")
    print(f"{'what':<34}{'worldsat':>12}{'bound':>12}{'x bound':>10}")
    print(f"{'training (samples/s)':<34}{max(tr):>12.1f}{max(bd):>12.1f}{max(tr) / max(bd):>10.2f}")
    print(f"{'inference (km2/s of 10 m input)':<34}{max(ir):>12.2f}{max(ib):>12.2f}{max(ir) / max(ib):>10.2f}")
    return 0


def seeds_main(a) -> int:
    "Print the demo's held-out scores for seeds 0 .. a.seeds-1 (see the module's docstring)."
    import tempfile, pandas as pd
    from worldsat.sr.workflow import seed_study
    if a.threads: torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as d:
        tab = seed_study(a.out or d, seeds=range(a.seeds), epochs=a.epochs)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tab.to_string(float_format=lambda v: f"{v:.3f}"))
    won = int(((tab.gain_vs_probav_db > 0) & (tab.gain_vs_bicubic_db > 0)).sum())
    print(f"\nHighRes-net beats the PROBA-V baseline and the multi-frame bicubic in {won} of {len(tab)} seeds; "
          f"mean gain {tab.gain_vs_probav_db.mean():+.3f} dB (PROBA-V baseline), {tab.gain_vs_bicubic_db.mean():+.3f} dB (multi-frame bicubic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
