"""Inference over areas: km2/s of map products beside the model's forward pass alone, and peak memory on an area far
larger than memory.

What it measures
----------------
(a) Throughput, in one process and on one device (`--device`), on the same windows with the same batch size:

* products: `worldsat.infer.predict.source_products`, which is what `worldsat.infer.predict.predict` runs for each
  period once the imagery is chosen: the windows read from a lazy (dask) source batch by batch, the model's forward
  pass, the cross-faded blending into the Zarr run with its manifest and journal (`worldsat.infer.tiles.predict_raster`),
  the sum / weight finish, one COG per task (classes and probabilities, with overviews: `worldsat.infer.products`), the
  vector products found block by block (polygons, lines, points: `worldsat.infer.vectorize`) with properties attached,
  written as GeoParquet and Satlas tiles.
* raster: `predict_raster` alone, i.e. the tiling part of the products row (a breakdown, not the goal; not in --quick).
* forward: the model's forward pass alone (`MultitaskModel.forward`: backbone, FPN, heads, the detector's boxes) over
  the same windows, already in memory on the device, `--batch-size` at a time, under `torch.no_grad` (and autocast on
  CUDA, as predict_raster does). This is the floor. Turning the outputs into raster channels (`model_raster_fn`:
  softmax, a score heatmap per detected category) is worldsat's work and counts in the other rows.

The goal is products >= 0.9x forward, in km2/s: reading the windows, blending, writing and extracting the products
must cost little next to the model. km2 counts the area once, although windows overlap: every row runs the same windows.

The model is a `worldsat.models.multitask.MultitaskModel` (`--arch`, random weights) with four heads like the sample
world's: crop_type (segment, 4 classes), yield_t_ha (regress, attached to the wheat and maize polygons as a property), road
(polyline) and wind_turbine (detect). Random weights give probabilities near 1/N everywhere (no objects at all), a
checkerboard from the random transposed convolutions (a speck per pixel) and a detection at ~0.5 for every proposal, so
the weights are set once like a trained model's, without changing a layer (`calibrate`): the upsampling's transposed
convolutions bilinear (the usual FCN initialization), the last layer of each dense head centred and scaled per channel
on two windows of the source (roads rare), the detector's object logit scaled and shifted so few boxes pass 0.5.
The outputs then follow the fields of the source, the products hold objects (their counts are printed), and the
forward pass costs what it costs for a trained model.
The source is synthetic: `--side` x `--side` px at 10 m (UTM 31N) of `--times` images of the 12 Sentinel-2 L2A bands,
fields of about 400 m with noise. For the throughput rows it is computed once into memory and wrapped in dask with
512 px chunks (as `worldsat.data.load.load` gives): the cost of making it is not timed, reading it is.

`--aoi W,S,E,N` instead runs `worldsat.infer.predict.predict` itself on a real area of the sample world (search,
loading of the scenes, choice of the clearest images per place, tiling, products, STAC collection), timed whole,
beside the forward pass alone over the same windows of the same source (made with the same public functions).

(b) Peak memory, in a child process (so that nothing measured before counts): `source_products` over an area of
`--area-km2` whose source, `--mem-times` (4) images of 12 bands in float32, is made chunk by chunk by a function of
the chunk's position (dask): it exists nowhere as a whole. The model is cheap here (a 1x1 convolution on the pixel-wise
maximum over the images, to a 3-class segmentation and a regression, `--mem-window` px windows, 4 per batch), since the
model is not what is measured; the regression is attached to every polygon as a property (`attach_properties`, by
burns of bounded windows). The child runs a
quarter of the area, then the whole area, and prints for each the source's size as one array beside the peak resident
memory of the process (Linux VmHWM, reset before each run) and the peak above the process's baseline, plus the Zarr run
and products on disk. If the tiling materialized the source, the peak would grow with it; what a batch of windows
needs (its windows, the source chunks they touch, the blended blocks) does not grow once a batch's windows span fewer
chunks than the area has, so the quarter area should already be larger than that (the defaults are). The machine's RAM is read
from the OS and the area whose source would be 10x the RAM is printed with what a run of it would take (time at the
measured rate, disk space at the measured bytes per km2).

`--ram-gb G` runs the memory test as on a machine of G GB: the child process is put in a memory cgroup capped at G GB,
so the kernel kills it if it ever holds more (Linux, where this user may make a cgroup: usually root; elsewhere the
cap is said to be unenforced and only measured), and the area defaults to the one whose source is 10x G as one array.
GDAL sizes its block cache at 5 % of the RAM it finds (1.2 GB on a 25 GB machine) and does not see the cap, so the
child gets GDAL_CACHEMAX at 5 % of G, as GDAL would choose on such a machine (unless GDAL_CACHEMAX is set already).
That is the 10x-RAM test at a size a run can finish: on a 25 GB machine the real one takes hours and tens of GB of disk.

It prints numbers and exits 0: it measures, it does not gate. Helpers on a shared machine: run it under `nice`; the
ratios are more stable than the seconds.

    python benchmarks/infer.py                         # CPU: 384 px area, 1 image, resnet18, 128 px windows; memory: 400 km2
    python benchmarks/infer.py --quick                 # under a minute: 192 px, one round; memory on 36 km2
    python benchmarks/infer.py --times 4               # a multi-image model (4 images per place, as Satlas)
    python benchmarks/infer.py --breakdown --skip-memory   # also where the products row's time goes (forward, tiling, COGs, vectors)
    python benchmarks/infer.py --device cuda --side 2048 --size 256 --batch-size 16 --area-km2 20000
    python benchmarks/infer.py --aoi 1.605,48.220,1.635,48.240 --skip-memory      # a real area of the sample world
    python benchmarks/infer.py --skip-throughput --ram-gb 2           # 10x RAM, as on a 2 GB machine: 10417 km2, ~7 min
    python benchmarks/infer.py --skip-throughput --area-km2 131648   # the 10x-RAM run of a 25 GB machine (see the printed
                                                                     # estimate first: hours and tens of GB of disk)
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

TASKS = [{"name": "crop_type", "kind": "segment", "classes": ["wheat", "maize", "rapeseed", "grassland"]},
         {"name": "yield_t_ha", "kind": "regress", "categories": ["wheat", "maize"], "property": "yield_t_ha"},
         {"name": "road", "kind": "polyline", "classes": ["road"]},
         {"name": "wind_turbine", "kind": "detect", "classes": ["wind_turbine"], "point_box_px": 8}]
BANDS, FIELD_PX, CHUNK = 12, 40, 512
RECIPE = "ssl4eo-s2-l2a"          # the 12 Sentinel-2 L2A bands the sample world has


# ---------------------------------------------------------------- measuring
def _sync(dev):
    import torch
    if dev.type == "cuda": torch.cuda.synchronize()

def _status_mb(key:str) -> float:
    "VmRSS (resident now) or VmHWM (peak resident since the last reset) of this process in MB (Linux); elsewhere the peak."
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"): return int(line.split()[1]) / 1024
    except OSError: pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # Linux: KiB (macOS: bytes; not measured there)

def _reset_peak() -> bool:
    "Reset the kernel's peak-resident mark (VmHWM) to the resident size now (Linux >= 4.0: write 5 to clear_refs)."
    try: Path("/proc/self/clear_refs").write_text("5"); return True
    except OSError: return False

def ram_bytes() -> int:
    "Physical memory of this machine."
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

def source_bytes_per_km2(times:int) -> int:
    "Bytes of a float32 source of `times` images of 12 bands per km2 at 10 m (10,000 px)."
    return 10_000 * times * BANDS * 4

def memory_cgroup(limit_bytes:int):
    """A fresh memory cgroup under this process's own, capped at `limit_bytes` (cgroup v2 `memory.max`, or v1
    `memory.limit_in_bytes`), to run the memory child in: `(folder, version)`, or `(None, why)` where the OS does not let
    this user make one (not Linux, no memory controller, not writable: usually root or a delegated cgroup is needed)."""
    try: lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError as e: return None, f"no /proc/self/cgroup ({e})"
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "" and Path("/sys/fs/cgroup/cgroup.controllers").is_file(): base, v, key = Path("/sys/fs/cgroup"), 2, "memory.max"
        elif "memory" in ctrls.split(","): base, v, key = Path("/sys/fs/cgroup/memory"), 1, "memory.limit_in_bytes"
        else: continue
        d = base/path.lstrip("/")/f"worldsat-bench-{os.getpid()}"
        try:
            d.mkdir()
            (d/key).write_text(str(int(limit_bytes)))
            return d, v
        except OSError as e:
            if d.is_dir():
                try: d.rmdir()
                except OSError: pass
            return None, f"cannot make a capped cgroup at {d} ({e.strerror})"
    return None, "no memory cgroup controller for this process"

def cgroup_peak(d:Path, v:int):
    "Peak memory the cgroup was charged (page cache of the files written included), or None where the kernel keeps none."
    for f in (("memory.peak",) if v == 2 else ("memory.max_usage_in_bytes",)):
        try: return int((d/f).read_text())
        except (OSError, ValueError): pass
    return None

def _du(path:Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())

def _timed(run) -> float:
    t = time.perf_counter(); run(); return time.perf_counter() - t


# ---------------------------------------------------------------- the synthetic area
_NOISE = {}

def _noise(seed:int, t:int) -> np.ndarray:
    "A (12, CHUNK, CHUNK) tile of noise per image, made once: chunks start on multiples of CHUNK, so each takes a slice of it."
    if (seed, t) not in _NOISE:
        _NOISE[seed, t] = np.random.default_rng([seed, t]).standard_normal((BANDS, CHUNK, CHUNK), dtype=np.float32) * np.float32(0.01)
    return _NOISE[seed, t]

def _fields(y0, y1, x0, x1, t, seed):
    "(12, h, w) float32 reflectances: fields of FIELD_PX px, each with its own spectrum, a slight change per image, noise."
    py, px = np.arange(y0, y1) // FIELD_PX, np.arange(x0, x1) // FIELD_PX
    gy, gx = np.meshgrid(np.arange(py[0], py[-1] + 1), np.arange(px[0], px[-1] + 1), indexing="ij")
    h = (gy.astype(np.int64) * 73856093 ^ gx.astype(np.int64) * 19349663 ^ seed * 83492791) % 9973 / 9973.0   # one number per field
    spectra = (0.05 + 0.3 * np.modf(h[None] * (np.arange(BANDS)[:, None, None] * 7.31 + 1.7) + 0.02 * t)[0]).astype(np.float32)
    img = np.repeat(np.repeat(spectra, np.bincount(py - py[0]), axis=1), np.bincount(px - px[0]), axis=2)
    img += _noise(seed, t)[:, :y1 - y0, :x1 - x0]
    return img

def synthetic_source(side:int, times:int, seed:int=0, in_memory:bool=False):
    "A lazy `(band, y, x)` (times=1) or `(time, band, y, x)` float32 DataArray on a UTM 31N 10 m grid, made chunk by chunk."
    import dask.array as da, xarray as xr, rioxarray  # noqa: F401
    from affine import Affine
    lead = (times,) if times > 1 else ()
    shape = lead + (BANDS, side, side)
    chunks = da.core.normalize_chunks(((1,) if times > 1 else ()) + (BANDS, CHUNK, CHUNK), shape)
    def block(block_info=None):
        loc = block_info[None]["array-location"]
        (y0, y1), (x0, x1) = loc[-2], loc[-1]
        t = loc[0][0] if times > 1 else 0
        b = _fields(y0, y1, x0, x1, t, seed)
        return b[None] if times > 1 else b
    arr = da.map_blocks(block, dtype=np.float32, chunks=chunks)
    if in_memory: arr = da.from_array(arr.compute(), chunks=chunks)
    dims = (("time",) if times > 1 else ()) + ("band", "y", "x")
    coords = {"band": [f"b{i}" for i in range(BANDS)], "y": 5_400_000 - 5 - 10 * np.arange(side), "x": 400_005 + 10 * np.arange(side)}
    x = xr.DataArray(arr, dims=dims, coords=coords, name="image")
    return x.rio.write_crs("EPSG:32631").rio.write_transform(Affine(10, 0, 400_000, 0, -10, 5_400_000))


# ---------------------------------------------------------------- the model
def make_model(arch:str, times:int, fpn:int):
    "A MultitaskModel with the four heads of TASKS, random weights (seed 0)."
    import torch
    from worldsat.core import recipe
    from worldsat.models.backbones import backbone
    from worldsat.models.multitask import MultitaskModel
    torch.manual_seed(0)
    return MultitaskModel(backbone(arch, recipe(RECIPE).channel_names, temporal=times > 1), TASKS, fpn_channels=fpn).eval()

def calibrate(net, x, gain:float=4.0, detect_shift:float=2.5):
    """Make a random model's outputs look like a trained one's (same layers, same cost): bilinear transposed convolutions
    in the upsampling (no checkerboard), and the last layer of each head rescaled so that on batch `x` its outputs spread
    as a trained model's do: dense heads per
    channel centred and scaled to `gain` (polyline background favoured, regression around 7 +- 2), the detector's object
    logit (minus background) scaled to 1 and shifted down by `detect_shift` (few confident boxes)."""
    import torch
    from worldsat.infer.predict import model_raster_fn
    dense = [t for t in net.tasks if t["kind"] in ("segment", "polyline", "regress")]
    with torch.no_grad():
        for m in net.upsample.modules():            # random transposed convolutions make a checkerboard: bilinear ones instead (FCN's init)
            if isinstance(m, torch.nn.ConvTranspose2d):
                k = m.kernel_size[0]
                f = (k + 1) // 2
                c = f - 1 if k % 2 else f - 0.5
                ramp = 1 - torch.abs(torch.arange(k, dtype=torch.float32) - c) / f
                m.weight.zero_(); m.bias.zero_()
                idx = torch.arange(min(m.in_channels, m.out_channels))
                m.weight[idx, idx] = torch.outer(ramp, ramp).to(m.weight)
        fm, up = net.features(x)
        got = {t["name"]: net.heads[t["name"]].layers(up).float() for t in dense}
        for t in dense:
            conv, y = net.heads[t["name"]].layers[1], got[t["name"]]
            m, s = y.mean((0, 2, 3)), y.std((0, 2, 3)).clamp(min=1e-12)
            if t["kind"] == "regress": g, shift = 2.0 / s, torch.full_like(m, 7.0)          # yields around 7 +- 2 t/ha
            else:
                g, shift = gain / s, torch.zeros_like(m)
                if t["kind"] == "polyline": shift[0] = 3.0 * gain                              # background favoured: thin roads
            conv.weight.mul_(g[:, None, None, None])
            conv.bias.copy_((conv.bias - m) * g + shift)
        for t in net.tasks:
            if t["kind"] != "detect": continue
            lin, seen = net.heads[t["name"]].roi_heads.box_predictor.cls_score, []
            hook = lin.register_forward_hook(lambda mod, i, o: seen.append(o.detach().float()))
            try: model_raster_fn(net, [t["name"]])[0](x)
            finally: hook.remove()
            o = torch.cat(seen)
            d = o[:, 1:] - o[:, :1]                                                            # object minus background, per class
            m, s = d.mean(0), d.std(0).clamp(min=1e-12)
            w0, b0 = lin.weight[:1].clone(), lin.bias[:1].clone()
            lin.weight[1:] = w0 + (lin.weight[1:] - w0) / s[:, None]
            lin.bias[1:] = b0 + (lin.bias[1:] - b0 - m) / s - detect_shift
    return net


# ---------------------------------------------------------------- (a) throughput
def _window_batches(src, wins, batch_size, dev):
    import torch
    from worldsat.infer.tiles import _read
    return [torch.from_numpy(_read(src, wins[b:b + batch_size])).to(dev) for b in range(0, len(wins), batch_size)]

def _forward_fn(fn, batches, dev, amp):
    import contextlib, torch
    ctx = (lambda: torch.autocast("cuda")) if amp and dev.type == "cuda" else contextlib.nullcontext
    def run():
        fn.eval()                                   # predict() leaves a module it was given in training mode (reported)
        with torch.no_grad():
            for x in batches:
                with ctx(): fn(x)
        _sync(dev)
    return run

def throughput(a) -> dict:
    import torch
    from worldsat.infer.predict import model_raster_fn, source_products
    from worldsat.infer.tiles import predict_raster, windows
    dev, amp = torch.device(a.device), a.device.startswith("cuda")
    net = make_model(a.arch, a.times, a.fpn).to(dev)
    src = synthetic_source(a.side, a.times, in_memory=True)
    wins = windows(a.side, a.side, a.size, a.overlap)
    batches = _window_batches(src, wins, a.batch_size, dev)
    calibrate(net, batches[0][:2])
    fn, channels = model_raster_fn(net)
    fn = fn.to(dev).eval()
    km2 = a.side * a.side * 1e-4
    tmp = Path(tempfile.mkdtemp(prefix="worldsat-bench-infer-"))
    kw = dict(size=a.size, overlap=a.overlap, batch_size=a.batch_size, device=dev, amp=amp, progress=False)
    n = {"run": 0}
    def products():
        n["run"] += 1
        rec, _ = source_products(fn, src, tmp/f"p{n['run']}", tasks=fn.tasks, channels=channels, table=False, **kw)   # as predict for one period
        _sync(dev); n["counts"] = rec["counts"]
    def raster():
        n["run"] += 1
        predict_raster(fn, src, tmp/f"r{n['run']}", channels_out=channels, **kw); _sync(dev)
    forward = _forward_fn(net, batches, dev, amp)                          # the MultitaskModel itself: outputs by task
    try:
        small = synthetic_source(a.size, a.times, in_memory=True)          # warm-up of every row: first-use costs (imports, GDAL, kernels)
        source_products(fn, small, tmp/"warm", tasks=fn.tasks, channels=channels, **kw)
        todo = [("forward", forward)] + ([] if a.quick else [("raster", raster)]) + [("products", products)]
        rows = {name: [] for name, _ in todo}
        for r in range(a.repeat):                                          # interleaved: each round sees the same machine
            for name, run in todo: rows[name].append(_timed(run))
            print(f"  round {r + 1}/{a.repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in rows.items()), file=sys.stderr, flush=True)
        counts = n["counts"]
    finally: shutil.rmtree(tmp, ignore_errors=True)
    best = {k: min(v) for k, v in rows.items()}
    return {"what": f"synthetic {a.side} x {a.side} px", "km2": km2, "windows": len(wins), "best": best, "all": rows,
            "counts": {str(k): int(v) for k, v in counts.items()}}

def breakdown(a) -> dict:
    """Where the products row's time goes, once each on the throughput rows' source and model: the forward pass's CPU
    use (process CPU seconds over wall seconds), the tiling (`predict_raster`), then on its run the COGs of every task
    and the vectors of every task with their properties (`source_products`' parts, one after another here)."""
    import torch
    from worldsat.infer import predict as P
    from worldsat.infer.tiles import predict_raster, open_prediction, windows
    dev, amp = torch.device(a.device), a.device.startswith("cuda")
    net = make_model(a.arch, a.times, a.fpn).to(dev)
    src = synthetic_source(a.side, a.times, in_memory=True)
    batches = _window_batches(src, windows(a.side, a.side, a.size, a.overlap), a.batch_size, dev)
    calibrate(net, batches[0][:2])
    fn, channels = P.model_raster_fn(net)
    fn = fn.to(dev).eval()
    forward = _forward_fn(net, batches, dev, amp)
    forward()                                                             # warm
    c0, t0 = time.process_time(), time.perf_counter(); forward(); cpu, fwd = time.process_time() - c0, time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="worldsat-bench-parts-"))
    try:
        kw = dict(size=a.size, overlap=a.overlap, batch_size=a.batch_size, device=dev, amp=amp, progress=False)
        predict_raster(fn, synthetic_source(a.size, a.times, in_memory=True), tmp/"warm", channels_out=channels, **kw)
        t = time.perf_counter(); run = predict_raster(fn, src, tmp/"run", channels_out=channels, **kw); _sync(dev); raster = time.perf_counter() - t
        pred = open_prediction(run)
        crs = pred.rio.crs.to_wkt()
        sub = lambda t: pred.sel(band=[c for c in channels if c == t["name"] or c.startswith(t["name"] + ":")])
        t = time.perf_counter()
        for task in fn.tasks: P._task_rasters(task, sub(task), tmp, {})
        cogs = time.perf_counter() - t
        t = time.perf_counter()
        for task in fn.tasks:
            for part in P._task_vectors(task, sub(task), 0.5, 4, 4):
                if len(part): P._attach(P._table([part], crs, "all"), fn.tasks, pred)
        vectors = time.perf_counter() - t
    finally: shutil.rmtree(tmp, ignore_errors=True)
    return {"forward": fwd, "cores": cpu / fwd, "raster": raster, "cogs": cogs, "vectors": vectors}

