"""Object properties from a raster: `attach_properties` on thousands of polygons, beside its object-by-object path.

What it measures
----------------
A synthetic product: a `--side` px square raster of smooth random fields (10 m pixels, UTM), vectorized into polygons
with `vectorize_polygons` (not timed), and a raster of random values to read under them. Two rows, in one process, best
of `--repeat` interleaved rounds:

* attach_properties: `worldsat.infer.vectorize.attach_properties(polygons, values, "v", stat)` as it is. Polygons that
  share no pixel with another are read from burns of the window around them, a group of neighbours at a time
  (`_polygon_stats`, windows of at most `BURN_PIXELS`); the others object by object.
* object by object: the same call with that burn turned off, so that every polygon is rasterized on its own: the peer
  (what `attach_properties` did before).

It checks that both give the same values, prints the seconds and the speed-up, and exits 0: it measures, it does not
gate.

Run: python benchmarks/attach.py [--side 2000] [--stat mean] [--repeat 2]
"""
from __future__ import annotations
import argparse, time

import numpy as np


def setup(side:int, seed:int=0):
    "Polygons of a smooth random field, and a raster of values over the same grid."
    import xarray as xr, rioxarray  # noqa: F401  (the .rio accessor)
    from scipy import ndimage
    from worldsat.infer.vectorize import vectorize_polygons
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.normal(size=(side, side)), 3)
    coords = {"y": 5300000 - 10 * (np.arange(side) + .5), "x": 500000 + 10 * (np.arange(side) + .5)}
    mask = xr.DataArray((f > 0.05).astype(np.float32)[None], dims=("band", "y", "x"), coords={"band": ["field"], **coords}).rio.write_crs(32631)
    polys = vectorize_polygons(mask, min_area=4)
    values = mask.copy(data=rng.normal(10, 3, (1, side, side)).astype(np.float32)).assign_coords(band=["v"])
    return polys, values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=2000, help="raster side in pixels (default 2000: about 6,600 polygons)")
    p.add_argument("--stat", default="mean", help="mean, median, majority or max (default mean)")
    p.add_argument("--repeat", type=int, default=2, help="timed rounds of each row; the best is reported (default 2)")
    a = p.parse_args(argv)
    import worldsat.infer.vectorize as V
    polys, values = setup(a.side)
    print(f"{len(polys)} polygons on a {a.side} x {a.side} px raster; stat {a.stat}")
    burn = V._polygon_stats
    best, got = {"attach_properties": [], "object by object": []}, {}
    for _ in range(a.repeat):
        for row in best:
            V._polygon_stats = burn if row == "attach_properties" else (lambda *args, **kw: {})
            try:
                t = time.perf_counter()
                got[row] = V.attach_properties(polys, values, "v", a.stat).properties.tolist()
                best[row].append(time.perf_counter() - t)
            finally: V._polygon_stats = burn
    same = got["attach_properties"] == got["object by object"]
    t1, t2 = min(best["attach_properties"]), min(best["object by object"])
    print(f"\n{'row':<20} {'seconds':>8} {'objects/s':>10}")
    for row, t in (("attach_properties", t1), ("object by object", t2)):
        print(f"{row:<20} {t:>8.2f} {len(polys) / t:>10.0f}")
    print(f"\nspeed-up {t2 / t1:.1f}x; the same values: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
