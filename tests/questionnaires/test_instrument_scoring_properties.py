"""Invariants of scoring, for generated instruments and for the shipped ones."""

from __future__ import annotations

import dataclasses

from hypothesis import assume, given
from hypothesis import strategies as st

from questionnaires import NOT_APPLICABLE, SHIPPED_DIR, InstrumentRegistry, score
from questionnaires.loading import instrument_from_document

SHIPPED = InstrumentRegistry([SHIPPED_DIR]).all()


@st.composite
def generated_instruments(draw):
    """Any valid instrument: any integer scale, 0–3 subscales, reverse keys, both methods,
    both fills, with or without "does not apply"."""
    low = draw(st.integers(-3, 3))
    high = low + draw(st.integers(1, 10))
    subscale_ids = [f"s{i}" for i in range(draw(st.integers(0, 3)))]
    count = draw(st.integers(max(1, len(subscale_ids)), 8))
    items = []
    for i in range(count):
        # The first items give each subscale at least one; the rest go anywhere or nowhere.
        sub = (
            subscale_ids[i]
            if i < len(subscale_ids)
            else draw(st.sampled_from([*subscale_ids, None]))
        )
        item = {"id": f"i{i}", "text": {"en": f"Item {i}"}, "reverse": draw(st.booleans())}
        items.append(item | ({"subscale": sub} if sub else {}))
    offers_na = count > 1 and draw(st.booleans())
    max_missing = draw(st.integers(1 if offers_na else 0, count - 1))
    scale = {"min": low, "max": high, "labels": {low: {"en": "low"}, high: {"en": "high"}}}
    if offers_na:
        scale["not_applicable"] = {"en": "N/A"}
    return instrument_from_document(
        {
            "id": "generated",
            "version": 1,
            "languages": ["en"],
            "title": {"en": "Generated"},
            "scale": scale,
            "subscales": [{"id": s, "title": {"en": s}} for s in subscale_ids],
            "items": items,
            "scoring": {
                "method": draw(st.sampled_from(["sum", "mean"])),
                "max_missing": max_missing,
                "fill": draw(st.sampled_from(["mean", "subscale_mean"])),
            },
        }
    )


instruments = st.one_of(generated_instruments(), st.sampled_from(SHIPPED))


@st.composite
def instrument_and_answers(draw, complete=False, scorable=False):
    """An instrument and answers to it; ``complete``: every item answered on the scale;
    ``scorable``: no more gaps (missing or "does not apply") than the instrument allows,
    so that few drawn cases are thrown away unscored."""
    instrument = draw(instruments)
    scale = instrument.scale
    gaps_left = instrument.scoring.max_missing if scorable else len(instrument.items)
    answers = {}
    for item in instrument.items:
        options = [st.integers(scale.min, scale.max)]
        if not complete and gaps_left > 0:
            options.append(st.none())
            if scale.allows_not_applicable:
                options.append(st.just(NOT_APPLICABLE))
        value = draw(st.one_of(*options))
        if value is None or value == NOT_APPLICABLE:
            gaps_left -= 1
        if value is not None:
            answers[item.id] = value
    return instrument, answers


@given(instrument_and_answers())
def test_scores_stay_within_their_bounds(case):
    instrument, answers = case
    result = score(instrument, answers)
    gaps = len(result.not_applicable) + len(result.missing)

    if gaps > instrument.scoring.max_missing:
        assert not result.scored
        assert result.reason
        return
    assume(result.scored)  # subscale_mean may find a subscale with nothing answered
    low, high = instrument.overall_bounds()
    assert low <= result.overall_raw <= high
    assert 0 <= result.overall <= 100
    for sub_id, sub in result.subscales.items():
        sub_low, sub_high = instrument.subscale_bounds(sub_id)
        assert sub_low <= sub.raw <= sub_high
        assert 0 <= sub.normalized <= 100
    assert all(
        instrument.scale.min <= v <= instrument.scale.max for v in result.item_values.values()
    )


@given(instrument_and_answers(scorable=True), st.randoms(use_true_random=False))
def test_raising_one_answer_moves_the_score_the_keyed_way(case, rnd):
    instrument, answers = case
    raisable = [
        item
        for item in instrument.items
        if isinstance(answers.get(item.id), int) and answers[item.id] < instrument.scale.max
    ]
    assume(raisable)
    item = rnd.choice(raisable)
    before = score(instrument, answers)
    after = score(instrument, {**answers, item.id: answers[item.id] + 1})
    assume(before.scored)

    if item.reverse:
        assert after.overall <= before.overall
        assert after.overall_raw <= before.overall_raw
    else:
        assert after.overall >= before.overall
        assert after.overall_raw >= before.overall_raw
    for sub_id in before.subscales:
        if item.reverse:
            assert after.subscales[sub_id].normalized <= before.subscales[sub_id].normalized
        else:
            assert after.subscales[sub_id].normalized >= before.subscales[sub_id].normalized


@given(instrument_and_answers(), st.randoms(use_true_random=False))
def test_reversing_an_item_and_mirroring_its_answer_changes_nothing(case, rnd):
    instrument, answers = case
    item = rnd.choice(instrument.items)
    flipped = dataclasses.replace(
        instrument,
        items=tuple(
            dataclasses.replace(i, reverse=not i.reverse) if i.id == item.id else i
            for i in instrument.items
        ),
    )
    mirrored = dict(answers)
    if isinstance(answers.get(item.id), int):
        mirrored[item.id] = instrument.scale.min + instrument.scale.max - answers[item.id]

    assert score(flipped, mirrored) == score(instrument, answers)


@given(instrument_and_answers(), st.randoms(use_true_random=False))
def test_the_order_of_answers_does_not_matter(case, rnd):
    instrument, answers = case
    pairs = list(answers.items())
    rnd.shuffle(pairs)

    assert score(instrument, dict(pairs)) == score(instrument, answers)


@given(instrument_and_answers(complete=True))
def test_complete_answers_are_always_scored(case):
    instrument, answers = case

    result = score(instrument, answers)

    assert result.scored
    assert result.at_ceiling == (result.overall == 100.0)
