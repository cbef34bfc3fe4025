"""The capture filter of ``upscope serve``: only the trunk's packets reach its ring.

tcpdump/pcap-filter(7) syntax, handed to dumpcap. Without a site there is no filter (everything
on the interface is the evidence).
"""

from __future__ import annotations

from core.site import Site


def trunk_filter(site: Site | None, https_ports: tuple[int, ...]) -> str:
    """Connector SIP/TLS, STUN, REST, the OSBiz's media ports, inbound TCP to the OSBiz's HTTPS
    ports, and ICMP. Media and HTTPS are limited to the OSBiz's own addresses when the site names
    them: other hosts' RTP in the same port range is not this trunk's. ICMP (unreachables quoting
    a trunk packet: "blocked" evidence) is limited to messages to or from the OSBiz and the
    connector's hosts then too: an unreachable about a trunk packet is sent to the packet's
    sender, and the OSBiz (or its own firewall, with its address) answers the connector."""
    if site is None:
        return ""
    ep = site.endpoints
    osbiz = list(dict.fromkeys(a for a in (site.system.public_ip, site.system.private_ip) if a))
    media = f"udp portrange {ep.media_ports.first}-{ep.media_ports.last}"
    icmp = "icmp or icmp6"
    if osbiz:
        trunk_hosts = dict.fromkeys([*osbiz, ep.connector.host, ep.stun.host, ep.rest.host])
        icmp = f"({icmp}) and ({' or '.join(f'host {h}' for h in trunk_hosts)})"
    parts = [
        f"(host {ep.connector.host} and tcp port {ep.connector.port})",
        f"(host {ep.stun.host} and port {ep.stun.port})",
        f"(host {ep.rest.host} and tcp port {ep.rest.port})",
        f"(({' or '.join(f'host {a}' for a in osbiz)}) and {media})" if osbiz else f"({media})",
        f"({icmp})",
    ]
    if site.system.public_ip:
        ports = " or ".join(f"tcp port {p}" for p in https_ports)
        parts.append(f"(host {site.system.public_ip} and ({ports}))")
    return " or ".join(parts)
