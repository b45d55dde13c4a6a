"""Run the fake Slack and fake LLM as standalone servers, to try ``lucy dev`` with no accounts.

    python -m tests.fakes.serve --slack-port 9101 --llm-port 9102

then start ``lucy dev`` with::

    LUCY_SLACK_API_URL=http://127.0.0.1:9101/api/ LUCY_SLACK_BOT_TOKEN=xoxb-fake-token \\
    LUCY_SLACK_SIGNING_SECRET=<any> LUCY_OPENROUTER_BASE_URL=http://127.0.0.1:9102/api/v1 \\
    LUCY_OPENROUTER_API_KEY=sk-or-fake-key-123456 lucy dev

Posts Lucy makes are printed as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


async def _main(slack_port: int, llm_port: int) -> None:
    slack, llm = FakeSlack(), FakeLlm()
    await slack.start(slack_port)
    await llm.start(llm_port)
    print(f"fake Slack: {slack.api_url}  token {slack.token}", flush=True)
    print(f"fake LLM:   {llm.base_url}  key {llm.api_key}", flush=True)
    seen = 0
    while True:
        posts = slack.posted()
        for post in posts[seen:]:
            print(
                f"slack post in {post['channel']} thread {post.get('thread_ts')}: {post['text']}", flush=True
            )
        seen = len(posts)
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--slack-port", type=int, default=9101)
    parser.add_argument("--llm-port", type=int, default=9102)
    args = parser.parse_args()
    asyncio.run(_main(args.slack_port, args.llm_port))
