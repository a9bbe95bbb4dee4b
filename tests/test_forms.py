"""The one form reader every plugin uses: urlencoded and multipart bodies, files, a
``message/rfc822`` part, truncated and oversized input, wrong charsets, hostile bytes."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnichannel_sdk import FormData, UnparseablePayloadError, WebhookRequest, parse_form, read_form

B = "XyZ123"
MP = f"multipart/form-data; boundary={B}"


def _multipart(*parts: tuple[str, bytes]) -> bytes:
    body = b""
    for headers, data in parts:
        body += f"--{B}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{B}--\r\n".encode()


def test_urlencoded_fields_keep_bytes_and_order() -> None:
    form = parse_form("application/x-www-form-urlencoded",
                      b"a=1&b=hello+world&a=2&c=%E4%BD%A0&empty=&=x")
    assert form.get("a") == b"1"
    assert form.getlist("a") == [b"1", b"2"]
    assert form.text("b") == "hello world"
    assert form.text("c") == "你"
    assert form.get("empty") == b""
    assert form.keys()[:3] == ["a", "b", "c"]
    assert not form.files


def test_urlencoded_in_a_legacy_charset_is_bytes_not_an_error() -> None:
    # a Latin-1 form (percent escapes of non-UTF-8 bytes) reads; _charset_ tells how to decode
    form = parse_form("application/x-www-form-urlencoded", b"_charset_=iso-8859-1&name=J%FCrgen")
    assert form.get("name") == b"J\xfcrgen"
    assert form.text("name") == "Jürgen"
    # without a charset, undecodable bytes are replaced, never raised
    assert parse_form("application/x-www-form-urlencoded", b"name=J%FCrgen").text("name") == "J\ufffdrgen"
    # raw (unescaped) 8-bit bytes in the body too
    assert parse_form("application/x-www-form-urlencoded", b"x=\xff\xfe").get("x") == b"\xff\xfe"


def test_multipart_fields_and_files() -> None:
    body = _multipart(
        ('Content-Disposition: form-data; name="text"', "Grüße".encode()),
        ('Content-Disposition: form-data; name="gbk"\r\nContent-Type: text/plain; charset=gbk',
         "你好".encode("gbk")),
        ('Content-Disposition: form-data; name="attachment-1"; filename="r\xe9sum\xe9.pdf"\r\n'
         "Content-Type: application/pdf", b"%PDF-1.4\r\n--not-the-boundary\r\n\x00\xff"),
        ("Content-Disposition: form-data; name=\"f2\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt",
         b"x"),
    )
    form = parse_form(MP, body)
    assert form.text("text") == "Grüße"
    assert form.text("gbk") == "你好"
    pdf = form.files["attachment-1"]
    assert pdf.filename == "r\xe9sum\xe9.pdf"
    assert pdf.content_type == "application/pdf"
    assert pdf.data == b"%PDF-1.4\r\n--not-the-boundary\r\n\x00\xff"
    assert form.files["f2"].filename == "报告.txt"
    assert form.filenames == {"attachment-1": "r\xe9sum\xe9.pdf", "f2": "报告.txt"}
    assert set(form.fields) == {"text", "gbk"}


def test_message_rfc822_part_is_kept_whole() -> None:
    mime = (b"From: Ann <ann@example.org>\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\n"
            b"--XyZ1234 is not our boundary\r\nbody\r\n")
    body = _multipart(('Content-Disposition: form-data; name="body-mime"\r\n'
                       "Content-Type: message/rfc822", mime))
    form = parse_form(MP, body)
    assert form.get("body-mime") == mime
    item = form.field("body-mime")
    assert item is not None and item.content_type == "message/rfc822" and item.is_file


def test_transfer_encoded_parts_are_decoded() -> None:
    body = _multipart(
        ('Content-Disposition: form-data; name="b"\r\nContent-Transfer-Encoding: base64',
         base64.encodebytes(b"\x00binary\xff")),
        ('Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: quoted-printable',
         b"caf=C3=A9"))
    form = parse_form(MP, body)
    assert form.get("b") == b"\x00binary\xff"
    assert form.text("q") == "café"


def test_request_helper_reads_the_header() -> None:
    request = WebhookRequest("POST", "https://x.test/h", {"Content-Type": MP},
                             _multipart(('Content-Disposition: form-data; name="a"', b"1")))
    assert read_form(request).text("a") == "1"


@pytest.mark.parametrize("body", [
    _multipart(('Content-Disposition: form-data; name="a"', b"1"))[:-8],  # closing boundary cut
    f"--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhalf a val".encode(),
    f"--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n".encode(),
    b"",
])
def test_truncated_multipart_is_refused(body: bytes) -> None:
    with pytest.raises(UnparseablePayloadError):
        parse_form(MP, body)


def test_limits() -> None:
    many = "&".join(f"f{i}=x" for i in range(30)).encode()
    with pytest.raises(UnparseablePayloadError, match="more than 20"):
        parse_form("application/x-www-form-urlencoded", many, max_fields=20)
    body = _multipart(*[(f'Content-Disposition: form-data; name="f{i}"', b"x") for i in range(30)])
    with pytest.raises(UnparseablePayloadError, match="more than 20"):
        parse_form(MP, body, max_fields=20)
    with pytest.raises(UnparseablePayloadError, match="larger than"):
        parse_form(MP, body, max_bytes=100)
    headers = "\r\n".join(f"X-H{i}: v" for i in range(40))
    with pytest.raises(UnparseablePayloadError):
        parse_form(MP, _multipart((f'Content-Disposition: form-data; name="a"\r\n{headers}', b"1")))


@pytest.mark.parametrize("ctype", ["application/json", "", "multipart/form-data",
                                   "multipart/form-data; boundary=", "text/plain"])
def test_not_a_form(ctype: str) -> None:
    with pytest.raises(UnparseablePayloadError):
        parse_form(ctype, b"a=1")


def test_parts_without_a_name_or_not_form_data_are_skipped() -> None:
    body = _multipart(("Content-Disposition: attachment; name=\"a\"", b"1"),
                      ("Content-Type: text/plain", b"2"),
                      ('Content-Disposition: form-data; name="ok"', b"3"))
    form = parse_form(MP, body)
    assert form.keys() == ["ok"]
    assert isinstance(form, FormData) and len(form) == 1


def test_wrong_part_charset_label_falls_back() -> None:
    body = _multipart(('Content-Disposition: form-data; name="a"\r\n'
                       "Content-Type: text/plain; charset=x-no-such-charset", "é".encode()))
    assert parse_form(MP, body).text("a") == "é"


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([MP, "application/x-www-form-urlencoded", "multipart/form-data; boundary=\"\"",
                        "multipart/form-data; boundary=" + "b" * 300]),
       st.one_of(st.binary(max_size=400), st.lists(st.tuples(
           st.sampled_from(['Content-Disposition: form-data; name="a"',
                            'Content-Disposition: form-data; name="f"; filename="x\x00/../y"',
                            "Content-Disposition: form-data; name*=UTF-8''%FF",
                            'Content-Disposition: form-data; name="b"\r\nContent-Transfer-Encoding: '
                            "base64", "Content-Type: message/rfc822", "X: \xff"]),
           st.binary(max_size=60)), max_size=5).map(lambda ps: _multipart(*ps))))
def test_any_input_reads_or_raises_the_typed_error(ctype: str, body: bytes) -> None:
    try:
        form = parse_form(ctype, body)
    except UnparseablePayloadError:
        return
    for name in form:
        assert isinstance(form.text(name), str)
