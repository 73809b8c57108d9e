"""Longer SSL runs on the pretraining tutorial's data, each probed beside random init: the table in section 3 of
`nbs/tutorials/pretraining.ipynb`.

Builds the tutorial's two datasets from the sample world (the `ssl4eo` preset over beauce, 26 locations of 32 px with
four seasons; the same cells labelled with crop and land cover, split by 640 m blocks), pretrains a ResNet-18 with
each setting below (batches of 8, lr 1e-3, seed 0) and probes it as the tutorial does: kNN and a linear classifier on
8 px patches resized to 32 px, fit on `train`, scored on `val` + `test`. The random-init rows are the same probes on
the same architecture at random init, over five seeds of the random weights (mean, and the range in brackets).
With `--seeds`, each run is pretrained once per seed and its row gives the mean and range over them.

    python tools/ssl_probe_runs.py                 # the six runs below, about 5 minutes on 2 CPU cores
    python tools/ssl_probe_runs.py --runs 1,5      # some of them (numbered from 1)
    python tools/ssl_probe_runs.py --runs 6 --seeds 0,1,2   # one run pretrained with three seeds: mean (range)
    python tools/ssl_probe_runs.py --big           # also MoCo v3 on a generated 9.6 km beauce (676 locations; about 12 minutes more)

It prints a Markdown table and exits 0: it measures, it does not gate.
"""
from __future__ import annotations
import argparse, math, sys, tempfile, time
from pathlib import Path

import pandas as pd

AOI = [1.605, 48.222, 1.635, 48.238]
SMALL = {"scale": [0.04, 0.25]}     # crops of 6-16 px of the 32 px cell, resized to 32: what the probe's 8 px patches look like
RUNS = [  # (label, method, epochs, method_kw, augment_kw)
    ("MoCo v3, 3 epochs (the tutorial's run)", "moco-v3", 3, {"dim": 32, "hidden": 64}, {}),
    ("MoCo v3, 60 epochs", "moco-v3", 60, {"dim": 32, "hidden": 64}, {}),
    ("MoCo v2 (queue 256), 100 epochs", "moco", 100, {"dim": 32, "hidden": 64, "queue": 256}, {}),
    ("MoCo v2 (queue 256), 100 epochs, small crops", "moco", 100, {"dim": 32, "hidden": 64, "queue": 256}, SMALL),
    ("DINO, 60 epochs", "dino", 60, {"out_dim": 1024, "hidden": 256, "bottleneck": 64, "n_local": 2}, {}),
    ("DINO, 60 epochs, small crops", "dino", 60, {"out_dim": 1024, "hidden": 256, "bottleneck": 64, "n_local": 2}, SMALL),
]


def datasets(work:Path, catalog:str|None=None, aoi=AOI):
    "The tutorial's SSL dataset (or one over `catalog` / `aoi`) and its labelled probe data."
    from worldsat.data.sampling import build_preset
    from worldsat.data.dataset import BuildConfig, build
    from worldsat.pretrain.probe import labelled_data
    preset = build_preset("ssl4eo")
    extra = {"catalog": catalog} if catalog else {}
    (product, settings), = preset.configs(collection="sentinel-2-l2a", aoi=aoi, start="2024-01-01", end="2024-12-31",
                                          cell_size=32, **extra).items()
    ssl_root = build(BuildConfig.from_dict(settings), work/"ssl"/product, show_progress=False)
    classes = ["wheat", "maize", "rapeseed", "grassland", "forest", "water"]
    (_, lab), = preset.configs(collection="sentinel-2-l2a", aoi=AOI, start="2024-01-01", end="2024-12-31", cell_size=32,
                               labels="sample", classes=classes, split={"train": 0.6, "val": 0.2, "test": 0.2},
                               split_block_m=640).items()
    lab_root = build(BuildConfig.from_dict(lab), work/"labelled", show_progress=False)
    return ssl_root, labelled_data(lab_root, size=8)


