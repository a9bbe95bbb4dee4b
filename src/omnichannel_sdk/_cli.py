"""The ``omnichannel`` command line (SPEC §9)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ._errors import CliError, OmnichannelError

app = typer.Typer(help="omnichannel: every customer channel through one normalized model.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)



def main() -> None:
    """Entry point: typed errors and the user's mistakes become one red line and exit status 2."""
    if sys.argv[1:2] == ["simulate"] and ("--help" in sys.argv or "-h" in sys.argv):
        _describe_simulate_targets()
    try:
        app()
    except (OmnichannelError, CliError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] no such file: {exc.filename}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _describe_simulate_targets() -> None:
    """Name the targets in ``simulate --help`` (they depend on the installed plugins)."""
    try:
        from ._demo import demo_config
        from ._hub import Hub

        hub = Hub.from_config(demo_config("http://127.0.0.1:8000", Path(".omnichannel")))
        targets = sorted({*hub.adapters, *(a.name for a in hub.adapters.values())})
    except OmnichannelError:
        return
    for info in app.registered_commands:
        if info.callback is simulate:
            info.help = f"{simulate.__doc__}\n\nTargets: {', '.join(targets)}."


def _port_free(host: str, port: int) -> None:
    """Raise :class:`CliError` when ``host:port`` cannot be listened on (before any banner)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"port {port} on {host} is in use or not allowed ({exc.strerror}); "
                           "choose another with --port") from None


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", metavar="PORT")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its SQLite file.",
                                           metavar="DIR")] = Path(".omnichannel"),
    check: Annotated[bool, typer.Option(
        "--check", help="Run the demo's traffic once in process, print a summary, exit.")] = False,
) -> None:
    """Start a local gateway on SQLite and the in-memory bus, with simulated vendors."""
    from ._demo import build_demo, demo_config
    from ._hub import Hub

    # a wildcard interface is not an address: the demo's URLs (and its in-process vendors, whose
    # plain-http media the exact-origin rule admits on loopback only) use the loopback address
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 (a comparison, not a bind)
    public_url = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    hub = Hub.from_config(demo_config(public_url, data_dir))
    if check:
        asyncio.run(_demo_check(hub))
        return
    import uvicorn

    _port_free(host, port)
    console.print("[bold]omnichannel demo[/bold] (SQLite + in-memory bus)")
    console.print(f"  agent inbox:  {public_url}/demo/")
    if any(callable(getattr(a, "embed_snippet", None)) for a in hub.adapters.values()):
        console.print(f"  visitor page: {public_url}/demo/chat  (chat as a customer)")
    for key, adapter in hub.adapters.items():
        console.print(f"  webhook:      {public_url}/webhooks/{key}  ({adapter.name})")
        if adapter.asgi_app() is not None:
            console.print(f"  channel app:  {public_url}/channels/{key}/")
    console.print("Press Ctrl+C to stop.")
    # no access log (uvicorn checks for its handlers, not its level, before each line)
    uvicorn.run(build_demo(hub), host=host, port=port, log_level="warning", access_log=False)


async def _demo_check(hub: Any) -> None:
    import httpx

    from ._demo import build_demo, simulate_requests

    app_ = build_demo(hub)
    async with hub:
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url=hub.public_url) as client:
            hub.http = client  # the vendor stub is in process: route sends through ASGI
            for adapter in hub.adapters.values():
                adapter.context.http = client
            for key in hub.adapters:
                for request in simulate_requests(hub, key):
                    path = request.url[len(hub.public_url):]
                    response = await client.request(request.method, path,
                                                    headers=request.headers, content=request.body)
                    console.print(f"{key}: POST {path} -> {response.status_code}")
            for conversation in await hub.store.list_conversations():
                try:
                    sent = await asyncio.wait_for(hub.send(
                        conversation.id, text="Thanks, an agent is on it.", wait=True), 20)
                except (OmnichannelError, TimeoutError) as exc:
                    console.print(f"{conversation.channel_key}: reply refused: {exc}")
                    continue
                console.print(f"{conversation.channel_key}: reply {sent.id} {sent.status}")
            inbox = await client.get("/demo/")
            console.print(f"inbox page: {inbox.status_code}, "
                          f"{len(await hub.store.list_conversations())} conversations")


@app.command()
def simulate(
    target: Annotated[str, typer.Argument(
        help="An adapter name or a demo channel key (listed below).", metavar="TARGET")],
    url: Annotated[str, typer.Option(help="The running demo gateway.", metavar="URL")] =
        "http://127.0.0.1:8000",
    data_dir: Annotated[Path, typer.Option(help="The demo's data folder.", metavar="DIR")] =
        Path(".omnichannel"),
) -> None:
    """Post correctly signed sample vendor traffic to a running demo gateway."""
    import httpx

    from ._demo import demo_config, simulate_requests
    from ._hub import Hub

    hub = Hub.from_config(demo_config(url.rstrip("/"), data_dir))
    keys = [k for k, a in hub.adapters.items() if target in (k, a.name)]
    if not keys:
        raise typer.BadParameter(f"no demo channel or adapter {target!r}: "
                                 f"{', '.join(sorted(hub.adapters))}")

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for key in keys:
                for request in simulate_requests(hub, key):
                    path = request.url[len(hub.public_url):]
                    try:
                        response = await client.request(request.method, path,
                                                        headers=request.headers,
                                                        content=request.body)
                    except httpx.TransportError:
                        raise CliError(f"no demo gateway answers at {url}: start one with "
                                       "`omnichannel demo` (or pass --url)") from None
                    console.print(f"{key}: {request.method} {path} -> {response.status_code}")

    asyncio.run(run())


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The configuration file.",
                                         metavar="FILE")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(
        "--access-log", help="Log every request (query strings redacted); off by default.")] = False,
    log_format: Annotated[str | None, typer.Option(
        help="text or json (default: [omnichannel] log_format).", metavar="FORMAT")] = None,
) -> None:
    """Run the webhook gateway for real (uvicorn)."""
    import os

    import uvicorn

    from ._hub import Hub

    if not config.is_file():
        raise CliError(f"no such file: {config}")
    hub = Hub.from_config(config)  # fail fast, with the config error, before forking
    chosen = log_format or hub.settings.log_format
    if chosen not in ("text", "json"):
        raise CliError(f"--log-format {chosen}: choose text or json")
    _port_free(host, port)
    note = server_note()
    if note:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    os.environ["OMNICHANNEL_CONFIG"] = str(config.resolve())
    uvicorn.run("omnichannel_sdk._serve:app", host=host, port=port, workers=workers,
                **uvicorn_settings(access_log=access_log, log_format=chosen))


def server_note() -> str | None:
    """What ``omnichannel serve`` says at start when uvicorn will fall back to its pure-Python
    parts: h11 instead of httptools and asyncio's loop instead of uvloop cost ≈ 100 µs more
    server CPU per request (measured: 230 against 127 µs for the floor app of
    ``bench/serve.py``), two thirds of the requests a second."""
    from importlib.util import find_spec

    missing = [name for name in ("httptools", "uvloop")
               if find_spec(name) is None and not (name == "uvloop" and sys.platform == "win32")]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not installed: uvicorn uses its pure-Python HTTP parser "
            "and event loop (about half the requests a second); "
            "pip install 'omnichannel-sdk[serve]' for production")


def uvicorn_settings(*, access_log: bool = False, log_format: str = "text") -> dict[str, Any]:
    """The keyword arguments ``omnichannel serve`` gives ``uvicorn.run`` besides the app, host,
    port and workers (``bench/serve.py`` runs its floor with the same ones).

    The access log is off unless asked for: at a thousand requests a second, formatting and
    writing one line per request costs more CPU than parsing the webhook. ``http`` and ``loop``
    stay uvicorn's ``auto``: httptools and uvloop when the ``[serve]`` extra installed them,
    h11 and asyncio otherwise."""
    from ._logging import logging_config

    return {"log_level": "info", "lifespan": "on", "access_log": access_log,
            "log_config": logging_config(log_format)}


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed adapters with their capabilities."""
    from rich.measure import Measurement

    from ._plugins import build_plugin_manager

    _, registry = build_plugin_manager()
    if as_json:
        rows = []
        for adapter in registry:
            caps = adapter.capabilities
            window = caps.session_window
            rows.append({
                "name": adapter.name, "channel": adapter.channel,
                "module": adapter.__module__.split(".")[0],
                "capabilities": caps.model_dump(mode="json"),
                "session_window_seconds": window.total_seconds() if window else None,
                "settings": sorted(adapter.Settings.model_fields),
            })
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    table = Table("adapter", "channel", "module", "text", "media", "buttons", "window")
    for adapter in registry:
        caps = adapter.capabilities
        window = caps.session_window
        table.add_row(
            adapter.name, adapter.channel, adapter.__module__.split(".")[0],
            str(caps.max_text_length or "∞"), ",".join(sorted(caps.media_kinds)) or "-",
            str(caps.max_buttons) if caps.buttons else "list",
            f"{window.total_seconds() / 3600:g} h" if window else "-")
    # never cut a name at 80 columns (rich's width when output is not a terminal)
    wide = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    Console(width=max(wide, console.width)).print(table)


