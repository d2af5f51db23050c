"""``rapport questionnaires …``: check instrument files, list them, score a response.

The plugin mounts the ``questionnaires`` group under its own CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import click

from .errors import AnswerError, InstrumentError, format_error
from .language import pick
from .loading import load_instrument
from .model import Instrument
from .registry import DIR_VARIABLE, InstrumentRegistry, configured_dirs, instrument_files
from .scoring import Score, score


@click.group(name="questionnaires")
def questionnaires() -> None:
    """Alliance questionnaires (instrument files): check, list, score."""


@questionnaires.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Check instrument files. Without FILE, checks the shipped instruments and the
    folder named by RAPPORT_QUESTIONNAIRES_DIR, as Rapport would load them."""
    errors: list[tuple[str, str, str]] = []
    paths = list(files)
    if not files:
        for directory in configured_dirs():
            if directory.is_dir():
                paths += instrument_files(directory)
            else:
                errors.append((str(directory), "", f"is not a folder (check {DIR_VARIABLE})"))
    first_file: dict[str, Path] = {}
    for path in paths:
        try:
            instrument = load_instrument(path)
        except InstrumentError as error:
            errors += error.errors
            continue
        if instrument.id in first_file:
            errors.append(
                (
                    str(path),
                    "id",
                    f"'{instrument.id}' is already the id of "
                    f"{first_file[instrument.id]}; ids must be unique",
                )
            )
            continue
        first_file[instrument.id] = path
        click.echo(f"OK {path} ({instrument.id} v{instrument.version})")
    for error in errors:
        click.echo(format_error(*error), err=True)
    if errors:
        raise SystemExit(1)


@questionnaires.command("list")
def list_instruments() -> None:
    """List the instruments Rapport can send, and the folder each comes from."""
    registry = _registry()
    for instrument in registry.all():
        click.echo(
            "  ".join(
                [
                    instrument.id,
                    f"v{instrument.version}",
                    pick(instrument.title, "en"),
                    ",".join(instrument.languages),
                    f"{len(instrument.items)} items",
                    str(instrument.path.parent) if instrument.path else "",
                ]
            )
        )


@questionnaires.command("score")
@click.argument("instrument")
@click.option(
    "--answers",
    "answers_json",
    required=True,
    help='JSON object of item id → answer, e.g. \'{"pressure": 4, "consent": "na"}\'.',
)
@click.option("--json", "as_json", is_flag=True, help="Print the score as a JSON object.")
@click.option("--language", default="en", show_default=True, help="Language of the band label.")
def score_command(instrument: str, answers_json: str, as_json: bool, language: str) -> None:
    """Score one response. INSTRUMENT is a file or the id of a known instrument."""
    found = _instrument(instrument)
    try:
        answers = json.loads(answers_json)
    except json.JSONDecodeError as error:
        _fail(2, f"--answers is not valid JSON: {error}")
    if not isinstance(answers, dict):
        _fail(2, '--answers must be a JSON object such as {"item-id": 3}')
    try:
        result = score(found, answers)
    except AnswerError as error:
        _fail(2, f"bad answer for {error}")
    if as_json:
        click.echo(json.dumps(result.to_dict(language), ensure_ascii=False, indent=2))
    else:
        click.echo(_score_text(found, result, language))


def _score_text(instrument: Instrument, result: Score, language: str) -> str:
    lines = [f"{instrument.id} v{instrument.version}: {pick(instrument.title, language)}"]
    if not result.scored:
        return "\n".join([*lines, f"Not scored: {result.reason_in(language)}"])

    def line(name: str, raw: float, normalized: float, bounds: tuple[float, float]) -> str:
        return f"{name}: raw {raw:g} (range {bounds[0]:g}–{bounds[1]:g}), {normalized:.1f}/100"

    lines.append(line("Overall", result.overall_raw, result.overall, instrument.overall_bounds()))
    for sub_id, sub in result.subscales.items():
        lines.append(
            "  " + line(sub_id, sub.raw, sub.normalized, instrument.subscale_bounds(sub_id))
        )
    if result.band is not None:
        lines.append(f"Band: {result.band.id} ({pick(result.band.label, language)})")
    return "\n".join(lines)


def _registry() -> InstrumentRegistry:
    try:
        return InstrumentRegistry(configured_dirs())
    except InstrumentError as error:
        for problem in error.errors:
            click.echo(format_error(*problem), err=True)
        raise SystemExit(1)


def _instrument(name: str) -> Instrument:
    if Path(name).is_file():
        try:
            return load_instrument(name)
        except InstrumentError as error:
            _fail(1, str(error))
    registry = _registry()
    if name not in registry:
        known = ", ".join(sorted(i.id for i in registry.all()))
        _fail(2, f"'{name}' is neither a file nor a known instrument id (known: {known})")
    return registry.get(name)


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)
