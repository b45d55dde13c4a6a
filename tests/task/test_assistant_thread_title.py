"""The assistant thread's title from the request as Slack sent it (entity-encoded): shown as
the person typed it, neutralized, never double-escaped."""

from __future__ import annotations

from capabilities.task.activities.assistant_threads import thread_title


def test_slack_entities_are_decoded_then_escaped_once():
    # The person typed: fix R&D's <b> tags & "<!channel>" (Slack encodes &, < and >).
    sent = 'fix R&amp;D\'s &lt;b&gt; tags &amp; "&lt;!channel&gt;"'
    assert thread_title(sent) == 'fix R&amp;D\'s &lt;b&gt; tags &amp; "&lt;!channel&gt;"'
    assert "&amp;amp;" not in thread_title("a &amp; b") and thread_title("a &amp; b") == "a &amp; b"
    # A typed entity stays what was typed: "&lt;" arrives as "&amp;lt;" and shows as "&lt;".
    assert thread_title("write &amp;lt; in HTML") == "write &amp;lt; in HTML"


def test_mentions_broadcasts_and_link_labels_stay_neutral():
    title = thread_title("ask <@U0BOB> and <!channel> about <https://evil.example|the report &amp; more>")
    assert title == "ask and about the report &amp; more"
    assert "<" not in title and "@U0BOB" not in title and "!channel" not in title


def test_the_limit_counts_what_is_shown():
    title = thread_title("&amp;" * 100, limit=10)
    assert title == "&amp;" * 9 + "…"
