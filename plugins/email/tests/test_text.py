"""The reply splitter, the HTML sanitizer and the HTML-to-text conversion."""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import pytest
from omnichannel_email import html_to_text, sanitize_html, split_reply

CASES = [
    ("Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Support <s@x.com>\nwrote:\n> old\n", "Thanks!",
     "On Mon"),
    ("Danke\n\nAm 01.01.2024 um 10:00 schrieb Support <s@x>:\n> alt", "Danke", "Am 01.01"),
    ("Merci\n\nLe lun. 1 janv. 2024 à 10:00, Support <s@x> a écrit :\n> vieux", "Merci", "Le lun"),
    ("Gracias\n\nEl lun, 1 ene 2024 a las 10:00, Soporte (<s@x>) escribió:\n> viejo", "Gracias",
     "El lun"),
    ("你好\n\n在 2024年1月1日，客服 写道：\n> 您好", "你好", "在 2024"),
    ("好的\n\n张三 <z@x> 于2024年1月1日周一 10:00写道：\n> 旧", "好的", "张三"),
    ("好的\n\n发件人: 客服 <s@x>\n发送时间: 2024年1月1日\n收件人: 我\n主题: 订单\n\n旧", "好的", "发件人"),
    ("好的\n------------------ 原始邮件 ------------------\n发件人: x", "好的", "------"),
    ("Hi\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nTo: me\n\nold", "Hi", "-----"),
    ("Hi\n\n________________________________\nFrom: Support <s@x>\nSent: Monday\nTo: me\n\nold",
     "Hi", "_____"),
    ("Hola\n\nDe: Soporte <s@x>\nEnviado: lunes\nPara: yo\nAsunto: x\n\nviejo", "Hola", "De:"),
    ("Bonjour\n\nDe : Support <s@x>\nEnvoyé : lundi\nÀ : moi\n\nvieux", "Bonjour", "De :"),
    ("Hallo\n\nVon: Support <s@x>\nGesendet: Montag\nAn: mich\n\nalt", "Hallo", "Von:"),
    ("Hi there\n\n> quoted\n> more\n", "Hi there", "> quoted"),
]


@pytest.mark.parametrize(("text", "new", "quoted_start"), CASES)
def test_reply_headers(text: str, new: str, quoted_start: str) -> None:
    split = split_reply(text)
    assert split.new == new
    assert split.quoted is not None and split.quoted.startswith(quoted_start)


def test_signatures() -> None:
    split = split_reply("Danke\n\n-- \nMax Muster\nFirma GmbH")
    assert split.new == "Danke" and split.signature == "-- \nMax Muster\nFirma GmbH"
    split = split_reply("On my way\n\nSent from my iPhone\n\n> quoted")
    assert split.new == "On my way" and split.signature == "Sent from my iPhone"
    assert split_reply("好的\n\n发自我的iPhone").new == "好的"


def test_nothing_lost() -> None:
    only_quote = "> all of it is quoted\n> really"
    assert split_reply(only_quote).new == only_quote
    plain = "No quote here.\nOn second thought, fine."
    assert split_reply(plain).new == plain and split_reply(plain).quoted is None


def test_inline_answers_keep_everything_before_the_first_header() -> None:
    text = "> question 1\nanswer 1\n> question 2\nanswer 2"
    assert split_reply(text).new == text


def test_html_to_text() -> None:
    html = ("<div>Hi <b>there</b><br>line2<script>x</script><ul><li>a</li><li>b</li></ul>"
            "<p>see <a href='https://x.example/doc'>the doc</a></p>"
            "<blockquote>old <p>text</p></blockquote></div>")
    text = html_to_text(html)
    assert text.startswith("Hi there\nline2\n\n- a\n- b\n\nsee the doc <https://x.example/doc>")
    assert "> old" in text and "x\n" not in text


def test_gmail_quote_becomes_quoted_history() -> None:
    html = ('<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div>On Mon, Jan 1 '
            'Support wrote:<br></div><blockquote class="gmail_quote">Hello<br>there</blockquote></div>')
    split = split_reply(html_to_text(html))
    assert split.new == "Thanks!" and "> Hello" in (split.quoted or "")


def test_sanitize() -> None:
    dirty = ('<p onclick="x()" style="color:red">hi<img src="http://t.example/p.gif">'
             '<img src="cid:abc"><script>bad()</script><a href="javascript:x()">l</a>'
             '<iframe src="https://x"></iframe><form><input></form></p>')
    clean = sanitize_html(dirty)
    for bad in ("onclick", "script", "javascript", "iframe", "t.example", "<form", "<input"):
        assert bad not in clean
    assert 'src="cid:abc"' in clean
    assert "t.example" in sanitize_html(dirty, remote_images=True)
