"""Email text: sanitizing HTML (nh3), turning it into readable text, and separating what the
customer just wrote from the quoted history and the signature.

Reply headers are recognised in English, Chinese, German, French and Spanish, plus Outlook's
``-----Original Message-----`` and ``From: … Sent: …`` blocks and ``>`` quotes.
"""

# ruff: noqa: RUF001, RUF003 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import re
from dataclasses import dataclass

import nh3

from omnichannel_sdk import html_to_text

__all__ = ["SplitText", "html_to_text", "sanitize_html", "split_reply"]

# html_to_text is the core's one (re-exported here for 0.1 callers)

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "col", "colgroup", "dd", "del", "div", "dl",
    "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol",
    "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
_ALLOWED_ATTRIBUTES = {
    "*": {"title", "dir", "lang", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "font": {"color"},
}


def sanitize_html(html: str, *, remote_images: bool = False) -> str:
    """HTML without script, style, event handlers or forms; images only from ``cid:`` (the
    message's own inline parts) and ``data:`` unless ``remote_images`` allows http(s) too —
    remote images are tracking pixels more often than not."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            lower = value.strip().lower()
            if lower.startswith("cid:") or (remote_images and lower.startswith(("https:", "http:"))):
                return value
            return None
        return value

    return nh3.clean(
        html, tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES, attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "cid", "tel"}, link_rel="noopener noreferrer",
        strip_comments=True)


@dataclass
class SplitText:
    """An email body taken apart."""

    new: str
    """What the sender just wrote."""
    quoted: str | None
    """The history they quoted, from the reply header on."""
    signature: str | None
    """Their signature, when one was recognised."""


# reply headers that clients wrap over two or three lines
_WROTE = re.compile(
    r"(?is)^\s*("
    r"on\b.{0,200}\bwrote\s*:"                        # On Mon, 1 Jan 2024, Bob <b@x> wrote:
    r"|am\b.{0,200}\bschrieb.{0,200}:"                 # Am 01.01.2024 um 10:00 schrieb Bob:
    r"|le\b.{0,200}\ba\s+[ée]crit\s*:"                  # Le 1 janv. 2024 à 10:00, Bob a écrit :
    r"|el\b.{0,200}\bescribi[óo]\s*:"                  # El 1 ene 2024, Bob escribió:
    r"|在.{0,200}(写道|寫道)\s*[:：]?"                   # 在 2024年1月1日，Bob 写道：
    r")\s*$")
_WROTE_START = re.compile(r"(?i)^\s*(on|am|le|el)\s|^\s*在")
# … and ones that stand on one line: "Bob <b@x> 于2024年1月1日周一 写道："
_WROTE_LINE = re.compile(r"^.{0,200}(写道|寫道)\s*[:：]\s*$")
_SEPARATOR = re.compile(
    r"(?i)^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|"
    r"mensaje original|原始邮件|原始郵件|forwarded message|weitergeleitete nachricht|"
    r"message transféré|mensaje reenviado|转发的邮件)\s*-{2,}|_{10,}|-{5,} ?original ?-{5,})\s*$")
_FROM_LINE = re.compile(r"(?i)^\s*\*?(from|von|de|发件人|寄件者|发送人)\s*\*?\s*[:：]")
_SENT_LINE = re.compile(
    r"(?i)^\s*\*?(sent|date|gesendet|datum|envoy[ée]|date d'envoi|enviado|fecha|"
    r"发送时间|日期|時間|寄件日期|to|an|à|para|收件人|subject|betreff|objet|asunto|主题)\s*\*?\s*[:：]")
_SIGNATURE = re.compile(
    r"(?i)^\s*(--\s?|sent from my .{1,40}|get outlook for .{1,30}|"
    r"von meinem .{1,40} gesendet|envoy[ée] de mon .{1,40}|enviado desde mi .{1,40}|"
    r"发自我的.{1,20}|從我的.{1,20}傳送|来自.{1,20}的邮件)\s*$")


def _reply_header_at(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line):
        return True
    if _WROTE_LINE.match(line) or _WROTE.match(line.strip()):
        return True
    if _WROTE_START.match(line):  # "On … wrote:" is often wrapped by the sender's client
        for span in (2, 3):
            chunk = " ".join(x.strip() for x in lines[i:i + span])
            if len(chunk) < 400 and _WROTE.match(chunk):
                return True
    if _FROM_LINE.match(line):
        following = [x for x in lines[i + 1:i + 5] if x.strip()]
        return sum(1 for x in following if _SENT_LINE.match(x)) >= 1
    return False


def split_reply(text: str) -> SplitText:
    """Separate the new text of a reply from the quoted history and the signature.

    When nothing is left (a forward, or a message that is all quote), ``new`` is the whole
    text: the full body is never lost.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i in range(len(lines)):
        if _reply_header_at(lines, i):
            cut = i
            break
    else:
        # a trailing block of "> " lines (with blank lines between) is the history
        j = len(lines)
        while j > 0 and (not lines[j - 1].strip() or lines[j - 1].lstrip().startswith(">")):
            j -= 1
        if j < len(lines) and any(x.lstrip().startswith(">") for x in lines[j:]):
            cut = j
    quoted = "\n".join(lines[cut:]).strip() or None
    body = lines[:cut]
    signature = None
    for i in range(len(body) - 1, -1, -1):
        if _SIGNATURE.match(body[i]) and len(body) - i <= 15:
            signature = "\n".join(body[i:]).strip() or None
            body = body[:i]
            break
    new = "\n".join(body).strip()
    if not new:
        return SplitText(new=text.strip(), quoted=None, signature=None)
    return SplitText(new=new, quoted=quoted, signature=signature)
