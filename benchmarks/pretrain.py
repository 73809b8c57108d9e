"""SSL pretraining throughput: samples/s of `worldsat.pretrain.ssl.pretrain` per method, beside the bare networks.

What it measures
----------------
For each method (MoCo v2, MoCo v3, DINO, MAE), in one process and on one device, three rows:

* pipeline: `pretrain` itself (the fastai Learner, `SeasonalPairs` reading the Zarr dataset with `EpochSampler`, the
  batched kornia `MultispectralAugment` on the device, the method's forward/backward, AdamW (fused, as pretrain uses), momentum updates, the
  per-step TensorBoard log). Timed over the training phases only (a timer callback passed with `cbs=`): the
  checkpoint written at each epoch's end is left out. Rate: locations (pairs of views) per second. Beside it, in
  brackets, the same over the epochs after the first: those take every sample from the in-memory cache, so the
  difference between the two is what the first epoch's reading costs.
* method: the same method module on random tensors of the batch's shape already on the device: augmentations,
  forward, backward, the same AdamW step.
* bare: the same again with the augmentations removed (views of the crop size): the networks' own forward/backward,
  the floor the goal refers to.

The goal is pipeline >= 0.8x bare: the data path (reading, pairing, augmenting) must not be the bottleneck. Peak memory
is the process's peak resident set on the CPU and `torch.cuda.max_memory_allocated` per row on CUDA. Each row is the
best of `--repeat` timed rounds (default 1) after one untimed warm-up round. Each round is a new `pretrain` run, so
its first epoch includes the one-time checksum check of every sample a new reader does: use more `--epochs` to
amortize it, and `--workers N` to read in worker processes alongside the compute. It prints numbers and exits 0: it measures, it does
not gate.

    python benchmarks/pretrain.py                          # CPU, ResNet-18 (MAE: ViT-S/16), 32 px, batch 8
    python benchmarks/pretrain.py --device cuda --size 64 --bs 32 --extent-km 9.6   # on a GPU, a bigger dataset
    python benchmarks/pretrain.py --methods moco,mae --epochs 4 --workers 1

Data: `--data` (a worldsat dataset folder with several dates per location); by default a dataset of the sample world
(beauce, 32 px cells, 4 dates each: 36 locations) is built into a temporary folder first (about 20 s). On a GPU that is
too few steps per epoch: `--extent-km 9.6` generates a beauce of 9.6 km (about a minute) and builds cells of the crop
size from it (225 locations of 64 px with `--size 64`).
"""
from __future__ import annotations
import argparse, resource, sys, tempfile, time
from pathlib import Path
import torch
from torch import nn

