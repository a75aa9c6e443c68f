"""A static copy of the leaderboard (HTML + results JSON) for Hugging Face Spaces or GitHub Pages.

Only what is public goes out: boards of a dev phase and revealed test phases, with their (redacted for a
test phase) results objects. A hidden test phase gets its page with the "hidden" note and no rows, and none
of its results. Sorting works without a server: each metric column has its own pre-rendered page
(``sort-<split>.<metric>.html``), linked from the column headers.

Layout::

    site/index.html
    site/b/<benchmark>/<phase>/index.html            (default sort)
    site/b/<benchmark>/<phase>/sort-<column>.html
    site/b/<benchmark>/<phase>/board.json            (the board as data)
    site/results/<submission id>.json
    site/static/style.css, app.js
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from casebench.leaderboard.service import Leaderboard


def export_site(lb: Leaderboard, out: str | Path) -> dict:
    """Write the static site to ``out`` (created; files of an earlier export are replaced). Returns a summary
    ``{"out", "boards", "results"}``."""
    from casebench.leaderboard.app import HERE, templates
    from casebench.workspace import atomic_write_bytes, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = templates()
    boards = list(lb.boards.values())
    common = dict(title=lb.config.title, user=None, csrf="", boards=boards, static=True, pending=False)
    shutil.copytree(HERE / "static", out / "static", dirs_exist_ok=True)
    results_dir = out / "results"
    if results_dir.exists():
        shutil.rmtree(results_dir)  # a board hidden again since the last export must not keep its files
    results_dir.mkdir()
    metas = [lb.board_meta(b) for b in boards]
    atomic_write_text(out / "index.html", env.get_template("index.html.j2").render(metas=metas, root="", **common))
    n_results = 0
    summary = []
    for board, meta in zip(boards, metas, strict=True):
        bdir = out / "b" / board.key
        if bdir.exists():
            shutil.rmtree(bdir)
        bdir.mkdir(parents=True)
        root = "../../../"
        data = lb.board_view(board, request_comparisons=False, results_url=root + "results/{id}.json")
        sort_pages = {c["key"]: f"sort-{c['key']}.html" for c in data["columns"]}
        pages = {"index.html": data}
        for key, name in sort_pages.items():
            pages[name] = lb.board_view(board, sort=key, request_comparisons=False,
                                        results_url=root + "results/{id}.json")
        for name, d in pages.items():
            html = env.get_template("board.html.j2").render(board=meta, data=d, query={}, base="", root=root,
                                                            sort_pages=sort_pages, **common)
            atomic_write_text(bdir / name, html)
        atomic_write_bytes(bdir / "board.json", orjson.dumps({"board": meta, **data}, option=orjson.OPT_INDENT_2))
        if data["visible"]:
            for sub in lb.board_submissions(board):
                res = lb.results_view(sub, None)
                atomic_write_bytes(results_dir / f"{sub.id}.json", orjson.dumps(res, option=orjson.OPT_INDENT_2))
                n_results += 1
        summary.append({"board": board.key, "visible": data["visible"], "rows": len(data["rows"])})
    return {"out": str(out), "boards": summary, "results": n_results}
