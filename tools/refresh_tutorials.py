#!/usr/bin/env python
"""Execute the tutorials in nbs/tutorials/ and store their outputs, so that the docs show them; or check they are current.

nbdev's Quarto renders the outputs stored in a notebook; a tutorial committed without outputs renders as code alone.
This script runs each tutorial top to bottom in a fresh kernel (every cell, `slow` ones included, as a reader would),
shrinks its figures (at most MAX_WIDTH px wide; a palette PNG or a JPEG when smaller), cleans it as `nbdev-clean` does and
records a stamp in nbs/tutorials/executed.json: a hash of the tutorial's cells and a hash of the package source it ran
against. `--check` fails when a tutorial changed, the package changed, a stored output is an error, or a tutorial that
draws figures has none stored.

Examples:
    python tools/refresh_tutorials.py                          # execute every tutorial (several minutes)
    python tools/refresh_tutorials.py nbs/tutorials/dataset.ipynb
    python tools/refresh_tutorials.py --check                  # what CI runs: are the stored outputs current?
"""
import argparse, base64, hashlib, io, json, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUT = ROOT/"nbs"/"tutorials"
STAMPS = TUT/"executed.json"
MAX_WIDTH = 800

def cells_hash(nb:dict) -> str:
    "Hash of what a reader wrote: cell types and sources (not outputs, ids or metadata)."
    h = hashlib.sha256()
    for c in nb["cells"]:
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        h.update(c["cell_type"].encode() + b"\0" + src.encode() + b"\0")
    return h.hexdigest()

def package_hash() -> str:
    "Hash of the package source the outputs depend on (generated files, without the nbdev index)."
    h = hashlib.sha256()
    for f in sorted((ROOT/"worldsat").rglob("*.py")):
        if f.name == "_modidx.py": continue
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()

def _draws(nb:dict) -> bool:
    "Does the tutorial draw figures? (matplotlib or an Image display in its code)"
    code = "\n".join(("".join(c["source"]) if not isinstance(c["source"], str) else c["source"])
                     for c in nb["cells"] if c["cell_type"] == "code")
    return any(k in code for k in ("plt.", "plot_", "Image(", ".plot(", "timeline("))

def shrink_figure(b64:str) -> tuple[str, str]:
    "The smallest of: the PNG as drawn, a palette PNG, a JPEG (quality 80); at most MAX_WIDTH px wide. -> (mime, base64)"
    from PIL import Image
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw))
    if im.width > MAX_WIDTH:
        im = im.resize((MAX_WIDTH, round(im.height * MAX_WIDTH / im.width)), Image.LANCZOS)
    rgb = im.convert("RGB")
    best = ("image/png", raw)
    for mime, img, kw in (("image/png", im, {"optimize": True}),
                          ("image/png", rgb.quantize(colors=128, method=Image.Quantize.MEDIANCUT), {"optimize": True}),
                          ("image/jpeg", rgb, {"quality": 80, "optimize": True})):
        buf = io.BytesIO(); img.save(buf, format=mime.split("/")[1].upper(), **kw)
        if len(buf.getvalue()) < len(best[1]): best = (mime, buf.getvalue())
    return best[0], base64.b64encode(best[1]).decode()

def execute(path:Path, timeout:int) -> dict:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("WORLDSAT_PROGRESS")
    os.environ["WORLDSAT_PROGRESS"] = "0"          # stored outputs without progress bars
    t0 = time.time()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                       store_widget_state=True).execute()
    finally:
        if env_before is None: os.environ.pop("WORLDSAT_PROGRESS", None)
        else: os.environ["WORLDSAT_PROGRESS"] = env_before
    secs = time.time() - t0
    for c in nb.cells:
        for o in c.get("outputs", []):
            d = o.get("data", {})
            if "image/png" in d:
                mime, b64 = shrink_figure(d.pop("image/png"))
                d[mime] = b64
    nbformat.write(nb, path)
    from nbdev.clean import nbdev_clean
    nbdev_clean(str(path))
    stored = json.loads(path.read_text())
    return {"cells": cells_hash(stored), "package": package_hash(), "seconds": round(secs),
            "executed": time.strftime("%Y-%m-%d"), "bytes": path.stat().st_size}

def problems(path:Path, stamps:dict, pkg:str) -> list[str]:
    nb = json.loads(path.read_text())
    name = path.name
    st = stamps.get(name)
    if st is None: return [f"{name}: never executed by this script"]
    out = []
    if st["cells"] != cells_hash(nb): out.append(f"{name}: its cells changed since its outputs were stored")
    if st["package"] != pkg: out.append(f"{name}: the package changed since its outputs were stored")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    errs = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errs: out.append(f"{name}: {len(errs)} stored error output(s): {errs[0].get('ename')}: {errs[0].get('evalue')}")
    if not any(c.get("outputs") for c in code): out.append(f"{name}: no stored outputs at all")
    if _draws(nb) and not any(k.startswith("image/") for c in code for o in c.get("outputs", []) for k in o.get("data", {})):
        out.append(f"{name}: draws figures but stores none")
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Examples:" + __doc__.split("Examples:")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="tutorials to execute (default: every nbs/tutorials/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="only check that the stored outputs are current")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default: 1800)")
    a = ap.parse_args(argv)
    paths = [Path(p).resolve() for p in a.paths] or sorted(TUT.glob("*.ipynb"))
    stamps = json.loads(STAMPS.read_text()) if STAMPS.exists() else {}
    if a.check:
        pkg = package_hash()
        bad = [p for path in paths for p in problems(path, stamps, pkg)]
        for b in bad: print("stale:", b, file=sys.stderr)
        if bad:
            print("fix: run `python tools/refresh_tutorials.py` and commit the tutorials and nbs/tutorials/executed.json",
                  file=sys.stderr)
            return 1
        print(f"tutorials current: {len(paths)} notebooks")
        return 0
    for path in paths:
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        stamps[path.name] = execute(path, a.timeout)
        print(f"  {stamps[path.name]['seconds']} s, {stamps[path.name]['bytes'] / 1e3:.0f} kB", flush=True)
        STAMPS.write_text(json.dumps(dict(sorted(stamps.items())), indent=1) + "\n")
    return 0

if __name__ == "__main__": sys.exit(main())
