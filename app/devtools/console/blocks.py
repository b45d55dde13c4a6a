"""Block Kit blocks to escaped HTML for the console (section, fields, accessory, context,
divider, header, actions with buttons and their styles, image, rich_text, input).

Interactive elements carry only their position (``data-block``, ``data-el``): a click tells the
console *which* element was pressed and the console reads the action id and value from its own
copy of the message, never from the browser. Unknown blocks and elements are shown as a
labelled placeholder, so nothing Lucy sends is silently dropped.
"""

from __future__ import annotations

from typing import Any

from app.devtools.console.render import EMOJI, Names, _no_names, esc, link, mrkdwn, text_object


def _button(el: dict[str, Any], block: int, element: str, names: Names) -> str:
    style = el.get("style")
    cls = "btn" + (f" btn-{style}" if style in ("primary", "danger") else "")
    label = text_object(el.get("text"), names)
    if el.get("url"):
        shown = str((el.get("text") or {}).get("text") or "")
        return f'<span class="{cls}">{link(str(el["url"]), shown)}</span>'
    return (
        f'<button type="button" class="{cls}" data-block="{block}" data-el="{esc(element)}">{label}</button>'
    )


def element(el: Any, block: int, index: str, names: Names = _no_names) -> str:
    """An interactive element or an image/text element of a context block."""
    if not isinstance(el, dict):
        return ""
    kind = el.get("type")
    if kind == "button":
        return _button(el, block, index, names)
    if kind in ("mrkdwn", "plain_text"):
        return f"<span>{text_object(el, names)}</span>"
    if kind == "image":
        alt = esc(el.get("alt_text") or "")
        return f'<span class="img" title="{alt}">🖼 {alt}</span>'
    if kind == "overflow":
        return "".join(
            f'<button type="button" class="btn" data-block="{block}" data-el="{esc(index)}" '
            f'data-option="{i}">{text_object(o.get("text"), names)}</button>'
            for i, o in enumerate(el.get("options") or [])
            if isinstance(o, dict)
        )
    placeholder = text_object(el.get("placeholder") or {"type": "plain_text", "text": kind or "?"}, names)
    note = "not interactive in the console"
    return f'<span class="unsupported" title="{note}">[{esc(kind)}: {placeholder}]</span>'


def _rich_elements(elements: Any, names: Names) -> str:
    out = []
    for el in elements or []:
        if not isinstance(el, dict):
            continue
        kind = el.get("type")
        if kind == "text":
            piece = esc(el.get("text") or "").replace("\n", "<br>")
            style = el.get("style") or {}
            for flag, tag in (("code", "code"), ("bold", "b"), ("italic", "i"), ("strike", "s")):
                if style.get(flag):
                    piece = f"<{tag}>{piece}</{tag}>"
            out.append(piece)
        elif kind == "link":
            out.append(link(str(el.get("url") or ""), el.get("text")))
        elif kind == "user":
            uid = str(el.get("user_id") or "")
            out.append(f'<span class="mention">@{esc(names(uid) or uid)}</span>')
        elif kind == "channel":
            cid = str(el.get("channel_id") or "")
            out.append(f'<span class="mention">#{esc(names(cid) or cid)}</span>')
        elif kind == "emoji":
            name = str(el.get("name") or "")
            out.append(EMOJI.get(name, esc(f":{name}:")))
        elif kind == "broadcast":
            out.append(f'<span class="mention">@{esc(el.get("range") or "here")}</span>')
        else:
            out.append(esc(el.get("text") or ""))
    return "".join(out)


def _rich_text(block: dict[str, Any], names: Names) -> str:
    out = []
    for part in block.get("elements") or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        inner = _rich_elements(part.get("elements"), names)
        if kind == "rich_text_preformatted":
            out.append(f"<pre>{inner}</pre>")
        elif kind == "rich_text_quote":
            out.append(f"<blockquote>{inner}</blockquote>")
        elif kind == "rich_text_list":
            tag = "ol" if part.get("style") == "ordered" else "ul"
            items = "".join(
                f"<li>{_rich_elements(s.get('elements'), names)}</li>"
                for s in part.get("elements") or []
                if isinstance(s, dict)
            )
            out.append(f"<{tag}>{items}</{tag}>")
        else:
            out.append(f"<div>{inner}</div>")
    return "".join(out)


def _section(b: dict[str, Any], index: int, names: Names) -> str:
    parts = []
    if b.get("text"):
        parts.append(f'<div class="text">{text_object(b["text"], names)}</div>')
    if b.get("fields"):
        fields = "".join(f"<div>{text_object(f, names)}</div>" for f in b["fields"])
        parts.append(f'<div class="fields">{fields}</div>')
    accessory = element(b.get("accessory"), index, "accessory", names) if b.get("accessory") else ""
    if accessory:
        parts.append(f'<div class="accessory">{accessory}</div>')
    return f'<div class="blk section">{"".join(parts)}</div>'


