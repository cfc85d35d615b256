# Cyrillic, Turkish and full-width letters are the point of these samples, not look-alikes.
# ruff: noqa: RUF001
"""Machine mail in the languages Outlook, Exchange and mailers localize: the subject prefixes
of automatic replies and non-delivery reports, and what auto-responders and notices write, in
Portuguese, Russian, Chinese, Korean, Turkish, Hungarian, Finnish, Romanian and Slovak; and a
customer's subject that only names the topic."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Classification, MachineKind

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)

AUTO, BOUNCE, BULK, NOTE = (
    MachineKind.AUTO_REPLY,
    MachineKind.BOUNCE,
    MachineKind.BULK,
    MachineKind.NOTIFICATION,
)
HELLO = "Hello, thank you for your message."


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Resposta automática: Pedido 1234", AUTO),
        ("Fora do escritório", AUTO),
        ("Não é possível entregar: Fatura", BOUNCE),
        ("Não entregue: Fatura", BOUNCE),
        ("Автоматический ответ: Счёт", AUTO),
        ("Не доставлено: Счёт", BOUNCE),
        ("自动回复: 订单", AUTO),
        ("自動回覆：訂單", AUTO),
        ("无法传递: 订单", BOUNCE),
        ("系統退信", BOUNCE),
        ("자동 회신: 견적 요청", AUTO),
        ("배달되지 않음: 견적 요청", BOUNCE),
        ("Otomatik yanıt: Teklif", AUTO),
        ("Teslim edilemedi: Teklif", BOUNCE),
        ("Automatikus válasz: Ajánlat", AUTO),
        ("Kézbesíthetetlen: Ajánlat", BOUNCE),
        ("Automaattinen vastaus: Tarjous", AUTO),
        ("Ei voida toimittaa: Tarjous", BOUNCE),
        ("Răspuns automat: Ofertă", AUTO),
        ("Nelivrabil: Ofertă", BOUNCE),
        ("Mimo kancelárie: Ponuka", AUTO),
        ("Niedostarczalne: Oferta", BOUNCE),
        # a customer naming the topic: the wording does not end the subject or reach a colon
        ("Resposta automática não funciona", None),
        ("Автоматический ответ не приходит клиентам", None),
        ("自动回复功能无法使用", None),
        ("Otomatik yanıt ayarı nerede?", None),
    ],
)
def test_localized_subjects(run: Classify, subject: str, kind: MachineKind | None) -> None:
    assert run(subject, HELLO).machine_kind is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Estou fora do escritório até 5 de maio, com acesso limitado ao e-mail.", AUTO),
        ("Я в отпуске до 12 мая.", AUTO),
        ("这是一封自动回复邮件。我将于下周一返回。", AUTO),
        ("Som mimo kancelárie do piatku.", AUTO),
        ("A sua mensagem para vendas@example.com não pôde ser entregue.", BOUNCE),
        ("Ваше сообщение для sales@example.com не может быть доставлено.", BOUNCE),
        ("您的邮件无法投递到以下收件人: sales@example.com", BOUNCE),
        ("Vašu správu pre sales@example.com nebolo možné doručiť.", BOUNCE),
        ("Seu pedido foi enviado.\n\nPor favor, não responda a este e-mail.", NOTE),
        ("Заказ отправлен.\n\nПожалуйста, не отвечайте на это письмо.", NOTE),
        ("您的订单已发货。\n请勿回复此邮件。", NOTE),
        ("주문이 발송되었습니다.\n본 메일은 발신 전용입니다.", NOTE),
        ("Siparişiniz yola çıktı.\n\nLütfen bu e-postayı yanıtlamayın.", NOTE),
        ("A rendelését feladtuk.\n\nKérjük, ne válaszoljon erre az e-mailre.", NOTE),
        ("Tilauksesi on lähetetty.\n\nÄlä vastaa tähän viestiin.", NOTE),
        ("Comanda a fost expediată.\n\nVă rugăm să nu răspundeți la acest e-mail.", NOTE),
        ("Objednávka bola odoslaná.\n\nTáto správa bola vygenerovaná automaticky.", NOTE),
        # an unsubscribe line is a hint; with an HTML-only body (below) it is bulk mail
        ("Novidades do mês.\n\nCancelar inscrição", None),
        # people quoting the words inside their own sentences
        ("O cliente diz que recebe 'não responda a este e-mail' e não sabe porquê.", None),
        ("Клиенты пишут, что видят «не отвечайте на это письмо» в уведомлениях.", None),
    ],
)
def test_localized_texts(run: Classify, text: str, kind: MachineKind | None) -> None:
    assert run("Pedido", text).machine_kind is kind


@pytest.mark.parametrize(
    "line",
    ["Cancelar inscrição", "Отписаться от рассылки", "수신거부", "Abonelikten çık", "Leiratkozás"],
)
def test_localized_unsubscribe_lines_in_bulk_mail(run: Classify, line: str) -> None:
    text = f"Newsletter\n\nNews of the month.\n\n{line}\n"
    html = ("Content-Type", "text/html; charset=utf-8")
    assert run("News", text, [html]).machine_kind is BULK
