"""A drop names the subscale that fell the most against its own baseline, and its talking
point is about that subscale: never "revisit goals" when goals held up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from questionnaires import PastResult, assess, score
from questionnaires.history import summarize

START = datetime(2026, 9, 1, 15, tzinfo=UTC)


def past(*visits, instrument="rapport-checkin"):
    """``(overall, {subscale: value})`` per visit, a week apart."""
    return [PastResult(START + timedelta(weeks=week), "T-1", instrument, overall, subscales)
            for week, (overall, subscales) in enumerate(visits)]


def test_each_subscale_has_a_baseline_over_the_first_visits_that_recorded_it():
    history = past((90.0, {"goal": 100.0, "task": 80.0}), (80.0, {}),
                   (70.0, {"goal": 80.0, "task": 60.0, "bond": 50.0}),
                   (10.0, {"goal": 0.0}))  # the fourth visit is past the baseline

    summary = summarize(history, 60.0, False, 8)

    assert summary.baseline == 80.0
    assert summary.subscale_baselines == {"goal": 90.0, "task": 70.0, "bond": 50.0}


def test_the_drop_names_the_subscale_that_fell_the_most(checkin):
    history = past(*[(95.0, {"goal": 100.0, "task": 87.5, "bond": 100.0})] * 3)
    answers = {"listened": 5, "shared-aims": 5, "plan": 3, "pressure": 3, "held-back": 2,
               "boundaries": 5, "confidential": 5, "safe": 4}  # task 58.3, bond 91.7

    result = assess(checkin, score(checkin, answers), answers,
                    history_client=history, history_pair=history)

    drop = next(flag for flag in result.flags if flag.code == "drop")
    assert (drop.detail["subscale"], drop.detail["subscale_baseline"],
            drop.detail["subscale_change"]) == ("task", 87.5, -29.2)
    assert result.talking_points[0].startswith("Before you begin, explain your plan")
    assert not any(point.startswith("Revisit goals") for point in result.talking_points)


def test_a_drop_on_a_later_instrument_compares_the_same_subscales(pulse):
    history = past(*[(95.0, {"goal": 100.0, "task": 90.0, "bond": 95.0})] * 3)
    answers = {"focus": 10, "approach": 9, "speak-up": 7, "respect": 7}  # bond 70

    result = assess(pulse, score(pulse, answers), answers,
                    history_client=history, history_pair=history)

    assert result.flags[0].detail["subscale"] == "bond"
    assert result.headline_in("en") == (
        "Needs attention: down 12.5 points since the first visits, most in Trust and safety "
        "(95 → 70)")
    assert result.talking_points[0].startswith("Say plainly that what they share stays")


def test_without_subscales_on_record_a_drop_names_no_area(pulse):
    history = past(*[(95.0, {})] * 3)
    answers = {"focus": 10, "approach": 9, "speak-up": 7, "respect": 7}

    result = assess(pulse, score(pulse, answers), answers,
                    history_client=history, history_pair=history)

    assert "subscale" not in result.flags[0].detail
    assert result.headline_in("en") == "Needs attention: down 12.5 points since the first visits"
    assert result.talking_points == [
        "Open the next visit by asking how the last one felt and what they would change."]
    assert result.to_dict()["band"]["caveat"] == "dropping"
    assert result.band_label_in("en") == "Good, but lower than before"
