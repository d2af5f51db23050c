"""The webhook fuzz, CI-sized: 1,000 mutated deliveries across the four endpoints that
take webhooks (tests/support/fuzzing.py, tests/support/fuzz_run.py), against the
platforms' local stand-ins. No answer of 500 or more, no exception out of the receiver,
no failed job or failing event once the stored events' jobs have run. bench/fuzz.py runs
the same with 10,000 cases per endpoint."""

from __future__ import annotations

import pytest

from handlers.mindbody import api as mindbody_api
from tests.sandboxes.acuity import AcuitySandbox
from tests.sandboxes.mindbody import MindbodySandbox
from tests.sandboxes.square import SquareSandbox
from tests.support import fuzz_run

# 1,000 in all: the generic endpoint's parser is the one every booking system can reach.
CASES = {"generic": 300, "square": 175, "square-app": 125, "mindbody": 200, "acuity": 200}
STAND_INS = {"square": SquareSandbox, "mindbody": MindbodySandbox, "acuity": AcuitySandbox}


@pytest.mark.parametrize("platform", sorted(CASES))
def test_fuzzed_deliveries_never_crash_rapport(platform, app_factory, callback_receiver):
    mindbody_api.forget_tokens()
    needs = fuzz_run.stand_in_for(platform)
    stand_in = STAND_INS[needs]() if needs in STAND_INS else None
    sandboxes = {needs: stand_in.start()} if stand_in else {}
    try:
        app = app_factory(**fuzz_run.app_config(sandboxes))
        endpoint = fuzz_run.endpoints(app, sandboxes, callback_receiver.url)[platform]
        tally = fuzz_run.fuzz(app, endpoint, CASES[platform], derandomize=True)
    finally:
        if stand_in:
            stand_in.stop()
        mindbody_api.forget_tokens()
    assert tally.cases >= CASES[platform] * 0.9
    assert tally.signed > tally.cases / 2
    assert tally.over_500 == 0, tally.statuses
    assert tally.exceptions == []
    assert tally.unexpected == []
    assert tally.failures == []
