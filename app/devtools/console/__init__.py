"""The local Slack console: Slack's side of the wire for ``lucy dev`` and the test suite.

:mod:`app.devtools.console.backend` is a small Slack workspace that serves the Web API methods Lucy
calls (the test suite's fake Slack is the same code); :mod:`app.devtools.console.deliver` signs events,
slash commands and clicks exactly as Slack does and posts them to ``/slack/events``;
:mod:`app.devtools.console.web` is the browser console on the ingress (development only);
:mod:`app.devtools.console.render` turns Block Kit and mrkdwn into escaped HTML;
:mod:`app.devtools.console.demo`
is the labelled demo model and demo gateway used when no real one is configured.
"""
