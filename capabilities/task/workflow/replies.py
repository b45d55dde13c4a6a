"""Thread replies a task took since its last step, as the model sees them: the requester's are
instructions (and the sites they name become known); anyone else's are quoted as untrusted
information. Pure and deterministic."""

from __future__ import annotations

from capabilities.approvals.contracts import ThreadReply
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import policy, prompts
from lucy.contracts.llm import ChatMessage, untrusted_message


def take(task: TaskInput, state: TaskState, replies: list[ThreadReply]) -> list[ChatMessage]:
    taken = []
    for r in replies:
        # A reply in an email thread is never the requester's words, whoever sent it.
        if r.slack_user_id == task.slack_user_id and not policy.is_email(task.source):
            state.known_hosts = sorted(set(state.known_hosts) | policy.hosts_named_in(r.text))
            taken.append(
                ChatMessage(role="user", content=prompts.reply_from_requester(r.slack_user_id, r.text))
            )
        else:
            state.untrusted_seen = True
            taken.append(
                untrusted_message(r.slack_user_id, r.text, intro="Someone else wrote in the thread,")
            )
    return taken
