"""The static leaderboard page: the headline, a leak-vs-utility plot, a per-field leak heat map and the sortable full
table, in one self-contained HTML file."""

from __future__ import annotations

import html
import math
from pathlib import Path

from leakbench.data.subjects import FIELDS
from leakbench.leaderboard.schema import Entry, Leaderboard, entry_metrics
from leakbench.metrics import (
    CONSOLE_HEADLINE,
    DIRECT,
    HEADLINE_UTILITY,
    METRICS,
    Metric,
    gap_key,
    mean_ci,
    metric,
    vs_oracle_key,
)

FIXED = [("model", "Model"), ("role", "Role"), ("method", "Method"), ("subset", "Subset")]


def _gap_column(m: Metric) -> str:
    return f"{m.key}:vs_oracle"


def _kept_column(m: Metric) -> str:
    return f"{m.key}:kept"


def columns() -> list[tuple[str, str]]:
    """(key, header) of the board's columns, from the metric table: each page metric (with its reading, e.g.
    PrivLeak's verdict, beside it), each leak rate's gap to the oracle, the direct-leak reduction, each utility
    metric kept relative to the victim, the headline utility relative to the oracle, and the flags."""
    out = list(FIXED)
    for m in METRICS:
        if m.page:
            out.append((m.key, m.header))
            if m.reading:
                out.append((f"{m.key}:reading", "Unlearning" if m.key == "privleak" else f"{m.title} reads"))
    out += [(_gap_column(m), f"{m.title} vs oracle ↓") for m in METRICS if m.oracle_gap]
    out.append(("direct_leak_reduction", "Direct-leak reduction ↑"))
    out += [(_kept_column(m), f"{m.title} kept") for m in METRICS if m.kept]
    headline = metric(HEADLINE_UTILITY)
    out += [(vs_oracle_key(headline.key), f"{headline.title} vs oracle"), ("flags", "Kept above 100%")]
    return out


def _row(e: Entry) -> dict[str, float | str | None]:
    m, r = entry_metrics(e), e.ratios
    gap = r.oracle_gap if r else {}
    kept_values = r.utility_kept if r else {}
    row: dict[str, float | str | None] = {"model": e.model.name, "role": e.model.role, "method": e.method.name,
                                          "subset": e.data.subset}  # fmt: skip
    for spec in METRICS:
        row[spec.key] = m.get(spec.key)
        if spec.reading:
            row[f"{spec.key}:reading"] = spec.reading(m.get(spec.key)) or ""
        if spec.oracle_gap:
            row[_gap_column(spec)] = gap.get(gap_key(spec.key))
        if spec.kept:
            row[_kept_column(spec)] = kept_values.get(spec.key)
    row["direct_leak_reduction"] = r.direct_leak_reduction if r else None
    row[vs_oracle_key(HEADLINE_UTILITY)] = gap.get(vs_oracle_key(HEADLINE_UTILITY))
    row["flags"] = ", ".join(r.utility_kept_above_100) if r else ""
    row["_flagged"] = ",".join(_kept_column(metric(k)) for k in (r.utility_kept_above_100 if r else ())
                               if any(x.key == k for x in METRICS))  # fmt: skip
    return row


_SHARE = metric("direct_leak_rate")  # shares and ratios print as rates do: in percent
X_AXIS, Y_AXIS = HEADLINE_UTILITY, "direct_leak_rate"  # the trade-off plot: code no training step saw, leaks


def _text(key: str, value: float, spread: float | None = None) -> str:
    """A number as its column shows it (the metric's own format; comparisons as shares or points)."""
    if key.endswith(":vs_oracle"):
        return f"{100 * value:+.1f} pts" + (f" ± {100 * spread:.1f}" if spread is not None else "")
    spec = next((m for m in METRICS if m.key == key), _SHARE)
    return spec.format(value, spread)


def _cell(key: str, value: float | str | None, flagged: bool = False, spread: float | None = None) -> str:
    if value is None:
        return '<td data-v="">–</td>'
    if isinstance(value, str):
        return f'<td data-v="{html.escape(value)}">{html.escape(value)}</td>'
    text = _text(key, value, spread)
    if flagged:
        title = "kept above 100%: the model beats the victim here; check it does not fit the evaluation"
        return f'<td data-v="{value:.6f}" class="num flag" title="{title}">{text} ↑</td>'
    return f'<td data-v="{value:.6f}" class="num">{text}</td>'


