"""Why a connection between two nodes was refused, in plain words.

Theory of operation
-------------------
Every refusal has a *reason code* (stable, for programs: ``wrong_ca``, ``expired``, ...), a
few *words* an operator recognises at a glance ("wrong CA", "clock skew / not yet valid"), and
a *detail* sentence naming the certificate, date, chain or size involved. The refusing side
logs ``refused peer <peer>: <words> — <detail>`` and, once the TLS session is up, sends the
code and detail to the other side in a Refuse frame; the other side logs ``peer <peer> refused
<what>: <words> — <detail>``. Both operators read the same sentence. The refusal itself,
:class:`~citychain.errors.PeerRefused`, its reasons and their words are in the one exceptions
tree, :mod:`citychain.errors`; this module turns TLS failures into refusals.

TLS-level failures come in two shapes, and :func:`explain_tls_error` maps both to the same
codes and words through two tables:

* :data:`VERIFY_CODES` — OpenSSL refused the peer's certificate in the handshake
  (:class:`ssl.SSLCertVerificationError` carries OpenSSL's verify code). That happens on the
  accepting side only; see :mod:`citychain.p2p.tls`.
* :data:`ALERTS` — the peer's TLS stack refused *ours* and sent an alert such as ``tlsv1 alert
  unknown ca`` (:func:`translate_alert`). Note that asyncio itself never sends an alert when a
  handshake fails (it closes without flushing it), so between two citychain nodes the refused
  dialler sees a silent close instead, which :mod:`citychain.p2p.handshake` reports as "most
  likely it does not trust our CA". The table serves peers on other TLS stacks, and asyncio
  versions that do send the alert.
"""

from __future__ import annotations

import ssl
from typing import Final

from citychain.errors import PeerRefused, RefusalReason

#: TLS alert description (as OpenSSL names it, lowercase) -> (reason, what the peer means).
#: These reach the side whose certificate or offer the peer refused.
ALERTS: Final[dict[str, tuple[RefusalReason, str]]] = {
    "unknown ca": ("wrong_ca", "it does not trust our CA"),
    "bad certificate": ("wrong_ca", "it says our certificate is bad"),
    "certificate unknown": ("wrong_ca", "it could not accept our certificate"),
    "unsupported certificate": ("wrong_ca", "it does not accept our kind of certificate"),
    "certificate revoked": ("wrong_ca", "it says our certificate is revoked"),
    "certificate required": ("wrong_ca", "it needs a client certificate and got none"),
    "access denied": ("wrong_ca", "it denied access to our certificate"),
    "certificate expired": ("expired", "it says our certificate has expired"),
    "decrypt error": ("wrong_ca", "it could not verify our certificate's signature"),
    "protocol version": ("protocol", "it does not speak TLS 1.3"),
    "handshake failure": ("protocol", "we share no TLS parameters"),
    "insufficient security": ("protocol", "it wants stronger TLS parameters"),
    "illegal parameter": ("protocol", "it says our TLS handshake is malformed"),
    "internal error": ("protocol", "it had an internal TLS error"),
}

#: OpenSSL X509 verify code -> (reason, detail). These reach the side that refused.
VERIFY_CODES: Final[dict[int, tuple[RefusalReason, str]]] = {
    2: ("wrong_ca", "its certificate does not chain to any organisation CA of this chain"),
    18: (
        "wrong_ca",
        "its certificate is self-signed, not issued by an organisation CA of this chain",
    ),
    19: ("wrong_ca", "its certificate chains to a CA that is not an organisation CA of this chain"),
    20: ("wrong_ca", "its certificate does not chain to any organisation CA of this chain"),
    21: ("wrong_ca", "its certificate does not chain to any organisation CA of this chain"),
    7: ("wrong_ca", "its certificate signature does not verify"),
    9: ("not_yet_valid", "its certificate is not valid yet; check the clocks"),
    10: ("expired", "its certificate has expired"),
    24: ("wrong_ca", "its certificate was issued by a certificate that is not a CA"),
    26: ("wrong_ca", "its certificate is not allowed for TLS client and server use"),
}


def translate_alert(alert: str) -> tuple[RefusalReason, str]:
    """(reason, detail) for a TLS alert the peer sent us.

    ``alert`` is OpenSSL's wording in either form: the message text ``"tlsv1 alert unknown
    ca"`` or the reason name ``"TLSV1_ALERT_UNKNOWN_CA"``. Unknown alerts become ``protocol``.
    """
    text = alert.lower().replace("_", " ")
    _, sep, description = text.partition("alert ")
    description = description.split("(", 1)[0].strip() if sep else text.strip()
    if description in ALERTS:
        return ALERTS[description]
    return ("protocol", f"it sent the TLS alert {description!r}")


def explain_tls_error(exc: ssl.SSLError) -> PeerRefused:
    """A TLS failure as a refusal: ours (a verify error) or the peer's (an alert)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason, detail = VERIFY_CODES.get(
            exc.verify_code, ("wrong_ca", "its certificate was not accepted")
        )
        return PeerRefused(reason, f"{detail} (OpenSSL: {exc.verify_message})")
    name = exc.reason or ""
    if "ALERT" in name.upper():
        reason, detail = translate_alert(name)
        return PeerRefused(reason, detail, by_peer=True)
    if name == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return PeerRefused("wrong_ca", "it presented no certificate")
    return PeerRefused("protocol", f"TLS failed: {name or exc}")
