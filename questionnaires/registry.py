"""The instruments a Rapport installation can send: shipped ones plus a clinic's folder."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import InstrumentError
from .loading import load_instrument
from .model import Instrument

SHIPPED_DIR = Path(__file__).parent / "instruments"
DIR_VARIABLE = "RAPPORT_QUESTIONNAIRES_DIR"
DIR_HINT = f"check {DIR_VARIABLE}, or QUESTIONNAIRES_DIR in rapport.cfg"
TEMPLATE_SUFFIX = ".template.yaml"


def instrument_files(directory: Path) -> list[Path]:
    """The files a registry loads from ``directory``: ``*.yaml`` and ``*.yml``, but not
    ``*.template.yaml``, which are starting points to copy, never instruments to send."""
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file()
        and path.suffix in (".yaml", ".yml")
        and not path.name.endswith(TEMPLATE_SUFFIX)
    )


def configured_dirs(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The shipped folder, then the clinic's folder named by RAPPORT_QUESTIONNAIRES_DIR."""
    extra = environ.get(DIR_VARIABLE, "").strip()
    return [SHIPPED_DIR, Path(extra)] if extra else [SHIPPED_DIR]


class InstrumentRegistry:
    """Every instrument found in ``dirs``, loaded and checked at once.

    Later folders add instruments; none may reuse an id that an earlier file took
    (a licensed file does not silently replace a shipped one, and of two clinic files
    with one id the first, by name, is kept).

    By default any problem in any file raises one ``InstrumentError`` listing them all:
    what ``check`` and the tests want. With ``skip_broken=True`` (what a running server
    wants) a wrong or clashing file is left out, its problems are kept in ``problems``
    as ``(file, path, message)``, and every other instrument stays available: one bad
    licensed file must not stop the check-ins that do not use it.
    """

    def __init__(self, dirs: Iterable[str | Path], *, skip_broken: bool = False):
        self.dirs = [Path(directory) for directory in dirs]
        self._instruments: dict[str, Instrument] = {}
        self.problems: list[tuple[str, str, str]] = []
        for directory in self.dirs:
            if not directory.is_dir():
                self.problems.append((str(directory), "", f"is not a folder ({DIR_HINT})"))
                continue
            for path in instrument_files(directory):
                try:
                    self._add(load_instrument(path))
                except InstrumentError as error:
                    self.problems += error.errors
        if self.problems and not skip_broken:
            raise InstrumentError(self.problems)

    def _add(self, instrument: Instrument) -> None:
        known = self._instruments.get(instrument.id)
        if known is not None:
            raise InstrumentError([duplicate_id(instrument, known.path)])
        self._instruments[instrument.id] = instrument

    def get(self, instrument_id: str) -> Instrument:
        """The instrument with this id; ``KeyError`` naming the known ids if there is none."""
        try:
            return self._instruments[instrument_id]
        except KeyError:
            known = ", ".join(sorted(self._instruments)) or "none"
            raise KeyError(f"no instrument '{instrument_id}' (known: {known})")

    def all(self) -> list[Instrument]:
        return list(self._instruments.values())

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._instruments


def duplicate_id(instrument: Instrument, first: Path | str | None) -> tuple[str, str, str]:
    """The problem of a file whose id an earlier file (``first``) already took."""
    return (
        str(instrument.path),
        "id",
        f"'{instrument.id}' is already the id of {first}; ids must be unique",
    )
