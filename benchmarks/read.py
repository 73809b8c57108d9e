"""Reading a worldsat dataset's samples: worldsat's Zarr v2 reader beside zarr-python's, in one process.

Builds the pretraining benchmark's dataset (beauce of the sample world, 32 px cells, 4 dates; see `pretrain.py`) and
reads every sample of it, best of `--repeat` interleaved rounds:

| row | what is timed, per sample |
|---|---|
| worldsat, first read | `WorldsatDataset(...)[i]` on a new reader: the sample's files read once, checked against the manifest's sha256, decoded (`_read_v2`), normalized |
| worldsat, later read | the same reader again (checked already, no cache): files read and decoded |
| zarr-python, first read | `verify_sample` then `_read_group` (zarr's asynchronous API, every array in one hand-off), then the same normalization |
| zarr-python, later read | `_read_group` and the normalization |

It also times `tasks_from_dataset` (every sample's objects and label rasters) on a labelled build of the same cells,
with worldsat's reader and with zarr-python's groups. It prints ms per sample and the speed-up; it exits 0.

    python benchmarks/read.py
    python benchmarks/read.py --repeat 5
"""
from __future__ import annotations
import argparse, os, sys, tempfile, time
from pathlib import Path


def _best(fn, repeat:int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3, help="timed rounds; the best is reported (default: 3)")
    a = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pretrain import build_data
    import worldsat.data.torch as T
    from worldsat.data.dataset import BuildConfig, build, verify_sample
    with tempfile.TemporaryDirectory(prefix="worldsat-bench-read-") as tmp:
        tmp = Path(tmp)
        root = build_data(tmp/"data")
        n = len(T.WorldsatDataset(root, split=None, targets=()))
        def ours_first(): ds = T.WorldsatDataset(root, split=None, targets=()); [ds[i] for i in range(len(ds))]
        later_ds = T.WorldsatDataset(root, split=None, targets=()); [later_ds[i] for i in range(n)]
        def ours_later(): [later_ds[i] for i in range(n)]
        names = ["band", "image", "scale", "offset", "clear"]
        def peer(verify:bool):
            def run():
                ds = later_ds
                for sid in ds.sample_ids:
                    if verify: verify_sample(ds.root, sid)
                    ds._read(T._read_group(Path(ds.root)/"samples.zarr"/sid, names), sid)
            return run
        rows = {"first": (ours_first, peer(True)), "later": (ours_later, peer(False))}
        got = {k: (_best(o, a.repeat), _best(z, a.repeat)) for k, (o, z) in rows.items()}
        classes = ["wheat", "maize", "rapeseed", "grassland", "forest", "water", "built-up", "building", "road", "wind_turbine"]
        lab = build(BuildConfig(aoi=[1.600, 48.218, 1.640, 48.242], start="2024-01-01", end="2024-12-31", cell_size=32,
                                rules=[{"rule": "Coverage", "min": 99}, {"rule": "AOICloud", "max": 50}, {"rule": "EvenlySpread", "k": 4}],
                                labels="sample", classes=classes, split_block_m=640), tmp/"labelled", show_progress=False)
        def tasks(): T._SUMMARIES.clear(); return T.tasks_from_dataset(lab)
        mine = tasks()
        saved = T._read_v2
        T._read_v2 = lambda *args, **kw: None                 # every group read by zarr-python, as before
        try:
            theirs = tasks()
            t_zarr = _best(tasks, a.repeat)
        finally: T._read_v2 = saved
        t_ours = _best(tasks, a.repeat)
        same = mine == theirs
    print(f"{n} samples of 12 bands x 4 dates x 32 x 32 px; best of {a.repeat} rounds\n")
    print(f"{'read':8s} {'worldsat ms/sample':>19s} {'zarr-python ms/sample':>22s} {'speed-up':>9s}")
    for k, (o, z) in got.items():
        print(f"{k:8s} {1e3 * o / n:19.2f} {1e3 * z / n:22.2f} {z / o:8.1f}x")
    print(f"\ntasks_from_dataset on the labelled build: worldsat {t_ours:.3f} s, zarr-python {t_zarr:.3f} s "
          f"({t_zarr / t_ours:.1f}x); the same tasks: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
