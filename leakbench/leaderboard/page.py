"""The static leaderboard page: a sortable table and a leak-vs-utility plot, in one self-contained HTML file."""

from __future__ import annotations

import html
from pathlib import Path

from leakbench.leaderboard.schema import Entry, Leaderboard

COLUMNS: list[tuple[str, str]] = [
    ("model", "Model"),
    ("method", "Method"),
    ("subset", "Subset"),
    ("direct", "Direct leak ↓"),
    ("indirect", "Indirect leak ↓"),
    ("other_pii", "Other PII ↓"),
    ("retain_bpb", "Retain bits/byte ↓"),
    ("humaneval", "HumanEval+ pass@1 ↑"),
    ("mbpp", "MBPP+ pass@1 ↑"),
    ("reduction", "Direct-leak reduction ↑"),
    ("retained", "Retain utility kept ↑"),
]


def _row(e: Entry) -> dict[str, float | str | None]:
    def metric(key: str) -> float | None:
        m = e.leak_metrics.get(key)
        return m.value if m else None

    def pass1(dataset: str) -> float | None:
        return next((u.pass_at_1["plus"] for u in e.utility if u.dataset == dataset), None)

    return {
        "model": e.model.name,
        "method": e.method.name,
        "subset": e.data.subset,
        "direct": metric("leakbench_direct/direct_leak_rate"),
        "indirect": metric("leakbench_indirect/indirect_leak_rate"),
        "other_pii": metric("leakbench_indirect/other_pii_rate"),
        "retain_bpb": metric("leakbench_retain/bits_per_byte"),
        "humaneval": pass1("humaneval"),
        "mbpp": pass1("mbpp"),
        "reduction": e.ratios.direct_leak_reduction if e.ratios else None,
        "retained": e.ratios.retain_utility_retained if e.ratios else None,
    }


def _cell(key: str, value: float | str | None) -> str:
    if value is None:
        return '<td data-v="">–</td>'
    if isinstance(value, str):
        return f'<td data-v="{html.escape(value)}">{html.escape(value)}</td>'
    text = f"{value:.3f}" if key == "retain_bpb" else f"{100 * value:.1f}%"
    return f'<td data-v="{value:.6f}" class="num">{text}</td>'


def plot_svg(rows: list[dict[str, float | str | None]], width: int = 720, height: int = 380) -> str:
    """Direct leak rate against retain bits per byte: down and to the left is better."""
    points = [(r["retain_bpb"], r["direct"], str(r["method"] if r["method"] != "none" else r["model"])[:24])
              for r in rows if isinstance(r["retain_bpb"], float) and isinstance(r["direct"], float)]  # fmt: skip
    pad, right = 56, 150  # room for the labels on the right
    if not points:
        return f'<svg id="plot" width="{width}" height="{height}" role="img"><text x="20" y="40">no data</text></svg>'
    xs = [p[0] for p in points]
    lo, hi = min(xs), max(xs)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - 0.08 * span, hi + 0.08 * span

    def sx(x: float) -> float:
        return pad + (x - lo) / (hi - lo) * (width - pad - right)

    def sy(y: float) -> float:
        return height - pad - y * (height - 2 * pad)

    parts = [
        f'<svg id="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="direct leak rate against retain bits per byte">',
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
            f'<text x="{sx(x):.1f}" y="{height - pad + 18}" text-anchor="middle" font-size="11">{x:.2f}</text>'
        )
    parts.append(f'<text x="{(width - right + pad) / 2}" y="{height - 12}" text-anchor="middle" font-size="12">'
                 "retain bits per byte (lower: more utility kept)</text>")  # fmt: skip
    parts.append(f'<text x="16" y="{height / 2}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 16 {height / 2})">direct leak rate</text>')  # fmt: skip
    for x, y, label in points:
        parts.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="6" fill="#c0392b" opacity="0.8">'
                     f"<title>{html.escape(label)}</title></circle>")  # fmt: skip
        parts.append(f'<text x="{sx(x) + 8:.1f}" y="{sy(y) - 8:.1f}" font-size="11">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


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


def page_files(board: Leaderboard, path: Path) -> dict[Path, str]:
    """The page and its plot (`tradeoff.svg` beside it), as texts to write."""
    rows = [_row(e) for e in board.entries]
    head = "".join(f'<th data-key="{key}" title="click to sort">{html.escape(label)}</th>' for key, label in COLUMNS)
    body = "\n".join(
        '<tr data-entry="' + e.entry_id + '">' + "".join(_cell(key, r[key]) for key, _ in COLUMNS) + "</tr>"
        for e, r in zip(board.entries, rows, strict=True)
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LeakBench leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.7rem; text-align: left; }}
th {{ cursor: pointer; background: #f4f4f4; user-select: none; }}
th[data-dir="asc"]::after {{ content: " ▲"; }} th[data-dir="desc"]::after {{ content: " ▼"; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head>
<body>
<h1>LeakBench leaderboard</h1>
<p>Leakage of fictional personal data and secrets from code models, before and after unlearning, with code
utility. Schema {html.escape(board.schema_version)}; {len(rows)} entries. Click a column to sort.</p>
<table id="board"><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table>
<h2>Leak vs. utility</h2>
{plot_svg(rows)}
<script>{_SCRIPT}</script>
</body></html>
"""
    return {path: page, path.with_name("tradeoff.svg"): plot_svg(rows) + "\n"}
