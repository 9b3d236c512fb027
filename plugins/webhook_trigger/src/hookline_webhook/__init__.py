"""The Webhook trigger for Hookline: ``/api/webhook:trigger/<key>`` starts the workflow ``key``."""

from hookline_webhook.trigger import WebhookTrigger

__all__ = ["WebhookTrigger"]
