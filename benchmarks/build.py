"""Whole-build throughput: `worldsat build` in samples/s vs torchgeo vs "decode each needed window once".

What it measures
----------------
One dataset build of the sample world (`worldsat.sample`), from start to finish, beside two references, in one process:

* worldsat build: `worldsat.data.dataset.build(cfg, <fresh folder>, n_workers=--workers, show_progress=False)` with the
  build's defaults (all the bands the scenes have, raw digital numbers, the default selection rules: Coverage 99 %,
  AOICloud 50 %), no labels, one split, over the site's footprint, `--cell-size` px cells of the global UTM grid. This
  is everything `worldsat build` does: checks, catalog search, starting the dask cluster (a build of one batch runs in
  the calling process), the scene selection of every cell (each cell's own choice; each scene's SCL decoded once for
  all the cells, `select_each`), the load of the selected scenes (`load_each`), the clear mask, the Zarr samples with
  their checksums and manifest entries (a few written at once), then the index, STAC collection and items, card and
  normalization files. Rate = written samples / seconds (deleting the output afterwards is not timed).
* worldsat build's pixels: `worldsat.data.load.load_each` of every cell with the scenes the build selects for it
  (selected beforehand, untimed), with the build's arguments, in this process: the part of the build the batched load
  speeds up, beside the bound it is measured against. Rate = cells loaded / seconds.
* torchgeo: a `RasterDataset` per scene (date) over the same band files (the same bands and SCL), a `GridGeoSampler`
  of cell-sized patches over the cells' bounding box, each patch's T samples stacked into a (T, C, size, size) array
  (see `patches.py`; all scenes for every patch: torchgeo selects nothing and writes nothing). Rate = patches / s.
* bound: every COG window the build needs read once with rasterio and nothing else: for each scene of the build's
  search and each band file it reads (the bands and SCL), the window covering all the planned cells. Rate = the
  build's written samples / seconds.

`x bound` is the build's rate over the bound's: 1.0 would mean the build costs no more than decoding its inputs once
(no selection, no writing, no cluster). `x torchgeo` compares with torchgeo merely reading the samples' pixels.

Rounds are interleaved (build, torchgeo, ...), and the bound is timed right after each of the others, so that each
method is measured beside the bound in the same state of the machine (on a shared machine the load changes by the
minute); the best time of each is reported (and the median). The bound's best is over all its runs: noise can only
make the ratios to it smaller. Every build goes into a new folder, deleted after its timed call; its dask cluster
(worker processes, when the build has more than one batch) starts and stops inside the timed call, as in `worldsat
build`. All files are in the OS page cache for every method alike after the untimed first round. torchgeo's cached file
handles are closed before each of its rounds.

Run: python benchmarks/build.py [--site beauce] [--cell-size 32] [--workers 2] [--repeat 2] [--breakdown]
The builds write under the temporary folder (`TMPDIR`). Where creating a file is slow (about 0.7 ms on some virtual
disks, against 0.02 ms in memory), `TMPDIR=/dev/shm python benchmarks/build.py ...` measures the build without that cost.
The script always exits 0: it measures, it does not gate.
"""
from __future__ import annotations
import argparse, os, shutil, sys, tempfile, time

import numpy as np

GOAL_TORCHGEO, GOAL_BOUND = 3.0, 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Samples per second of a whole `worldsat build` of a sample site, beside torchgeo reading the same "
                    "patches and the bound (each needed COG window decoded once); prints the ratios.",
        epilog="Read the header of this file for what each row includes. Exit code is 0 whatever the result.")
    p.add_argument("--site", default="beauce", help="sample site (beauce, iowa, pampas; default beauce)")
    p.add_argument("--cell-size", type=int, default=32, help="cell size in 10 m pixels (default 32: 38 cells on beauce)")
    p.add_argument("--bands", default=None, help="comma-separated bands (default: the build's default, all 12)")
    p.add_argument("--workers", type=int, default=2, help="workers of the build's local cluster (default 2, as the CLI)")
    p.add_argument("--repeat", type=int, default=2, help="timed rounds per method; best and median reported (default 2)")
    p.add_argument("--methods", default="build,pixels,torchgeo,bound",
                   help="subset of build,pixels,torchgeo,bound (the bound always runs)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time the build's parts in this process: selection, pixel loads, Zarr writes, cluster start")
    return p.parse_args(argv)


