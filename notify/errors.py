"""Delivery errors shared by the channels.

A permanent error means trying again cannot help (a refused recipient, bad credentials,
a request the provider rejects): the notice activity records it as failed at once instead
of spending its retries.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A message could not be handed to the mail relay or the SMS provider."""


class PermanentDeliveryError(DeliveryError):
    """A delivery error that retrying will not fix."""
