"""Multi-task training throughput: samples/s of `worldsat.pretrain.multitask.train` beside the bare model, single- and multi-image.

What it measures
----------------
For one image per sample and for `--times` images per sample (a temporal backbone max-pooling over them), in one process
and on one device, two rows:

* pipeline: `train` itself (the fastai Learner, `WorldsatDataset` reading the Zarr samples and deriving each task's target
  from the labels, `worldsat_collate`, the balanced `TaskSampler`, the model's forward with every head's loss, backward,
  Adam, the per-step bookkeeping of `MultitaskState`). Timed over the training phases only (a timer callback passed with
  `cbs=`): the checkpoint written at each epoch's end and the run's set-up (balanced weights, model build) are left out.
* bare: the same model (`make_model`, same tasks, same `TaskLoss`) on one batch of real samples already on the device:
  forward with targets, backward, the same AdamW step, with the same mixed precision as the pipeline (CUDA only). The floor the
  goal refers to.

The goal is pipeline >= 0.8x bare: reading and turning labels into targets must not be the bottleneck. Each row is the
best of `--repeat` timed rounds after one untimed warm-up round; each round is a new `train` run, so its first epoch
includes the one-time checksum check of every sample a new reader does: use more `--epochs` to amortize it, and
`--workers N` to read in worker processes alongside the compute. It prints numbers and exits 0: it measures, it does not gate.

    python benchmarks/multitask.py                          # CPU, ResNet-18, 32 px, batch 8, 1 and 4 images
    python benchmarks/multitask.py --device cuda --bs 32 --data PATH --workers 4   # on a GPU, a bigger dataset
    python benchmarks/multitask.py --tasks crop_type,road --times 1

Data: `--data` (a worldsat dataset folder built with labels); by default a dataset of the sample world (beauce, 32 px
cells, 4 dates each, areas, buildings, roads and wind turbines) is built into a temporary folder first (about 30 s).
Tasks: `--tasks` (names, comma-separated; default: the dataset's tasks whose heads are dense maps; `all`: every task).
"""
from __future__ import annotations
import argparse, resource, sys, tempfile, time
from pathlib import Path
import torch

DENSE = ("segment", "bin_segment", "regress", "classify", "polyline")


def _sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def _peak_mb(dev) -> float:
    if dev.type == "cuda": return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: KiB


def build_data(out:Path) -> Path:
    from worldsat.data.dataset import BuildConfig, build
    cfg = BuildConfig(aoi=[1.600, 48.218, 1.640, 48.242], start="2024-01-01", end="2024-12-31", cell_size=32,
                      rules=[{"rule": "Coverage", "min": 99}, {"rule": "AOICloud", "max": 50}, {"rule": "EvenlySpread", "k": 4}],
                      labels="sample", classes=["wheat", "maize", "rapeseed", "grassland", "forest", "water", "built-up", "building",
                                                "road", "wind_turbine"], split_block_m=640)
    return build(cfg, out, show_progress=False)


def pipeline_rate(data, tasks, arch, times, bs, epochs, dev, run, workers:int=0) -> tuple:
    "Samples/s of `train`'s training phases over `epochs` epochs; (rate, samples, steps)."
    from fastai.callback.core import Callback
    from worldsat.pretrain.multitask import train
    counted = {"n": 0, "t": 0.0, "steps": 0}
    class TrainTimer(Callback):
        order = 99
        def before_train(self): _sync(dev); self.t0 = time.perf_counter()
        def after_batch(self):
            if self.training: counted["n"] += self.learn.xb[0]["image"].shape[0]; counted["steps"] += 1
        def after_train(self): _sync(dev); counted["t"] += time.perf_counter() - self.t0
    train(data, out=run, tasks=tasks, arch=arch, times=times, epochs=epochs, batch_size=bs, lr=1e-4, split=None, device=str(dev),
          show_progress=False, restart=True, cbs=[TrainTimer()], num_workers=workers)
    return counted["n"] / counted["t"], counted["n"], counted["steps"]


