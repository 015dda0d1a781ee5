"""One example per command, shown at the end of its ``--help``.

Kept in one table so that every command has one (``tests/unit/cli/test_cli_help.py`` walks the whole
command tree) and examples read alike; a command that sets its own ``epilog`` keeps it.
"""

from __future__ import annotations

import click

EXAMPLES: dict[str, str] = {
    "": "broadcaster demo   (the whole job through the simulator, in one command)",
    "segments": "broadcaster segments 'Hola {0}, tu saldo es {1}'",
    "migrate": "broadcaster migrate   (with BROADCASTER_DATABASE_URL=postgresql+psycopg://…)",
    "recipients": "broadcaster recipients check clients.csv --text 'Hi {name}' --preview 3",
    "recipients check": "broadcaster recipients check clients.csv --text 'Hi {name}' "
    "--region MX --preview 3",
    "codes": "broadcaster codes list --workspace acme",
    "codes add": "broadcaster codes add 55501 --kind short --mps 100 --workspace acme",
    "codes share": "broadcaster codes share 55501 --workspace globex",
    "codes list": "broadcaster codes list --workspace acme --json",
    "api": "broadcaster api --port 8080",
    "simulator": "broadcaster simulator --port 8025 --share-500 0.05 --dlr-mix DELIVRD=0.9,UNDELIV=0.1",
    "dev": "broadcaster dev --workers 2",
    "demo": "broadcaster demo --file clients.csv --text 'Hi {name}'",
    "send": "broadcaster send --from 55501 --to +525512345678 --text 'Your code is 1234'",
    "apikey": "broadcaster apikey create --workspace acme",
    "apikey create": "broadcaster apikey create --workspace acme --signing",
    "apikey list": "broadcaster apikey list --workspace acme",
    "apikey revoke": "broadcaster apikey revoke 1a2b3c4d5e6f --workspace acme",
    "watch": "broadcaster watch /srv/drop --workspace acme",
    "worker": "broadcaster worker send --concurrency 4",
    "beat": "broadcaster beat",
    "inbound": "broadcaster inbound list --workspace acme",
    "inbound list": "broadcaster inbound list --workspace acme --limit 20",
    "inbound settings": "broadcaster inbound settings --workspace acme "
    '--set replies=\'{"HELP": "Call 555-0100"}\'',
    "optouts": "broadcaster optouts list --workspace acme",
    "optouts list": "broadcaster optouts list --workspace acme --json",
    "optouts add": "broadcaster optouts add +525512345678 --workspace acme",
    "optouts remove": "broadcaster optouts remove +525512345678 --workspace acme",
    "optouts import": "broadcaster optouts import suppressed.csv --workspace acme",
    "optouts export": "broadcaster optouts export --workspace acme -o suppressed.csv",
    "contacts": "broadcaster contacts import clients.csv --list vip --workspace acme",
    "contacts import": "broadcaster contacts import clients.csv --list vip --workspace acme",
    "contacts list": "broadcaster contacts list --list vip --workspace acme --json",
    "contacts get": "broadcaster contacts get 12 --workspace acme",
    "contacts delete": "broadcaster contacts delete 12 --workspace acme",
    "lists": "broadcaster lists list --workspace acme",
    "lists list": "broadcaster lists list --workspace acme --json",
    "lists create": "broadcaster lists create vip --workspace acme",
    "lists delete": "broadcaster lists delete 3 --workspace acme",
    "templates": "broadcaster templates list --workspace acme",
    "templates list": "broadcaster templates list --workspace acme --json",
    "templates create": "broadcaster templates create otp --text 'Hi {first_name}, code {0}' "
    "--from 55501 --list otp --workspace acme",
    "templates get": "broadcaster templates get 2 --workspace acme",
    "templates delete": "broadcaster templates delete 2 --workspace acme",
}


def add_examples(group: click.Group, path: str = "") -> None:
    """Give every command under ``group`` (and ``group`` itself) its example from EXAMPLES."""
    _set(group, path)
    for name, command in group.commands.items():
        sub = f"{path} {name}".strip()
        if isinstance(command, click.Group):
            add_examples(command, sub)
        else:
            _set(command, sub)


def _set(command: click.Command, path: str) -> None:
    if not command.epilog and path in EXAMPLES:
        command.epilog = f"Example: {EXAMPLES[path]}"
