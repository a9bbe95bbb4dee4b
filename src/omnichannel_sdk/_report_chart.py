"""An SVG chart of a service-level report: per channel, the share answered within target against
the goal. Plain SVG text (no plotting library, no fonts to fetch), readable in any browser."""

from __future__ import annotations

from html import escape

from ._service_levels import ServiceLevelReport, duration_label, target_label

__all__ = ["report_svg"]

_ROW = 44
_LEFT = 170
_BAR = 360


def report_svg(report: ServiceLevelReport) -> str:
    """The chart as an SVG document."""
    rows = report.channels
    height = 70 + _ROW * max(1, len(rows)) + 30
    width = _LEFT + _BAR + 340
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="16" y="28" font-size="16" font-weight="bold">Answered within target '
        f'(goal {report.goal:.0%})</text>',
        f'<text x="16" y="48" fill="#555">{escape(report.generated_at.strftime("%Y-%m-%d %H:%M UTC"))}'
        "</text>",
    ]
    goal_x = _LEFT + _BAR * report.goal
    top = 64
    if not rows:
        out.append(f'<text x="16" y="{top + 24}" fill="#555">No conversations in this period.</text>')
    for index, row in enumerate(rows):
        y = top + index * _ROW
        share = row.within_target
        out.append(f'<text x="16" y="{y + 20}">{escape(row.channel)} '
                   f'<tspan fill="#555">({escape(target_label(row.target))})</tspan></text>')
        out.append(f'<rect x="{_LEFT}" y="{y + 6}" width="{_BAR}" height="20" fill="#eceff3" rx="3"/>')
        if share is not None:
            colour = "#1f9d55" if share >= report.goal else "#d64545"
            out.append(f'<rect x="{_LEFT}" y="{y + 6}" width="{_BAR * share:.1f}" height="20" '
                       f'fill="{colour}" rx="3"><title>{share:.0%}</title></rect>')
            label = f"{share:.0%}"
        else:
            label = "no answers yet"
        detail = (f"{label} · first reply median {duration_label(row.first_response_median)}"
                  f" · {row.waiting_turns} waiting")
        out.append(f'<text x="{_LEFT + _BAR + 10}" y="{y + 21}">{escape(detail)}</text>')
    bottom = top + _ROW * max(1, len(rows))
    out.append(f'<line x1="{goal_x:.1f}" y1="{top}" x2="{goal_x:.1f}" y2="{bottom}" '
               'stroke="#333" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{goal_x - 14:.1f}" y="{bottom + 18}" fill="#333">goal</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
