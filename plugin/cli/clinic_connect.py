"""``rapport clinic add``, ``rotate-secret`` and ``rapport clinic <platform> KEY``:
connecting clinics and changing their credentials.

The options are what the platforms declare (``connect_fields``, ``update_fields``):
adding a platform adds its options and its command here, with no change to this module.
"""

from __future__ import annotations

import json

import click

import handlers
from handlers.base import Field
from plugin.cli.base import app_or_exit
from plugin.clinics import callbacks, connecting
from plugin.pipeline import write_back


def _connect_options() -> list[tuple[Field, str]]:
    """Every platform's connect fields, one option per name; a name several platforms
    take is one option whose help gathers theirs."""
    fields: dict[str, Field] = {}
    helps: dict[str, list[str]] = {}
    for platform in handlers.platforms():
        for field in platform.connect_fields:
            fields.setdefault(field.name, field)
            if field.help not in helps.setdefault(field.name, []):
                helps[field.name].append(field.help)
    return [(field, " ".join(helps[name])) for name, field in fields.items()]


def _option(field: Field, help_text: str):
    if field.flag:
        return click.option(field.option, field.name, is_flag=True, help=help_text)
    return click.option(field.option, field.name, help=help_text)


def _with_connect_options(command):
    for field, help_text in reversed(_connect_options()):
        command = _option(field, help_text)(command)
    return command


@click.command("add")
@click.option("--name", required=True, help="The clinic's name, as clients know it.")
@click.option("--platform", "platform_name", required=True,
              type=click.Choice(list(handlers.PLATFORMS)))
@click.option("--timezone", "timezone_name",
              help="IANA time zone for the sending window, e.g. Europe/Paris (default: the "
              "business's, where its platform can say, else UTC).")
@click.option("--language",
              help="Language of the therapist's note: en, fr or es (default: the business's, "
              "where its platform can say, else en).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_with_connect_options
def add(name, platform_name, timezone_name, language, as_json, **given):
    """Add a clinic and print what its booking system needs."""
    platform = handlers.platform(platform_name)
    app = app_or_exit()
    with app.app_context():
        try:
            added = connecting.add(name=name, platform_name=platform_name, given=given,
                                   timezone=timezone_name, language=language)
        except connecting.InstallError as error:
            raise click.ClickException(str(error))
    result = added.shown
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"Clinic {name!r} added ({platform_name}).")
    for label, key in added.labels:
        click.echo(f"  {label:<26} {result[key]}")
    later = (f" (until connected: then the business's own, from {platform.title})"
             if result.get("connect_url") else
             f" ({platform.title} did not say; change it with `rapport clinic configure`)")
    for label, key in (("Time zone:", "timezone"), ("Note language:", "language")):
        click.echo(f"  {label:<26} {result[key]}{later if key in added.from_platform else ''}")
    for line in added.next_steps:
        click.echo(line)


@click.command("rotate-secret")
@click.argument("key")
@click.option("--retire-old", is_flag=True,
              help="Stop accepting every secret but the newest (after the sender switched).")
@click.option("--callback", is_flag=True,
              help="The secret Rapport signs its callbacks with, rather than the webhook "
              "secret: each callback is signed with the old and the new until retired.")
def rotate_secret(key, retire_old, callback):
    """A new inbound webhook secret; the old ones keep working until retired."""
    app = app_or_exit()
    if callback:
        with app.app_context():
            try:
                changed = callbacks.rotate_secret(key, retire_old=retire_old)
            except callbacks.CallbackError as error:
                raise click.ClickException(str(error))
        if changed.new_secret is None:
            click.echo("Callbacks are signed with the newest secret only now.")
            return
        click.echo(f"New callback signing secret: {changed.new_secret}\nCallbacks carry a "
                   "signature with it and one with each older secret. Once your receiver "
                   f"verifies with the new one, run:\n"
                   f"  rapport clinic rotate-secret {key} --callback --retire-old")
        return
    with app.app_context():
        try:
            secret = connecting.rotate_secret(key, retire_old=retire_old)
        except connecting.InstallError as error:
            raise click.ClickException(str(error))
    if secret is None:
        click.echo("Only the newest secret is accepted now.")
        return
    click.echo(f"New webhook secret: {secret}\nBoth the old and the new secret are accepted. "
               f"Once your booking system uses the new one, run:\n"
               f"  rapport clinic rotate-secret {key} --retire-old")


def _credential_command(platform_name: str) -> click.Command:
    platform = handlers.platform(platform_name)

    def run(key, **given):
        app = app_or_exit()
        with app.app_context():
            try:
                updated = connecting.update_credentials(key, platform_name, given)
            except connecting.InstallError as error:
                raise click.ClickException(str(error))
            resumed = write_back.resume(updated.clinic_id) if updated.reconnected else 0
        click.echo(f"Saved. {updated.summary}"
                   + (f" Reconnected; {resumed} write-back(s) resumed."
                      if updated.reconnected else ""))

    run.__doc__ = f"New credentials for a {platform.title} clinic connected by hand."
    command = click.argument("key")(run)
    for field in reversed(platform.update_fields):
        command = _option(field, field.help)(command)
    return click.command(platform_name)(command)


def credential_commands() -> list[click.Command]:
    """``rapport clinic <platform> KEY``, for each platform that declares what changes."""
    return [_credential_command(platform.name) for platform in handlers.platforms()
            if platform.update_fields]