def setup(site:str, cell_size:int, bands):
    from worldsat.sample import sample_world, SITES
    from worldsat.data.dataset import BuildConfig, plan_samples
    from worldsat.data.stac import open_catalog
    sites = {s.name: s for s in SITES}
    if site not in sites: sys.exit(f"unknown site {site!r}: use one of {sorted(sites)}")
    s = sites[site]
    cat = open_catalog(sample_world(show_progress=False))
    near = cat.search("sentinel-2-l2a", aoi=(s.lon - 0.001, s.lat - 0.001, s.lon + 0.001, s.lat + 0.001))
    near = [sc for sc in near if f"_{site}_" in sc.id]
    if not near: sys.exit(f"no Sentinel-2 scenes for site {site!r}")
    aoi = [round(v, 5) for v in near[0].footprint.bounds]
    cfg = BuildConfig(aoi=aoi, start="2024-01-01", end="2024-12-31", cell_size=cell_size, split={"train": 1.0},
                      bands=bands)
    cells = plan_samples(cfg)
    scenes = cat.search(cfg.collection, aoi=cfg.aoi, start=cfg.start, end=cfg.end)     # what the build searches
    read = list(bands or [b for b in scenes[0].bands if b != "SCL"])
    return dict(cfg=cfg, cells=cells, scenes=sorted(scenes, key=lambda x: (x.datetime, x.id)), bands=read,
                crs=scenes[0].crs, patch=cell_size)


def selections(ctx) -> list:
    "(cell, its selected scenes) of every cell the build would load, selected as the build does (untimed)."
    from worldsat.data.dataset import _plan_samples
    plans = _plan_samples(ctx["cells"], ctx["scenes"], ctx["cfg"])
    return [(c, plans[c.id][1]) for c in ctx["cells"] if plans[c.id][0] is None]


def pixels_run(ctx) -> int:
    "The build's pixels alone: `load_each` of every cell's selected scenes, as the build calls it, in this process."
    from worldsat.data.load import load_each, close_datasets
    close_datasets()                                   # no file open from the round before
    return len(load_each(ctx["jobs"], bands=ctx["cfg"].bands, scale=False, dtype=None))


def build_run(ctx, workers:int) -> int:
    "One whole build into a new folder; the number of samples written. The folder is removed later, untimed (`cleanup`)."
    from worldsat.data.dataset import build
    d = tempfile.mkdtemp(prefix="worldsat-bench-build-")
    ctx.setdefault("folders", []).append(d)
    out = build(ctx["cfg"], os.path.join(d, "ds"), n_workers=workers, show_progress=False)
    return sum(1 for p in (out/"samples.zarr").iterdir() if p.is_dir())


def cleanup(ctx):
    "Remove the folders of the builds so far (not part of a build: run outside the timed calls)."
    for d in ctx.pop("folders", []): shutil.rmtree(d, ignore_errors=True)


def bound_run(ctx):
    "Each needed window once: per scene and band file (the bands and SCL), the window over all the cells."
    import math, rasterio
    x0 = min(c.bounds[0] for c in ctx["cells"]); y0 = min(c.bounds[1] for c in ctx["cells"])
    x1 = max(c.bounds[2] for c in ctx["cells"]); y1 = max(c.bounds[3] for c in ctx["cells"])
    n = 0
    for s in ctx["scenes"]:
        for b in ctx["bands"] + (["SCL"] if "SCL" in s.bands else []):
            with rasterio.open(s.bands[b].href) as src:
                (c0, r0), (c1, r1) = ~src.transform * (x0, y1), ~src.transform * (x1, y0)
                c0, r0 = max(0, math.floor(c0 + 1e-9)), max(0, math.floor(r0 + 1e-9))
                c1, r1 = min(src.width, math.ceil(c1 - 1e-9)), min(src.height, math.ceil(r1 - 1e-9))
                n += src.read(1, window=((r0, r1), (c0, c1))).size
    return n