def bound_rate(data, tasks, arch, times, bs, dev, steps:int) -> float:
    "Samples/s of forward/backward/step of the same model and objective on one batch of real samples already on the device."
    from worldsat.pretrain.multitask import make_model, TaskLoss, open_split, pick_tasks, dataset_tasks, _collate, _to
    chosen = pick_tasks(dataset_tasks(data), tasks)
    ds = open_split(data, chosen, None, times)
    torch.manual_seed(0)
    model, _ = make_model(chosen, arch, list(ds.channels), times)
    net = TaskLoss(model, chosen, None, times).to(dev).train()
    batch = _to(_collate([ds[i % len(ds)] for i in range(bs)])[0], dev)
    from worldsat.pretrain.ssl import _adamw
    opt = _adamw([p for p in net.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)   # train's optimizer and decay
    auto = torch.autocast("cuda", dtype=torch.float16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    scaler = torch.amp.GradScaler("cuda", enabled=dev.type == "cuda")
    _sync(dev); t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        with auto: loss = net(batch)
        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
    _sync(dev)
    return steps * bs / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--data", default=None, help="a worldsat dataset folder with labels (default: build one from the sample world)")
    p.add_argument("--tasks", default=None, help="comma-separated task names, or all (default: the dense ones)")
    p.add_argument("--arch", default="resnet18", help="backbone (default: resnet18)")
    p.add_argument("--times", default="1,4", help="images per sample to measure, comma-separated (default: 1,4)")
    p.add_argument("--bs", type=int, default=8, help="batch size (default: 8)")
    p.add_argument("--epochs", type=int, default=2, help="train epochs per timed round (default: 2)")
    p.add_argument("--repeat", type=int, default=1, help="timed rounds; the best is reported (default: 1)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes of the pipeline (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu, or on a machine with a GPU"); return 0
    if a.threads: torch.set_num_threads(a.threads)
    times = [int(t) for t in a.times.split(",") if t.strip()]
    from worldsat.pretrain.multitask import dataset_tasks
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(a.data) if a.data else build_data(tmp/"data")
        avail = dataset_tasks(data)
        tasks = ([t["name"] for t in avail] if a.tasks == "all" else [t["name"] for t in avail if t["kind"] in DENSE] if a.tasks is None
                 else [t.strip() for t in a.tasks.split(",") if t.strip()])
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        rows = []
        for T in times:
            res, mem = {"pipeline": [], "bare": []}, {}
            for r in range(a.repeat + 1):
                if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
                rate, n, steps = pipeline_rate(data, tasks, a.arch, T, a.bs, a.epochs, dev, tmp/f"run-{T}", a.workers)
                mem["pipeline"] = _peak_mb(dev)
                if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
                b = bound_rate(data, tasks, a.arch, T, a.bs, dev, max(2, steps))
                mem["bare"] = _peak_mb(dev)
                if r: res["pipeline"].append(rate); res["bare"].append(b)
            rows.append((T, {k: max(v) for k, v in res.items()}, mem))
            print(f"  {T} image(s) per sample: done ({steps} steps per round)", file=sys.stderr, flush=True)
        print(f"device: {name}; {data if a.data else 'the sample world (beauce)'}; tasks {tasks}; {a.arch}, batch {a.bs}, "
              f"{a.epochs} epochs per round, {a.workers} loader workers, best of {a.repeat} rounds\n")
        print(f"{'images':>6s} {'pipeline/s':>11s} {'bare/s':>9s} {'x bare':>7s} {'peak MB (pipeline, bare)':>26s}")
        for T, r, mem in rows:
            print(f"{T:6d} {r['pipeline']:11.1f} {r['bare']:9.1f} {r['pipeline'] / r['bare']:7.2f} {mem['pipeline']:>14.0f} {mem['bare']:>9.0f}")
        print("\ngoal: pipeline >= 0.8x bare (reading samples and making targets is not the bottleneck)")
        for T, r, _ in rows:
            x = r["pipeline"] / r["bare"]
            print(f"  {T} image(s): {'PASS' if x >= 0.8 else 'FAIL'} ({x:.2f}x)")
        if dev.type != "cuda": print("  (CPU peak memory is the process's peak resident set so far, so it only grows down the table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
