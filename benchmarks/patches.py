"""Patch time series throughput: worldsat vs torchgeo vs "decode each raster once".

What it measures
----------------
The same patch time series, cut from the same Cloud-Optimized GeoTIFFs of the sample world (`worldsat.sample`), five
ways in one process:

* worldsat, per-cell load: for every `--patch` x `--patch` cell of the global UTM grid
  (`worldsat.geo.utm_cells(footprint, size=patch)`) that lies fully inside the site, one
  `worldsat.data.load(scenes, cell, bands, scale=False, dtype=None).image.values`, a (T, C, patch, patch) array.
* worldsat, site load + slice: one `load` of the rectangle those cells cover, computed once, then every patch sliced
  out of the in-memory cube, as a dataset writer could do it by hand.
* worldsat, batched load_cells: `worldsat.data.load.load_cells(scenes, cells, compute=["image"], ...)`, which
  returns for every cell the Dataset its own `load` would give, from one load of the cells' union (here every read
  copies pixels, so that is exact), then `.image.values` for each cell.
  The worldsat rows compute `image` only: the `clear` mask (which also reads SCL) is not asked for, since the other
  methods do not make one (`load` plans the SCL read only when `clear` is computed).
* torchgeo: a `torchgeo.datasets.RasterDataset` subclass (`separate_files=True`, one file per band, `is_image=True`,
  the site's CRS, `res=10`) and `torchgeo.samplers.GridGeoSampler(size=patch, stride=patch)` in pixel units over a
  region of interest equal to the same cells, iterating the sampler and indexing the dataset (`num_workers=0`, as a
  plain loop). A RasterDataset mosaics whatever its index holds for a time query, and it can only read dates from
  the file's *base name* (here `B04.tif`, the date is in the folder name), so to get a time series per patch we use
  one dataset per scene (date) and stack the T samples of each query: (T, C, patch, patch).
* bound: every band file of every scene read whole with rasterio, once; coarser bands repeated onto the 10 m grid
  with `np.repeat`; then all patches sliced from those arrays. The cost floor of "decode each raster once".

Before timing, the patches of all methods are checked to be equal: exactly, value for value, with
`--resampling nearest` (the default; a 20 m pixel repeated 2 x 2 is what nearest resampling gives on a cell whose
corner lies on the 20 m grid, and the global grid's cells do here). With `--resampling bilinear` (worldsat's and
torchgeo's default for float data) the 10 m bands are still compared exactly, and for the coarser bands the largest
difference is printed but not asserted: worldsat's own bilinear upsampling (window-independent, within 1 DN of GDAL's
warper) and GDAL's RasterIO resampling (torchgeo) interpolate differently at window edges and next to nodata (swath
edges: thousands of DN there), and the bound has no bilinear.

Timing and caches
-----------------
Each method runs once untimed (the equality check), which also warms imports, the OS page cache (all files come from
local disk, hot for every method alike) and lazy initialisations. Then `--repeat` rounds are timed with
`time.perf_counter`, the methods interleaved within each round so that they share the machine's state. The table
reports the best round (the least disturbed measure of the method's own cost) and the median round.

GDAL's block cache could flatter repeated rounds of a method that keeps files open between rounds: torchgeo caches
its file handles (an `lru_cache` on `RasterDataset._cached_load_warp_file`), and the decoded tiles would live on in
GDAL's block cache with them. Before every timed round of torchgeo that cache is cleared, which closes the handles
and drops their blocks. worldsat, too, keeps the local files it reads open between reads (per thread, with their
tiles in GDAL's block cache) and remembers where band grids meet cell grids: before every timed round of a worldsat
method `worldsat.data.load.close_datasets()` closes those files and forgets those grids. Each round of each method
thus starts with no open file (the bound opens and closes each file once). Within a round each method keeps whatever
caching it does by itself (torchgeo and worldsat reuse a handle, and its cached tiles, for every patch of a file). GDAL_CACHEMAX is left at GDAL's default
unless `--gdal-cachemax MB` sets it; a small value (e.g. 1) removes block caching within a round as well.

worldsat's loads compute with dask's threaded scheduler by default, as a user gets it; `--scheduler synchronous`
runs them on one thread like the other two methods. The script always exits 0: it measures, it does not gate.

Run: python benchmarks/patches.py [--site beauce] [--bands B02,B03,B04,B08,B11] [--patch 32] [--repeat 3]
     python benchmarks/patches.py --methods worldsat-batch,bound      # a subset (the bound always runs)
"""
from __future__ import annotations
import argparse, os, statistics, sys, time