METHODS = {"moco": ("moco", {"dim": 128, "hidden": 512, "queue": 1024}), "moco-v3": ("moco-v3", {"dim": 128, "hidden": 512}),
           "dino": ("dino", {"out_dim": 4096, "hidden": 512, "bottleneck": 128, "n_local": 2}),
           "mae": ("mae", {"decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4})}


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def _peak_mb(dev) -> float:
    if dev.type == "cuda": return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: KiB


def build_data(out:Path, extent_km:float|None=None, cell:int=32) -> Path:
    "The benchmark's dataset: beauce of the sample world, `cell` px cells, 4 dates each; `extent_km`: a larger beauce of its own."
    from worldsat.data.dataset import BuildConfig, build
    catalog, aoi = "sample", [1.600, 48.218, 1.640, 48.242]
    if extent_km:
        import math
        from worldsat.sample import SITES, SampleConfig, sample_world
        site = SITES[0]
        m = int(round(extent_km * 1000 / 60)) * 60                      # the sample world wants a multiple of 60 m
        world = sample_world(out.parent/"world", SampleConfig(sites=(site,), extent_m=m), show_progress=False)
        catalog = str(world/"catalog.json")
        half = 0.45 * m                                                  # inside the site's square, away from its edge
        dlat, dlon = half / 111_320, half / (111_320 * math.cos(math.radians(site.lat)))
        aoi = [site.lon - dlon, site.lat - dlat, site.lon + dlon, site.lat + dlat]
    cfg = BuildConfig(catalog=catalog, aoi=aoi, start="2024-01-01", end="2024-12-31", cell_size=cell,
                      rules=[{"rule": "Coverage", "min": 99}, {"rule": "AOICloud", "max": 50}, {"rule": "EvenlySpread", "k": 4}],
                      split_block_m=640)
    return build(cfg, out, show_progress=False)


def pipeline_rate(data, method, arch, arch_kw, kw, bs, epochs, dev, run, workers:int=0) -> tuple:
    "Samples/s of `pretrain`'s training phases over `epochs` epochs; (rate, samples, steps)."
    from fastai.callback.core import Callback
    from worldsat.pretrain.ssl import pretrain
    counted = {"n": [], "t": [], "steps": 0}
    class TrainTimer(Callback):
        order = 99
        def before_train(self): _sync(dev); self.t0 = time.perf_counter(); counted["n"].append(0)
        def after_batch(self):
            if self.training: counted["n"][-1] += self.learn.xb[0].shape[0]; counted["steps"] += 1
        def after_train(self): _sync(dev); counted["t"].append(time.perf_counter() - self.t0)
    pretrain(data, out=run, method=method, arch=arch, epochs=epochs, batch_size=bs, lr=1e-4, split=None, arch_kw=arch_kw,
             method_kw=kw, device=str(dev), show_progress=False, restart=True, cbs=[TrainTimer()], num_workers=workers)
    n, t = counted["n"], counted["t"]
    later = sum(n[1:]) / sum(t[1:]) if len(t) > 1 else float("nan")     # the epochs after the first: samples come from the cache
    return sum(n) / sum(t), sum(n), counted["steps"], later


def bound_rate(model, views_shape, dev, steps:int, bare:bool) -> float:
    "Samples/s of the method (optionally without augmentations) on random views already on the device."
    model = model.to(dev).train()
    if bare:
        model.augment = nn.Identity()
        if hasattr(model, "local_augment"):
            s = model.local_augment.size
            model.local_augment = nn.Upsample(size=(s, s), mode="bilinear")
    from worldsat.pretrain.ssl import _adamw
    opt = _adamw([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)   # pretrain's optimizer and decay
    x = torch.rand(*views_shape, device=dev) * 0.3
    auto = torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    scaler = torch.amp.GradScaler("cuda", enabled=dev.type == "cuda")
    _sync(dev); t0 = time.perf_counter()
    for i in range(steps):
        model.set_position(i, steps, 0, 1)
        opt.zero_grad()
        with auto: loss = model(x)
        scaler.scale(loss).backward(); model.after_backward(); scaler.step(opt); scaler.update()
    _sync(dev)
    return steps * views_shape[0] / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--methods", default="moco,moco-v3,dino,mae", help=f"comma-separated, among {list(METHODS)}")
    p.add_argument("--arch", default="resnet18", help="encoder of the contrastive methods (default: resnet18; MAE always uses vit_small_patch16_224)")
    p.add_argument("--data", default=None, help="a worldsat dataset folder (default: build one from the sample world)")
    p.add_argument("--extent-km", type=float, default=None,
                   help="without --data: generate a beauce of this side (default: the sample world's 2.4 km; 9.6 gives 16x the "
                        "locations, for a GPU) and build the dataset from it, with cells of the crop size")
    p.add_argument("--size", type=int, default=32, help="crop side, px (default: 32)")
    p.add_argument("--bs", type=int, default=8, help="batch size (default: 8)")
    p.add_argument("--epochs", type=int, default=4, help="pretrain epochs per timed round (default: 4; reading is cached after the first)")
    p.add_argument("--repeat", type=int, default=1, help="timed rounds; the best is reported (default: 1)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes of the pipeline (default: 0, reading in the main process)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu, or on a machine with a GPU"); return 0
    if a.threads: torch.set_num_threads(a.threads)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    if bad := [m for m in methods if m not in METHODS]: sys.exit(f"unknown methods {bad}: use {list(METHODS)}")
    from worldsat.pretrain.ssl import SSLConfig, open_pairs, make_method
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(a.data) if a.data else build_data(tmp/"data", a.extent_km, max(32, a.size) if a.extent_km else 32)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        rows = []
        for m in methods:
            method, kw = METHODS[m]
            arch = "vit_small_patch16_224" if m == "mae" else a.arch
            arch_kw = {"img_size": a.size} if arch.startswith("vit") else {}
            cfg = SSLConfig(data=str(data), method=method, arch=arch, arch_kw=arch_kw, method_kw=kw, batch_size=a.bs, split=None, size=a.size)
            pairs = open_pairs(cfg)
            C = len(pairs.channels)
            def fresh():
                torch.manual_seed(0)
                return make_method(cfg, pairs.channels, a.size)
            shape = (a.bs, 2, C, a.size, a.size)
            res = {"pipeline": [], "later": [], "method": [], "bare": []}
            mem = {}
            for r in range(a.repeat + 1):
                if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
                rate, n, steps, later = pipeline_rate(data, method, arch, arch_kw, kw, a.bs, a.epochs, dev, tmp/f"run-{m}", a.workers)
                mem["pipeline"] = _peak_mb(dev)
                for kind in ("method", "bare"):
                    if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
                    b = bound_rate(fresh(), shape, dev, max(2, steps), bare=kind == "bare")
                    mem[kind] = _peak_mb(dev)
                    if r: res[kind].append(b)
                if r: res["pipeline"].append(rate); res["later"].append(later)
            rows.append((m, arch, {k: max(v) for k, v in res.items()}, mem))
            print(f"  {m}: done ({steps} steps per round)", file=sys.stderr, flush=True)
        src = data if a.data else f"a {a.extent_km:g} km beauce" if a.extent_km else "the sample world (beauce)"
        print(f"device: {name}; {len(pairs)} locations of {C} bands from {src}; "
              f"batch {a.bs}, {a.size} px crops, {a.epochs} epochs per round, {a.workers} loader workers, best of {a.repeat} rounds\n")
        print(f"{'method':10s} {'encoder':24s} {'pipeline/s':>11s} {'(later/s)':>10s} {'method/s':>10s} {'bare/s':>9s} {'x bare':>7s} "
              f"{'(later)':>8s} {'peak MB (pipeline, method, bare)':>34s}")
        for m, arch, r, mem in rows:
            print(f"{m:10s} {arch:24s} {r['pipeline']:11.1f} {r['later']:10.1f} {r['method']:10.1f} {r['bare']:9.1f} "
                  f"{r['pipeline'] / r['bare']:7.2f} {r['later'] / r['bare']:8.2f} "
                  f"{mem['pipeline']:>14.0f} {mem['method']:>9.0f} {mem['bare']:>9.0f}")
        print("\n(later: the pipeline over the epochs after the first, which read nothing: every sample is in the cache)")
        print("goal: pipeline >= 0.8x bare (the data path is not the bottleneck)")
        for m, arch, r, _ in rows:
            x = r["pipeline"] / r["bare"]
            print(f"  {m:10s} {'PASS' if x >= 0.8 else 'FAIL'} ({x:.2f}x)")
        if dev.type != "cuda": print("  (CPU peak memory is the process's peak resident set so far, so it only grows down the table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
