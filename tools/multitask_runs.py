"""Multi-task training on a larger generated sample world, scored per task beside the trivial baselines: the table of
"more objects" in section 5 of `nbs/tutorials/multitask.ipynb`.

The tutorial's own dataset holds few objects (its training cells: 12 roads and 6 wind turbines), too few for the
object heads to learn from or to be scored on. This script generates the sample world's two sites with turbines
(Beauce, Iowa) at `--km` km a side with `--turbines` turbines each, builds the tutorial's labelled dataset over the inner
90 % of both (its classes, rules and 960 m split blocks; one build per `--split-seeds` value, so that other blocks are
held out), trains the tutorial's multi-task model on every task (ResNet-18, batches of 6, lr 2e-3, seed 0) and scores it
with `evaluate_tasks` on the held-out `test` split. Beside it, each entry of `--single` (default: the wind turbine
detector) is trained alone with the same settings and scored the same way, so that a head that stays at its baseline in
the multi-task run can be told apart from one that cannot learn from these pixels at all; an entry of tasks joined by `+`
trains those tasks together (e.g. `wind_turbine+building`), to see which others hold a head back. It prints, per split seed, the
objects of each split, the multi-task table and the single-task rows.

    python tools/multitask_runs.py                          # 4.8 km sites, 20 turbines each, 10 epochs, split seeds 0 and 1 (about 10 minutes)
    python tools/multitask_runs.py --split-seeds 0 --epochs 20
    python tools/multitask_runs.py --single wind_turbine,building   # two tasks, each also trained alone
    python tools/multitask_runs.py --split-seeds 0 --epochs 30 --single wind_turbine,wind_turbine+building,wind_turbine+crop_type+land_cover
    python tools/multitask_runs.py --single ""                       # the multi-task run only

It measures, it does not gate: it exits 0 whatever the scores.
"""
from __future__ import annotations
import argparse, dataclasses, math, sys, tempfile, time
from pathlib import Path

import pandas as pd

CLASSES = ["wheat", "soy", "maize", "rapeseed", "grassland", "forest", "water", "built-up", "building", "road", "wind_turbine"]


def world(work:Path, km:float, turbines:int) -> tuple:
    "The generated world (its folder) and the AOI over the inner 90 % of each site with turbines."
    from worldsat.sample import SITES, SampleConfig, sample_world
    m = int(round(km * 1000 / 60)) * 60                                   # the sample world wants a multiple of 60 m
    sites = tuple(dataclasses.replace(s, turbines=turbines) for s in SITES if s.turbines)
    root = sample_world(work/"world", SampleConfig(sites=sites, extent_m=m), show_progress=False)
    parts = []
    for s in sites:
        half = 0.45 * m
        dlat, dlon = half / 111_320, half / (111_320 * math.cos(math.radians(s.lat)))
        x0, y0, x1, y1 = s.lon - dlon, s.lat - dlat, s.lon + dlon, s.lat + dlat
        parts.append([[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]])
    return root, {"type": "MultiPolygon", "coordinates": parts}


def objects(root:Path) -> dict:
    "Objects per category and split (buildings, roads, turbines), counted over the written samples."
    from worldsat.data.dataset import read_index
    from worldsat.data.torch import _labels_group
    idx = read_index(root, geo=False)
    out = {}
    for r in idx[idx.status == "written"].itertuples():
        for c in _labels_group(root, r.sample_id)["instance_category"][:]:
            if str(c) in ("building", "road", "wind_turbine"):
                out.setdefault(str(c), {}).setdefault(r.split, 0)
                out[str(c)][r.split] += 1
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--km", type=float, default=4.8, help="side of each site, km (default: 4.8; the sample world's is 2.4)")
    p.add_argument("--turbines", type=int, default=20, help="wind turbines per site (default: 20; the sample world has 5 and 6)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    p.add_argument("--split-seeds", default="0,1", help="comma-separated seeds of the spatial split, one build and run each (default: 0,1)")
    p.add_argument("--single", default="wind_turbine", help="comma-separated tasks also trained alone, same settings; tasks joined by + train together (default: wind_turbine; '' for none)")
    a = p.parse_args(argv)
    from worldsat.data.dataset import BuildConfig, build, read_index
    from worldsat.pretrain.multitask import train, evaluate_tasks, dataset_tasks
    groups = [[t.strip() for t in v.split("+") if t.strip()] for v in a.single.split(",") if v.strip()]
    fit = dict(arch="resnet18", epochs=a.epochs, batch_size=6, lr=2e-3, show_progress=False, seed=0)   # every run's settings
    pd.set_option("display.width", 200)
    with tempfile.TemporaryDirectory(prefix="worldsat-multitask-runs-") as tmp:
        tmp = Path(tmp)
        root_w, aoi = world(tmp, a.km, a.turbines)
        for seed in [int(v) for v in a.split_seeds.split(",") if v.strip()]:
            cfg = BuildConfig(catalog=str(root_w/"catalog.json"), aoi=aoi, start="2024-01-01", end="2024-12-31", cell_size=32,
                              rules=[{"rule": "Coverage", "min": 99}, {"rule": "AOICloud", "max": 50}, {"rule": "EvenlySpread", "k": 4}],
                              labels="sample", classes=CLASSES, split={"train": 0.7, "test": 0.3}, split_block_m=960, seed=seed)
            root = build(cfg, tmp/f"data-{seed}", show_progress=False)
            idx = read_index(root, geo=False)
            print(f"\n## split seed {seed}: cells {idx.split.value_counts().to_dict()}; objects {objects(root)}", flush=True)
            known = [t["name"] for t in dataset_tasks(root)]
            unknown = sorted({n for g in groups for n in g} - set(known))
            if unknown: p.error(f"--single names {unknown}, which the dataset has no labels for; its tasks: {', '.join(known)}")
            t = time.perf_counter()
            run = train(root, out=tmp/f"run-{seed}", tasks=None, **fit)
            print(f"trained {a.epochs} epochs in {time.perf_counter() - t:.0f} s", flush=True)
            print(evaluate_tasks(run, root, split="test").round(3).to_string(), flush=True)
            for g in groups:
                name, t = "+".join(g), time.perf_counter()
                one = train(root, out=tmp/f"run-{seed}-{name}", tasks=g, **fit)
                ev = evaluate_tasks(one, root, split="test")
                print(f"{'together' if '+' in name else 'single-task'} {name} ({time.perf_counter() - t:.0f} s; threshold {ev.attrs.get('min_score', {})}):\n"
                      f"{ev.round(3).to_string()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