# GDAL reads its configuration when it is first initialised: set the block cache before rasterio is imported.
def _early_cachemax(argv):
    for i, a in enumerate(argv):
        if a.startswith("--gdal-cachemax"):
            v = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else None)
            if v: os.environ["GDAL_CACHEMAX"] = str(v)
_early_cachemax(sys.argv[1:])

import numpy as np

GOAL_TORCHGEO, GOAL_BOUND = 3.0, 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Patch time series per second, from the same COGs of the sample world: worldsat (per-cell "
                    "load, one site load + slicing, batched load_cells), torchgeo (RasterDataset + GridGeoSampler, one "
                    "dataset per date) and the bound (each raster decoded once with rasterio, patches sliced). "
                    "Checks the patches are equal, then times --repeat rounds and prints patches/s and ratios.",
        epilog="Read the header of this file for how caches are handled. Exit code is 0 whatever the result.")
    p.add_argument("--site", default="beauce", help="sample site (beauce, iowa, pampas; default beauce)")
    p.add_argument("--bands", default="B02,B03,B04,B08,B11", help="comma-separated bands (default B02,B03,B04,B08,B11)")
    p.add_argument("--patch", type=int, default=32, help="patch size in 10 m pixels (default 32)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds per method; best and median reported (default 3)")
    p.add_argument("--resampling", default="nearest", choices=["nearest", "bilinear"],
                   help="resampling of coarser bands onto 10 m (default nearest: exact comparison possible)")
    p.add_argument("--dtype", default="uint16", choices=["uint16", "float32"],
                   help="worldsat output: raw digital numbers (dtype=None, default) or float32 with NaN for nodata")
    p.add_argument("--scheduler", default="threads", choices=["threads", "synchronous"],
                   help="dask scheduler for worldsat's compute (default threads)")
    p.add_argument("--methods", default="worldsat-cell,worldsat-site,worldsat-batch,torchgeo,bound",
                   help="comma-separated subset of worldsat-cell,worldsat-site,worldsat-batch,torchgeo,bound")
    p.add_argument("--gdal-cachemax", default=None, help="set GDAL_CACHEMAX (MB) before GDAL starts (default: GDAL's)")
    p.add_argument("--profile", action="store_true", help="also cProfile one round of worldsat's per-cell load")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------------------------
# The site, its scenes and its patch grid