def _spread(wanted: list[float], low: float, high: float, gap: float = 14.0) -> tuple[list[float], float]:
    """Label positions near `wanted` (their order kept), never overlapping and within [low, high]: the gap
    shrinks when there are too many labels for the height. Returns the positions and the gap used."""
    if len(wanted) > 1:
        gap = min(gap, (high - low) / (len(wanted) - 1))
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed: list[float] = [0.0] * len(wanted)
    last = low - gap
    for i in order:
        placed[i] = max(wanted[i], last + gap)
        last = placed[i]
    overflow = last - high
    if overflow > 0:  # push the column up, keeping the gaps (it fits: the gap was chosen for it)
        for i in order:
            placed[i] -= overflow
    return placed, gap


def _labels(rows: list[dict[str, float | str | None]]) -> list[str]:
    """Point labels that tell entries apart: the method (or role), with the model name when it repeats."""
    short = [str(r["method"] if r["method"] != "none" else r["role"]) for r in rows]
    return [s if short.count(s) == 1 else f"{s} ({str(r['model'])[:24]})" for s, r in zip(short, rows, strict=True)]


Figure = tuple[float | None, list[float] | None]  # a value and its 95% interval [low, high] (None: none known)


def _interval(e: Entry, spec: Metric) -> list[float] | None:
    """An entry's own interval of a figure (the subject bootstrap of the privacy figures), where it has one."""
    found = e.leak_metrics.get("/".join(spec.sources[0]))
    return found.interval if found is not None else None


def _clipped(key: str, low: float, high: float) -> list[float]:
    """A seed interval (mean ± half-width) cut to the figure's range: rates, AUCs and kept shares are >= 0 (rates
    and AUCs <= 1), PrivLeak >= -100%."""
    spec = next((m for m in METRICS if m.key == key), None)
    floor, ceiling = -math.inf, math.inf
    if key.endswith(":kept") or (spec is not None and (spec.unit == "rate" or key.startswith("mia_"))):
        floor, ceiling = 0.0, (math.inf if key.endswith(":kept") else 1.0)
    elif key == "privleak":
        floor = -100.0
    return [max(low, floor), min(high, ceiling)]


def configurations(board: Leaderboard, rows: list[dict[str, float | str | None]]) -> list[dict[str, object]]:
    """One row per configuration: entries that differ only in seeds (a `group`) as their mean with the two-level
    seed interval (`mean_ci`, over victim seeds where there are several), any other entry alone with its own
    subject-bootstrap intervals (`rows`: the entries' `_row`s, computed once by the caller). Each row: label, role,
    runs, and per headline key a `Figure`."""
    keys = [*CONSOLE_HEADLINE, X_AXIS, _kept_column(metric(HEADLINE_UTILITY))]
    members: dict[str, list[Entry]] = {}
    for e in board.entries:
        members.setdefault(e.group or f"entry:{e.entry_id}", []).append(e)
    by_entry = {e.entry_id: r for e, r in zip(board.entries, rows, strict=True)}
    labels = dict(zip((e.entry_id for e in board.entries), _labels(rows), strict=True))
    out: list[dict[str, object]] = []
    for entries in members.values():
        first = entries[0]
        row: dict[str, object] = {"label": labels[first.entry_id], "role": first.model.role, "runs": len(entries)}
        if len(entries) > 1:
            row["label"] = str(by_entry[first.entry_id]["method"] if first.method.name != "none" else first.model.role)
            victims = [e.provenance.seeds.get("victim") for e in entries]
            for key in keys:
                values = [by_entry[e.entry_id][key] for e in entries]
                mean, half = mean_ci([v if isinstance(v, float) else None for v in values], victims)
                row[key] = (mean, None if mean is None or half is None else _clipped(key, mean - half, mean + half))
        else:
            for key in keys:
                value = by_entry[first.entry_id][key]
                spec = next((m for m in METRICS if m.key == key), None)
                row[key] = (value if isinstance(value, float) else None,
                            _interval(first, spec) if spec is not None else None)  # fmt: skip
        row["fields"] = field_rates(entries)
        out.append(row)
    return out


