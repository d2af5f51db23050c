"""Local stand-ins of the booking platforms: real HTTP servers on 127.0.0.1 that answer as
each platform documents, for the tests and for ``rapport demo --platform NAME``.

:data:`DEMOS` names, for each platform, the demo that drives its stand-in through one
appointment's journey (the protocol is :class:`tests.sandboxes.demo.StandInDemo`). The
demo is found here by ``plugin/demo/stand_ins.py`` in a source checkout; ``plugin/``
itself never names a platform.
"""

DEMOS = {
    "acuity": "tests.sandboxes.acuity_demo:AcuityDemo",
    "cliniko": "tests.sandboxes.cliniko_demo:ClinikoDemo",
    "mindbody": "tests.sandboxes.mindbody_demo:MindbodyDemo",
    "square": "tests.sandboxes.square_demo:SquareDemo",
}