def setup(site:str, bands:list, patch:int):
    from affine import Affine
    from worldsat.sample import sample_world, SITES
    from worldsat.data.catalog import StaticCatalog
    from worldsat.geo import utm_cells, Cell
    sites = {s.name: s for s in SITES}
    if site not in sites: sys.exit(f"unknown site {site!r}: use one of {sorted(sites)}")
    s = sites[site]
    root = sample_world(show_progress=False)
    found = StaticCatalog(root).search("sentinel-2-l2a", aoi=(s.lon - 0.01, s.lat - 0.01, s.lon + 0.01, s.lat + 0.01))
    scenes = sorted([sc for sc in found if f"_{site}_" in sc.id], key=lambda sc: (sc.datetime, sc.id))
    if not scenes: sys.exit(f"no Sentinel-2 scenes for site {site!r} in {root}")
    missing = [b for b in bands if b not in scenes[0].bands]
    if missing: sys.exit(f"bands {missing} are not in the scenes (they have {list(scenes[0].bands)})")
    crs = scenes[0].crs
    t = scenes[0].bands[bands[0]].transform                     # the site's 10 m grid
    if t is None or abs(t[0]) != 10: sys.exit(f"band {bands[0]} is not a 10 m band; list a 10 m band first")
    h, w = scenes[0].bands[bands[0]].shape
    x0, y1 = t[2], t[5]
    x1, y0 = x0 + 10 * w, y1 - 10 * h
    fp = scenes[0].footprint.union(scenes[-1].footprint)
    cells = [c for c in utm_cells(fp, size=patch, resolution=10.0, crs=crs)
             if x0 <= c.bounds[0] and c.bounds[2] <= x1 and y0 <= c.bounds[1] and c.bounds[3] <= y1]
    if not cells: sys.exit(f"no {patch} x {patch} cell of the global grid lies inside the site")
    cx0, cy0 = min(c.bounds[0] for c in cells), min(c.bounds[1] for c in cells)
    cx1, cy1 = max(c.bounds[2] for c in cells), max(c.bounds[3] for c in cells)
    W, H = round((cx1 - cx0) / 10), round((cy1 - cy0) / 10)
    if len(cells) != (W // patch) * (H // patch): sys.exit("the cells inside the site do not form a rectangle")
    site_cell = Cell(crs, Affine(10, 0, cx0, 0, -10, cy1), W, H, f"{site}-patches")
    # each cell's window in the site cell, and in the site's 10 m rasters
    win = [(round((cy1 - c.bounds[3]) / 10), round((c.bounds[0] - cx0) / 10)) for c in cells]
    off = (round((y1 - cy1) / 10), round((cx0 - x0) / 10))     # site cell's (row, col) in the 10 m rasters
    return dict(root=root, scenes=scenes, cells=cells, site_cell=site_cell, win=win, off=off, crs=crs,
                site_bounds=(x0, y0, x1, y1))


# ----------------------------------------------------------------------------------------------------------------
# The methods: each returns a list of (T, C, patch, patch) arrays, one per cell, in the order of `cells`

def worldsat_cell(ctx, bands, resampling, dtype):
    from worldsat.data.load import load
    return [load(ctx["scenes"], c, bands=bands, resampling=resampling, scale=False, dtype=dtype).image.values
            for c in ctx["cells"]]

def worldsat_batch(ctx, bands, resampling, dtype):
    from worldsat.data.load import load_cells
    out = load_cells(ctx["scenes"], ctx["cells"], compute=["image"], bands=bands, resampling=resampling, scale=False,
                     dtype=dtype)
    return [out[c.id].image.values for c in ctx["cells"]]

def worldsat_reset():
    "Close the files worldsat keeps open between reads (and its memo of their grids): every round starts cold."
    from worldsat.data.load import close_datasets
    close_datasets()

def worldsat_site(ctx, bands, resampling, dtype):
    from worldsat.data.load import load
    cube = load(ctx["scenes"], ctx["site_cell"], bands=bands, resampling=resampling, scale=False, dtype=dtype).image.values
    p = ctx["patch"]
    return [cube[:, :, r:r + p, c:c + p].copy() for r, c in ctx["win"]]

def make_torchgeo(ctx, bands, resampling):
    "One RasterDataset per scene (date), all bands as separate files, and the GridGeoSampler over the cells."
    import shapely
    from rasterio.enums import Resampling
    from torchgeo.datasets import RasterDataset
    from torchgeo.samplers import GridGeoSampler, Units

    class SampleS2(RasterDataset):
        # the sample's layout: <collection>/<scene id>/<band>.tif; the index holds one file per scene, the first band,
        # and the other bands are found by replacing the `band` group (separate_files=True)
        filename_glob = f"{bands[0]}.tif"
        filename_regex = r"^(?P<band>B[0-9]{2}|B8A|SCL)\.tif$"
        all_bands = tuple(bands)
        separate_files = True
        is_image = True
        @property
        def resampling(self):   # float output would mean bilinear; match the method compared against
            return Resampling.nearest if resampling == "nearest" else Resampling.bilinear

    dsets = [SampleS2(paths=os.path.dirname(s.bands[bands[0]].href), crs=ctx["crs"], res=10.0, bands=bands)
             for s in ctx["scenes"]]
    x0 = min(c.bounds[0] for c in ctx["cells"]); y0 = min(c.bounds[1] for c in ctx["cells"])
    x1 = max(c.bounds[2] for c in ctx["cells"]); y1 = max(c.bounds[3] for c in ctx["cells"])
    sampler = GridGeoSampler(dsets[0], size=ctx["patch"], stride=ctx["patch"], roi=shapely.box(x0, y0, x1, y1),
                             units=Units.PIXELS)
    return SampleS2, dsets, sampler

def torchgeo_run(tg):
    import torch
    _, dsets, sampler = tg
    out = {}
    for q in sampler:           # every date's dataset indexed with the same (x, y) query; stacked into (T, C, p, p)
        xy = (q[0], q[1])
        out[(q[0].start, q[1].stop)] = torch.stack([d[xy]["image"] for d in dsets])
    return out

def torchgeo_reset(tg):
    "Close the file handles torchgeo caches (and GDAL's cached blocks with them)."
    cls = tg[0]
    cls._cached_load_warp_file.cache_clear()
    import gc; gc.collect()

def torchgeo_in_cell_order(ctx, out):
    by = {k: v for k, v in out.items()}
    return [by[(c.bounds[0], c.bounds[3])].numpy() for c in ctx["cells"]]

def bound_run(ctx, bands):
    import rasterio
    cube = []
    for s in ctx["scenes"]:
        layers = []
        for b in bands:
            with rasterio.open(s.bands[b].href) as src: a = src.read(1)
            k = round(abs(src.transform.a) / 10)
            if k > 1: a = np.repeat(np.repeat(a, k, axis=0), k, axis=1)
            layers.append(a)
        cube.append(np.stack(layers))
    cube = np.stack(cube)                                      # (T, C, H, W) on the site's 10 m grid
    p, (r0, c0) = ctx["patch"], ctx["off"]
    return [cube[:, :, r0 + r:r0 + r + p, c0 + c:c0 + c + p].copy() for r, c in ctx["win"]]


# ----------------------------------------------------------------------------------------------------------------

def check(ctx, results, bands, resampling):
    "Assert every method's patches equal the bound's (see the header for the tolerance with bilinear)."
    ref = results["bound"]
    T, C, p = len(ctx["scenes"]), len(bands), ctx["patch"]
    res = {b: ctx["scenes"][0].bands[b].resolution for b in bands}
    exact = [i for i, b in enumerate(bands) if res[b] == 10 or resampling == "nearest"]
    other = [i for i in range(C) if i not in exact]
    lines = []
    for name, got in results.items():
        if name == "bound": continue
        assert len(got) == len(ref), (name, len(got), len(ref))
        worst = 0.0
        for g, r in zip(got, ref):
            g = np.nan_to_num(np.asarray(g, np.float64), nan=0.0)   # float output: nodata NaN; the files' nodata is 0
            r = r.astype(np.float64)
            assert g.shape == (T, C, p, p), (name, g.shape)
            assert np.array_equal(g[:, exact], r[:, exact]), f"{name}: patches differ from the bound"
            if other: worst = max(worst, float(np.abs(g[:, other] - r[:, other]).max()))
        lines.append(f"  {name}: equal to the bound" + (f" on {[bands[i] for i in exact]}; coarser bands "
                     f"{[bands[i] for i in other]} ({resampling} vs np.repeat) differ by at most {worst:g} DN"
                     if other else " on every band, value for value"))
    return lines


def print_ratios(times:dict, counts:dict, label:dict, repeat:int, unit:str, who:str, checked, width:int):
    """The results table (best and median seconds, rate, ratio to torchgeo and to the bound) and a PASS/FAIL line per
    method in `checked` against GOAL_TORCHGEO and GOAL_BOUND; `times` maps a method to its timed rounds."""
    rate = {m: counts[m] / min(ts) for m, ts in times.items()}
    print(f"\nbest of {repeat} rounds (median in brackets); ratios are {unit}/s over torchgeo's and the bound's\n")
    print(f"{'method':42s} {unit:>7s} {'seconds':>18s} {unit + '/s':>10s} {'x torchgeo':>10s} {'x bound':>8s}")
    for m, ts in times.items():
        vs_tg = f"{rate[m] / rate['torchgeo']:.2f}" if "torchgeo" in rate else "-"
        print(f"{label[m]:42s} {counts[m]:7d} {min(ts):8.3f} [{statistics.median(ts):7.3f}] {rate[m]:10.1f} "
              f"{vs_tg:>10s} {rate[m] / rate['bound']:8.2f}")
    print(f"\ngoal: {who} >= {GOAL_TORCHGEO:g}x torchgeo and >= {GOAL_BOUND:g}x the bound")
    for m in checked:
        if m not in rate: continue
        parts = []
        if "torchgeo" in rate:
            r = rate[m] / rate["torchgeo"]
            parts.append(f">= {GOAL_TORCHGEO:g}x torchgeo: {'PASS' if r >= GOAL_TORCHGEO else 'FAIL'} ({r:.2f}x)")
        r = rate[m] / rate["bound"]
        parts.append(f">= {GOAL_BOUND:g}x bound: {'PASS' if r >= GOAL_BOUND else 'FAIL'} ({r:.2f}x)")
        print(f"  {label[m]:{width}s} " + "; ".join(parts))


def main(argv=None):
    a = parse_args(argv)
    bands = [b.strip() for b in a.bands.split(",") if b.strip()]
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    known = ["worldsat-cell", "worldsat-site", "worldsat-batch", "torchgeo", "bound"]
    if bad := [m for m in methods if m not in known]: sys.exit(f"unknown methods {bad}: use {known}")
    if "bound" not in methods: methods.append("bound")          # the reference of the check and of the ratios
    import dask
    dask.config.set(scheduler=a.scheduler)
    dtype = None if a.dtype == "uint16" else "float32"

    ctx = setup(a.site, bands, a.patch)
    ctx["patch"] = a.patch
    T, n = len(ctx["scenes"]), len(ctx["cells"])
    print(f"site {a.site} ({ctx['crs']}): {T} scenes, bands {bands}, {n} patches of {a.patch} x {a.patch} px at 10 m "
          f"on the global grid (site cell {ctx['site_cell'].width} x {ctx['site_cell'].height} px)")
    print(f"each patch is a ({T}, {len(bands)}, {a.patch}, {a.patch}) array; resampling {a.resampling}, worldsat "
          f"dtype {a.dtype}, dask scheduler {a.scheduler}, GDAL_CACHEMAX {os.environ.get('GDAL_CACHEMAX', 'default')}, "
          f"{os.cpu_count()} CPUs")

    tg = None
    if "torchgeo" in methods:
        try:
            t0 = time.perf_counter()
            tg = make_torchgeo(ctx, bands, a.resampling)
            print(f"torchgeo: {len(tg[1])} datasets and the sampler built in {time.perf_counter() - t0:.2f} s "
                  f"(not timed below); sampler yields {len(tg[2])} patches")
        except ImportError as e:
            print(f"torchgeo not available ({e}): skipped"); methods.remove("torchgeo")

    run = {"worldsat-cell": lambda: worldsat_cell(ctx, bands, a.resampling, dtype),
           "worldsat-site": lambda: worldsat_site(ctx, bands, a.resampling, dtype),
           "worldsat-batch": lambda: worldsat_batch(ctx, bands, a.resampling, dtype),
           "torchgeo": lambda: torchgeo_run(tg),
           "bound": lambda: bound_run(ctx, bands)}
    before = {"torchgeo": lambda: torchgeo_reset(tg), "worldsat-cell": worldsat_reset, "worldsat-site": worldsat_reset,
              "worldsat-batch": worldsat_reset}

    # untimed first round: the equality check, and the warm state every timed round starts from
    results = {}
    for m in methods:
        before.get(m, lambda: None)()
        out = run[m]()
        results[m] = torchgeo_in_cell_order(ctx, out) if m == "torchgeo" else out
    print("check:"); print("\n".join(check(ctx, results, bands, a.resampling)))
    del results

    times = {m: [] for m in methods}
    for _ in range(a.repeat):
        for m in methods:
            before.get(m, lambda: None)()
            t0 = time.perf_counter(); out = run[m](); times[m].append(time.perf_counter() - t0)
            del out

    label = {"worldsat-cell": "worldsat (per-cell load)", "worldsat-site": "worldsat (site load + slice)",
             "worldsat-batch": "worldsat (batched load_cells)",
             "torchgeo": "torchgeo (RasterDataset+GridGeoSampler)", "bound": "bound (decode once + slice)"}
    print_ratios(times, {m: n for m in methods}, label, a.repeat, "patches", "worldsat",
                 ("worldsat-cell", "worldsat-site", "worldsat-batch"), width=32)

    if a.profile and "worldsat-cell" in methods:
        import cProfile, pstats, io
        pr = cProfile.Profile(); pr.enable(); run["worldsat-cell"](); pr.disable()
        s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(40)
        print("\ncProfile of one round of worldsat (per-cell load), by cumulative time (main thread only):")
        print(s.getvalue())
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
