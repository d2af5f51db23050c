"""`rapport questionnaires check | list | score`, through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from questionnaires import SHIPPED_DIR
from questionnaires.cli import questionnaires

LICENSED = SHIPPED_DIR.parent / "licensed"
CHECKIN = str(SHIPPED_DIR / "rapport-checkin.yaml")
PULSE = str(SHIPPED_DIR / "rapport-pulse.yaml")


@pytest.fixture
def run(monkeypatch):
    monkeypatch.delenv("RAPPORT_QUESTIONNAIRES_DIR", raising=False)

    def invoke(*args, env=None):
        return CliRunner().invoke(questionnaires, list(args), env=env)

    return invoke


def test_check_without_files_checks_the_shipped_folder(run):
    result = run("check")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"OK {CHECKIN} (rapport-checkin v1)",
        f"OK {PULSE} (rapport-pulse v1)",
    ]


def test_check_without_files_includes_the_clinic_folder(run, clinic_dir):
    result = run("check", env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)})

    assert result.exit_code == 0
    assert result.stdout.splitlines()[2:] == [
        f"OK {clinic_dir / 'srs.yaml'} (srs v1)",
        f"OK {clinic_dir / 'wai-sr.yaml'} (wai-sr v1)",
    ]


def test_templates_fail_check_until_every_placeholder_is_replaced(run):
    template = LICENSED / "wai-sr.template.yaml"

    result = run("check", str(template))

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 16  # the instructions, the scale's three middle labels, 12 items
    assert lines[4] == (
        f"{template}: items[0].text.en: still holds the template's placeholder "
        "'<<WAI-SR item 1 — paste the licensed wording here>>': replace it with the "
        "licensed wording"
    )


def test_check_reports_each_error_on_its_line_and_fails(run, tmp_path):
    text = (SHIPPED_DIR / "rapport-pulse.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "pulse.yaml"
    broken.write_text(
        text.replace("subscale: task\n", "subscale: tasks\n").replace(
            "  es: La sesión de hoy", "  de: La sesión de hoy"
        ),
        encoding="utf-8",
    )

    result = run("check", str(broken), CHECKIN)

    assert result.exit_code == 1
    assert result.stdout == f"OK {CHECKIN} (rapport-checkin v1)\n"
    assert result.stderr.splitlines() == [
        f"{broken}: items[0].text.es: missing: every language in `languages` (en, fr, es) "
        "needs this text",
        f"{broken}: items[0].text.de: 'de' is not in `languages` (en, fr, es)",
        f"{broken}: items[1].subscale: no subscale 'tasks' (known: goal, task, bond)",
        f"{broken}: subscales[1]: subscale 'task' has no items",
    ]


def test_check_reports_a_duplicate_id(run, tmp_path):
    copy = tmp_path / "again.yaml"
    copy.write_text((SHIPPED_DIR / "rapport-pulse.yaml").read_text(encoding="utf-8"))

    result = run("check", PULSE, str(copy))

    assert result.exit_code == 1
    assert result.stderr == (
        f"{copy}: id: 'rapport-pulse' is already the id of {PULSE}; ids must be unique\n"
    )


def test_check_reports_a_missing_clinic_folder(run, tmp_path):
    result = run("check", env={"RAPPORT_QUESTIONNAIRES_DIR": str(tmp_path / "gone")})

    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path / 'gone'}: is not a folder (check RAPPORT_QUESTIONNAIRES_DIR, or "
        "QUESTIONNAIRES_DIR in rapport.cfg)\n"
    )


def test_check_of_a_file_reusing_a_shipped_id_reports_the_conflict(run, tmp_path):
    copy = tmp_path / "our-pulse.yaml"
    copy.write_text((SHIPPED_DIR / "rapport-pulse.yaml").read_text(encoding="utf-8"))

    result = run("check", str(copy))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{copy}: id: 'rapport-pulse' is already the id of {PULSE}; ids must be unique\n"
    )


def test_check_of_a_file_reusing_the_id_of_another_clinic_file_reports_it(
    run, tmp_path, clinic_dir
):
    copy = tmp_path / "wai-sr-new.yaml"
    copy.write_text((clinic_dir / "wai-sr.yaml").read_text(encoding="utf-8"))

    result = run("check", str(copy), env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)})

    assert result.exit_code == 1
    assert result.stderr == (
        f"{copy}: id: 'wai-sr' is already the id of {clinic_dir / 'wai-sr.yaml'}; "
        "ids must be unique\n"
    )


def test_check_of_a_file_in_the_clinic_folder_does_not_clash_with_itself(run, clinic_dir):
    wai = clinic_dir / "wai-sr.yaml"

    result = run("check", str(wai), env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)})

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"OK {wai} (wai-sr v1)\n"


def test_list_shows_every_instrument_and_its_folder(run, clinic_dir):
    result = run("list", env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)})

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"rapport-checkin  v1  Visit check-in  en,fr,es  8 items  {SHIPPED_DIR}",
        f"rapport-pulse  v1  Visit pulse  en,fr,es  4 items  {SHIPPED_DIR}",
        f"srs  v1  Session Rating Scale (SRS)  en  4 items  {clinic_dir}",
        f"wai-sr  v1  Working Alliance Inventory – Short Revised (WAI-SR)  en  12 items  "
        f"{clinic_dir}",
    ]


def test_list_shows_the_good_instruments_and_reports_the_skipped_files(run, clinic_dir):
    (clinic_dir / "srs.yaml").write_text("id: srs\nversion: [\n", encoding="utf-8")

    result = run("list", env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)})

    assert result.exit_code == 1
    assert [line.split("  ")[0] for line in result.stdout.splitlines()] == [
        "rapport-checkin",
        "rapport-pulse",
        "wai-sr",
    ]
    assert result.stderr.splitlines()[0].startswith("Skipped")
    assert result.stderr.splitlines()[1].startswith(f"{clinic_dir / 'srs.yaml'}: line ")


def test_score_by_id_works_beside_a_broken_clinic_file(run, clinic_dir):
    (clinic_dir / "srs.yaml").write_text("id: srs\n", encoding="utf-8")
    answers = json.dumps({f"wai-{n}": 3 for n in range(1, 13)})

    result = run(
        "score", "wai-sr", "--answers", answers, env={"RAPPORT_QUESTIONNAIRES_DIR": str(clinic_dir)}
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == "Overall: raw 36 (range 12–60), 50.0/100"


def test_score_by_id_prints_raw_normalized_and_band(run):
    answers = json.dumps({"focus": 7, "approach": 10, "speak-up": 4, "respect": 9})

    result = run("score", "rapport-pulse", "--answers", answers)

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "rapport-pulse v1: Visit pulse",
        "Overall: raw 7.5 (range 0–10), 75.0/100",
        "  goal: raw 7 (range 0–10), 70.0/100",
        "  task: raw 10 (range 0–10), 100.0/100",
        "  bond: raw 6.5 (range 0–10), 65.0/100",
        "Band: some-concerns (Some concerns)",
    ]


def test_score_says_which_answers_were_filled_in(run):
    answers = {f"care-{n}": 4 for n in range(1, 10)} | {"care-1": 5, "care-2": "na"}

    result = run("score", str(Path(__file__).parent / "data" / "care-like.yaml"),
                 "--answers", json.dumps(answers))

    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "Filled in with the mean: care-2 (does not apply); care-10 (blank)")
    assert "Overall: raw 41.25 (range 10–50)" in result.stdout  # 33 + 2 × 33/8


def test_score_reads_answers_all_at_the_top_as_a_prompt_to_ask(run):
    answers = json.dumps({"focus": 10, "approach": 10, "speak-up": 10, "respect": 10})

    result = run("score", "rapport-pulse", "--answers", answers)

    assert result.stdout.splitlines()[-1] == (
        "Every answer at the top of the scale: ask what could be better rather than read it "
        "as perfect.")


def test_score_a_file_as_json(run, clinic_dir):
    answers = json.dumps({f"wai-{n}": 3 for n in range(1, 13)})

    result = run("score", str(clinic_dir / "wai-sr.yaml"), "--answers", answers, "--json")

    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["overall_raw"] == 36
    assert data["overall"] == 50.0
    assert data["subscales"]["bond"] == {"raw": 12, "normalized": 50.0}
    assert data["band"] is None


def test_score_says_when_a_response_is_not_scored(run):
    result = run("score", "rapport-checkin", "--answers", '{"listened": 5}', "--language", "fr")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "Not scored: 7 questions sont restées sans réponse ; au plus 1 peut être complétée : "
        "ce questionnaire n'est donc pas noté."
    )


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ('{"focus": 11}', "Error: bad answer for item 'focus': 11 is not on the scale 0–10\n"),
        ('{"fokus": 1}', "Error: bad answer for item 'fokus': no such item in 'rapport-pulse'\n"),
        (
            "{focus: 1}",
            "Error: --answers is not valid JSON: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)\n",
        ),
        ("[1, 2]", 'Error: --answers must be a JSON object such as {"item-id": 3}\n'),
    ],
)
def test_score_with_bad_answers_exits_2_naming_the_problem(run, answers, message):
    result = run("score", "rapport-pulse", "--answers", answers)

    assert result.exit_code == 2
    assert result.stderr == message


def test_score_with_an_unknown_instrument_exits_2(run):
    result = run("score", "wai-sr", "--answers", "{}")

    assert result.exit_code == 2
    assert result.stderr == (
        "Error: 'wai-sr' is neither a file nor a known instrument id "
        "(known: rapport-checkin, rapport-pulse)\n"
    )
