"""``rapport admin``: invite (emailing a link), list, remove (ending sessions)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from plugin.cli import main
from tests.support import console
from tests.support.rapport import subprocess_env


@pytest.fixture
def rapport(app):
    env = subprocess_env(app)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), env=env)

    return run


def test_invite_emails_a_link_that_signs_in(app, rapport, generic_clinic, mailbox):
    done = rapport("admin", "invite", "Dana@Harbour.example", "--clinic", generic_clinic["key"])
    assert done.exit_code == 0, done.output
    assert "Invited dana@harbour.example to Harbour Massage's console" in done.output
    (message,) = mailbox.messages
    client = app.test_client()
    path = console.link_in(message).removeprefix("http://rapport.test")
    assert console.follow_link(client, path).status_code == 303
    assert client.get(f"/admin/clinics/{generic_clinic['key']}/").status_code == 200


def test_list_and_remove(app, rapport, generic_clinic, mailbox):
    rapport("admin", "invite", "dana@harbour.example", "--clinic", generic_clinic["key"])
    rapport("admin", "invite", "ops@rapport.example", "--operator")
    listed = rapport("admin", "list").output
    assert "dana@harbour.example  Harbour Massage" in listed and "never signed in" in listed
    assert "ops@rapport.example  operator (every clinic)" in listed

    client = console.sign_in(app, app.test_client(), "dana@harbour.example", generic_clinic["key"])
    removed = rapport("admin", "remove", "dana@harbour.example")
    assert removed.exit_code == 0 and "1 session(s) ended" in removed.output
    assert client.get(f"/admin/clinics/{generic_clinic['key']}/").status_code == 302
    assert "dana@" not in rapport("admin", "list").output


@pytest.mark.parametrize("args, message", [
    (["admin", "invite", "dana@harbour.example"], "either a clinic (--clinic KEY) or --operator"),
    (["admin", "invite", "dana@harbour.example", "--clinic", "nope"], "no clinic with key"),
    (["admin", "invite", "dana", "--operator"], "is not an email address"),
    (["admin", "remove", "nobody@harbour.example"], "no admin"),
])
def test_mistakes_are_said_plainly(rapport, generic_clinic, args, message):
    result = rapport(*args)
    assert result.exit_code == 1 and message in result.output


def test_an_invitation_the_mail_server_refuses_says_so(rapport, generic_clinic, mailbox):
    mailbox.refuse_with.append("550 5.1.1 No such user")
    result = rapport("admin", "invite", "dana@harbour.example", "--clinic", generic_clinic["key"])
    assert result.exit_code == 1 and "the invitation was not sent" in result.output