def report_breakdown(b:dict):
    print(f"  breakdown (one run each): the forward pass {b['forward']:.2f} s using {b['cores']:.2f} CPU cores on average; "
          f"predict_raster {b['raster']:.2f} s; then the COGs {b['cogs']:.2f} s and the vectors with their properties {b['vectors']:.2f} s "
          f"(in the products row the COGs are written in a thread beside the vectors). The goal leaves "
          f"{b['forward'] / 0.9 - b['forward']:.2f} s beyond the forward pass for all of it.")

def real_area(a) -> dict:
    "predict() on a real area of the sample world, timed whole, beside the forward pass over the same windows."
    import torch
    from worldsat.data.load import load
    from worldsat.data.stac import open_catalog
    from worldsat.data.torch import as_normalization
    from worldsat.geo import aoi as to_aoi
    from worldsat.infer.predict import area_cell, model_raster_fn, model_source, predict
    from worldsat.infer.tiles import windows
    from worldsat.sample import sample_world
    dev, amp = torch.device(a.device), a.device.startswith("cuda")
    aoi = [float(v) for v in a.aoi.split(",")]
    net = make_model(a.arch, a.times, a.fpn).to(dev)
    # the model's source as predict makes it (the same public functions), for the forward row and the calibration
    norm = as_normalization(RECIPE)
    cell = area_cell(to_aoi(aoi))
    scenes = open_catalog(sample_world(show_progress=False)).search("sentinel-2-l2a", aoi=to_aoi(aoi), start=a.start, end=a.end)
    cube = load(scenes, cell, bands=list(dict.fromkeys(norm.sources)), scale=False, dtype="float32", chunks={"y": 512, "x": 512})
    src, _ = model_source(cube["image"], cube["clear"], norm, a.times, block=a.size)
    src = src.compute()
    wins = windows(cell.height, cell.width, a.size, a.overlap)
    batches = _window_batches(src, wins, a.batch_size, dev)
    calibrate(net, batches[0][:2])
    km2 = cell.height * cell.width * 1e-4
    forward = _forward_fn(net, batches, dev, amp)
    tmp = Path(tempfile.mkdtemp(prefix="worldsat-bench-infer-real-"))
    n = {"run": 0}
    def whole():
        n["run"] += 1
        n["rec"] = predict(net, aoi, a.start, a.end, tmp/f"p{n['run']}", normalization=RECIPE, times=a.times, size=a.size,
                           overlap=a.overlap, batch_size=a.batch_size, device=dev, amp=amp, progress=False)
        _sync(dev)
    try:
        forward(); whole()                                                  # warm-up (imports, GDAL, the page cache)
        rows = {"forward": [], "predict": []}
        for r in range(a.repeat):
            for name, run in (("forward", forward), ("predict", whole)): rows[name].append(_timed(run))
            print(f"  round {r + 1}/{a.repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in rows.items()), file=sys.stderr, flush=True)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    return {"what": f"sample world {a.aoi} ({cell.height} x {cell.width} px, {a.start} to {a.end}, {len(scenes)} scenes)",
            "km2": km2, "windows": len(wins), "best": {k: min(v) for k, v in rows.items()}, "all": rows,
            "counts": n["rec"]["periods"][0]["counts"]}