def breakdown(ctx, workers:int):
    "Where a build's time goes: `build_samples` of all cells in this process, its parts timed, and a cluster's start."
    import dask
    import worldsat.data.load as wl, worldsat.data.select as ws
    from worldsat.data.dataset import build_samples, _inputs
    spent = {"select": 0.0, "load_each": 0.0, "write": 0.0}
    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try: return fn(*a, **k)
            finally: spent[name] += time.perf_counter() - t0
        return wrapper
    import worldsat.data.dataset as wd
    saved = ws.select_each, wl.load_each, wd._write_zarr, wd._WRITERS
    wd._WRITERS = 1                                    # one writer thread: the parts add up to the whole
    ws.select_each, wl.load_each = timed("select", ws.select_each), timed("load_each", wl.load_each)
    wd._write_zarr = timed("write", wd._write_zarr)   # a sample's Zarr files: encoded, then written to disk
    d = tempfile.mkdtemp(prefix="worldsat-bench-parts-")
    try:
        scenes, targets, labels = _inputs(ctx["cfg"])[:3]
        os.makedirs(os.path.join(d, "samples.zarr"))
        wl.close_datasets()
        t0 = time.perf_counter()
        with dask.config.set(scheduler="synchronous"):
            build_samples(ctx["cells"], scenes, ctx["cfg"], d, labels, targets)
        total = time.perf_counter() - t0
    finally:
        ws.select_each, wl.load_each, wd._write_zarr, wd._WRITERS = saved
        shutil.rmtree(d, ignore_errors=True)
    import logging
    from distributed import LocalCluster, Client
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                      host="127.0.0.1", silence_logs=logging.CRITICAL) as cluster, Client(cluster): pass
    start = time.perf_counter() - t0
    other = total - sum(spent.values())
    print(f"\nparts of the build (build_samples of all {len(ctx['cells'])} cells in one process, one thread): "
          f"{total:.2f} s = selection {spent['select']:.2f} + pixels (load_each) {spent['load_each']:.2f} + "
          f"Zarr files (encoded and written) {spent['write']:.2f} + the rest {other:.2f}; a {workers}-worker local cluster starts and "
          f"stops in {start:.2f} s")


def main(argv=None):
    a = parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import patches                                     # torchgeo's datasets and sampler, as patches.py builds them
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    if bad := [m for m in methods if m not in ("build", "pixels", "torchgeo", "bound")]: sys.exit(f"unknown methods {bad}")
    if "bound" not in methods: methods.append("bound")
    bands = [b.strip() for b in a.bands.split(",")] if a.bands else None
    ctx = setup(a.site, a.cell_size, bands)
    T, n_cells = len(ctx["scenes"]), len(ctx["cells"])
    print(f"site {a.site} ({ctx['crs']}): build of {n_cells} cells of {a.cell_size} x {a.cell_size} px at 10 m, "
          f"{T} scenes, bands {ctx['bands']} + SCL, {a.workers} workers, {os.cpu_count()} CPUs")

    tg = None
    if "torchgeo" in methods:
        try:
            tg = patches.make_torchgeo(ctx, ctx["bands"] + ["SCL"], "bilinear")
            print(f"torchgeo: {len(tg[1])} datasets; the sampler yields {len(tg[2])} patches of {a.cell_size} px "
                  f"(the cells' bounding box), each ({T}, {len(ctx['bands']) + 1}, {a.cell_size}, {a.cell_size})")
        except ImportError as e:
            print(f"torchgeo not available ({e}): skipped"); methods.remove("torchgeo")

    count = {}
    if "pixels" in methods: ctx["jobs"] = selections(ctx)
    run = {"build": lambda: build_run(ctx, a.workers), "pixels": lambda: pixels_run(ctx),
           "torchgeo": lambda: len(patches.torchgeo_run(tg)),
           "bound": lambda: bound_run(ctx)}
    before = {"torchgeo": lambda: patches.torchgeo_reset(tg)}
    for m in methods:                                  # untimed: warms imports, page cache; counts the samples
        before.get(m, lambda: None)()
        count[m] = run[m]()
    written = count.get("build")
    if written is None: written = build_run(ctx, a.workers)         # the bound's rate is per sample the build writes
    cleanup(ctx)
    print(f"the build writes {written} samples (of {n_cells} cells; the others are skipped by its rules)")

    times = {m: [] for m in methods}
    def timed(m):
        before.get(m, lambda: None)()
        t0 = time.perf_counter(); run[m](); times[m].append(time.perf_counter() - t0)
        cleanup(ctx)                                   # a build's output is deleted outside its timed call
    for _ in range(a.repeat):
        for m in methods:
            if m == "bound": continue
            timed(m); timed("bound")                   # the bound (cheap) right after each method: the same machine state
        if methods == ["bound"]: timed("bound")

    n = {"build": written, "pixels": count.get("pixels", 0), "torchgeo": count.get("torchgeo", 0), "bound": written}
    label = {"build": "worldsat build (whole)", "pixels": "worldsat build's pixels (load_each)",
             "torchgeo": "torchgeo (RasterDataset+GridGeoSampler)", "bound": "bound (each needed window decoded once)"}
    patches.print_ratios(times, n, label, a.repeat, "samples", "worldsat build", ("build", "pixels"), width=38)
    if a.breakdown: breakdown(ctx, a.workers)
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
