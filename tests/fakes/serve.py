"""Run the fake Slack, fake LLM and fake OpenClaw gateway as standalone servers, to try
``lucy dev`` with no accounts.

    python -m tests.fakes.serve

then start ``lucy dev`` with the variables it prints. The fake LLM answers like a tiny agent:
a request that starts with ``run `` asks for the ``exec`` tool with the rest of the text (so
it waits for an approval), a tool result is summarised, anything else is echoed. Lucy's posts
and message updates are printed as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.fakes.demo_llm import DemoLlm
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack import FakeSlack


async def _main(slack_port: int, llm_port: int, gateway_port: int) -> None:
    slack, llm, gateway = FakeSlack(), DemoLlm(), FakeGateway()
    await slack.start(slack_port)
    await llm.start(llm_port)
    await gateway.start(gateway_port)
    print(
        "start lucy dev with:\n"
        f"  LUCY_SLACK_API_URL={slack.api_url} LUCY_SLACK_BOT_TOKEN={slack.token} \\\n"
        "  LUCY_SLACK_SIGNING_SECRET=devsecret \\\n"
        f"  LUCY_OPENROUTER_BASE_URL={llm.base_url} LUCY_OPENROUTER_API_KEY={llm.api_key} \\\n"
        f"  LUCY_OPENCLAW_BASE_URL={gateway.base_url} LUCY_OPENCLAW_API_KEY={gateway.api_key} \\\n"
        "  python3 run.py dev",
        flush=True,
    )
    seen = updates = 0
    while True:
        posts = slack.posted()
        for post in posts[seen:]:
            buttons = [
                e["action_id"]
                for b in post.get("blocks") or []
                if b.get("type") == "actions"
                for e in b["elements"]
            ]
            extra = (
                f"  buttons {buttons} (value {post['blocks'][-1]['elements'][0]['value']})" if buttons else ""
            )
            print(
                f"slack post {post['ts']} in {post['channel']} thread {post.get('thread_ts')}: {post['text']}{extra}",
                flush=True,
            )
        for update in slack.updates[updates:]:
            print(f"slack update of {update['ts']}: {update['text']}", flush=True)
        seen, updates = len(posts), len(slack.updates)
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--slack-port", type=int, default=9101)
    parser.add_argument("--llm-port", type=int, default=9102)
    parser.add_argument("--gateway-port", type=int, default=9103)
    args = parser.parse_args()
    asyncio.run(_main(args.slack_port, args.llm_port, args.gateway_port))
