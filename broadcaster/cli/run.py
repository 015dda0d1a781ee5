"""Commands that run the whole stack or use it: dev, demo, send."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from broadcaster.cli._output import (
    console,
    emit,
    engine,
    handles_errors,
    json_option,
    kv_table,
    render_broadcast,
    safe,
    settings,
)
from broadcaster.domain.states import BroadcastStatus, MessageStatus

#: The sample recipient file shipped in the package (broadcaster/samples/).
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "recipients.csv"
SAMPLE_TEXT = "Hi {first_name}, your balance is {balance}. Reply STOP to opt out."
DEMO_CODE = "55501"
#: ``send`` waits this long for a worker to take its message before saying none runs: a few
#: beat ticks (``tick_s``, 2 s by default) and a claim.
IDLE_LIMIT_S = 15.0


#: Ports ``dev`` and ``demo`` try when none is given (a busy one: any free port instead).
DEFAULT_API_PORT = 8080
DEFAULT_SIMULATOR_PORT = 8025


def _stack(  # type: ignore[no-untyped-def]
    api_port: int | None, simulator_port: int | None, send_workers: int, *, demo: bool = False
):
    from broadcaster.cli.devstack import DevStack

    s = settings()
    url = s.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(Path(url[len("sqlite:///") :]).resolve())
    given = {"api": api_port, "simulator": simulator_port}
    return DevStack(
        database_url=url,
        redis_url=s.redis_url,
        api_port=api_port or DEFAULT_API_PORT,
        simulator_port=simulator_port or DEFAULT_SIMULATOR_PORT,
        send_workers=send_workers,
        # the simulator only when it is the gateway: dev sends where the user configured (the
        # demo always sends through the simulator, never to a paid gateway)
        with_simulator=demo or s.provider == "simulator",
        fixed_ports=frozenset(k for k, v in given.items() if v is not None),
    )


def _gateway_line(stack) -> str:  # type: ignore[no-untyped-def]
    """Which gateway this stack sends to, for the start-up banner."""
    s = settings()
    if stack.with_simulator:
        return f"gateway: the carrier simulator at {stack.gateway_url}"
    where = f" at {s.messangi_base_url}" if s.provider == "messangi" else ""
    accounts = " (and the accounts of BROADCASTER_ACCOUNTS for codes that name one)"
    return f"gateway: {s.provider}{where}{accounts if s.accounts else ''}"


def _stack_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option(
        "--api-port", type=int, help=f"[default: {DEFAULT_API_PORT}, or a free one if busy]"
    )(fn)
    fn = click.option(
        "--simulator-port",
        type=int,
        help=f"[default: {DEFAULT_SIMULATOR_PORT}, or a free one if busy]",
    )(fn)
    return click.option(
        "--workers",
        "send_workers",
        default=2,
        show_default=True,
        type=int,
        help="Send worker processes.",
    )(fn)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@click.command()
@_stack_options
@handles_errors
def dev(api_port: int | None, simulator_port: int | None, send_workers: int) -> None:
    """Run everything in the foreground: Redis, API, workers, beat, and the simulator when it is
    the gateway (BROADCASTER_PROVIDER=simulator, the default). Ctrl-C stops it."""
    engine(migrate=True)
    stack = _stack(api_port, simulator_port, send_workers).start()
    os.environ["BROADCASTER_REDIS_URL"] = stack.redis_url or ""
    console.print(
        f"[bold green]broadcaster is running[/]  API http://127.0.0.1:{stack.api_port}  "
        f"Redis {stack.redis_url}\n{_gateway_line(stack)}\n"
        f"logs in {stack.workdir}\nIn another shell: export BROADCASTER_REDIS_URL={stack.redis_url}",
        highlight=False,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a Ctrl-C
    try:
        while all(stack.alive().values()):
            time.sleep(0.5)
        dead = [n for n, ok in stack.alive().items() if not ok]
        console.print(f"[red]stopped: {', '.join(dead)} exited (see {stack.workdir})[/]")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stack.stop()


@click.command()
@click.option(
    "--file", "path", type=click.Path(dir_okay=False), default=str(SAMPLE), show_default=True
)
@click.option("--text", default=SAMPLE_TEXT, show_default=True)
@_stack_options
@json_option
@handles_errors
def demo(
    path: str,
    text: str,
    api_port: int | None,
    simulator_port: int | None,
    send_workers: int,
    as_json: bool,
) -> None:
    """The main job, end to end: start the stack, send a real broadcast of a file through the
    simulator, show its progress and result, stop the stack."""
    from broadcaster.cli.progress import wait_for
    from broadcaster.services.broadcasts import NewBroadcast, check_recipients, create_from_file
    from broadcaster.services.codes import add_code

    eng = engine(migrate=True)
    report = check_recipients(path, settings(), text=text)
    if not as_json:
        console.print(
            f"checked {safe(path)}: {report.valid} valid, {report.invalid} invalid, "
            f"{report.duplicates} duplicates, {report.total_segments} segments"
        )
    stack = _stack(api_port, simulator_port, send_workers, demo=True).start()
    try:
        add_code(eng, settings(), DEMO_CODE, "short", mps=100)
        view = create_from_file(
            eng, settings(), path, NewBroadcast(sender=DEMO_CODE, text=text, name="demo")
        )
        view = wait_for(view.id, as_json, timeout_s=300)
    finally:
        stack.stop()
    emit(view, as_json, render_broadcast)
    if view.status != BroadcastStatus.COMPLETED:
        sys.exit(1)


@click.command()
@click.option("--from", "sender", required=True, help="Sender code.")
@click.option("--to", "number", required=True, help="Recipient number.")
@click.option("--text", required=True)
@click.option("--region", help="ISO region for a national number.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the outcome.")
@click.option("--workspace", default="default", show_default=True, help="Workspace of the code.")
@json_option
@handles_errors
def send(
    sender: str,
    number: str,
    text: str,
    region: str | None,
    wait: bool,
    workspace: str,
    as_json: bool,
) -> None:
    """Send one message (through the running workers: broadcaster dev). Waiting for it without
    a running stack says so at once and stores nothing; --no-wait only stores it for the
    workers to send when they run."""
    from broadcaster.cli.progress import wait_for
    from broadcaster.services.messages import send_one
    from broadcaster.services.reachability import require_broker

    if wait:
        require_broker(settings())
    result = send_one(
        engine(migrate=True),
        settings(),
        sender=sender,
        to=number,
        text=text,
        region=region,
        workspace=workspace,
    )
    if wait and result.status == MessageStatus.QUEUE:
        wait_for(result.broadcast_id, True, timeout_s=60, quiet=True, idle_limit_s=IDLE_LIMIT_S)
        from broadcaster.services.messages import get_message

        result = get_message(engine(), result.id)
    # --json uses the HTTP API's names (broadcastId, receipts' receivedAt), as GET /v1/messages/ID.
    emit(result, as_json, kv_table)


COMMANDS: tuple[click.Command, ...] = (dev, demo, send)
