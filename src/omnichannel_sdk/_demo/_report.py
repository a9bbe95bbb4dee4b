"""``/demo/report``: the service levels of what the demo stored (``hub.service_levels()``), as
the ``omnichannel report`` command shows them: a table per channel and per agent and the chart."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse

from .._report_chart import report_svg
from .._service_levels import duration_label, target_label
from ._present import channel_name
from ._state import demo_state

__all__ = ["report_page"]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


async def report_page(request: Request) -> HTMLResponse:
    """The service-level report page of the demo."""
    report = await demo_state(request).hub.service_levels()
    rows = "".join(
        f"<tr><td>{escape(channel_name(c.channel))}</td><td>{escape(target_label(c.target))}</td>"
        f"<td>{c.conversations}</td><td>{c.answered_turns}</td><td>{c.waiting_turns}</td>"
        f'<td class="{"ok" if (c.within_target or 0) >= report.goal else "low"}">'
        f"{_share(c.within_target)}</td><td>{duration_label(c.first_response_median)}</td>"
        f"<td>{duration_label(c.response_median)}</td><td>{c.bot_first_responses}</td></tr>"
        for c in report.channels) or '<tr><td colspan="9">No conversations yet.</td></tr>'
    agents = "".join(f"<tr><td>{escape(a.agent)}</td><td>{a.open_conversations}</td>"
                     f"<td>{a.replies}</td></tr>" for a in report.agents) \
        or '<tr><td colspan="3">No human replies yet.</td></tr>'
    body = (
        '<header><h1>Service levels</h1><a href="/demo/">← inbox</a></header><main>'
        f"<p>Goal: {report.goal:.0%} of customer turns answered by a person within the "
        "channel's target. Bot replies are counted apart.</p>"
        '<div class="scroll"><table id="channels"><thead><tr><th>Channel</th><th>Target</th>'
        "<th>Conversations</th><th>Answered</th><th>Waiting</th><th>Within target</th>"
        "<th>First response (median)</th><th>Response (median)</th><th>Bot first</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
        '<h2>Agents</h2><table id="agents"><thead><tr><th>Agent</th><th>Open conversations</th>'
        f"<th>Replies</th></tr></thead><tbody>{agents}</tbody></table>"
        f'<h2>Chart</h2><div class="scroll chart">{report_svg(report)}</div></main>')
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<title>Service levels · omnichannel demo</title>'
        '<link rel="icon" href="/demo/static/favicon.svg">'
        '<link rel="stylesheet" href="/demo/static/shop.css"><style>'
        "table{border-collapse:collapse;background:#fff;margin:8px 0}td,th{border:1px solid #cbd5e1;"
        "padding:4px 8px;text-align:left;font-size:13px}.ok{color:#166534;font-weight:600}"
        ".low{color:#991b1b;font-weight:600}.scroll{overflow-x:auto}main{max-width:none}"
        f"</style></head><body>{body}</body></html>")