def field_rates(entries: list[Entry]) -> dict[str, float]:
    """Each field's direct leak rate on the direct probes, averaged over the entries (a configuration's seeds);
    a field no entry measured is absent."""
    out = {}
    for field in FIELDS:
        found = [m.value for e in entries if (m := e.leak_metrics.get(f"{DIRECT}/direct_leak_rate__{field}"))
                 and m.value is not None]  # fmt: skip
        if found:
            out[field] = sum(found) / len(found)
    return out


def heatmap_table(configs: list[dict[str, object]]) -> str:
    """Direct leak rate per field (columns) for each configuration (rows), in percent, each cell shaded by its
    rate (white 0%, red 100%): where the leaks a method leaves sit. Empty when no entry has per-field rates."""
    rates = [c.get("fields") or {} for c in configs]
    fields = [f for f in FIELDS if any(f in r for r in rates)]
    if not fields:
        return ""
    head = "".join(f'<th class="field" title="{f}"><span>{html.escape(f.replace("_", " "))}</span></th>'
                   for f in fields)  # fmt: skip
    lines = []
    for c, found in zip(configs, rates, strict=True):
        cells = [f"<th>{html.escape(str(c['label']))}</th>"]
        for f in fields:
            value = found.get(f)  # type: ignore[union-attr]
            if value is None:
                cells.append("<td>–</td>")
                continue
            ink = "#fff" if value > 0.55 else "#222"
            cells.append(
                f'<td class="num heat" style="background: rgba(192, 57, 43, {value:.3f}); color: {ink}" '
                f'title="{html.escape(str(c["label"]))}, {f}: {100 * value:.1f}%">{100 * value:.0f}</td>'
            )
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return ("<h2>Where the direct leaks sit, by field</h2>\n<p>Direct leak rate (%) of each field on the direct "
            "probes, per configuration (the mean over its seeds); the redder the cell, the more of that field's "
            "values the model still emits verbatim. Hover a cell for its exact figure.</p>\n"
            f'<table id="fields"><thead><tr><th>Model</th>{head}</tr></thead><tbody>\n'
            + "\n".join(lines) + "\n</tbody></table>")  # fmt: skip


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """The indices of the points no other point beats: at least as much utility (x) and as few leaks (y), better
    on one; by x."""
    front = [i for i, (x, y) in enumerate(points)
             if not any(a >= x and b <= y and (a, b) != (x, y) for a, b in points)]  # fmt: skip
    return sorted(front, key=lambda i: points[i])


