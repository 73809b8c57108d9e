#!/usr/bin/env python
"""Run worldsat's tests: every notebook under nbs/ through nbdev's test machinery, then a summary line.

nbdev-test itself prints no counts and exits 0 when no notebook matched; this wrapper runs the same `test_nb` on each
notebook (in parallel, one thread each: OMP_NUM_THREADS=1 unless set), prints one line per notebook and a final
`N passed, N failed`, and fails when nothing ran.

Examples:
    python tools/run_tests.py                       # the default suite (skips cells flagged notest/slow/gpu/network)
    python tools/run_tests.py --flags slow          # also run cells flagged `slow`
    python tools/run_tests.py nbs/01_geo.ipynb      # one notebook
"""
import argparse, os, shutil, sys, tempfile, time
from pathlib import Path

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("Examples:")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="notebooks or folders to test (default: the nbdev nbs_path)")
    ap.add_argument("--flags", default="", help="space-separated test flags to run that are normally skipped (slow gpu network notest)")
    ap.add_argument("--n-workers", type=int, default=min(os.cpu_count() or 1, 2), help="notebooks run at once (default: 2)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default: 900)")
    args = ap.parse_args(argv)

    from fastcore.parallel import parallel
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import test_nb

    cfg = get_config()
    skip_flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)
    files = []
    for p in (args.paths or [str(cfg.nbs_path)]):
        p = Path(p)
        if p.is_dir(): files += [Path(f) for f in nbglob(p, as_path=True)]
        elif p.suffix == ".ipynb" and p.exists(): files.append(p)
        else: sys.exit(f"error: {p} is neither a notebook nor a folder of notebooks")
    files = sorted({f.resolve() for f in files if not f.name.startswith("_")})
    if not files:
        print("0 passed, 0 failed")
        sys.exit("error: no notebook matched, so nothing was tested")
    os.environ.setdefault("WORLDSAT_PROGRESS", "0")
    if args.n_workers > 1 and len(files) > 1:
        # one thread per notebook (torch, numpy and the commands they start): two workers that each take every core
        # fight over them (the suite ran ~20 % slower so); a thread count set by the caller wins
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"testing {len(files)} notebooks with {args.n_workers} workers; skipping cells flagged "
          f"{sorted(set(skip_flags) - set(args.flags.split()))}", flush=True)
    t0 = time.time()
    # the notebooks' temporary files go to a folder of this run, removed at the end: a notebook's atexit clean-up
    # never runs in a worker process, which ends without it (each run of the suite left gigabytes in /tmp)
    tmp = tempfile.mkdtemp(prefix="worldsat-tests-")
    old_tmp = (os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"], tempfile.tempdir = tmp, tmp
    try:
        results = parallel(test_nb, files, skip_flags=skip_flags, force_flags=args.flags.split(), n_workers=args.n_workers,
                           basepath=cfg.config_path, cell_timeout=args.timeout, pause=0.01)
    finally:
        if old_tmp[0] is None: os.environ.pop("TMPDIR", None)
        else: os.environ["TMPDIR"] = old_tmp[0]
        tempfile.tempdir = old_tmp[1]
        shutil.rmtree(tmp, ignore_errors=True)
    root = Path.cwd()
    for f, (ok, secs) in zip(files, results):
        name = f.relative_to(root) if f.is_relative_to(root) else f
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({secs:.0f} s)")
    passed = sum(ok for ok, _ in results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed  ({time.time() - t0:.0f} s)")
    sys.exit(1 if failed else 0)

if __name__ == "__main__": main()
