"""``rapport questionnaires …``: check instrument files, list them, score a response.

The plugin mounts the ``questionnaires`` group under its own CLI. The clinic's folder
is the one named by RAPPORT_QUESTIONNAIRES_DIR, unless the program mounting the group
says otherwise: it may put a callable returning the folders to load under
``ctx.meta[DIRS_KEY]`` (the plugin does, so these commands see the folder its server
reads from ``rapport.cfg`` too).
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
from .registry import (
    DIR_HINT,
    InstrumentRegistry,
    configured_dirs,
    duplicate_id,
    instrument_files,
)
from .scoring import Score, score

DIRS_KEY = "questionnaires.dirs"
"""``click`` context meta key: a callable returning the folders to load, shipped first."""


@click.group(name="questionnaires")
def questionnaires() -> None:
    """Alliance questionnaires (instrument files): check, list, score."""


@questionnaires.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Check instrument files. Without FILE, checks the shipped instruments and the
    clinic's folder, as Rapport would load them. A FILE whose id is already taken by a
    shipped instrument or by another file in the clinic's folder is an error too."""
    errors: list[tuple[str, str, str]] = []
    paths = list(files)
    first_file: dict[str, Path | None] = {}
    if files:
        first_file.update(_ids_elsewhere(files))
    else:
        for directory in _dirs():
            if directory.is_dir():
                paths += instrument_files(directory)
            else:
                errors.append((str(directory), "", f"is not a folder ({DIR_HINT})"))
    for path in paths:
        try:
            instrument = load_instrument(path)
        except InstrumentError as error:
            errors += error.errors
            continue
        if instrument.id in first_file:
            errors.append(duplicate_id(instrument, first_file[instrument.id]))
            continue
        first_file[instrument.id] = path
        click.echo(f"OK {path} ({instrument.id} v{instrument.version})")
    for error in errors:
        click.echo(format_error(*error), err=True)
    if errors:
        raise SystemExit(1)


@questionnaires.command("list")
def list_instruments() -> None:
    """List the instruments Rapport can send, and the folder each comes from. Files
    Rapport would skip are reported after the list, and the command then exits 1."""
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
    if registry.problems:
        click.echo("Skipped (Rapport does not load these files until they are fixed):", err=True)
        for problem in registry.problems:
            click.echo(format_error(*problem), err=True)
        raise SystemExit(1)


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
    gaps = [f"{', '.join(ids)} ({why})" for ids, why in
            ((result.not_applicable, "does not apply"), (result.missing, "blank")) if ids]
    if gaps:
        lines.append(f"Filled in with the {instrument.scoring.fill.replace('_', ' ')}: "
                     + "; ".join(gaps))
    if result.at_ceiling:
        lines.append("Every answer at the top of the scale: ask what could be better rather "
                     "than read it as perfect.")
    return "\n".join(lines)


def _ids_elsewhere(files: tuple[Path, ...]) -> dict[str, Path]:
    """Id → file for every loadable instrument in the folders Rapport reads, other than
    ``files`` themselves: the ids a checked file may not take."""
    checked = {path.resolve() for path in files}
    taken: dict[str, Path] = {}
    for directory in _dirs():
        if not directory.is_dir():
            continue
        for path in instrument_files(directory):
            if path.resolve() in checked:
                continue
            try:
                taken.setdefault(load_instrument(path).id, path)
            except InstrumentError:
                continue  # reported by a check of that file, not of this one
    return taken


def _dirs() -> list[Path]:
    provided = click.get_current_context().meta.get(DIRS_KEY)
    return [Path(directory) for directory in provided()] if provided else configured_dirs()


def _registry() -> InstrumentRegistry:
    """What a running Rapport loads: every good file, broken ones left out (in problems)."""
    return InstrumentRegistry(_dirs(), skip_broken=True)


def _instrument(name: str) -> Instrument:
    if Path(name).is_file():
        try:
            return load_instrument(name)
        except InstrumentError as error:
            _fail(1, str(error))
    registry = _registry()
    if name not in registry:
        known = ", ".join(sorted(i.id for i in registry.all()))
        skipped = sorted({file for file, _, _ in registry.problems})
        hint = f"; skipped as broken: {', '.join(skipped)}" if skipped else ""
        _fail(
            2, f"'{name}' is neither a file nor a known instrument id (known: {known}{hint})"
        )
    return registry.get(name)


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)