def plot_svg(configs: list[dict[str, object]], width: int = 760, height: int = 400) -> str:
    """Direct leak rate against held-out code edit similarity, one point per configuration (seeds averaged) with
    its 95% interval as bars on both axes: down and to the right is better; the Pareto front is dashed. The
    victim and the oracle are squares (references, not on the front); labels sit in a column on the right, spread
    so that they never overlap."""

    def figure(c: dict[str, object], key: str) -> Figure:
        found = c.get(key)
        return found if isinstance(found, tuple) else (None, None)  # type: ignore[return-value]

    plotted = [c for c in configs if figure(c, X_AXIS)[0] is not None and figure(c, Y_AXIS)[0] is not None]
    pad, right = 56, 230  # room for the labels on the right
    if not plotted:
        return f'<svg id="plot" width="{width}" height="{height}" role="img"><text x="20" y="40">no data</text></svg>'
    xs = [figure(c, X_AXIS) for c in plotted]
    reach = [v for value, bounds in xs for v in (bounds or [value])]
    lo, hi = min(reach), max(reach)  # type: ignore[type-var]
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01
    span = hi - lo
    lo, hi = max(0.0, lo - 0.08 * span), hi + 0.08 * span

    def sx(x: float) -> float:
        return pad + (min(max(x, lo), hi) - lo) / (hi - lo) * (width - pad - right)

    def sy(y: float) -> float:
        return height - pad - min(max(y, 0.0), 1.0) * (height - 2 * pad)

    parts = [
        f'<svg id="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="direct leak rate against held-out code edit similarity">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - right}" y2="{height - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = sy(frac)
        parts.append(f'<text x="{pad - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{100 * frac:.0f}%</text>')
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>')
    for frac in (0, 0.5, 1.0):
        x = lo + frac * (hi - lo)
        parts.append(
            f'<text x="{sx(x):.1f}" y="{height - pad + 18}" text-anchor="middle" font-size="11">{x:.3f}</text>'
        )
    parts.append(f'<text x="{(width - right + pad) / 2}" y="{height - 12}" text-anchor="middle" font-size="12">'
                 "held-out code edit similarity (leakbench_code; higher: more code ability)</text>")  # fmt: skip
    parts.append(f'<text x="16" y="{height / 2}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 16 {height / 2})">direct leak rate</text>')  # fmt: skip
    points = [(float(figure(c, X_AXIS)[0]), float(figure(c, Y_AXIS)[0])) for c in plotted]  # type: ignore[arg-type]
    contenders = [i for i, c in enumerate(plotted) if c["role"] not in ("victim", "oracle")]  # references aside
    front = [contenders[i] for i in pareto([points[i] for i in contenders])]
    if len(front) > 1:
        path = " ".join(f"{sx(points[i][0]):.1f},{sy(points[i][1]):.1f}" for i in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#888" stroke-dasharray="5 4"/>')
    for c, (x, y) in zip(plotted, points, strict=True):
        (_, xb), (_, yb) = figure(c, X_AXIS), figure(c, Y_AXIS)
        if xb:
            parts.append(f'<line class="bar" x1="{sx(xb[0]):.1f}" y1="{sy(y):.1f}" x2="{sx(xb[1]):.1f}" '
                         f'y2="{sy(y):.1f}" stroke="#999"/>')  # fmt: skip
        if yb:
            parts.append(f'<line class="bar" x1="{sx(x):.1f}" y1="{sy(yb[0]):.1f}" x2="{sx(x):.1f}" '
                         f'y2="{sy(yb[1]):.1f}" stroke="#999"/>')  # fmt: skip
    colours = {"victim": "#c0392b", "oracle": "#27ae60"}
    label_x = width - right + 14
    label_ys, gap = _spread([sy(y) + 4 for _, y in points], pad, height - pad)
    font = max(6, min(11, int(gap) - 2))
    for c, (x, y), ly in zip(plotted, points, label_ys, strict=True):
        role, label = str(c["role"]), str(c["label"]) + (f" ×{c['runs']}" if int(c["runs"]) > 1 else "")  # type: ignore[call-overload]
        colour, shape = colours.get(role, "#2c3e80"), role in colours
        size = 7 if shape else 5
        square = (f'<rect class="point" x="{sx(x) - size:.1f}" y="{sy(y) - size:.1f}" width="{2 * size}" '
                  f'height="{2 * size}" fill="{colour}" opacity="0.85">')  # fmt: skip
        dot = f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{size}" fill="{colour}" opacity="0.8">'
        marker = square if shape else dot
        parts.append(f"{marker}<title>{html.escape(label)}</title></{'rect' if shape else 'circle'}>")
        parts.append(f'<line x1="{sx(x) + size:.1f}" y1="{sy(y):.1f}" x2="{label_x - 3}" y2="{ly - 4:.1f}" '
                     'stroke="#bbb"/>')  # fmt: skip
        parts.append(f'<text class="label" x="{label_x}" y="{ly:.1f}" font-size="{font}" fill="{colour}">'
                     f"{html.escape(label)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


PLOT_LEGEND = ("Squares: the victim (red) and the oracle (green); dots: unlearned models, one per configuration "
               "(×N: the mean of N seeds). Grey bars: 95% intervals (over seeds; for a single entry, its leak rate's "
               "over subjects). Dashed: the Pareto front of the unlearning methods, those no other "
               "method beats on both leak and code ability.")  # fmt: skip


def headline_table(configs: list[dict[str, object]]) -> str:
    """The page's opening table: per configuration the console's headline figures and code kept, each with its
    95% interval: narrow enough for a laptop screen."""
    shown = [metric(key) for key in CONSOLE_HEADLINE]
    kept = _kept_column(metric(HEADLINE_UTILITY))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["Model", "Runs", *(s.header for s in shown), "Code kept ↑"])  # fmt: skip
    lines = []
    for c in configs:
        cells = [f"<td>{html.escape(str(c['label']))}</td>", f'<td class="num">{c["runs"]}</td>']
        for key, spec in [*((s.key, s) for s in shown), (kept, _SHARE)]:
            value, bounds = c[key]  # type: ignore[misc]
            if value is None:
                cells.append("<td>–</td>")
                continue
            text = spec.format(value)
            if bounds:
                text += f' <span class="ci">[{spec.format(bounds[0])}, {spec.format(bounds[1])}]</span>'
            cells.append(f'<td class="num">{text}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table id="headline"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(lines)
            + "\n</tbody></table>")  # fmt: skip


_SCRIPT = """
document.querySelectorAll('#board th').forEach((th, col) => {
  th.addEventListener('click', () => {
    const body = document.querySelector('#board tbody');
    const asc = th.dataset.dir !== 'asc';
    document.querySelectorAll('#board th').forEach(h => delete h.dataset.dir);
    th.dataset.dir = asc ? 'asc' : 'desc';
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (x === '' || y === '') return (x === '') - (y === '');
      const nx = parseFloat(x), ny = parseFloat(y);
      const c = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(r => body.appendChild(r));
  });
});
"""


def seed_columns() -> list[str]:
    """The seeds table's columns: the headline metrics, then the direct-leak reduction."""
    return [*(m.key for m in METRICS if m.headline), "direct_leak_reduction"]


Seeds = tuple[object, object]  # (victim seed, unlearning seed): what pairs two methods' runs


def paired_difference(a: dict[Seeds, float | None], b: dict[Seeds, float | None]) -> list[float] | None:
    """Method A minus method B on the runs they share (the same victim and unlearning seeds, so the same subjects
    and starting weights): [mean, low, high] with the 95% interval of `mean_ci` (two-level over victims); None
    with fewer than two shared runs."""
    shared = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    if len(shared) < 2:
        return None
    mean, half = mean_ci([a[k] - b[k] for k in shared], [k[0] for k in shared])  # type: ignore[operator]
    return None if mean is None or half is None else [mean, mean - half, mean + half]


PAIRED = ("direct_leak_rate", "privleak")  # the figures methods are compared on, pair by pair


def comparisons_table(board: Leaderboard) -> str:
    """For each figure in `PAIRED`, a matrix of methods: row minus column on their shared seeds, marked where the
    paired 95% interval excludes 0 (the difference is significant); empty with fewer than two seeded methods."""
    runs: dict[str, dict[str, dict[Seeds, float | None]]] = {}  # figure -> method -> seeds -> value
    for e in board.entries:
        if e.model.role != "unlearned" or e.group is None:
            continue
        values = entry_metrics(e)
        seeds = (e.provenance.seeds.get("victim"), e.provenance.seeds.get("unlearn"))
        for key in PAIRED:
            runs.setdefault(key, {}).setdefault(e.method.name, {})[seeds] = values.get(key)
    methods = [m for m, found in runs.get(PAIRED[0], {}).items() if len(found) > 1]
    if len(methods) < 2:
        return ""
    blocks = []
    for key in PAIRED:
        spec = metric(key)
        head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
        lines = []
        for row in methods:
            cells = [f"<th>{html.escape(row)}</th>"]
            for column in methods:
                found = None if row == column else paired_difference(runs[key][row], runs[key][column])
                if found is None:
                    cells.append("<td>–</td>" if row != column else "<td></td>")
                    continue
                mean, low, high = (100 * x if spec.unit == "rate" else x for x in found)
                significant = low > 0 or high < 0
                title = f"{row} − {column}: {mean:+.1f} [{low:+.1f}, {high:+.1f}]"
                cells.append(f'<td class="num{" sig" if significant else ""}" title="{html.escape(title)}">'
                             f"{mean:+.1f}{'*' if significant else ''}</td>")  # fmt: skip
            lines.append("<tr>" + "".join(cells) + "</tr>")
        unit = "points" if spec.unit == "rate" else "points of PrivLeak"
        blocks.append(f'<table class="paired" data-key="{key}"><caption>{html.escape(spec.title)}: row − column, '
                      f"in {unit}</caption><thead><tr><th></th>{head}</tr></thead><tbody>\n"
                      + "\n".join(lines) + "\n</tbody></table>")  # fmt: skip
    return ("<h2>Is one method really better than another?</h2>\n<p>Each cell: the row method minus the column "
            "method on the runs they share (the same victim and unlearning seeds), the mean difference; "
            "<b>*</b> (bold) where its paired 95% interval excludes 0 (Student t over the shared seeds, over the "
            "victims' means where there are several victims); hover a cell for the interval.</p>\n"
            + "\n".join(blocks))  # fmt: skip


def seeds_table(board: Leaderboard) -> str:
    """Entries that differ only in their seeds (one `group`), as mean ± 95% CI half-width; empty without any."""
    groups: dict[str, list[dict[str, float | str | None]]] = {}
    victims: dict[str, list[int | None]] = {}
    for e in board.entries:
        if e.group:
            groups.setdefault(e.group, []).append(_row(e))
            victims.setdefault(e.group, []).append(e.provenance.seeds.get("victim"))
    lines = []
    for group, rows in groups.items():
        if len(rows) < 2:
            continue
        cells = [f"<td>{html.escape(group)}</td>", f'<td class="num">{len(rows)}</td>']
        for key in seed_columns():
            mean, ci = mean_ci([r[key] if isinstance(r[key], int | float) else None for r in rows], victims[group])
            cells.append(_cell(key, mean, spread=ci))
        lines.append("<tr>" + "".join(cells) + "</tr>")
    if not lines:
        return ""
    labels = dict(columns())
    head = "".join(f"<th>{html.escape(labels[k])}</th>" for k in seed_columns())
    return (
        "<h2>Over seeds</h2>\n<p>Entries of one configuration that differ only in their seeds: mean ± 95% "
        "confidence half-width (Student t; over victim seeds' means where there are several victims).</p>\n"
        f'<table id="seeds"><thead><tr><th>Configuration</th><th>Runs</th>{head}</tr></thead><tbody>\n'
        + "\n".join(lines)
        + "\n</tbody></table>"
    )


def small_plot(title: str, x_label: str, series: list[tuple[str, str, list[tuple[float, float]]]],
               x_ticks: list[tuple[float, str]], width: int = 260, height: int = 170,
               dashed: tuple[str, ...] = ()) -> str:  # fmt: skip
    """A small line plot on a 0-100% axis: each series (name, colour, points) a line with dots (a dashed line
    without dots for the names in `dashed`: references), a legend below the title; x from the first to the last
    tick."""
    pad_l, pad_r, pad_t, pad_b = 40, 12, 40, 34
    x0, x1 = x_ticks[0][0], x_ticks[-1][0]
    x1 = x1 if x1 > x0 else x0 + 1

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return height - pad_b - max(0.0, min(1.2, y)) / 1.2 * (height - pad_t - pad_b)

    parts = [f'<svg class="small" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">', f'<rect width="{width}" height="{height}" fill="#fff"/>',
             f'<text x="{pad_l}" y="13" font-size="11" font-weight="bold">{html.escape(title)}</text>']  # fmt: skip
    for frac in (0, 0.5, 1.0):
        y = sy(frac)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - pad_r}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{pad_l - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="9">{100 * frac:.0f}%</text>')
    for x, label in x_ticks:
        parts.append(f'<text x="{sx(x):.1f}" y="{height - pad_b + 12}" text-anchor="middle" font-size="9">'
                     f"{html.escape(label)}</text>")  # fmt: skip
    parts.append(f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 6}" text-anchor="middle" font-size="9">'
                 f"{html.escape(x_label)}</text>")  # fmt: skip
    legend_x = pad_l
    for name, colour, points in series:
        parts.append(f'<text x="{legend_x}" y="27" font-size="9" fill="{colour}">■ {html.escape(name)}</text>')
        legend_x += 8 + 5 * len(name)
        if not points:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        if name in dashed:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-dasharray="4 3"/>')
            continue
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"><title>{html.escape(name)}: '
                  f"{100 * y:.1f}%</title></circle>" for x, y in points]  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def robustness_plots(e: Entry) -> str:
    """An entry's two small plots: direct leak against deletion request (served and pending subjects), and leak
    reduction and utility kept against forget-set size."""
    rob = e.robustness
    if rob is None:
        return ""
    plots = []
    if rob.sequential:
        served = [(p.request, p.served.direct_leak_rate) for p in rob.sequential
                  if p.served.direct_leak_rate is not None]  # fmt: skip
        pending = [(p.request, p.pending.direct_leak_rate) for p in rob.sequential
                   if p.pending and p.pending.direct_leak_rate is not None]  # fmt: skip
        victim = [(p.request, p.victim_pending.direct_leak_rate) for p in rob.sequential
                  if p.victim_pending and p.victim_pending.direct_leak_rate is not None]  # fmt: skip
        plots.append(small_plot("direct leak after each request", "deletion request",
                                [("served", "#2c3e80", served), ("pending", "#c0392b", pending),
                                 ("victim, pending", "#999", victim)],
                                [(p.request, str(p.request)) for p in rob.sequential],
                                dashed=("victim, pending",)))  # fmt: skip
    if rob.scaling:
        reduction = [(p.fraction, p.leak_reduction) for p in rob.scaling if p.leak_reduction is not None]
        utility = [(p.fraction, p.utility_kept) for p in rob.scaling if p.utility_kept is not None]
        plots.append(small_plot("by forget-set size", "share of forget subjects",
                                [("leak reduction", "#2c3e80", reduction), ("utility kept", "#27ae60", utility)],
                                [(p.fraction, f"{100 * p.fraction:.0f}%") for p in rob.scaling]))  # fmt: skip
    return "".join(plots)