# ---------------------------------------------------------------- (b) memory, in a child process
def _cheap_model(times:int):
    import torch
    class Cheap(torch.nn.Module):
        "Max over the images, 1x1 convolution: a 3-class segmentation (probabilities, background first) and a regression."
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.conv = torch.nn.Conv2d(BANDS, 4, 1)
            with torch.no_grad(): self.conv.weight.copy_(torch.randn(4, BANDS, 1, 1, generator=g) * 40); self.conv.bias.zero_()
        def forward(self, x):
            if x.ndim == 5: x = x.amax(1)
            y = self.conv(x - 0.2)
            return torch.cat([torch.softmax(y[:, :3], 1), y[:, 3:]], 1)
    return Cheap()

def memory_child(area_km2:float, times:int, window:int, out:str) -> dict:
    from worldsat.infer.predict import source_products, task_channels
    from worldsat.models.multitask import check_task
    tasks = [check_task({"name": "cover", "kind": "segment", "classes": ["crop", "grass"]}),
             check_task({"name": "value", "kind": "regress", "categories": ["crop", "grass"], "property": "value"})]  # attached to every polygon
    channels = [c for t in tasks for c in task_channels(t)]
    kw = dict(tasks=tasks, channels=channels, size=window, overlap=window // 8, batch_size=4, min_area=16, progress=False)
    model = _cheap_model(times)
    source_products(model, synthetic_source(window, times), out + "-warm", **kw)     # imports and first-use costs out of the way
    shutil.rmtree(out + "-warm", ignore_errors=True)
    res = []
    for frac in (0.25, 1.0):
        side = max(window, int(round((area_km2 * frac) ** 0.5 * 100)))
        src = synthetic_source(side, times)
        base = _status_mb("VmRSS")
        reset = _reset_peak()
        t = time.perf_counter()
        rec, table = source_products(model, src, f"{out}-{frac}", table=False, **kw)   # the objects are written, not returned
        dt = time.perf_counter() - t
        peak = _status_mb("VmHWM")
        disk = _du(Path(f"{out}-{frac}"))
        shutil.rmtree(f"{out}-{frac}", ignore_errors=True)
        del table
        res.append({"side": side, "km2": side * side * 1e-4, "source_bytes": int(src.nbytes), "baseline_mb": base, "peak_mb": peak,
                    "reset": reset, "seconds": dt, "disk_bytes": disk, "objects": sum(rec["counts"].values())})
    return {"runs": res}


# ---------------------------------------------------------------- report
def _gb(b): return b / 1e9

def report_rates(r:dict, a, label:str):
    b, km2 = r["best"], r["km2"]
    print(f"\n(a) throughput: {r['what']}, {km2:.2f} km2 at 10 m, {r['windows']} windows of {a.size} px (overlap {a.overlap}), "
          f"batch {a.batch_size}, {max(a.times, 1)} image(s) per place, {a.arch} (FPN {a.fpn}) on {a.device}; best of {a.repeat}")
    print(f"  {'row':<10s} {'seconds':>8s} {'km2/s':>8s} {'x forward':>10s}")
    for k, s in b.items():
        print(f"  {k:<10s} {s:8.2f} {km2 / s:8.3f} {b['forward'] / s:10.2f}")
    print(f"  objects in the products: {r['counts']}")
    x = b["forward"] / b[label]
    print(f"  goal: {label} >= 0.9x forward: {'PASS' if x >= 0.9 else 'FAIL'} ({x:.2f}x)")

def report_memory(m:dict, a, rate_area):
    ram = ram_bytes()
    bpk = source_bytes_per_km2(a.mem_times)
    print(f"\n(b) memory: lazy synthetic source of {a.mem_times} images x {BANDS} bands float32 ({bpk / 1e6:.2f} MB per km2), "
          f"windows of {a.mem_window} px, a cheap model; this machine's RAM {_gb(ram):.1f} GB")
    print(f"  {'km2':>8s} {'side px':>8s} {'source as one array':>20s} {'peak RSS':>9s} {'above baseline':>15s} {'seconds':>8s} {'km2/s':>6s} {'disk':>8s} {'objects':>8s}")
    for r in m["runs"]:
        print(f"  {r['km2']:8.0f} {r['side']:8d} {_gb(r['source_bytes']):17.1f} GB {r['peak_mb'] / 1e3:6.2f} GB "
              f"{(r['peak_mb'] - r['baseline_mb']) / 1e3:12.2f} GB {r['seconds']:8.1f} {r['km2'] / r['seconds']:6.1f} "
              f"{_gb(r['disk_bytes']):5.2f} GB {r['objects']:8d}")
    small, big = m["runs"]
    grow = (big["peak_mb"] - small["peak_mb"]) / 1e3
    added = (big["peak_mb"] - big["baseline_mb"]) * 2**20
    print(f"  the area grew {big['km2'] / small['km2']:.1f}x ({_gb(big['source_bytes'] - small['source_bytes']):.2f} GB more source), "
          f"the peak by {grow:+.2f} GB. The largest source is {big['source_bytes'] / added:.1f}x what the run added to the process "
          f"({_gb(added):.2f} GB) and {big['source_bytes'] / (big['peak_mb'] * 2**20):.1f}x the process's whole peak (imports included)")
    if not big["reset"]: print("  (the peak mark could not be reset here: both peaks are the process's peak so far)")
    if a.ram_gb:
        cap = a.ram_gb * 1e9
        cgp = m.get("cgroup_peak")
        print(f"  as on a machine of {a.ram_gb:g} GB: the largest source is {big['source_bytes'] / cap:.1f}x that memory as one array; "
              f"the process peaked at {big['peak_mb'] * 2**20 / cap:.2f}x it"
              + (f", and the kernel charged the capped cgroup at most {_gb(cgp):.2f} GB (page cache of the files written included, "
                 f"which the kernel reclaims under the cap)" if cgp else " (the cap was not enforced here)"))
    ten = 10 * ram / bpk
    rate = big["km2"] / big["seconds"]
    print(f"  an area whose source is 10x this RAM ({_gb(10 * ram):.0f} GB): --area-km2 {ten:.0f} (a square of {ten ** 0.5 * 100:.0f} px); "
          f"at {rate:.1f} km2/s it would take about {ten / rate / 3600:.1f} h here and {_gb(big['disk_bytes'] / big['km2'] * ten):.0f} GB of disk "
          f"(the Zarr run and the products; {_gb(shutil.disk_usage(tempfile.gettempdir()).free):.0f} GB free in {tempfile.gettempdir()}), "
          f"with this cheap model and a peak memory as above ({grow:+.2f} GB from a quarter of the area to the whole)")
    if rate_area: print(f"  (with the throughput rows' model at their {rate_area:.3f} km2/s: about {ten / rate_area / 86400:.1f} days)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu); autocast on CUDA, as predict does")
    p.add_argument("--arch", default="resnet18", help="backbone of the multi-task model (default: resnet18)")
    p.add_argument("--fpn", type=int, default=64, help="FPN / head channels of the model (default: 64)")
    p.add_argument("--times", type=int, default=1, help="images per place (default: 1; 4 for a multi-image model as Satlas)")
    p.add_argument("--side", type=int, default=384, help="side of the synthetic throughput area in px (default: 384 = 14.7 km2)")
    p.add_argument("--size", type=int, default=128, help="window side in px (default: 128)")
    p.add_argument("--overlap", type=int, default=16, help="least overlap of neighbouring windows in px (default: 16)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass, in every row (default: 8)")
    p.add_argument("--repeat", type=int, default=2, help="timed rounds, interleaved; the best is reported (default: 2)")
    p.add_argument("--aoi", default=None, help="W,S,E,N: run predict() on this area of the sample world instead of the synthetic one")
    p.add_argument("--start", default="2024-04-01", help="start of the period with --aoi (default: 2024-04-01)")
    p.add_argument("--end", default="2024-06-30", help="end of the period with --aoi (default: 2024-06-30)")
    p.add_argument("--area-km2", type=float, default=None,
                   help="area of the memory test in km2 (default: 400, about 2 minutes on 2 shared CPU cores; with --ram-gb, the area "
                        "whose source is 10x that); the run prints the area whose source would be 10x this machine's RAM")
    p.add_argument("--ram-gb", type=float, default=None,
                   help="run the memory test as on a machine of this much RAM: the child process is capped at it by a memory cgroup "
                        "(where the OS lets this user make one: Linux, usually root), and the area defaults to 10x it as one array")
    p.add_argument("--mem-times", type=int, default=4, help="images per place of the memory test's source (default: 4)")
    p.add_argument("--mem-window", type=int, default=256, help="window side of the memory test in px (default: 256; 4 per batch)")
    p.add_argument("--quick", action="store_true", help="under a minute: --side 192 (4 windows), --repeat 1, no raster row, --area-km2 36")
    p.add_argument("--breakdown", action="store_true", help="after the throughput rows, time the products row's parts once each (synthetic area only)")
    p.add_argument("--skip-throughput", action="store_true", help="only the memory test")
    p.add_argument("--skip-memory", action="store_true", help="only the throughput rows")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick: a.side, a.repeat, a.area_km2 = min(a.side, 192), 1, min(a.area_km2 or 36.0, 36.0)
    if a.ram_gb is not None:
        if a.ram_gb <= 0: p.error("--ram-gb must be positive")
        if a.area_km2 is None: a.area_km2 = round(10 * a.ram_gb * 1e9 / source_bytes_per_km2(a.mem_times))
    if a.area_km2 is None: a.area_km2 = 400.0
    if a.memory_child:
        print(json.dumps(memory_child(a.area_km2, a.mem_times, a.mem_window, a.memory_child))); return 0
    import torch
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu, or on a machine with a GPU"); return 0
    if a.threads: torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    name = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start")
    rate = None
    if not a.skip_throughput:
        r = real_area(a) if a.aoi else throughput(a)
        label = "predict" if a.aoi else "products"
        report_rates(r, a, label)
        rate = r["km2"] / r["best"][label]
        if a.breakdown and not a.aoi: report_breakdown(breakdown(a))
    if not a.skip_memory:
        tmp = Path(tempfile.mkdtemp(prefix="worldsat-bench-mem-"))
        cg, how = (None, None)
        if a.ram_gb:
            cg, how = memory_cgroup(a.ram_gb * 1e9)
            print(f"memory test as on a machine of {a.ram_gb:g} GB: " +
                  (f"the child runs in a cgroup (v{how}) capped at {a.ram_gb:g} GB by the kernel ({cg})" if cg else
                   f"NOT enforced: {how}; the peak is still measured"))
        try:
            cmd = [sys.executable, __file__, "--memory-child", str(tmp/"run"), "--area-km2", str(a.area_km2),
                   "--mem-times", str(a.mem_times), "--mem-window", str(a.mem_window)]
            enter = (lambda: (cg/"cgroup.procs").write_text(str(os.getpid()))) if cg else None
            env = dict(os.environ)
            if a.ram_gb and "GDAL_CACHEMAX" not in env:     # GDAL's default block cache is 5 % of the RAM it sees, which is the
                env["GDAL_CACHEMAX"] = str(max(16, int(0.05 * a.ram_gb * 1e9 / 2**20)))   # machine's, not the cap's: as on a G GB machine
                print(f"GDAL_CACHEMAX={env['GDAL_CACHEMAX']} (MB) in the child: GDAL's default on a machine of {a.ram_gb:g} GB")
            pr = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=enter, env=env)
            if pr.returncode:
                killed = pr.returncode in (-9, 137) and cg is not None
                print(f"\n(b) memory: the child process failed (status {pr.returncode}"
                      f"{f': killed, most likely by the {a.ram_gb:g} GB cap' if killed else ''}):\n{pr.stderr[-3000:]}")
            else:
                m = json.loads(pr.stdout.strip().splitlines()[-1])
                if cg: m["cgroup_peak"] = cgroup_peak(cg, how)
                report_memory(m, a, rate)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if cg:
                try: cg.rmdir()
                except OSError: pass
    print(f"\n{time.perf_counter() - t0:.0f} s in all; load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