@app.command("new-plugin")
def new_plugin(
    name: Annotated[str, typer.Argument(help="The adapter name, e.g. 'line' or 'acme-chat'.")],
    directory: Annotated[Path | None, typer.Option(
        "--directory", "-d", help="Where to write it (default: ./omnichannel-NAME).")] = None,
) -> None:
    """Write a plugin distribution (pyproject with its entry point, adapter, settings, contract
    tests, README) that passes the contract kit."""
    from ._scaffold import write_plugin

    target = directory or Path(f"omnichannel-{name}")
    for path in write_plugin(name, target):  # a bad name or a used folder: one red line
        console.print(f"wrote {path}")
    console.print(f"next: cd {target} && pip install -e '.[test]' && pytest && omnichannel plugins")


@app.command()
def normalize(
    file: Annotated[Path, typer.Argument(help="A vendor payload (JSON, form, XML, MIME).",
                                         metavar="FILE")],
    adapter: Annotated[str | None, typer.Option(
        "--adapter", "-a", help="Adapter name (or take it from --config).", metavar="NAME")] = None,
    setting: Annotated[list[str] | None, typer.Option(
        "--set", help="Adapter setting NAME=VALUE (repeatable).", metavar="NAME=VALUE")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="A TOML file with [channels.<key>] tables (a mapping, say).",
        metavar="FILE")] = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", help="Which [channels.<key>] of --config (default: the only one).",
        metavar="KEY")] = None,
    content_type: Annotated[str | None, typer.Option(help="Override the guessed type.",
                                                     metavar="TYPE")] = None,
) -> None:
    """Print the normalized messages in a payload as JSON (no signature check); for a mapping,
    also name the first path that matched nothing in each event."""
    from ._normalize import normalize_file

    result, notes = normalize_file(file, adapter=adapter, setting=setting, config=config,
                                   channel=channel, content_type=content_type)
    console.print_json(json.dumps(result, default=str))
    for note in notes:
        err.print(f"[yellow]note:[/yellow] {note}")


