"""Writing a claim's results: ``results.json``, PNG plots, ``report.md`` and a self-contained
``report.html`` (the PNGs embedded as base64 ``data:`` URIs, no scripts or files needed
besides), and for ``all`` an ``index.html`` / ``index.md`` linking them.

JSON note: non-finite numbers (a diverged loss, "never reached" = inf) are written as
``null`` so that every JSON parser (browsers included) reads the file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from deepgrad import __version__
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.stats import summarise

SCHEMA_VERSION = 1

#: Inline script in every HTML page: once the page has loaded, marks <body> with
#: data-images-ok="yes" when every <img> decoded (complete, naturalWidth > 0), else "no".
#: It only reads the page; the headless-browser test looks for the marker.
IMAGE_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.setAttribute('data-images-ok', ok ? 'yes' : 'no');
  document.body.setAttribute('data-images-count', String(imgs.length));
});
</script>"""

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{padding:.8em 1em;border-radius:6px;margin:1em 0}
.holds{background:#e6f4ea;border:1px solid #8c8}.fails{background:#fdecea;border:1px solid #d88}
.error{background:#fff4e5;border:1px solid #e0a040}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f4f4f4}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}figure{margin:1em 0}
figcaption{font-size:.85em;color:#666}code,pre{background:#f6f6f6;font-size:.9em}
pre{padding:.6em;overflow-x:auto}"""


def to_jsonable(obj):
    """numpy scalars/arrays to Python, non-finite floats to None, Paths to str, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, data) -> None:
    """Write ``data`` as strict JSON (no NaN/Infinity), atomically."""
    text = json.dumps(to_jsonable(data), indent=1, allow_nan=False)
    _atomic_write(Path(path), text.encode())


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "n/a"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f"{f:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def final_tables(runs: list[dict]) -> list[tuple[list[str], list[list[str]]]]:
    """Per variant, mean ± std over seeds of every numeric entry of ``final``; variants whose
    ``final`` dicts have the same keys share a table (so each table has no empty columns)."""
    variants: dict[str, list[dict]] = {}
    for r in runs:
        variants.setdefault(str(r["variant"]), []).append(r.get("final") or {})
    groups: dict[tuple, list[str]] = {}
    for variant, finals in variants.items():
        keys = []
        for f in finals:
            for k, v in f.items():
                if k not in keys and isinstance(v, (int, float, np.number)):
                    keys.append(k)
        groups.setdefault(tuple(keys), []).append(variant)
    tables = []
    for keys, names in groups.items():
        rows = []
        for variant in names:
            finals = variants[variant]
            row = [variant, str(len(finals))]
            for k in keys:
                vals = [f.get(k) for f in finals if f.get(k) is not None]
                if vals and all(isinstance(v, (bool, np.bool_)) for v in vals):
                    row.append(f"{sum(bool(v) for v in vals)}/{len(vals)}")
                    continue
                vals = [float(v) for v in vals if isinstance(v, (int, float, np.number))]
                st = summarise(vals)
                if not vals:
                    row.append("n/a")
                elif st["n"] > 1 and math.isfinite(st["std"]):
                    row.append(f"{_fmt(st['mean'])} ± {_fmt(st['std'])}")
                else:
                    row.append(_fmt(st["mean"]))
            rows.append(row)
        tables.append((["variant", "seeds", *keys], rows))
    return tables


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [lambda s: str(s).replace("|", "\\|")][0]
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


def _effect_rows(effect) -> list[list[str]]:
    if isinstance(effect, dict):
        return [[str(k), _fmt(v)] for k, v in effect.items()]
    return [["effect", _fmt(effect)]]


def _settings_rows(settings: dict) -> list[list[str]]:
    return [[str(k), _fmt(v) if not isinstance(v, str) else v] for k, v in settings.items()]


def save_figures(figures: dict, out_dir: Path, dpi: int = 90) -> list[str]:
    """Save each Figure as a PNG in ``out_dir``; returns the file names."""
    names = []
    for name, fig in figures.items():
        fname = name if name.lower().endswith(".png") else f"{name}.png"
        fig.savefig(out_dir / fname, dpi=dpi, format="png")
        names.append(fname)
    return names


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
            f"{IMAGE_CHECK_SCRIPT}\n</body></html>\n")


def write_claim(claim: Claim, ctx: LabContext, outcome: ClaimOutcome, elapsed: float) -> dict:
    """Write results.json, the PNGs, report.md and report.html into ``ctx.out_dir``.

    Returns:
        The results dict (as written to ``results.json``).
    """
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    pngs = save_figures(outcome.figures, out)
    data = {
        "schema": SCHEMA_VERSION,
        "claim": claim.name, "title": claim.title, "statement": claim.statement,
        "references": list(claim.references),
        "budget": ctx.budget, "seeds": list(ctx.seeds),
        "settings": outcome.settings,
        "verdict": outcome.verdict,
        "notes": list(outcome.notes),
        "figures": pngs,
        "runs": outcome.runs,
        "elapsed_s": elapsed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"deepgrad": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    write_json(out / "results.json", data)
    _write_reports(claim, data, out)
    return to_jsonable(data)


def _verdict_words(holds: bool) -> str:
    return "HOLDS here" if holds else "DOES NOT HOLD here"


def _write_reports(claim: Claim, data: dict, out: Path) -> None:
    v = data["verdict"]
    tables = final_tables(data["runs"])
    settings = _settings_rows(data["settings"])
    # ---- markdown
    md = [f"# {claim.name}: {claim.title}", "",
          f"> {claim.statement}", "",
          f"**Verdict: the claim {_verdict_words(v['holds'])}** "
          f"(budget `{data['budget']}`, seeds {data['seeds']}, {data['elapsed_s']:.1f} s).", "",
          v["detail"], "", "## Effect", "", _md_table(["measure", "value"],
                                                      _effect_rows(v["effect"])), ""]
    if data["notes"]:
        md += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    md += ["## Plots", ""] + [f"![{p}]({p})" for p in data["figures"]] + [""]
    md += ["## Final values (mean ± std over seeds)", ""]
    for header, rows in tables:
        md += [_md_table(header, rows), ""]
    md += ["## Settings", "", _md_table(["setting", "value"], settings), ""]
    if claim.references:
        md += ["## References", ""] + [f"- {r}" for r in claim.references] + [""]
    md += ["Every number here comes from `results.json` in this folder, written by "
           f"`deepgrad lab run {claim.name} --budget {data['budget']} "
           f"--seeds {len(data['seeds'])}` (deepgrad {data['versions']['deepgrad']})."]
    _atomic_write(out / "report.md", ("\n".join(md) + "\n").encode())
    # ---- html
    cls = "holds" if v["holds"] else "fails"
    imgs = []
    for p in data["figures"]:
        b64 = base64.b64encode((out / p).read_bytes()).decode("ascii")
        imgs.append(f"<figure><img alt=\"{html.escape(p)}\" src=\"data:image/png;base64,{b64}\">"
                    f"<figcaption>{html.escape(p)}</figcaption></figure>")
    e = html.escape
    body = [f"<h1>{e(claim.name)}: {e(claim.title)}</h1>",
            f"<blockquote>{e(claim.statement)}</blockquote>",
            f"<div class=\"verdict {cls}\"><strong>Verdict: the claim "
            f"{_verdict_words(v['holds'])}</strong> (budget <code>{e(data['budget'])}</code>, "
            f"seeds {e(str(data['seeds']))}, {data['elapsed_s']:.1f} s)<p>{e(v['detail'])}</p>"
            "</div>",
            "<h2>Effect</h2>", _html_table(["measure", "value"], _effect_rows(v["effect"]))]
    if data["notes"]:
        body += ["<h2>Notes</h2><ul>"] + [f"<li>{e(n)}</li>" for n in data["notes"]] + ["</ul>"]
    body += ["<h2>Plots</h2>"] + imgs
    body += ["<h2>Final values (mean ± std over seeds)</h2>"]
    body += [_html_table(header, rows) for header, rows in tables]
    body += ["<h2>Settings</h2>", _html_table(["setting", "value"], settings)]
    if claim.references:
        body += ["<h2>References</h2><ul>"] + [f"<li>{e(r)}</li>" for r in claim.references]
        body += ["</ul>"]
    body += [f"<p><small>Generated {e(data['created'])} by deepgrad "
             f"{e(data['versions']['deepgrad'])}; the data is in results.json.</small></p>"]
    _atomic_write(out / "report.html", _page(f"deepgrad lab: {claim.name}", "\n".join(body))
                  .encode())


def write_error(claim: Claim, ctx: LabContext, exc: BaseException, tb: str,
                elapsed: float) -> None:
    """A claim that raised: ``results.json`` with ``"error"`` and no verdict, plus reports."""
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    data = {"schema": SCHEMA_VERSION, "claim": claim.name, "title": claim.title,
            "statement": claim.statement, "budget": ctx.budget, "seeds": list(ctx.seeds),
            "error": f"{type(exc).__name__}: {exc}", "traceback": tb, "verdict": None,
            "elapsed_s": elapsed}
    write_json(out / "results.json", data)
    md = (f"# {claim.name}: {claim.title}\n\n**The experiment failed** after {elapsed:.1f} s: "
          f"`{data['error']}`; no verdict.\n\n```\n{tb}```\n")
    _atomic_write(out / "report.md", md.encode())
    body = (f"<h1>{html.escape(claim.name)}: {html.escape(claim.title)}</h1>"
            f"<div class=\"verdict error\"><strong>The experiment failed</strong>: "
            f"{html.escape(data['error'])}; no verdict.</div><pre>{html.escape(tb)}</pre>")
    _atomic_write(out / "report.html", _page(f"deepgrad lab: {claim.name}", body).encode())


def write_index(out_root: Path, results: list[dict], budget: str, seeds: list[int],
                elapsed: float, registry: dict) -> Path:
    """``index.html`` and ``index.md`` in ``out_root``: one row per claim, linking its report.

    Returns:
        The path of ``index.html``.
    """
    rows, md_rows = [], []
    e = html.escape
    for r in results:
        claim = registry[r["name"]]
        link = f"{r['name']}/report.html"
        if "error" in r:
            word, cls, detail = "FAILED", "error", r["error"]
        else:
            v = r["results"]["verdict"]
            word = "holds" if v["holds"] else "does not hold"
            cls, detail = ("holds" if v["holds"] else "fails"), v["detail"]
        rows.append(f"<tr class=\"{cls}\"><td><a href=\"{e(link)}\">{e(r['name'])}</a></td>"
                    f"<td>{e(claim.title)}</td><td><strong>{e(word)}</strong></td>"
                    f"<td>{r['elapsed_s']:.1f}</td><td>{e(detail)}</td></tr>")
        md_rows.append([f"[{r['name']}]({r['name']}/report.md)", claim.title, word,
                        f"{r['elapsed_s']:.1f}", detail])
    n_hold = sum(1 for r in results if "error" not in r and r["results"]["verdict"]["holds"])
    summary = (f"{n_hold} of {len(results)} claims hold at budget {budget} "
               f"(seeds {seeds}); {elapsed:.0f} s in all.")
    body = (f"<h1>deepgrad lab</h1><p>{e(summary)}</p><table><tr><th>claim</th><th>title</th>"
            "<th>verdict</th><th>seconds</th><th>why</th></tr>" + "\n".join(rows) + "</table>"
            "<p><small>Each report is self-contained; its data is in results.json.</small></p>")
    index = Path(out_root) / "index.html"
    _atomic_write(index, _page("deepgrad lab", body).encode())
    md = ["# deepgrad lab", "", summary, "",
          _md_table(["claim", "title", "verdict", "seconds", "why"], md_rows), ""]
    _atomic_write(Path(out_root) / "index.md", "\n".join(md).encode())
    write_json(Path(out_root) / "index.json",
               {"budget": budget, "seeds": seeds, "elapsed_s": elapsed,
                "claims": [{"name": r["name"], "error": r.get("error"),
                            "verdict": None if "error" in r else r["results"]["verdict"],
                            "elapsed_s": r["elapsed_s"]} for r in results]})
    return index