def big_world(work:Path, km:float=9.6):
    "A generated beauce of `km` side, and the inner 90 % of it as an AOI."
    from worldsat.sample import SITES, SampleConfig, sample_world
    site, m = SITES[0], int(round(km * 1000 / 60)) * 60
    world = sample_world(work/"world", SampleConfig(sites=(site,), extent_m=m), show_progress=False)
    half = 0.45 * m
    dlat, dlon = half / 111_320, half / (111_320 * math.cos(math.radians(site.lat)))
    return str(world/"catalog.json"), [site.lon - dlon, site.lat - dlat, site.lon + dlon, site.lat + dlat]


def probe_rows(run, world, label:str, seeds=(0,)) -> pd.DataFrame:
    from worldsat.pretrain.probe import probe
    tabs = [probe(run, world, split=("train", ["val", "test"]), size=32, name=label, seed=s) for s in seeds]
    return pd.concat(tabs)


def fmt(tab:pd.DataFrame, label:str) -> str:
    cells = []
    for m in ("knn", "linear"):
        t = tab[(tab.model == label) & (tab.method == m)]
        for c in ("accuracy", "balanced_accuracy", "macro_f1"):
            v = t[c]
            cells.append(f"{v.mean():.3f}" if len(v) == 1 or v.max() - v.min() < 5e-4 else f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})")
    return " | ".join(cells)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=None, help=f"comma-separated run numbers, 1-{len(RUNS)} (default: all)")
    p.add_argument("--big", action="store_true", help="also MoCo v3 for 30 epochs on a generated 9.6 km beauce")
    p.add_argument("--seeds", default="0", help="comma-separated pretraining seeds (default: 0)")
    a = p.parse_args(argv)
    pick = list(range(1, len(RUNS) + 1)) if a.runs is None else [int(v) for v in a.runs.split(",") if v.strip()]
    if bad := [i for i in pick if not 1 <= i <= len(RUNS)]: sys.exit(f"no run {bad[0]}: use numbers from 1 to {len(RUNS)}")
    seeds = [int(v) for v in a.seeds.split(",") if v.strip()]
    from worldsat.pretrain.ssl import pretrain
    head = ("| run | train s | kNN acc. | kNN bal. acc. | kNN macro-F1 | linear acc. | linear bal. acc. | linear macro-F1 |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = []
    with tempfile.TemporaryDirectory(prefix="worldsat-ssl-runs-") as tmp:
        tmp = Path(tmp)
        ssl_root, world = datasets(tmp/"data")
        print(f"{len(world('train'))} training patches, {len(world(['val', 'test']))} held-out patches")
        todo = [(RUNS[i - 1], ssl_root) for i in pick]
        if a.big:
            cat, aoi = big_world(tmp/"big")
            big_root, _ = datasets(tmp/"bigdata", catalog=cat, aoi=aoi)
            todo.append((("MoCo v3, 30 epochs, on a 9.6 km beauce (676 locations)", "moco-v3", 30, {"dim": 64, "hidden": 256}, {}), big_root))
        last = None
        for (label, method, epochs, mkw, akw), root in todo:
            tabs, secs = [], []
            for seed in seeds:
                t = time.perf_counter()
                run = pretrain(root, out=tmp/"runs"/f"{label.replace(' ', '_').replace(',', '')}_{seed}", method=method,
                               arch="resnet18", epochs=epochs, batch_size=8, lr=1e-3, method_kw=mkw, augment_kw=akw, seed=seed,
                               show_progress=False)
                secs.append(time.perf_counter() - t)
                tabs.append(probe_rows(run, world, label))
            name = label + (f" (seeds {a.seeds})" if len(seeds) > 1 else "")
            lines.append(f"| {name} | {sum(secs) / len(secs):.0f} | {fmt(pd.concat(tabs), label)} |")
            print(lines[-1], flush=True)
            last = run
        rnd = probe_rows(last, world, "x", seeds=range(5))
        lines.append(f"| random init (5 seeds) | - | {fmt(rnd, 'random init')} |")
    print("\n" + head); print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