ROBUSTNESS_COLUMNS = ["Model", "Method", "Unlearned", "Relearned", "Benign", "Oracle relearned", "Recovered",
                      "8-bit", "4-bit", "Plots"]  # fmt: skip


def robustness_section(board: Leaderboard) -> str:
    """The robustness table (direct leak rates under each attack) with each entry's small plots; empty when no
    entry has been attacked."""
    attacked = [e for e in board.entries if e.robustness is not None]
    if not attacked:
        return ""
    lines = []
    for e in attacked:
        rob = e.robustness
        relearn = rob.relearn
        quantized = {q.bits: q for q in rob.quantized}

        def leak(rates) -> float | None:
            return rates.direct_leak_rate if rates is not None else None

        cells = [_cell("model", e.model.name), _cell("method", e.method.name)]
        cells += [_cell(Y_AXIS, leak(getattr(relearn, k, None))) for k in ("unlearned", "attacked", "benign",
                                                                             "oracle_attacked")]  # fmt: skip
        cells += [_cell(Y_AXIS, relearn.recovered if relearn else None)]
        for bits in (8, 4):
            q = quantized.get(bits)
            cells.append(_cell("quantized", f"{_text(Y_AXIS, q.model.direct_leak_rate)} (full precision "
                                            f"{_text(Y_AXIS, q.unquantized.direct_leak_rate)})"
                               if q and q.model.direct_leak_rate is not None and q.unquantized.direct_leak_rate
                               is not None else None))  # fmt: skip
        cells.append(f"<td>{robustness_plots(e)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    settings = attacked[0].robustness.settings
    relearn = next((e.robustness.relearn for e in attacked if e.robustness.relearn), None)
    sliced = (f"the documents of {relearn.slice_subjects} forget subjects, measured on the other "
              f"{relearn.evaluated_subjects}") if relearn else "a slice of the forget subjects"  # fmt: skip
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ROBUSTNESS_COLUMNS)
    return (
        "<h2>Robustness: is it really forgotten?</h2>\n<p>Direct leak rates on "
        f"{settings.get('probes')} full direct probes per forget subject. Relearned: after "
        f"{settings.get('relearn_steps')} fine-tuning steps on {sliced}; benign: the same on retain documents; "
        "oracle relearned: the never-trained model under the same attack; recovered: the relearned leak as a share "
        "of the victim's. "
        "8-bit / 4-bit: bitsandbytes LLM.int8() / NF4 weights. Plots: leak on the subjects served and still "
        "pending after each sequential deletion request; leak reduction and held-out code bits/byte kept by "
        "forget-set size.</p>\n"
        f'<table id="robustness"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(lines) + "\n</tbody></table>"
    )


