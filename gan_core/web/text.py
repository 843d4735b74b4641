"""Text that pages show: user text made safe for markdown (`plain`), errors in words any visitor may read, the one
way an id is read from a link, and small words (ordinals, labels, table values)."""
from __future__ import annotations

import logging
import re
from typing import Any

from ..events import redact_paths
from ..runs.store import RunView

log = logging.getLogger(__name__)


# "&" too: the renderer decodes character references (&colon; &#64;) before GFM autolinks the text, so
# "http&colon;//x" became a link in Chromium; "\&" shows the "&" itself and nothing is decoded.
_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$=&")


# GFM turns bare URLs and emails into links after escapes are resolved (seen in Chromium: "http\\://x" became a
# link), so an invisible word joiner (U+2060) goes where those patterns need two characters side by side.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=[:.])|@")


def plain(text: str) -> str:
    """User text (run names, tags, descriptions) made safe for st.markdown/caption/subheader: every markdown,
    emoji-shortcode (:x:), colour directive, LaTeX and entity (&) character is backslash-escaped, bare URLs and emails
    are kept from becoming links, and newlines become spaces, so it shows literally; Streamlit already refuses raw HTML
    without unsafe_allow_html, which we never pass."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", str(text))
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else (" " if ch in "\r\n" else ch) for ch in text)


def shown_error(error: BaseException | str) -> str:
    """An error, or a run's stored error, as markdown any visitor may read: its words for people (an exception's
    `reason` or errno message, as uploads.public_reason gives them), every server path cut to its last part
    (events.redact_paths: a row stored before paths were kept out still has them), escaped (plain). What was cut
    goes to the server's log."""
    from ..runs.uploads import public_reason

    full = error if isinstance(error, str) else str(error)
    text = redact_paths(error if isinstance(error, str) else public_reason(error))
    if text != full:
        log.warning("shown as %r: %s", text, full)
    return plain(text)


def run_label(run: RunView) -> str:
    """'#12 dense-mnist · running' for pickers."""
    return f"#{run.id} {run.name} · {run.status}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st…"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def clip(text: str, n: int) -> str:
    """`text` on one line, cut to `n` characters with "…" when longer."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


MAX_ID = 2**63 - 1  # the largest BIGINT of SQLite and PostgreSQL: no run or sweep id is bigger


def parse_id(raw: Any) -> int | None:
    """A run or sweep id as a URL (?run=, ?sweep=) or the session gives it: ASCII digits only, 1 to MAX_ID, else
    None. The one way every page reads an id: str.isdigit() is True for '²' (then int() raised) and int() reads
    '٣', ' 7', '+7' and '1_0' as other ids."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 1 <= raw <= MAX_ID else None
    text = raw if isinstance(raw, str) else ""
    if not (0 < len(text) <= len(str(MAX_ID)) and text.isascii() and text.isdigit()):
        return None
    n = int(text)
    return n if 1 <= n <= MAX_ID else None


def value_text(v: Any) -> str:
    """A config value as the tables show it: lists as '256, 512'."""
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


_PLAIN_REASONS = (  # (pattern in a CheckpointError / UploadError reason, what a person is told), first match wins
    (r"pickle", "This is a PyTorch pickle file (torch.save). GAN Studio opens only .safetensors files, which cannot "
                "run code when they are loaded."),
    (r"MB; generators are accepted up to|upload quota|upload limit|sign in", None),  # written for people: as is
    (r"not a complete safetensors|not a safetensors|HeaderTooLarge|header too large",
     "This is not a generator file GAN Studio can open: it is not a complete .safetensors file (cut short while "
     "uploading, or another kind of file renamed)."),
    (r"header declares [\d,]+ tensors", "This file declares far more tensors than any GAN Studio generator holds, "
                                        "so it is not opened."),
    (r"not a GAN Studio checkpoint|GAN Studio header|nests deeper|header declares|safetensors header is",
     "This .safetensors file was not written by GAN Studio, so it does not say which model it holds."),
    (r"format .* is not supported", "This file was written by a different version of GAN Studio."),
    (r"config is invalid", "The training settings saved in this file are not ones GAN Studio accepts."),
    (r"NaN or infinite", "Weights in this file are broken (not-a-number values): its training diverged. Use an "
                         "earlier checkpoint or another run."),
    (r"do not fit|tensor .* is |unexpected tensor", "The weights in this file do not match the model its settings "
                                                    "describe (edited, or written by another program)."),
    (r"no such checkpoint|folder", "The generator file is missing."),
    (r"unreadable", "The file could not be read."),
)


def plain_checkpoint_error(reason: str) -> str:
    """A checkpoint or upload error's reason in words for people (no "header too large"); show the technical reason
    beside it for whoever wants it (an expander)."""
    for pattern, message in _PLAIN_REASONS:
        if re.search(pattern, reason, re.IGNORECASE):
            return (message or reason[:1].upper() + reason[1:]).rstrip(".") + "."
    return "This file cannot be used as a generator."


def grid_caption_epochs(n: int) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n:,} epoch" + ("" if n == 1 else "s")