def _elements(b: dict[str, Any], index: int, names: Names) -> str:
    return "".join(element(e, index, str(i), names) for i, e in enumerate(b.get("elements") or []))


def _context(b: dict[str, Any], index: int, names: Names) -> str:
    return f'<div class="blk context">{_elements(b, index, names)}</div>'


def _divider(b: dict[str, Any], index: int, names: Names) -> str:
    return '<hr class="blk divider">'


def _header(b: dict[str, Any], index: int, names: Names) -> str:
    return f'<div class="blk header">{text_object(b.get("text"), names)}</div>'


def _actions(b: dict[str, Any], index: int, names: Names) -> str:
    return f'<div class="blk actions">{_elements(b, index, names)}</div>'


def _context_actions(b: dict[str, Any], index: int, names: Names) -> str:
    """Feedback buttons: each of the pair is pressed by its key."""
    items = "".join(
        _button({"text": (e.get(k) or {}).get("text")}, index, f"{i}/{k}", names)
        for i, e in enumerate(b.get("elements") or [])
        if isinstance(e, dict) and e.get("type") == "feedback_buttons"
        for k in ("positive_button", "negative_button")
    )
    return f'<div class="blk actions">{items}</div>'


def _image(b: dict[str, Any], index: int, names: Names) -> str:
    title = text_object(b.get("title"), names) if b.get("title") else ""
    return f'<div class="blk image">🖼 {esc(b.get("alt_text") or "")} {title}</div>'


def _rich(b: dict[str, Any], index: int, names: Names) -> str:
    return f'<div class="blk rich">{_rich_text(b, names)}</div>'


def _input_field(b: dict[str, Any], index: int, names: Names) -> str:
    """The field of an input block: a text box, a channel box, or its element."""
    el = b.get("element") or {}
    if el.get("type") == "plain_text_input":
        value = esc(el.get("initial_value") or "")
        attrs = _input_attrs(b, el)
        if el.get("multiline"):
            return f"<textarea {attrs}>{value}</textarea>"
        return f'<input {attrs} value="{value}">'
    if el.get("type") in ("conversations_select", "channels_select"):
        attrs = _input_attrs(b, el)
        initial = esc(el.get("initial_conversation") or el.get("initial_channel") or "")
        hint = "channel id, e.g. C0GENERAL"
        return f'<input {attrs} data-kind="conversation" placeholder="{hint}" value="{initial}">'
    return element(el, index, "input", names)


def _input(b: dict[str, Any], index: int, names: Names) -> str:
    label = text_object(b.get("label"), names)
    return f'<label class="blk input"><span>{label}</span>{_input_field(b, index, names)}</label>'


_BLOCKS = {
    "section": _section,
    "context": _context,
    "divider": _divider,
    "header": _header,
    "actions": _actions,
    "context_actions": _context_actions,
    "image": _image,
    "rich_text": _rich,
    "input": _input,
}


def block(b: Any, index: int, names: Names = _no_names) -> str:
    """One block."""
    if not isinstance(b, dict):
        return ""
    kind = b.get("type")
    render = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if render is None:
        return f'<div class="blk unsupported">[unsupported block: {esc(kind)}]</div>'
    return render(b, index, names)


def _input_attrs(b: dict[str, Any], el: dict[str, Any]) -> str:
    return f'data-input-block="{esc(b.get("block_id") or "")}" data-action="{esc(el.get("action_id") or "")}"'


def blocks(items: Any, names: Names = _no_names) -> str:
    """A list of blocks."""
    return "".join(block(b, i, names) for i, b in enumerate(items or []))


def _plan(plan: dict[str, Any]) -> str:
    """A streaming message's plan: its title and each task with its status."""
    tasks = "".join(
        f'<li class="task {esc(t.get("status"))}">{esc(t.get("status"))}: {mrkdwn(t.get("title"))}'
        f"{' — ' + mrkdwn(t['details']) if t.get('details') else ''}</li>"
        for t in (plan.get("tasks") or {}).values()
    )
    return f'<div class="blk plan"><b>{esc(plan.get("title"))}</b><ul>{tasks}</ul></div>'


def message_body(message: dict[str, Any], names: Names = _no_names) -> str:
    """What a message shows: its plan, then its blocks, or its text as mrkdwn when it has none."""
    plan = _plan(message["plan"]) if message.get("plan") else ""
    if message.get("blocks"):
        return plan + blocks(message["blocks"], names)
    return plan + f'<div class="text">{mrkdwn(message.get("text"), names)}</div>'


def find_element(items: Any, block_index: int, el: str) -> dict[str, Any] | None:
    """The element a click names by position, from the server's own copy of the blocks."""
    try:
        b = items[block_index]
        position, _, pair = el.partition("/")  # "0/positive_button": one of a feedback pair
        found = b.get("accessory") if el == "accessory" else (b.get("elements") or [])[int(position)]
        if pair in ("positive_button", "negative_button"):
            found = {**found[pair], "action_id": found["action_id"], "type": found["type"]}
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return found if isinstance(found, dict) else None
