#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb (what `nbdev-readme` does, without needing Quarto).

Markdown cells are copied as they are; code cells become ```python blocks, without nbdev directives; cells marked
`#| hide` are left out. With --check, write nothing and exit 1 if README.md differs from what would be written.
"""
import argparse, difflib, json, sys
from pathlib import Path

HEADER = "<!-- Generated from nbs/index.ipynb by tools/sync_readme.py: edit the notebook, then run that script. -->\n\n"

def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]).strip("\n")
        lines = src.splitlines()
        directives = [l.strip() for l in lines if l.strip().startswith("#|")]
        if any(d.replace(" ", "") in ("#|hide", "#|exporti", "#|export") for d in directives): continue
        if cell["cell_type"] == "markdown": parts.append(src)
        elif cell["cell_type"] == "code":
            code = "\n".join(l for l in lines if not l.strip().startswith("#|")).strip("\n")
            if code: parts.append(f"```python\n{code}\n```")
    return HEADER + "\n\n".join(parts) + "\n"

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    ap.add_argument("--root", default=Path(__file__).resolve().parents[1], type=Path, help="project root")
    args = ap.parse_args(argv)
    want = render(args.root/"nbs"/"index.ipynb")
    readme = args.root/"README.md"
    have = readme.read_text() if readme.exists() else ""
    if args.check:
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "README.md", "from nbs/index.ipynb"))
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/sync_readme.py`")
        print("README.md is in sync with nbs/index.ipynb")
        return
    if have != want: readme.write_text(want); print("wrote README.md")
    else: print("README.md already up to date")

if __name__ == "__main__": main()