@app.command()
def schema(
    model: Annotated[str | None, typer.Option(help="One model: Message, Conversation, …",
                                              metavar="MODEL")] = None,
) -> None:
    """Print the JSON Schema of the normalized model."""
    from . import _models

    names = ["Message", "Conversation", "Contact", "StatusUpdate", "Address", "DeadLetter"]
    if model is not None:
        if model not in names:
            raise typer.BadParameter(f"choose one of {', '.join(names)}")
        names = [model]
    schemas = {n: getattr(_models, n).model_json_schema() for n in names}
    console.print_json(json.dumps(schemas[model] if model else schemas))


@app.command()
def replay(
    config: Annotated[Path, typer.Option("--config", "-c", help="The configuration file.",
                                         metavar="FILE")],
    letter: Annotated[list[str] | None, typer.Option(
        "--id", help="Only these dead letters (repeatable).", metavar="ID")] = None,
) -> None:
    """Reprocess dead-lettered payloads and sends."""
    from ._hub import Hub

    if not config.is_file():
        raise CliError(f"no such file: {config}")

    async def run() -> int:
        hub = Hub.from_config(config)
        async with hub:
            letters = await hub.store.list_dead_letters()
            if letter:
                letters = [x for x in letters if x.id in set(letter)]
            with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                          console=console) as progress:
                task = progress.add_task("replay", total=len(letters))
                report = await hub.replay([x.id for x in letters],
                                          progress=lambda _l, _ok: progress.advance(task))
            await asyncio.sleep(0)  # let queued sends start before the hub closes
        console.print(f"replayed {len(report.replayed)}, still failing {len(report.failed)}")
        for lid, why in report.failed.items():
            console.print(f"  {lid}: {why}")
        return 1 if report.failed else 0

    raise typer.Exit(asyncio.run(run()))


