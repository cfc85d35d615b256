"""Mail posted by email APIs (CONTRACTS section 4): Mailgun routes, Postmark inbound, SendGrid
Inbound Parse and Amazon SES through SNS, each under /webhooks/mail/<provider>.

Each route checks the provider's signature or credentials before it reads the message (the
body only bounded, and form- or JSON-decoded where the signature lives in it), gives the raw
MIME to the path SMTP and IMAP take, and answers 2xx only after the ticket committed (503
when storage is away, so the provider retries). A repeated post is the same ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute

from channels.email.posts.bodies import Clock
from channels.email.posts.mailgun import MailgunPosts, TokenLedger
from channels.email.posts.postmark import PostmarkPosts
from channels.email.posts.sendgrid import SendgridPosts
from channels.email.posts.ses import SesPosts
from channels.email.posts.sns import Fetcher, HttpsFetcher
from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings
from intake.errors import ConfigError
from intake.messages import Intake

__all__ = ["mail_post_routes"]


def mail_post_routes(
    *,
    mailgun: MailgunSettings,
    postmark: PostmarkSettings,
    sendgrid: SendgridSettings,
    ses: SesSettings,
    clock: Clock,
    tokens: TokenLedger,
    fetch: Fetcher | None = None,
) -> Callable[[Intake], Sequence[BaseRoute]]:
    """The routes factory `intake.cli.serve.web_routes` adds: one route per enabled provider.

    Raises ConfigError for an enabled provider without its secret, before anything serves."""
    posts: list[MailgunPosts | PostmarkPosts | SendgridPosts | SesPosts] = []
    if mailgun.enabled:
        if not mailgun.signing_key.get_secret_value():
            raise ConfigError("mailgun.signing_key", "must be set when [mailgun] is enabled")
        posts.append(MailgunPosts(mailgun, clock=clock, tokens=tokens))
    if postmark.enabled and not (postmark.user and postmark.password.get_secret_value()):
        raise ConfigError("postmark.password", "user and password must be set for [postmark]")
    basic = bool(sendgrid.user and sendgrid.password.get_secret_value())
    if sendgrid.enabled and not (basic or sendgrid.public_key):
        raise ConfigError("sendgrid.password", "set user and password, or public_key")
    if postmark.enabled:
        posts.append(PostmarkPosts(postmark, clock=clock))
    if sendgrid.enabled:
        posts.append(SendgridPosts(sendgrid, clock=clock))
    if ses.enabled:
        if not ses.topic_arns:
            raise ConfigError("ses.topic_arns", "must name the topic when [ses] is enabled")
        posts.append(SesPosts(ses, clock=clock, fetch=fetch or HttpsFetcher()))

    def routes(intake: Intake) -> Sequence[BaseRoute]:
        return [route for post in posts for route in post.routes(intake)]

    return routes