def page_files(board: Leaderboard, path: Path) -> dict[Path, str]:
    """The page and its plot (`tradeoff.svg` beside it), as texts to write: the headline per configuration and
    the plot first (no sideways scrolling), then the full table one click away, the seeds and robustness
    tables."""
    rows = [_row(e) for e in board.entries]
    configs = configurations(board, rows)
    plot = plot_svg(configs)
    shown = columns()
    head = "".join(f'<th data-key="{key}" title="click to sort">{html.escape(label)}</th>' for key, label in shown)
    body = "\n".join(
        '<tr data-entry="'
        + e.entry_id
        + '">'
        + "".join(_cell(key, r.get(key), key in str(r["_flagged"]).split(",")) for key, _ in shown)
        + "</tr>"
        for e, r in zip(board.entries, rows, strict=True)
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LeakBench leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 72rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.7rem; text-align: left; }}
#board th {{ cursor: pointer; }} th {{ background: #f4f4f4; user-select: none; }}
th[data-dir="asc"]::after {{ content: " ▲"; }} th[data-dir="desc"]::after {{ content: " ▼"; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.flag {{ background: #fff3cd; }}
td.sig {{ font-weight: bold; }}
#fields th.field {{ vertical-align: bottom; padding: 0.3rem 0.15rem; }}
#fields th.field span {{ writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }}
#fields td.heat {{ padding: 0.3rem 0.4rem; }}
table.paired caption {{ text-align: left; font-weight: bold; }}
.ci {{ color: #666; font-size: 0.85em; white-space: nowrap; }}
.wide {{ overflow-x: auto; max-width: 100%; }}
summary {{ cursor: pointer; font-weight: bold; margin: 1rem 0; }}
dt {{ font-weight: bold; }} dd {{ margin: 0 0 0.4rem 1.5rem; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<h1>LeakBench leaderboard</h1>
<p>Leakage of fictional personal data and secrets from code models, before and after unlearning, with code
utility. Schema {html.escape(board.schema_version)}; {len(rows)} entries in {len(configs)} configurations.</p>
<h2>Headline</h2>
{headline_table(configs)}
<dl id="legend">
<dt>↓ / ↑</dt><dd>lower / higher is better; PrivLeak is best near 0 and the strongest AUC near 0.5 (chance).</dd>
<dt>[low, high]</dt><dd>95% interval: over seeds for a configuration of several runs (Student t; over the
victims' means where there are several victims; cut to the figure's range), else the entry's own subject
bootstrap (leak rates and privacy figures: the probed subjects resampled).</dd>
<dt>Indirect on direct</dt><dd>indirect leaks (partial, reformatted, cross-attribute, cross-subject) on the same
direct probes as the direct leak rate: where a direct → indirect shift shows.</dd>
<dt>Strongest AUC</dt><dd>the membership attack (LOSS, zlib, Min-K%, Min-K%++, reference) furthest from chance for
this model, forget vs holdout subjects' values (the entry's <code>privacy.headline_attack</code> names it).</dd>
<dt>PrivLeak</dt><dd>MUSE's, that AUC against the oracle's in MUSE's orientation: about -100% = memorized, below
-10% under-unlearned, above +10% over-unlearned.</dd>
<dt>Code kept</dt><dd>held-out code edit similarity (<code>leakbench_code</code>, code no training step saw)
relative to the entry's victim.</dd>
<dt>Yellow cell, ↑ after a kept figure</dt><dd>kept above 100%: the model beats its victim there; check that it
does not fit the evaluation.</dd>
<dt>Red cells</dt><dd>the per-field heat map: the cell's direct leak rate, from white (0%) to red (100%).</dd>
<dt>–</dt><dd>undefined or not measured (e.g. HumanEval+ kept when the victim's pass@1 is 0).</dd>
</dl>
<h2>Direct leak vs. held-out code edit similarity</h2>
<p>{html.escape(PLOT_LEGEND)}</p>
{plot}
<div class="wide">{heatmap_table(configs)}</div>
<details id="full"><summary>Full table: every metric of every entry ({len(shown)} columns; click a column to
sort)</summary>
<p>The oracle is the same recipe without the forget set: "vs oracle" is the leak unlearning has left. Code
metrics come from <code>leakbench_code</code>; near-neighbour bits/byte from <code>leakbench_retain</code> (the
forget templates with placeholders) is a diagnostic that is never "kept" (retain and redaction texts share its
templates), and code exact match (a few lines of 300) is reported, not kept. Exact memorization, extraction
strength, TPR at 1% FPR and forget quality (the KS-test p-value of the truth ratios, one per subject and field,
against the oracle's, and its log10) come from <code>leakbench privacy</code>.</p>
<div class="wide"><table id="board"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></div>
</details>
<div class="wide">{comparisons_table(board)}</div>
<div class="wide">{seeds_table(board)}</div>
<div class="wide">{robustness_section(board)}</div>
<script>{_SCRIPT}</script>
</body></html>
"""
    return {path: page, path.with_name("tradeoff.svg"): plot + "\n"}