@app.command()
def report(
    config: Annotated[Path, typer.Option("--config", "-c", help="omnichannel.toml")],
    since: Annotated[str | None, typer.Option(
        help="Conversations whose first customer message is at or after this ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="… and before this ISO time.")] = None,
    channel_key: Annotated[str | None, typer.Option(help="Only this channel key.")] = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="KIND=SECONDS response-time target (repeatable), e.g. webchat=30.")] = None,
    goal: Annotated[float, typer.Option(help="Share that should meet the target.")] = 0.8,
    svg: Annotated[Path | None, typer.Option(help="Also write an SVG chart to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Service levels: first response and response times per channel, the share answered
    within target (bot replies counted apart), and open conversations per agent."""
    from datetime import UTC, datetime

    from ._config import load_config
    from ._plugins import build_plugin_manager
    from ._service_levels import compute_service_levels, duration_label, target_label
    from ._store import store_from_url

    def when(value: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise OmnichannelError(f"--{name}: not an ISO date or time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    targets: dict[str, float] = {}
    for item in target or []:
        kind, sep, value = item.partition("=")
        try:
            targets[kind.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not kind.strip():
            raise OmnichannelError(f"--target wants KIND=SECONDS, got {item!r}")
    if not config.is_file():
        raise OmnichannelError(f"no such config file: {config}")
    _, registry = build_plugin_manager()
    settings, _channels = load_config(config, registry)

    async def run() -> None:
        store = store_from_url(settings.store)
        await store.open()
        try:
            result = await compute_service_levels(
                store, since=when(since, "since"), until=when(until, "until"), targets=targets,
                goal=goal, channel_key=channel_key)
        finally:
            await store.close()
        if as_json:
            console.print_json(result.model_dump_json())
        else:
            table = Table(title=f"Service levels (goal {goal:.0%} within target)")
            for column in ("channel", "target", "conversations", "within target", "first reply median",
                           "first reply p90", "reply median", "waiting", "bot first"):
                table.add_column(column)
            for row in result.channels:
                share = "-" if row.within_target is None else f"{row.within_target:.0%}"
                style = "" if row.within_target is None else (
                    "green" if row.within_target >= goal else "red")
                table.add_row(row.channel, target_label(row.target), str(row.conversations),
                              f"[{style}]{share}[/{style}]" if style else share,
                              duration_label(row.first_response_median),
                              duration_label(row.first_response_p90),
                              duration_label(row.response_median), str(row.waiting_turns),
                              str(row.bot_first_responses))
            console.print(table)
            if result.agents:
                agents = Table(title="Agents")
                agents.add_column("agent")
                agents.add_column("open conversations")
                agents.add_column("replies")
                for agent in result.agents:
                    agents.add_row(agent.agent, str(agent.open_conversations), str(agent.replies))
                console.print(agents)
        if svg is not None:
            from ._report_chart import report_svg

            svg.write_text(report_svg(result), "utf-8")
            err.print(f"chart written to {svg}")

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main()
