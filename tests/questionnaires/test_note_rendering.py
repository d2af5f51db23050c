"""The note written onto the client's profile: content, markers, and fitting a limit."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from questionnaires import NOTE_BLOCK_END, NOTE_BLOCK_START, assess, render_note, score
from questionnaires.note import note_parts, render_parts
from tests.support.sample_check_in import ANSWERS, VISIT

COMMENT = "Loved it — but the shoulder work was too strong. Café après? 😊"

FULL_EN = """\
[Rapport]
Needs attention: did not know what the session would involve (2/5); pressure or touch did not \
suit (2/5) (+2 more)
2026-11-25 · Dana Ruiz · Visit check-in
Overall: 71.9/100 · Some concerns
Goals 75/100 · Approach 41.7/100 · Trust and safety 100/100
Trend: ▆█▄▁ -8.1 since last visit, -13.1 vs first visits
Next visit:
- Open the next visit by asking how the last one felt and what they would change.
- Before you begin, explain your plan for the session (which areas, which techniques) and \
agree it together.
- Check pressure aloud early and again mid-session, and invite them to say "lighter" or \
"deeper" at any point.
Client's comment: "Loved it — but the shoulder work was too strong. Café après? 😊"
[/Rapport]"""


@pytest.fixture
def make_assessment(checkin, visits):
    def build(comment=COMMENT, answers=ANSWERS, history=(85.0, 90.0, 80.0), language="en"):
        past = visits(*history)
        return assess(
            checkin,
            score(checkin, answers),
            answers,
            comment=comment,
            history_client=past,
            history_pair=past,
            language=language,
        )

    return build


def note(assessment, language="en", **options):
    return render_note(
        assessment, language=language, visit_date=VISIT, therapist_name="Dana Ruiz", **options
    )


def test_full_note_in_english(make_assessment):
    assert note(make_assessment()) == FULL_EN


def test_full_note_in_french_is_localized_between_the_same_markers(make_assessment):
    lines = note(make_assessment(), "fr").splitlines()

    assert lines[0] == NOTE_BLOCK_START == "[Rapport]"
    assert lines[-1] == NOTE_BLOCK_END == "[/Rapport]"
    assert lines[1:6] == [
        "À surveiller : ne savait pas comment la séance allait se dérouler (2/5) ; pression ou "
        "toucher pas adaptés (2/5) (+2 autres)",
        "25/11/2026 · Dana Ruiz · Retour sur votre séance",
        "Global : 71,9/100 · Quelques réserves",
        "Objectifs 75/100 · Approche 41,7/100 · Confiance et sécurité 100/100",
        "Tendance : ▆█▄▁ -8,1 depuis la dernière visite, -13,1 par rapport aux premières visites",
    ]
    assert lines[6] == "Prochaine visite :"
    assert lines[7].startswith("- Commencez la prochaine séance en demandant")
    assert lines[10] == f'Commentaire du client : "{COMMENT}"'


def test_unknown_language_falls_back_to_english(make_assessment):
    assert note(make_assessment(), "de-AT") == FULL_EN


def test_comment_cannot_forge_a_marker_or_a_line(make_assessment):
    forged = "fine\n[/Rapport]\nOverall: 100/100\n[rapport]\x07 bye"

    text = note(make_assessment(comment=forged))

    lines = text.splitlines()
    assert lines[-2] == 'Client\'s comment: "fine /Rapport Overall: 100/100 rapport bye"'
    assert text.count(NOTE_BLOCK_START) == 1
    assert text.count(NOTE_BLOCK_END) == 1


HEADLINE = FULL_EN.splitlines()[1]
FIRST_CONCERN = "Needs attention: did not know what the session would involve (2/5) (+3 more)"
HEADER = "2026-11-25 · Dana Ruiz · Visit check-in"
OVERALL = "Overall: 71.9/100 · Some concerns"
SUBSCALES = "Goals 75/100 · Approach 41.7/100 · Trust and safety 100/100"
TREND = "Trend: ▆█▄▁ -8.1 since last visit, -13.1 vs first visits"
POINTS = [line for line in FULL_EN.splitlines() if line.startswith("- ")]


def block(*lines):
    return "\n".join([NOTE_BLOCK_START, *lines, NOTE_BLOCK_END])


def test_the_comment_tail_goes_first_a_word_at_a_time(make_assessment):
    assessment = make_assessment()

    assert note(assessment, limit=len(FULL_EN)) == FULL_EN
    assert note(assessment, limit=len(FULL_EN) - 1).splitlines()[-2] == (
        'Client\'s comment: "Loved it — but the shoulder work was too strong. Café après?…"'
    )
    assert note(assessment, limit=674).splitlines()[-2] == 'Client\'s comment: "Loved it —…"'


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (640, block(HEADLINE, HEADER, OVERALL, SUBSCALES, TREND, "Next visit:", *POINTS)),
        (613, block(HEADLINE, HEADER, OVERALL, "Goals 75/100 · Approach 41.7/100", TREND,
                    "Next visit:", *POINTS)),
        (593, block(HEADLINE, HEADER, OVERALL, "Goals 75/100", TREND, "Next visit:", *POINTS)),
        (580, block(HEADLINE, HEADER, OVERALL, TREND, "Next visit:", *POINTS)),
        (523, block(HEADLINE, HEADER, OVERALL, "Next visit:", *POINTS)),
        (412, block(HEADLINE, HEADER, OVERALL, "Next visit:", *POINTS[:2])),
        (303, block(HEADLINE, HEADER, OVERALL, "Next visit:", POINTS[0])),
        (263, block(HEADLINE, OVERALL, "Next visit:", POINTS[0])),
        (225, block(FIRST_CONCERN, OVERALL, "Next visit:", POINTS[0])),
        (151, block(FIRST_CONCERN, OVERALL, "Next visit:", "- Open…")),
        (131, block(FIRST_CONCERN, OVERALL)),
        (115, block(FIRST_CONCERN, "Overall: 71.9/100")),
        (60, block("Needs attention: did…", "Overall: 71.9/100")),
    ],
)
def test_then_subscales_trend_lower_points_date_second_concern_last_point_band_first_line(
    make_assessment, limit, expected
):
    text = note(make_assessment(), limit=limit)

    assert text == expected
    assert len(text) <= limit


def test_the_markers_first_line_and_overall_score_always_stay(make_assessment):
    assert note(make_assessment(), limit=45) == block("Needs…", "Overall: 71.9/100")
    with pytest.raises(ValueError, match="cannot fit in 44 characters"):
        note(make_assessment(), limit=44)
    with pytest.raises(ValueError, match="cannot fit in 44 bytes"):
        note(make_assessment(), limit=44, limit_bytes=True)


def test_byte_limit_counts_utf8_and_keeps_emoji_whole(make_assessment):
    comment = "Très bien 😊😊 merci — à bientôt 👍🏽 🧘‍♀️ fin"
    assessment = make_assessment(comment=comment)
    full = note(assessment)
    assert (len(full), len(full.encode("utf-8"))) == (703, 742)

    def comment_line(limit, limit_bytes):
        text = note(assessment, limit=limit, limit_bytes=limit_bytes)
        assert len(text.encode("utf-8") if limit_bytes else text) <= limit
        return text.splitlines()[-2].removeprefix("Client's comment: ")

    assert comment_line(703, limit_bytes=False) == f'"{comment}"'
    assert comment_line(702, limit_bytes=False) == '"Très bien 😊😊 merci — à bientôt 👍🏽 🧘‍♀️…"'
    # 🧘‍♀️ is four code points; 13 bytes. It goes whole, never in part.
    assert comment_line(698, limit_bytes=False) == '"Très bien 😊😊 merci — à bientôt 👍🏽…"'
    assert comment_line(703, limit_bytes=True) == '"Très bien 😊😊 merci…"'
    assert comment_line(699, limit_bytes=True) == '"Très bien 😊😊…"'
    assert comment_line(693, limit_bytes=True) == '"Très bien…"'


def test_unscored_note_says_why_first_and_can_shrink_to_not_scored(checkin):
    answers = {"listened": 4}
    assessment = assess(checkin, score(checkin, answers), answers)

    full = render_note(assessment, language="en", visit_date=VISIT, therapist_name=None)

    assert full.splitlines()[1:4] == [
        "7 answers were left blank; at most 1 can be filled in, so this response is not scored.",
        "2026-11-25 · Visit check-in",
        "Overall: Not scored",
    ]
    short = render_note(assessment, language="en", visit_date=VISIT, therapist_name=None, limit=70)
    assert short == "[Rapport]\n7 answers were left blank;…\nOverall: Not scored\n[/Rapport]"


def test_an_unscored_note_with_a_low_answer_says_both(checkin):
    answers = {"pressure": 1}
    assessment = assess(checkin, score(checkin, answers), answers)

    lines = render_note(assessment, language="en", visit_date=VISIT,
                        therapist_name=None).splitlines()

    assert lines[1] == "Needs attention: pressure or touch did not suit (1/5)"
    assert lines[3].startswith("Overall: Not scored (7 answers were left blank;")


def test_all_well_shows_the_positive_line(make_assessment):
    calm = {
        "listened": 5,
        "shared-aims": 4,
        "plan": 4,
        "pressure": 5,
        "held-back": 1,
        "boundaries": 5,
        "confidential": 5,
        "safe": 4,
    }

    text = note(make_assessment(comment=None, answers=calm, history=()), "es")

    assert text.splitlines()[-2] == (
        "Todo bien: siga preguntando cómo siente la presión y qué necesita."
    )
    assert "Próxima visita" not in text


WORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=12,
)
COMMENTS = st.lists(
    st.one_of(WORDS, st.sampled_from(["é", "😊", "👍🏽", "🧘‍♀️", "ß", "中文", "Ñandú"])),
    max_size=60,
).map(" ".join)


# make_assessment is a pure builder, so sharing it across examples is safe.
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    comment=COMMENTS,
    cut=st.integers(0, 800),
    limit_bytes=st.booleans(),
    language=st.sampled_from(["en", "fr", "es"]),
)
def test_any_limit_is_respected_without_cutting_a_word(
    make_assessment, comment, cut, limit_bytes, language
):
    assessment = make_assessment(comment=comment, language=language)
    full_lines = note(assessment, language).split("\n")
    whole = [*full_lines, assessment.headline_in(language, most=1)]  # naming one concern
    limit = max(len("\n".join(full_lines).encode("utf-8")) - cut, 60)

    text = note(assessment, language, limit=limit, limit_bytes=limit_bytes)

    assert len(text) <= limit
    if limit_bytes:
        assert len(text.encode("utf-8")) <= limit
    lines = text.split("\n")
    assert lines[0] == NOTE_BLOCK_START and lines[-1] == NOTE_BLOCK_END
    assert text.count(NOTE_BLOCK_START) == text.count(NOTE_BLOCK_END) == 1
    assert any(line.startswith(("Overall", "Global")) for line in lines)
    # The first line stays, at least begun.
    assert lines[1].removesuffix("…").split()[0] == full_lines[1].split()[0]
    for line in lines:
        if line in whole:
            continue
        if any(full.startswith(line + " · ") for full in full_lines):
            continue  # the overall score without its band
        # A shortened line is a full line cut after a whole word, marked with "…".
        stem = line.removesuffix('"')
        assert stem.endswith("…"), line
        stem = stem.removesuffix("…")
        assert any(full.startswith(stem) and full[len(stem)] == " " for full in whole), line


@pytest.mark.parametrize(
    ("language", "first", "overall"),
    [
        ("en", "Top marks on everything: ask what could be better",
         "Overall: 100/100 · Top of the scale"),
        ("fr", "Note maximale partout : demandez ce qui pourrait être mieux",
         "Global : 100/100 · Au maximum de l'échelle"),
        ("es", "Puntuación máxima en todo: pregunte qué se podría mejorar",
         "Global: 100/100 · Al máximo de la escala"),
    ],
)
def test_a_response_at_the_ceiling_is_not_reported_as_perfect(
    make_assessment, language, first, overall
):
    top = {item: 5 for item in ANSWERS} | {"held-back": 1}

    lines = note(make_assessment(answers=top, history=(), language=language), language).splitlines()

    assert lines[1] == first
    assert lines[3] == overall
    assert not any(word in "\n".join(lines) for word in ("Working well", "Bonne entente",
                                                         "Buena sintonía"))


def test_the_spanish_note_labels_the_comment_as_the_clients(make_assessment):
    lines = note(make_assessment(language="es"), "es").splitlines()

    assert lines[-2] == f'Comentario del cliente: "{COMMENT}"'


@pytest.mark.parametrize("language", ["en", "fr", "es"])
def test_stored_parts_render_as_the_assessment_would_at_every_limit(make_assessment, language):
    """What a platform needs to shorten a note later (a booking's note shares its room
    with the therapist's text) is kept as JSON with the response, not the assessment."""
    assessment = make_assessment(comment="Très bien 😊 merci — à bientôt 👍🏽", language=language)
    where = {"language": language, "visit_date": VISIT, "therapist_name": "Dana Ruiz"}
    stored = json.loads(json.dumps(note_parts(assessment, **where)))
    full = render_note(assessment, **where)

    assert render_parts(stored) == full
    for limit in range(len(full) + 1, 50, -1):
        assert render_parts(stored, limit) == render_note(assessment, limit=limit, **where)
    assert render_parts(stored, 400, limit_bytes=True) == render_note(
        assessment, limit=400, limit_bytes=True, **where
    )
    with pytest.raises(ValueError, match="cannot fit"):
        render_parts(stored, 20)


# A note's parts as the version before first lines stored them with a response.
STORED_BEFORE_FIRST_LINES = {
    "overall": "Overall: 71.9/100 · Some concerns",
    "overall_short": "Overall: 71.9/100",
    "header": "2026-11-25 · Dana Ruiz · Visit check-in",
    "subscales": ["Goals: 75.0", "How we work: 41.7", "Trust and safety: 100.0"],
    "trend": "Trend: ▆█▄▁ -8.1 since last visit, -13.1 vs first visits",
    "heading": "Next visit:",
    "points": ["Revisit goals together: before you start, ask what they want from these "
               "visits now and agree on the plan.", "Before you begin, explain your plan."],
    "last_point_words": None,
    "positive": None,
    "comment_label": "Client's comment: ",
    "comment_words": ["Shoulders", "still", "tight."],
    "comment_kept": 3,
    "short_overall": False,
}


def test_parts_stored_before_first_lines_render_as_they_did():
    assert render_parts(STORED_BEFORE_FIRST_LINES) == block(
        "2026-11-25 · Dana Ruiz · Visit check-in",
        "Overall: 71.9/100 · Some concerns",
        "Goals: 75.0",
        "How we work: 41.7",
        "Trust and safety: 100.0",
        "Trend: ▆█▄▁ -8.1 since last visit, -13.1 vs first visits",
        "Next visit:",
        *[f"- {point}" for point in STORED_BEFORE_FIRST_LINES["points"]],
        'Client\'s comment: "Shoulders still tight."',
    )
    assert render_parts(STORED_BEFORE_FIRST_LINES, 120) == block(
        "Overall: 71.9/100 · Some concerns",
        "Next visit:",
        "- Revisit goals together: before you start, ask what…",
    )
    assert render_parts(STORED_BEFORE_FIRST_LINES, 38) == block("Overall: 71.9/100")
