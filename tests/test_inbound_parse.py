"""Reading a received mail (engine/domain/inbound_mail.py, mail_text.py): whatever
the bytes, the parser answers; and what it answers is right for the mails people
and programs really send."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.domain.inbound_mail import ParsedMail, parse_mail
from engine.domain.mail_text import decode_bytes, html_to_text, reply_part
from engine.domain.text import text_problem

HEADER_NAMES = [
    "From", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted",
    "Precedence", "Authentication-Results", "Content-Type", "Content-Transfer-Encoding",
    "Content-Disposition", "MIME-Version",
]  # fmt: skip
NASTY = [
    b"=?big5?B?", b"=?x-unknown?Q?=FF=FE?=", b"=?utf-8?b?////?=", b"multipart/mixed",
    b'boundary="', b"--", b"\r\n", b"\n", b"\x00", b"\xff\xfe", b"<", b">", b"@", b";",
    b"charset=", b"gb2312", b"big5", b"utf-7", b"base64", b"quoted-printable", b"=\r\n",
    b"filename*=utf-8''%FF", b"message/rfc822", b"text/html", b"<blockquote>", b"\t",
]  # fmt: skip


def check_answer(mail: ParsedMail) -> None:
    """Everything the parser answers can be stored and used without another check."""
    for text in (mail.subject, mail.text, mail.reply_text, mail.from_name):
        assert isinstance(text, str) and text_problem(text) is None
    assert mail.from_address is None or ("@" in mail.from_address and len(mail.from_address) <= 254)
    assert mail.message_id is None or len(mail.message_id) <= 250
    for attachment in mail.attachments:
        assert attachment.data and isinstance(attachment.data, bytes)
        assert text_problem(attachment.filename) is None and len(attachment.filename) <= 255
        assert "/" not in attachment.filename and "\\" not in attachment.filename
    mail.dmarc_failed("mx.example")
    assert mail.incident_number is None or mail.incident_number.startswith("INC-")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw):
    check_answer(parse_mail(raw))


@st.composite
def mail_like(draw):
    """Bytes shaped like a mail: real header names, MIME words and broken pieces."""
    piece = st.one_of(st.sampled_from(NASTY), st.binary(max_size=30), st.text(max_size=20).map(
        lambda t: t.encode("utf-8", "surrogatepass")
    ))
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.lists(piece, max_size=6)),
                            max_size=10))
    head = b"".join(name.encode() + b": " + b"".join(value) + b"\r\n" for name, value in headers)
    body = b"".join(draw(st.lists(piece, max_size=30)))
    return head + b"\r\n" + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mail_like())
def test_mail_shaped_garbage_never_raises(raw):
    check_answer(parse_mail(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(
    ["utf-8", "big5", "gb2312", "gbk", "x-unknown", "", "utf-7", "idna", "rot13", "base64",
     "zlib", "hex", "utf-16", "ascii"]
))
def test_any_bytes_in_any_declared_charset_decode_to_storable_text(data, charset):
    assert text_problem(decode_bytes(data, charset)) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_any_html_and_any_reply_give_storable_text(text):
    assert text_problem(html_to_text(text)) is None
    assert text_problem(reply_part(text)) is None


# -- what it reads ---------------------------------------------------------------------


def test_the_headers_a_reply_is_matched_by():
    mail = parse_mail(
        b"From: =?utf-8?q?=E7=8E=8B=E5=B0=8F=E6=98=8E?= <Ming.Wang@Example.COM>\r\n"
        b"Subject: =?utf-8?b?5Zue6KaG?= =?utf-8?b?77ya?= [inc-000042] printer\r\n"
        b"Message-ID:   <m-1@example.com>  \r\n"
        b"In-Reply-To: <our-7@itsm.example>\r\n"
        b"References: <our-1@itsm.example>\r\n <our-7@itsm.example>\r\n"
        b"Auto-Submitted: No\r\nPrecedence: Bulk\r\n\r\nbody"
    )
    assert (mail.from_name, mail.from_address) == ("王小明", "ming.wang@example.com")
    assert mail.subject == "回覆： [inc-000042] printer"
    assert mail.incident_number == "INC-000042"
    assert mail.message_id == "<m-1@example.com>"
    assert mail.thread_ids == ("<our-7@itsm.example>", "<our-1@itsm.example>")
    assert not mail.is_automatic and mail.is_bulk


@pytest.mark.parametrize(
    ("header", "failed"),
    [
        ("mx.itsm.example; dmarc=fail (p=reject dis=none) header.from=example.com", True),
        ("MX.ITSM.EXAMPLE 1; spf=fail; dkim=none; dmarc=FAIL header.from=x", True),
        ("mx.itsm.example; dmarc=pass header.from=example.com", False),
        ("mx.itsm.example; spf=fail smtp.mailfrom=example.com", False),
        ("mx.elsewhere.example; dmarc=fail header.from=example.com", False),
        ("(comment) mx.itsm.example; dmarc=fail", True),
        ("garbage without structure", False),
    ],
)
def test_dmarc_counts_only_from_our_authserv_id(header, failed):
    mail = parse_mail(f"From: a@example.com\r\nAuthentication-Results: {header}\r\n\r\n".encode())
    assert mail.dmarc_failed("mx.itsm.example") is failed
    assert mail.dmarc_failed("") is False


def test_several_authentication_results_any_of_ours_counts():
    mail = parse_mail(
        b"From: a@example.com\r\n"
        b"Authentication-Results: relay.example; dmarc=pass\r\n"
        b"Authentication-Results: mx.itsm.example; dmarc=fail\r\n\r\n"
    )
    assert mail.dmarc_failed("mx.itsm.example") and not mail.dmarc_failed("relay.example")


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("big5", "印表機卡紙，請協助處理。"),
        ("gb2312", "打印机卡纸，请协助处理。"),
        ("gbk", "打印机卡纸"),
        ("utf-8", "印表機 🖨️"),
    ],
)
def test_chinese_bodies_decode_in_their_charset(charset, text):
    encoded = base64.b64encode(text.encode("gb18030" if charset == "gbk" else charset))
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"\r\n"
    )
    assert parse_mail(raw).text == text


def test_an_unknown_charset_is_read_as_utf8_and_bad_bytes_are_replaced():
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
        b"caf\xc3\xa9 \xff ok"
    )
    assert parse_mail(raw).text == "café \ufffd ok"
    assert decode_bytes(b"\xa6\xa8\xa5\\", "big5") == "成功"  # cp950: the 5C trail byte


def test_plain_text_is_preferred_to_html_and_html_alone_becomes_text():
    alternative = (
        b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>the html</p>\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nthe text\r\n--b--\r\n"
    )
    assert parse_mail(alternative).text == "the text"
    html = (
        "<div>Hello&nbsp;desk,</div><div><br></div><div>It is <i>broken</i>.</div>"
        "<table><tr><td>a</td><td>b</td></tr></table><pre>line 1\n  line 2</pre>"
    )
    assert html_to_text(html) == "Hello\xa0desk,\n\nIt is broken.\n\na b\n\nline 1\n  line 2"


def test_an_html_reply_leaves_out_the_quoted_mail():
    html = (
        "<div>Still broken.</div><div class=gmail_quote>On Mon, 7 Dec 2026, Desk wrote:"
        "<blockquote><p>Please restart.</p><blockquote>older</blockquote></blockquote></div>"
    )
    lines = html_to_text(html).splitlines()
    assert [line for line in lines if line][-2:] == ["> Please restart.", "> > older"]
    assert reply_part(html_to_text(html)) == "Still broken."


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Fixed, thanks.\n\nOn Mon, 7 Dec 2026, Desk <d@x> wrote:\n> old", "Fixed, thanks."),
        ("Fixed.\nOn Monday, 7 December 2026 at 10:00, A Long Name\n<d@x> wrote:\n> q", "Fixed."),
        ("Fixed.\n-- \nAlice\nAccounting", "Fixed."),
        ("Fixed.\n\n-----Original Message-----\nFrom: Desk\nSent: Monday", "Fixed."),
        ("好了。\n\n在 2026年12月7日 週一 上午10:00，服務臺 寫道：\n> 舊的", "好了。"),
        ("好了。\n\n------------------ 原始邮件 ------------------\n发件人: desk", "好了。"),
        ("OK\n\n________________________________\nFrom: Desk\nSent: Mon", "OK"),
        ("OK\n\nFrom: Desk <d@x>\nSent: Monday\nTo: me\nSubject: x\n\nold text", "OK"),
        ("寄件者: 服務臺\n傳送時間: 星期一\n\n舊的", "寄件者: 服務臺\n傳送時間: 星期一\n\n舊的"),
        ("> all quoted\n> nothing new", "> all quoted\n> nothing new"),
        ("Answer inline:\n> question?\nyes", "Answer inline:\nyes"),
        ("On call this week it broke twice.", "On call this week it broke twice."),
        ("From: the 3rd floor\nit is broken", "From: the 3rd floor\nit is broken"),
    ],
)
def test_a_reply_without_its_quote_and_signature(text, reply):
    assert reply_part(text) == reply


def test_attachments_keep_their_bytes_and_lose_their_folders():
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="C:\\\\Users\\\\a\\\\report.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF-1.4 x") + b"\r\n"
        b"--b\r\nContent-Type: image/png; name=\"../../etc/passwd\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG") + b"\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\n\r\ninner\r\n"
        b"--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment\r\n\r\n"
        b"--b--\r\n"
    )
    mail = parse_mail(raw)
    assert mail.text == "see attached"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("report.pdf", "application/pdf"),
        ("passwd", "image/png"),
        ("message.eml", "message/rfc822"),
    ]  # the empty zip is dropped
    assert mail.attachments[0].data == b"%PDF-1.4 x"
    assert b"inner" in mail.attachments[2].data


def test_no_from_and_an_unusable_from_give_no_address():
    assert parse_mail(b"Subject: x\r\n\r\nbody").from_address is None
    assert parse_mail(b"From: undisclosed-recipients:;\r\n\r\nbody").from_address is None
    assert parse_mail(b"From: \xff\xfe\r\n\r\nbody").from_address is None


def test_thousands_of_parts_are_cut_short():
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(2000))
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts
    mail = parse_mail(raw + b"--b--\r\n")
    assert "too many MIME parts" in mail.defects and mail.text == "x"
