"""The LwM2M server side: the Registration interface, presence, device requests and package downloads.

Written by hand on the ``transport`` package (aiocoap): no maintained Python LwM2M server library exists.
"""

from tinymlaas.lwm2m.server.client_requests import (
    ClientRequests,
    DeviceObservation,
    DeviceRequestFailed,
    ValuesCallback,
)
from tinymlaas.lwm2m.server.registrations import (
    REGISTRATION_ROOT,
    Authorizer,
    Clock,
    Listener,
    RegistrationInterface,
    same_peer,
)
from tinymlaas.lwm2m.server.server import DEFAULT_PORT, DEFAULT_SECURE_PORT, PACKAGE_ROOT, Lwm2mServer

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SECURE_PORT",
    "PACKAGE_ROOT",
    "REGISTRATION_ROOT",
    "Authorizer",
    "ClientRequests",
    "Clock",
    "DeviceObservation",
    "DeviceRequestFailed",
    "Listener",
    "Lwm2mServer",
    "RegistrationInterface",
    "ValuesCallback",
    "same_peer",
]
